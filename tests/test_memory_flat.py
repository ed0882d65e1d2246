"""A long synthetic clip under observe keeps a flat memory profile (issues 7 and 8).

observe runs in a fresh process on a 900-frame clip with the ground-truth replay doubles,
on the production path (:func:`hoopray.stages.observe_to_store`: rows stream into the
store's Parquet writers); a wrapper around the detector samples the process's resident set
size (VmRSS) at every detector call (every 5th frame). The RSS reached by the end of the
second half of the clip may exceed the first half's by a few MiB only: neither the
recorded rows nor the frames and masks observe handles may accumulate. A control run whose
detector keeps every frame it sees shows that the probe catches a leak of that size.

The benchmark with the tiny models and a 3,000-frame clip is ``benchmarks/memory.py``.
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
MAX_GROWTH_MIB = 8.0


def _rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


class SamplingDetector:
    """Delegates to a detector and records (frame index, RSS MiB) at every call; with
    ``leak`` it also keeps a copy of every frame (the control)."""

    def __init__(self, detector: object, leak: bool) -> None:
        self._detector = detector
        self.class_names = detector.class_names  # type: ignore[attr-defined]
        self.leak = leak
        self.kept: list[np.ndarray] = []
        self.samples: list[tuple[int, float]] = []

    def detect(self, frames: list[np.ndarray]) -> list:
        if self.leak:
            self.kept.extend(f.copy() for f in frames)
        self.samples.append((len(self.samples), _rss_mib()))
        return self._detector.detect(frames)  # type: ignore[attr-defined]


def observe_sampled(spec: dict) -> list[tuple[int, float]]:
    """Child side: observe the clip with the replay doubles and return the RSS samples."""
    from hoopray.models.base import Models
    from hoopray.models.replay import ReplayWorld
    from hoopray.observe import ObserveConfig
    from hoopray.stages import observe_to_store
    from hoopray.types import ClipRef

    world = ReplayWorld(spec["labels"])
    detector = SamplingDetector(world.detector(), spec["leak"])
    models = Models(detector=detector, tracking=world.tracking(), reader=world.reader())
    clip = ClipRef(spec["game_id"], spec["clip_id"], spec["clip"], "memory-test")
    obs = observe_to_store(spec["out"], clip, models, ObserveConfig())
    assert obs.clip.column("frames")[0].as_py() == FRAMES
    assert obs.extra["rows"]["tracks"] > 0
    return detector.samples


def half_growth(samples: list[tuple[int, float]]) -> float:
    """Highest RSS of the second half minus highest RSS of the first half (MiB); the first
    tenth is left out (labels loading and first allocations)."""
    if len(samples) < 10:
        raise ValueError(f"too few samples ({len(samples)})")
    rss = [r for _, r in samples]
    start, middle = len(rss) // 10, len(rss) // 2
    return max(rss[middle:]) - max(rss[start:middle])


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from hoopray.synthetic import make_game

    root = tmp_path_factory.mktemp("memory-flat")
    game = make_game(
        root / "games", root / "labels", seed=3, clips=1, seconds=FRAMES / 30, size=SIZE
    )
    return {
        "clip": str(game.clips[0]),
        "game_id": game.game_id,
        "clip_id": game.clip_ids[0],
        "labels": str(root / "labels"),
    }


def run_child(spec: dict) -> list[tuple[int, float]]:
    done = subprocess.run(
        [sys.executable, __file__, json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return [tuple(s) for s in json.loads(done.stdout.strip().splitlines()[-1])]


@pytest.mark.parametrize(
    ("samples", "expected"),
    [
        ([(i, 100.0) for i in range(20)], 0.0),
        ([(i, 100.0 + i) for i in range(20)], 10.0),
        ([(0, 500.0)] + [(i, 100.0) for i in range(1, 20)], 0.0),  # first tenth ignored
    ],
)
def test_half_growth(samples: list[tuple[int, float]], expected: float) -> None:
    assert half_growth(samples) == pytest.approx(expected)


@pytest.mark.parametrize("samples", [[], [(0, 1.0)] * 9])
def test_half_growth_needs_samples(samples: list[tuple[int, float]]) -> None:
    with pytest.raises(ValueError, match="too few samples"):
        half_growth(samples)


@pytest.mark.reliability
@pytest.mark.slow
def test_observe_memory_stays_flat_on_a_long_clip(long_clip: dict, tmp_path: Path) -> None:
    samples = run_child(dict(long_clip, leak=False, out=str(tmp_path / "out")))
    assert len(samples) == FRAMES // 5
    growth = half_growth(samples)
    assert growth < MAX_GROWTH_MIB, f"RSS grew {growth:.1f} MiB in the second half"


@pytest.mark.reliability
@pytest.mark.slow
def test_the_probe_catches_a_frame_leak(long_clip: dict, tmp_path: Path) -> None:
    samples = run_child(dict(long_clip, leak=True, out=str(tmp_path / "out")))
    frame_mib = SIZE[0] * SIZE[1] * 3 / 2**20
    leaked_in_second_half = (FRAMES // 5 // 2) * frame_mib
    assert half_growth(samples) > 0.5 * leaked_in_second_half


if __name__ == "__main__":
    print(json.dumps(observe_sampled(json.loads(sys.argv[1]))))
