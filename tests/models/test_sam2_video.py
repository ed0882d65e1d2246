"""Sam2VideoTracking on a tiny randomly initialised model loaded through from_pretrained.

A random model's masks carry no meaning, so tests that need masks to be present or absent
force them with the binarisation threshold: ``ALWAYS_ON`` is below every logit SAM2 can
produce (it clamps "no object" to -1024), ``ALWAYS_OFF`` above every logit.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import supervision as sv

from hoopray.masks import masks_to_xyxy
from hoopray.models.base import CLASS_NAME, SOURCE, Tracker, TrackingModel, WeightsNotFoundError
from hoopray.models.sam2_video import Sam2VideoTracking
from hoopray.models.tracking import MAX_TRACKS

H, W = 96, 160
ALWAYS_ON = -1e4
ALWAYS_OFF = 1e4
BOXES = [[10, 10, 50, 80], [70, 20, 110, 90], [120, 10, 150, 60]]
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(count)]


def dets(boxes: list[list[float]], names: list[str] | None = None, conf=None) -> sv.Detections:
    names = names if names is not None else ["player"] * len(boxes)
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        confidence=None if conf is None else np.asarray(conf, dtype=np.float32),
        data={CLASS_NAME: np.asarray(names, dtype=object)},
    )


def tracking(directory: os.PathLike[str], **kwargs) -> Sam2VideoTracking:
    return Sam2VideoTracking(model=os.fspath(directory), device="cpu", **kwargs)


def assert_valid(result: sv.Detections) -> None:
    assert result.mask is not None and result.mask.dtype == bool
    assert result.mask.shape == (len(result), H, W)
    assert result.tracker_id is not None and result.tracker_id.shape == (len(result),)
    assert len(result.data[SOURCE]) == len(result) == len(result.data[CLASS_NAME])
    np.testing.assert_array_equal(result.xyxy, masks_to_xyxy(result.mask))
    assert all(m.any() for m in result.mask)


# ---------------------------------------------------------------- the tracker


@pytest.mark.parametrize("count", [0, 1, 3])
def test_start_prompts_ids_from_one(tiny_sam2_dir, count: int) -> None:
    model = tracking(tiny_sam2_dir, mask_threshold=ALWAYS_ON)
    assert isinstance(model, TrackingModel)
    tracker = model.open()
    assert isinstance(tracker, Tracker)
    names = ["player", "player-jump-shot", "referee"][:count]
    result = tracker.start(frames(1)[0], dets(BOXES[:count], names))
    assert_valid(result)
    assert result.tracker_id.tolist() == list(range(1, count + 1))
    assert list(result.data[SOURCE]) == ["prompt"] * count
    assert list(result.data[CLASS_NAME]) == names
    tracker.close()


def test_masks_at_default_threshold_are_consistent(tiny_sam2_dir) -> None:
    tracker = tracking(tiny_sam2_dir).open()
    clip = frames(4)
    results = [tracker.start(clip[0], dets(BOXES[:2]))]
    results += [tracker.step(frame) for frame in clip[1:]]
    for result in results:
        assert_valid(result)
        assert set(result.tracker_id.tolist()) <= {1, 2}
        assert result.confidence is not None
        assert ((result.confidence >= 0) & (result.confidence <= 1)).all()


def test_player_added_mid_clip_gets_new_id(tiny_sam2_dir) -> None:
    tracker = tracking(tiny_sam2_dir, mask_threshold=ALWAYS_ON).open()
    clip = frames(9)
    seen = [tracker.start(clip[0], dets(BOXES[:2]))]
    for t, frame in enumerate(clip[1:], start=1):
        new = dets([BOXES[2]], ["player-layup-dunk"]) if t == 5 else None
        seen.append(tracker.step(frame, new))
    for t, result in enumerate(seen):
        assert_valid(result)
        assert result.tracker_id.tolist() == ([1, 2] if t < 5 else [1, 2, 3])
    assert dict(zip(seen[5].tracker_id, seen[5].data[SOURCE], strict=True)) == {
        1: "propagated",
        2: "propagated",
        3: "added",
    }
    assert set(seen[6].data[SOURCE]) == {"propagated"}
    assert seen[8].data[CLASS_NAME][2] == "player-layup-dunk"


def test_covered_detection_starts_no_track(tiny_sam2_dir) -> None:
    tracker = tracking(tiny_sam2_dir, mask_threshold=ALWAYS_ON).open()
    clip = frames(2)
    tracker.start(clip[0], dets(BOXES[:1]))
    # every mask is the whole frame here, so a whole-frame detection is covered by track 1
    result = tracker.step(clip[1], dets([[0, 0, W, H]]))
    assert result.tracker_id.tolist() == [1]


@pytest.mark.parametrize("max_lost", [1, 3])
def test_tracks_with_forced_empty_masks_are_dropped(tiny_sam2_dir, max_lost: int) -> None:
    tracker = tracking(tiny_sam2_dir, mask_threshold=ALWAYS_OFF, max_lost_frames=max_lost).open()
    clip = frames(max_lost + 1)
    results = [tracker.start(clip[0], dets(BOXES[:2]))]
    for frame in clip[1:max_lost]:
        assert tracker.live_ids == [1, 2]
        results.append(tracker.step(frame))
    assert all(len(r) == 0 and r.mask.shape == (0, H, W) for r in results)
    assert tracker.live_ids == []
    assert tracker.footprint()["objects"] == 0
    tracker.step(clip[max_lost], dets([BOXES[2]]))
    assert tracker.live_ids == ([3] if max_lost > 1 else [])  # ids are never reused


def test_dropping_one_track_keeps_the_others(tiny_sam2_dir, monkeypatch) -> None:
    tracker = tracking(tiny_sam2_dir, mask_threshold=ALWAYS_ON, max_lost_frames=2).open()
    book = tracker._book
    real_update = book.update

    def blank_track_1(frame, track_ids, masks, confidence=None):
        masks = masks.copy()
        masks[[i for i, t in enumerate(track_ids) if t == 1]] = False
        return real_update(frame, track_ids, masks, confidence)

    monkeypatch.setattr(book, "update", blank_track_1)
    clip = frames(6)
    ids = [tracker.start(clip[0], dets(BOXES)).tracker_id.tolist()]
    ids += [tracker.step(frame).tracker_id.tolist() for frame in clip[1:]]
    assert ids == [[2, 3]] * 6
    assert tracker.live_ids == [2, 3]
    assert tracker._session.obj_ids == [2, 3]
    assert sorted(tracker._session.output_dict_per_obj) == [0, 1]


@pytest.mark.slow
def test_session_memory_is_bounded(tiny_sam2_dir) -> None:
    model = tracking(tiny_sam2_dir, mask_threshold=ALWAYS_ON)
    tracker = model.open()
    rng = np.random.default_rng(1)
    frame = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    tracker.start(frame, dets(BOXES[:2]))
    sizes = {}
    for t in range(1, 121):
        frame = np.roll(frame, 1, axis=1)
        assert tracker.step(frame).tracker_id.tolist() == [1, 2]
        if t in (30, 120):
            sizes[t] = tracker.footprint()
    assert sizes[30] == sizes[120]
    assert sizes[120]["frames"] == 1
    assert sizes[120]["non_cond_outputs"] <= 2 * model.window
    assert sizes[120]["cond_outputs"] == 2
    tracker.close()


def test_pruning_does_not_change_the_results(tiny_sam2_dir, monkeypatch) -> None:
    """Pruning only forgets what SAM2 never reads again: same output as keeping everything."""
    from hoopray.models import sam2_video

    def run(count: int) -> list[sv.Detections]:
        tracker = tracking(tiny_sam2_dir, clean_max_distance=None).open()
        clip = frames(count, seed=3)
        return [tracker.start(clip[0], dets(BOXES))] + [tracker.step(f) for f in clip[1:]]

    count = 24  # past max_object_pointers_in_encoder (16), so old outputs are pruned
    pruned = run(count)
    monkeypatch.setattr(sam2_video, "prune_session", lambda *args, **kwargs: None)
    kept = run(count)
    for a, b in zip(pruned, kept, strict=True):
        np.testing.assert_array_equal(a.tracker_id, b.tracker_id)
        np.testing.assert_array_equal(a.mask, b.mask)
        np.testing.assert_allclose(a.confidence, b.confidence, rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_lost_frames": -1},
        {"new_track_iou": 0.0},
        {"dtype": "int8"},
        {"max_cond_frames": 0},
        {"device": "tpu9"},
    ],
)
def test_bad_settings_raise(tiny_sam2_dir, kwargs) -> None:
    with pytest.raises(ValueError):
        Sam2VideoTracking(model=os.fspath(tiny_sam2_dir), **{"device": "cpu", **kwargs})


def test_misuse_raises(tiny_sam2_dir) -> None:
    tracker = tracking(tiny_sam2_dir, mask_threshold=ALWAYS_ON).open()
    clip = frames(2)
    with pytest.raises(RuntimeError, match="start"):
        tracker.step(clip[0])
    tracker.start(clip[0], dets(BOXES[:1]))
    with pytest.raises(RuntimeError, match="already"):
        tracker.start(clip[1], dets(BOXES[:1]))
    with pytest.raises(ValueError, match="size"):
        tracker.step(np.zeros((H + 2, W, 3), dtype=np.uint8))
    tracker.close()
    with pytest.raises(RuntimeError, match="closed"):
        tracker.step(clip[1])


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("hoopray-tests/sam2-not-in-any-cache", "hoopray-tests/sam2-not-in-any-cache"),
        ("/nonexistent/hoopray/sam2", "/nonexistent/hoopray/sam2"),
    ],
)
def test_missing_weights_fail_fast_offline(monkeypatch, no_network, name, expected) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(WeightsNotFoundError) as caught:
        Sam2VideoTracking(model=name, device="cpu")
    assert expected in str(caught.value)
    assert "models.tracker.model" in str(caught.value)


@pytest.mark.parametrize(
    ("option", "hub_id"),
    [("sam2", "facebook/sam2.1-hiera-large"), ("sam2_tiny", "facebook/sam2.1-hiera-tiny")],
)
def test_config_options_instantiate(tiny_sam2_dir, option: str, hub_id: str) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=os.fspath(CONF_DIR), version_base=None):
        cfg = compose(config_name=None, overrides=[f"+models/tracker={option}"])
        assert cfg.models.tracker.model == hub_id
        cfg = compose(
            config_name=None,
            overrides=[
                f"+models/tracker={option}",
                f"models.tracker.model={os.fspath(tiny_sam2_dir)}",
                "models.tracker.device=cpu",
            ],
        )
    assert isinstance(instantiate(cfg.models.tracker), Sam2VideoTracking)


def test_max_tracks_defaults_to_basketball_size(tiny_sam2_dir) -> None:
    assert MAX_TRACKS <= 20
    model = tracking(tiny_sam2_dir, mask_threshold=ALWAYS_ON)
    assert model.settings.max_tracks == MAX_TRACKS
    far_apart = [[6 * k, 0, 6 * k + 4, 4] for k in range(MAX_TRACKS + 5)]
    result = model.open().start(np.zeros((H, W, 3), np.uint8), dets(far_apart))
    assert result.tracker_id.tolist() == list(range(1, MAX_TRACKS + 1))
