"""Throughput of the model adapters: items per second through hoopray's own adapters.

Builds the tiny random-weight models of :mod:`hoopray.testing.tiny` in a temporary
directory and times each adapter on synthetic inputs: detector frames/s on 1280x720
frames, embedder crops/s, reader crops/s, and SAM2 tracker frames/s (the tiny SAM2 of
``hoopray.testing.tiny.build_tiny_sam2_video``). On CUDA each adapter first
tries the real weights (config defaults: Hugging Face cache, ``$HOOPRAY_WEIGHTS``) and
falls back to the tiny model; the table says which ran. Tiny-model figures measure the
adapters' overhead and the architectures' cost at tiny sizes, not real-model speed
(except RF-DETR, whose tiny model is the full Nano architecture).

Run by hand: ``.venv/bin/python benchmarks/models.py [--repeats 3] [--device auto]``.
The last line is ``result: reader_crops_per_s=<v> target=>0 pass|fail``.
"""

from __future__ import annotations

import argparse
import logging
import os
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _rate(run: Callable[[], object], items: int, repeats: int) -> float:
    run()  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        best = min(best, time.perf_counter() - start)
    return items / best


def _first_available(candidates: list[tuple[str, Callable[[], object]]]) -> tuple[str, object]:
    from hoopray.models.base import WeightsNotFoundError

    for label, make in candidates:
        try:
            return label, make()
        except WeightsNotFoundError as exc:
            print(f"  ({label} unavailable: {str(exc)[:90]}...)")
    raise RuntimeError("no candidate model could be loaded")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--frames", type=int, default=2, help="frames per detector call")
    parser.add_argument("--crops", type=int, default=32, help="crops per embed/read call")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)

    from hoopray.models.device import resolve_device
    from hoopray.models.rfdetr_detector import RfDetrDetector
    from hoopray.models.siglip import DEFAULT_SIGLIP, SiglipEmbedder
    from hoopray.models.smolvlm import DEFAULT_SMOLVLM2, SmolVlmNumberReader
    from hoopray.testing import tiny

    device = resolve_device(args.device)
    cuda = device.startswith("cuda")
    weights = Path(os.environ.get("HOOPRAY_WEIGHTS", "weights"))
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (720, 1280, 3), np.uint8) for _ in range(args.frames)]
    crops = [
        rng.integers(0, 256, (int(rng.integers(40, 160)), int(rng.integers(20, 80)), 3), np.uint8)
        for _ in range(args.crops)
    ]
    rows: list[tuple[str, str, str, float]] = []
    with tempfile.TemporaryDirectory(prefix="hoopray-bench-") as tmp:
        root = Path(tmp)
        print(f"device: {device}; building tiny models in {root}")
        checkpoint = tiny.build_tiny_rfdetr(root / "rfdetr" / "checkpoint.pth")
        siglip_dir = tiny.build_tiny_siglip(root / "siglip")
        smol_base, smol_adapter = tiny.build_tiny_smolvlm(root / "smolvlm")

        detector_candidates = []
        real_checkpoint = weights / "rfdetr" / "basketball-player-detection.pth"
        if cuda and real_checkpoint.is_file():
            detector_candidates.append(
                ("real", lambda: RfDetrDetector(str(real_checkpoint), device=device))
            )
        detector_candidates.append(
            ("tiny (Nano arch)", lambda: RfDetrDetector(str(checkpoint), device=device))
        )
        label, detector = _first_available(detector_candidates)
        rate = _rate(lambda: detector.detect(frames), len(frames), args.repeats)
        rows.append(("detector", label, "frames/s (1280x720)", rate))

        embedder_candidates = []
        if cuda:
            embedder_candidates.append(
                (DEFAULT_SIGLIP, lambda: SiglipEmbedder(DEFAULT_SIGLIP, device=device))
            )
        embedder_candidates.append(("tiny", lambda: SiglipEmbedder(str(siglip_dir), device=device)))
        label, embedder = _first_available(embedder_candidates)
        rate = _rate(lambda: embedder.embed(crops), len(crops), args.repeats)
        rows.append(("embedder", label, "crops/s", rate))

        reader_candidates = []
        if cuda:
            adapter = weights / "smolvlm" / "basketball-jersey-numbers-lora"
            reader_candidates.append(
                (
                    DEFAULT_SMOLVLM2,
                    lambda: SmolVlmNumberReader(
                        DEFAULT_SMOLVLM2,
                        str(adapter) if adapter.is_dir() else None,
                        device=device,
                    ),
                )
            )
        reader_candidates.append(
            (
                "tiny + LoRA",
                lambda: SmolVlmNumberReader(str(smol_base), str(smol_adapter), device=device),
            )
        )
        label, reader = _first_available(reader_candidates)
        reader_rate = _rate(lambda: reader.read(crops), len(crops), args.repeats)
        rows.append(("reader", label, "crops/s", reader_rate))

        rows.extend(_sam2_rows(root, device, frames[0], args.repeats))

    print(f"\n{'adapter':<10} {'model':<40} {'unit':<22} {'items/s':>10}")
    for name, label, unit, rate in rows:
        print(f"{name:<10} {label:<40} {unit:<22} {rate:>10.2f}")
    verdict = "pass" if reader_rate > 0 else "fail"
    print(f"result: reader_crops_per_s={reader_rate:.2f} target=>0 {verdict}")


def _sam2_rows(
    root: Path, device: str, frame: np.ndarray, repeats: int
) -> list[tuple[str, str, str, float]]:
    """SAM2 tracker frames/s on 5 boxes, on the tiny SAM2 video model."""
    try:
        from hoopray.models import sam2_video
    except ImportError:
        return []
    import supervision as sv

    from hoopray.testing.tiny import build_tiny_sam2_video

    directory = root / "sam2"
    build_tiny_sam2_video(directory)
    tracking = sam2_video.Sam2VideoTracking(str(directory), device=device)
    boxes = np.array([[100 + 200 * i, 200, 180 + 200 * i, 420] for i in range(5)], np.float32)
    detections = sv.Detections(
        xyxy=boxes,
        confidence=np.ones(5, np.float32),
        class_id=np.zeros(5, int),
        data={"class_name": np.array(["player"] * 5, dtype=object)},
    )
    steps = 5

    def track() -> None:
        tracker = tracking.open()
        tracker.start(frame, detections)
        for _ in range(steps):
            tracker.step(frame)
        tracker.close()

    rate = _rate(track, steps + 1, repeats)
    return [("tracker", "tiny SAM2 video", "frames/s (5 boxes)", rate)]


if __name__ == "__main__":
    main()
