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
    """Drop stray pieces of one mask; see :func:`clean_masks` for the rule.

    Args:
        mask: ``(H, W)``.
        max_distance: relative distance, ``>= 0``; ``inf`` keeps everything.

    Returns:
        A new ``(H, W)`` bool mask; an empty mask gives an empty mask.
    """
    cleaned, _ = clean_masks(_as_mask(mask)[None], max_distance)
    return cleaned[0]


def clean_masks(
    masks: np.ndarray, max_distance: float = 0.5, *, in_place: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Drop stray pieces of each mask, keeping its main segment and the pieces near it.

    Pieces are found on a grid of 8 x 8 pixel cells: a cell is occupied when any of its
    pixels is set, and 8-connected occupied cells form one piece, so fragments less than
    about 8 px apart count as one piece. The main piece has the most pixels (the first
    in row-major order on a tie). Another piece is kept when the distance between its
    centroid and the main piece's centroid is at most ``max_distance`` times the
    diagonal of the main piece's box (measured on the grid), so the cut-off scales with
    the player's size in the frame (the notebook used a fixed 300 px on full-resolution
    components).

    The whole stack is read once (a bit count per 8 pixels) and only the cells of
    dropped pieces are written, so ten 1280x720 masks take about a millisecond; the
    pixel counts fall out of the same pass and are returned as the areas.

    Args:
        masks: ``(N, H, W)``.
        max_distance: relative distance, ``>= 0``; ``inf`` keeps everything.
        in_place: clean ``masks`` itself (it must be a C-contiguous bool array) instead of
            a copy.

    Returns:
        The cleaned ``(N, H, W)`` bool masks and their pixel counts (int64 ``(N,)``).
    """
    if not max_distance >= 0:
        raise ValueError(f"max_distance must be >= 0; got {max_distance}")
    stack = _as_stack(masks)
    if in_place and (stack is not masks or not stack.flags.c_contiguous):
        raise ValueError("in_place needs a C-contiguous bool (N, H, W) array")
    out = stack if in_place else stack.copy()
    count, height, width = out.shape
    if count == 0:
        return out, np.zeros(0, dtype=np.int64)
    words, padded = _cell_words(out)
    cells = _cell_counts(words)
    areas = cells.sum(axis=(1, 2))
    rows, cols = cells.shape[1:]
    # The layers stacked on one board with an empty row between them, so that one 2-D
    # labelling finds every mask's pieces and never joins two masks.
    board = np.zeros((count, rows + 1, cols), dtype=np.int64)
    board[:, :rows] = cells
    board = board.reshape(count * (rows + 1), cols)
    labels, pieces = ndimage.label(board > 0, structure=_EIGHT_CONNECTED)
    extents = ndimage.find_objects(labels)
    top = np.array([e[0].start for e in extents], dtype=np.int64)
    piece_layer = top // (rows + 1)
    if pieces == 0 or np.bincount(piece_layer, minlength=count).max() <= 1:
        return out, areas
    occupied = np.flatnonzero(labels)
    owner = labels.ravel()[occupied] - 1
    weight = board.ravel()[occupied].astype(np.float64)
    board_y, cell_x = np.divmod(occupied, cols)
    size = np.bincount(owner, weight, pieces)
    centre_y = np.bincount(owner, weight * board_y, pieces) / size
    centre_x = np.bincount(owner, weight * cell_x, pieces) / size
    order = np.lexsort((np.arange(pieces), -size, piece_layer))
    first_of_layer = np.concatenate([[True], np.diff(piece_layer[order]) != 0])
    main_of_layer = np.zeros(count, dtype=np.int64)
    main_of_layer[piece_layer[order][first_of_layer]] = order[first_of_layer]
    main = main_of_layer[piece_layer]
    height_cells = np.array([e[0].stop - e[0].start for e in extents])
    width_cells = np.array([e[1].stop - e[1].start for e in extents])
    diagonal = np.hypot(height_cells, width_cells)[main]
    distance = np.hypot(centre_y - centre_y[main], centre_x - centre_x[main])
    dropped = (distance > max_distance * diagonal)[owner]
    if not dropped.any():
        return out, areas
    layer, cell_y = np.divmod(board_y[dropped], rows + 1)
    cell_x = cell_x[dropped]
    words[layer[:, None], cell_y[:, None] * _GRID + np.arange(_GRID), cell_x[:, None]] = 0
    np.subtract.at(areas, layer, cells[layer, cell_y, cell_x])
    if padded is not None:
        out[...] = padded[:, :height, :width]
    return out, areas


def _cell_counts(words: np.ndarray) -> np.ndarray:
    """Set pixels per 8 x 8 cell from the masks' words, as ``(N, H/8, W/8)`` int64.

    A word holds 8 pixels as 8 bytes of 0 or 1, so adding the 8 words of a cell column
    leaves each byte at most 8 with no carry between bytes; multiplying by 0x0101...01
    then gathers the sum of the 8 bytes in the top byte.
    """
    count, padded_height, row_words = words.shape
    column_sums = words.reshape(count, padded_height // _GRID, _GRID, row_words).sum(
        axis=2, dtype=np.uint64
    )
    return ((column_sums * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


def _cell_words(masks: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """``masks`` viewed as one uint64 per 8 pixels of a row, padded to whole cells.

    Returns the words and, when padding needed a copy, that padded copy (else None: the
    words are a view of ``masks`` and writing them writes the masks).
    """
    _, height, width = masks.shape
    pad_h, pad_w = -height % _GRID, -width % _GRID
    if pad_h or pad_w or not masks.flags.c_contiguous:
        padded = np.pad(masks, ((0, 0), (0, pad_h), (0, pad_w)))
        return padded.view(np.uint64), padded
    return masks.view(np.uint64), None


def rle_encode(mask: np.ndarray) -> str:
    """COCO compressed RLE ``counts`` of an ``(H, W)`` mask, as an ASCII string.

    The string alone does not carry the size: store height and width beside it.
    """
    source = _as_mask(mask)
    encoded = coco_mask.encode(np.asfortranarray(source, dtype=np.uint8))
    return encoded["counts"].decode("ascii")


def _rle_runs(counts: str) -> np.ndarray:
    """Run lengths of a COCO compressed RLE string, decoded with vector operations.

    The format: each number is stored in 5-bit groups, least significant first, one
    character (``48 + bits``) per group, bit 0x20 meaning "more groups follow" and bit
    0x10 of the last group its sign; from the fourth number on, each is stored as the
    difference to the number two places before it.
    """
    try:
        codes = np.frombuffer(counts.encode("ascii"), dtype=np.uint8).astype(np.int64) - 48
    except UnicodeEncodeError as err:
        raise ValueError("RLE counts hold a non-ASCII character") from err
    if codes.size == 0:
        return np.zeros(0, dtype=np.int64)
    if codes.min() < 0 or codes.max() >= 64:
        raise ValueError("RLE counts hold an invalid character")
    last = (codes & 0x20) == 0
    if not last[-1]:
        raise ValueError("RLE counts end in the middle of a number")
    group = np.concatenate([[0], np.cumsum(last)[:-1]])
    first = np.flatnonzero(np.concatenate([[True], last[:-1]]))
    place = np.arange(codes.size) - first[group]
    if place.max() >= 7:
        raise ValueError("RLE counts hold a number too large for a mask")
    values = np.zeros(first.size, dtype=np.int64)
    np.add.at(values, group, (codes & 0x1F) << (5 * place))
    ends = np.flatnonzero(last)
    negative = (codes[ends] & 0x10) != 0
    values[negative] -= np.int64(1) << (5 * (place[ends][negative] + 1))
    runs = values.copy()
    runs[3::2] = np.cumsum(values[3::2]) + (runs[1] if runs.size > 1 else 0)
    runs[4::2] = np.cumsum(values[4::2]) + (runs[2] if runs.size > 2 else 0)
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
    if runs.size == 0 or runs.min() < 0 or runs.sum() != height * width:
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
    # count_nonzero over a whole array is several times faster than with ``axis``
    return np.fromiter((np.count_nonzero(m) for m in stack), dtype=np.int64, count=len(stack))
