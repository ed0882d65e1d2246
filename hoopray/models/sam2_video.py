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

The bookkeeping shared with :mod:`hoopray.models.sam2_meta` (track ids, lost counters,
the new-track rule, building the returned detections) lives here in :class:`TrackBook`.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hoopray.models.base import CLASS_NAME, SOURCE
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
# Bookkeeping shared by the SAM2 adapters (pure numpy)
# --------------------------------------------------------------------------------------


def empty_tracks(height: int, width: int) -> sv.Detections:
    """A valid empty result: ``mask`` (0, H, W), ``tracker_id`` (0,), source and class."""
    import supervision as sv

    return sv.Detections(
        xyxy=np.zeros((0, 4), dtype=np.float32),
        mask=np.zeros((0, height, width), dtype=bool),
        tracker_id=np.zeros(0, dtype=int),
        data={
            SOURCE: np.zeros(0, dtype=object),
            CLASS_NAME: np.zeros(0, dtype=object),
        },
    )


def make_tracks(
    xyxy: np.ndarray,
    masks: np.ndarray,
    track_ids: list[int],
    sources: list[str],
    class_names: list[str | None],
    confidence: np.ndarray | None,
) -> sv.Detections:
    """Tracks as ``sv.Detections``; ``masks`` (N, H, W) bool fixes the frame size."""
    import supervision as sv

    if len(track_ids) == 0:
        return empty_tracks(masks.shape[1], masks.shape[2])
    return sv.Detections(
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(-1, 4),
        mask=masks.astype(bool, copy=False),
        confidence=None if confidence is None else np.asarray(confidence, dtype=np.float32),
        tracker_id=np.asarray(track_ids, dtype=int),
        data={
            SOURCE: np.asarray(sources, dtype=object),
            CLASS_NAME: np.asarray(class_names, dtype=object),
        },
    )


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box of ``a`` (N, 4) with every box of ``b`` (M, 4): (N, M) float64."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)))
    low = np.maximum(a[:, None, :2], b[None, :, :2])
    high = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def detection_class_names(detections: sv.Detections) -> list[str | None]:
    names = detections.data.get(CLASS_NAME) if detections.data else None
    if names is None:
        return [None] * len(detections)
    return [None if name is None else str(name) for name in names]


@dataclass
class _Track:
    class_name: str | None
    origin: TrackSource
    first_frame: int
    last_box: np.ndarray
    lost: int = 0


@dataclass(frozen=True)
class FrameUpdate:
    """What :meth:`TrackBook.update` decided for one frame."""

    detections: sv.Detections
    dropped: list[int]


class TrackBook:
    """Track ids, class names, lost counters and the new-track rule of one clip.

    Ids start at 1 and are never reused. A track is reported on a frame only when its
    mask there is not empty; a track whose mask stays empty for ``max_lost_frames``
    frames in a row (the frame it was prompted on included) is dropped.

    A detection starts a new track when its box IoU with every live track's latest box
    is below ``new_track_iou``. The latest box is the box of the track's last non-empty
    mask (or its prompting box), i.e. from the previous frame, since new detections
    are checked before the frame is run through the model. Among uncovered detections
    overlapping each other by IoU >= ``new_track_iou``, only the most confident is kept.
    Boxes with no area never start a track. At most ``max_tracks`` tracks live at once
    (None: no cap); beyond that the most confident new detections get the free places, so
    a weak detector cannot grow the session without bound.
    """

    def __init__(
        self, max_lost_frames: int, new_track_iou: float, max_tracks: int | None = None
    ) -> None:
        if max_lost_frames < 0:
            raise ValueError(f"max_lost_frames must be >= 0; got {max_lost_frames}")
        if not 0.0 < new_track_iou <= 1.0:
            raise ValueError(f"new_track_iou must be in (0, 1]; got {new_track_iou}")
        if max_tracks is not None and max_tracks < 1:
            raise ValueError(f"max_tracks must be >= 1 or None; got {max_tracks}")
        self.max_lost_frames = max_lost_frames
        self.new_track_iou = new_track_iou
        self.max_tracks = max_tracks
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1

    @property
    def live_ids(self) -> list[int]:
        return list(self._tracks)

    def uncovered(self, detections: sv.Detections) -> np.ndarray:
        """Indices of the detections that should start a new track."""
        if len(detections) == 0:
            return np.zeros(0, dtype=int)
        boxes = np.asarray(detections.xyxy, dtype=np.float64)
        live = np.array([t.last_box for t in self._tracks.values()]).reshape(-1, 4)
        covered = (box_iou(boxes, live) >= self.new_track_iou).any(axis=1)
        degenerate = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
        candidates = np.flatnonzero(~covered & ~degenerate)
        if detections.confidence is not None:
            candidates = candidates[np.argsort(-detections.confidence[candidates], kind="stable")]
        kept: list[int] = []
        for index in candidates:
            if not kept or box_iou(boxes[[index]], boxes[kept]).max() < self.new_track_iou:
                kept.append(int(index))
        if self.max_tracks is not None:
            kept = kept[: max(self.max_tracks - len(self._tracks), 0)]
        return np.array(sorted(kept), dtype=int)

    def add(self, detections: sv.Detections, frame: int, origin: TrackSource) -> list[int]:
        """New track ids for every detection, in order."""
        names = detection_class_names(detections)
        ids = []
        for box, name in zip(np.asarray(detections.xyxy, dtype=np.float32), names, strict=True):
            track_id = self._next_id
            self._next_id += 1
            self._tracks[track_id] = _Track(name, origin, frame, box.copy())
            ids.append(track_id)
        return ids

    def update(
        self,
        frame: int,
        track_ids: list[int],
        masks: np.ndarray,
        confidence: np.ndarray | None = None,
    ) -> FrameUpdate:
        """Record this frame's masks of ``track_ids`` ((N, H, W) bool, same order).

        Returns the non-empty tracks as detections (``xyxy`` from the masks) and the ids
        to drop, which are forgotten here and must be removed from the model's state.
        """
        from hoopray.masks import masks_to_xyxy

        if len(track_ids) != len(masks):
            raise ValueError(f"{len(track_ids)} track ids for {len(masks)} masks")
        boxes = masks_to_xyxy(masks) if len(masks) else np.zeros((0, 4), np.float32)
        present = masks.reshape(len(masks), -1).any(axis=1) if len(masks) else np.zeros(0, bool)
        dropped: list[int] = []
        for track_id, box, seen in zip(track_ids, boxes, present, strict=True):
            track = self._tracks[track_id]
            if seen:
                track.lost = 0
                track.last_box = box
            else:
                track.lost += 1
                if track.lost >= self.max_lost_frames:
                    dropped.append(track_id)
        rows = np.flatnonzero(present)
        ids = [track_ids[i] for i in rows]
        sources = [
            str(self._tracks[i].origin)
            if self._tracks[i].first_frame == frame
            else str(TrackSource.PROPAGATED)
            for i in ids
        ]
        names = [self._tracks[i].class_name for i in ids]
        for track_id in dropped:
            del self._tracks[track_id]
        result = make_tracks(
            boxes[rows],
            masks[rows],
            ids,
            sources,
            names,
            None if confidence is None else np.asarray(confidence)[rows],
        )
        return FrameUpdate(result, dropped)


def check_frame(frame: np.ndarray, size: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of an RGB uint8 frame; the size must not change within a clip."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be RGB (H, W, 3); got shape {frame.shape}")
    height, width = int(frame.shape[0]), int(frame.shape[1])
    if size is not None and (height, width) != size:
        raise ValueError(f"frame size changed within the clip: {size} -> {(height, width)}")
    return height, width


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
        max_lost_frames: frames in a row with an empty mask after which a track is dropped.
        new_track_iou: a detection whose box IoU with every live track's latest box is
            below this starts a new track.
        mask_threshold: logit threshold that binarises the masks.
        clean_max_distance: passed to :func:`hoopray.masks.clean_masks` (keep the main
            segment and pieces near it); None keeps masks as the model made them.
        max_cond_frames: prompts (conditioning frames) kept per object.
        max_tracks: at most this many live tracks (None: no cap); see :class:`TrackBook`.

    Raises:
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
        max_tracks: int | None = 40,
    ) -> None:
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        from hoopray.models.device import resolve_device
        from hoopray.models.loading import load_pretrained

        TrackBook(max_lost_frames, new_track_iou, max_tracks)  # validates them
        if max_cond_frames < 1:
            raise ValueError(f"max_cond_frames must be >= 1; got {max_cond_frames}")
        self.model_name = model
        self.device = resolve_device(device)
        self.dtype = torch_dtype(dtype)
        self.max_lost_frames = max_lost_frames
        self.new_track_iou = new_track_iou
        self.mask_threshold = mask_threshold
        self.clean_max_distance = clean_max_distance
        self.max_cond_frames = max_cond_frames
        self.max_tracks = max_tracks
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
        self._book = TrackBook(owner.max_lost_frames, owner.new_track_iou, owner.max_tracks)
        self._session = owner.processor.init_video_session(
            inference_device=owner.device, dtype=owner.dtype
        )
        self._frame = -1
        self._size: tuple[int, int] | None = None
        self._closed = False

    @property
    def live_ids(self) -> list[int]:
        """Ids of the tracks not yet dropped (reported or currently lost)."""
        return self._book.live_ids

    def footprint(self) -> dict[str, int]:
        """Sizes of the session state (entries and tensor bytes), for memory checks."""
        return session_footprint(self._session)

    def start(self, frame: np.ndarray, detections: sv.Detections) -> sv.Detections:
        if self._frame >= 0:
            raise RuntimeError("start() was already called for this clip; open a new tracker")
        return self._advance(frame, detections, TrackSource.PROMPT)

    def step(self, frame: np.ndarray, new_detections: sv.Detections | None = None) -> sv.Detections:
        if self._frame < 0:
            raise RuntimeError("call start() before step()")
        return self._advance(frame, new_detections, TrackSource.ADDED)

    def close(self) -> None:
        if not self._closed:
            self._session.reset_inference_session()
            self._session.processed_frames = None
            self._closed = True

    def _advance(
        self, frame: np.ndarray, detections: sv.Detections | None, origin: TrackSource
    ) -> sv.Detections:
        import torch

        from hoopray.models.device import autocast

        if self._closed:
            raise RuntimeError("tracker is closed")
        self._size = check_frame(frame, self._size)
        height, width = self._size
        self._frame += 1
        t = self._frame
        owner = self._owner
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
                mask_threshold=owner.mask_threshold,
                binarize=True,
            )[0][:, 0]
            scores = torch.sigmoid(output.object_score_logits.float()).reshape(-1)
            masks_np = masks.cpu().numpy().astype(bool, copy=False)
            scores_np = scores.cpu().numpy()
            track_ids = [int(i) for i in output.object_ids]
        if owner.clean_max_distance is not None:
            from hoopray.masks import clean_masks

            masks_np, _ = clean_masks(masks_np, owner.clean_max_distance)
        update = self._book.update(t, track_ids, masks_np, scores_np)
        remove_objects(self._session, update.dropped)
        prune_session(
            self._session, t, owner.num_maskmem, owner.num_pointers, owner.max_cond_frames
        )
        return update.detections


# --------------------------------------------------------------------------------------
# Tiny model for tests, smoke runs and benchmarks
# --------------------------------------------------------------------------------------


def build_tiny_sam2_video(
    directory: str | os.PathLike[str], seed: int = 0, image_size: int = 128
) -> Path:
    """Save a tiny, randomly initialised ``Sam2VideoModel`` and its processor.

    FOR TESTS, SMOKE RUNS AND BENCHMARKS ONLY: the weights are random, so the masks mean
    nothing. The directory loads through :class:`Sam2VideoTracking` like real weights.
    The architecture's constraints: ``memory_encoder_output_channels`` stays 64, hidden
    sizes are multiples of 64 above 64, and sub-configs are config objects.

    Args:
        directory: created if missing.
        seed: the weights are deterministic for a seed.
        image_size: model input side, a multiple of 16.

    Returns:
        ``directory`` as a Path.
    """
    import torch
    from transformers import (
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoMaskDecoderConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoPromptEncoderConfig,
        Sam2VideoVideoProcessor,
        Sam2VisionConfig,
    )

    if image_size <= 0 or image_size % 16:
        raise ValueError(f"image_size must be a positive multiple of 16; got {image_size}")
    size, hidden = image_size, 128
    backbone = Sam2HieraDetConfig(
        hidden_size=12,
        image_size=[size, size],
        blocks_per_stage=[1, 1, 1, 1],
        embed_dim_per_stage=[12, 24, 48, 96],
        num_attention_heads_per_stage=[1, 2, 4, 8],
    )
    config = Sam2VideoConfig(
        vision_config=Sam2VisionConfig(
            backbone_config=backbone,
            backbone_channel_list=[96, 48, 24, 12],
            backbone_feature_sizes=[[size // s, size // s] for s in (4, 8, 16)],
            fpn_hidden_size=hidden,
        ),
        prompt_encoder_config=Sam2VideoPromptEncoderConfig(
            hidden_size=hidden, image_size=size, mask_input_channels=8
        ),
        mask_decoder_config=Sam2VideoMaskDecoderConfig(
            hidden_size=hidden, mlp_dim=64, num_attention_heads=4, iou_head_hidden_dim=hidden
        ),
        image_size=size,
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=64,
    )
    torch.manual_seed(seed)
    model = Sam2VideoModel(config).eval()
    processor = Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(
            size={"height": size, "width": size},
            mask_size={"height": size // 4, "width": size // 4},
        ),
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}),
    )
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    processor.save_pretrained(target)
    return target
