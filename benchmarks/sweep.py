"""Re-resolving a game from stored observations against observing it.

A synthetic game is observed once (the expensive, model-bound pass:
:func:`hoopray.observe.observe` streams its rows through its ``sink`` into the store's
Parquet writers, marker last, as the production path :func:`hoopray.stages.observe_to_store`
does), and then every setting of a threshold grid re-reads the observations
(:func:`hoopray.outputs.read_observations`) and re-resolves every clip with the game's team
model (:func:`hoopray.resolve.resolve`), as ``jobs/sweep.py`` does. The ratio observe
seconds / re-resolve seconds says how many settings one can try for the price of
observing once.

Observe uses the tiny random-weight models (SAM2 video tracker, SmolVLM + LoRA reader,
SigLIP embedder; the team model, fitted once, is used by resolve) on CPU with the replay
detector (a random RF-DETR detects nothing); ``--models replay`` uses the ground-truth
doubles instead. Real models on a GPU cost more per frame than tiny ones on a CPU, so the
ratio measured here is a floor. Observe keeps reading until 5 reads agree
(``skip_confirmed_reads=5``), the largest ``reads_to_confirm`` of the grid.

Run: ``.venv/bin/python benchmarks/sweep.py [--seconds 10 --clips 2 --size 640x360]``.
The last line is ``result: min_ratio=<smallest ratio over the grid> target=>=100 pass|fail``.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import tempfile
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import common

GRID = {
    "ios_threshold": (0.8, 0.9, 0.95),
    "reads_to_confirm": (2, 3, 5),
    "policy": ("streak", "majority"),
}


@dataclass
class Setting:
    values: dict[str, object]
    seconds: float  # median time to read and resolve every clip of the game
    confirmed: int


def grid(spec: dict[str, tuple] = GRID) -> list[dict[str, object]]:
    names = list(spec)
    return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*spec.values())]


def measure(
    root: Path,
    *,
    seconds: float,
    size: tuple[int, int],
    clips: int = 2,
    models: str = "tiny",
    settings: list[dict[str, object]] | None = None,
    repeats: int = 3,
    tiny: common.TinyDirs | None = None,
) -> tuple[float, int, list[Setting]]:
    """Observe a game once, store it, then time re-resolving it per setting.

    Returns:
        (observe seconds for the whole game, frames observed, one :class:`Setting` each).
    """
    from hoopray import outputs, store
    from hoopray.observe import STREAMED_TABLES, ObserveConfig, observe
    from hoopray.resolve import ResolveConfig, resolve
    from hoopray.roster import load_roster
    from hoopray.testing.replay import ReplayWorld

    if models not in ("tiny", "replay"):
        raise ValueError(f"models must be 'tiny' or 'replay', got {models!r}")
    game = common.make_game(root, seconds=seconds, size=size, clips=clips)
    roster = load_roster(game.roster_path)
    world = ReplayWorld(root / "labels")
    if models == "tiny":
        tiny = tiny or common.build_tiny_models(root / "models")
        chosen = common.tiny_models(tiny, detector=world.detector(), embedder="siglip")
    else:
        from hoopray.models.colour import ColourHistogramEmbedder

        chosen = common.replay_models(world, ColourHistogramEmbedder())
    refs = common.clip_refs(game)
    team_model, naming = common.fit_teams(refs, chosen, roster)
    out = root / "out"
    observe_seconds = 0.0
    frames = 0
    cfg = ObserveConfig(skip_confirmed_reads=5)
    for clip in refs:
        with ExitStack() as stack:
            writers = {
                name: stack.enter_context(
                    store.open_table_writer(
                        str(out), f"observations/{name}", clip.game_id, clip.clip_id
                    )
                )
                for name in STREAMED_TABLES
            }

            def sink(name: str, batch: object, writers: dict = writers) -> None:
                writers[name].write(batch)

            started = time.perf_counter()
            obs = observe(clip, chosen, cfg, sink=sink)
            observe_seconds += time.perf_counter() - started
        frames += int(obs.clip.column("frames")[0].as_py())
        # the marker last: the clip's observations count from here on
        store.write_table(str(out), "observations/clip", clip.game_id, clip.clip_id, obs.clip)

    results = []
    for values in settings if settings is not None else grid():
        resolve_cfg = ResolveConfig.from_mapping(values)
        times = []
        confirmed = 0
        for _ in range(max(1, repeats)):
            started = time.perf_counter()
            confirmed = 0
            for clip in refs:
                stored = outputs.read_observations(str(out), clip.game_id, clip.clip_id)
                ids = resolve(stored, roster, naming, resolve_cfg, team_model=team_model)
                confirmed += ids.tracks.column("status").to_pylist().count("confirmed")
            times.append(time.perf_counter() - started)
        results.append(Setting(values, statistics.median(times), confirmed))
    return observe_seconds, frames, results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each clip")
    parser.add_argument("--clips", type=int, default=2)
    parser.add_argument("--size", default="640x360", help="clip size WxH")
    parser.add_argument("--models", default="tiny", choices=("tiny", "replay"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    common.quiet()
    common.set_torch_threads(args.threads)
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(common.machine_line())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hoopray-sweep-") as tmp:
        observe_s, frames, settings = measure(
            Path(tmp),
            seconds=args.seconds,
            size=(width, height),
            clips=args.clips,
            models=args.models,
            repeats=args.repeats,
        )
    what = (
        "tiny SAM2 + tiny SmolVLM + tiny SigLIP, replay detector"
        if args.models == "tiny"
        else "replay doubles"
    )
    print(
        f"game: {args.clips} clips x {args.seconds:g} s at {width}x{height} ({frames} frames); "
        f"observe ({what}, CPU, torch threads {args.threads}): {observe_s:.1f} s "
        f"({frames / observe_s:.1f} frames/s)"
    )
    headers = (*GRID, "confirmed", "re-resolve ms", "observe/re-resolve")
    rows = [
        (*s.values.values(), s.confirmed, s.seconds * 1e3, observe_s / s.seconds) for s in settings
    ]
    print(common.format_table(headers, rows))
    print("re-resolve = read the stored Parquet observations + resolve every clip (median)")
    print(f"total {time.perf_counter() - started:.0f} s")
    worst = min(observe_s / s.seconds for s in settings)
    print(common.result_line("min_ratio", worst, ">=100", worst >= 100))


if __name__ == "__main__":
    main()
