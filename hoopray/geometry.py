"""Box operations and box-to-mask overlap (IoS), in pure numpy.

Boxes are ``(M, 4)`` arrays of ``[x1, y1, x2, y2]`` in float pixel coordinates, where
pixel column ``c`` spans ``[c, c + 1)``. Functions returning boxes return float32.

Pixel convention (used by :func:`crop`, :func:`box_pixels`, :func:`boxes_to_masks` and
:func:`ios_masks_boxes` alike): a box covers the pixels its area touches, that is
columns ``floor(x1) .. ceil(x2) - 1`` and rows ``floor(y1) .. ceil(y2) - 1``, clipped to
the frame. An integer box ``[0, 0, 10, 10]`` therefore covers exactly ``frame[0:10,
0:10]``; a box with ``x2 <= x1`` or ``y2 <= y1`` covers nothing.

The notebook's ``xyxy_to_mask`` truncated with ``int()`` and filled ``y1:y2 + 1, x1:x2
+ 1`` (inclusive edges), so the same integer box covered an 11 x 11 patch there and
10 x 10 here. Boxes from :func:`hoopray.masks.masks_to_xyxy` follow this module's
convention, so cropping a mask's box returns exactly its pixels.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _as_boxes(xyxy: np.ndarray | Sequence[Sequence[float]]) -> np.ndarray:
    boxes = np.asarray(xyxy, dtype=np.float64)
    if boxes.size == 0:
        return np.zeros((0, 4), dtype=np.float64)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"boxes must have shape (M, 4); got {boxes.shape}")
    if np.isnan(boxes).any():
        raise ValueError("boxes contain NaN")
    return boxes


def _check_wh(wh: tuple[int, int]) -> tuple[int, int]:
    width, height = (int(v) for v in wh)
    if width < 0 or height < 0:
        raise ValueError(f"frame size must be non-negative; got {wh}")
    return width, height


def shrink_boxes(xyxy: np.ndarray, scale: float = 0.4) -> np.ndarray:
    """Scale each box's width and height by ``scale`` about its centre.

    The default keeps the central 40 % (the torso, where jersey colours are).

    Raises:
        ValueError: if ``scale`` is negative or not finite, or the boxes are malformed.
    """
    if not np.isfinite(scale) or scale < 0:
        raise ValueError(f"scale must be a finite number >= 0; got {scale}")
    boxes = _as_boxes(xyxy)
    centre = (boxes[:, :2] + boxes[:, 2:]) / 2
    half = (boxes[:, 2:] - boxes[:, :2]) * (scale / 2)
    return np.concatenate([centre - half, centre + half], axis=1).astype(np.float32)


def pad_boxes(xyxy: np.ndarray, px: float, py: float) -> np.ndarray:
    """Grow each box by ``px`` on the left and right and ``py`` on the top and bottom.

    Raises:
        ValueError: if a padding is negative or not finite (use :func:`shrink_boxes`).
    """
    if not (np.isfinite(px) and np.isfinite(py)) or px < 0 or py < 0:
        raise ValueError(f"padding must be finite and >= 0; got px={px}, py={py}")
    boxes = _as_boxes(xyxy)
    return (boxes + np.array([-px, -py, px, py])).astype(np.float32)


def clip_boxes(xyxy: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    """Clip boxes to a ``(width, height)`` frame: x to ``[0, width]``, y to ``[0, height]``.

    A box wholly outside the frame becomes degenerate (zero width or height).
    """
    width, height = _check_wh(wh)
    boxes = _as_boxes(xyxy)
    upper = np.array([width, height, width, height], dtype=np.float64)
    return np.clip(boxes, 0, upper).astype(np.float32)


def box_areas(xyxy: np.ndarray) -> np.ndarray:
    """Geometric area of each box (inverted boxes count as 0), float32 ``(M,)``.

    This is the continuous area, not the pixel count :func:`box_pixels` implies.
    """
    boxes = _as_boxes(xyxy)
    sides = np.clip(boxes[:, 2:] - boxes[:, :2], 0, None)
    return (sides[:, 0] * sides[:, 1]).astype(np.float32)


def box_pixels(xyxy: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    """Integer slice bounds ``[c1, r1, c2, r2]`` of the pixels each box covers.

    ``frame[r1:r2, c1:c2]`` is the box's patch (see the module's pixel convention);
    bounds lie in the frame and an empty patch has ``c2 == c1`` and ``r2 == r1``.

    Returns:
        int64 ``(M, 4)``.
    """
    width, height = _check_wh(wh)
    boxes = _as_boxes(xyxy)
    upper = np.array([width, height], dtype=np.float64)
    low = np.clip(np.floor(boxes[:, :2]), 0, upper)
    high = np.clip(np.ceil(boxes[:, 2:]), 0, upper)
    high = np.maximum(high, low)
    empty = (boxes[:, 2:] <= boxes[:, :2]).any(axis=1) | (high <= low).any(axis=1)
    high[empty] = low[empty]
    return np.concatenate([low, high], axis=1).astype(np.int64)


def crop(frame: np.ndarray, box: Sequence[float] | np.ndarray) -> np.ndarray:
    """Copy of the pixels of ``frame`` (``(H, W)`` or ``(H, W, C)``) that ``box`` covers.

    The box is clipped to the frame; the result may be empty (a zero-sized dimension).
    It is a copy, so a kept crop does not hold the whole frame in memory.
    """
    if frame.ndim not in (2, 3):
        raise ValueError(f"frame must be (H, W) or (H, W, C); got shape {frame.shape}")
    coords = np.asarray(box, dtype=np.float64).reshape(-1)
    if coords.shape != (4,):
        raise ValueError(f"box must have 4 coordinates; got {coords.shape[0]}")
    c1, r1, c2, r2 = box_pixels(coords[None, :], (frame.shape[1], frame.shape[0]))[0]
    return frame[r1:r2, c1:c2].copy()


def boxes_to_masks(xyxy: np.ndarray, wh: tuple[int, int]) -> np.ndarray:
    """Full-frame boolean masks ``(M, H, W)`` of boxes, for tests and drawing only.

    The pipeline never needs these: :func:`ios_masks_boxes` works on crops.
    """
    width, height = _check_wh(wh)
    bounds = box_pixels(xyxy, (width, height))
    masks = np.zeros((len(bounds), height, width), dtype=bool)
    for index, (c1, r1, c2, r2) in enumerate(bounds):
        masks[index, r1:r2, c1:c2] = True
    return masks


def ios_masks_boxes(
    masks: np.ndarray,
    boxes: np.ndarray,
    mask_areas: np.ndarray | None = None,
    mask_bounds: np.ndarray | None = None,
) -> np.ndarray:
    """Intersection over the smaller area between every mask and every box.

    ``ios[i, j] = |mask_i ∩ box_j| / min(|mask_i|, |box_j|)`` in pixels, with box_j's
    pixels per the module's convention (clipped to the frame), and 0 where either is
    empty (never NaN). Equal to ``supervision.mask_iou_batch(masks, boxes_to_masks(boxes,
    (W, H)), overlap_metric=OverlapMetric.IOS)`` but reads only each box's patch of each
    mask: cost ``N x sum of box areas`` instead of ``N x M x H x W``; with ``mask_bounds``
    only the patches where a box meets a mask's bounds, so a box that lies on one player
    reads one patch.

    Args:
        masks: ``(N, H, W)`` bool (other dtypes are read as ``!= 0``).
        boxes: ``(M, 4)`` xyxy.
        mask_areas: the masks' pixel counts if already known (``(N,)``).
        mask_bounds: ``(N, 4)`` integer ``[c1, r1, c2, r2]`` (exclusive ends) that hold
            every set pixel of each mask, if known (e.g.
            :attr:`hoopray.masks.MaskSummary.bounds`); pixels outside them are taken as
            unset, unchecked.

    Returns:
        float64 ``(N, M)``.
    """
    masks = np.asarray(masks)
    if masks.ndim != 3:
        raise ValueError(f"masks must have shape (N, H, W); got {masks.shape}")
    if masks.dtype != bool:
        masks = masks != 0
    count, height, width = masks.shape
    bounds = box_pixels(boxes, (width, height))
    if mask_areas is None:
        mask_areas = np.fromiter((np.count_nonzero(m) for m in masks), np.int64, count=count)
    mask_areas = np.asarray(mask_areas, dtype=np.float64)
    if mask_areas.shape != (count,):
        raise ValueError(f"mask_areas must have shape ({count},); got {mask_areas.shape}")
    ios = np.zeros((count, len(bounds)), dtype=np.float64)
    if count == 0 or len(bounds) == 0:
        return ios
    box_area = ((bounds[:, 2] - bounds[:, 0]) * (bounds[:, 3] - bounds[:, 1])).astype(np.float64)
    if mask_bounds is None:
        for j, (c1, r1, c2, r2) in enumerate(bounds.tolist()):
            if box_area[j] == 0:
                continue
            overlap = masks[:, r1:r2, c1:c2].sum(axis=(1, 2), dtype=np.int64)
            smaller = np.minimum(mask_areas, box_area[j])
            np.divide(overlap, smaller, out=ios[:, j], where=smaller > 0)
        return ios
    held = np.asarray(mask_bounds, dtype=np.int64)
    if held.shape != (count, 4):
        raise ValueError(f"mask_bounds must have shape ({count}, 4); got {held.shape}")
    low = np.maximum(held[:, None, :2], bounds[None, :, :2])
    high = np.minimum(held[:, None, 2:], bounds[None, :, 2:])
    meets = (high > low).all(axis=2) & (mask_areas[:, None] > 0) & (box_area[None, :] > 0)
    for i, j in zip(*np.nonzero(meets), strict=True):
        (c1, r1), (c2, r2) = low[i, j], high[i, j]
        overlap = np.count_nonzero(masks[i, r1:r2, c1:c2])
        ios[i, j] = overlap / min(mask_areas[i], box_area[j])
    return ios


def ios_pairs(ios: np.ndarray, threshold: float) -> list[tuple[int, int, float]]:
    """Pairs ``(mask_index, box_index, value)`` with ``value >= threshold``, best first.

    Ties keep row-major order. Indices may repeat (one mask can hold two number boxes);
    an empty matrix or no pair above the threshold gives ``[]``.
    """
    matrix = np.asarray(ios, dtype=np.float64)
    if matrix.size == 0:
        return []
    if matrix.ndim != 2:
        raise ValueError(f"ios must be a 2-D matrix; got shape {matrix.shape}")
    rows, cols = np.nonzero(matrix >= threshold)
    values = matrix[rows, cols]
    order = np.argsort(-values, kind="stable")
    return [(int(rows[k]), int(cols[k]), float(values[k])) for k in order]
