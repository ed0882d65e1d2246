from __future__ import annotations

import numpy as np
import pytest
import supervision as sv

from hoopray.geometry import (
    box_areas,
    box_pixels,
    boxes_to_masks,
    clip_boxes,
    crop,
    ios_masks_boxes,
    ios_pairs,
    pad_boxes,
    shrink_boxes,
)
from hoopray.masks import encode_masks

EMPTY = np.zeros((0, 4))


@pytest.mark.parametrize(
    ("boxes", "scale", "expected"),
    [
        (EMPTY, 0.4, EMPTY),
        ([[0, 0, 10, 20]], 0.4, [[3, 6, 7, 14]]),
        ([[0, 0, 10, 20]], 1.0, [[0, 0, 10, 20]]),
        ([[0, 0, 10, 20]], 0.0, [[5, 10, 5, 10]]),
        ([[10, 10, 20, 20], [0, 0, 4, 2]], 0.5, [[12.5, 12.5, 17.5, 17.5], [1, 0.5, 3, 1.5]]),
        ([[-10, -10, 10, 10]], 2.0, [[-20, -20, 20, 20]]),
    ],
)
def test_shrink_boxes(boxes: object, scale: float, expected: object) -> None:
    result = shrink_boxes(np.asarray(boxes, dtype=float), scale)
    assert result.dtype == np.float32
    np.testing.assert_allclose(result, np.asarray(expected, dtype=float).reshape(-1, 4))


def test_shrink_boxes_keeps_centre_and_default_scale() -> None:
    boxes = np.random.default_rng(1).uniform(0, 500, size=(20, 4))
    boxes[:, 2:] += boxes[:, :2]
    result = shrink_boxes(boxes)
    np.testing.assert_allclose(result[:, :2] + result[:, 2:], boxes[:, :2] + boxes[:, 2:], 1e-5)
    np.testing.assert_allclose(
        result[:, 2:] - result[:, :2], 0.4 * (boxes[:, 2:] - boxes[:, :2]), 1e-4
    )


@pytest.mark.parametrize(
    ("boxes", "scale"),
    [([[0, 0, 1, 1]], -0.1), ([[0, 0, 1, 1]], float("nan")), ([[0, 0, 1]], 0.4), ([1, 2], 0.4)],
)
def test_shrink_boxes_errors(boxes: object, scale: float) -> None:
    with pytest.raises(ValueError):
        shrink_boxes(np.asarray(boxes, dtype=float), scale)


@pytest.mark.parametrize(
    ("boxes", "px", "py", "expected"),
    [
        (EMPTY, 1, 1, EMPTY),
        ([[10, 10, 20, 30]], 2, 3, [[8, 7, 22, 33]]),
        ([[10, 10, 20, 30]], 0, 0, [[10, 10, 20, 30]]),
        ([[0, 0, 1, 1]], 0.5, 0, [[-0.5, 0, 1.5, 1]]),
    ],
)
def test_pad_boxes(boxes: object, px: float, py: float, expected: object) -> None:
    result = pad_boxes(np.asarray(boxes, dtype=float), px, py)
    np.testing.assert_allclose(result, np.asarray(expected, dtype=float).reshape(-1, 4))


@pytest.mark.parametrize(("px", "py"), [(-1, 0), (0, -1), (float("inf"), 0)])
def test_pad_boxes_errors(px: float, py: float) -> None:
    with pytest.raises(ValueError):
        pad_boxes(np.array([[0, 0, 1, 1]]), px, py)


@pytest.mark.parametrize(
    ("boxes", "wh", "expected"),
    [
        (EMPTY, (10, 10), EMPTY),
        ([[-5, -5, 5, 5]], (10, 8), [[0, 0, 5, 5]]),
        ([[5, 5, 20, 20]], (10, 8), [[5, 5, 10, 8]]),
        ([[20, 20, 30, 30]], (10, 8), [[10, 8, 10, 8]]),
        ([[1, 2, 3, 4]], (10, 8), [[1, 2, 3, 4]]),
        ([[-np.inf, 1, np.inf, 2]], (10, 8), [[0, 1, 10, 2]]),
    ],
)
def test_clip_boxes(boxes: object, wh: tuple[int, int], expected: object) -> None:
    result = clip_boxes(np.asarray(boxes, dtype=float), wh)
    np.testing.assert_allclose(result, np.asarray(expected, dtype=float).reshape(-1, 4))


@pytest.mark.parametrize(
    ("boxes", "wh"), [([[0, 0, 1, 1]], (-1, 5)), ([[0, 0, np.nan, 1]], (5, 5))]
)
def test_clip_boxes_errors(boxes: object, wh: tuple[int, int]) -> None:
    with pytest.raises(ValueError):
        clip_boxes(np.asarray(boxes, dtype=float), wh)


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        (EMPTY, []),
        ([[0, 0, 10, 20]], [200]),
        ([[0, 0, 0.5, 0.5], [5, 5, 5, 9]], [0.25, 0]),
        ([[10, 10, 0, 0]], [0]),
        ([[0, 10, 5, 0]], [0]),
    ],
)
def test_box_areas(boxes: object, expected: list[float]) -> None:
    np.testing.assert_allclose(box_areas(np.asarray(boxes, dtype=float)), expected)


def test_box_areas_error() -> None:
    with pytest.raises(ValueError):
        box_areas(np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10]),
        ([0.5, 0.5, 2.5, 3.2], [0, 0, 3, 4]),
        ([2, 3, 2, 9], [2, 3, 2, 3]),  # zero width: nothing
        ([3.2, 1, 3.5, 2], [3, 1, 4, 2]),  # inside one column: that column
        ([5, 5, 1, 1], [5, 5, 5, 5]),  # inverted
        ([-3, -3, 2, 2], [0, 0, 2, 2]),
        ([15, 1, 30, 2], [12, 1, 12, 1]),  # right of the frame
        ([8, 6, 40, 40], [8, 6, 12, 10]),
    ],
)
def test_box_pixels(box: list[float], expected: list[int]) -> None:
    result = box_pixels(np.array([box], dtype=float), (12, 10))
    assert result.dtype == np.int64
    assert result.tolist() == [expected]


def test_box_pixels_empty() -> None:
    assert box_pixels(EMPTY, (4, 4)).shape == (0, 4)


FRAME = np.arange(10 * 12 * 3, dtype=np.uint8).reshape(10, 12, 3)


@pytest.mark.parametrize(
    ("box", "rows", "cols"),
    [
        ([0, 0, 12, 10], slice(0, 10), slice(0, 12)),
        ([2, 3, 5, 7], slice(3, 7), slice(2, 5)),
        ([2.7, 3.1, 4.2, 6.9], slice(3, 7), slice(2, 5)),
        ([-5, -5, 3, 3], slice(0, 3), slice(0, 3)),
        ([10, 8, 50, 50], slice(8, 10), slice(10, 12)),
        ([20, 20, 30, 30], slice(10, 10), slice(12, 12)),  # outside: empty
        ([4, 4, 4, 6], slice(4, 4), slice(4, 4)),  # degenerate: empty
    ],
)
def test_crop(box: list[float], rows: slice, cols: slice) -> None:
    result = crop(FRAME, np.array(box))
    np.testing.assert_array_equal(result, FRAME[rows, cols])
    assert not np.shares_memory(result, FRAME)


def test_crop_grey_frame_and_errors() -> None:
    grey = FRAME[..., 0]
    assert crop(grey, [1, 1, 3, 4]).shape == (3, 2)
    with pytest.raises(ValueError):
        crop(grey, [1, 2, 3])
    with pytest.raises(ValueError):
        crop(np.zeros(5), [0, 0, 1, 1])


@pytest.mark.parametrize(
    ("box", "inclusive_notebook_area", "ours"),
    [([0, 0, 10, 10], 121, 100), ([2, 2, 3, 3], 4, 1)],
)
def test_boxes_to_masks_is_half_open_unlike_the_notebook(
    box: list[float], inclusive_notebook_area: int, ours: int
) -> None:
    mask = boxes_to_masks(np.array([box], dtype=float), (20, 20))
    assert mask.shape == (1, 20, 20)
    assert mask.sum() == ours
    x1, y1, x2, y2 = (int(v) for v in box)
    assert (x2 - x1 + 1) * (y2 - y1 + 1) == inclusive_notebook_area


def _random_case(seed: int, n: int, m: int, h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    """Random masks (noise, rectangles, empty) and boxes (fractional, integer, degenerate,
    partly or wholly outside the frame)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((n, h, w), dtype=bool)
    for i in range(n):
        kind = rng.integers(0, 3)
        if kind == 0:
            masks[i] = rng.random((h, w)) < rng.uniform(0.05, 0.6)
        elif kind == 1:
            y, x = rng.integers(0, h), rng.integers(0, w)
            masks[i, y : y + rng.integers(1, h + 1), x : x + rng.integers(1, w + 1)] = True
    centre = rng.uniform([-0.3 * w, -0.3 * h], [1.3 * w, 1.3 * h], size=(m, 2))
    size = rng.uniform(0, 0.6 * max(h, w), size=(m, 2))
    boxes = np.concatenate([centre - size / 2, centre + size / 2], axis=1)
    kind = rng.integers(0, 3, size=m)
    boxes[kind == 1] = np.round(boxes[kind == 1])
    boxes[kind == 2, 2] = boxes[kind == 2, 0]
    return masks, boxes


@pytest.mark.parametrize(
    ("seed", "n", "m", "h", "w"),
    [
        (0, 0, 0, 8, 8),
        (1, 0, 5, 8, 8),
        (2, 5, 0, 8, 8),
        (3, 1, 1, 1, 1),
        (4, 6, 9, 17, 23),
        (5, 12, 7, 40, 31),
        (6, 3, 20, 64, 64),
        (7, 8, 8, 5, 90),
    ],
)
def test_ios_matches_supervision(seed: int, n: int, m: int, h: int, w: int) -> None:
    masks, boxes = _random_case(seed, n, m, h, w)
    box_masks = boxes_to_masks(boxes, (w, h))
    expected = sv.mask_iou_batch(
        masks_true=masks, masks_detection=box_masks, overlap_metric=sv.OverlapMetric.IOS
    )
    if n * m >= 20:
        assert ((expected > 0) & (expected < 1)).any(), "case too trivial to compare"
    result = ios_masks_boxes(masks, boxes)
    assert result.shape == (n, m)
    assert np.isfinite(result).all()
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ios_masks_boxes(masks, boxes, masks.sum(axis=(1, 2))), result)
    summary = encode_masks(masks)
    with_bounds = ios_masks_boxes(masks, boxes, summary.areas, summary.bounds)
    np.testing.assert_allclose(with_bounds, expected, rtol=1e-6, atol=1e-9)


def test_ios_with_bounds_reads_only_inside_them() -> None:
    # Bounds that leave out part of a mask leave out its overlap there: only the given
    # window is read.
    masks = np.zeros((1, 10, 10), dtype=bool)
    masks[0, 0:10, 0:10] = True
    boxes = np.array([[0, 0, 4, 4], [6, 6, 10, 10]], dtype=float)
    areas = np.array([100])
    np.testing.assert_allclose(ios_masks_boxes(masks, boxes, areas), [[1.0, 1.0]])
    partial = np.array([[0, 0, 5, 5]])
    np.testing.assert_allclose(ios_masks_boxes(masks, boxes, areas, partial), [[1.0, 0.0]])


@pytest.mark.parametrize(
    ("mask_slices", "box", "expected"),
    [
        ((slice(0, 10), slice(0, 10)), [2, 2, 4, 4], 1.0),  # box inside mask
        ((slice(2, 4), slice(2, 4)), [0, 0, 10, 10], 1.0),  # mask inside box
        ((slice(0, 10), slice(0, 5)), [3, 0, 7, 2], 0.5),  # half the box
        ((slice(0, 0), slice(0, 0)), [0, 0, 10, 10], 0.0),  # empty mask
        ((slice(0, 10), slice(0, 10)), [3, 3, 3, 8], 0.0),  # empty box
        ((slice(0, 10), slice(0, 10)), [30, 30, 40, 40], 0.0),  # box outside the frame
        ((slice(8, 10), slice(8, 10)), [8, 8, 20, 20], 1.0),  # clipped box
    ],
)
def test_ios_values(mask_slices: tuple[slice, slice], box: list[float], expected: float) -> None:
    masks = np.zeros((1, 10, 10), dtype=bool)
    masks[(0, *mask_slices)] = True
    assert ios_masks_boxes(masks, np.array([box], dtype=float))[0, 0] == pytest.approx(expected)


def test_ios_accepts_uint8_masks() -> None:
    masks, boxes = _random_case(11, 4, 4, 12, 12)
    np.testing.assert_array_equal(
        ios_masks_boxes(masks.astype(np.uint8), boxes), ios_masks_boxes(masks, boxes)
    )


@pytest.mark.parametrize(
    ("masks", "boxes", "areas"),
    [
        (np.zeros((4, 4), dtype=bool), np.zeros((1, 4)), None),
        (np.zeros((1, 4, 4), dtype=bool), np.zeros((1, 3)), None),
        (np.zeros((2, 4, 4), dtype=bool), np.zeros((1, 4)), np.zeros(3)),
    ],
)
def test_ios_errors(masks: np.ndarray, boxes: np.ndarray, areas: np.ndarray | None) -> None:
    with pytest.raises(ValueError):
        ios_masks_boxes(masks, boxes, areas)


def test_ios_bounds_error() -> None:
    with pytest.raises(ValueError, match="mask_bounds"):
        ios_masks_boxes(np.zeros((2, 4, 4), bool), np.zeros((1, 4)), np.zeros(2), np.zeros((3, 4)))


@pytest.mark.parametrize(
    ("matrix", "threshold", "expected"),
    [
        (np.zeros((0, 0)), 0.9, []),
        (np.zeros((3, 0)), 0.9, []),
        (np.zeros((0, 2)), 0.9, []),
        (np.array([[0.1, 0.2]]), 0.9, []),
        (np.array([[0.95, 0.2], [0.91, 1.0]]), 0.9, [(1, 1, 1.0), (0, 0, 0.95), (1, 0, 0.91)]),
        (np.array([[0.9, 0.9]]), 0.9, [(0, 0, 0.9), (0, 1, 0.9)]),  # inclusive, stable
        (np.array([[0.5], [0.7]]), 0.0, [(1, 0, 0.7), (0, 0, 0.5)]),
    ],
)
def test_ios_pairs(
    matrix: np.ndarray, threshold: float, expected: list[tuple[int, int, float]]
) -> None:
    result = ios_pairs(matrix, threshold)
    assert result == expected
    assert all(isinstance(v, int) for pair in result for v in pair[:2])


def test_ios_pairs_error() -> None:
    with pytest.raises(ValueError):
        ios_pairs(np.ones((2, 2, 2)), 0.5)
