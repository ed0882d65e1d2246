"""Player masks: clean-up, COCO run-length encoding, boxes and areas.

Masks are boolean ``(H, W)`` arrays (or ``(N, H, W)`` stacks); inputs of another dtype
are read as ``!= 0``.
"""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask
from scipy import ndimage

_EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)


def _as_mask(mask: np.ndarray) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim != 2:
        raise ValueError(f"mask must have shape (H, W); got {array.shape}")
    return array if array.dtype == bool else array != 0


def _as_stack(masks: np.ndarray) -> np.ndarray:
    array = np.asarray(masks)
    if array.ndim != 3:
        raise ValueError(f"masks must have shape (N, H, W); got {array.shape}")
    return array if array.dtype == bool else array != 0


_GRID = 8


def clean_mask(mask: np.ndarray, max_distance: float = 0.5) -> np.ndarray:
    """Drop stray pieces of a mask, keeping its main segment and the pieces near it.

    Pieces are found on a grid of 8 x 8 pixel cells: a cell is occupied when any of its
    pixels is set, and 8-connected occupied cells form one piece, so fragments less than
    about 8 px apart count as one piece. The main piece has the most pixels (the first
    in row-major order on a tie). Another piece is kept when the distance between its
    centroid and the main piece's centroid is at most ``max_distance`` times the
    diagonal of the main piece's box (measured on the grid), so the cut-off scales with
    the player's size in the frame (the notebook used a fixed 300 px on full-resolution
    components). Working on the grid makes this a few whole-frame vector passes instead
    of a per-pixel labelling: about 0.3 ms for a 1280x720 mask.

    Args:
        mask: ``(H, W)``.
        max_distance: relative distance, ``>= 0``; ``inf`` keeps everything.

    Returns:
        A new ``(H, W)`` bool mask; an empty mask gives an empty mask.
    """
    if not max_distance >= 0:
        raise ValueError(f"max_distance must be >= 0; got {max_distance}")
    source = _as_mask(mask)
    counts = _cell_counts(source)
    labels, count = ndimage.label(counts > 0, structure=_EIGHT_CONNECTED)
    if count <= 1:
        return source.copy()
    cell_y, cell_x = np.nonzero(labels)
    owner = labels[cell_y, cell_x]
    weight = counts[cell_y, cell_x].astype(np.float64)
    sizes = np.bincount(owner, weight, count + 1)[1:]
    main = int(np.argmax(sizes))
    centres = (
        np.stack(
            [
                np.bincount(owner, weight * (cell_y + 0.5), count + 1)[1:],
                np.bincount(owner, weight * (cell_x + 0.5), count + 1)[1:],
            ],
            axis=1,
        )
        / sizes[:, None]
    )
    in_main = owner == main + 1
    diagonal = np.hypot(np.ptp(cell_y[in_main]) + 1, np.ptp(cell_x[in_main]) + 1)
    distance = np.hypot(*(centres - centres[main]).T)
    keep = np.concatenate([[False], distance <= max_distance * diagonal])
    if keep[1:].all():
        return source.copy()
    return _keep_cells(source, keep[labels])


def _padded_words(mask: np.ndarray) -> np.ndarray:
    """The mask padded to whole cells, viewed as one uint64 per 8 pixels of a row."""
    height, width = mask.shape
    pad_h, pad_w = -height % _GRID, -width % _GRID
    if pad_h or pad_w or not mask.flags.c_contiguous:
        mask = np.pad(mask, ((0, pad_h), (0, pad_w)))
    return mask.view(np.uint64)


def _cell_counts(mask: np.ndarray) -> np.ndarray:
    """Set pixels per 8 x 8 cell, as (ceil(H/8), ceil(W/8)) counts."""
    per_row = np.bitwise_count(_padded_words(mask))
    return per_row.reshape(-1, _GRID, per_row.shape[1]).sum(axis=1, dtype=np.int32)


def _keep_cells(mask: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """The pixels of ``mask`` that lie in the cells where ``keep`` is True."""
    height, width = mask.shape
    words = np.where(keep, np.uint64(0x0101010101010101), np.uint64(0))
    kept = _padded_words(mask) & np.repeat(words, _GRID, axis=0)
    return np.ascontiguousarray(kept.view(bool)[:height, :width])


def rle_encode(mask: np.ndarray) -> str:
    """COCO compressed RLE ``counts`` of an ``(H, W)`` mask, as an ASCII string.

    The string alone does not carry the size: store height and width beside it.
    """
    source = _as_mask(mask)
    encoded = coco_mask.encode(np.asfortranarray(source, dtype=np.uint8))
    return encoded["counts"].decode("ascii")


def _rle_runs(counts: str) -> list[int]:
    """Run lengths of a COCO compressed RLE string (5 bits a character, delta-coded)."""
    runs: list[int] = []
    position = 0
    while position < len(counts):
        value = 0
        shift = 0
        more = True
        while more:
            if position >= len(counts):
                raise ValueError("RLE counts end in the middle of a number")
            code = ord(counts[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"RLE counts hold an invalid character {counts[position]!r}")
            value |= (code & 0x1F) << shift
            more = bool(code & 0x20)
            shift += 5
            position += 1
            if not more and code & 0x10:
                value |= -1 << shift
        if len(runs) > 2:
            value += runs[-2]
        runs.append(value)
    return runs


def rle_decode(counts: str, height: int, width: int) -> np.ndarray:
    """Decode :func:`rle_encode`'s string back to an ``(height, width)`` bool mask.

    Raises:
        ValueError: if the counts are malformed or do not cover exactly
            ``height * width`` pixels.
    """
    if height < 0 or width < 0:
        raise ValueError(f"mask size must be non-negative; got {height} x {width}")
    runs = _rle_runs(counts)
    if not runs or min(runs) < 0 or sum(runs) != height * width:
        raise ValueError(f"RLE counts {counts[:40]!r} do not describe a {height} x {width} mask")
    rle = {"size": [int(height), int(width)], "counts": counts.encode("ascii")}
    return coco_mask.decode(rle).astype(bool)


def masks_to_xyxy(masks: np.ndarray) -> np.ndarray:
    """Bounding box of each mask in :mod:`hoopray.geometry`'s convention, float32 ``(N, 4)``.

    A mask spanning columns ``c1..c2`` and rows ``r1..r2`` gets ``[c1, r1, c2 + 1,
    r2 + 1]`` (``supervision.mask_to_xyxy`` gives ``[c1, r1, c2, r2]``). An empty mask
    gives zeros.
    """
    stack = _as_stack(masks)
    boxes = np.zeros((stack.shape[0], 4), dtype=np.float32)
    for index, mask in enumerate(stack):
        rows = np.flatnonzero(mask.any(axis=1))
        if rows.size == 0:
            continue
        cols = np.flatnonzero(mask.any(axis=0))
        boxes[index] = (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    return boxes


def mask_areas(masks: np.ndarray) -> np.ndarray:
    """Pixel count of each mask, int64 ``(N,)``."""
    stack = _as_stack(masks)
    count, height, width = stack.shape
    return np.count_nonzero(stack.reshape(count, height * width), axis=1).astype(np.int64)
