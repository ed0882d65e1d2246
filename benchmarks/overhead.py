"""Per-frame non-model work: hoopray's way against the notebook's method.

Identical inputs: a 1280x720 frame, 10 player masks (each a body with a few stray
fragments, as SAM2 produces), 8 number boxes. The notebook's method builds a full-frame
boolean mask per number box, runs ``supervision.mask_iou_batch`` with the IoS metric and
cleans every mask with a full-frame connected-components pass. hoopray computes IoS on
each mask's patch under each box and cleans the stack on an 8x8 cell grid in one pass.

Run: ``.venv/bin/python benchmarks/overhead.py [--repeats 30]``.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from hoopray.geometry import ios_masks_boxes
from hoopray.masks import clean_masks

W, H = 1280, 720


def make_inputs(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """10 player masks with fragments and 8 number boxes lying on 8 of the players."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((10, H, W), dtype=bool)
    boxes = []
    for i in range(10):
        x = 60 + i * 115 + int(rng.integers(-10, 10))
        y = 200 + int(rng.integers(-60, 60))
        masks[i, y : y + 260, x : x + 80] = True  # body
        masks[i, y - 40 : y, x + 25 : x + 55] = True  # head
        for _ in range(3):  # stray fragments, some far away
            fx, fy = int(rng.integers(0, W - 20)), int(rng.integers(0, H - 20))
            masks[i, fy : fy + 12, fx : fx + 12] = True
        if i < 8:
            boxes.append([x + 20, y + 40, x + 60, y + 90])
    return masks, np.asarray(boxes, dtype=np.float32)


def notebook_way(masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """The reference method, written for this benchmark: full-frame box masks, IoS over
    whole frames, and a full-frame distance filter (fixed 300 px) per mask."""
    import cv2
    import supervision as sv

    box_masks = np.zeros((len(boxes), H, W), dtype=bool)
    for k, (x1, y1, x2, y2) in enumerate(boxes.astype(int)):
        box_masks[k, max(y1, 0) : min(y2, H - 1) + 1, max(x1, 0) : min(x2, W - 1) + 1] = True
    cleaned = []
    for m in masks:
        count, labels, stats, centroids = cv2.connectedComponentsWithStats(
            m.astype(np.uint8), connectivity=8
        )
        if count <= 1:
            cleaned.append(m.copy())
            continue
        main = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
        keep = np.zeros_like(m)
        for label in range(1, count):
            if label == main or np.linalg.norm(centroids[label] - centroids[main]) <= 300:
                keep[labels == label] = True
        cleaned.append(keep)
    return sv.mask_iou_batch(
        masks_true=np.stack(cleaned),
        masks_detection=box_masks,
        overlap_metric=sv.OverlapMetric.IOS,
    )


def hoopray_way(masks: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """Clean the tracker's own mask stack in place (one read of it, writes only where a
    piece is dropped), then IoS on each box's patch with the areas that pass counted."""
    cleaned, areas = clean_masks(masks.copy(), in_place=True)
    return ios_masks_boxes(cleaned, boxes, mask_areas=areas)


def timed(fn, masks: np.ndarray, boxes: np.ndarray, repeats: int) -> tuple[float, np.ndarray]:
    """Median seconds per call (robust to other load on the machine) and the result."""
    result = fn(masks, boxes)  # warm-up (imports, caches)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(masks, boxes)
        seconds.append(time.perf_counter() - start)
    return float(np.median(seconds)), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    masks, boxes = make_inputs()
    t_nb, ios_nb = timed(notebook_way, masks, boxes, args.repeats)
    t_hr, ios_hr = timed(hoopray_way, masks, boxes, args.repeats)
    pairs_nb = {tuple(p) for p in np.argwhere(ios_nb >= 0.9)}
    pairs_hr = {tuple(p) for p in np.argwhere(ios_hr >= 0.9)}
    speedup = t_nb / t_hr
    print(f"inputs: {W}x{H} frame, {len(masks)} player masks, {len(boxes)} number boxes")
    print(f"{'method':<12}{'ms/frame':>12}{'pairs>=0.9':>12}")
    print(f"{'notebook':<12}{t_nb * 1e3:>12.2f}{len(pairs_nb):>12}")
    print(f"{'hoopray':<12}{t_hr * 1e3:>12.2f}{len(pairs_hr):>12}")
    print(f"same pairs: {pairs_nb == pairs_hr}")
    verdict = "pass" if speedup >= 20 and pairs_nb == pairs_hr else "fail"
    print(f"result: speedup={speedup:.1f} target=>=20 {verdict}")


if __name__ == "__main__":
    main()
