"""Peak memory of observe on a short and a 10x longer clip: does it stay flat?

One synthetic clip of ``--long`` frames is streamed to disk (:func:`hoopray.synthetic.
write_clip` through ``make_game``); observe runs on its first ``--short`` frames and on all
of it, each run in a fresh Python process that reports its peak RSS (``ru_maxrss``, which
includes the imports and the loaded models) and its RSS just before observe started.

What runs is the production path, :func:`hoopray.stages.observe_to_store`: observe
hands each record batch of rows to the store's streaming Parquet writers as it is
produced, so the observation tables are never held whole in memory.

Models (mode ``tiny``, the metric): the tiny random-weight SAM2 video tracker
(``Sam2VideoTracking`` on ``build_tiny_sam2_video``, 128 px), the tiny SmolVLM + LoRA reader
and the tiny SigLIP embedder, whose team-crop embeddings observe records (observing needs no
team model). The detector is the
ground-truth replay detector: a random RF-DETR detects nothing, so nothing would be
tracked or read. Mode ``replay`` (information) replays detector, tracker and reader from the
labels, whose masks are shaped like real ones; random SAM2 masks are large noisy blobs
whose RLE strings are much longer than real masks'.

Run: ``.venv/bin/python benchmarks/memory.py [--short 300 --long 3000 --size 426x240]``.
The last line is ``result: peak_ratio=<peak(long)/peak(short), tiny> target=<=1.1 pass|fail``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import common

MODES = ("tiny", "replay")
FPS = 30.0


def child(spec: dict) -> dict:
    """Observe ``spec["clip"]`` for ``spec["frames"]`` frames in this process; report memory.

    Runs in a fresh process (see :func:`run_child`), so ``ru_maxrss`` is this run's peak.
    """
    common.quiet()
    common.set_torch_threads(spec["threads"])
    from hoopray.models.replay import ReplayWorld
    from hoopray.observe import ObserveConfig
    from hoopray.stages import observe_to_store
    from hoopray.types import ClipRef

    world = ReplayWorld(spec["labels"])
    if spec["mode"] == "tiny":
        dirs = common.TinyDirs(**{k: Path(v) for k, v in spec["tiny"].items()})
        models = common.tiny_models(dirs, detector=world.detector(), embedder="siglip")
    else:
        from hoopray.models.colour import ColourHistogramEmbedder

        models = common.replay_models(world, ColourHistogramEmbedder())
    clip = ClipRef(spec["game_id"], spec["clip_id"], spec["clip"], "memory-benchmark")
    before = common.current_rss_mib()
    started = time.perf_counter()
    out = Path(spec["out"])
    cfg = ObserveConfig(max_frames=spec["frames"])
    obs = observe_to_store(str(out), clip, models, cfg)
    seconds = time.perf_counter() - started
    peak = common.peak_rss_mib()
    held = (obs.tracks, obs.reads, obs.team_votes, obs.clip)
    written = out / "tables" / "observations"
    return {
        "mode": spec["mode"],
        "frames": int(obs.clip.column("frames")[0].as_py()),
        "seconds": seconds,
        "rss_before_mib": before,
        "peak_mib": peak,
        "held_mib": sum(t.nbytes for t in held) / 2**20,
        "parquet_mib": sum(p.stat().st_size for p in written.rglob("*.parquet")) / 2**20,
        "track_rows": int(obs.extra["rows"]["tracks"]),
        "tracks": int(obs.extra["tracks"]),
    }


def run_child(spec: dict, timeout: float | None = None) -> dict:
    """Run :func:`child` in a fresh interpreter and return its report."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"memory child failed ({done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(
    root: Path,
    *,
    short: int,
    long: int,
    size: tuple[int, int],
    modes: tuple[str, ...] = MODES,
    threads: int = 1,
    tiny: common.TinyDirs | None = None,
) -> list[dict]:
    """Write one ``long``-frame clip, then observe ``short`` and ``long`` frames of it in
    each mode, each in a fresh process. Returns the children's reports, in run order."""
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown mode {unknown}; known: {MODES}")
    game = common.make_game(root, seconds=long / FPS, size=size, clips=1)
    clip = common.clip_refs(game)[0]
    base = {
        "clip": str(clip.path),
        "game_id": clip.game_id,
        "clip_id": clip.clip_id,
        "labels": str(root / "labels"),
        "threads": threads,
    }
    reports = []
    for mode in modes:
        spec = dict(base, mode=mode)
        if mode == "tiny":
            tiny = tiny or common.build_tiny_models(root / "models")
            spec["tiny"] = {k: str(v) for k, v in vars(tiny).items() if v is not None}
        for frames in (short, long):
            out = root / "out" / f"{mode}-{frames}"
            reports.append(run_child(dict(spec, frames=frames, out=str(out))))
    return reports


def ratios(reports: list[dict]) -> dict[str, float]:
    """peak(long) / peak(short) per mode (reports in :func:`measure` order)."""
    out = {}
    for short, long in zip(reports[::2], reports[1::2], strict=True):
        out[short["mode"]] = long["peak_mib"] / short["peak_mib"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", type=int, default=300)
    parser.add_argument("--long", type=int, default=3000)
    parser.add_argument("--size", default="426x240", help="clip size WxH")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(json.loads(args.child))))
        return
    size = tuple(int(v) for v in args.size.lower().split("x"))
    modes = tuple(m for m in args.modes.split(",") if m)
    common.quiet()
    common.set_torch_threads(args.threads)
    print(common.machine_line())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hoopray-memory-") as tmp:
        reports = measure(
            Path(tmp),
            short=args.short,
            long=args.long,
            size=(size[0], size[1]),
            modes=modes,
            threads=args.threads,
        )
    print(
        f"clip {size[0]}x{size[1]} @ {FPS:g} fps; detector: replay (a random RF-DETR finds "
        f"nothing); torch threads {args.threads}; tiny SAM2 new_track_iou "
        f"{common.TINY_SAM2_NEW_TRACK_IOU:g} (random masks would otherwise add every "
        "detection as a new track)"
    )
    print(
        "path: hoopray.stages.observe_to_store (production): rows stream into the store's "
        "Parquet writers one record batch at a time; nothing of the tables is held"
    )
    rows = [
        (
            r["mode"],
            r["frames"],
            r["tracks"],
            r["track_rows"],
            r["seconds"],
            r["rss_before_mib"],
            r["peak_mib"],
            r["peak_mib"] - r["rss_before_mib"],
            r["held_mib"],
            r["parquet_mib"],
        )
        for r in reports
    ]
    headers = (
        "mode",
        "frames",
        "tracks",
        "track rows",
        "observe s",
        "RSS before MiB",
        "peak MiB",
        "peak-before MiB",
        "held MiB",
        "Parquet MiB",
    )
    print(common.format_table(headers, rows))
    by_mode = ratios(reports)
    for mode, ratio in by_mode.items():
        print(f"peak ratio {mode}: {ratio:.3f}")
    print(f"total {time.perf_counter() - started:.0f} s")
    metric_mode = "tiny" if "tiny" in by_mode else next(iter(by_mode))
    ratio = by_mode[metric_mode]
    print(common.result_line("peak_ratio", ratio, "<=1.1", ratio <= 1.1))


if __name__ == "__main__":
    main()
