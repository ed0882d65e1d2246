"""observe records every detection of every detection frame (observations/detections),
and resolve gives identities/frames the class of the detection matched to each track."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import supervision as sv

from hoopray import outputs, store
from hoopray.observe import ObserveConfig, observe
from hoopray.resolve import resolve
from tests.test_observe import A, B, FakeDetector, detections, rig, still  # noqa: F401 (rig)

BALL = (42.0, 30.0, 48.0, 36.0)
REFEREE = (150.0, 20.0, 170.0, 80.0)


@dataclass
class CourtDetector:
    """The rig's detector, plus a ball and a referee on every frame; player A is in
    possession on the frames of ``possession``."""

    inner: FakeDetector
    possession: frozenset[int] = frozenset()

    @property
    def class_names(self) -> list[str]:
        return [*self.inner.class_names, "player-in-possession", "ball", "referee"]

    def detect(self, frames: list[np.ndarray]) -> list[sv.Detections]:
        out = []
        for found in self.inner.detect(frames):
            index = self.inner.calls[-len(frames) + len(out)]
            names = np.asarray(found.data["class_name"], dtype=object).copy()
            if index in self.possession and len(names):
                names[0] = "player-in-possession"
            boxes = [*np.asarray(found.xyxy).tolist(), BALL, REFEREE]
            out.append(detections(boxes, [*names.tolist(), "ball", "referee"]))
        return out


@pytest.fixture
def court(rig):  # noqa: F811 (the rig of tests/test_observe.py)
    """test_observe's rig with the court detector: ``court(scene, frames, possession)``."""

    def make(scene: dict, frames: int, possession: set[int] | None = None):
        r = rig(scene, frames)
        r.detector = CourtDetector(r.detector, frozenset(possession or ()))
        return r

    return make


def _observe(court, scene: dict, frames: int, possession: set[int] | None = None):
    r = court(scene, frames, possession)
    return r, observe(r.clip, r.models(), ObserveConfig(skip_confirmed_reads=None))


def test_every_detection_of_every_detection_frame_is_recorded(court) -> None:
    _, obs = _observe(court, still(11, [A, B]), 11)
    rows = obs.detections.to_pylist()
    assert [r["frame"] for r in rows] == [0] * 6 + [5] * 6 + [10] * 6  # detect_stride 5
    first = [(r["class_name"], r["role"], r["track_id"]) for r in rows[:6]]
    assert first == [
        ("player", "player", 1),
        ("player", "player", 2),
        ("number", "number", None),
        ("number", "number", None),
        ("ball", "ball", None),
        ("referee", "referee", None),
    ]
    assert (rows[4]["x1"], rows[4]["y2"]) == (BALL[0], BALL[3])
    assert obs.extra["rows"]["detections"] == 18
    assert (obs.game_id, obs.clip_id) == ("game", "clip")


def test_detections_before_any_player_are_kept(court) -> None:
    scene = {i: ([A] if i >= 5 else []) for i in range(6)}
    _, obs = _observe(court, scene, 6)
    rows = [(r["frame"], r["class_name"], r["track_id"]) for r in obs.detections.to_pylist()]
    assert rows[:2] == [(0, "ball", None), (0, "referee", None)]  # no track yet
    assert (5, "player", 1) in rows


def test_one_frame_clip_without_detections(court) -> None:
    r = court({0: []}, 1)
    r.detector = r.detector.inner  # nothing at all on the frame
    obs = observe(r.clip, r.models(), ObserveConfig())
    assert obs.detections.num_rows == 0 and obs.tracks.num_rows == 0


def test_frames_carry_the_player_class_where_a_detection_matched(court) -> None:
    _, obs = _observe(court, still(11, [A, B]), 11, possession={5})
    frames = resolve(obs, None, None).frames.to_pylist()
    classes = {(r["frame"], r["track_id"]): r["class_name"] for r in frames if r["class_name"]}
    assert classes == {
        (0, 1): "player",
        (0, 2): "player",
        (5, 1): "player-in-possession",
        (5, 2): "player",
        (10, 1): "player",
        (10, 2): "player",
    }


@pytest.mark.parametrize("chunk", [4, 4096])
def test_detections_stream_into_the_store(court, tmp_path, monkeypatch, chunk: int) -> None:
    import hoopray.observe
    from hoopray.stages import observe_to_store

    r = court(still(11, [A, B]), 11)
    kept = observe(r.clip, r.models(), ObserveConfig())
    monkeypatch.setattr(hoopray.observe, "_CHUNK_ROWS", chunk)
    r = court(still(11, [A, B]), 11)
    out = str(tmp_path / "out")
    observe_to_store(out, r.clip, r.models(), ObserveConfig())
    read = outputs.read_observations(out, "game", "clip")
    assert read.detections.equals(kept.detections)
    assert outputs.read_detections(out, "game", "clip").equals(kept.detections)
    outputs.delete_observations(out, "game", "clip")
    assert store.read_partition(out, "observations/detections", "game", "clip") is None
