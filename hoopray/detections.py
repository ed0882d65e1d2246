"""Rows of ``observations/detections``: every detection of a detection frame, kept.

One detector call per frame finds players, numbers, referees, the ball and the rim
together; observe records each of them here (:data:`hoopray.types.OBS_DETECTIONS`), so
that the ball, the rim and the referees can be queried next to the identities. A
detection's ``role`` comes from its class name through the config's ``roles``
(:class:`hoopray.models.base.Roles`); a player detection carries the id of the track it
matches on that frame, by the rule observe uses for a track's detector class: each track
takes the player detection of highest box IoU, if that IoU is at least :data:`MATCH_IOU`,
and a detection that two tracks take goes to the one it overlaps most.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import numpy as np

from hoopray.types import Role

if TYPE_CHECKING:
    import supervision as sv

    from hoopray.models.base import Roles

MATCH_IOU = 0.5

DetectionRows = dict[str, list[object]]
"""Columns of ``observations/detections``, as lists of equal length."""


def class_roles(roles: Roles) -> dict[str, str]:
    """Class name -> role value; a class listed under two roles takes the first of
    :class:`hoopray.types.Role`'s order."""
    out: dict[str, str] = {}
    for role in Role:
        for name in getattr(roles, role.value, ()):
            out.setdefault(str(name), role.value)
    return out


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo = np.maximum(a[:, None, :2], b[None, :, :2])
    hi = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi - lo, 0, None).prod(axis=2)
    area_a = np.clip(a[:, 2:] - a[:, :2], 0, None).prod(axis=1)
    area_b = np.clip(b[:, 2:] - b[:, :2], 0, None).prod(axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def match_tracks(
    det_boxes: np.ndarray,
    is_player: np.ndarray,
    track_boxes: np.ndarray,
    track_ids: np.ndarray,
    min_iou: float = MATCH_IOU,
) -> list[int | None]:
    """The track id matched to each detection (None for non-players and unmatched ones).

    Args:
        det_boxes: ``(N, 4)`` xyxy boxes of the frame's detections.
        is_player: ``(N,)`` bool, the detections whose role is player.
        track_boxes: ``(M, 4)`` xyxy boxes of the frame's live tracks.
        track_ids: ``(M,)`` their ids.
        min_iou: the least IoU of a match.
    """
    n = len(det_boxes)
    out: list[int | None] = [None] * n
    players = np.flatnonzero(np.asarray(is_player, dtype=bool))
    if len(players) == 0 or len(track_boxes) == 0:
        return out
    iou = _iou(
        np.asarray(track_boxes, np.float64).reshape(-1, 4),
        np.asarray(det_boxes, np.float64).reshape(-1, 4)[players],
    )
    best = iou.argmax(axis=1)
    best_iou = iou[np.arange(len(best)), best]
    taken: set[int] = set()
    for k in np.argsort(-best_iou, kind="stable").tolist():
        j = int(best[k])
        if best_iou[k] < min_iou or j in taken:
            continue
        taken.add(j)
        out[int(players[j])] = int(track_ids[k])
    return out


def detection_rows(
    frame: int,
    detections: sv.Detections,
    roles: Mapping[str, str],
    track_boxes: np.ndarray,
    track_ids: np.ndarray,
) -> DetectionRows:
    """The ``observations/detections`` rows of one detection frame.

    Args:
        frame: the frame index.
        detections: the detector's output for the frame (``data["class_name"]``).
        roles: class name -> role (:func:`class_roles`); a class not in it has no role.
        track_boxes: ``(M, 4)`` boxes of the frame's recorded tracks (empty before
            tracking starts).
        track_ids: ``(M,)`` their ids.
    """
    from hoopray.models.base import CLASS_NAME

    n = len(detections)
    boxes = np.asarray(detections.xyxy, np.float64).reshape(-1, 4)
    raw_names = detections.data.get(CLASS_NAME) if n else None
    names = [""] * n if raw_names is None else [str(v) for v in raw_names]
    role = [roles.get(name) for name in names]
    confidence = (
        [None] * n if detections.confidence is None else np.asarray(detections.confidence).tolist()
    )
    is_player = np.array([r == Role.PLAYER for r in role], dtype=bool)
    return {
        "frame": [frame] * n,
        "class_name": names,
        "role": role,
        "x1": boxes[:, 0].tolist(),
        "y1": boxes[:, 1].tolist(),
        "x2": boxes[:, 2].tolist(),
        "y2": boxes[:, 3].tolist(),
        "confidence": confidence,
        "track_id": match_tracks(boxes, is_player, track_boxes, track_ids),
    }
