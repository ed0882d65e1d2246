"""Helpers shared by the tests of :mod:`hoopray.teams`: blobs of embeddings, jersey-coloured
crops, a two-team roster and a crop sample."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from hoopray.roster import Roster, TeamRoster
from hoopray.teams import CropSample, TeamsConfig

BLUE, GREEN = "#1d2a5a", "#1d4a2a"
NO_UMAP = 10_000  # umap n_neighbors so high that the PCA fallback is used (fast tests)
PCA = TeamsConfig(umap_neighbors=NO_UMAP)
SIZE = (640, 360)


def blobs(n: int, dim: int = 16, seed: int = 0, gap: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs and the true blob of each row."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 2
    centres = rng.normal(0, 1, (2, dim)) * gap
    return (centres[truth] + rng.normal(0, 1, (n, dim))).astype(np.float32), truth


def accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Accuracy up to swapping the two cluster ids."""
    same = float((predicted == truth).mean())
    return max(same, 1 - same)


def roster(colours: tuple[str, str] = (BLUE, GREEN)) -> Roster:
    return Roster(
        (
            TeamRoster("Blue", colours[0], {"1": "a1", "7": "a7", "23": "a23", "5": "a5"}),
            TeamRoster("Green", colours[1], {"2": "b2", "8": "b8", "30": "b30", "5": "b5"}),
        )
    )


def patch(hex_colour: str, seed: int, h: int = 24, w: int = 12) -> np.ndarray:
    """A jersey-coloured crop with noise and a strip of skin-like pixels."""
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    rng = np.random.default_rng(seed)
    image = rgb + rng.normal(0, 6, (h, w, 3))
    image[: h // 5] = (200, 150, 120)
    return np.clip(image, 0, 255).astype(np.uint8)


def crop_sample(n: int) -> CropSample:
    rng = np.random.default_rng(0)
    return CropSample(
        crops=[patch(BLUE if i % 2 else GREEN, i, h=int(rng.integers(10, 40))) for i in range(n)],
        clip_ids=[f"clip-{i % 3}" for i in range(n)],
        frames=np.arange(n, dtype=np.int32) * 30,
        boxes=np.tile(np.array([[10, 20, 60, 140]], np.float32), (n, 1)),
    )


def visible_team(label_path: Path, frames: np.ndarray, boxes: np.ndarray, scale: float) -> list:
    """Per crop: the team of the player whose visible mask covers most of the central crop,
    or "referee" when a referee does (occluders make the box's own player a poor truth)."""
    from hoopray.geometry import box_pixels, clip_boxes, shrink_boxes
    from hoopray.masks import rle_decode

    labels = pq.read_table(label_path).to_pylist()
    central = box_pixels(clip_boxes(shrink_boxes(boxes, scale), SIZE), SIZE)
    owners = []
    for frame, (c1, r1, c2, r2) in zip(frames.tolist(), central, strict=True):
        best, cover = None, 0
        for row in labels:
            if row["frame"] != frame or row["role"] not in ("player", "referee"):
                continue
            mask = rle_decode(row["mask_rle"], SIZE[1], SIZE[0])
            pixels = int(mask[r1:r2, c1:c2].sum())
            if pixels > cover:
                best = row["team"] if row["role"] == "player" else "referee"
                cover = pixels
        owners.append(best)
    return owners


def counting_clip_at(path: Path) -> Path:
    """10 frames at 4 fps; frame i is filled with the value 20 * i."""
    from hoopray.video import H264Writer

    with H264Writer(path, 32, 24, 4, crf=0) as writer:
        for i in range(10):
            writer.write(np.full((24, 32, 3), 20 * i, np.uint8))
    return path
