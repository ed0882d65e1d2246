"""SAM2.1 video tracking with transformers' ``Sam2VideoModel``, one frame at a time.

:class:`Sam2VideoTracking` loads the model once (per actor); :meth:`~Sam2VideoTracking.open`
returns a :class:`Sam2VideoTracker` for one clip. The tracker feeds frames into a
streaming inference session (no video up front) and:

- prompts one object per detection box on :meth:`~Sam2VideoTracker.start`;
- adds a new object when :meth:`~Sam2VideoTracker.step` receives a detection that no
  live track covers (box IoU below ``new_track_iou`` against every track's latest box);
- drops a track whose mask has been empty for ``max_lost_frames`` frames in a row, and
  removes it from the session so it costs nothing afterwards;
- prunes the session after every frame to what SAM2 reads next (see :func:`prune_session`),
  so memory stays bounded whatever the clip's length.

Model ids (``model=``), smallest to largest: ``facebook/sam2.1-hiera-tiny``,
``facebook/sam2.1-hiera-small``, ``facebook/sam2.1-hiera-base-plus``,
``facebook/sam2.1-hiera-large``; or a local directory saved with ``save_pretrained``.

The settings, call-order guards and bookkeeping (track ids, lost counters, the new-track
rule, building the returned detections) are shared with :mod:`hoopray.models.sam2_meta`
and live in :mod:`hoopray.models.tracking`. The tiny test model's builder is
:func:`hoopray.testing.tiny.build_tiny_sam2_video`.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import numpy as np

from hoopray.models.tracking import MAX_TRACKS, ClipGuard, TrackBook, TrackSettings, empty_tracks
from hoopray.types import TrackSource

if TYPE_CHECKING:
    import supervision as sv
    import torch

DEFAULT_MODEL = "facebook/sam2.1-hiera-large"
MODEL_IDS = (
    "facebook/sam2.1-hiera-tiny",
    "facebook/sam2.1-hiera-small",
    "facebook/sam2.1-hiera-base-plus",
    "facebook/sam2.1-hiera-large",
)
OVERRIDE = "models.tracker.model"

_DTYPES = ("auto", "float32", "bfloat16", "float16")
# What a stored per-frame output must keep for later frames: the memory (features and
# positional encoding), the object pointer and the object score.
_OUTPUT_KEYS_KEPT = ("maskmem_features", "maskmem_pos_enc", "object_pointer", "object_score_logits")
_POINTER_KEYS = ("object_pointer", "object_score_logits")


# --------------------------------------------------------------------------------------
# Session state surgery (transformers Sam2VideoInferenceSession)
# --------------------------------------------------------------------------------------


def prune_session(
    session: Any, frame_idx: int, num_maskmem: int, num_pointers: int, max_cond_frames: int
) -> None:
    """Forget what SAM2 will not read again after ``frame_idx``.

    SAM2 conditions a frame on the memories of the previous ``num_maskmem - 1`` frames
    and on the object pointers of the previous ``num_pointers - 1`` frames
    (``max_object_pointers_in_encoder``), plus every conditioning (prompt) frame. So this
    keeps: the current frame's pixels only (its features are cached by the session);
    per object, the newest ``max_cond_frames`` conditioning outputs, the memories and
    pointers of the last ``num_maskmem`` frames and only the pointers of frames up to
    ``num_pointers`` back; of every stored output only what later frames read (the
    high- and low-resolution masks go). Consumed prompt inputs and old
    ``frames_tracked_per_obj`` entries go too.
    """
    if session.processed_frames is not None:
        for key in [k for k in session.processed_frames if k != frame_idx]:
            del session.processed_frames[key]
    oldest = frame_idx + 1 - max(num_maskmem, num_pointers)
    oldest_memory = frame_idx + 1 - num_maskmem
    for outputs in session.output_dict_per_obj.values():
        non_cond = outputs["non_cond_frame_outputs"]
        for key in [k for k in non_cond if k < oldest]:
            del non_cond[key]
        for key, stored in non_cond.items():
            kept = _OUTPUT_KEYS_KEPT if key >= oldest_memory else _POINTER_KEYS
            for name in [n for n in stored if n not in kept]:
                del stored[name]
        cond = outputs["cond_frame_outputs"]
        for key in sorted(cond)[: max(0, len(cond) - max_cond_frames)]:
            del cond[key]
        if frame_idx in cond:
            for name in [n for n in cond[frame_idx] if n not in _OUTPUT_KEYS_KEPT]:
                del cond[frame_idx][name]
    for tracked in session.frames_tracked_per_obj.values():
        for key in [k for k in tracked if k < oldest]:
            del tracked[key]
    for inputs in (*session.point_inputs_per_obj.values(), *session.mask_inputs_per_obj.values()):
        for key in [k for k in inputs if k <= frame_idx]:
            del inputs[key]


def remove_objects(session: Any, obj_ids: list[int]) -> None:
    """Remove objects and all their state from a session, re-indexing the others.

    The session has no public removal; its per-object state is keyed by a dense index
    (0..n-1) that the model iterates over, so every per-index dict is rebuilt.
    """
    gone = set(obj_ids)
    if not gone:
        return
    keep = [obj_id for obj_id in session.obj_ids if obj_id not in gone]
    old_index = [session._obj_id_to_idx[obj_id] for obj_id in keep]
    for name in (
        "point_inputs_per_obj",
        "mask_inputs_per_obj",
        "output_dict_per_obj",
        "frames_tracked_per_obj",
    ):
        per_obj = getattr(session, name)
        setattr(session, name, {new: per_obj[old] for new, old in enumerate(old_index)})
    session._obj_id_to_idx = OrderedDict((obj_id, new) for new, obj_id in enumerate(keep))
    session._obj_idx_to_id = OrderedDict(enumerate(keep))
    session.obj_ids = list(keep)
    session.obj_with_new_inputs = [i for i in session.obj_with_new_inputs if i not in gone]


def _tensor_bytes(value: object) -> int:
    import torch

    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, dict):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def session_footprint(session: Any) -> dict[str, int]:
    """Sizes of everything a session accumulates: entry counts and tensor bytes."""
    outputs = session.output_dict_per_obj.values()
    parts = {
        "objects": session.get_obj_num(),
        "frames": len(session.processed_frames or {}),
        "cached_features": len(session.cache._vision_features),
        "cond_outputs": sum(len(o["cond_frame_outputs"]) for o in outputs),
        "non_cond_outputs": sum(len(o["non_cond_frame_outputs"]) for o in outputs),
        "frames_tracked": sum(len(t) for t in session.frames_tracked_per_obj.values()),
        "inputs": sum(len(i) for i in session.point_inputs_per_obj.values())
        + sum(len(i) for i in session.mask_inputs_per_obj.values()),
    }
    parts["tensor_bytes"] = (
        _tensor_bytes(session.processed_frames or {})
        + _tensor_bytes(session.cache._vision_features)
        + _tensor_bytes(session.output_dict_per_obj)
        + _tensor_bytes(session.point_inputs_per_obj)
        + _tensor_bytes(session.mask_inputs_per_obj)
    )
    return parts


# --------------------------------------------------------------------------------------
# The adapter
# --------------------------------------------------------------------------------------


def torch_dtype(name: str) -> torch.dtype:
    """The weights' dtype for ``name``: "auto" is float32 (bf16 autocast runs on CUDA)."""
    import torch

    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {_DTYPES}; got {name!r}")
    return torch.float32 if name == "auto" else getattr(torch, name)


class Sam2VideoTracking:
    """SAM2.1 video model (transformers), loaded once; opens one tracker per clip.

    Args:
        model: a hub id (see :data:`MODEL_IDS`) or a local directory with the model and
            its processor (``save_pretrained``). Offline (``HF_HUB_OFFLINE=1``) a hub id
            must already be in the Hugging Face cache.
        device: "auto" (CUDA if present), "cpu", "cuda", "cuda:N".
        dtype: "auto" (float32 weights, bf16 autocast on CUDA), "float32", "bfloat16",
            "float16" (weights and session state in that dtype).
        max_lost_frames, new_track_iou, mask_threshold, clean_max_distance, max_cond_frames,
            max_tracks: see :class:`hoopray.models.tracking.TrackSettings`; ``max_tracks``
            defaults to :data:`hoopray.models.tracking.MAX_TRACKS` (sized for basketball).

    Raises:
        ValueError: a bad setting (checked before any weights are loaded).
        WeightsNotFoundError: the weights are not available (offline and not cached, or
            a missing local directory); the message says how to provide them.
    """

    def __init__(
        self,
        model: str = DEFAULT_MODEL,
        device: str = "auto",
        dtype: str = "auto",
        max_lost_frames: int = 15,
        new_track_iou: float = 0.3,
        mask_threshold: float = 0.0,
        clean_max_distance: float | None = 0.5,
        max_cond_frames: int = 2,
        max_tracks: int | None = MAX_TRACKS,
    ) -> None:
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        from hoopray.models.device import resolve_device
        from hoopray.models.loading import load_pretrained

        self.settings = TrackSettings(
            max_lost_frames=max_lost_frames,
            new_track_iou=new_track_iou,
            max_tracks=max_tracks,
            mask_threshold=mask_threshold,
            clean_max_distance=clean_max_distance,
            max_cond_frames=max_cond_frames,
        )
        self.model_name = model
        self.device = resolve_device(device)
        self.dtype = torch_dtype(dtype)
        what = "SAM2 video tracker"
        self.processor = load_pretrained(
            Sam2VideoProcessor.from_pretrained, model, what=what, override=OVERRIDE
        )
        self.model = load_pretrained(
            Sam2VideoModel.from_pretrained, model, what=what, override=OVERRIDE, dtype=self.dtype
        )
        self.model.to(self.device).eval()
        config = self.model.config
        self.num_maskmem = int(config.num_maskmem)
        self.num_pointers = int(config.max_object_pointers_in_encoder)
        self.window = max(self.num_maskmem, self.num_pointers)

    def open(self) -> Sam2VideoTracker:
        return Sam2VideoTracker(self)


class Sam2VideoTracker:
    """Tracks one clip through a streaming ``Sam2VideoInferenceSession``.

    Returned detections: one row per live track whose mask on this frame is not empty,
    with ``tracker_id``, ``mask`` (N, H, W) bool at the frame's size, ``xyxy`` from the
    mask, ``confidence`` = sigmoid of SAM2's object score, ``data["source"]`` and
    ``data["class_name"]`` of the detection that prompted the track.
    """

    def __init__(self, owner: Sam2VideoTracking) -> None:
        self._owner = owner
        self._book = TrackBook(owner.settings)
        self._guard = ClipGuard()
        self._session = owner.processor.init_video_session(
            inference_device=owner.device, dtype=owner.dtype
        )
        self._frame = -1

    @property
    def live_ids(self) -> list[int]:
        """Ids of the tracks not yet dropped (reported or currently lost)."""
        return self._book.live_ids

    def footprint(self) -> dict[str, int]:
        """Sizes of the session state (entries and tensor bytes), for memory checks."""
        return session_footprint(self._session)

    def start(self, frame: np.ndarray, detections: sv.Detections) -> sv.Detections:
        size = self._guard.start(frame)
        return self._advance(frame, size, detections, TrackSource.PROMPT)

    def step(self, frame: np.ndarray, new_detections: sv.Detections | None = None) -> sv.Detections:
        size = self._guard.step(frame)
        return self._advance(frame, size, new_detections, TrackSource.ADDED)

    def close(self) -> None:
        if self._guard.close():
            self._session.reset_inference_session()
            self._session.processed_frames = None

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
        self._frame += 1
        t = self._frame
        owner = self._owner
        settings = owner.settings
        new = None
        if detections is not None and len(detections):
            new = detections[self._book.uncovered(detections)]
        with torch.inference_mode(), autocast(owner.device):
            if new is not None and len(new):
                ids = self._book.add(new, t, origin)
                owner.processor.add_inputs_to_inference_session(
                    self._session,
                    frame_idx=t,
                    obj_ids=ids,
                    input_boxes=[np.asarray(new.xyxy, dtype=np.float32).tolist()],
                    original_size=(height, width),
                )
            if not self._book.live_ids:
                return empty_tracks(height, width)
            pixels = owner.processor(
                images=frame, device=owner.device, return_tensors="pt"
            ).pixel_values[0]
            output = owner.model(
                inference_session=self._session, frame_idx=t, frame=pixels.to(owner.device)
            )
            masks = owner.processor.post_process_masks(
                [output.pred_masks.float()],
                [[height, width]],
                mask_threshold=settings.mask_threshold,
                binarize=True,
            )[0][:, 0]
            scores = torch.sigmoid(output.object_score_logits.float()).reshape(-1)
            masks_np = masks.cpu().numpy().astype(bool, copy=False)
            scores_np = scores.cpu().numpy()
            track_ids = [int(i) for i in output.object_ids]
        if settings.clean_max_distance is not None:
            from hoopray.masks import clean_masks

            masks_np, _ = clean_masks(masks_np, settings.clean_max_distance)
        update = self._book.update(t, track_ids, masks_np, scores_np)
        remove_objects(self._session, update.dropped)
        prune_session(
            self._session, t, owner.num_maskmem, owner.num_pointers, settings.max_cond_frames
        )
        return update.detections
