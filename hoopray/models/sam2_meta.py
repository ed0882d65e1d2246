"""SAM2.1 video tracking with Meta's ``sam2`` package and its ``.pt`` checkpoints.

For users who have Meta's checkpoints (``sam2.1_hiera_large.pt`` ...) rather than the
transformers weights of :mod:`hoopray.models.sam2_video`; the tracking behaviour is the
same (prompts, new players mid-clip, dropped lost tracks, bounded memory) and so are the
settings and bookkeeping (:mod:`hoopray.models.tracking`).

``sam2`` is an optional dependency, never imported at module level:
``pip install --no-build-isolation 'hoopray[meta-sam2]'`` (``sam2==1.1.0`` is an sdist;
without ``--no-build-isolation`` pip fetches another torch just to build it).

Frames are fed one at a time. ``SAM2VideoPredictor`` has no streaming entry point: it
loads a whole video up front and keeps every output. So the inference state is built
here with the keys ``init_state`` makes (sam2 1.1.0) and a growing ``images`` dict, and
each frame is tracked with the predictor's ``propagate_in_video_preflight`` and
``_run_single_frame_inference`` (what ``propagate_in_video`` does for one frame, without
its progress bar); lost tracks go through the public ``remove_object``. After every frame
the state is pruned to the memory window.

Two departures from driving the predictor through its public calls, both to stream:

- A frame's new prompts are decoded in one batched SAM pass (:func:`add_box_prompts`), as
  ``add_new_points_or_box`` would for each box in turn, but without that call's
  full-resolution masks of every object after each box.
- ``num_frames`` is :data:`STREAM_NUM_FRAMES`, not the frames seen so far: SAM2 scales the
  object pointers' temporal encodings by ``min(num_frames, max_obj_ptrs_in_encoder) - 1``,
  which for a whole video is ``max_obj_ptrs_in_encoder - 1`` on every frame; a growing
  count would encode the first 15 frames' pointers differently from SAM2's own predictors.

Hydra: ``import sam2`` initialises Hydra's global state with sam2's own config module
when nothing has initialised it yet, and ``build_sam2_video_predictor`` composes its
model config through that global state. Inside an application's ``@hydra.main`` the
global state holds the application's configs instead, so sam2 cannot find its own, and
an earlier ``import sam2`` makes the application's initialisation fail (sam2 issues
#179, #531, #758). :func:`sam2_hydra` therefore saves the global Hydra state (and
version base), clears it, lets sam2 initialise it with its config module, builds the
model, then clears it again and puts the saved state back, so the application's Hydra
is untouched before and after. The adapter does this inside ``__init__`` (i.e. in the
Ray actor that loads the model), never at import.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from hoopray.models.tracking import MAX_TRACKS, ClipGuard, TrackBook, TrackSettings, empty_tracks
from hoopray.types import TrackSource

if TYPE_CHECKING:
    import supervision as sv
    import torch

DEFAULT_CONFIG = "configs/sam2.1/sam2.1_hiera_l.yaml"
OVERRIDE = "models.tracker.checkpoint"
INSTALL_HINT = "pip install --no-build-isolation 'hoopray[meta-sam2]'"

STREAM_NUM_FRAMES = 2**31 - 1
"""``num_frames`` of a streamed clip: longer than any clip, so never the limit SAM2 applies."""

_MEAN = (0.485, 0.456, 0.406)
_STD = (0.229, 0.224, 0.225)
_BOX_LABELS = (2, 3)  # SAM2's point labels of a box's top-left and bottom-right corners


class MissingDependencyError(RuntimeError):
    """An optional package an adapter needs is not installed."""


def import_sam2() -> Any:
    """``sam2.build_sam``, or :class:`MissingDependencyError` saying how to install it."""
    try:
        import sam2.build_sam
    except ImportError as exc:
        raise MissingDependencyError(
            "The Meta SAM2 tracker (models/tracker=sam2_meta) needs the optional package "
            f"'sam2', which is not installed: {INSTALL_HINT}. Or use the transformers "
            "tracker (models/tracker=sam2), which needs no extra package."
        ) from exc
    return sam2.build_sam


@contextlib.contextmanager
def sam2_hydra() -> Iterator[None]:
    """Hydra's global state initialised with sam2's configs, the caller's restored after.

    The version base is restored as it was, unset included (a fresh process, e.g. a Ray
    actor, has none).
    """
    from hydra import initialize_config_module
    from hydra.core.global_hydra import GlobalHydra
    from hydra.version import VersionBase

    saved = GlobalHydra.instance().hydra
    versions = VersionBase.instance()
    saved_base = versions.version_base
    GlobalHydra.instance().clear()
    try:
        import_sam2()  # a first import initialises the (cleared) global state itself
        if not GlobalHydra.instance().is_initialized():
            initialize_config_module("sam2", version_base="1.2")
        yield
    finally:
        GlobalHydra.instance().clear()
        GlobalHydra.instance().hydra = saved
        versions.version_base = saved_base


class Sam2MetaTracking:
    """Meta's SAM2.1 video predictor loaded once from a ``.pt`` checkpoint.

    Args:
        checkpoint: path to Meta's checkpoint file (``{"model": state_dict}``), e.g.
            ``sam2.1_hiera_large.pt``; it must match ``config``.
        config: the sam2 package's model config, one of ``configs/sam2.1/sam2.1_hiera_t``,
            ``_s``, ``_b+``, ``_l`` (``.yaml``).
        device: "auto" (CUDA if present), "cpu", "cuda", "cuda:N".
        overrides: extra Hydra overrides for the model config (e.g.
            ``["++model.image_size=512"]``).
        max_lost_frames, new_track_iou, mask_threshold, clean_max_distance, max_cond_frames,
            max_tracks: see :class:`hoopray.models.tracking.TrackSettings`; ``max_tracks``
            defaults to :data:`hoopray.models.tracking.MAX_TRACKS` (sized for basketball).

    The checkpoint is loaded by sam2's own loader, which uses ``torch.load(...,
    weights_only=True)`` and a strict ``load_state_dict`` (missing or unexpected keys
    raise).

    Raises:
        ValueError: a bad setting (checked first).
        MissingDependencyError: ``sam2`` is not installed.
        WeightsNotFoundError: ``checkpoint`` is not a file.
    """

    def __init__(
        self,
        checkpoint: str,
        config: str = DEFAULT_CONFIG,
        device: str = "auto",
        overrides: Sequence[str] = (),
        max_lost_frames: int = 15,
        new_track_iou: float = 0.3,
        mask_threshold: float = 0.0,
        clean_max_distance: float | None = 0.5,
        max_cond_frames: int = 2,
        max_tracks: int | None = MAX_TRACKS,
    ) -> None:
        from hoopray.models.device import resolve_device
        from hoopray.models.loading import require_path

        self.settings = TrackSettings(
            max_lost_frames=max_lost_frames,
            new_track_iou=new_track_iou,
            max_tracks=max_tracks,
            mask_threshold=mask_threshold,
            clean_max_distance=clean_max_distance,
            max_cond_frames=max_cond_frames,
        )
        self.device = resolve_device(device)
        path = require_path(checkpoint, "Meta SAM2 checkpoint", OVERRIDE, directory=False)
        with sam2_hydra():
            build = import_sam2()
            try:
                self.predictor = build.build_sam2_video_predictor(
                    config,
                    ckpt_path=os.fspath(path),
                    device=self.device,
                    hydra_overrides_extra=list(overrides),
                )
            except RuntimeError as exc:
                raise RuntimeError(
                    f"Meta SAM2 checkpoint {os.fspath(path)!r} does not fit config {config!r} "
                    f"(use the config of the checkpoint's size): {exc}"
                ) from exc
        predictor = self.predictor
        self.image_size = int(predictor.image_size)
        self.window = max(
            predictor.num_maskmem * predictor.memory_temporal_stride_for_eval,
            predictor.max_obj_ptrs_in_encoder,
        )

    def open(self) -> Sam2MetaTracker:
        return Sam2MetaTracker(self)


class Sam2MetaTracker:
    """One clip through Meta's predictor; results as in
    :class:`hoopray.models.sam2_video.Sam2VideoTracker`."""

    def __init__(self, owner: Sam2MetaTracking) -> None:
        self._owner = owner
        self._book = TrackBook(owner.settings)
        self._guard = ClipGuard()
        self._state: dict[str, Any] | None = None
        self._frame = -1

    @property
    def live_ids(self) -> list[int]:
        return self._book.live_ids

    def footprint(self) -> dict[str, int]:
        """Entry counts of the per-frame state, for memory checks."""
        state = self._state or {}
        outputs = state.get("output_dict_per_obj", {}).values()
        return {
            "objects": len(state.get("obj_ids", [])),
            "frames": len(state.get("images", {})),
            "cached_features": len(state.get("cached_features", {})),
            "cond_outputs": sum(len(o["cond_frame_outputs"]) for o in outputs),
            "non_cond_outputs": sum(len(o["non_cond_frame_outputs"]) for o in outputs),
            "frames_tracked": sum(len(t) for t in state.get("frames_tracked_per_obj", {}).values()),
            "inputs": sum(len(i) for i in state.get("point_inputs_per_obj", {}).values()),
        }

    def start(self, frame: np.ndarray, detections: sv.Detections) -> sv.Detections:
        size = self._guard.start(frame)
        return self._advance(frame, size, detections, TrackSource.PROMPT)

    def step(self, frame: np.ndarray, new_detections: sv.Detections | None = None) -> sv.Detections:
        size = self._guard.step(frame)
        return self._advance(frame, size, new_detections, TrackSource.ADDED)

    def close(self) -> None:
        self._guard.close()
        self._state = None

    def _new_state(self, height: int, width: int) -> dict[str, Any]:
        """The inference state ``SAM2VideoPredictor.init_state`` builds, without a video."""
        import torch

        device = torch.device(self._owner.device)
        state: dict[str, Any] = {
            "images": {},
            "num_frames": STREAM_NUM_FRAMES,
            "offload_video_to_cpu": False,
            "offload_state_to_cpu": False,
            "video_height": height,
            "video_width": width,
            "device": device,
            "storage_device": device,
            "point_inputs_per_obj": {},
            "mask_inputs_per_obj": {},
            "cached_features": {},
            "constants": {},
            "obj_id_to_idx": {},
            "obj_idx_to_id": {},
            "obj_ids": [],
            "output_dict_per_obj": {},
            "temp_output_dict_per_obj": {},
            "frames_tracked_per_obj": {},
        }
        return state

    def _pixels(self, frame: np.ndarray) -> torch.Tensor:
        """RGB uint8 (H, W, 3) -> normalised (3, S, S) float on the device."""
        import torch
        import torch.nn.functional as F

        size = self._owner.image_size
        image = torch.from_numpy(np.ascontiguousarray(frame)).to(self._owner.device)
        image = image.permute(2, 0, 1)[None].float() / 255.0
        image = F.interpolate(image, size=(size, size), mode="bilinear", antialias=True)[0]
        mean = torch.tensor(_MEAN, device=image.device)[:, None, None]
        std = torch.tensor(_STD, device=image.device)[:, None, None]
        return (image - mean) / std

    def _advance(
        self,
        frame: np.ndarray,
        size: tuple[int, int],
        detections: sv.Detections | None,
        origin: TrackSource,
    ) -> sv.Detections:
        import torch

        from hoopray.models.device import autocast

        height, width = size
        settings = self._owner.settings
        if self._state is None:
            self._state = self._new_state(height, width)
        state = self._state
        predictor = self._owner.predictor
        self._frame += 1
        t = self._frame
        new = None
        if detections is not None and len(detections):
            new = detections[self._book.uncovered(detections)]
        if (new is None or len(new) == 0) and not self._book.live_ids:
            return empty_tracks(height, width)
        with torch.inference_mode(), autocast(self._owner.device):
            state["images"][t] = self._pixels(frame)
            if new is not None and len(new):
                ids = self._book.add(new, t, origin)
                add_box_prompts(predictor, state, t, ids, np.asarray(new.xyxy, np.float32))
            predictor.propagate_in_video_preflight(state)
            logits, scores = [], []
            for obj_idx in range(len(state["obj_ids"])):
                outputs = state["output_dict_per_obj"][obj_idx]
                if t in outputs["cond_frame_outputs"]:
                    current = outputs["cond_frame_outputs"][t]
                    mask_logits = current["pred_masks"].to(state["device"])
                else:
                    current, mask_logits = predictor._run_single_frame_inference(
                        inference_state=state,
                        output_dict=outputs,
                        frame_idx=t,
                        batch_size=1,
                        is_init_cond_frame=False,
                        point_inputs=None,
                        mask_inputs=None,
                        reverse=False,
                        run_mem_encoder=True,
                    )
                    outputs["non_cond_frame_outputs"][t] = current
                state["frames_tracked_per_obj"][obj_idx][t] = {"reverse": False}
                logits.append(mask_logits)
                scores.append(current["object_score_logits"].reshape(-1))
            _, video_logits = predictor._get_orig_video_res_output(state, torch.cat(logits))
            masks = (video_logits[:, 0].float() > settings.mask_threshold).cpu().numpy()
            confidence = torch.sigmoid(torch.cat(scores).float()).cpu().numpy()
            track_ids = [int(i) for i in state["obj_ids"]]
        if settings.clean_max_distance is not None:
            from hoopray.masks import clean_masks

            masks, _ = clean_masks(masks, settings.clean_max_distance, in_place=True)
        update = self._book.update(t, track_ids, masks, confidence)
        for obj_id in update.dropped:
            predictor.remove_object(state, obj_id, need_output=False)
        self._prune(t)
        return update.detections

    def _prune(self, t: int) -> None:
        """Keep only what the next frames read (see :func:`sam2_video.prune_session`)."""
        state = self._state
        assert state is not None
        for key in [k for k in state["images"] if k != t]:
            del state["images"][key]
        oldest = t + 1 - self._owner.window
        for outputs in state["output_dict_per_obj"].values():
            non_cond = outputs["non_cond_frame_outputs"]
            for key in [k for k in non_cond if k < oldest]:
                del non_cond[key]
            cond = outputs["cond_frame_outputs"]
            for key in sorted(cond)[: max(0, len(cond) - self._owner.settings.max_cond_frames)]:
                del cond[key]
        for tracked in state["frames_tracked_per_obj"].values():
            for key in [k for k in tracked if k < oldest]:
                del tracked[key]
        for inputs in (
            *state["point_inputs_per_obj"].values(),
            *state["mask_inputs_per_obj"].values(),
        ):
            for key in [k for k in inputs if k <= t]:
                del inputs[key]


def add_box_prompts(
    predictor: Any, state: dict[str, Any], frame_idx: int, obj_ids: list[int], boxes: np.ndarray
) -> None:
    """Prompt new objects with boxes (xyxy, frame pixels) on one frame, in one SAM pass.

    Leaves the state as ``add_new_points_or_box(state, frame_idx, obj_id, box=box)`` for each
    object in turn does (sam2 1.1.0) for objects new on this frame: each gets its box as
    point inputs and a temporary conditioning output, which ``propagate_in_video_preflight``
    then encodes into memory. Unlike those calls, the masks are decoded for all the new
    objects at once and none is resized to the video's resolution here.
    """
    import torch

    device = state["device"]
    count = len(obj_ids)
    indices = [predictor._obj_id_to_idx(state, obj_id) for obj_id in obj_ids]
    scale = torch.tensor([state["video_width"], state["video_height"]], dtype=torch.float32)
    corners = torch.as_tensor(np.asarray(boxes, np.float32).reshape(count, 2, 2))
    coords = (corners / scale * predictor.image_size).to(device)
    labels = torch.tensor([_BOX_LABELS] * count, dtype=torch.int32, device=device)
    output, _ = predictor._run_single_frame_inference(
        inference_state=state,
        output_dict={"cond_frame_outputs": {}, "non_cond_frame_outputs": {}},
        frame_idx=frame_idx,
        batch_size=count,
        is_init_cond_frame=True,
        point_inputs={"point_coords": coords, "point_labels": labels},
        mask_inputs=None,
        reverse=False,
        run_mem_encoder=False,
    )
    for row, obj_idx in enumerate(indices):
        rows = slice(row, row + 1)
        state["point_inputs_per_obj"][obj_idx][frame_idx] = {
            "point_coords": coords[rows],
            "point_labels": labels[rows],
        }
        state["mask_inputs_per_obj"][obj_idx].pop(frame_idx, None)
        state["temp_output_dict_per_obj"][obj_idx]["cond_frame_outputs"][frame_idx] = {
            name: _rows(value, rows) for name, value in output.items()
        }


def _rows(value: Any, rows: slice) -> Any:
    """One object's slice of a batched SAM2 output entry (a tensor, a list of them or None)."""
    if value is None:
        return None
    if isinstance(value, list):
        return [item[rows] for item in value]
    return value[rows]
