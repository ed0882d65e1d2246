from __future__ import annotations

import numpy as np
import pytest
import supervision as sv
from pycocotools import mask as coco_mask

from hoopray.geometry import crop
from hoopray.masks import (
    clean_mask,
    clean_masks,
    encode_masks,
    mask_areas,
    masks_to_xyxy,
    rle_decode,
    rle_encode,
)


def _canvas(*rects: tuple[int, int, int, int], shape: tuple[int, int] = (100, 100)) -> np.ndarray:
    """A bool mask with the given (row0, col0, row1, col1) rectangles set."""
    mask = np.zeros(shape, dtype=bool)
    for r0, c0, r1, c1 in rects:
        mask[r0:r1, c0:c1] = True
    return mask


def _stack_with_fragments(seed: int, count: int, shape: tuple[int, int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    stack = np.zeros((count, *shape), dtype=bool)
    for layer in stack:
        r, c = rng.integers(0, shape[0] // 2), rng.integers(0, shape[1] // 2)
        layer[r : r + shape[0] // 3, c : c + shape[1] // 6] = True
        for _ in range(rng.integers(0, 4)):
            fr, fc = rng.integers(0, shape[0] - 3), rng.integers(0, shape[1] - 3)
            layer[fr : fr + 3, fc : fc + 3] = True
    return stack


BODY = (20, 40, 80, 60)  # 60 x 20, diagonal ~63.2, centroid (49.5, 49.5)


@pytest.mark.parametrize(
    ("rects", "max_distance", "kept"),
    [
        ((), 0.5, ()),
        ((BODY,), 0.5, (BODY,)),
        ((BODY, (0, 0, 2, 2)), 0.5, (BODY,)),  # far speck (distance ~68 > 31.6)
        ((BODY, (0, 0, 2, 2)), 1.5, (BODY, (0, 0, 2, 2))),
        ((BODY, (45, 62, 50, 65)), 0.5, (BODY, (45, 62, 50, 65))),  # near arm piece
        ((BODY, (95, 95, 100, 100)), 0.0, (BODY,)),
        ((BODY, (95, 95, 100, 100)), float("inf"), (BODY, (95, 95, 100, 100))),
        (((10, 10, 12, 12), (90, 90, 91, 91)), 0.5, ((10, 10, 12, 12),)),  # larger wins
        (((90, 90, 92, 92), (10, 10, 12, 12)), 0.5, ((10, 10, 12, 12),)),  # tie: first row-major
    ],
)
def test_clean_mask(
    rects: tuple[tuple[int, int, int, int], ...],
    max_distance: float,
    kept: tuple[tuple[int, int, int, int], ...],
) -> None:
    source = _canvas(*rects)
    result = clean_mask(source, max_distance)
    assert result.dtype == bool
    assert result.shape == source.shape
    np.testing.assert_array_equal(result, _canvas(*kept))


def test_clean_mask_threshold_is_relative_to_the_main_segment() -> None:
    # The same offset speck is kept beside a big player and dropped beside a small one.
    big = _canvas((0, 0, 200, 100), (210, 40, 212, 42), shape=(300, 300))
    small = _canvas((0, 0, 20, 10), (110, 40, 112, 42), shape=(300, 300))
    assert clean_mask(big, 0.5).sum() == big.sum()
    assert clean_mask(small, 0.5).sum() == 200


def test_clean_mask_uses_eight_connectivity() -> None:
    diagonal = np.eye(6, dtype=bool)
    np.testing.assert_array_equal(clean_mask(diagonal, 0.0), diagonal)


def test_clean_mask_does_not_modify_input_and_reads_uint8() -> None:
    source = _canvas(BODY, (0, 0, 2, 2))
    before = source.copy()
    result = clean_mask(source.astype(np.uint8))
    np.testing.assert_array_equal(source, before)
    np.testing.assert_array_equal(result, _canvas(BODY))


@pytest.mark.parametrize(
    ("mask", "max_distance"),
    [(np.zeros((2, 3, 3), dtype=bool), 0.5), (np.zeros((3, 3), dtype=bool), -1.0)],
)
def test_clean_mask_errors(mask: np.ndarray, max_distance: float) -> None:
    with pytest.raises(ValueError):
        clean_mask(mask, max_distance)


def _rle_cases() -> list[np.ndarray]:
    rng = np.random.default_rng(3)
    return [
        np.zeros((0, 0), dtype=bool),
        np.zeros((0, 5), dtype=bool),
        np.zeros((4, 6), dtype=bool),
        np.ones((4, 6), dtype=bool),
        np.zeros((1, 1), dtype=bool),
        np.ones((1, 1), dtype=bool),
        rng.random((37, 53)) < 0.5,
        _canvas(BODY, (0, 0, 2, 2), shape=(720, 1280)),
        (rng.random((40, 60)) < 0.3)[::2, ::3],  # non-contiguous view
        np.asfortranarray(rng.random((9, 11)) < 0.5),
    ]


@pytest.mark.parametrize("mask", _rle_cases())
def test_rle_round_trip(mask: np.ndarray) -> None:
    counts = rle_encode(mask)
    assert isinstance(counts, str)
    decoded = rle_decode(counts, *mask.shape)
    assert decoded.dtype == bool
    np.testing.assert_array_equal(decoded, mask)
    area = coco_mask.area({"size": list(mask.shape), "counts": counts.encode()})
    assert int(area) == int(mask.sum())


def _coco(mask: np.ndarray) -> str:
    return coco_mask.encode(np.asfortranarray(mask, dtype=np.uint8))["counts"].decode("ascii")


def _shapes(seed: int) -> list[np.ndarray]:
    """Random masks of random sizes, and the shapes that trip a window-based encoder: one
    pixel, full, empty, touching each edge and corner, full-height columns (runs that
    cross a column boundary), fragments far apart, random noise."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(40):
        h, w = (int(v) for v in rng.integers(1, 50, size=2))
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        blank = np.zeros((h, w), dtype=bool)
        one = blank.copy()
        one[y, x] = True
        column = blank.copy()
        column[:, x:] = True  # full height from column x on: runs continue across columns
        corner = blank.copy()
        corner[y:, x:] = True  # touches the bottom and right edges
        top_left = blank.copy()
        top_left[: y + 1, : x + 1] = True
        pieces = blank.copy()
        for _ in range(int(rng.integers(1, 5))):
            r, c = int(rng.integers(0, h)), int(rng.integers(0, w))
            pieces[r : r + int(rng.integers(1, 6)), c : c + int(rng.integers(1, 6))] = True
        noise = rng.random((h, w)) < rng.random()
        out += [blank, ~blank, one, column, corner, top_left, pieces, noise]
    return out


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rle_strings_equal_pycocotools(seed: int) -> None:
    for mask in _shapes(seed):
        assert rle_encode(mask) == _coco(mask), mask.astype(int)


@pytest.mark.parametrize(
    "shape", [(0, 0), (0, 5), (5, 0), (1, 1), (720, 1280), (719, 1277), (8, 8), (1, 64)]
)
def test_rle_strings_equal_pycocotools_at_frame_sizes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    cases = [np.zeros(shape, dtype=bool), np.ones(shape, dtype=bool)]
    if shape[0] and shape[1]:
        body = np.zeros(shape, dtype=bool)
        h, w = shape
        body[h // 4 : h - 1, w // 3 : w // 3 + max(1, w // 10)] = True
        body[0, 0] = body[-1, -1] = body[-1, 0] = body[0, -1] = True  # the four corners
        cases += [body, rng.random(shape) < 0.02]
    for mask in cases:
        assert rle_encode(mask) == _coco(mask)


def test_encode_masks_gives_areas_boxes_and_strings_of_a_stack() -> None:
    rng = np.random.default_rng(5)
    stack = _stack_with_fragments(7, 6, (72, 128))
    stack[2] = False  # an empty one among them
    stack[4, :, 100] = True  # a full-height column
    stack[5] = rng.random((72, 128)) < 0.3
    summary = encode_masks(stack)
    assert summary.areas.dtype == np.int64 and summary.bounds.dtype == np.int64
    assert summary.areas.tolist() == [int(m.sum()) for m in stack]
    assert summary.counts == [_coco(m) for m in stack]
    for mask, (c1, r1, c2, r2) in zip(stack, summary.bounds.tolist(), strict=True):
        if not mask.any():
            assert (c1, r1, c2, r2) == (0, 0, 0, 0)
            continue
        rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
        assert (c1, r1, c2, r2) == (cols[0], rows[0], cols[-1] + 1, rows[-1] + 1)
    np.testing.assert_array_equal(summary.boxes, masks_to_xyxy(stack))
    assert summary.boxes.dtype == np.float32


@pytest.mark.parametrize(
    "stack",
    [
        np.zeros((0, 72, 128), dtype=bool),
        np.zeros((3, 0, 4), dtype=bool),
        _stack_with_fragments(1, 3, (72, 128))[:, ::2, ::3],  # a strided view
        np.asfortranarray(_stack_with_fragments(2, 3, (40, 60))),
        _stack_with_fragments(3, 3, (40, 60)).astype(np.uint8) * 7,
        _stack_with_fragments(4, 2, (41, 63)),  # width not a multiple of 8
    ],
)
def test_encode_masks_takes_any_layout(stack: np.ndarray) -> None:
    summary = encode_masks(stack)
    masks = stack != 0
    assert summary.counts == [_coco(m) for m in masks]
    assert summary.areas.tolist() == [int(m.sum()) for m in masks]
    assert summary.bounds.shape == (len(stack), 4)


def test_encode_masks_does_not_modify_or_keep_the_stack() -> None:
    stack = _stack_with_fragments(9, 4, (72, 128))
    before = stack.copy()
    summary = encode_masks(stack)
    np.testing.assert_array_equal(stack, before)
    assert not any(
        isinstance(v, np.ndarray) and np.shares_memory(v, stack) for v in vars(summary).values()
    )


def test_rle_encode_reads_uint8() -> None:
    mask = _canvas(BODY)
    assert rle_encode(mask.astype(np.uint8) * 255) == rle_encode(mask)


@pytest.mark.parametrize(
    ("counts", "height", "width"),
    [
        ("", 4, 4),  # empty string (pycocotools alone decodes garbage)
        ("zzzz", 4, 4),  # invalid characters
        ("<", 4, 5),  # describes 16 pixels, not 20
        ("f", 4, 4),  # ends mid-number (continuation bit set)
        ("0", -1, 0),
    ],
)
def test_rle_decode_errors(counts: str, height: int, width: int) -> None:
    with pytest.raises(ValueError):
        rle_decode(counts, height, width)


def test_rle_encode_error() -> None:
    with pytest.raises(ValueError):
        rle_encode(np.zeros((2, 2, 2), dtype=bool))


@pytest.mark.parametrize(
    ("rects", "expected"),
    [
        ((), [0, 0, 0, 0]),
        (((2, 3, 5, 9),), [3, 2, 9, 5]),
        (((0, 0, 1, 1), (7, 8, 10, 10)), [0, 0, 10, 10]),
    ],
)
def test_masks_to_xyxy(rects: tuple[tuple[int, int, int, int], ...], expected: list[int]) -> None:
    mask = _canvas(*rects, shape=(10, 10))
    boxes = masks_to_xyxy(mask[None])
    assert boxes.dtype == np.float32
    assert boxes.tolist() == [expected]
    if rects:
        # the box crops exactly the mask's extent, one pixel wider than supervision's
        assert crop(mask, boxes[0]).sum() == mask.sum()
        np.testing.assert_array_equal(boxes[0, 2:] - 1, sv.mask_to_xyxy(mask[None])[0, 2:])


def test_masks_to_xyxy_and_areas_on_stacks() -> None:
    stack = np.stack([_canvas(BODY), _canvas(), _canvas((0, 0, 1, 3))])
    assert masks_to_xyxy(stack).shape == (3, 4)
    assert mask_areas(stack).tolist() == [1200, 0, 3]
    assert mask_areas(stack).dtype == np.int64
    assert masks_to_xyxy(np.zeros((0, 5, 5), dtype=bool)).shape == (0, 4)
    assert mask_areas(np.zeros((0, 5, 5), dtype=bool)).shape == (0,)


@pytest.mark.parametrize("func", [masks_to_xyxy, mask_areas])
def test_stack_functions_reject_2d(func: object) -> None:
    with pytest.raises(ValueError):
        func(np.zeros((5, 5), dtype=bool))  # type: ignore[operator]


@pytest.mark.parametrize(
    ("count", "shape"), [(0, (72, 128)), (1, (72, 128)), (6, (72, 128)), (5, (71, 127))]
)
@pytest.mark.parametrize("max_distance", [0.0, 0.5, float("inf")])
def test_clean_masks_equals_one_mask_at_a_time(
    count: int, shape: tuple[int, int], max_distance: float
) -> None:
    stack = _stack_with_fragments(count, count, shape)
    cleaned, areas = clean_masks(stack, max_distance)
    assert cleaned.shape == stack.shape and areas.dtype == np.int64
    for layer, result in zip(stack, cleaned, strict=True):
        np.testing.assert_array_equal(result, clean_mask(layer, max_distance))
    np.testing.assert_array_equal(areas, mask_areas(cleaned))


def test_clean_masks_in_place_writes_the_input() -> None:
    stack = _stack_with_fragments(3, 4, (72, 128))
    expected, _ = clean_masks(stack, 0.0)
    cleaned, _ = clean_masks(stack, 0.0, in_place=True)
    assert cleaned is stack
    np.testing.assert_array_equal(stack, expected)


@pytest.mark.parametrize(
    "masks",
    [np.zeros((2, 8, 8), dtype=np.uint8), np.zeros((2, 8, 16), dtype=bool)[:, :, ::2]],
)
def test_clean_masks_in_place_needs_a_contiguous_bool_stack(masks: np.ndarray) -> None:
    with pytest.raises(ValueError, match="in_place"):
        clean_masks(masks, in_place=True)


def test_clean_masks_cleans_a_mask_beside_an_empty_one() -> None:
    stack = np.stack([_canvas(), _canvas(BODY, (0, 0, 2, 2))])
    cleaned, areas = clean_masks(stack, 0.5)
    np.testing.assert_array_equal(cleaned[0], _canvas())
    np.testing.assert_array_equal(cleaned[1], _canvas(BODY))
    assert areas.tolist() == [0, _canvas(BODY).sum()]
