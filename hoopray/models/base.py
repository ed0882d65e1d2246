"""Interfaces of the four models, on RGB uint8 frames of shape (H, W, 3).

``supervision.Detections`` carries boxes, masks and tracker ids between stages. Class
names travel in ``detections.data["class_name"]``; which names mean "player", "number"
and so on is decided by :class:`Roles` from config, never by numeric class ids.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from hoopray.types import NumberRead

if TYPE_CHECKING:
    import supervision as sv

CLASS_NAME = "class_name"
SOURCE = "source"

NOTEBOOK_PLAYER_CLASSES = (
    "player",
    "player-in-possession",
    "player-jump-shot",
    "player-layup-dunk",
    "player-shot-block",
)


@dataclass(frozen=True)
class Roles:
    """Maps detector class names to the roles the pipeline needs."""

    player: tuple[str, ...] = NOTEBOOK_PLAYER_CLASSES
    number: tuple[str, ...] = ("number",)
    referee: tuple[str, ...] = ("referee",)
    ball: tuple[str, ...] = ("ball", "ball-in-basket")
    rim: tuple[str, ...] = ("rim",)

    def mask(self, detections: sv.Detections, role: str) -> np.ndarray:
        """Boolean index of the detections whose class name has ``role``."""
        names = getattr(self, role)
        if len(detections) == 0:
            return np.zeros(0, dtype=bool)
        return np.isin(np.asarray(detections.data[CLASS_NAME], dtype=object), list(names))

    def select(self, detections: sv.Detections, role: str) -> sv.Detections:
        return detections[self.mask(detections, role)]


@runtime_checkable
class Detector(Protocol):
    """One call per frame yields players, numbers, referees, ball and rim together."""

    class_names: list[str]

    def detect(self, frames: list[np.ndarray]) -> list[sv.Detections]:
        """Detections per frame with xyxy, confidence, class_id and data["class_name"]."""
        ...


@runtime_checkable
class Tracker(Protocol):
    """Tracks players through one clip. Memory stays bounded whatever the clip's length."""

    def start(self, frame: np.ndarray, detections: sv.Detections) -> sv.Detections:
        """Prompt a track for every detection on the first frame and return them."""
        ...

    def step(self, frame: np.ndarray, new_detections: sv.Detections | None = None) -> sv.Detections:
        """Advance one frame.

        Returns every live track with ``tracker_id``, ``mask`` (N, H, W) bool and ``xyxy``,
        and ``data["source"]`` (a :class:`hoopray.types.TrackSource` value). A detection in
        ``new_detections`` that no live track covers becomes a new track.
        """
        ...

    def close(self) -> None: ...


@runtime_checkable
class TrackingModel(Protocol):
    """A tracking model loaded once (per actor); opens one :class:`Tracker` per clip."""

    def open(self) -> Tracker: ...


@runtime_checkable
class Embedder(Protocol):
    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """(N, D) float32 embeddings; (0, D) for no crops."""
        ...


@runtime_checkable
class NumberReader(Protocol):
    def read(self, crops: list[np.ndarray]) -> list[NumberRead]:
        """One read per crop, in order."""
        ...


@dataclass
class Models:
    """The models one actor uses. Any may be None where a stage does not need it."""

    detector: Detector | None = None
    tracking: TrackingModel | None = None
    embedder: Embedder | None = None
    reader: NumberReader | None = None
    roles: Roles = field(default_factory=Roles)


def crop_batches(crops: list[np.ndarray], batch_size: int) -> list[list[int]]:
    """Indices of the non-empty crops, in batches of at most ``batch_size``.

    Raises:
        ValueError: a crop that is not (H, W, 3).
    """
    for index, crop in enumerate(crops):
        if crop.ndim != 3 or crop.shape[2] != 3:
            raise ValueError(f"crop {index} has shape {crop.shape}; expected (H, W, 3) RGB")
    valid = [i for i, crop in enumerate(crops) if crop.shape[0] > 0 and crop.shape[1] > 0]
    return [valid[start : start + batch_size] for start in range(0, len(valid), batch_size)]


class WeightsNotFoundError(RuntimeError):
    """A model's weights are not available offline; the message says how to provide them."""
