"""RF-DETR detector loaded from a local training checkpoint.

One call per frame yields every class the checkpoint knows (players, numbers, referees,
ball, rim); :class:`hoopray.models.base.Roles` picks roles from ``data["class_name"]``.

RF-DETR is a DETR: its ``predict`` has no IoU/NMS knob (it keeps the top-scoring
queries). To honour the notebook's IoU threshold of 0.9, this adapter applies
class-agnostic NMS with ``iou`` after the confidence cut; ``iou >= 1`` disables it.
The head has one slot more than there are classes (DETR's "no object" slot); a
detection in that slot has no class name and is dropped.

Scores are computed in float32 even under bf16 autocast (CUDA): the class head is
recomputed in float32 by a forward hook (:func:`float32_logits`), so its logits, their
sigmoid and the confidence cut are float32. In bf16 the scores near the 0.4 threshold lie
on a grid of about 0.002 (0.3984, 0.4004, ...): a detection scoring 0.3998 would pass it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from hoopray.models.base import CLASS_NAME
from hoopray.models.device import autocast, resolve_device
from hoopray.models.loading import missing_path_error

if TYPE_CHECKING:
    import supervision as sv
    import torch

SIZES = ("nano", "small", "medium", "base", "large")
_VARIANTS = {
    "nano": "RFDETRNano",
    "small": "RFDETRSmall",
    "medium": "RFDETRMedium",
    "base": "RFDETRBase",
    "large": "RFDETRLarge",
}
_WHAT = "RF-DETR detector checkpoint"
_OVERRIDE = "models.detector.checkpoint"


def float32_logits(head: torch.nn.Linear, features: torch.Tensor) -> torch.Tensor:
    """``head(features)`` in float32, whatever the autocast and the features' dtype."""
    import torch

    with torch.autocast(device_type=features.device.type, enabled=False):
        bias = None if head.bias is None else head.bias.float()
        return torch.nn.functional.linear(features.float(), head.weight.float(), bias)


def _float32_head_hook(head: torch.nn.Linear, inputs: tuple[Any, ...], _: Any) -> torch.Tensor:
    return float32_logits(head, inputs[0])


def score_in_float32(model: Any) -> None:
    """Make an ``rfdetr`` model's class head (``model.model.model.class_embed``) float32.

    Raises:
        RuntimeError: the model has no such head (an rfdetr version this adapter does not know).
    """
    import torch

    network = getattr(getattr(model, "model", None), "model", None)
    head = getattr(network, "class_embed", None)
    if not isinstance(head, torch.nn.Linear):
        raise RuntimeError(
            f"cannot find the class head of {type(model).__name__} (model.model.model.class_embed)"
        )
    head.register_forward_hook(_float32_head_hook)


class RfDetrDetector:
    """Detects players, numbers and the rest with an RF-DETR checkpoint.

    Args:
        checkpoint: path of a local checkpoint written by rfdetr training
            (``{"model": ..., "args": Namespace(class_names=...), ...}``). Never
            downloaded: a missing file fails, even when its name is a published one.
        size: "nano" | "small" | "medium" | "base" | "large", or None to read the
            architecture from the checkpoint (its ``model_name`` or ``args``).
        confidence: minimum score kept.
        iou: class-agnostic NMS IoU threshold (see module docstring).
        device: "auto", "cpu", "cuda", ...
        class_names: overrides the checkpoint's class names (same length as its classes).
        trust_checkpoint: allow full pickle loading of checkpoints that safe loading
            rejects; only for checkpoints from a trusted source.

    Raises:
        WeightsNotFoundError: ``checkpoint`` is not an existing file.
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        size: str | None = None,
        confidence: float = 0.4,
        iou: float = 0.9,
        device: str = "auto",
        class_names: list[str] | None = None,
        trust_checkpoint: bool = False,
    ) -> None:
        import rfdetr

        if size is not None and size not in SIZES:
            raise ValueError(f"size must be one of {SIZES} or None, got {size!r}")
        if not 0.0 <= confidence <= 1.0:
            raise ValueError(f"confidence must be in [0, 1], got {confidence}")
        path = Path(checkpoint).expanduser()
        if not path.is_file():
            raise missing_path_error(checkpoint, _WHAT, _OVERRIDE)
        path = path.resolve()
        self.checkpoint = str(path)
        self.confidence = float(confidence)
        self.iou = float(iou)
        self.device = resolve_device(device)
        if size is None:
            self._model = rfdetr.RFDETR.from_checkpoint(
                self.checkpoint, device=self.device, trust_checkpoint=trust_checkpoint
            )
        else:
            variant = getattr(rfdetr, _VARIANTS[size])
            self._model = variant(
                pretrain_weights=self.checkpoint,
                device=self.device,
                trust_checkpoint=trust_checkpoint,
            )
        score_in_float32(self._model)
        self.size = size
        known = list(self._model.class_names)
        if class_names is not None:
            if len(class_names) != len(known):
                raise ValueError(
                    f"class_names has {len(class_names)} names but the checkpoint has "
                    f"{len(known)} classes ({known})"
                )
            known = list(class_names)
        self.class_names: list[str] = known

    def __repr__(self) -> str:
        return (
            f"RfDetrDetector(checkpoint={self.checkpoint!r}, confidence={self.confidence}, "
            f"iou={self.iou}, device={self.device!r})"
        )

    def detect(self, frames: list[np.ndarray]) -> list[sv.Detections]:
        """Detections per RGB uint8 frame, in order, with ``data["class_name"]`` set."""
        import torch

        if not frames:
            return []
        with torch.inference_mode(), autocast(self.device):
            raw = self._model.predict(
                list(frames), threshold=self.confidence, include_source_image=False
            )
        results: list[sv.Detections] = []
        for detections in raw:
            known = (detections.class_id >= 0) & (detections.class_id < len(self.class_names))
            kept = detections[known]
            if len(kept) and self.iou < 1.0:
                kept = kept.with_nms(threshold=self.iou, class_agnostic=True)
            results.append(self._named(kept))
        return results

    def _named(self, detections: sv.Detections) -> sv.Detections:
        import supervision as sv

        if len(detections) == 0:
            empty = sv.Detections.empty()
            empty.data[CLASS_NAME] = np.array([], dtype=object)
            return empty
        class_id = detections.class_id.astype(np.int64)
        names = np.array([self.class_names[i] for i in class_id], dtype=object)
        return sv.Detections(
            xyxy=detections.xyxy.astype(np.float32),
            confidence=detections.confidence.astype(np.float32),
            class_id=class_id,
            data={CLASS_NAME: names},
        )
