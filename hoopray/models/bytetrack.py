"""Box tracking with ByteTrack (``trackers.ByteTrackTracker``): no GPU, no segmentation model.

A fallback for :mod:`hoopray.models.sam2_video` when no GPU or SAM2 weights are at hand.
It follows the :class:`~hoopray.models.base.Tracker` protocol with these differences:

- A track's mask is its box filled (the pixels the box covers, in
  :mod:`hoopray.geometry`'s convention); ``xyxy`` is the matched detection's box.
- It moves only on detections: :meth:`ByteTrackTracker.step` must be given the frame's
  detections (all of them, tracked or not) every time the tracks should update. With
  ``new_detections=None`` it repeats the last result (same boxes and masks, source
  "propagated") and ByteTrack's state does not advance; its lost-track budget
  (``lost_track_buffer``) therefore counts detection frames, not video frames.
- Detections prompted by :meth:`ByteTrackTracker.start` become tracks at once. A box
  that appears later becomes a track once ByteTrack has matched it on
  ``minimum_consecutive_frames`` detection frames; it is reported from then on, with
  source "added" on that first frame.
- A track is reported on the detection frames it is matched on; a track ByteTrack holds
  as lost is not reported until it is matched again (or is dropped after the budget).

Ids start at 1 and are never reused; ``data["class_name"]`` is the class of the
detection that started the track and ``confidence`` the matched detection's (1.0 where
the detection had none).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from hoopray.models.tracking import (
    ClipGuard,
    at_least,
    detection_class_names,
    empty_tracks,
    in_range,
    make_tracks,
)
from hoopray.types import TrackSource

if TYPE_CHECKING:
    import supervision as sv


def with_confidence(detections: sv.Detections) -> sv.Detections:
    """``detections`` with confidence 1.0 where they carry none.

    trackers 2.6 treats missing confidences as 1.0 but 2.4 as 0.0 (so such boxes never
    start a track); explicit values behave the same in both.
    """
    if detections.confidence is not None:
        return detections
    filled = detections[:]
    filled.confidence = np.ones(len(detections), dtype=np.float32)
    return filled


class ByteTrackTracking:
    """ByteTrack settings; opens one :class:`ByteTrackTracker` per clip.

    Args:
        lost_track_buffer: detection frames a lost track is kept for re-association.
        track_activation_threshold: minimum detection confidence that starts a track
            (detections without confidence count as 1.0).
        minimum_consecutive_frames: detection frames a new box (one not prompted by
            ``start``) must be matched on before it becomes a track.
        minimum_iou_threshold: box IoU needed to associate a detection with a track.
        high_conf_det_threshold: detections at or above this confidence are associated
            first; the others only revive tracks left unmatched.
    """

    def __init__(
        self,
        lost_track_buffer: int = 30,
        track_activation_threshold: float = 0.25,
        minimum_consecutive_frames: int = 2,
        minimum_iou_threshold: float = 0.1,
        high_conf_det_threshold: float = 0.5,
    ) -> None:
        at_least("lost_track_buffer", lost_track_buffer, 0)
        at_least("minimum_consecutive_frames", minimum_consecutive_frames, 1)
        in_range("track_activation_threshold", track_activation_threshold, 0.0, 1.0)
        in_range("minimum_iou_threshold", minimum_iou_threshold, 0.0, 1.0)
        in_range("high_conf_det_threshold", high_conf_det_threshold, 0.0, 1.0)
        self.lost_track_buffer = lost_track_buffer
        self.track_activation_threshold = track_activation_threshold
        self.minimum_consecutive_frames = minimum_consecutive_frames
        self.minimum_iou_threshold = minimum_iou_threshold
        self.high_conf_det_threshold = high_conf_det_threshold

    def open(self) -> ByteTrackTracker:
        from trackers import ByteTrackTracker as ByteTrack

        byte_track = ByteTrack(
            lost_track_buffer=self.lost_track_buffer,
            frame_rate=30.0,  # the buffer is then exactly lost_track_buffer updates
            track_activation_threshold=self.track_activation_threshold,
            minimum_consecutive_frames=self.minimum_consecutive_frames,
            minimum_iou_threshold=self.minimum_iou_threshold,
            high_conf_det_threshold=self.high_conf_det_threshold,
        )
        return ByteTrackTracker(byte_track, self.minimum_consecutive_frames)


class ByteTrackTracker:
    """One clip's ByteTrack state; see the module docstring for its behaviour."""

    def __init__(self, byte_track: object, minimum_consecutive_frames: int) -> None:
        self._byte_track = byte_track
        self._warm_updates = max(2, minimum_consecutive_frames)
        self._ids: dict[int, int] = {}  # ByteTrack's id -> ours
        self._class_names: dict[int, str | None] = {}
        self._guard = ClipGuard()
        self._size: tuple[int, int] = (0, 0)
        self._last: sv.Detections | None = None

    def start(self, frame: np.ndarray, detections: sv.Detections) -> sv.Detections:
        """Track every detection from this frame on.

        ByteTrack confirms a box only after matching it on consecutive updates, so the
        prompted detections are fed that many times here: the prompt counts as seen.
        """
        self._size = self._guard.start(frame)
        if len(detections) == 0:
            return self._remember(empty_tracks(*self._size))
        detections = with_confidence(detections)
        for _ in range(self._warm_updates):
            matched = self._byte_track.update(detections)
        return self._remember(self._report(matched, TrackSource.PROMPT))

    def step(self, frame: np.ndarray, new_detections: sv.Detections | None = None) -> sv.Detections:
        self._size = self._guard.step(frame)
        if new_detections is None:
            assert self._last is not None
            result = self._last[:]
            result.data["source"] = np.full(len(result), str(TrackSource.PROPAGATED), object)
            return result
        matched = self._byte_track.update(with_confidence(new_detections))
        return self._remember(self._report(matched, TrackSource.ADDED))

    def close(self) -> None:
        if self._guard.close():
            self._byte_track.reset()
        self._last = None

    def _remember(self, result: sv.Detections) -> sv.Detections:
        self._last = result
        return result

    def _report(self, matched: sv.Detections, origin: TrackSource) -> sv.Detections:
        from hoopray.geometry import boxes_to_masks

        height, width = self._size
        rows = np.flatnonzero(np.asarray(matched.tracker_id) >= 0)
        if len(rows) == 0:
            return empty_tracks(height, width)
        matched = matched[rows]
        names = detection_class_names(matched)
        ids, sources = [], []
        for inner, name in zip(matched.tracker_id.tolist(), names, strict=True):
            if inner not in self._ids:
                self._ids[inner] = len(self._ids) + 1
                self._class_names[inner] = name
                sources.append(str(origin))
            else:
                sources.append(str(TrackSource.PROPAGATED))
            ids.append(self._ids[inner])
        order = np.argsort(ids, kind="stable")
        xyxy = np.asarray(matched.xyxy, dtype=np.float32)[order]
        return make_tracks(
            xyxy,
            boxes_to_masks(xyxy, (width, height)),
            [ids[i] for i in order],
            [sources[i] for i in order],
            [self._class_names[matched.tracker_id[i]] for i in order],
            None if matched.confidence is None else matched.confidence[order],
        )
