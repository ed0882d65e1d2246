"""GPU utilisation of the streaming graph on a simulated 4-GPU cluster, against the barrier.

A local Ray (``ray.init(num_cpus=--cpus, num_gpus=4)``: fake GPUs, so Ray schedules the GPU
actors as on a cluster) runs :func:`hoopray.pipeline.execute` over a synthetic archive of
``--games`` games with uneven clip counts and lengths (``--clips`` 1-6 per game and
``--seconds`` 4-12 s per clip, around the notebook's 8 s clip; 10 fps, not the notebook's
30, to keep the run under 10 minutes; 208x120 frames; built once per seed and size and
cached under the system's temporary directory), with the production pool settings of
``conf/ray/local.yaml`` (``in_flight``, ``decode_ahead``, ``infer_ahead``) and
``ray.observe.actors=4``, ``ray.observe.num_gpus=1``. It runs once per schedule,
``streaming`` (the default) and ``barrier`` (``ray.schedule=barrier``: every game's pass 1,
then every clip's observe, then every game's finish), each on a fresh output root and a
freshly started Ray.

The models are the ground-truth replay doubles given a GPU cost: every call of
:class:`SleepyDetector` holds its GPU ``--detect-delay`` seconds per frame it detects (pass
1's sampled frames and observe's detection frames), every call of :class:`SleepyTracking`'s
trackers ``--track-delay`` per frame it tracks (every frame observe reads). A call runs the
replay and then sleeps for the rest of its time, so it holds the actor, and so its GPU,
for that fixed time (the replay's own CPU work inside it) and uses no CPU while it sleeps.
Every call is logged (process, work item, start, end, seconds asked):

- GPU-seconds: the sum of the seconds asked (what the calls held is printed beside it;
  sleeping overshoots a little);
- lower bound: ``max(GPU-seconds / 4, longest game's chain)``, where a game's chain is its
  longest single GPU item (pass 1, or one clip's observe): a game's items are independent
  on the GPU (observe needs no team model), so with unlimited GPUs a game needs at least
  that long. The CPU work of a game (team fit, finish) is not in the bound: it runs on the
  CPU beside the GPU work and the schedule must hide it;
- GPU utilisation: lower bound / makespan, where the makespan is the wall time of
  ``execute`` (actor start-up included; planning, archive generation and Ray start-up not).

The doubles' module also times every ``GpuWorker._one`` call in the actor processes (a
wrapper that only takes the time and notes the item, so that the model calls observe makes
from its ``infer_ahead`` thread are credited to it), so each actor's time line is known:
when its models were ready, its first and last item, the seconds inside items, in model
calls or not (time in an item with no model call running holds the GPU idle too: decode
not hidden by the read-ahead, observe's per-item work, per-frame work the model calls did
not overlap, writes) and the seconds between items. The summary splits ``4 x
makespan`` into GPU-seconds, other time inside items and no item on the GPU (start-up,
dispatch, waits for a stage, the tail after the last item: the last games' fit and
finish), so a low figure can be attributed.

What it leaves out: real model cost (the doubles sleep), real decode cost (208x120 clips
decode in microseconds; a real 1080p decode takes longer, and the read-ahead thread must
hide it), rendering (``output.render=false``) and reports (``output.report=false``),
object-store latency (local disk), and more than one machine: 2 real cores carry the
actors' CPU work, Ray's own processes and the CPU tasks.

Run: ``.venv/bin/python benchmarks/cluster_sim.py [--schedule both|streaming|barrier]
[--quick]``. The last line is ``result: gpu_utilisation=<streaming> target=>=0.85 pass|fail``
(the barrier figure is printed above it).
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, ClassVar, TypeVar

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"
for _path in (str(REPO), str(BENCHMARKS)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import common  # noqa: E402
import numpy as np  # noqa: E402

from hoopray.testing.replay import ReplayDetector, ReplayTracker, ReplayTracking  # noqa: E402

GPUS = 4
FPS = 10.0
SIZE = (208, 120)  # about the smallest frame the synthetic world draws (stamp + court)
TARGET = 0.85
SCHEDULES = ("streaming", "barrier")
T = TypeVar("T")


# --------------------------------------------------------------------------- GPU doubles


_RUNNING: list[tuple[str, str, str]] = [("?", "", "")]


def _current_item() -> tuple[str, str, str]:
    """(kind, game_id, clip_id) of the work item this GPU actor process is running (set
    by the ``GpuWorker._one`` timing wrapper: an actor runs one item at a time, and its
    model calls may come from observe's threads)."""
    return _RUNNING[0]


class EventLog:
    """One file per process, ``<log_dir>/<pid>.tsv``, a line per event: pid, what
    (``detect``/``track``: a sleep; ``item``: one ``GpuWorker._one`` call; ``ready``: the
    models were built), item kind, game, clip, start, end (``time.time()``, comparable
    across the processes of one machine) and the seconds asked for (sleeps)."""

    _open: ClassVar[dict[str, EventLog]] = {}

    def __init__(self, log_dir: str) -> None:
        self.log_dir = Path(log_dir)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self._handle = open(self.log_dir / f"{os.getpid()}.tsv", "a", buffering=1)  # noqa: SIM115

    @classmethod
    def get(cls, log_dir: str | None) -> EventLog | None:
        """This process's log in ``log_dir`` (one per process and folder), or None."""
        if not log_dir:
            return None
        if log_dir not in cls._open:
            cls._open[log_dir] = cls(log_dir)
            cls._open[log_dir].write("ready", ("", "", ""), time.time(), time.time())
            _time_work_items(cls._open[log_dir])
        return cls._open[log_dir]

    def write(
        self, what: str, item: tuple[str, str, str], start: float, end: float, asked: float = 0
    ) -> None:
        fields = (os.getpid(), what, *item, f"{start:.6f}", f"{end:.6f}", f"{asked:.6f}")
        self._handle.write("\t".join(str(f) for f in fields) + "\n")


def _time_work_items(log: EventLog) -> None:
    """Time every ``GpuWorker._one`` call of this actor process (timing only: the call and
    its result are untouched), so the analysis can tell a GPU held by CPU work inside an
    item from a GPU with no item at all."""
    from hoopray import stages

    real = stages.GpuWorker._one
    if getattr(real, "timed_by_cluster_sim", False):
        return

    def timed(self: Any, row: dict[str, Any]) -> dict[str, Any]:
        item = (str(row["kind"]), str(row["game_id"]), str(row["clip_id"]))
        _RUNNING[0] = item
        started = time.time()
        try:
            return real(self, row)
        finally:
            log.write("item", item, started, time.time())
            _RUNNING[0] = ("?", "", "")

    timed.timed_by_cluster_sim = True  # type: ignore[attr-defined]
    stages.GpuWorker._one = timed  # type: ignore[method-assign]


def hold_gpu(log: EventLog | None, model: str, seconds: float, work: Callable[[], T]) -> T:
    """Run ``work`` (the replay double's own computation) and sleep for what is left of
    ``seconds``, so the call holds its GPU ``seconds`` in all, the double's CPU time
    included (a real model's call takes its GPU time, not GPU time plus a replay's); log
    the whole call. ``seconds`` <= 0: just ``work``."""
    if seconds <= 0:
        return work()
    item = _current_item()
    start = time.time()
    result = work()
    time.sleep(max(0.0, seconds - (time.time() - start)))
    if log is not None:
        log.write(model, item, start, time.time(), seconds)
    return result


class SleepyDetector(ReplayDetector):
    """The replay detector, holding its GPU ``delay`` seconds per frame it detects."""

    def __init__(self, world: Any, delay: float = 0.0, log_dir: str | None = None) -> None:
        super().__init__(world)
        self.delay = float(delay)
        self.log = EventLog.get(log_dir)

    def detect(self, frames: list[np.ndarray]) -> list[Any]:
        seconds = self.delay * len(frames)
        return hold_gpu(self.log, "detect", seconds, lambda: ReplayDetector.detect(self, frames))


class SleepyTracking(ReplayTracking):
    """The replay tracking, whose trackers hold their GPU ``delay`` seconds per frame
    (the first frame, ``start``, included)."""

    def __init__(
        self,
        world: Any,
        max_missing_frames: int = 15,
        delay: float = 0.0,
        log_dir: str | None = None,
    ) -> None:
        super().__init__(world, max_missing_frames)
        self.delay = float(delay)
        self.log = EventLog.get(log_dir)

    def open(self) -> ReplayTracker:
        return _SleepyTracker(self, self.world, self.max_missing_frames)


class _SleepyTracker(ReplayTracker):
    def __init__(self, owner: SleepyTracking, world: Any, max_missing: int) -> None:
        super().__init__(world, max_missing)
        self.owner = owner

    def start(self, frame: np.ndarray, detections: Any) -> Any:
        return hold_gpu(
            self.owner.log,
            "track",
            self.owner.delay,
            lambda: ReplayTracker.start(self, frame, detections),
        )

    def step(self, frame: np.ndarray, new_detections: Any = None) -> Any:
        return hold_gpu(
            self.owner.log,
            "track",
            self.owner.delay,
            lambda: ReplayTracker.step(self, frame, new_detections),
        )


# --------------------------------------------------------------------------- analysis

SLEEPS = ("detect", "track")


@dataclass(frozen=True)
class Event:
    pid: int
    what: str  # detect | track (sleeps), item, ready
    kind: str
    game_id: str
    clip_id: str
    start: float
    end: float
    asked: float = 0.0

    @property
    def seconds(self) -> float:
        return self.end - self.start

    @property
    def item(self) -> tuple[str, str, str]:
        return self.kind, self.game_id, self.clip_id


def read_events(log_dir: Path) -> list[Event]:
    events = []
    for path in sorted(log_dir.glob("*.tsv")):
        for line in path.read_text().splitlines():
            pid, what, kind, game_id, clip_id, start, end, asked = line.split("\t")
            events.append(
                Event(
                    int(pid), what, kind, game_id, clip_id, float(start), float(end), float(asked)
                )
            )
    return events


@dataclass(frozen=True)
class Bound:
    gpu_seconds: float
    per_gpu: float  # gpu_seconds / gpus
    chain: float  # the longest game's chain
    chain_game: str

    @property
    def value(self) -> float:
        return max(self.per_gpu, self.chain)


def lower_bound(events: Iterable[Event], gpus: int = GPUS) -> Bound:
    """``max(GPU-seconds / gpus, longest game's chain)`` from the sleeps among ``events``;
    a game's chain is its longest single GPU item (a game's items are independent on the
    GPU: observe needs no team model)."""
    items: dict[tuple[str, str, str], float] = {}
    for e in events:
        if e.what in SLEEPS:
            items[e.item] = items.get(e.item, 0.0) + e.asked
    total = sum(items.values())
    chains: dict[str, float] = {}
    for (_, game_id, _), seconds in items.items():
        chains[game_id] = max(chains.get(game_id, 0.0), seconds)
    game, chain = max(chains.items(), key=lambda kv: kv[1], default=("", 0.0))
    return Bound(total, total / gpus, chain, game)


def utilisation(bound: float, makespan: float) -> float:
    """GPU utilisation: the lower bound over the makespan (0 when nothing ran)."""
    return bound / makespan if makespan > 0 else 0.0


@dataclass(frozen=True)
class Actor:
    """One GPU actor process's time line (seconds from the start of ``execute``)."""

    pid: int
    ready: float  # its models were built
    first: float  # its first item started
    last: float  # its last item ended
    items: int
    held: float  # seconds inside items
    slept: float  # seconds in model calls (replay plus sleep)
    gaps: float  # seconds between its items

    @property
    def cpu_in_items(self) -> float:
        return self.held - self.slept


def actors(events: Sequence[Event], start: float) -> list[Actor]:
    """Per actor process that ran an item, in order of readiness."""
    found = []
    for pid in sorted({e.pid for e in events}):
        mine = [e for e in events if e.pid == pid]
        items = sorted((e for e in mine if e.what == "item"), key=lambda e: e.start)
        if not items:
            continue
        ready = min((e.start for e in mine if e.what == "ready"), default=items[0].start)
        gaps = sum(max(0.0, b.start - a.end) for a, b in itertools.pairwise(items))
        found.append(
            Actor(
                pid=pid,
                ready=ready - start,
                first=items[0].start - start,
                last=items[-1].end - start,
                items=len(items),
                held=sum(e.seconds for e in items),
                slept=sum(e.seconds for e in mine if e.what in SLEEPS),
                gaps=gaps,
            )
        )
    return sorted(found, key=lambda a: a.ready)


# --------------------------------------------------------------------------- archive


@dataclass(frozen=True)
class Archive:
    games: Path
    labels: Path
    clips: int
    frames: int


def archive_spec(games: int, clips: tuple[int, int], seconds: tuple[int, int], seed: int) -> list:
    """Per game, the length in seconds of each of its clips (seeded, uneven)."""
    rng = np.random.default_rng(seed)
    return [
        [
            int(rng.integers(seconds[0], seconds[1] + 1))
            for _ in range(rng.integers(clips[0], clips[1] + 1))
        ]
        for _ in range(games)
    ]


def build_archive(spec: list[list[int]], seed: int, cache: Path | None = None) -> Archive:
    """Write the archive of ``spec`` (or reuse the cached copy of the same spec and seed)."""
    from hoopray.testing.synthetic import make_game, write_clip

    key = hashlib.sha256(json.dumps([spec, seed, FPS, SIZE]).encode()).hexdigest()[:12]
    root = (cache or Path(tempfile.gettempdir())) / f"hoopray-cluster-sim-{key}"
    games, labels = root / "games", root / "labels"
    clips = sum(len(g) for g in spec)
    frames = sum(round(s * FPS) for g in spec for s in g)
    if (root / "complete").exists():
        return Archive(games, labels, clips, frames)
    shutil.rmtree(root, ignore_errors=True)
    for index, lengths in enumerate(spec):
        game = make_game(
            games,
            labels,
            f"game-{index + 1:03d}",
            seed=seed + index,
            clips=len(lengths),
            seconds=1.0 / FPS,  # one frame each; rewritten below at their own lengths
            fps=FPS,
            size=SIZE,
        )
        for clip_spec, video, label, length in zip(
            game.specs, game.clips, game.labels, lengths, strict=True
        ):
            write_clip(replace(clip_spec, frames=round(length * FPS)), video, label)
    (root / "complete").write_text(json.dumps(spec) + "\n")
    return Archive(games, labels, clips, frames)


# --------------------------------------------------------------------------- runs


@dataclass
class Run:
    schedule: str
    makespan: float
    bound: Bound
    slept: float  # GPU-seconds the model calls held (asked = bound.gpu_seconds)
    actors: list[Actor]
    first_item: float  # seconds from the start of execute to the first item
    tail: float  # seconds from the end of the last item to the end of execute
    exit_code: int

    @property
    def utilisation(self) -> float:
        return utilisation(self.bound.value, self.makespan)

    @property
    def utilisation_held(self) -> float:
        """Utilisation with the seconds the model calls held (sleep overshoot included) in
        place of the seconds they asked for: information, not the result."""
        per_gpu = max(self.slept / GPUS, self.bound.chain)
        return utilisation(per_gpu, self.makespan)

    @property
    def held(self) -> float:
        return sum(a.held for a in self.actors)

    @property
    def cpu_in_items(self) -> float:
        """GPU-seconds held inside items outside the model calls' asked time (decode,
        observe's per-frame work, writes, sleep overshoot)."""
        return self.held - self.bound.gpu_seconds

    @property
    def outside_items(self) -> float:
        """GPU-seconds with no item on the GPU (start-up, dispatch, waits, tail)."""
        return GPUS * self.makespan - self.held


def overrides(log_dir: Path, schedule: str, detect_delay: float, track_delay: float) -> list[str]:
    return [
        "models.detector._target_=cluster_sim.SleepyDetector",
        f"+models.detector.delay={detect_delay}",
        f"+models.detector.log_dir={log_dir}",
        "models.tracker._target_=cluster_sim.SleepyTracking",
        f"+models.tracker.delay={track_delay}",
        f"+models.tracker.log_dir={log_dir}",
        f"ray.observe.actors={GPUS}",
        "ray.observe.num_gpus=1",
        "ray.progress_bars=false",
        "output.render=false",
        "output.report=false",
        f"++ray.schedule={schedule}",
    ]


def start_ray(cpus: int) -> None:
    """A local Ray with ``cpus`` fake CPUs and 4 fake GPUs whose workers can import this
    module (the doubles' ``_target_``); returns once its idle workers have started."""
    import ray

    ray.init(
        address="local",  # a new local Ray, never a cluster another user started here
        num_cpus=cpus,
        num_gpus=GPUS,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"PYTHONPATH": f"{REPO}{os.pathsep}{BENCHMARKS}"}},
    )

    @ray.remote(num_cpus=1)
    def ready() -> int:
        return os.getpid()

    ray.get([ready.remote() for _ in range(cpus)])
    time.sleep(2.0)  # let the prestarted workers finish importing before the clock starts


def measure_run(schedule: str, events: Sequence[Event], start: float, end: float, code: int) -> Run:
    items = [e for e in events if e.what == "item"]
    return Run(
        schedule=schedule,
        makespan=end - start,
        bound=lower_bound(events),
        slept=sum(e.seconds for e in events if e.what in SLEEPS),
        actors=actors(events, start),
        first_item=min((e.start for e in items), default=end) - start,
        tail=end - max((e.end for e in items), default=start),
        exit_code=code,
    )


def run_schedule(
    archive: Archive,
    work: Path,
    schedule: str,
    *,
    cpus: int,
    detect_delay: float,
    track_delay: float,
    extra: Sequence[str] = (),
) -> Run:
    """Run ``execute`` once on a fresh output root and a fresh Ray; measure it."""
    import ray

    from hoopray import pipeline
    from hoopray.settings import Settings
    from tests.reliability_corpus import config

    out, log_dir = work / schedule / "out", work / schedule / "events"
    shutil.rmtree(work / schedule, ignore_errors=True)
    cfg = config(
        archive.games,
        archive.labels,
        out,
        *overrides(log_dir, schedule, detect_delay, track_delay),
        *extra,
    )
    settings = Settings.from_cfg(cfg)
    planned = pipeline.plan_run(settings)
    start_ray(cpus)
    try:
        pipeline.configure_ray_data(settings)
        started = time.time()
        summary = pipeline.execute(settings, planned)
        ended = time.time()
    finally:
        ray.shutdown()
    return measure_run(schedule, read_events(log_dir), started, ended, summary.exit_code)


def table(runs: Sequence[Run]) -> str:
    headers = (
        "schedule",
        "makespan s",
        "GPU-s",
        "GPU-s/4",
        "chain s",
        "bound s",
        "utilisation",
        "if held",
        "other in items GPU-s",
        "no item GPU-s",
        "first item s",
        "tail s",
        "exit",
    )
    rows = [
        (
            r.schedule,
            r.makespan,
            r.bound.gpu_seconds,
            r.bound.per_gpu,
            r.bound.chain,
            r.bound.value,
            r.utilisation,
            r.utilisation_held,
            r.cpu_in_items,
            r.outside_items,
            r.first_item,
            r.tail,
            r.exit_code,
        )
        for r in runs
    ]
    return common.format_table(headers, rows)


def actor_table(runs: Sequence[Run]) -> str:
    headers = (
        "schedule",
        "actor",
        "ready s",
        "first item s",
        "last item s",
        "items",
        "in items s",
        "model calls s",
        "other in items s",
        "between items s",
    )
    rows = [
        (
            r.schedule,
            a.pid,
            a.ready,
            a.first,
            a.last,
            a.items,
            a.held,
            a.slept,
            a.cpu_in_items,
            a.gaps,
        )
        for r in runs
        for a in r.actors
    ]
    return common.format_table(headers, rows)


def verdict(runs: Sequence[Run]) -> str:
    """The result line: the streaming run's utilisation (or the only run's)."""
    by = {r.schedule: r for r in runs}
    run = by.get("streaming") or runs[0]
    ok = run.utilisation >= TARGET and run.exit_code == 0
    name = "gpu_utilisation" if run.schedule == "streaming" else f"gpu_utilisation_{run.schedule}"
    return common.result_line(name, round(run.utilisation, 3), f">={TARGET}", ok)


def _range(text: str) -> tuple[int, int]:
    low, _, high = text.partition("-")
    return int(low), int(high or low)


def main(argv: Sequence[str] | None = None) -> list[Run]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--schedule", choices=("both", *SCHEDULES), default="both")
    parser.add_argument("--games", type=int, default=24)
    parser.add_argument("--clips", default="1-6", help="clips per game, a range")
    parser.add_argument("--seconds", default="4-12", help="seconds per clip, a range")
    parser.add_argument("--detect-delay", type=float, default=0.02, help="s per frame detected")
    parser.add_argument("--track-delay", type=float, default=0.05, help="s per frame tracked")
    parser.add_argument("--cpus", type=int, default=16, help="fake CPUs of the local Ray")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra Hydra override for both runs, e.g. ray.observe.in_flight=2",
    )
    parser.add_argument(
        "--quick", action="store_true", help="4 games, 1-2 clips of 1-2 s, 8 fake CPUs"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.games, args.clips, args.seconds, args.cpus = 4, "1-2", "1-2", 8
    common.quiet()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    print(common.machine_line())
    total = time.perf_counter()
    spec = archive_spec(args.games, _range(args.clips), _range(args.seconds), args.seed)
    made = time.perf_counter()
    archive = build_archive(spec, args.seed)
    print(
        f"archive: {args.games} games, {archive.clips} clips ({args.clips} per game, "
        f"{args.seconds} s each), {archive.frames} frames at {FPS:g} fps, "
        f"{SIZE[0]}x{SIZE[1]}; ready in {time.perf_counter() - made:.1f} s ({archive.games})"
    )
    print(
        f"GPU doubles: detect {args.detect_delay:g} s/frame, track {args.track_delay:g} "
        f"s/frame (sleeping); {GPUS} fake GPUs, {GPUS} actors x 1 GPU, {args.cpus} fake CPUs "
        f"on {os.cpu_count()} real cores; render and report off"
        + "".join(f"; {o}" for o in args.set)
    )
    schedules = SCHEDULES if args.schedule == "both" else (args.schedule,)
    runs = []
    with tempfile.TemporaryDirectory(prefix="hoopray-cluster-sim-") as tmp:
        for schedule in schedules:
            runs.append(
                run_schedule(
                    archive,
                    Path(tmp),
                    schedule,
                    cpus=args.cpus,
                    detect_delay=args.detect_delay,
                    track_delay=args.track_delay,
                    extra=args.set,
                )
            )
            print(
                f"{schedule}: makespan {runs[-1].makespan:.1f} s, gpu_utilisation "
                f"{runs[-1].utilisation:.3f}; load avg {os.getloadavg()[0]:.1f}"
            )
    print(actor_table(runs))
    print()
    print(table(runs))
    chain = runs[0].bound
    print(
        f"bound = max(GPU-s / {GPUS}, longest game's chain: {chain.chain:.2f} s in "
        f"{chain.chain_game}); GPU-s = seconds the model calls asked to hold ("
        + ", ".join(f"{r.schedule} held {r.slept:.1f}" for r in runs)
        + f"); {GPUS} x makespan = GPU-s + other in items + no item; 'if held': the "
        "utilisation with the seconds held in place of those asked"
    )
    for run in runs:
        if run.schedule != "streaming":
            print(f"{run.schedule}: gpu_utilisation={run.utilisation:.3f}")
    print(f"total {time.perf_counter() - total:.0f} s")
    print(verdict(runs))
    return runs


if __name__ == "__main__":
    main()
