from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from hoopray.models.base import Embedder
from hoopray.models.colour import ColourHistogramEmbedder

CONF = Path(__file__).resolve().parents[2] / "conf" / "models" / "embedder" / "colour.yaml"


def _solid(rgb: tuple[int, int, int], h: int = 40, w: int = 20) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (h, w, 3)).copy()


@pytest.mark.parametrize(
    ("kwargs", "dim", "norm"),
    [
        ({}, 512, 1.0),
        ({"space": "lab"}, 512, 1.0),
        ({"bins": 4, "joint": False}, 12, np.sqrt(3)),
        ({"bins": 16, "space": "lab", "joint": False}, 48, np.sqrt(3)),
        ({"soft": False}, 512, 1.0),
        ({"soft": False, "joint": False, "bins": 5}, 15, np.sqrt(3)),
    ],
)
def test_shapes_and_norms(kwargs: dict, dim: int, norm: float) -> None:
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 256, (30, 17, 3), dtype=np.uint8), _solid((200, 30, 30))]
    embedder = ColourHistogramEmbedder(**kwargs)
    out = embedder.embed(crops)
    assert out.shape == (2, dim) == (2, embedder.dim)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), norm, rtol=1e-5)
    assert (out >= 0).all()


@pytest.mark.parametrize(
    ("crops", "rows"),
    [
        ([], 0),
        ([np.zeros((0, 7, 3), np.uint8)], 1),
        ([_solid((10, 10, 10)), np.zeros((5, 0, 3), np.uint8)], 2),
    ],
)
def test_empty_list_and_zero_size_crops(crops: list[np.ndarray], rows: int) -> None:
    out = ColourHistogramEmbedder().embed(crops)
    assert out.shape == (rows, 512)
    for row, image in enumerate(crops):
        assert (np.linalg.norm(out[row]) == 0) == (image.size == 0)


@pytest.mark.parametrize(
    "crop",
    [
        np.zeros((10, 10), np.uint8),
        np.zeros((10, 10, 4), np.uint8),
        np.zeros((10, 10, 3), np.float32),
    ],
)
def test_rejects_non_rgb_uint8(crop: np.ndarray) -> None:
    with pytest.raises(ValueError, match="crop 0"):
        ColourHistogramEmbedder().embed([crop])


@pytest.mark.parametrize("kwargs", [{"bins": 1}, {"bins": 65}, {"space": "rgb"}, {"max_side": -1}])
def test_rejects_bad_settings(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ColourHistogramEmbedder(**kwargs)


def _noisy(rgb: tuple[int, int, int], seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    noise = rng.normal(0, 10, (60, 30, 3))
    return np.clip(np.array(rgb) + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("space", ["hsv", "lab"])
@pytest.mark.parametrize("joint", [True, False])
def test_similar_colours_closer_than_different_ones(space: str, joint: bool) -> None:
    blue, blue2, green = _noisy((29, 42, 90), 0), _noisy((29, 42, 90), 1), _noisy((29, 74, 42), 2)
    out = ColourHistogramEmbedder(space=space, joint=joint).embed([blue, blue2, green])
    assert float(out[0] @ out[1]) > float(out[0] @ out[2]) + 0.2


@pytest.mark.parametrize(("space", "below", "above"), [("hsv", 126, 130), ("lab", 116, 121)])
def test_soft_binning_keeps_colours_either_side_of_a_bin_edge_close(
    space: str, below: int, above: int
) -> None:
    # with 8 bins over 0..255 an edge lies at 128: V (hsv) or L (lab) of these greys
    grey_below, grey_above = _solid((below,) * 3), _solid((above,) * 3)
    soft = ColourHistogramEmbedder(space=space).embed([grey_below, grey_above])
    hard = ColourHistogramEmbedder(space=space, soft=False).embed([grey_below, grey_above])
    assert float(soft[0] @ soft[1]) > 0.8
    assert float(hard[0] @ hard[1]) < 0.1


def test_soft_hue_wraps_around() -> None:
    red_low, red_high = _solid((200, 20, 24)), _solid((200, 24, 20))  # hue ~1 and ~179
    out = ColourHistogramEmbedder(space="hsv").embed([red_low, red_high])
    assert float(out[0] @ out[1]) > 0.8


def test_downscaling_large_crops_keeps_the_distribution() -> None:
    rng = np.random.default_rng(1)
    small = rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)
    large = np.repeat(np.repeat(small, 64, axis=0), 64, axis=1)
    out = ColourHistogramEmbedder(max_side=128).embed([small, large])
    assert float(out[0] @ out[1]) > 0.9


def test_config_instantiates_an_embedder() -> None:
    from hydra.utils import instantiate

    embedder = instantiate(yaml.safe_load(CONF.read_text()))
    assert isinstance(embedder, ColourHistogramEmbedder)
    assert isinstance(embedder, Embedder)
    assert embedder.embed([_solid((1, 2, 3))]).shape == (1, embedder.dim)


def _with_blank(image: np.ndarray, rows: slice) -> np.ndarray:
    from hoopray.teams import BLANK

    out = image.copy()
    out[rows] = BLANK
    return out


@pytest.mark.parametrize(
    ("blanked", "kwargs"),
    [
        (slice(0, 20), {}),  # half the crop blanked
        (slice(0, 39), {}),  # one row of jersey left
        (slice(0, 301), {"max_side": 128}),  # downscaled: no blank blended into the jersey
        (slice(0, 20), {"joint": False, "soft": False}),
    ],
)
def test_blanked_pixels_are_ignored(blanked: slice, kwargs: dict) -> None:
    jersey = _solid((30, 60, 160), h=40 if "max_side" not in kwargs else 400)
    embedder = ColourHistogramEmbedder(**kwargs)
    clean, masked = embedder.embed([jersey, _with_blank(jersey, blanked)])
    np.testing.assert_allclose(masked, clean, atol=1e-6)


def test_a_crop_of_blanked_pixels_only_embeds_to_zeros() -> None:
    from hoopray.teams import BLANK

    grey_but_not_blank = _solid((128, 128, 127))
    out = ColourHistogramEmbedder().embed([_solid(BLANK), grey_but_not_blank])
    assert not out[0].any()
    assert np.linalg.norm(out[1]) == pytest.approx(1.0)
