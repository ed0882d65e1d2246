"""Memory of observe on a short and a 10x longer clip: does it grow with the clip?

Two separate synthetic clips are written (:func:`hoopray.testing.synthetic.write_clip` through
``make_game``; different seeds, so the short one is not the start of the long one), of
``--short`` and ``--long`` frames. Each is observed in a fresh Python process, which loads
the models (and the replay doubles' labels of the clip), notes its RSS (the *baseline*),
and then samples its RSS at every detector call (every 5th frame) while observe runs. A
run's *growth* is its highest sample minus its baseline; the result is the growth per 1,000
frames between the two clips, ``(growth(long) - growth(short)) / (long - short) * 1000``,
so the fixed cost of the first frames (SAM2's session, the first batches, the allocator's
pools) cancels out and what remains is what observe keeps per frame. ``ru_maxrss`` (peak
RSS, loading included) is printed for information.

What runs is the production path, :func:`hoopray.stages.observe_to_store`: observe
hands each record batch of rows to the store's streaming Parquet writers as it is
produced, so the observation tables are never held whole in memory; frames are decoded
and the detector and tracker run ahead on threads as the GPU pool sets them
(``decode_ahead``, ``infer_ahead`` of ``conf/ray/local.yaml``).

Models (mode ``tiny``, the metric): the tiny random-weight SAM2 video tracker
(``Sam2VideoTracking`` on ``build_tiny_sam2_video``, 128 px), the tiny SmolVLM + LoRA reader
and the tiny SigLIP embedder, whose team-crop embeddings observe records (observing needs no
team model). The detector is the ground-truth replay detector: a random RF-DETR detects
nothing, so nothing would be tracked or read. Mode ``replay`` (information) replays
detector, tracker and reader from the labels, whose masks are shaped like real ones; random
SAM2 masks are large noisy blobs whose RLE strings are much longer than real masks'.

Left out: memory between the samples (a spike inside one frame), the real models' sizes
(``benchmarks/real_size.py``), and the driver and Ray (``benchmarks/driver_scale.py``).

Run: ``.venv/bin/python benchmarks/memory.py [--short 300 --long 3000 --size 426x240]``.
The last line is ``result: growth_per_1000_frames=<MiB, tiny> target=<=5 pass|fail``.
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


class _SamplingDetector:
    """Delegates to a detector and samples this process's RSS (MiB) at every call."""

    def __init__(self, detector: object) -> None:
        self._detector = detector
        self.class_names = detector.class_names  # type: ignore[attr-defined]
        self.samples: list[float] = []

    def detect(self, frames: list) -> list:
        self.samples.append(common.current_rss_mib())
        return self._detector.detect(frames)  # type: ignore[attr-defined]


def child(spec: dict) -> dict:
    """Observe ``spec["clip"]`` in this process and report its memory.

    Runs in a fresh process (see :func:`run_child`), so the baseline and ``ru_maxrss`` are
    this run's.
    """
    common.quiet()
    common.set_torch_threads(spec["threads"])
    from hoopray.observe import ObserveConfig
    from hoopray.stages import observe_to_store
    from hoopray.testing.replay import ReplayWorld
    from hoopray.types import ClipRef

    world = ReplayWorld(spec["labels"])
    detector = _SamplingDetector(world.detector())
    if spec["mode"] == "tiny":
        dirs = common.TinyDirs(**{k: Path(v) for k, v in spec["tiny"].items()})
        models = common.tiny_models(dirs, detector=detector, embedder="siglip")
    else:
        from hoopray.models.colour import ColourHistogramEmbedder

        models = common.replay_models(world, ColourHistogramEmbedder())
        models.detector = detector  # type: ignore[assignment]
    clip = ClipRef(spec["game_id"], spec["clip_id"], spec["clip"], "memory-benchmark")
    # The replay doubles hold the whole clip's labels once it is first seen (their cost,
    # longer for a longer clip, not observe's): load them before the baseline.
    from hoopray.video import iter_frames

    for _, frame in iter_frames(clip.path, stop=1):
        world.detector().detect([frame])
    baseline = common.current_rss_mib()
    started = time.perf_counter()
    out = Path(spec["out"])
    obs = observe_to_store(str(out), clip, models, ObserveConfig(), **spec["ahead"])
    seconds = time.perf_counter() - started
    detector.samples.append(common.current_rss_mib())
    written = out / "tables" / "observations"
    return {
        "mode": spec["mode"],
        "frames": int(obs.clip.column("frames")[0].as_py()),
        "seconds": seconds,
        "baseline_mib": baseline,
        "highest_mib": max(detector.samples),
        "growth_mib": max(detector.samples) - baseline,
        "peak_mib": common.peak_rss_mib(),
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
    """Write a ``short``- and a ``long``-frame clip (two games, two seeds), then observe
    each in each mode, in a fresh process. Returns the children's reports, short then long
    per mode."""
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        raise ValueError(f"unknown mode {unknown}; known: {MODES}")
    if not 0 < short < long:
        raise ValueError(f"need 0 < short < long, got {short} and {long}")
    clips = {}
    for frames, seed in ((short, 2), (long, 1)):
        game = common.make_game(
            root, seconds=frames / FPS, size=size, clips=1, seed=seed, game_id=f"game-{frames}"
        )
        clips[frames] = common.clip_refs(game)[0]
    reports = []
    for mode in modes:
        spec: dict = {
            "labels": str(root / "labels"),
            "threads": threads,
            "mode": mode,
            "ahead": common.production_ahead(),
        }
        if mode == "tiny":
            tiny = tiny or common.build_tiny_models(root / "models")
            spec["tiny"] = {k: str(v) for k, v in vars(tiny).items() if v is not None}
        for frames, clip in clips.items():
            out = root / "out" / f"{mode}-{frames}"
            run = dict(
                spec,
                clip=str(clip.path),
                game_id=clip.game_id,
                clip_id=clip.clip_id,
                out=str(out),
            )
            reports.append(run_child(run))
    return reports


def growth_rates(reports: list[dict]) -> dict[str, float]:
    """Per mode, MiB per 1,000 frames between its short and long run (reports in
    :func:`measure` order): the growth that the clip's length adds."""
    out = {}
    for short, long in zip(reports[::2], reports[1::2], strict=True):
        frames = long["frames"] - short["frames"]
        out[short["mode"]] = (long["growth_mib"] - short["growth_mib"]) / frames * 1000
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
        f"clips {size[0]}x{size[1]} @ {FPS:g} fps, {args.short} and {args.long} frames (two "
        f"clips); detector: replay (a random RF-DETR finds nothing); torch threads "
        f"{args.threads}; tiny SAM2 new_track_iou {common.TINY_SAM2_NEW_TRACK_IOU:g} (random "
        "masks would otherwise add every detection as a new track)"
    )
    print(
        "path: hoopray.stages.observe_to_store (production): rows stream into the store's "
        "Parquet writers one record batch at a time; read-ahead as the GPU pool's "
        + ", ".join(f"{k} {v}" for k, v in common.production_ahead().items())
    )
    rows = [
        (
            r["mode"],
            r["frames"],
            r["tracks"],
            r["track_rows"],
            r["seconds"],
            r["baseline_mib"],
            r["highest_mib"],
            r["growth_mib"],
            r["peak_mib"],
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
        "baseline MiB",
        "highest MiB",
        "growth MiB",
        "ru_maxrss MiB",
        "Parquet MiB",
    )
    print(common.format_table(headers, rows))
    rates = growth_rates(reports)
    for mode, rate in rates.items():
        print(f"growth per 1,000 frames, {mode}: {rate:.2f} MiB")
    print("baseline: RSS after loading, before observe; growth: highest sample - baseline")
    print(f"total {time.perf_counter() - started:.0f} s")
    metric_mode = "tiny" if "tiny" in rates else next(iter(rates))
    rate = rates[metric_mode]
    print(common.result_line("growth_per_1000_frames", rate, "<=5", rate <= 5))


if __name__ == "__main__":
    main()
