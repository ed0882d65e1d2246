"""Tiny, randomly initialised models of the real architectures, saved like real weights.

These are for offline tests and smoke runs only: their weights are random, so their
outputs carry no meaning. Each builder writes files that the production adapters load
through their ordinary loading path (``from_pretrained`` on a directory, a PEFT adapter
directory, an RF-DETR training checkpoint), so a test on them exercises the same code
as real weights. Builds are deterministic for a given seed and take a few seconds.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerFast

NOTEBOOK_DETECTOR_CLASSES = (
    "ball",
    "ball-in-basket",
    "number",
    "player",
    "player-in-possession",
    "player-jump-shot",
    "player-layup-dunk",
    "player-shot-block",
    "referee",
    "rim",
)

TINY_IMAGE_SIZE = 64
TINY_PATCH_SIZE = 16

_TOKENIZER_CORPUS = (
    "User: Answer briefly. Read the number.",
    "Assistant: 23",
    "Read the number on the jersey.",
    "0 1 2 3 4 5 6 7 8 9 00 07 10 11 23 30 42 77 99",
    "unreadable none # .",
)


def build_tiny_siglip(directory: str | Path, seed: int = 0) -> Path:
    """A 2-layer SigLIP vision tower (64 px, 32-d) and its image processor in ``directory``."""
    import torch
    from transformers import SiglipImageProcessor, SiglipVisionConfig, SiglipVisionModel

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    config = SiglipVisionConfig(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=TINY_IMAGE_SIZE,
        patch_size=TINY_PATCH_SIZE,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SiglipVisionModel(config).eval()
    model.save_pretrained(out)
    SiglipImageProcessor(
        size={"height": TINY_IMAGE_SIZE, "width": TINY_IMAGE_SIZE}
    ).save_pretrained(out)
    return out


def tiny_tokenizer(corpus: Sequence[str] = _TOKENIZER_CORPUS) -> PreTrainedTokenizerFast:
    """A byte-level BPE tokenizer with SmolVLM's special tokens, trained on ``corpus``.

    Digits are split one per token (the Digits pre-tokenizer), so a number answer takes
    the most tokens any byte-level BPE can give it, whatever the real tokenizer merges:
    " 23" is a space, "2" and "3", and with its end token fills the reader's default
    ``max_new_tokens`` of 4.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    special = [
        "<|endoftext|>",
        "<|im_start|>",
        "<end_of_utterance>",
        "<image>",
        "<fake_token_around_image>",
        "<global-img>",
        "<video>",
    ]
    special += [f"<row_{r}_col_{c}>" for r in range(1, 7) for c in range(1, 7)]
    core = Tokenizer(models.BPE(unk_token=None))
    core.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False),
        ]
    )
    core.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=special,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    core.train_from_iterator(corpus, trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token="<|im_start|>",
        eos_token="<end_of_utterance>",
        pad_token="<|endoftext|>",
        unk_token="<|endoftext|>",
        extra_special_tokens={
            "image_token": "<image>",
            "fake_image_token": "<fake_token_around_image>",
            "global_image_token": "<global-img>",
            "end_of_utterance_token": "<end_of_utterance>",
        },
    )


def build_tiny_smolvlm(directory: str | Path, seed: int = 0) -> tuple[Path, Path]:
    """A tiny SmolVLM (base) and a PEFT LoRA adapter for it.

    The base directory holds a byte-level BPE tokenizer trained on a few lines, a SmolVLM
    processor (64 px images, no splitting) and a 2-layer SmolVLM; the adapter directory
    holds a LoRA adapter on the text model's attention projections, with non-zero random
    weights so that loading it changes the model.

    Returns:
        (base directory, adapter directory), ``directory/base`` and ``directory/adapter``.
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

    root = Path(directory)
    base_dir, adapter_dir = root / "base", root / "adapter"
    tokenizer = tiny_tokenizer()
    tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE
    scale_factor = 2
    image_seq_len = (TINY_IMAGE_SIZE // TINY_PATCH_SIZE) ** 2 // scale_factor**2
    size = {"longest_edge": TINY_IMAGE_SIZE}
    processor = SmolVLMProcessor(
        image_processor=SmolVLMImageProcessor(
            do_image_splitting=False, size=size, max_image_size=size
        ),
        tokenizer=tokenizer,
        video_processor=SmolVLMVideoProcessor(size=size, max_image_size=size),
        image_seq_len=image_seq_len,
        chat_template=DEFAULT_CHAT_TEMPLATE,
    )
    config = SmolVLMConfig(
        vision_config={
            "hidden_size": 32,
            "intermediate_size": 64,
            "num_hidden_layers": 2,
            "num_attention_heads": 2,
            "image_size": TINY_IMAGE_SIZE,
            "patch_size": TINY_PATCH_SIZE,
        },
        text_config={
            "model_type": "llama",
            "vocab_size": len(tokenizer),
            "hidden_size": 64,
            "intermediate_size": 128,
            "num_hidden_layers": 2,
            "num_attention_heads": 4,
            "num_key_value_heads": 2,
            "max_position_embeddings": 512,
            "pad_token_id": tokenizer.pad_token_id,
            "bos_token_id": tokenizer.bos_token_id,
            "eos_token_id": tokenizer.eos_token_id,
        },
        scale_factor=scale_factor,
        pad_token_id=tokenizer.pad_token_id,
        image_token_id=tokenizer.convert_tokens_to_ids("<image>"),
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = SmolVLMForConditionalGeneration(config).eval()
        model.generation_config.pad_token_id = tokenizer.pad_token_id
        model.generation_config.eos_token_id = tokenizer.eos_token_id
        model.save_pretrained(base_dir)
        processor.save_pretrained(base_dir)
        lora = LoraConfig(
            r=4,
            lora_alpha=8,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        )
        peft_model = get_peft_model(model, lora)
        for name, parameter in peft_model.named_parameters():
            if "lora_B" in name:
                torch.nn.init.normal_(parameter, std=0.5)
        peft_model.save_pretrained(adapter_dir)
    return base_dir, adapter_dir


def build_tiny_rfdetr(
    path: str | Path,
    class_names: tuple[str, ...] | list[str] = NOTEBOOK_DETECTOR_CLASSES,
    seed: int = 0,
) -> Path:
    """An RF-DETR Nano with random weights saved as a training-format checkpoint.

    The file is ``{"model": state_dict, "model_name": "RFDETRNano", "args":
    Namespace(num_classes, class_names, ...)}``, the layout rfdetr's own training writes,
    so :class:`hoopray.models.rfdetr_detector.RfDetrDetector` reads the class names from it.
    """
    import torch
    from rfdetr import RFDETRNano

    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    names = list(class_names)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = RFDETRNano(pretrain_weights=None, num_classes=len(names), device="cpu")
    state = model.model.model.state_dict()
    args = argparse.Namespace(
        num_classes=len(names),
        class_names=names,
        pretrain_weights=None,
        num_queries=model.model_config.num_queries,
        group_detr=model.model_config.group_detr,
    )
    torch.save({"model": state, "model_name": "RFDETRNano", "args": args}, out)
    return out


def build_tiny_sam2_video(directory: str | Path, seed: int = 0, image_size: int = 128) -> Path:
    """Save a tiny, randomly initialised ``Sam2VideoModel`` and its processor.

    FOR TESTS, SMOKE RUNS AND BENCHMARKS ONLY: the weights are random, so the masks mean
    nothing. The directory loads through
    :class:`~hoopray.models.sam2_video.Sam2VideoTracking` like real weights.
    The architecture's constraints: ``memory_encoder_output_channels`` stays 64, hidden
    sizes are multiples of 64 above 64, and sub-configs are config objects.

    Args:
        directory: created if missing.
        seed: the weights are deterministic for a seed.
        image_size: model input side, a multiple of 16.

    Returns:
        ``directory`` as a Path.
    """
    import torch
    from transformers import (
        Sam2HieraDetConfig,
        Sam2ImageProcessor,
        Sam2VideoConfig,
        Sam2VideoMaskDecoderConfig,
        Sam2VideoModel,
        Sam2VideoProcessor,
        Sam2VideoPromptEncoderConfig,
        Sam2VideoVideoProcessor,
        Sam2VisionConfig,
    )

    if image_size <= 0 or image_size % 16:
        raise ValueError(f"image_size must be a positive multiple of 16; got {image_size}")
    size, hidden = image_size, 128
    backbone = Sam2HieraDetConfig(
        hidden_size=12,
        image_size=[size, size],
        blocks_per_stage=[1, 1, 1, 1],
        embed_dim_per_stage=[12, 24, 48, 96],
        num_attention_heads_per_stage=[1, 2, 4, 8],
    )
    config = Sam2VideoConfig(
        vision_config=Sam2VisionConfig(
            backbone_config=backbone,
            backbone_channel_list=[96, 48, 24, 12],
            backbone_feature_sizes=[[size // s, size // s] for s in (4, 8, 16)],
            fpn_hidden_size=hidden,
        ),
        prompt_encoder_config=Sam2VideoPromptEncoderConfig(
            hidden_size=hidden, image_size=size, mask_input_channels=8
        ),
        mask_decoder_config=Sam2VideoMaskDecoderConfig(
            hidden_size=hidden, mlp_dim=64, num_attention_heads=4, iou_head_hidden_dim=hidden
        ),
        image_size=size,
        memory_attention_hidden_size=hidden,
        memory_attention_num_layers=1,
        memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[size // 16, size // 16],
        memory_encoder_hidden_size=hidden,
        memory_encoder_output_channels=64,
        mask_downsampler_embed_dim=hidden,
        memory_fuser_embed_dim=hidden,
        memory_fuser_intermediate_dim=64,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Sam2VideoModel(config).eval()
    processor = Sam2VideoProcessor(
        image_processor=Sam2ImageProcessor(
            size={"height": size, "width": size},
            mask_size={"height": size // 4, "width": size // 4},
        ),
        video_processor=Sam2VideoVideoProcessor(size={"height": size, "width": size}),
    )
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(target)
    processor.save_pretrained(target)
    return target
