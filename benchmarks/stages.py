"""Frames per second of each stage: decode, detect, track, embed, read, resolve, render.

Each stage runs on the same synthetic clip (1280x720 by default), alone and timed:

- decode: :func:`hoopray.video.iter_frames` over the whole clip (PyAV, RGB).
- detect: RF-DETR through :class:`RfDetrDetector`, one frame per call.
- track: SAM2 video through :class:`Sam2VideoTracking`, prompted with the labelled players.
- embed: SigLIP on the central crops of every labelled player of a frame.
- read: SmolVLM2 + LoRA on every visible number crop of a frame (one batched call);
  observe reads only every 5th frame, so a clip's read cost per frame is a fifth of this.
- resolve: :func:`hoopray.resolve.resolve` on the clip's observations (replay doubles and
  the colour-histogram embedder), with the team model (fitted on the clip) assigning the
  team votes' clusters.
- render: :func:`hoopray.render.render` of the clip with those identities (H.264 out).

On CPU the models are the tiny random-weight ones (:mod:`hoopray.testing.tiny`, the tiny SAM2
video model; RF-DETR's tiny model is the full Nano architecture). On CUDA each stage first
tries the real weights (config defaults: Hugging Face ids and ``$HOOPRAY_WEIGHTS``) and falls
back to the tiny model; the table says which ran.

Run: ``.venv/bin/python benchmarks/stages.py [--seconds 2 --size 1280x720]``.
The last line is ``result: slowest_stage=<name>:<fps> target=info pass``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
import numpy as np


@dataclass
class Stage:
    name: str
    model: str
    frames: int
    seconds: float
    note: str = ""

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else float("inf")


def _first_available(candidates: list[tuple[str, Callable[[], Any]]]) -> tuple[str, Any]:
    """The first candidate whose weights load; real weights are tried first on CUDA."""
    from hoopray.models.base import WeightsNotFoundError

    problems = []
    for label, make in candidates:
        try:
            return label, make()
        except WeightsNotFoundError as exc:
            problems.append(f"{label}: {str(exc).splitlines()[0][:100]}")
    raise RuntimeError("no model could be loaded: " + "; ".join(problems))


def _timed(run: Callable[[], object]) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def _frame_labels(labels: list[dict], frame: int) -> tuple[np.ndarray, np.ndarray]:
    """(player boxes, visible number boxes) of one labelled frame, from label rows."""
    rows = [r for r in labels if r["frame"] == frame and r["role"] == "player"]
    players = np.array([[r["x1"], r["y1"], r["x2"], r["y2"]] for r in rows], np.float32)
    numbers = np.array(
        [
            [r["nx1"], r["ny1"], r["nx2"], r["ny2"]]
            for r in rows
            if r["number_visible"] and r["nx1"] is not None
        ],
        np.float32,
    )
    return players.reshape(-1, 4), numbers.reshape(-1, 4)


def measure(
    root: Path,
    *,
    seconds: float,
    size: tuple[int, int],
    device: str = "cpu",
    model_frames: int = 10,
    detect_frames: int = 3,
    tiny: common.TinyDirs | None = None,
) -> list[Stage]:
    """Time every stage on one synthetic clip; ``model_frames`` frames for track, embed and
    read, ``detect_frames`` for detect (each after one warm-up call)."""
    import supervision as sv

    from hoopray.evaluate import read_labels
    from hoopray.geometry import clip_boxes, crop, pad_boxes, shrink_boxes
    from hoopray.models.base import CLASS_NAME
    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.models.rfdetr_detector import RfDetrDetector
    from hoopray.models.sam2_video import DEFAULT_MODEL, Sam2VideoTracking
    from hoopray.models.siglip import DEFAULT_SIGLIP, SiglipEmbedder
    from hoopray.models.smolvlm import DEFAULT_SMOLVLM2, SmolVlmNumberReader
    from hoopray.observe import ObserveConfig, observe
    from hoopray.render import render
    from hoopray.resolve import ResolveConfig, resolve
    from hoopray.testing.replay import ReplayWorld
    from hoopray.video import iter_frames

    game = common.make_game(root, seconds=seconds, size=size, clips=1)
    clip = common.clip_refs(game)[0]
    labels = read_labels(game.labels[0]).to_pylist()
    tiny = tiny or common.build_tiny_models(root / "models", rfdetr=True)
    cuda = device.startswith("cuda")
    weights = Path(os.environ.get("HOOPRAY_WEIGHTS", "weights"))
    stages: list[Stage] = []

    frames: list[np.ndarray] = []
    decode_s = _timed(lambda: frames.extend(f for _, f in iter_frames(clip.path)))
    stages.append(Stage("decode", "PyAV", len(frames), decode_s))
    width, height = size
    used = frames[: max(2, model_frames + 1)]

    detectors: list[tuple[str, Callable[[], Any]]] = []
    real_rfdetr = weights / "rfdetr" / "basketball-player-detection.pth"
    if cuda:
        detectors.append(("real", lambda: RfDetrDetector(str(real_rfdetr), device=device)))
    if tiny.rfdetr is not None:
        rfdetr_path = str(tiny.rfdetr)
        detectors.append(("tiny (Nano arch)", lambda: RfDetrDetector(rfdetr_path, device=device)))
    if detectors:
        label, detector = _first_available(detectors)
        detector.detect([used[0]])
        n = min(detect_frames, len(used))
        took = _timed(lambda: [detector.detect([f]) for f in used[:n]])
        stages.append(Stage("detect", f"RF-DETR {label}", n, took, "1 frame per call"))

    trackers: list[tuple[str, Callable[[], Any]]] = []
    if cuda:
        trackers.append((DEFAULT_MODEL, lambda: Sam2VideoTracking(DEFAULT_MODEL, device=device)))
    trackers.append(
        (
            "tiny SAM2 video (128 px)",
            lambda: Sam2VideoTracking(
                str(tiny.sam2), device=device, new_track_iou=common.TINY_SAM2_NEW_TRACK_IOU
            ),
        )
    )
    label, tracking = _first_available(trackers)
    players, _ = _frame_labels(labels, 0)
    prompts = sv.Detections(
        xyxy=players,
        confidence=np.ones(len(players), np.float32),
        class_id=np.zeros(len(players), int),
        data={CLASS_NAME: np.array(["player"] * len(players), dtype=object)},
    )
    tracker = tracking.open()
    tracker.start(used[0], prompts)
    steps = used[1:]
    took = _timed(lambda: [tracker.step(f) for f in steps])
    tracker.close()
    stages.append(Stage("track", label, len(steps), took, f"{len(players)} players"))

    embedders: list[tuple[str, Callable[[], Any]]] = []
    if cuda:
        embedders.append((DEFAULT_SIGLIP, lambda: SiglipEmbedder(DEFAULT_SIGLIP, device=device)))
    embedders.append(("tiny SigLIP", lambda: SiglipEmbedder(str(tiny.siglip), device=device)))
    label, embedder = _first_available(embedders)
    per_frame = []
    for index, frame in enumerate(steps):
        boxes, _ = _frame_labels(labels, index + 1)
        central = clip_boxes(shrink_boxes(boxes, 0.4), (width, height))
        per_frame.append([c for c in (crop(frame, b) for b in central) if c.size])
    embedder.embed(per_frame[0])
    took = _timed(lambda: [embedder.embed(c) for c in per_frame])
    crops = sum(len(c) for c in per_frame)
    stages.append(Stage("embed", label, len(per_frame), took, f"{crops} crops"))

    readers: list[tuple[str, Callable[[], Any]]] = []
    if cuda:
        adapter = weights / "smolvlm" / "basketball-jersey-numbers-lora"
        readers.append(
            (
                DEFAULT_SMOLVLM2,
                lambda: SmolVlmNumberReader(
                    DEFAULT_SMOLVLM2, str(adapter) if adapter.is_dir() else None, device=device
                ),
            )
        )
    readers.append(
        (
            "tiny SmolVLM + LoRA",
            lambda: SmolVlmNumberReader(
                str(tiny.smolvlm_base), str(tiny.smolvlm_adapter), device=device
            ),
        )
    )
    label, reader = _first_available(readers)
    number_crops = []
    for index, frame in enumerate(steps):
        _, numbers = _frame_labels(labels, index + 1)
        padded = clip_boxes(pad_boxes(numbers, 10, 10), (width, height))
        found = [c for c in (crop(frame, b) for b in padded) if c.size]
        if found:
            number_crops.append(found)
    if number_crops:
        reader.read(number_crops[0])
        took = _timed(lambda: [reader.read(c) for c in number_crops])
        crops = sum(len(c) for c in number_crops)
        stages.append(
            Stage("read", label, len(number_crops), took, f"{crops} crops, 1 call per frame")
        )

    world = ReplayWorld(root / "labels")
    replay = common.replay_models(world, ColourHistogramEmbedder())
    obs = observe(clip, replay, ObserveConfig())
    team_model, _ = common.fit_teams([clip], replay, None)
    n_frames = int(obs.clip.column("frames")[0].as_py())
    resolve(obs, None, None, ResolveConfig(), team_model)
    identities: list[Any] = []
    took = _timed(lambda: identities.append(resolve(obs, None, None, ResolveConfig(), team_model)))
    note = f"replay observations, {obs.team_votes.num_rows} team votes"
    stages.append(Stage("resolve", "pure Python", n_frames, took, note))
    took = _timed(
        lambda: render(clip.path, obs.tracks, identities[0], None, None, root / "render.mp4")
    )
    stages.append(Stage("render", "OpenCV + libx264", n_frames, took, "masks + labels"))
    return stages


def slowest(stages: list[Stage]) -> Stage:
    return min(stages, key=lambda s: s.fps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=2.0, help="length of the clip")
    parser.add_argument("--size", default="1280x720", help="clip size WxH")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--model-frames", type=int, default=10)
    parser.add_argument("--detect-frames", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1, help="torch threads")
    args = parser.parse_args()
    common.quiet()
    common.set_torch_threads(args.threads)
    from hoopray.models.device import resolve_device

    device = resolve_device(args.device)
    width, height = (int(v) for v in args.size.lower().split("x"))
    print(common.machine_line())
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hoopray-stages-") as tmp:
        stages = measure(
            Path(tmp),
            seconds=args.seconds,
            size=(width, height),
            device=device,
            model_frames=args.model_frames,
            detect_frames=args.detect_frames,
        )
    print(
        f"clip {width}x{height}, {args.seconds:g} s at 30 fps; device {device}; "
        f"torch threads {args.threads}"
    )
    rows = [(s.name, s.model, s.frames, s.seconds, s.fps, s.note) for s in stages]
    print(common.format_table(("stage", "model", "frames", "seconds", "frames/s", "note"), rows))
    print(f"total {time.perf_counter() - started:.0f} s")
    worst = slowest(stages)
    print(f"result: slowest_stage={worst.name}:{worst.fps:.3g} target=info pass")


if __name__ == "__main__":
    main()
