from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from hoopray.geometry import boxes_to_masks
from hoopray.models.base import CLASS_NAME, SOURCE, Tracker, TrackingModel
from hoopray.models.bytetrack import ByteTrackTracking

H, W = 120, 200
FRAME = np.zeros((H, W, 3), dtype=np.uint8)
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def dets(boxes, names=None, conf=None) -> sv.Detections:
    names = names if names is not None else ["player"] * len(boxes)
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=None if conf is None else np.asarray(conf, dtype=np.float32),
        data={CLASS_NAME: np.asarray(names, dtype=object)},
    )


def moving(t: int) -> list[list[float]]:
    """Two boxes moving towards each other by 3 px a frame."""
    return [[10 + 3 * t, 20, 40 + 3 * t, 80], [150 - 3 * t, 30, 180 - 3 * t, 90]]


def assert_valid(result: sv.Detections) -> None:
    assert result.mask is not None and result.mask.dtype == bool
    assert result.mask.shape == (len(result), H, W)
    assert result.tracker_id.shape == (len(result),)
    assert len(result.data[SOURCE]) == len(result.data[CLASS_NAME]) == len(result)
    np.testing.assert_array_equal(result.mask, boxes_to_masks(result.xyxy, (W, H)))


@pytest.mark.parametrize("conf", [None, [0.9, 0.8]])
def test_two_moving_boxes_keep_their_ids(conf) -> None:
    model = ByteTrackTracking()
    assert isinstance(model, TrackingModel)
    tracker = model.open()
    assert isinstance(tracker, Tracker)
    first = tracker.start(FRAME, dets(moving(0), ["player", "referee"], conf))
    assert_valid(first)
    assert first.tracker_id.tolist() == [1, 2]
    assert list(first.data[SOURCE]) == ["prompt", "prompt"]
    for t in range(1, 12):
        # the detector lists them in either order
        order = [1, 0] if t % 2 else [0, 1]
        boxes = [moving(t)[i] for i in order]
        result = tracker.step(FRAME, dets(boxes, ["player"] * 2, conf))
        assert_valid(result)
        assert result.tracker_id.tolist() == [1, 2]
        np.testing.assert_allclose(result.xyxy, moving(t))
        assert list(result.data[SOURCE]) == ["propagated"] * 2
        assert list(result.data[CLASS_NAME]) == ["player", "referee"]
    tracker.close()


def test_box_appearing_later_gets_a_new_id() -> None:
    tracker = ByteTrackTracking(minimum_consecutive_frames=2).open()
    tracker.start(FRAME, dets(moving(0)))
    newcomer = [90, 5, 110, 40]
    seen = []
    for t in range(1, 6):
        boxes = moving(t) + ([newcomer] if t >= 3 else [])
        seen.append(
            tracker.step(FRAME, dets(boxes, ["player", "player", "player-jump-shot"][: len(boxes)]))
        )
    assert [r.tracker_id.tolist() for r in seen] == [[1, 2], [1, 2], [1, 2], [1, 2, 3], [1, 2, 3]]
    assert seen[3].data[SOURCE][2] == "added"
    assert seen[4].data[SOURCE][2] == "propagated"
    assert seen[4].data[CLASS_NAME][2] == "player-jump-shot"


def test_between_detection_frames_the_last_boxes_are_kept() -> None:
    tracker = ByteTrackTracking().open()
    first = tracker.start(FRAME, dets(moving(0)))
    kept = tracker.step(FRAME)
    np.testing.assert_array_equal(kept.xyxy, first.xyxy)
    assert kept.tracker_id.tolist() == [1, 2]
    assert list(kept.data[SOURCE]) == ["propagated"] * 2
    assert list(first.data[SOURCE]) == ["prompt"] * 2  # the earlier result is not mutated


@pytest.mark.parametrize(
    ("start_boxes", "later_boxes", "expected"),
    [
        ([], [], [[], []]),
        ([], None, [[], []]),
        ([[10, 20, 40, 80]], [], [[1], []]),  # lost: not reported
    ],
)
def test_empty_inputs(start_boxes, later_boxes, expected) -> None:
    tracker = ByteTrackTracking().open()
    results = [tracker.start(FRAME, dets(start_boxes))]
    results.append(tracker.step(FRAME, None if later_boxes is None else dets(later_boxes)))
    for result in results:
        assert_valid(result)
    assert [r.tracker_id.tolist() for r in results] == expected


def test_ids_are_not_reused_after_a_track_is_dropped() -> None:
    tracker = ByteTrackTracking(lost_track_buffer=1, minimum_consecutive_frames=1).open()
    tracker.start(FRAME, dets([[10, 20, 40, 80]]))
    for _ in range(3):
        tracker.step(FRAME, dets([]))
    ids = [tracker.step(FRAME, dets([[10, 20, 40, 80]])).tracker_id.tolist() for _ in range(2)]
    assert ids == [[], [2]]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"lost_track_buffer": -1},
        {"minimum_consecutive_frames": 0},
        {"track_activation_threshold": 1.5},
        {"minimum_iou_threshold": -0.1},
    ],
)
def test_bad_settings_raise(kwargs) -> None:
    with pytest.raises(ValueError):
        ByteTrackTracking(**kwargs)


def test_misuse_raises() -> None:
    tracker = ByteTrackTracking().open()
    with pytest.raises(RuntimeError, match="start"):
        tracker.step(FRAME, dets([]))
    tracker.start(FRAME, dets([]))
    with pytest.raises(RuntimeError, match="already"):
        tracker.start(FRAME, dets([]))
    with pytest.raises(ValueError, match="size"):
        tracker.step(np.zeros((H, W + 1, 3), dtype=np.uint8))


def test_config_instantiates() -> None:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=os.fspath(CONF_DIR), version_base=None):
        cfg = compose(config_name=None, overrides=["+models/tracker=bytetrack"])
    model = instantiate(cfg.models.tracker)
    assert isinstance(model, ByteTrackTracking)
    assert model.lost_track_buffer == cfg.models.tracker.lost_track_buffer
