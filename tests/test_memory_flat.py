"""A long synthetic clip under observe keeps a flat memory profile (issues 7, 8 and 15).

observe runs in a fresh process on a 900-frame clip with the ground-truth replay doubles,
on the production path (:func:`hoopray.stages.observe_to_store`: rows stream into the
store's Parquet writers; frames decoded and model calls run ahead as the GPU pool's
``decode_ahead`` and ``infer_ahead`` say); a wrapper around the detector samples, at
every detector call (every 5th frame), the process's resident set size (VmRSS) and the
bytes held by Arrow's memory pool (``pyarrow.total_allocated_bytes``, where the record
batches of rows live).
Each is fitted by least squares (Arrow after the first fifth of the clip, RSS over its
second half, see :func:`growths`) and may grow by at most 8 MiB (RSS, any leak: frames,
masks, model state) and half a MiB (Arrow: rows) per 1,000 frames.

The control keeps every record batch of rows that observe hands to the writers, as observe
without a sink once did: about 2 MiB per 1,000 frames of this clip, less than the RSS noise
of a shared machine but plain in Arrow's pool; the probe must catch it
(``test_the_probe_catches_kept_rows``).

The benchmark with the tiny models and 300- and 3,000-frame clips is ``benchmarks/memory.py``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

FRAMES = 900
SIZE = (426, 240)
MAX_RSS_GROWTH = 8.0  # MiB per 1,000 frames: 8 KiB a frame (a frame here is 300 KiB)
MAX_HELD_GROWTH = 0.5  # MiB per 1,000 frames


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class SamplingDetector:
    """Delegates to a detector and records (frame index, RSS MiB, Arrow MiB) at every call."""

    def __init__(self, detector: object) -> None:
        self._detector = detector
        self.class_names = detector.class_names  # type: ignore[attr-defined]
        self.samples: list[tuple[int, float, float]] = []

    def detect(self, frames: list[np.ndarray]) -> list:
        import pyarrow as pa

        held = pa.total_allocated_bytes() / 2**20
        self.samples.append((5 * len(self.samples), _rss_mib(), held))
        return self._detector.detect(frames)  # type: ignore[attr-defined]


def observe_sampled(spec: dict) -> list[tuple[int, float, float]]:
    """Child side: observe the clip with the replay doubles and return the RSS samples.

    With ``spec["keep_rows"]`` (the control) every record batch observe hands to the
    writers is kept as well.
    """
    import hoopray.observe
    from hoopray.models.base import Models
    from hoopray.observe import ObserveConfig
    from hoopray.stages import observe_to_store
    from hoopray.testing.replay import ReplayWorld
    from hoopray.types import ClipRef

    kept: list[object] = []
    if spec["keep_rows"]:
        streaming = hoopray.observe.observe

        def keeping(*args: object, sink: object = None, **kwargs: object) -> object:
            def both(name: str, batch: object) -> None:
                kept.append(batch)
                sink(name, batch)  # type: ignore[misc, operator]

            return streaming(*args, sink=both, **kwargs)  # type: ignore[arg-type]

        hoopray.observe.observe = keeping  # type: ignore[assignment]
    world = ReplayWorld(spec["labels"])
    detector = SamplingDetector(world.detector())
    models = Models(detector=detector, tracking=world.tracking(), reader=world.reader())
    clip = ClipRef(spec["game_id"], spec["clip_id"], spec["clip"], "memory-test")
    obs = observe_to_store(spec["out"], clip, models, ObserveConfig(), **spec["ahead"])
    assert obs.clip.column("frames")[0].as_py() == FRAMES
    assert obs.extra["rows"]["tracks"] > 0
    assert bool(kept) == spec["keep_rows"]
    return detector.samples


def growth_per_1000(frames: list[int], mib: list[float], skip: float = 0.2) -> float:
    """Least-squares slope of ``mib`` over ``frames``, in MiB per 1,000 frames, leaving
    out the first ``skip`` share of the samples."""
    if len(frames) < 10:
        raise ValueError(f"too few samples ({len(frames)})")
    start = int(len(frames) * skip)
    slope = np.polyfit(np.asarray(frames[start:], float), np.asarray(mib[start:], float), 1)[0]
    return float(slope * 1000)


def growths(samples: list[tuple[int, float, float]]) -> tuple[float, float]:
    """(RSS, Arrow-held) growth in MiB per 1,000 frames.

    The RSS is fitted over the second half only: until observe packs its first batch of
    4,096 track rows (about frame 410 here) the rows it holds as Python objects grow by
    a few MiB, and packing them moves the RSS by a few MiB either way.
    """
    frames, rss, held = (list(v) for v in zip(*samples, strict=True))
    return growth_per_1000(frames, rss, skip=0.5), growth_per_1000(frames, held)


def check_flat(samples: list[tuple[int, float, float]]) -> None:
    """The assertion of the flat-profile test."""
    rss, held = growths(samples)
    assert rss <= MAX_RSS_GROWTH, f"RSS grew {rss:.2f} MiB per 1,000 frames"
    assert held <= MAX_HELD_GROWTH, f"Arrow's pool grew {held:.2f} MiB per 1,000 frames"


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from hoopray.stages import read_ahead_depths
    from hoopray.testing.synthetic import make_game
    from tests.conftest import compose_config

    root = tmp_path_factory.mktemp("memory-flat")
    game = make_game(
        root / "games", root / "labels", seed=3, clips=1, seconds=FRAMES / 30, size=SIZE
    )
    return {
        "clip": str(game.clips[0]),
        "game_id": game.game_id,
        "clip_id": game.clip_ids[0],
        "labels": str(root / "labels"),
        "ahead": read_ahead_depths(compose_config().ray.observe),  # as the GPU pool runs it
    }


def run_child(spec: dict) -> list[tuple[int, float, float]]:
    done = subprocess.run(
        [sys.executable, __file__, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [tuple(s) for s in json.loads(done.stdout.strip().splitlines()[-1])]  # type: ignore[misc]


@pytest.mark.parametrize(
    ("mib", "expected"),
    [
        ([100.0] * 20, 0.0),
        ([100.0 + i for i in range(20)], 200.0),  # 1 MiB per 5 frames
        ([500.0] + [100.0] * 19, 0.0),  # the first fifth is left out
        ([100.0 + (i >= 10) for i in range(20)], 17.6),  # one step of 1 MiB
    ],
)
def test_growth_per_1000(mib: list[float], expected: float) -> None:
    frames = [5 * i for i in range(len(mib))]
    assert growth_per_1000(frames, mib) == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("count", [0, 9])
def test_growth_needs_samples(count: int) -> None:
    with pytest.raises(ValueError, match="too few samples"):
        growth_per_1000(list(range(count)), [1.0] * count)


@pytest.mark.parametrize(
    ("rss", "held", "message"),
    [(0.0, 0.0, None), (9.0, 0.0, "RSS grew"), (0.0, 1.0, "Arrow's pool grew")],
)
def test_check_flat(rss: float, held: float, message: str | None) -> None:
    samples = [(5 * i, 100 + rss * i / 200, 1 + held * i / 200) for i in range(40)]
    assert growths(samples) == pytest.approx((rss, held))
    if message is None:
        check_flat(samples)
        return
    with pytest.raises(AssertionError, match=message):
        check_flat(samples)


@pytest.mark.reliability
@pytest.mark.slow
def test_observe_memory_stays_flat_on_a_long_clip(long_clip: dict, tmp_path: Path) -> None:
    samples = run_child(dict(long_clip, keep_rows=False, out=str(tmp_path / "out")))
    assert len(samples) == FRAMES // 5
    check_flat(samples)


@pytest.mark.reliability
@pytest.mark.slow
def test_the_probe_catches_kept_rows(long_clip: dict, tmp_path: Path) -> None:
    samples = run_child(dict(long_clip, keep_rows=True, out=str(tmp_path / "out")))
    with pytest.raises(AssertionError, match="grew"):
        check_flat(samples)


if __name__ == "__main__":
    print(json.dumps(observe_sampled(json.loads(sys.argv[1]))))
