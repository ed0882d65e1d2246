"""Colour-histogram embedder: a weight-free :class:`hoopray.models.base.Embedder` for CPUs.

Each crop (RGB uint8, ``(H, W, 3)``) is converted to HSV or CIE Lab with OpenCV and
summarised as a colour histogram:

- ``joint=True`` (default): one 3-D histogram with ``bins ** 3`` cells;
- ``joint=False``: three 1-D histograms, one per channel, concatenated (``3 * bins``).

Binning is soft by default: each pixel spreads its weight linearly over the two nearest
bin centres of every channel (hue wraps around), so a jersey whose colour sits on a bin
edge does not land in one bin in one crop and in the next bin in another. ``soft=False``
gives plain hard bins.

Every histogram is L1-normalised (each per-channel part on its own) and then square-rooted
(the Hellinger mapping), so Euclidean and cosine distances between embeddings behave like
the Hellinger distance between colour distributions and the rows have unit L2 norm
(``1`` for joint, ``sqrt(3)`` for per-channel).

Blanked pixels are left out: a pixel of exactly :data:`hoopray.teams.BLANK` (mid-grey) is
one that observe masked out of a team crop (background, another player), so the histogram
describes the track's own pixels only. A real pixel of exactly that grey is rare and
dropping it changes little. Crops larger than ``max_side`` that hold blanked pixels are
downscaled with nearest-neighbour sampling instead of area interpolation, so that no
blanked pixel is blended into a colour.

Edge cases: an empty list gives a ``(0, D)`` array; a crop with no pixels (a zero-sized
dimension, as :func:`hoopray.geometry.crop` returns for a box outside the frame) or with
blanked pixels only gives a row of zeros, which a caller can recognise by its zero norm.
"""

from __future__ import annotations

import cv2
import numpy as np

from hoopray.teams.naming import BLANK

# OpenCV's 8-bit conversions: hue is 0..179 (circular), every other channel 0..255.
_SPACES = {
    "hsv": (cv2.COLOR_RGB2HSV, (180.0, 256.0, 256.0), (True, False, False)),
    "lab": (cv2.COLOR_RGB2Lab, (256.0, 256.0, 256.0), (False, False, False)),
}


class ColourHistogramEmbedder:
    """Normalised colour histograms of crops; no weights, numpy and OpenCV only.

    Args:
        bins: bins per channel (2..64).
        space: ``"hsv"`` or ``"lab"``.
        joint: one joint 3-D histogram (``bins ** 3`` values) instead of three 1-D ones.
        soft: linear (soft) binning instead of hard bins.
        max_side: crops larger than this on their longer side are downscaled first (area
            interpolation), which keeps the cost per crop bounded; ``0`` disables it.
    """

    def __init__(
        self,
        bins: int = 8,
        space: str = "hsv",
        joint: bool = True,
        soft: bool = True,
        max_side: int = 128,
    ) -> None:
        if not 2 <= int(bins) <= 64:
            raise ValueError(f"bins must be in 2..64; got {bins}")
        if space not in _SPACES:
            raise ValueError(f"space must be one of {sorted(_SPACES)}; got {space!r}")
        if max_side < 0:
            raise ValueError(f"max_side must be >= 0; got {max_side}")
        self.bins = int(bins)
        self.space = space
        self.joint = bool(joint)
        self.soft = bool(soft)
        self.max_side = int(max_side)

    @property
    def dim(self) -> int:
        """Length of one embedding."""
        return self.bins**3 if self.joint else 3 * self.bins

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, D) float32 embeddings of RGB uint8 crops, in order.

        Raises:
            ValueError: for a crop that is not ``(H, W, 3)`` uint8.
        """
        out = np.zeros((len(crops), self.dim), dtype=np.float32)
        for row, image in enumerate(crops):
            pixels = self._check(image, row)
            if pixels.shape[0] == 0 or pixels.shape[1] == 0:
                continue
            out[row] = self._histogram(pixels)
        return out

    def _check(self, image: np.ndarray, row: int) -> np.ndarray:
        image = np.asarray(image)
        if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            raise ValueError(
                f"crop {row}: expected an RGB uint8 array (H, W, 3); "
                f"got {image.dtype} {image.shape}"
            )
        return image

    def _histogram(self, rgb: np.ndarray) -> np.ndarray:
        blank = (rgb == np.asarray(BLANK, dtype=np.uint8)).all(axis=2)
        longest = max(rgb.shape[:2])
        if self.max_side and longest > self.max_side:
            factor = self.max_side / longest
            size = (max(1, round(rgb.shape[1] * factor)), max(1, round(rgb.shape[0] * factor)))
            how = cv2.INTER_NEAREST if blank.any() else cv2.INTER_AREA
            rgb = cv2.resize(np.ascontiguousarray(rgb), size, interpolation=how)
            blank = (rgb == np.asarray(BLANK, dtype=np.uint8)).all(axis=2)
        if blank.all():
            return np.zeros(self.dim)
        code, spans, circular = _SPACES[self.space]
        values = cv2.cvtColor(np.ascontiguousarray(rgb), code).reshape(-1, 3)
        values = values[~blank.reshape(-1)]
        # per channel: [(bin index, weight), ...] with one entry (hard) or two (soft)
        channels = [
            self._assign(values[:, c].astype(np.float64), spans[c], circular[c]) for c in range(3)
        ]
        if self.joint:
            hist = np.zeros(self.bins**3)
            for index0, weight0 in channels[0]:
                for index1, weight1 in channels[1]:
                    for index2, weight2 in channels[2]:
                        cell = (index0 * self.bins + index1) * self.bins + index2
                        hist += np.bincount(
                            cell, weights=weight0 * weight1 * weight2, minlength=self.bins**3
                        )
            return np.sqrt(hist / hist.sum())
        parts = []
        for assigned in channels:
            hist = sum(
                np.bincount(index, weights=weight, minlength=self.bins)
                for index, weight in assigned
            )
            parts.append(np.sqrt(hist / hist.sum()))
        return np.concatenate(parts)

    def _assign(
        self, values: np.ndarray, span: float, circular: bool
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        position = values * (self.bins / span)
        if not self.soft:
            index = np.minimum(position.astype(np.int64), self.bins - 1)
            return [(index, np.ones_like(position))]
        centred = position - 0.5
        low = np.floor(centred)
        upper_weight = centred - low
        low = low.astype(np.int64)
        high = low + 1
        if circular:
            low, high = low % self.bins, high % self.bins
        else:
            low, high = np.clip(low, 0, self.bins - 1), np.clip(high, 0, self.bins - 1)
        return [(low, 1.0 - upper_weight), (high, upper_weight)]
