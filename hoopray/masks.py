"""Player masks: clean-up, COCO run-length encoding, boxes and areas.

Masks are boolean ``(H, W)`` arrays (or ``(N, H, W)`` stacks); inputs of another dtype
are read as ``!= 0``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pycocotools import mask as coco_mask


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
    sums = _cell_sums(words)
    rows, cols = sums.shape[1:]
    # The layers stacked on one board with an empty row between them, so that one 2-D
    # labelling finds every mask's pieces and never joins two masks.
    board = np.zeros((count, rows + 1, cols), dtype=np.uint8)
    np.not_equal(sums, 0, out=board[:, :rows], casting="unsafe")
    board = board.reshape(count * (rows + 1), cols)
    occupied = np.flatnonzero(board)
    board_y, cell_x = np.divmod(occupied, cols)
    layer, cell_y = np.divmod(board_y, rows + 1)
    weight = _byte_sums(sums[layer, cell_y, cell_x])
    areas = np.bincount(layer, weight, minlength=count).astype(np.int64)
    if occupied.size == 0:
        return out, areas
    labelled, labels, stats, _ = cv2.connectedComponentsWithStats(
        board, connectivity=8, ltype=cv2.CV_32S
    )
    pieces = labelled - 1
    piece_layer = stats[1:, cv2.CC_STAT_TOP] // (rows + 1)
    if np.bincount(piece_layer, minlength=count).max() <= 1:
        return out, areas
    owner = labels.ravel()[occupied] - 1
    weight = weight.astype(np.float64)
    size = np.bincount(owner, weight, pieces)
    centre_y = np.bincount(owner, weight * board_y, pieces) / size
    centre_x = np.bincount(owner, weight * cell_x, pieces) / size
    first_cell = np.full(pieces, occupied.size, dtype=np.int64)
    seen, first_index = np.unique(owner, return_index=True)
    first_cell[seen] = first_index  # ``occupied`` is in row-major order
    order = np.lexsort((first_cell, -size, piece_layer))
    first_of_layer = np.concatenate([[True], np.diff(piece_layer[order]) != 0])
    main_of_layer = np.zeros(count, dtype=np.int64)
    main_of_layer[piece_layer[order][first_of_layer]] = order[first_of_layer]
    main = main_of_layer[piece_layer]
    extent = stats[1:, [cv2.CC_STAT_HEIGHT, cv2.CC_STAT_WIDTH]].astype(np.float64)
    diagonal = np.hypot(extent[:, 0], extent[:, 1])[main]
    distance = np.hypot(centre_y - centre_y[main], centre_x - centre_x[main])
    dropped = (distance > max_distance * diagonal)[owner]
    if not dropped.any():
        return out, areas
    layer, cell_y, cell_x = layer[dropped], cell_y[dropped], cell_x[dropped]
    words[layer[:, None], cell_y[:, None] * _GRID + np.arange(_GRID), cell_x[:, None]] = 0
    np.subtract.at(areas, layer, weight[dropped].astype(np.int64))
    if padded is not None:
        out[...] = padded[:, :height, :width]
    return out, areas


def _cell_sums(words: np.ndarray) -> np.ndarray:
    """Per 8 x 8 cell, the sum of its 8 words, as ``(N, H/8, W/8)`` uint64.

    A word holds 8 pixels as 8 bytes of 0 or 1, so adding the 8 words of a cell column
    leaves each byte at most 8 with no carry between bytes: nonzero exactly where the cell
    has a set pixel, and :func:`_byte_sums` gives its pixel count.
    """
    count, padded_height, row_words = words.shape
    return words.reshape(count, padded_height // _GRID, _GRID, row_words).sum(
        axis=2, dtype=np.uint64
    )


def _byte_sums(sums: np.ndarray) -> np.ndarray:
    """Sum of the 8 bytes of each uint64 (each byte at most 8), as int64: multiplying by
    0x0101...01 gathers the sum in the top byte."""
    return ((sums * np.uint64(0x0101010101010101)) >> np.uint64(56)).astype(np.int64)


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

    Identical to ``pycocotools.mask.encode``'s string, computed from the mask's bounding
    window only (see :func:`encode_masks`). The string alone does not carry the size:
    store height and width beside it.
    """
    return encode_masks(_as_mask(mask)[None]).counts[0]


@dataclass(frozen=True)
class MaskSummary:
    """What :func:`encode_masks` reads off a stack of masks in one pass.

    Attributes:
        areas: pixel count of each mask, int64 ``(N,)``.
        bounds: ``[c1, r1, c2, r2]`` of each mask's set pixels, exclusive ends, int64
            ``(N, 4)``; zeros for an empty mask. ``mask[r1:r2, c1:c2]`` holds every set pixel.
        counts: COCO compressed RLE string of each mask (as :func:`rle_encode`).
    """

    areas: np.ndarray
    bounds: np.ndarray
    counts: list[str]

    @property
    def boxes(self) -> np.ndarray:
        """The bounds as float32 xyxy boxes (:func:`masks_to_xyxy`'s convention)."""
        return self.bounds.astype(np.float32)


def encode_masks(masks: np.ndarray) -> MaskSummary:
    """Areas, bounding boxes and COCO RLE strings of an ``(N, H, W)`` stack, in one pass.

    The stack is read once to find each mask's columns; after that only each mask's column
    band (for its rows) and its bounding window (for its runs) are read. The runs are laid
    out in the frame's column-major order with the zeros outside the window implied, so the
    strings equal ``pycocotools.mask.encode``'s without a Fortran-ordered copy of the
    frame, and the areas are the lengths of the runs of ones. Nothing the size of a frame
    is copied: the windows are stacked (zero-padded to the largest) and all masks' runs are
    found and encoded together.
    """
    stack = _as_stack(masks)
    count, height, width = stack.shape
    bounds = _bounds(stack)
    mask_of, at = _changes(stack, bounds)
    runs, lengths = _runs(mask_of, at, count, height * width)
    starts = np.cumsum(lengths) - lengths
    place = np.arange(runs.size) - np.repeat(starts, lengths)
    ones = place % 2 == 1
    areas = np.bincount(np.repeat(np.arange(count), lengths)[ones], runs[ones], minlength=count)
    return MaskSummary(areas.astype(np.int64), bounds, _rle_strings(runs, lengths))


def _changes(stack: np.ndarray, bounds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each mask changes value: (mask index, frame index in column-major order),
    sorted by mask, then index.

    The windows are copied into one zero-padded ``(N, R + 2, C)`` block, a zero row above
    each, so a change between block rows ``q - 1`` and ``q`` of window column ``c`` is a
    change at frame index ``(left + c) * height + top + q - 1``. When a window spans the
    whole height, a run that goes on into the next column shows as an end and a start at
    the same index: both are dropped; so is an end at the very last pixel.
    """
    count, height, width = stack.shape
    size = height * width
    spans = bounds[:, 2:] - bounds[:, :2]
    cols, rows = (int(v) for v in spans.max(axis=0, initial=0))
    if not (rows and cols):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    block = np.zeros((count, rows + 2, cols), dtype=bool)
    for index, (c1, r1, c2, r2) in enumerate(bounds.tolist()):
        if r2 > r1:
            block[index, 1 : 1 + r2 - r1, : c2 - c1] = stack[index, r1:r2, c1:c2]
    flat = np.flatnonzero(block[:, 1:] != block[:, :-1])
    mask_of, rest = np.divmod(flat, (rows + 1) * cols)
    row, col = np.divmod(rest, cols)
    key = mask_of * (size + 1) + (bounds[mask_of, 0] + col) * height + bounds[mask_of, 1] + row
    key.sort()
    keep = np.ones(key.size, dtype=bool)
    tied = np.flatnonzero(key[1:] == key[:-1])
    keep[tied] = keep[tied + 1] = False
    mask_of, at = np.divmod(key[keep], size + 1)
    last = at < size
    return mask_of[last], at[last]


def _runs(
    mask_of: np.ndarray, at: np.ndarray, count: int, size: int
) -> tuple[np.ndarray, np.ndarray]:
    """Run lengths of every mask as pycocotools counts them (zeros first, possibly 0; no
    empty last run), concatenated, and how many belong to each mask."""
    changes = np.bincount(mask_of, minlength=count)
    width = changes + 2  # 0, the changes, size
    first = np.cumsum(width) - width
    edges = np.zeros(int(width.sum()), dtype=np.int64)
    edges[first + width - 1] = size
    within = np.arange(at.size) - np.repeat(np.cumsum(changes) - changes, changes)
    edges[first[mask_of] + 1 + within] = at
    steps = np.diff(edges)
    keep = np.ones(steps.size, dtype=bool)
    keep[(first + width - 1)[:-1]] = False  # from one mask's size to the next one's 0
    return steps[keep], changes + 1


def _bounds(stack: np.ndarray) -> np.ndarray:
    """``[c1, r1, c2, r2]`` (exclusive ends) of each mask's set pixels, int64 ``(N, 4)``.

    One pass over the stack finds each mask's columns (OR-ing its rows together, one
    uint64 per 8 pixels where the width allows); its rows come from its column band only.
    """
    count, height, width = stack.shape
    bounds = np.zeros((count, 4), dtype=np.int64)
    if not (count and height and width):
        return bounds
    if width % 8 == 0 and stack.flags.c_contiguous:
        columns_any = np.bitwise_or.reduce(stack.view(np.uint64), axis=1).view(np.uint8)
    else:
        columns_any = stack.any(axis=1)
    for index in range(count):
        cols = np.flatnonzero(columns_any[index])
        if cols.size == 0:
            continue
        c1, c2 = int(cols[0]), int(cols[-1]) + 1
        rows = np.flatnonzero(stack[index, :, c1:c2].any(axis=1))
        bounds[index] = (c1, rows[0], c2, rows[-1] + 1)
    return bounds


_MAX_GROUPS = 13  # 5 bits each: enough for any int64


def _rle_strings(runs: np.ndarray, lengths: np.ndarray) -> list[str]:
    """COCO compressed strings of several masks' run lengths (concatenated; ``lengths[i]``
    of them belong to mask ``i``, at least one each), encoded together.

    The format (pycocotools' ``rleToString``): from the fourth number on, each number is
    replaced by its difference to the number two places before it; each number is then
    written in 5-bit groups, least significant first, one character ``48 + group`` per
    group, with 0x20 added while more groups follow; the last group's bit 0x10 carries
    the sign.
    """
    if lengths.size == 0:
        return []
    values = runs.astype(np.int64)
    starts = np.cumsum(lengths) - lengths
    place = np.arange(values.size) - np.repeat(starts, lengths)
    later = np.flatnonzero(place > 2)
    values[later] -= values[later - 2]
    chars = np.zeros((values.size, _MAX_GROUPS), dtype=np.uint8)
    used = np.zeros(values.size, dtype=np.int64)
    going = np.ones(values.size, dtype=bool)
    rest = values
    for group in range(_MAX_GROUPS):
        bits = rest & 0x1F
        rest = rest >> 5
        more = np.where(bits & 0x10, rest != -1, rest != 0)
        chars[:, group] = 48 + bits + 0x20 * more
        used += going
        going &= more
        if not going.any():
            break
    text = chars[np.arange(_MAX_GROUPS) < used[:, None]].tobytes().decode("ascii")
    ends = np.cumsum(np.add.reduceat(used, starts)).tolist()  # every list has a run
    return [text[begin:end] for begin, end in zip([0, *ends[:-1]], ends, strict=True)]


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
    gives zeros. :func:`encode_masks` gives these with the areas and RLE strings.
    """
    return _bounds(_as_stack(masks)).astype(np.float32)


def mask_areas(masks: np.ndarray) -> np.ndarray:
    """Pixel count of each mask, int64 ``(N,)``."""
    stack = _as_stack(masks)
    # count_nonzero over a whole array is several times faster than with ``axis``
    return np.fromiter((np.count_nonzero(m) for m in stack), dtype=np.int64, count=len(stack))
