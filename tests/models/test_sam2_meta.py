"""Sam2MetaTracking. ``sam2`` is an optional extra, absent from the main environment: the
tests that need it skip there (they were run in a throwaway environment with the extra)."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
from omegaconf import OmegaConf

from hoopray.masks import masks_to_xyxy
from hoopray.models.base import CLASS_NAME, SOURCE, WeightsNotFoundError
from hoopray.models.sam2_meta import INSTALL_HINT, MissingDependencyError, Sam2MetaTracking

H, W = 96, 160
ALWAYS_ON = -1e4  # below every mask logit (missing objects are -1024): every pixel is on
ALWAYS_OFF = 1e4
BOXES = [[10, 10, 50, 80], [70, 20, 110, 90], [120, 10, 150, 60]]
CONF_DIR = Path(__file__).resolve().parents[2] / "conf"
TINY_CONFIG = "configs/sam2.1/sam2.1_hiera_t.yaml"
TINY_OVERRIDES = ["++model.image_size=128"]


def frames(count: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 255, (H, W, 3), dtype=np.uint8) for _ in range(count)]


def dets(boxes, names=None) -> sv.Detections:
    names = names if names is not None else ["player"] * len(boxes)
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(-1, 4),
        data={CLASS_NAME: np.asarray(names, dtype=object)},
    )


@pytest.fixture
def checkpoint_file(tmp_path: Path) -> Path:
    path = tmp_path / "sam2.1_hiera_tiny.pt"
    path.write_bytes(b"not read before sam2 is imported")
    return path


def test_missing_sam2_says_how_to_install(monkeypatch, checkpoint_file) -> None:
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    monkeypatch.setitem(sys.modules, "sam2", None)  # import sam2 -> ImportError
    monkeypatch.setitem(sys.modules, "sam2.build_sam", None)
    with initialize_config_dir(config_dir=os.fspath(CONF_DIR), version_base=None):
        application = GlobalHydra.instance().hydra
        with pytest.raises(MissingDependencyError) as caught:
            Sam2MetaTracking(checkpoint=os.fspath(checkpoint_file), device="cpu")
        assert GlobalHydra.instance().hydra is application
    assert isinstance(caught.value, RuntimeError)
    assert INSTALL_HINT in str(caught.value)


@pytest.mark.parametrize("name", ["", "/nonexistent/sam2.1_hiera_large.pt"])
def test_missing_checkpoint_fails_fast(tmp_path, name: str) -> None:
    missing = name or os.fspath(tmp_path / "absent.pt")
    with pytest.raises(WeightsNotFoundError) as caught:
        Sam2MetaTracking(checkpoint=missing, device="cpu")
    assert missing in str(caught.value)
    assert "models.tracker.checkpoint" in str(caught.value)


@pytest.mark.parametrize("kwargs", [{"max_lost_frames": -1}, {"max_cond_frames": 0}])
def test_bad_settings_raise(checkpoint_file, kwargs) -> None:
    with pytest.raises(ValueError):
        Sam2MetaTracking(checkpoint=os.fspath(checkpoint_file), device="cpu", **kwargs)


def test_config_needs_a_checkpoint(tmp_path) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    with initialize_config_dir(config_dir=os.fspath(CONF_DIR), version_base=None):
        cfg = compose(config_name=None, overrides=["+models/tracker=sam2_meta"])
        assert cfg.models.tracker._target_ == "hoopray.models.sam2_meta.Sam2MetaTracking"
        assert OmegaConf.is_missing(cfg.models.tracker, "checkpoint")
        missing = os.fspath(tmp_path / "sam2.1_hiera_large.pt")
        cfg = compose(
            config_name=None,
            overrides=["+models/tracker=sam2_meta", f"models.tracker.checkpoint={missing}"],
        )
    with pytest.raises(InstantiationException) as caught:  # Hydra wraps the adapter's error
        instantiate(cfg.models.tracker)
    assert isinstance(caught.value.__cause__, WeightsNotFoundError)


# ------------------------------------------------------------ with the sam2 package


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A randomly initialised hiera-t at 128 px, saved the way Meta ships checkpoints."""
    if importlib.util.find_spec("sam2") is None:  # not importorskip: importing sam2 sets up Hydra
        pytest.skip("the optional package sam2 is not installed")
    import torch

    from hoopray.models.sam2_meta import import_sam2, sam2_hydra

    torch.manual_seed(0)
    with sam2_hydra():
        model = import_sam2().build_sam2(
            TINY_CONFIG, device="cpu", hydra_overrides_extra=TINY_OVERRIDES
        )
    path = tmp_path_factory.mktemp("sam2_meta") / "sam2.1_hiera_tiny.pt"
    torch.save({"model": model.state_dict()}, path)
    return path


def tracking(checkpoint: Path, **kwargs) -> Sam2MetaTracking:
    return Sam2MetaTracking(
        checkpoint=os.fspath(checkpoint),
        config=TINY_CONFIG,
        device="cpu",
        overrides=TINY_OVERRIDES,
        **kwargs,
    )


def test_tracks_prompts_additions_and_drops(tiny_checkpoint) -> None:
    tracker = tracking(tiny_checkpoint, mask_threshold=ALWAYS_ON).open()
    clip = frames(8)
    seen = [tracker.start(clip[0], dets(BOXES[:2]))]
    for t, frame in enumerate(clip[1:], start=1):
        seen.append(tracker.step(frame, dets([BOXES[2]], ["referee"]) if t == 4 else None))
    for t, result in enumerate(seen):
        assert result.mask.shape == (len(result), H, W) and result.mask.dtype == bool
        np.testing.assert_array_equal(result.xyxy, masks_to_xyxy(result.mask))
        assert result.tracker_id.tolist() == ([1, 2] if t < 4 else [1, 2, 3])
    assert list(seen[0].data[SOURCE]) == ["prompt", "prompt"]
    assert list(seen[4].data[SOURCE]) == ["propagated", "propagated", "added"]
    assert seen[7].data[CLASS_NAME][2] == "referee"


def test_empty_start_and_forced_empty_masks(tiny_checkpoint) -> None:
    tracker = tracking(tiny_checkpoint, mask_threshold=ALWAYS_OFF, max_lost_frames=2).open()
    clip = frames(4)
    empty = tracker.start(clip[0], dets([]))
    assert empty.mask.shape == (0, H, W) and empty.tracker_id.shape == (0,)
    tracker.step(clip[1], dets(BOXES[:2]))
    assert tracker.live_ids == [1, 2]
    assert len(tracker.step(clip[2])) == 0
    assert tracker.live_ids == [] and tracker.footprint()["objects"] == 0
    tracker.step(clip[3], dets([BOXES[2]]))
    assert tracker.live_ids == [3]


@pytest.mark.slow
def test_state_is_bounded(tiny_checkpoint) -> None:
    model = tracking(tiny_checkpoint, mask_threshold=ALWAYS_ON)
    tracker = model.open()
    clip = frames(2)
    tracker.start(clip[0], dets(BOXES[:2]))
    sizes = {}
    for t in range(1, 41):
        tracker.step(clip[t % 2])
        if t in (25, 40):
            sizes[t] = tracker.footprint()
    assert sizes[25] == sizes[40]
    assert sizes[40]["frames"] == 1
    assert sizes[40]["non_cond_outputs"] <= 2 * model.window


def test_application_hydra_is_untouched(tiny_checkpoint) -> None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    with initialize_config_dir(config_dir=os.fspath(CONF_DIR), version_base=None):
        application = GlobalHydra.instance().hydra
        tracking(tiny_checkpoint)
        assert GlobalHydra.instance().hydra is application
        cfg = compose(config_name=None, overrides=["+models/tracker=sam2"])
        assert cfg.models.tracker.model.startswith("facebook/")


def test_checkpoint_with_unexpected_keys_is_refused(tiny_checkpoint, tmp_path) -> None:
    import torch

    state = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)
    state["model"]["not_a_parameter"] = torch.zeros(1)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    with pytest.raises(RuntimeError, match="does not fit config"):
        tracking(bad)
