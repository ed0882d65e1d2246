import sys
import types
from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hoopray.models.base import CLASS_NAME, Detector, NumberReader, WeightsNotFoundError
from hoopray.models.roboflow_models import (
    RoboflowDetector,
    RoboflowNumberReader,
    response_text,
)
from hoopray.types import NumberRead

CONF = Path(__file__).parents[2] / "conf" / "models"
SECRET = "rf_test_secret_key_0123456789"
CLASSES = ["ball", "number", "player"]


class FakeHostedModel:
    """Stands in for an ``inference`` model: records what it was given."""

    class_names = CLASSES

    def __init__(self) -> None:
        self.images: list[np.ndarray] = []

    def infer(self, images, confidence: float, iou_threshold: float) -> list[dict]:
        self.images.extend(images)
        self.settings = (confidence, iou_threshold)
        responses = []
        for image in images:
            height, width = image.shape[:2]
            predictions = [
                {
                    "x": 20.0,
                    "y": 30.0,
                    "width": 10.0,
                    "height": 20.0,
                    "confidence": 0.9,
                    "class": "player",
                    "class_id": 2,
                },
                {
                    "x": 22.0,
                    "y": 25.0,
                    "width": 4.0,
                    "height": 6.0,
                    "confidence": 0.7,
                    "class": "number",
                    "class_id": 1,
                },
            ][: 2 if image.mean() > 0 else 0]
            responses.append(
                {"image": {"width": width, "height": height}, "predictions": predictions}
            )
        return responses


ANSWERS = {0: "23", 1: "#07", 2: "nothing"}


def _answer(rgb: np.ndarray) -> str:
    """What the fake LoRA reads: decided by the red channel, so BGR reads differently."""
    return ANSWERS[int(rgb[0, 0, 0]) % 3]


class FakeLoraReader:
    """Stands in for ``inference``'s LoRA SmolVLM: ``infer`` preprocesses (BGR numpy to an
    RGB image, as ``load_image_rgb`` does), then ``predict`` reads that RGB image."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []
        self.prompts: list[str] = []

    def infer(self, image: np.ndarray, **kwargs) -> list[types.SimpleNamespace]:
        rgb = np.ascontiguousarray(image[..., ::-1])
        return [types.SimpleNamespace(response=self.predict(rgb, **kwargs)[0])]

    def predict(self, image_in: np.ndarray, prompt: str = "", **kwargs) -> tuple[str]:
        self.seen.append(image_in)
        self.prompts.append(prompt)
        return (_answer(image_in),)


class FakeInferenceModelsReader:
    """Stands in for the inference-models backend: its ``predict`` takes the preprocessed
    inputs (a dict of tensors), never pixels."""

    def __init__(self) -> None:
        self.seen: list[np.ndarray] = []

    def infer(self, image: np.ndarray, **kwargs) -> list[types.SimpleNamespace]:
        inputs, metadata = self.preprocess(image, **kwargs)
        return self.postprocess(self.predict(inputs, **kwargs), metadata, **kwargs)

    def preprocess(self, image: np.ndarray, prompt: str, **kwargs) -> tuple[dict, dict]:
        rgb = np.ascontiguousarray(image[..., ::-1])  # numpy input is BGR, as in OpenCV
        self.seen.append(rgb)
        return {"pixel_values": rgb, "prompt": prompt}, {"image_dims": image.shape[1::-1]}

    def predict(self, inputs, **kwargs) -> list[str]:
        if not isinstance(inputs, dict):
            raise TypeError("predict takes preprocessed inputs")
        return [_answer(inputs["pixel_values"])]

    def postprocess(self, predictions, metadata, **kwargs) -> list[types.SimpleNamespace]:
        return [types.SimpleNamespace(response=predictions[0], image=metadata)]


READERS = {"legacy": FakeLoraReader, "inference-models": FakeInferenceModelsReader}


@pytest.fixture
def fake_inference(monkeypatch: pytest.MonkeyPatch) -> dict:
    calls: dict = {"get_model": []}
    module = types.ModuleType("inference")

    def get_model(model_id: str, api_key: str):
        calls["get_model"].append((model_id, api_key))
        reader = READERS.get(calls.get("backend", "")) if "ocr" in model_id else None
        calls["model"] = reader() if reader else FakeHostedModel()
        return calls["model"]

    module.get_model = get_model
    monkeypatch.setitem(sys.modules, "inference", module)
    monkeypatch.setenv("ROBOFLOW_API_KEY", SECRET)
    return calls


ADAPTERS = [RoboflowDetector, RoboflowNumberReader]


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_missing_package_names_the_extra(monkeypatch: pytest.MonkeyPatch, adapter) -> None:
    monkeypatch.setitem(sys.modules, "inference", None)
    monkeypatch.setenv("ROBOFLOW_API_KEY", SECRET)
    with pytest.raises(ImportError, match=r"pip install 'hoopray\[roboflow\]'"):
        adapter()


@pytest.mark.parametrize("adapter", ADAPTERS)
@pytest.mark.parametrize("value", [None, "", "   "])
def test_missing_key_says_to_export_it(fake_inference, monkeypatch, adapter, value) -> None:
    if value is None:
        monkeypatch.delenv("ROBOFLOW_API_KEY")
    else:
        monkeypatch.setenv("ROBOFLOW_API_KEY", value)
    with pytest.raises(WeightsNotFoundError, match="export ROBOFLOW_API_KEY"):
        adapter()
    assert fake_inference["get_model"] == []


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_key_goes_to_inference_but_is_never_kept(fake_inference, adapter) -> None:
    model = adapter()
    assert fake_inference["get_model"][0][1] == SECRET
    assert SECRET not in repr(model)
    assert SECRET not in str(model)
    assert all(SECRET not in repr(value) for value in vars(model).values())


def test_custom_key_variable(fake_inference, monkeypatch) -> None:
    monkeypatch.delenv("ROBOFLOW_API_KEY")
    monkeypatch.setenv("MY_RF_KEY", "other-key")
    RoboflowDetector(api_key_env="MY_RF_KEY")
    assert fake_inference["get_model"][0] == ("basketball-player-detection-3-ycjdo/4", "other-key")


def test_detector_converts_results(fake_inference) -> None:
    detector = RoboflowDetector(confidence=0.3, iou=0.8)
    assert isinstance(detector, Detector)
    assert detector.class_names == CLASSES
    frame = np.zeros((48, 64, 3), np.uint8)
    frame[..., 0] = 255
    results = detector.detect([frame, np.zeros((48, 64, 3), np.uint8)])
    assert fake_inference["model"].settings == (0.3, 0.8)
    sent = fake_inference["model"].images[0]
    assert (sent[..., 2] == 255).all() and (sent[..., 0] == 0).all()  # RGB -> BGR
    first, second = results
    assert list(first.data[CLASS_NAME]) == ["player", "number"]
    np.testing.assert_allclose(first.xyxy[0], [15, 20, 25, 40])
    assert len(second) == 0
    assert detector.detect([]) == []


@pytest.mark.parametrize("backend", sorted(READERS))
def test_reader_parses_answers(fake_inference, backend: str) -> None:
    fake_inference["backend"] = backend
    reader = RoboflowNumberReader()
    assert isinstance(reader, NumberReader)
    crops = [np.full((8, 6, 3), (red, 0, 200), np.uint8) for red in (0, 1, 2)]
    reads = reader.read([*crops, np.zeros((0, 6, 3), np.uint8)])
    assert reads == [
        NumberRead("23", 1.0, "23"),
        NumberRead("7", 1.0, "#07"),
        NumberRead(None, 0.0, "nothing"),
        NumberRead(None, 0.0, ""),
    ]
    assert reader.read([]) == []


@pytest.mark.parametrize("backend", sorted(READERS))
def test_reader_model_receives_rgb(fake_inference, backend: str) -> None:
    """The crop reaches the LoRA in RGB, after inference's own preprocessing."""
    fake_inference["backend"] = backend
    reader = RoboflowNumberReader(prompt="Which number?")
    crop = np.zeros((8, 6, 3), np.uint8)
    crop[..., 0] = 1  # red: the answer "#07" is read from the red channel
    assert reader.read([crop]) == [NumberRead("7", 1.0, "#07")]
    model = fake_inference["model"]
    np.testing.assert_array_equal(model.seen[0], crop)
    if backend == "legacy":
        assert model.prompts == ["Which number?"]


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ([types.SimpleNamespace(response=" 23 ")], " 23 "),
        ([], ""),
        ([types.SimpleNamespace(response=None)], ""),
        (types.SimpleNamespace(response="7"), "7"),
        ("11", "11"),
    ],
)
def test_response_text(result, text: str) -> None:
    assert response_text(result) == text


@pytest.mark.parametrize(
    ("path", "cls", "expected"),
    [
        (
            "detector/roboflow.yaml",
            RoboflowDetector,
            {"model_id": "basketball-player-detection-3-ycjdo/4", "confidence": 0.4, "iou": 0.9},
        ),
        (
            "reader/roboflow.yaml",
            RoboflowNumberReader,
            {"model_id": "basketball-jersey-numbers-ocr/3", "prompt": "Read the number."},
        ),
    ],
)
def test_config_instantiates_the_adapter(fake_inference, path, cls, expected) -> None:
    cfg = OmegaConf.load(CONF / path)
    assert SECRET not in OmegaConf.to_yaml(cfg)
    model = instantiate(cfg)
    assert isinstance(model, cls)
    assert {key: getattr(model, key) for key in expected} == expected
