"""Roboflow-hosted models through the optional ``inference`` package.

Install with ``pip install 'hoopray[roboflow]'`` and export ``ROBOFLOW_API_KEY``. The key
is read from the environment when a model is loaded, handed to ``inference`` and not kept
on the adapter (nor in its repr, config or outputs).

``inference`` models take BGR numpy images (OpenCV's order); hoopray frames and crops are
RGB, so the adapters flip channels before calling them. Both adapters call the model's
``infer``, which runs its own preprocessing before ``predict``: the number reader's
(SmolVLM2 + LoRA) converts the BGR crop to the RGB image the LoRA was trained on. Its
``predict`` must not be called directly: on the legacy backend it would receive BGR pixels
as if they were RGB, and on the inference-models backend it takes preprocessed inputs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from hoopray.models.base import CLASS_NAME
from hoopray.models.loading import import_optional, require_env_secret
from hoopray.types import NumberRead

if TYPE_CHECKING:
    import supervision as sv

DEFAULT_DETECTOR_ID = "basketball-player-detection-3-ycjdo/4"
DEFAULT_READER_ID = "basketball-jersey-numbers-ocr/3"
DEFAULT_KEY_ENV = "ROBOFLOW_API_KEY"


def _load(model_id: str, api_key_env: str, what: str) -> Any:
    inference = import_optional("inference", "roboflow", what)
    key = require_env_secret(api_key_env, what)
    return inference.get_model(model_id=model_id, api_key=key)


def _bgr(image: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(image[..., ::-1])


class RoboflowDetector:
    """The notebook's hosted RF-DETR detector (``inference.get_model``).

    Args:
        model_id: Roboflow model id, "project/version".
        confidence: minimum score kept.
        iou: NMS IoU threshold passed to ``inference``.
        api_key_env: environment variable holding the Roboflow API key.

    Raises:
        ImportError: ``inference`` is not installed.
        WeightsNotFoundError: the API key variable is not set.
    """

    def __init__(
        self,
        model_id: str = DEFAULT_DETECTOR_ID,
        confidence: float = 0.4,
        iou: float = 0.9,
        api_key_env: str = DEFAULT_KEY_ENV,
    ) -> None:
        self.model_id = model_id
        self.confidence = float(confidence)
        self.iou = float(iou)
        self.api_key_env = api_key_env
        self._model = _load(model_id, api_key_env, f"Roboflow detector {model_id!r}")
        self.class_names: list[str] = [str(name) for name in _class_names(self._model)]

    def __repr__(self) -> str:
        return (
            f"RoboflowDetector(model_id={self.model_id!r}, confidence={self.confidence}, "
            f"iou={self.iou})"
        )

    def detect(self, frames: list[np.ndarray]) -> list[sv.Detections]:
        """Detections per RGB uint8 frame, in order, with ``data["class_name"]`` set."""
        import supervision as sv

        if not frames:
            return []
        results = self._model.infer(
            [_bgr(frame) for frame in frames],
            confidence=self.confidence,
            iou_threshold=self.iou,
        )
        detections = []
        for result in results:
            found = sv.Detections.from_inference(result)
            if CLASS_NAME not in found.data:
                found.data[CLASS_NAME] = np.array(
                    [self.class_names[int(i)] for i in found.class_id], dtype=object
                )
            found.data[CLASS_NAME] = np.asarray(found.data[CLASS_NAME], dtype=object)
            detections.append(found)
        return detections


def _class_names(model: Any) -> list[str]:
    names = getattr(model, "class_names", None)
    if names is None:
        return []
    if isinstance(names, dict):
        return [names[key] for key in sorted(names)]
    return list(names)


class RoboflowNumberReader:
    """The notebook's hosted SmolVLM2 + LoRA number reader (``inference.get_model``).

    Each crop is read by ``infer(crop, prompt=...)``; the answer is the ``response`` of the
    first (only) result. Roboflow's reader returns text only, so every read has confidence
    1.0 (0.0 when the answer is not a number).

    Args:
        model_id: Roboflow model id, "project/version".
        prompt: the question asked about each crop.
        api_key_env: environment variable holding the Roboflow API key.

    Raises:
        ImportError: ``inference`` is not installed.
        WeightsNotFoundError: the API key variable is not set.
    """

    def __init__(
        self,
        model_id: str = DEFAULT_READER_ID,
        prompt: str = "Read the number.",
        api_key_env: str = DEFAULT_KEY_ENV,
    ) -> None:
        self.model_id = model_id
        self.prompt = prompt
        self.api_key_env = api_key_env
        self._model = _load(model_id, api_key_env, f"Roboflow number reader {model_id!r}")

    def __repr__(self) -> str:
        return f"RoboflowNumberReader(model_id={self.model_id!r}, prompt={self.prompt!r})"

    def read(self, crops: list[np.ndarray]) -> list[NumberRead]:
        """One read per RGB crop, in order (the hosted model reads one crop per call)."""
        from hoopray.numbers import normalise_number

        reads = []
        for crop in crops:
            if crop.size == 0:
                reads.append(NumberRead(text=None, confidence=0.0, raw=""))
                continue
            raw = response_text(self._model.infer(_bgr(crop), prompt=self.prompt)).strip()
            text = normalise_number(raw)
            reads.append(NumberRead(text=text, confidence=1.0 if text else 0.0, raw=raw))
        return reads


def response_text(result: Any) -> str:
    """The answer of an ``infer`` call: the ``response`` of its first result.

    ``inference`` LMMs return a list holding one ``LMMInferenceResponse``; an empty list
    or a missing response reads as "".
    """
    if isinstance(result, (list, tuple)):
        if not result:
            return ""
        result = result[0]
    response = getattr(result, "response", result)
    return "" if response is None else str(response)
