import argparse
import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from hoopray.testing.tiny import (
    NOTEBOOK_DETECTOR_CLASSES,
    build_tiny_rfdetr,
    build_tiny_sam2_video,
    build_tiny_siglip,
)


def _weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(directory / "model.safetensors")


@pytest.mark.parametrize(("seed", "same"), [(0, True), (1, False)])
def test_siglip_build_is_deterministic(tmp_path: Path, tiny_siglip_dir: Path, seed, same) -> None:
    again = _weights(build_tiny_siglip(tmp_path / "again", seed=seed))
    first = _weights(tiny_siglip_dir)
    assert again.keys() == first.keys()
    assert all(torch.equal(again[k], first[k]) for k in first) == same


def test_siglip_directory_holds_model_and_processor(tiny_siglip_dir: Path) -> None:
    assert {"config.json", "model.safetensors", "preprocessor_config.json"} <= {
        p.name for p in tiny_siglip_dir.iterdir()
    }


def test_rfdetr_checkpoint_is_in_training_format(tiny_rfdetr_checkpoint: Path) -> None:
    checkpoint = torch.load(tiny_rfdetr_checkpoint, map_location="cpu", weights_only=False)
    assert checkpoint["model_name"] == "RFDETRNano"
    args = checkpoint["args"]
    assert isinstance(args, argparse.Namespace)
    assert args.class_names == list(NOTEBOOK_DETECTOR_CLASSES)
    assert args.num_classes == len(NOTEBOOK_DETECTOR_CLASSES)
    assert checkpoint["model"]["class_embed.bias"].shape[0] == len(NOTEBOOK_DETECTOR_CLASSES) + 1


def test_rfdetr_custom_class_names(tmp_path: Path) -> None:
    path = build_tiny_rfdetr(tmp_path / "sub" / "two.pth", class_names=["player", "number"])
    checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    assert checkpoint["args"].class_names == ["player", "number"]
    assert checkpoint["model"]["class_embed.bias"].shape[0] == 3


def test_smolvlm_base_and_adapter(tiny_smolvlm_dirs: tuple[Path, Path]) -> None:
    from transformers import AutoProcessor

    base, adapter = tiny_smolvlm_dirs
    config = json.loads((adapter / "adapter_config.json").read_text())
    assert config["peft_type"] == "LORA"
    assert set(config["target_modules"]) == {"q_proj", "k_proj", "v_proj", "o_proj"}
    lora = load_file(adapter / "adapter_model.safetensors")
    assert any("lora_B" in k and v.abs().sum() > 0 for k, v in lora.items())
    tokenizer = AutoProcessor.from_pretrained(base).tokenizer
    ids = tokenizer("23", add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == "23"
    assert tokenizer.convert_tokens_to_ids("<image>") != tokenizer.unk_token_id


@pytest.mark.parametrize("image_size", [0, 100, -16])
def test_sam2_builder_rejects_bad_sizes(tmp_path: Path, image_size: int) -> None:
    with pytest.raises(ValueError, match="multiple of 16"):
        build_tiny_sam2_video(tmp_path / "tiny", image_size=image_size)
    assert not (tmp_path / "tiny").exists()


def test_sam2_directory_holds_model_and_processor(tiny_sam2_dir: Path) -> None:
    names = {p.name for p in Path(tiny_sam2_dir).iterdir()}
    assert {"config.json", "model.safetensors"} <= names


def test_smolvlm_tokenizer_splits_digits(tiny_smolvlm_dirs: tuple[Path, Path]) -> None:
    from transformers import AutoProcessor

    tokenizer = AutoProcessor.from_pretrained(tiny_smolvlm_dirs[0]).tokenizer
    ids = tokenizer(" 23", add_special_tokens=False)["input_ids"]
    assert [tokenizer.decode([i]) for i in ids] == [" ", "2", "3"]
