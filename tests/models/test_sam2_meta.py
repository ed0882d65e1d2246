"""Sam2MetaTracking. ``sam2`` is an optional extra, absent from the main environment: the
tests that need it skip there (they were run in a throwaway environment with the extra)."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import types
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
from omegaconf import OmegaConf

from hoopray.masks import masks_to_xyxy
from hoopray.models import sam2_meta
from hoopray.models.base import CLASS_NAME, SOURCE, WeightsNotFoundError
from hoopray.models.sam2_meta import (
    INSTALL_HINT,
    STREAM_NUM_FRAMES,
    MissingDependencyError,
    Sam2MetaTracking,
)

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


def test_hydra_version_base_is_restored_when_unset(monkeypatch) -> None:
    """A fresh process (a Ray actor) has no version base; building must not set or break it."""
    import hydra
    from hydra import version
    from hydra.core.global_hydra import GlobalHydra

    GlobalHydra.instance().clear()
    monkeypatch.setattr(version.VersionBase.instance(), "version_base", version._UNSPECIFIED_)
    monkeypatch.setattr(sam2_meta, "import_sam2", lambda: None)
    monkeypatch.setattr(hydra, "initialize_config_module", lambda *a, **k: version.setbase("1.2"))
    with sam2_meta.sam2_hydra():
        pass
    assert version.getbase() is version._UNSPECIFIED_
    assert not GlobalHydra.instance().is_initialized()


# ------------------------------------------------------------ a fake sam2 predictor


class FakePredictor:
    """Stands in for sam2 1.1.0's ``SAM2VideoPredictor`` on the calls the tracker makes.

    A prompted object's mask is its box; later frames repeat the object's latest mask.
    Every ``_run_single_frame_inference`` call is recorded, with the state's ``num_frames``.
    """

    image_size = 64
    num_maskmem = 7
    memory_temporal_stride_for_eval = 1
    max_obj_ptrs_in_encoder = 16

    def __init__(self) -> None:
        self.runs: list[dict] = []
        self.one_by_one = 0

    def _obj_id_to_idx(self, state, obj_id):
        if obj_id in state["obj_id_to_idx"]:
            return state["obj_id_to_idx"][obj_id]
        index = len(state["obj_id_to_idx"])
        state["obj_id_to_idx"][obj_id] = index
        state["obj_idx_to_id"][index] = obj_id
        state["obj_ids"] = list(state["obj_id_to_idx"])
        for name in ("point_inputs_per_obj", "mask_inputs_per_obj", "frames_tracked_per_obj"):
            state[name][index] = {}
        for name in ("output_dict_per_obj", "temp_output_dict_per_obj"):
            state[name][index] = {"cond_frame_outputs": {}, "non_cond_frame_outputs": {}}
        return index

    def add_new_points_or_box(self, *args, **kwargs):
        self.one_by_one += 1
        raise AssertionError("each call re-renders every object; prompts go in one batch")

    def _run_single_frame_inference(
        self,
        inference_state,
        output_dict,
        frame_idx,
        batch_size,
        is_init_cond_frame,
        point_inputs,
        mask_inputs,
        reverse,
        run_mem_encoder,
        prev_sam_mask_logits=None,
    ):
        import torch

        self.runs.append(
            {
                "frame": frame_idx,
                "batch": batch_size,
                "init": is_init_cond_frame,
                "num_frames": inference_state["num_frames"],
                "points": point_inputs,
            }
        )
        side = self.image_size // 4
        if point_inputs is None:
            stored = {**output_dict["non_cond_frame_outputs"], **output_dict["cond_frame_outputs"]}
            masks = stored[max(stored)]["pred_masks"].clone()
        else:
            masks = torch.full((batch_size, 1, side, side), -10.0)
            corners = (point_inputs["point_coords"] / 4).round().int().tolist()
            for row, ((x1, y1), (x2, y2)) in enumerate(corners):
                masks[row, 0, y1:y2, x1:x2] = 10.0
        output = {
            "maskmem_features": torch.zeros(batch_size, 1) if run_mem_encoder else None,
            "maskmem_pos_enc": None,
            "pred_masks": masks,
            "obj_ptr": torch.zeros(batch_size, 4),
            "object_score_logits": torch.full((batch_size, 1), 5.0),
        }
        return output, masks

    def propagate_in_video_preflight(self, state):
        import torch

        for index in range(len(state["obj_ids"])):
            temporary = state["temp_output_dict_per_obj"][index]
            for key, outputs in temporary.items():
                for frame_idx, output in outputs.items():
                    if output["maskmem_features"] is None:
                        output["maskmem_features"] = torch.zeros(1, 1)
                    state["output_dict_per_obj"][index][key][frame_idx] = output
                outputs.clear()

    def _get_orig_video_res_output(self, state, masks):
        import torch

        size = (state["video_height"], state["video_width"])
        return masks, torch.nn.functional.interpolate(masks, size=size, mode="nearest")

    def remove_object(self, state, obj_id, need_output=True):
        keep = [i for i in state["obj_ids"] if i != obj_id]
        old = [state["obj_id_to_idx"][i] for i in keep]
        for name in (
            "point_inputs_per_obj",
            "mask_inputs_per_obj",
            "output_dict_per_obj",
            "temp_output_dict_per_obj",
            "frames_tracked_per_obj",
        ):
            state[name] = {new: state[name][index] for new, index in enumerate(old)}
        state["obj_id_to_idx"] = {i: new for new, i in enumerate(keep)}
        state["obj_idx_to_id"] = dict(enumerate(keep))
        state["obj_ids"] = keep


@pytest.fixture
def fake(monkeypatch, checkpoint_file) -> tuple[Sam2MetaTracking, FakePredictor]:
    """The adapter built through its own ``__init__`` on a :class:`FakePredictor`."""
    predictor = FakePredictor()
    build = types.SimpleNamespace(build_sam2_video_predictor=lambda *args, **kwargs: predictor)
    monkeypatch.setattr(sam2_meta, "import_sam2", lambda: build)
    monkeypatch.setattr(sam2_meta, "sam2_hydra", contextlib.nullcontext)
    return Sam2MetaTracking(checkpoint=os.fspath(checkpoint_file), device="cpu"), predictor


def test_a_frames_new_prompts_are_added_in_one_batched_call(fake) -> None:
    model, predictor = fake
    tracker = model.open()
    clip = frames(4)
    first = tracker.start(clip[0], dets(BOXES[:2]))
    tracker.step(clip[1])
    later = [[10, 85, 30, 95], [120, 70, 150, 90]]
    added = tracker.step(clip[2], dets([BOXES[0], *later], ["player", "player", "referee"]))
    tracker.step(clip[3])
    assert predictor.one_by_one == 0
    prompts = [run for run in predictor.runs if run["init"]]
    assert [(run["frame"], run["batch"]) for run in prompts] == [(0, 2), (2, 2)]
    scale = np.array([W, H], np.float32) / FakePredictor.image_size
    for run, boxes in zip(prompts, (BOXES[:2], later), strict=True):
        np.testing.assert_allclose(
            run["points"]["point_coords"].numpy() * scale, np.reshape(boxes, (2, 2, 2)), atol=1e-4
        )
        assert run["points"]["point_labels"].tolist() == [[2, 3], [2, 3]]
    propagated = [(run["frame"], run["batch"]) for run in predictor.runs if not run["init"]]
    assert propagated == [(1, 1), (1, 1), (2, 1), (2, 1), (3, 1), (3, 1), (3, 1), (3, 1)]
    assert first.tracker_id.tolist() == [1, 2]
    assert added.tracker_id.tolist() == [1, 2, 3, 4]
    assert list(added.data[SOURCE]) == ["propagated", "propagated", "added", "added"]
    assert list(added.data[CLASS_NAME]) == ["player", "player", "player", "referee"]
    np.testing.assert_allclose(first.xyxy, BOXES[:2], atol=10)  # one low-res mask cell


def test_pointer_encodings_are_those_of_a_whole_video(fake) -> None:
    """SAM2 divides pointer offsets by min(num_frames, max_obj_ptrs_in_encoder) - 1."""
    model, predictor = fake
    tracker = model.open()
    clip = frames(2)
    tracker.start(clip[0], dets(BOXES[:2]))
    for t in range(1, 24):
        tracker.step(clip[t % 2], dets([BOXES[2]]) if t == 5 else None)
    limit = FakePredictor.max_obj_ptrs_in_encoder
    assert {min(run["num_frames"], limit) - 1 for run in predictor.runs} == {limit - 1}
    assert all(run["frame"] < run["num_frames"] for run in predictor.runs)
    assert STREAM_NUM_FRAMES >= 2**31 - 1


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


def test_streaming_matches_sam2s_own_predictor(tiny_checkpoint) -> None:
    """Same mask logits as SAM2's ``add_new_points_or_box`` + ``propagate_in_video`` on the
    whole clip: batched prompts and the pointer encodings change nothing."""
    import torch

    model = tracking(tiny_checkpoint, clean_max_distance=None)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    clip = [np.roll(base, 2 * t, axis=1) for t in range(20)]

    def logits(state, t: int) -> torch.Tensor:
        key = "cond_frame_outputs" if t == 0 else "non_cond_frame_outputs"
        outputs = state["output_dict_per_obj"]
        return torch.cat([outputs[i][key][t]["pred_masks"] for i in range(len(BOXES))])

    tracker = model.open()
    tracker.start(clip[0], dets(BOXES))
    streamed = [logits(tracker._state, 0)]
    for t in range(1, len(clip)):
        tracker.step(clip[t])
        streamed.append(logits(tracker._state, t))

    state = model.open()._new_state(H, W)
    state["images"] = {t: tracker._pixels(frame) for t, frame in enumerate(clip)}
    state["num_frames"] = len(clip)
    with torch.inference_mode():
        for obj_id, box in enumerate(BOXES, start=1):
            model.predictor.add_new_points_or_box(
                state, frame_idx=0, obj_id=obj_id, box=np.asarray(box, np.float32)
            )
        for _ in model.predictor.propagate_in_video(state):
            pass
    for t, ours in enumerate(streamed):
        torch.testing.assert_close(ours, logits(state, t), rtol=0, atol=1e-5, msg=f"frame {t}")
