"""What the trackers share (hoopray.models.tracking): settings, guards, the track book."""

from __future__ import annotations

import inspect
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
from omegaconf import OmegaConf

from hoopray.models.base import CLASS_NAME, SOURCE
from hoopray.models.sam2_meta import Sam2MetaTracking
from hoopray.models.sam2_video import Sam2VideoTracking
from hoopray.models.tracking import (
    MAX_TRACKS,
    ClipGuard,
    TrackBook,
    TrackSettings,
    at_least,
    empty_tracks,
    in_range,
)
from hoopray.types import TrackSource

TRACKER_CONF = Path(__file__).resolve().parents[2] / "conf" / "models" / "tracker"
FRAME = np.zeros((6, 8, 3), np.uint8)


def dets(boxes, conf=None, names=None) -> sv.Detections:
    names = names if names is not None else ["player"] * len(boxes)
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=None if conf is None else np.asarray(conf, dtype=np.float32),
        data={CLASS_NAME: np.asarray(names, dtype=object)},
    )


def book(max_lost_frames: int = 3, max_tracks: int | None = None) -> TrackBook:
    return TrackBook(TrackSettings(max_lost_frames, new_track_iou=0.3, max_tracks=max_tracks))


# ---------------------------------------------------------------- settings


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_lost_frames": -1},
        {"new_track_iou": 0.0},
        {"new_track_iou": 1.5},
        {"new_track_iou": float("nan")},
        {"max_tracks": 0},
        {"max_cond_frames": 0},
    ],
)
def test_settings_reject_bad_values(kwargs) -> None:
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TrackSettings(**kwargs)


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"max_lost_frames": 0, "new_track_iou": 1.0, "max_tracks": None}, {"max_tracks": 1}],
)
def test_settings_accept_edge_values(kwargs) -> None:
    assert TrackSettings(**kwargs) == TrackSettings(**kwargs)


@pytest.mark.parametrize(
    ("value", "low_open", "ok"),
    [(0.0, False, True), (0.0, True, False), (1.0, True, True), (1.01, False, False)],
)
def test_in_range(value: float, low_open: bool, ok: bool) -> None:
    if ok:
        in_range("x", value, 0.0, 1.0, low_open=low_open)
    else:
        with pytest.raises(ValueError, match="x must be in"):
            in_range("x", value, 0.0, 1.0, low_open=low_open)


def test_at_least() -> None:
    at_least("n", 2, 2)
    with pytest.raises(ValueError, match="n must be >= 2; got 1"):
        at_least("n", 1, 2)


def test_max_tracks_default_is_sized_for_basketball() -> None:
    """10 players and 3 referees fit, with room for players entering; at most 20."""
    assert 13 < MAX_TRACKS <= 20
    assert TrackSettings().max_tracks == MAX_TRACKS
    for adapter in (Sam2VideoTracking, Sam2MetaTracking):
        assert inspect.signature(adapter).parameters["max_tracks"].default == MAX_TRACKS
    for option in ("sam2.yaml", "sam2_meta.yaml"):
        assert OmegaConf.load(TRACKER_CONF / option).max_tracks == MAX_TRACKS


# ---------------------------------------------------------------- call-order guards


def test_guard_allows_start_then_steps_then_close() -> None:
    guard = ClipGuard()
    assert guard.start(FRAME) == (6, 8)
    assert guard.step(FRAME) == (6, 8)
    assert guard.close() is True
    assert guard.close() is False


@pytest.mark.parametrize(
    ("calls", "error", "match"),
    [
        (["step"], RuntimeError, "call start"),
        (["start", "start"], RuntimeError, "already"),
        (["close", "start"], RuntimeError, "closed"),
        (["start", "close", "step"], RuntimeError, "closed"),
        (["start", "resized"], ValueError, "size changed"),
        (["grey"], ValueError, "RGB"),
    ],
)
def test_guard_refuses_misuse(calls: list[str], error: type, match: str) -> None:
    guard = ClipGuard()
    actions = {
        "start": lambda: guard.start(FRAME),
        "step": lambda: guard.step(FRAME),
        "close": guard.close,
        "resized": lambda: guard.step(np.zeros((6, 9, 3), np.uint8)),
        "grey": lambda: guard.start(np.zeros((6, 8), np.uint8)),
    }
    for name in calls[:-1]:
        actions[name]()
    with pytest.raises(error, match=match):
        actions[calls[-1]]()


def test_a_bad_first_frame_does_not_start_the_clip() -> None:
    guard = ClipGuard()
    with pytest.raises(ValueError):
        guard.start(np.zeros((6, 8, 4), np.uint8))
    assert guard.start(FRAME) == (6, 8)


# ---------------------------------------------------------------- the track book


@pytest.mark.parametrize(
    ("live", "boxes", "conf", "expected"),
    [
        ([], [], None, []),
        ([], [[0, 0, 10, 10]], None, [0]),
        ([[0, 0, 10, 10]], [[0, 0, 10, 10], [50, 50, 60, 60]], None, [1]),
        ([[0, 0, 10, 10]], [[1, 1, 11, 11]], None, []),  # IoU 0.68: covered
        ([[0, 0, 10, 10]], [[6, 0, 16, 10]], None, [0]),  # IoU 0.25: not covered
        ([], [[0, 0, 10, 10], [1, 0, 11, 10]], [0.5, 0.9], [1]),  # duplicates: most confident
        ([], [[0, 0, 10, 10], [1, 0, 11, 10]], None, [0]),
        ([], [[5, 5, 5, 10], [8, 8, 4, 12]], None, []),  # no area
    ],
)
def test_trackbook_uncovered(live, boxes, conf, expected) -> None:
    tracks = book()
    tracks.add(dets(live), frame=0, origin=TrackSource.PROMPT)
    assert tracks.uncovered(dets(boxes, conf=conf)).tolist() == expected


FAR_APART = [[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [60, 0, 70, 10]]


@pytest.mark.parametrize(
    ("max_tracks", "live", "conf", "expected"),
    [
        (None, 0, None, [0, 1, 2, 3]),
        (4, 0, None, [0, 1, 2, 3]),
        (2, 0, [0.1, 0.9, 0.5, 0.2], [1, 2]),  # the most confident get the places
        (3, 2, [0.1, 0.9, 0.5, 0.2], [1]),
        (2, 2, [0.1, 0.9, 0.5, 0.2], []),  # full
        (1, 0, None, [0]),
    ],
)
def test_trackbook_caps_live_tracks(max_tracks, live, conf, expected) -> None:
    tracks = book(max_tracks=max_tracks)
    tracks.add(
        dets([[200 + 20 * k, 200, 210 + 20 * k, 210] for k in range(live)]), 0, TrackSource.PROMPT
    )
    assert tracks.uncovered(dets(FAR_APART, conf=conf)).tolist() == expected


def test_trackbook_update_reports_drops_and_never_reuses_ids() -> None:
    tracks = book(max_lost_frames=2)
    assert tracks.add(dets(FAR_APART[:2], names=["player", "referee"]), 0, TrackSource.PROMPT) == [
        1,
        2,
    ]
    masks = np.zeros((2, 20, 80), bool)
    masks[0, 2:5, 3:7] = True
    first = tracks.update(0, [1, 2], masks, np.array([0.9, 0.8]))
    assert first.detections.tracker_id.tolist() == [1]
    np.testing.assert_array_equal(first.detections.xyxy, [[3, 2, 7, 5]])
    assert list(first.detections.data[SOURCE]) == ["prompt"]
    assert first.dropped == []
    second = tracks.update(1, [1, 2], masks)
    assert list(second.detections.data[SOURCE]) == ["propagated"]
    assert second.dropped == [2] and tracks.live_ids == [1]
    assert tracks.add(dets(FAR_APART[2:3]), 2, TrackSource.ADDED) == [3]
    with pytest.raises(ValueError, match="2 track ids for 1 masks"):
        tracks.update(2, [1, 3], masks[:1])


def test_empty_tracks_is_a_valid_result() -> None:
    empty = empty_tracks(6, 8)
    assert empty.mask.shape == (0, 6, 8) and empty.tracker_id.shape == (0,)
    assert len(empty.data[SOURCE]) == len(empty.data[CLASS_NAME]) == 0
