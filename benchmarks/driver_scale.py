"""The driver's cost per clip at 2,000 and 20,000 clips: does it stay flat?

For each size the script writes a processed archive: an input archive of game folders
(``--per-game`` tiny fake clip files and a ``roster.yaml`` each) and an output root in which
every clip is done, as a finished run would leave it: per game a manifest entry
(:func:`hoopray.manifest.save_game`), a fingerprint cache (written by
:func:`hoopray.pipeline.plan_run` itself on a first plan, so its entries are the stat and
fingerprint discovery takes), the team fit record and a team model file; per clip an
``observations/clip`` marker, a ``status/clips`` row and its identities
(``identities/tracks`` and ``identities/frames``, ``--tracks`` tracks over ``--frames``
frames). Per-game files go through the store's functions; per-clip tables are written with
pyarrow straight to their :func:`hoopray.store.table_path` (identities as a byte copy of
one clip's, written by :func:`hoopray.outputs.write_identities`), and fsync is off while the
archive is built: nothing reads concurrently, and building 20,000 clips through the
fsync'd commit path would take minutes. The first plan must find the archive idle.

Then it measures, in ``--repeats`` rounds that each go over every size in turn (so a burst
of load on the shared machine falls on every size alike; the fastest round counts):

- plan: :func:`hoopray.pipeline.plan_run` over the archive (discovery + manifest + plan);
- nightly: a no-op :func:`hoopray.job.run_job` (``incremental=True``) whose ``start_ray``
  fails if called; it must return 0 without starting Ray;
- read: :func:`hoopray.outputs.read_identities` of ``--reads`` random clips (per read).

Bytes of clip content read are counted twice: the ``fingerprint_bytes_read`` the nightly
writes into its run summary (what :class:`hoopray.video.GameInput` reports), and a probe
around :func:`hoopray.video._fingerprint` in this process; both must be 0 (no clip is
opened). The metric is the largest ratio of a measure's cost per clip at the large size
over the small size, in CPU time of this process (user + system): on this shared 2-core
machine the wall time moves with other people's load (a load average of 5 to 40 was
seen), the CPU time much less; the table shows both, and the wall ratios are printed too.

What it leaves out: object stores (local disk only, files hot in the page cache after the
build), clip decoding (nothing is decoded in a no-op run), Ray and anything after planning
in a run with work, and the report/index (not written by a no-op run).

Run: ``.venv/bin/python benchmarks/driver_scale.py [--sizes 2000,20000 --per-game 10]``
(``--quick``: 200 and 2,000 clips; ``--cache DIR`` keeps the archives there for reruns).
The last line is ``result: per_clip_ratio_20k_vs_2k=<max ratio> target=<=1.5 pass|fail``
(fail also when a clip's bytes were read, Ray was asked for, or a run was not a no-op).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
for _path in (str(REPO), str(BENCHMARKS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import common  # noqa: E402
import numpy as np  # noqa: E402

TARGET = 1.5
LAYOUT = 1  # bump when the generated archive changes, so cached copies are rebuilt
MEASURES = ("nightly", "plan", "read")


# --------------------------------------------------------------------------- archive


@dataclass(frozen=True)
class Root:
    """A processed archive: inputs under ``games``, outputs under ``out``."""

    base: Path
    games: Path
    labels: Path
    out: Path
    clips: int
    per_game: int

    def cfg(self) -> Any:
        from tests.reliability_corpus import config

        return config(self.games, self.labels, self.out)

    def clip_ids(self) -> list[tuple[str, str]]:
        return [
            (game_id(g), clip_id(c)) for g in range(self.game_count) for c in range(self.per_game)
        ]

    @property
    def game_count(self) -> int:
        return -(-self.clips // self.per_game)


def game_id(index: int) -> str:
    return f"g{index:05d}"


def clip_id(index: int) -> str:
    return f"clip-{index:03d}"


def table_of(schema: Any, columns: dict[str, Any], rows: int) -> Any:
    """A table of ``schema`` from ``columns``; a column not given is null where the schema
    allows it, else zeros or empty strings (so a table added to the layout later still
    builds)."""
    import pyarrow as pa

    arrays = []
    for f in schema:
        if f.name in columns:
            arrays.append(pa.array(columns[f.name], f.type))
        elif f.nullable:
            arrays.append(pa.nulls(rows, f.type))
        elif pa.types.is_string(f.type):
            arrays.append(pa.array([""] * rows, f.type))
        else:
            arrays.append(pa.array(np.zeros(rows), pa.float64()).cast(f.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def identity_tables(tracks: int, frames: int) -> Any:
    """One clip's identities: ``tracks`` confirmed tracks seen on each of ``frames`` frames."""
    from hoopray import types

    n = tracks * frames
    track_ids = np.tile(np.arange(1, tracks + 1, dtype=np.int32), frames)
    x = (track_ids * 20).astype(np.float32)
    id_frames = {
        "frame": np.repeat(np.arange(frames, dtype=np.int32), tracks),
        "track_id": track_ids,
        "x1": x,
        "y1": np.full(n, 10, np.float32),
        "x2": x + 15,
        "y2": np.full(n, 60, np.float32),
        "team_name": ["Home" if t % 2 else "Away" for t in track_ids],
        "number": [str(t) for t in track_ids],
        "player_name": [f"Player {t}" for t in track_ids],
        "status": ["confirmed"] * n,
    }
    ids = np.arange(1, tracks + 1, dtype=np.int32)
    id_tracks = {
        "track_id": ids,
        "first_frame": np.zeros(tracks, np.int32),
        "last_frame": np.full(tracks, frames - 1, np.int32),
        "team_cluster": (ids % 2).astype(np.int8),
        "team_name": ["Home" if t % 2 else "Away" for t in ids],
        "team_confidence": np.full(tracks, 0.9, np.float32),
        "number": [str(t) for t in ids],
        "player_name": [f"Player {t}" for t in ids],
        "status": ["confirmed"] * tracks,
        "confirmed_at_frame": np.zeros(tracks, np.int32),
        "reads_seen": np.full(tracks, 5, np.int32),
        "reads_agreeing": np.full(tracks, 5, np.int32),
    }
    return types.Identities(
        tracks=types.check_schema(
            "identities/tracks", table_of(types.SCHEMAS["identities/tracks"], id_tracks, tracks)
        ),
        frames=types.check_schema(
            "identities/frames", table_of(types.SCHEMAS["identities/frames"], id_frames, n)
        ),
    )


def outputs_tables(outputs: Any) -> list[str]:
    """The identity tables in writing order (the marker, ``tracks``, last)."""
    return [f"identities/{name}" for name in outputs.IDENTITY_TABLES]


def _write(path: str, data: bytes) -> None:
    """Write a file, creating its folder (a partition's ``clip_id=`` folder) if needed."""
    try:
        handle = open(path, "wb")  # noqa: SIM115
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        handle = open(path, "wb")  # noqa: SIM115
    with handle:
        handle.write(data)


def _parquet(table: Any) -> bytes:
    """A one-row table as Parquet bytes (uncompressed: zstd's set-up costs more than the
    row; readers do not care)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="none")
    return sink.getvalue().to_pybytes()


class _Paths:
    """:func:`hoopray.store.table_path` of every clip without resolving the root for each
    (checked against the store's own answer once per game)."""

    def __init__(self, out: str, names: Sequence[str]) -> None:
        from hoopray import store

        self.store = store
        self.out = out
        self.dirs = {name: store.table_dir(out, name) for name in names}

    def __call__(self, name: str, game: str, clip: str, check: bool = False) -> str:
        store = self.store
        path = (
            f"{self.dirs[name]}/{store.GAME_KEY}={game}/{store.CLIP_KEY}={clip}/{store.PART_FILE}"
        )
        if check and path != store.table_path(self.out, name, game, clip):
            raise RuntimeError(f"{path} is not where the store puts {name} of {game}/{clip}")
        return path


def build_root(
    base: Path,
    clips: int,
    *,
    per_game: int = 10,
    tracks: int = 10,
    frames: int = 300,
    labels: Path | None = None,
) -> Root:
    """Write a processed archive of ``clips`` clips under ``base`` (see the docstring).
    ``labels``: the replay doubles' labels folder the config names (empty; it only enters
    the config hashes), ``base/labels`` by default."""

    from hoopray import manifest as mf
    from hoopray import outputs, pipeline, stages, store, teams, types
    from hoopray.settings import Settings

    root = Root(base, base / "games", labels or base / "labels", base / "out", clips, per_game)
    root.labels.mkdir(parents=True, exist_ok=True)
    keys = root.clip_ids()[:clips]
    by_game: dict[str, list[str]] = {}
    for g, c in keys:
        by_game.setdefault(g, []).append(c)
    for g, cs in by_game.items():
        folder = root.games / g
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "roster.yaml").write_text(f"teams:\n  - name: Home {g}\n  - name: Away {g}\n")
        for c in cs:
            (folder / f"{c}.mp4").write_bytes(f"not a video: {g}/{c}\n".encode())
    settings = Settings.from_cfg(root.cfg())
    hashes = settings.hashes()
    out = settings.out_root
    with mock.patch("os.fsync", lambda fd: None):
        first = pipeline.plan_run(settings)  # fingerprints every clip; saves the caches
        # one clip's identities through the store's own writer; the others are copies
        g0, c0 = first.games[0].game_id, first.games[0].clips[0].clip_id
        ids = identity_tables(tracks, frames)
        digest = outputs.identities_hash(ids)
        outputs.write_identities(out, g0, c0, ids)
        templates = {
            name: Path(store.table_path(out, name, g0, c0)).read_bytes()
            for name in outputs_tables(outputs)
        }
        paths = _Paths(out, ["observations/clip", "status/clips", *outputs_tables(outputs)])
        clip_schema = types.SCHEMAS["observations/clip"]
        status_schema = types.SCHEMAS["status/clips"]
        for game in first.games:
            fps = {c.clip_id: c.fingerprint for c in game.clips}
            entry = mf.GameEntry(
                team_hash=hashes.team,
                team_clips=dict(fps),
                roster_fingerprint=outputs.roster_fingerprint(game.roster_path),
                resolve_hash=hashes.resolve,
            )
            for index, clip in enumerate(game.clips):
                g, c, path = game.game_id, clip.clip_id, str(clip.path)
                check = index == 0
                marker = table_of(
                    clip_schema,
                    {
                        "path": [path],
                        "fingerprint": [clip.fingerprint],
                        "frames": [frames],
                        "fps": [30.0],
                        "width": [1280],
                        "height": [720],
                        "read_stride": [5],
                        "reader_calls": [frames // 5],
                        "crops_read": [tracks * 3],
                        "seconds": [1.0],
                        "observe_hash": [hashes.observe],
                    },
                    1,
                )
                _write(paths("observations/clip", g, c, check), _parquet(marker))
                status = table_of(
                    status_schema,
                    {
                        "path": [path],
                        "fingerprint": [clip.fingerprint],
                        "status": ["ok"],
                        "frames": [frames],
                        "confirmed": [tracks],
                        "seconds_observe": [1.0],
                        "seconds_resolve": [0.01],
                        "seconds_render": [0.0],
                    },
                    1,
                )
                _write(paths("status/clips", g, c, check), _parquet(status))
                if (g, c) != (g0, c0):
                    for name in outputs_tables(outputs):  # tracks last: the marker
                        _write(paths(name, g, c, check), templates[name])
                entry.clips[c] = mf.ClipEntry(
                    fingerprint=clip.fingerprint,
                    observe_hash=hashes.observe,
                    render_hash=hashes.render,
                    identities_hash=digest,
                )
            record = {"team_hash": hashes.team, "clips": fps, "failed": False, "reason": ""}
            store.write_text(stages.fit_location(out, game.game_id), json.dumps(record, indent=2))
            model = store.join(teams.teams_dir(out, game.game_id), teams.MODEL_FILE)
            store.write_bytes(model, b"a team model would be here\n")
            mf.save_game(out, game.game_id, entry)
    again = pipeline.plan_run(settings)
    if not again.idle or again.bytes_read:
        raise RuntimeError(
            f"the built archive is not a no-op for the planner (idle={again.idle}, "
            f"bytes read={again.bytes_read}): the benchmark's layout is out of date"
        )
    return root


def cached_root(cache: Path, clips: int, **kwargs: int) -> Root:
    """:func:`build_root` under ``cache``, reused when a complete copy of the same size,
    layout, table schemas and config hashes is there (all sizes share ``cache/labels``)."""
    from hoopray import types
    from hoopray.settings import Settings
    from tests.reliability_corpus import config

    labels = cache / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    hashes = vars(Settings.from_cfg(config(cache / "games", labels, cache / "out")).hashes())
    schemas = [str(types.SCHEMAS[name]) for name in sorted(types.SCHEMAS)]
    key = json.dumps([LAYOUT, clips, kwargs, hashes, schemas])
    key = hashlib.sha256(key.encode()).hexdigest()[:10]
    base = cache / f"driver-scale-{clips}-{key}"
    per_game = int(kwargs.get("per_game", 10))
    if (base / "complete").exists():
        return Root(base, base / "games", labels, base / "out", clips, per_game)
    shutil.rmtree(base, ignore_errors=True)
    root = build_root(base, clips, labels=labels, **kwargs)
    (base / "complete").write_text("ok\n")
    return root


# --------------------------------------------------------------------------- measures


class NoRay:
    """``start_ray`` for a no-op nightly: counts the calls and refuses as an unreachable
    cluster does (the job then exits 2, "could not start")."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, **kwargs: Any) -> None:
        self.calls += 1
        raise ConnectionError("a no-op nightly asked for Ray")


@contextlib.contextmanager
def fingerprint_probe() -> Iterator[dict[str, int]]:
    """Counts the clips :mod:`hoopray.video` fingerprints in this process, and their bytes."""
    from hoopray import video

    real = video._fingerprint
    seen = {"clips": 0, "bytes": 0}

    def probe(location: str, size: int | None = None) -> tuple[str, int]:
        fp, read = real(location, size)
        seen["clips"] += 1
        seen["bytes"] += read
        return fp, read

    video._fingerprint = probe  # type: ignore[assignment]
    try:
        yield seen
    finally:
        video._fingerprint = real  # type: ignore[assignment]


@dataclass
class Size:
    """What one archive size measured; times are the fastest round's, per whole measure."""

    clips: int
    games: int
    seconds: dict[str, float] = field(default_factory=dict)  # wall
    cpu: dict[str, float] = field(default_factory=dict)  # this process's user + system time
    units: dict[str, int] = field(default_factory=dict)  # clips (plan, nightly) or reads
    bytes_read: int = 0  # fingerprint bytes the run summaries and plans report, all rounds
    probe_bytes: int = 0  # bytes the probe saw fingerprinted, all rounds
    exit_codes: list[int] = field(default_factory=list)
    ray_calls: int = 0
    idle: bool = True
    problems: list[str] = field(default_factory=list)

    def per_unit(self, measure: str, *, wall: bool = False) -> float:
        taken = self.seconds if wall else self.cpu
        return taken[measure] / max(1, self.units[measure])

    @property
    def ok(self) -> bool:
        return not self.problems_found()

    def problems_found(self) -> list[str]:
        found = list(self.problems)
        if self.bytes_read or self.probe_bytes:
            found.append(
                f"{self.clips} clips: clip bytes read in a no-op run (reported "
                f"{self.bytes_read}, probe {self.probe_bytes})"
            )
        if any(code != 0 for code in self.exit_codes):
            found.append(f"{self.clips} clips: nightly exit codes {sorted(set(self.exit_codes))}")
        if self.ray_calls:
            found.append(f"{self.clips} clips: the nightly asked for Ray {self.ray_calls} times")
        if not self.idle:
            found.append(f"{self.clips} clips: the plan was not idle")
        return found


def _last_summary(out: Path) -> dict[str, Any]:
    from hoopray import outputs

    runs = sorted((out / outputs.RUNS_DIR).glob("*.json"))
    return json.loads(runs[-1].read_text()) if runs else {}


@contextlib.contextmanager
def _timed(size: Size, measure: str) -> Iterator[None]:
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        size.seconds[measure] = min(size.seconds.get(measure, float("inf")), wall)
        size.cpu[measure] = min(size.cpu.get(measure, float("inf")), cpu)


class Bench:
    """One archive size under measurement: its config, settings and results so far."""

    def __init__(self, root: Root, reads: int, seed: int = 0) -> None:
        from hoopray.settings import Settings

        self.root = root
        self.cfg = root.cfg()
        self.settings = Settings.from_cfg(self.cfg)
        self.reads = reads
        self.keys = root.clip_ids()[: root.clips]
        self.rng = np.random.default_rng(seed)
        self.size = Size(root.clips, root.game_count)
        self.size.units = {"plan": root.clips, "nightly": root.clips, "read": reads}

    def round(self, probe: dict[str, int]) -> None:
        """Each measure once: the nightly first (it sees the archive as this round found
        it), then the plan, then ``reads`` identity reads of random clips."""
        from hoopray import job, outputs, pipeline

        size, seen = self.size, probe["bytes"]
        no_ray = NoRay()
        try:
            with contextlib.redirect_stdout(io.StringIO()), _timed(size, "nightly"):
                code = job.run_job(self.cfg, incremental=True, start_ray=no_ray)
        except Exception as err:  # a failed check, not a crash of the benchmark
            size.problems.append(f"{size.clips} clips: the nightly raised {err!r}")
            code = -1
        size.exit_codes.append(code)
        size.ray_calls += no_ray.calls
        summary = _last_summary(self.root.out)
        if "fingerprint_bytes_read" not in summary:
            size.problems.append(f"{size.clips} clips: no run summary with bytes read")
        size.bytes_read += int(summary.get("fingerprint_bytes_read") or 0)

        with _timed(size, "plan"):
            planned = pipeline.plan_run(self.settings)
        size.idle = size.idle and planned.idle
        size.bytes_read += planned.bytes_read

        picks = self.rng.choice(len(self.keys), self.reads, replace=len(self.keys) < self.reads)
        rows = 0
        with _timed(size, "read"):
            for i in picks:
                rows += outputs.read_identities(
                    self.settings.out_root, *self.keys[i]
                ).tracks.num_rows
        if rows == 0:
            size.problems.append(f"{size.clips} clips: identities read back empty")
        size.probe_bytes += probe["bytes"] - seen


def measure_all(
    roots: Sequence[Root], *, repeats: int = 3, reads: int = 200, seed: int = 0
) -> list[Size]:
    """``repeats`` rounds, each over every root in turn (so a burst of load on the shared
    machine falls on every size alike); the fastest round of each measure counts."""
    benches = [Bench(root, reads, seed) for root in roots]
    with fingerprint_probe() as probe:
        for _ in range(repeats):
            for bench in benches:
                bench.round(probe)
    return [b.size for b in benches]


def measure(root: Root, *, repeats: int = 3, reads: int = 200, seed: int = 0) -> Size:
    """:func:`measure_all` of one root."""
    return measure_all([root], repeats=repeats, reads=reads, seed=seed)[0]


def ratios(small: Size, large: Size, *, wall: bool = False) -> dict[str, float]:
    """Per measure: CPU time (or wall time) per clip, per read for ``read``, at the large
    size over the small size."""
    return {m: large.per_unit(m, wall=wall) / small.per_unit(m, wall=wall) for m in MEASURES}


def label(clips: int) -> str:
    return f"{clips // 1000}k" if clips >= 1000 and clips % 1000 == 0 else str(clips)


def verdict(sizes: Sequence[Size]) -> str:
    """``per_clip_ratio_<large>_vs_<small>=<max ratio>``; fail beyond the target or when a
    check failed (bytes read, Ray asked for, a run not a no-op)."""
    small, large = sizes[0], sizes[-1]
    worst = max(ratios(small, large).values())
    ok = worst <= TARGET and all(s.ok for s in sizes)
    name = f"per_clip_ratio_{label(large.clips)}_vs_{label(small.clips)}"
    return common.result_line(name, round(worst, 3), f"<={TARGET}", ok)


def table(sizes: Sequence[Size]) -> str:
    rows = []
    for s in sizes:
        for m in MEASURES:
            rows.append(
                (
                    s.clips,
                    s.games,
                    m,
                    s.units[m],
                    s.seconds[m],
                    s.per_unit(m, wall=True) * 1e6,
                    s.cpu[m],
                    s.per_unit(m) * 1e6,
                    "read" if m == "read" else "clip",
                    s.bytes_read + s.probe_bytes if m == "nightly" else "",
                )
            )
    headers = (
        "clips",
        "games",
        "measure",
        "n",
        "wall s",
        "wall us per",
        "CPU s",
        "CPU us per",
        "per",
        "bytes read",
    )
    return common.format_table(headers, rows)


def main(argv: Sequence[str] | None = None) -> list[Size]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="2000,20000", help="clip counts, small to large")
    parser.add_argument("--per-game", type=int, default=10, help="clips per game")
    parser.add_argument("--tracks", type=int, default=10, help="identity tracks per clip")
    parser.add_argument("--frames", type=int, default=300, help="identity frames per clip")
    parser.add_argument("--reads", type=int, default=200, help="random clips read per repeat")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--cache", default=None, help="keep (and reuse) the archives here")
    parser.add_argument("--quick", action="store_true", help="200 and 2,000 clips")
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes = "200,2000"
    counts = sorted(int(v) for v in args.sizes.split(",") if v)
    if len(counts) < 2:
        parser.error("--sizes needs two clip counts or more")
    common.quiet()
    print(common.machine_line())
    total = time.perf_counter()
    kwargs = {"per_game": args.per_game, "tracks": args.tracks, "frames": args.frames}
    sizes = []
    with contextlib.ExitStack() as stack:
        if args.cache:
            base = Path(args.cache)
        else:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="hoopray-scale-")))
        roots = []
        for clips in counts:
            started = time.perf_counter()
            roots.append(cached_root(base, clips, **kwargs))
            print(
                f"{clips} clips in {roots[-1].game_count} games: archive ready in "
                f"{time.perf_counter() - started:.1f} s ({roots[-1].base})"
            )
        started = time.perf_counter()
        sizes = measure_all(roots, repeats=args.repeats, reads=args.reads, seed=args.seed)
        print(
            f"measured in {time.perf_counter() - started:.1f} s ({args.repeats} rounds over "
            f"every size), load avg {os.getloadavg()[0]:.1f}"
        )
        print(
            f"{args.per_game} clips per game; identities of {args.tracks} tracks x "
            f"{args.frames} frames per clip; fastest of {args.repeats} rounds; read: "
            f"{args.reads} random clips per repeat"
        )
        print(table(sizes))
        small, large = sizes[0], sizes[-1]
        walls = ratios(small, large, wall=True)
        for m, ratio in ratios(small, large).items():
            print(
                f"per-clip ratio {label(large.clips)}/{label(small.clips)} {m}: CPU "
                f"{ratio:.3f} (wall {walls[m]:.3f})"
            )
        for size in sizes:
            for problem in size.problems_found():
                print(f"check failed: {problem}")
        print(f"total {time.perf_counter() - total:.0f} s (before removing the archives)")
        sys.stdout.flush()
    print(verdict(sizes))
    return sizes


if __name__ == "__main__":
    main()
