"""Model cost at the real architectures' sizes, through hoopray's adapters, and frames/s of
the observe loop under hoopray's schedule and the notebook's, on the same models.

Models: randomly initialised at the real architectures' sizes, built and saved here, then
loaded by the production adapters' public constructors, through the same loading code as
real weights (no weights can be downloaded here):

- SAM2.1 hiera-large and hiera-small: transformers ``Sam2VideoConfig`` with the backbone
  values of the published ``sam2.1_hiera_l`` / ``sam2.1_hiera_s`` configs (stages, widths,
  heads, windows, global-attention blocks) and the published defaults for the rest
  (1024 px, memory attention, 7 memories), loaded by ``Sam2VideoTracking``;
- SigLIP base-patch16-224 (``SiglipVisionConfig``'s defaults are that model), loaded by
  ``SiglipEmbedder``;
- SmolVLM2-2.2B: the text (Llama, 24 layers of 2048, vocabulary 49,280) and vision
  (SigLIP so400m: 27 layers of 1152, 384 px, patch 14) configs of
  ``HuggingFaceTB/SmolVLM2-2.2B-Instruct`` with its image processor (1,536 px longest edge,
  384 px tiles, 81 tokens each): values written down here, since the hub cannot be reached
  to read them; a byte-level tokenizer built here (it only shapes the prompt, a few dozen
  tokens); and a LoRA of rank :data:`LORA_RANK` (the published adapter's rank is not known
  here; merged, it costs nothing) on the attention projections, which
  ``SmolVlmNumberReader`` merges;
- RF-DETR base and nano: built by rfdetr without pretrained weights (10 classes), saved as
  a training checkpoint, loaded by ``RfDetrDetector``.

Per stage, at 1280x720 with 10 players: the detector on one frame; the tracker's step with
10 prompted players (the prompting frame untimed); the embedder on the 10 central team
crops; the reader on the 10 padded number crops, batched (one call) and crop by crop. The
reader decodes a fixed number of tokens (``max_new_tokens``, 4: random weights essentially
never emit an end token early). Timed calls come after one untimed warm-up call where the
device is CUDA; on the CPU the first call is timed too (a real-size warm-up would double
the run).

The observe loop's frames/s over a ``--seconds`` clip at 30 fps is composed from those
per-call times and each schedule's calls:

- hoopray: the tracker every frame; one detector call per read frame (every 5th) for
  players and numbers; one batched reader call per read frame with the crops of the tracks
  not decided yet (each track is decided after ``--reads-per-track`` reads; ``ocr_work.py``
  measures 2 crops per confirmed identity);
- notebook: the tracker every frame; two detector calls per read frame (players, then
  numbers); every number crop read one by one on every read frame.

Both embed the same team crops (hoopray's ``team_stride`` of 15 frames). Left out: decoding,
the per-frame work outside the models (``overhead.py``), prompting new players, writing, and
what the masks of random weights do to the tracker (its tracks are those it was prompted
with; a real SAM2 keeps 10 players alive the same way).

On the CPU (this machine; torch on 1 thread, as the other benchmarks) the real sizes take
minutes and about 14 GiB of memory at the reader's load: the default times ``--frames 1``
call of each and ``--crops 2`` reader crops (their time is scaled to 10 crops; on a CPU a
batch costs about its crops' sum) with image splitting off (17 tiles of 384 px per crop
would take minutes per crop); on CUDA (bf16 autocast, the adapters' own) ``--frames 5``,
10 crops and the processor's own splitting (the production setting). ``--quick`` uses tiny
configs of the same architectures, for the tests.

Run: ``.venv/bin/python benchmarks/real_size.py [--quick] [--device auto]``. The last line
is ``result: fps_ratio=<hoopray fps / notebook fps> target=>=2 pass|fail``.
"""

from __future__ import annotations

import argparse
import gc
import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import common
import numpy as np

W, H = 1280, 720
PLAYERS = 10
FPS = 30.0
READ_STRIDE = 5
TEAM_STRIDE = 15
LORA_RANK = 8  # the published adapter's rank is not known here; merged, it costs nothing
MAX_NEW_TOKENS = 4
FPS_RATIO_TARGET = 2.0

SAM2_BACKBONES: dict[str, dict[str, Any]] = {
    "large": {
        "hidden_size": 144,
        "num_attention_heads": 2,
        "blocks_per_stage": [2, 6, 36, 4],
        "embed_dim_per_stage": [144, 288, 576, 1152],
        "num_attention_heads_per_stage": [2, 4, 8, 16],
        "window_size_per_stage": [8, 4, 16, 8],
        "global_attention_blocks": [23, 33, 43],
        "window_positional_embedding_background_size": [7, 7],
    },
    "small": {
        "hidden_size": 96,
        "num_attention_heads": 1,
        "blocks_per_stage": [1, 2, 11, 2],
        "embed_dim_per_stage": [96, 192, 384, 768],
        "num_attention_heads_per_stage": [1, 2, 4, 8],
        "window_size_per_stage": [8, 4, 14, 7],
        "global_attention_blocks": [7, 10, 13],
        "window_positional_embedding_background_size": [7, 7],
    },
}

SMOLVLM_TEXT = {
    "model_type": "llama",
    "vocab_size": 49280,
    "hidden_size": 2048,
    "intermediate_size": 8192,
    "num_hidden_layers": 24,
    "num_attention_heads": 32,
    "num_key_value_heads": 32,
    "max_position_embeddings": 8192,
}
SMOLVLM_VISION = {
    "hidden_size": 1152,
    "intermediate_size": 4304,
    "num_hidden_layers": 27,
    "num_attention_heads": 16,
    "image_size": 384,
    "patch_size": 14,
}
SMOLVLM_SCALE_FACTOR = 3
SMOLVLM_LONGEST_EDGE = 1536

_CORPUS = [
    "User: Answer briefly. Read the number. Assistant: 23",
    "the quick brown fox jumps over the lazy dog 0123456789",
    "<|im_start|>User:<end_of_utterance>\nAssistant:",
]


# --------------------------------------------------------------------------- builders


def build_sam2(directory: Path, variant: str, quick: bool = False) -> Path:
    """A random ``Sam2VideoModel`` of ``variant`` ("large" or "small") and its processor."""
    import torch
    from transformers import (
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoVideoProcessor,
        Sam2VisionConfig,
    )

    if quick:
        from hoopray.testing.tiny import build_tiny_sam2_video

        return build_tiny_sam2_video(directory, image_size=128)
    values = SAM2_BACKBONES[variant]
    backbone = Sam2HieraDetConfig(image_size=[1024, 1024], **values)
    vision = Sam2VisionConfig(
        backbone_config=backbone,
        backbone_channel_list=list(reversed(values["embed_dim_per_stage"])),
    )
    config = Sam2VideoConfig(vision_config=vision)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = Sam2VideoModel(config).eval()
    processor = Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(), video_processor=Sam2VideoVideoProcessor()
    )
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    processor.save_pretrained(directory)
    return directory


def build_siglip(directory: Path, quick: bool = False) -> Path:
    """A random SigLIP vision tower (base-patch16-224, the config's defaults) and processor."""
    import torch
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    if quick:
        from hoopray.testing.tiny import build_tiny_siglip

        return build_tiny_siglip(directory)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = SiglipVisionModel(SiglipVisionConfig()).eval()
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    SiglipImageProcessor().save_pretrained(directory)
    return directory


def build_smolvlm(directory: Path, quick: bool = False) -> tuple[Path, Path]:
    """A random SmolVLM2 (2.2B, or tiny with ``quick``), its processor and a LoRA adapter.

    Returns (base directory, adapter directory). The weights are saved in bfloat16 (half
    the disk); the reader loads them in its own dtype.
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        SmolVLMConfig,
        SmolVLMForConditionalGeneration,
        SmolVLMImageProcessor,
        SmolVLMProcessor,
        SmolVLMVideoProcessor,
    )
    from transformers.models.smolvlm.processing_smolvlm import DEFAULT_CHAT_TEMPLATE

    from hoopray.testing.tiny import tiny_tokenizer

    tokenizer = tiny_tokenizer(_CORPUS)
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    text = dict(SMOLVLM_TEXT)
    vision = dict(SMOLVLM_VISION)
    scale, longest, split = SMOLVLM_SCALE_FACTOR, SMOLVLM_LONGEST_EDGE, True
    if quick:
        text.update(
            vocab_size=len(tokenizer),
            hidden_size=64,
            intermediate_size=128,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
        )
        vision.update(
            hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2
        )
        vision.update(image_size=64, patch_size=8)
        scale, longest, split = 2, 64, False
    tile = vision["image_size"]
    seq_len = (tile // vision["patch_size"]) ** 2 // scale**2
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(
            do_image_splitting=split,
            size={"longest_edge": longest},
            max_image_size={"longest_edge": tile},
        ),
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(
            size={"longest_edge": tile}, max_image_size={"longest_edge": tile}
        ),
        image_seq_len=seq_len,
        chat_template=DEFAULT_CHAT_TEMPLATE,
    )
    ids = {
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    config = SmolVLMConfig(
        vision_config=vision,
        text_config={**text, **ids},
        scale_factor=scale,
        pad_token_id=tokenizer.pad_token_id,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    base_dir, adapter_dir = directory / "base", directory / "adapter"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.bfloat16)
    try:
        with torch.random.fork_rng(devices=[]), torch.device(device):
            torch.manual_seed(0)
            model = SmolVLMForConditionalGeneration(config).eval()
    finally:
        torch.set_default_dtype(previous)
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.save_pretrained(base_dir)
    processor.save_pretrained(base_dir)
    lora = LoraConfig(
        r=LORA_RANK,
        lora_alpha=2 * LORA_RANK,
        lora_dropout=0.0,
        target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
    )
    peft_model = get_peft_model(model, lora)
    with torch.no_grad():
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(std=0.02)
    peft_model.save_pretrained(adapter_dir)
    del peft_model, model
    return base_dir, adapter_dir


def build_rfdetr(path: Path, size: str) -> Path:
    """A random RF-DETR (``size`` "base" or "nano") saved as a training checkpoint."""
    import argparse as _argparse

    import rfdetr
    import torch
    from rfdetr.models.backbone import dinov2

    from hoopray.testing.tiny import NOTEBOOK_DETECTOR_CLASSES

    variant = {"base": "RFDETRBase", "nano": "RFDETRNano"}[size]
    names = list(NOTEBOOK_DETECTOR_CLASSES)
    backbone = dinov2.WindowedDinov2WithRegistersBackbone
    # Without pretrained weights rfdetr still fetches DINOv2's from the hub for the base
    # size (patch 14): build that backbone from its config instead, randomly initialised.
    backbone.from_pretrained = classmethod(lambda cls, name, config: cls(config))  # type: ignore[method-assign]
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = getattr(rfdetr, variant)(
                pretrain_weights=None, num_classes=len(names), device="cpu"
            )
    finally:
        del backbone.from_pretrained  # the inherited loader again
    args = _argparse.Namespace(
        num_classes=len(names),
        class_names=names,
        pretrain_weights=None,
        num_queries=model.model_config.num_queries,
        group_detr=model.model_config.group_detr,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model": model.model.model.state_dict(), "model_name": variant, "args": args}, path)
    return path


# --------------------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Scene:
    """One 1280x720 frame with 10 players: their boxes, team crops and number crops."""

    frame: np.ndarray
    players: Any  # sv.Detections with class names
    team_crops: list[np.ndarray]
    number_crops: list[np.ndarray]


def make_scene(seed: int = 0) -> Scene:
    import supervision as sv

    from hoopray.geometry import box_pixels, clip_boxes, pad_boxes, shrink_boxes
    from hoopray.models.base import CLASS_NAME

    rng = np.random.default_rng(seed)
    frame = rng.integers(0, 256, size=(H, W, 3), dtype=np.uint8)
    boxes = np.array(
        [[60 + 120 * i, 220 + 20 * (i % 3), 140 + 120 * i, 480 + 20 * (i % 3)] for i in range(10)],
        dtype=np.float32,
    )
    players = sv.Detections(
        xyxy=boxes,
        confidence=np.full(PLAYERS, 0.9, dtype=np.float32),
        class_id=np.full(PLAYERS, 3),
        data={CLASS_NAME: np.array(["player"] * PLAYERS, dtype=object)},
    )
    numbers = np.stack(
        [boxes[:, 0] + 20, boxes[:, 1] + 40, boxes[:, 0] + 60, boxes[:, 1] + 90], axis=1
    )

    def crops(xyxy: np.ndarray) -> list[np.ndarray]:
        bounds = box_pixels(clip_boxes(xyxy, (W, H)), (W, H))
        return [frame[r1:r2, c1:c2].copy() for c1, r1, c2, r2 in bounds.tolist()]

    return Scene(
        frame=frame,
        players=players,
        team_crops=crops(shrink_boxes(boxes, 0.4)),
        number_crops=crops(pad_boxes(numbers, 10, 10)),
    )


# --------------------------------------------------------------------------- timing


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize()


def time_calls(fn: Callable[[], object], repeats: int, device: str, warmup: bool) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` (after one untimed call if ``warmup``)."""
    if warmup:
        fn()
    seconds = []
    for _ in range(repeats):
        _sync(device)
        started = time.perf_counter()
        fn()
        _sync(device)
        seconds.append(time.perf_counter() - started)
    return float(np.median(seconds))


@dataclass
class Stage:
    """Seconds per call of one model through its adapter."""

    stage: str
    model: str
    params_m: float
    seconds: float  # per call
    unit: str  # what one call does
    note: str = ""


def _params(module: Any) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def _free() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:
        pass


@dataclass(frozen=True)
class Options:
    device: str
    frames: int
    crops: int
    image_splitting: bool | None
    quick: bool

    @property
    def warmup(self) -> bool:
        return self.device.startswith("cuda") or self.quick


def measure_detectors(root: Path, scene: Scene, opts: Options) -> list[Stage]:
    from hoopray.models.rfdetr_detector import RfDetrDetector

    out = []
    for size in ("nano",) if opts.quick else ("base", "nano"):
        checkpoint = build_rfdetr(root / f"rfdetr-{size}" / "checkpoint.pth", size)
        detector = RfDetrDetector(checkpoint, device=opts.device)
        seconds = time_calls(
            lambda d=detector: d.detect([scene.frame]), opts.frames, opts.device, opts.warmup
        )
        params = _params(detector._model.model.model)
        out.append(Stage("detect", f"RF-DETR {size}", params, seconds, "1 frame"))
        del detector
        _free()
    return out


def measure_trackers(root: Path, scene: Scene, opts: Options) -> list[Stage]:
    from hoopray.models.sam2_video import Sam2VideoTracking

    out = []
    for variant in ("large",) if opts.quick else ("large", "small"):
        directory = build_sam2(root / f"sam2-{variant}", variant, quick=opts.quick)
        tracking = Sam2VideoTracking(str(directory), device=opts.device)
        tracker = tracking.open()
        tracker.start(scene.frame, scene.players)
        live: list[int] = []

        def step(t: Any = tracker, seen: list[int] = live) -> None:
            seen.append(len(t.step(scene.frame)))

        seconds = time_calls(step, opts.frames, opts.device, opts.warmup)
        tracker.close()
        name = "tiny SAM2 (quick)" if opts.quick else f"SAM2.1 hiera-{variant}"
        note = f"{PLAYERS} players prompted, {max(live)} with a mask"
        out.append(Stage("track", name, _params(tracking.model), seconds, "1 step", note))
        del tracker, tracking
        _free()
    return out


def measure_embedder(root: Path, scene: Scene, opts: Options) -> list[Stage]:
    from hoopray.models.siglip import SiglipEmbedder

    embedder = SiglipEmbedder(str(build_siglip(root / "siglip", opts.quick)), device=opts.device)
    seconds = time_calls(
        lambda e=embedder: e.embed(scene.team_crops), opts.frames, opts.device, opts.warmup
    )
    name = "tiny SigLIP (quick)" if opts.quick else "SigLIP base-patch16-224"
    stage = Stage("embed", name, _params(embedder._model), seconds, f"{PLAYERS} crops, 1 call")
    del embedder
    _free()
    return [stage]


def measure_reader(root: Path, scene: Scene, opts: Options) -> list[Stage]:
    """Batched (one call) and crop-by-crop reads of ``opts.crops`` crops, scaled to 10."""
    from hoopray.models.smolvlm import SmolVlmNumberReader

    base, adapter = build_smolvlm(root / "smolvlm", opts.quick)
    _free()
    reader = SmolVlmNumberReader(
        str(base),
        str(adapter),
        device=opts.device,
        max_new_tokens=MAX_NEW_TOKENS,
        image_splitting=opts.image_splitting,
        batch_size=16,
    )
    crops = scene.number_crops[: opts.crops]
    scale = PLAYERS / len(crops)
    batched = time_calls(lambda r=reader: r.read(crops), 1, opts.device, opts.warmup) * scale
    single = time_calls(lambda r=reader: r.read(crops[:1]), len(crops), opts.device, False)
    name = "tiny SmolVLM (quick)" if opts.quick else "SmolVLM2-2.2B"
    splitting = {None: "processor's splitting", True: "splitting on", False: "splitting off"}[
        opts.image_splitting
    ]
    note = f"LoRA r={LORA_RANK} merged; {MAX_NEW_TOKENS} tokens; {splitting}"
    if scale != 1:
        note += f"; {len(crops)} crops timed, x{scale:g}"
    params = _params(reader._model)
    out = [
        Stage("read", name, params, batched, f"{PLAYERS} crops, 1 call", note),
        Stage("read", name, params, single * PLAYERS, f"{PLAYERS} crops, 1 call each", note),
    ]
    del reader
    _free()
    return out


# --------------------------------------------------------------------------- the loop


@dataclass(frozen=True)
class Costs:
    """Seconds per call of the models the observe loop runs."""

    track: float  # one tracker step
    detect: float  # one detector call on one frame
    embed: float  # one embedder call on the players' team crops
    read_batched: float  # one reader call on 10 crops
    read_single: float  # one reader call on one crop


@dataclass(frozen=True)
class LoopTime:
    schedule: str
    frames: int
    seconds: dict[str, float]  # per stage

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    @property
    def fps(self) -> float:
        return self.frames / self.total if self.total else math.inf


def loop_time(costs: Costs, schedule: str, seconds: float, reads_per_track: int) -> LoopTime:
    """Seconds of each stage over a ``seconds``-long clip under ``schedule``."""
    frames = round(seconds * FPS)
    read_frames = math.ceil(frames / READ_STRIDE)
    team_calls = math.ceil(frames / TEAM_STRIDE)
    if schedule == "hoopray":
        detect = read_frames * costs.detect
        reading = min(reads_per_track, read_frames) * costs.read_batched
    elif schedule == "notebook":
        detect = read_frames * 2 * costs.detect
        reading = read_frames * PLAYERS * costs.read_single
    else:
        raise ValueError(f"unknown schedule {schedule!r}")
    parts = {
        "track": frames * costs.track,
        "detect": detect,
        "read": reading,
        "embed": team_calls * costs.embed,
    }
    return LoopTime(schedule, frames, parts)


def costs_of(stages: list[Stage], tracker: str, detector: str) -> Costs:
    def pick(stage: str, model: str | None = None, unit: str | None = None) -> float:
        for s in stages:
            if s.stage == stage and model in (None, s.model) and unit in (None, s.unit):
                return s.seconds
        raise KeyError(f"no {stage} stage for {model or unit}")

    return Costs(
        track=pick("track", tracker),
        detect=pick("detect", detector),
        embed=pick("embed"),
        read_batched=pick("read", unit=f"{PLAYERS} crops, 1 call"),
        read_single=pick("read", unit=f"{PLAYERS} crops, 1 call each") / PLAYERS,
    )


def measure(root: Path, opts: Options) -> list[Stage]:
    """Every stage, one model at a time (each freed before the next is built)."""
    scene = make_scene()
    stages: list[Stage] = []
    for step in (measure_detectors, measure_trackers, measure_embedder, measure_reader):
        started = time.perf_counter()
        stages += step(root, scene, opts)
        print(f"  {step.__name__}: {time.perf_counter() - started:.0f} s", flush=True)
    return stages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda")
    parser.add_argument("--quick", action="store_true", help="tiny configs (for the tests)")
    parser.add_argument("--frames", type=int, help="timed calls per stage (CPU 1, CUDA 5)")
    parser.add_argument("--crops", type=int, help="reader crops timed (CPU 2, CUDA 10)")
    parser.add_argument(
        "--image-splitting",
        choices=("default", "on", "off"),
        help="reader's image splitting (CPU: off; CUDA: the processor's default)",
    )
    parser.add_argument("--seconds", type=float, default=8.0, help="clip length of the loop")
    parser.add_argument("--reads-per-track", type=int, default=2)
    parser.add_argument(
        "--threads", type=int, help="torch threads (CPU: 1, as the other benchmarks; CUDA: all)"
    )
    parser.add_argument("--out", type=Path, help="also write the table to this file")
    args = parser.parse_args()
    common.quiet()
    from hoopray.models.device import resolve_device

    device = resolve_device(args.device)
    cuda = device.startswith("cuda")
    threads = args.threads or ((os.cpu_count() or 1) if cuda else 1)
    common.set_torch_threads(threads)
    splitting = args.image_splitting or ("default" if cuda or args.quick else "off")
    opts = Options(
        device=device,
        frames=args.frames or (5 if cuda else 1),
        crops=min(PLAYERS, args.crops or (PLAYERS if cuda else 2)),
        image_splitting={"default": None, "on": True, "off": False}[splitting],
        quick=args.quick,
    )
    lines = [common.machine_line()]
    print(lines[0], flush=True)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hoopray-real-size-") as tmp:
        stages = measure(Path(tmp), opts)
    tracker = stages[[s.stage for s in stages].index("track")].model
    detector = stages[[s.stage for s in stages].index("detect")].model
    costs = costs_of(stages, tracker, detector)
    loops = [
        loop_time(costs, s, args.seconds, args.reads_per_track) for s in ("hoopray", "notebook")
    ]
    precision = "bf16 autocast" if cuda else "float32"
    lines.append(
        f"device {device} ({precision}), torch threads {threads}; {W}x{H}, {PLAYERS} "
        f"players; {opts.frames} timed call(s) per stage"
        + ("; quick: tiny configs" if opts.quick else "; real sizes, random weights")
    )
    rows = [(s.stage, s.model, s.params_m, s.unit, s.seconds, s.note) for s in stages]
    lines.append(common.format_table(("stage", "model", "params M", "one call", "s", "note"), rows))
    lines.append(
        f"observe loop over a {args.seconds:g} s clip ({loops[0].frames} frames), tracker "
        f"{tracker}, detector {detector}; hoopray decides a track after "
        f"{args.reads_per_track} reads"
    )
    loop_rows = [
        (
            loop.schedule,
            *(loop.seconds[k] / loop.frames for k in ("track", "detect", "read", "embed")),
            loop.total / loop.frames,
            loop.fps,
        )
        for loop in loops
    ]
    headers = (
        "schedule",
        "track s/f",
        "detect s/f",
        "read s/f",
        "embed s/f",
        "s/frame",
        "frames/s",
    )
    lines.append(common.format_table(headers, loop_rows))
    lines.append(f"total {time.perf_counter() - started:.0f} s")
    ratio = loops[0].fps / loops[1].fps
    lines.append(
        common.result_line("fps_ratio", ratio, f">={FPS_RATIO_TARGET:g}", ratio >= FPS_RATIO_TARGET)
    )
    text = "\n".join(lines[1:])
    print(text)
    if args.out is not None:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
