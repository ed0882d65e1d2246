from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hoopray.models.base import Embedder, WeightsNotFoundError
from hoopray.models.siglip import SiglipEmbedder

CONFIG = Path(__file__).parents[2] / "conf" / "models" / "embedder" / "siglip.yaml"


def _crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (int(rng.integers(1, 120)), int(rng.integers(1, 60)), 3), np.uint8)
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def embedder(tiny_siglip_dir: Path) -> SiglipEmbedder:
    return SiglipEmbedder(str(tiny_siglip_dir), device="cpu", batch_size=4)


def test_is_an_embedder(embedder: SiglipEmbedder) -> None:
    assert isinstance(embedder, Embedder)
    assert embedder.dim == 32


@pytest.mark.parametrize("n", [0, 1, 5, 9])
def test_embed_shape_and_unit_norm(embedder: SiglipEmbedder, n: int) -> None:
    out = embedder.embed(_crops(n))
    assert out.shape == (n, embedder.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)


def test_batching_does_not_change_embeddings(tiny_siglip_dir: Path, embedder) -> None:
    crops = _crops(9)
    one_batch = SiglipEmbedder(str(tiny_siglip_dir), device="cpu", batch_size=64).embed(crops)
    np.testing.assert_allclose(embedder.embed(crops), one_batch, atol=1e-5)
    assert not np.allclose(one_batch[0], one_batch[1])


@pytest.mark.parametrize("empty_shape", [(0, 10, 3), (10, 0, 3), (0, 0, 3)])
def test_empty_crop_gets_zero_row_and_keeps_alignment(embedder, empty_shape) -> None:
    crops = _crops(3)
    out = embedder.embed([crops[0], np.zeros(empty_shape, np.uint8), crops[1], crops[2]])
    np.testing.assert_array_equal(out[1], 0.0)
    np.testing.assert_allclose(out[[0, 2, 3]], embedder.embed(crops), atol=1e-5)


@pytest.mark.parametrize("shape", [(8, 8), (8, 8, 4), (8, 8, 1)])
def test_non_rgb_crop_is_rejected(embedder, shape) -> None:
    with pytest.raises(ValueError, match="expected \\(H, W, 3\\)"):
        embedder.embed([np.zeros(shape, np.uint8)])


@pytest.mark.parametrize(
    ("model", "named"),
    [
        ("hoopray-tests/siglip-not-cached", "hoopray-tests/siglip-not-cached"),
        ("google/siglip-base-patch16-224-absent", "google/siglip-base-patch16-224-absent"),
        ("/nonexistent/siglip", "/nonexistent/siglip"),
        ("./weights/missing-siglip", "./weights/missing-siglip"),
    ],
)
def test_missing_weights_fail_fast_with_a_fix(no_network, model: str, named: str) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        SiglipEmbedder(model, device="cpu")
    message = str(info.value)
    assert named in message
    assert "models.embedder.model=" in message


def test_config_instantiates_the_adapter(tiny_siglip_dir: Path) -> None:
    cfg = OmegaConf.load(CONFIG)
    cfg.model = str(tiny_siglip_dir)
    cfg.device = "cpu"
    embedder = instantiate(cfg)
    assert isinstance(embedder, SiglipEmbedder)
    assert embedder.batch_size == 64
    assert embedder.pooling == "mean"
    assert str(tiny_siglip_dir) in repr(embedder)


def _reference(tiny_siglip_dir: Path, crops: list[np.ndarray], pooling: str) -> np.ndarray:
    """Embeddings computed here with transformers alone, as the notebook does for "mean"."""
    import torch
    from PIL import Image
    from transformers import AutoImageProcessor, SiglipVisionModel

    processor = AutoImageProcessor.from_pretrained(tiny_siglip_dir)
    model = SiglipVisionModel.from_pretrained(tiny_siglip_dir).eval()
    pixels = processor(images=[Image.fromarray(c) for c in crops], return_tensors="pt")
    with torch.inference_mode():
        output = model(pixel_values=pixels["pixel_values"])
    pooled = output.last_hidden_state.mean(dim=1) if pooling == "mean" else output.pooler_output
    return torch.nn.functional.normalize(pooled, dim=-1).numpy()


@pytest.mark.parametrize("pooling", ["mean", "pooler"])
def test_pooling_is_selectable(tiny_siglip_dir: Path, pooling: str) -> None:
    crops = _crops(5, seed=2)
    embedder = SiglipEmbedder(str(tiny_siglip_dir), device="cpu", pooling=pooling)
    out = embedder.embed(crops)
    np.testing.assert_allclose(out, _reference(tiny_siglip_dir, crops, pooling), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert f"pooling={pooling!r}" in repr(embedder)


def test_poolings_differ_and_mean_is_the_default(tiny_siglip_dir: Path) -> None:
    crops = _crops(3, seed=4)
    default = SiglipEmbedder(str(tiny_siglip_dir), device="cpu")
    pooler = SiglipEmbedder(str(tiny_siglip_dir), device="cpu", pooling="pooler")
    assert default.pooling == "mean"
    assert not np.allclose(default.embed(crops), pooler.embed(crops), atol=1e-3)


def test_unknown_pooling_is_refused(tiny_siglip_dir: Path) -> None:
    with pytest.raises(ValueError, match="pooling must be one of"):
        SiglipEmbedder(str(tiny_siglip_dir), device="cpu", pooling="cls")
