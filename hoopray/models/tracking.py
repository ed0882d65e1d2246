"""What the trackers share: validated settings, call-order guards and the track book.

The trackers (:mod:`~hoopray.models.sam2_video`, :mod:`~hoopray.models.sam2_meta`,
:mod:`~hoopray.models.bytetrack` and the replay double) follow the
:class:`~hoopray.models.base.Tracker` protocol. What each would otherwise repeat lives here:

- :func:`at_least` and :func:`in_range` check settings, with the setting's name in the message;
  :class:`TrackSettings` holds the checked settings of the two SAM2 trackers.
- :class:`ClipGuard` enforces the call order of one clip (``start`` once, then ``step``, nothing
  after ``close``) and that every frame is RGB and keeps the clip's size.
- :class:`TrackBook` keeps a mask tracker's ids, class names, lost counters and new-track rule.
- :func:`empty_tracks` and :func:`make_tracks` build the returned ``sv.Detections``.

Pure numpy; supervision only for the result type and its box IoU.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from hoopray.models.base import CLASS_NAME, SOURCE
from hoopray.types import TrackSource

if TYPE_CHECKING:
    import supervision as sv

MAX_TRACKS = 20
"""Default cap on live tracks in one clip.

Ten players and three referees are on court at once; the rest leaves room for players
entering (substitutions, players walking into the broadcast frame) while the tracks they
replace are still counted as lost for ``max_lost_frames``.
"""


def at_least(name: str, value: int, minimum: int) -> None:
    """Raise ValueError unless ``value >= minimum``."""
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}")


def in_range(name: str, value: float, low: float, high: float, *, low_open: bool = False) -> None:
    """Raise ValueError unless ``value`` is in ``[low, high]`` (``(low, high]`` if ``low_open``).

    NaN is never in range.
    """
    inside = (low < value if low_open else low <= value) and value <= high
    if not inside:
        bracket = "(" if low_open else "["
        raise ValueError(f"{name} must be in {bracket}{low}, {high}]; got {value}")


@dataclass(frozen=True)
class TrackSettings:
    """Settings of a mask tracker, checked when made (ValueError on a bad one).

    Attributes:
        max_lost_frames: frames in a row with an empty mask after which a track is dropped.
        new_track_iou: a detection whose box IoU with every live track's latest box is below
            this starts a new track.
        max_tracks: at most this many live tracks (None: no cap); see :class:`TrackBook`.
        mask_threshold: logit threshold that binarises the masks.
        clean_max_distance: passed to :func:`hoopray.masks.clean_masks` (keep the main segment
            and pieces near it); None keeps masks as the model made them.
        max_cond_frames: prompts (conditioning frames) kept per object.
    """

    max_lost_frames: int = 15
    new_track_iou: float = 0.3
    max_tracks: int | None = MAX_TRACKS
    mask_threshold: float = 0.0
    clean_max_distance: float | None = 0.5
    max_cond_frames: int = 2

    def __post_init__(self) -> None:
        at_least("max_lost_frames", self.max_lost_frames, 0)
        in_range("new_track_iou", self.new_track_iou, 0.0, 1.0, low_open=True)
        if self.max_tracks is not None:
            at_least("max_tracks", self.max_tracks, 1)
        at_least("max_cond_frames", self.max_cond_frames, 1)


def check_frame(frame: np.ndarray, size: tuple[int, int] | None) -> tuple[int, int]:
    """(H, W) of an RGB uint8 frame; the size must not change within a clip."""
    if frame.ndim != 3 or frame.shape[2] != 3:
        raise ValueError(f"frame must be RGB (H, W, 3); got shape {frame.shape}")
    height, width = int(frame.shape[0]), int(frame.shape[1])
    if size is not None and (height, width) != size:
        raise ValueError(f"frame size changed within the clip: {size} -> {(height, width)}")
    return height, width


class ClipGuard:
    """The call order of one clip's tracker: ``start`` once, then ``step``, until ``close``.

    A tracker calls :meth:`start` or :meth:`step` first thing with the frame; they raise
    RuntimeError on misuse and ValueError on a bad frame, else return the frame's (H, W).
    """

    def __init__(self) -> None:
        self.started = False
        self.closed = False
        self.size: tuple[int, int] | None = None

    def start(self, frame: np.ndarray) -> tuple[int, int]:
        if self.started:
            raise RuntimeError("start() was already called for this clip; open a new tracker")
        size = self._check(frame)
        self.started = True
        return size

    def step(self, frame: np.ndarray) -> tuple[int, int]:
        if not self.started:
            raise RuntimeError("call start() before step()")
        return self._check(frame)

    def close(self) -> bool:
        """Mark the clip closed. True on the first call, when the tracker must free its state."""
        first = not self.closed
        self.closed = True
        return first

    def _check(self, frame: np.ndarray) -> tuple[int, int]:
        if self.closed:
            raise RuntimeError("tracker is closed")
        self.size = check_frame(frame, self.size)
        return self.size


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


def detection_class_names(detections: sv.Detections) -> list[str | None]:
    names = detections.data.get(CLASS_NAME) if detections.data else None
    if names is None:
        return [None] * len(detections)
    return [None if name is None else str(name) for name in names]


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import supervision as sv

    return sv.box_iou_batch(a.reshape(-1, 4), b.reshape(-1, 4))


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

    def __init__(self, settings: TrackSettings) -> None:
        self.settings = settings
        self._tracks: dict[int, _Track] = {}
        self._next_id = 1

    @property
    def live_ids(self) -> list[int]:
        return list(self._tracks)

    def uncovered(self, detections: sv.Detections) -> np.ndarray:
        """Indices of the detections that should start a new track."""
        if len(detections) == 0:
            return np.zeros(0, dtype=int)
        threshold = self.settings.new_track_iou
        boxes = np.asarray(detections.xyxy, dtype=np.float64)
        live = np.array([t.last_box for t in self._tracks.values()], dtype=np.float64)
        covered = (_box_iou(boxes, live) >= threshold).any(axis=1)
        degenerate = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
        candidates = np.flatnonzero(~covered & ~degenerate)
        if detections.confidence is not None:
            candidates = candidates[np.argsort(-detections.confidence[candidates], kind="stable")]
        kept: list[int] = []
        for index in candidates:
            if not kept or _box_iou(boxes[index], boxes[kept]).max() < threshold:
                kept.append(int(index))
        if self.settings.max_tracks is not None:
            kept = kept[: max(self.settings.max_tracks - len(self._tracks), 0)]
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
                if track.lost >= self.settings.max_lost_frames:
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
