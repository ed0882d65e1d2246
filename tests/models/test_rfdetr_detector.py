import math
from pathlib import Path

import numpy as np
import pytest
import supervision as sv
import torch
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hoopray.models.base import CLASS_NAME, Detector, WeightsNotFoundError
from hoopray.models.rfdetr_detector import RfDetrDetector, float32_logits, score_in_float32
from hoopray.testing.tiny import NOTEBOOK_DETECTOR_CLASSES

CONFIG = Path(__file__).parents[2] / "conf" / "models" / "detector" / "rfdetr.yaml"


def _frames(n: int, size: tuple[int, int] = (720, 1280)) -> list[np.ndarray]:
    rng = np.random.default_rng(n)
    return [rng.integers(0, 256, (*size, 3), np.uint8) for _ in range(n)]


@pytest.fixture(scope="module")
def detector(tiny_rfdetr_checkpoint: Path) -> RfDetrDetector:
    return RfDetrDetector(str(tiny_rfdetr_checkpoint), confidence=0.0, iou=1.0, device="cpu")


def test_class_names_come_from_the_checkpoint(detector: RfDetrDetector) -> None:
    assert isinstance(detector, Detector)
    assert detector.class_names == list(NOTEBOOK_DETECTOR_CLASSES)


def test_detect_nothing(detector: RfDetrDetector) -> None:
    assert detector.detect([]) == []


@pytest.mark.slow
def test_detect_batch_sets_class_names(detector: RfDetrDetector) -> None:
    frames = _frames(1) + _frames(1, size=(90, 160))
    results = detector.detect(frames)
    assert len(results) == 2
    for result in results:
        assert isinstance(result, sv.Detections)
        assert len(result) > 0
        names = result.data[CLASS_NAME]
        assert [detector.class_names[i] for i in result.class_id] == list(names)
        assert result.xyxy.dtype == np.float32


@pytest.fixture(scope="module")
def unfiltered(detector: RfDetrDetector) -> tuple[list[np.ndarray], sv.Detections]:
    """One frame and everything the detector finds on it (confidence 0, no NMS)."""
    frame = _frames(1)
    return frame, detector.detect(frame)[0]


@pytest.mark.slow
def test_nms_removes_overlaps_above_iou(detector: RfDetrDetector, unfiltered) -> None:
    frame, raw = unfiltered
    detector.iou = 0.5
    try:
        kept = detector.detect(frame)[0]
    finally:
        detector.iou = 1.0
    assert 0 < len(kept) < len(raw)
    overlaps = sv.box_iou_batch(kept.xyxy, kept.xyxy)
    np.fill_diagonal(overlaps, 0.0)
    assert overlaps.max() <= 0.5 + 1e-6


@pytest.mark.slow
def test_confidence_threshold_is_applied(detector: RfDetrDetector, unfiltered) -> None:
    frame, everything = unfiltered
    cut = float(np.median(everything.confidence))
    detector.confidence = cut
    try:
        kept = detector.detect(frame)[0]
    finally:
        detector.confidence = 0.0
    assert 0 < len(kept) < len(everything)
    assert (kept.confidence > cut).all()


@pytest.mark.slow
def test_explicit_size_and_class_name_override(tiny_rfdetr_checkpoint: Path) -> None:
    names = [f"c{i}" for i in range(len(NOTEBOOK_DETECTOR_CLASSES))]
    detector = RfDetrDetector(
        str(tiny_rfdetr_checkpoint), size="nano", confidence=0.0, device="cpu", class_names=names
    )
    result = detector.detect(_frames(1, size=(64, 96)))[0]
    assert set(result.data[CLASS_NAME]) <= set(names)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"size": "huge"}, "size must be one of"),
        ({"confidence": 1.5}, "confidence must be in"),
    ],
)
def test_bad_arguments(tiny_rfdetr_checkpoint: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        RfDetrDetector(str(tiny_rfdetr_checkpoint), device="cpu", **kwargs)


@pytest.mark.parametrize("name", ["missing.pth", "rf-detr-nano.pth", "rf-detr-base.pth"])
def test_missing_checkpoint_fails_without_download(no_network, tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    with pytest.raises(WeightsNotFoundError) as info:
        RfDetrDetector(str(path), device="cpu")
    assert str(path) in str(info.value)
    assert "models.detector.checkpoint=" in str(info.value)
    assert not path.exists()


def test_directory_is_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(WeightsNotFoundError):
        RfDetrDetector(str(tmp_path), device="cpu")


def test_config_instantiates_the_adapter(tiny_rfdetr_checkpoint: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOOPRAY_WEIGHTS", "/nonexistent-weights-root")
    cfg = OmegaConf.load(CONFIG)
    assert cfg.checkpoint.startswith("/nonexistent-weights-root/")
    assert (cfg.confidence, cfg.iou) == (0.4, 0.9)
    cfg.checkpoint = str(tiny_rfdetr_checkpoint)
    cfg.device = "cpu"
    detector = instantiate(cfg)
    assert isinstance(detector, RfDetrDetector)
    assert (detector.confidence, detector.iou) == (0.4, 0.9)


def _head_scoring(probability: float) -> tuple[torch.nn.Linear, torch.Tensor]:
    """A 1-in 1-out head whose logit for the returned feature has sigmoid ``probability``."""
    head = torch.nn.Linear(1, 1)
    with torch.no_grad():
        head.weight.fill_(1.0)
        head.bias.fill_(0.0)
    return head, torch.tensor([[math.log(probability / (1 - probability))]])


@pytest.mark.parametrize("probability", [0.3998, 0.3999, 0.4001, 0.3995])
def test_scores_near_the_threshold_are_not_quantised_under_bf16(probability: float) -> None:
    head, features = _head_scoring(probability)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        bf16 = head(features).sigmoid()
        exact = float32_logits(head, features).sigmoid()
        from_bf16_features = float32_logits(head, features.bfloat16()).sigmoid()
    assert bf16.dtype == torch.bfloat16  # what RF-DETR's head gives under autocast
    assert float(bf16) in (0.3984375, 0.400390625)  # the bf16 grid around 0.4
    assert exact.dtype == from_bf16_features.dtype == torch.float32
    assert float(exact) == pytest.approx(probability, abs=1e-6)
    assert (float(exact) > 0.4) == (probability > 0.4)
    # bf16 features (the decoder's output) still cost less than a quarter of the grid step
    assert float(from_bf16_features) == pytest.approx(probability, abs=5e-4)


def test_detector_class_head_scores_in_float32(detector: RfDetrDetector) -> None:
    head = detector._model.model.model.class_embed
    features = torch.randn(1, 5, head.in_features).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(features)
    assert logits.dtype == torch.float32
    expected = torch.nn.functional.linear(features.float(), head.weight, head.bias)
    torch.testing.assert_close(logits, expected)


def test_detect_under_bf16_autocast_scores_in_float32(detector, monkeypatch) -> None:
    from hoopray.models import rfdetr_detector

    seen = []
    head = detector._model.model.model.class_embed
    handle = head.register_forward_hook(lambda module, inputs, output: seen.append(output.dtype))
    cpu_bf16 = lambda device: torch.autocast("cpu", dtype=torch.bfloat16)  # noqa: E731
    monkeypatch.setattr(rfdetr_detector, "autocast", cpu_bf16)
    try:
        result = detector.detect(_frames(1, size=(90, 160)))[0]
    finally:
        handle.remove()
    assert seen and set(seen) == {torch.float32}
    assert result.confidence.dtype == np.float32 and len(result) > 0


def test_a_model_without_a_class_head_is_refused() -> None:
    with pytest.raises(RuntimeError, match="class head"):
        score_in_float32(object())
