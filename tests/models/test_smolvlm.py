from pathlib import Path

import numpy as np
import pytest
from hydra.utils import instantiate
from omegaconf import OmegaConf

from hoopray.models.base import NumberReader, WeightsNotFoundError
from hoopray.models.smolvlm import SmolVlmNumberReader, answer_tokens
from hoopray.numbers import normalise_number
from hoopray.types import NumberRead

CONFIG = Path(__file__).parents[2] / "conf" / "models" / "reader" / "smolvlm.yaml"
STOP = (0, 2)


@pytest.mark.parametrize(
    ("generated", "probabilities", "expected"),
    [
        (np.zeros((0, 3), np.int64), np.zeros((0, 3)), []),
        ([[5, 6, 2]], [[0.5, 0.4, 0.9]], [([5, 6], 0.2)]),
        ([[5, 6, 7]], [[0.5, 0.5, 0.5]], [([5, 6, 7], 0.125)]),
        ([[2, 5, 6]], [[0.9, 0.5, 0.5]], [([], 0.0)]),
        ([[5, 0, 0], [9, 9, 2]], [[1.0, 0.3, 0.3], [0.5, 1.0, 1.0]], [([5], 1.0), ([9, 9], 0.5)]),
    ],
)
def test_answer_tokens(generated, probabilities, expected) -> None:
    got = answer_tokens(np.asarray(generated), np.asarray(probabilities, np.float32), STOP)
    assert [ids for ids, _ in got] == [ids for ids, _ in expected]
    np.testing.assert_allclose([c for _, c in got], [c for _, c in expected], rtol=1e-6)


def test_answer_tokens_rows_must_match() -> None:
    with pytest.raises(ValueError):
        answer_tokens(np.zeros((2, 3), np.int64), np.zeros((1, 3)), STOP)


def _crops(n: int, seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [
        rng.integers(0, 256, (int(rng.integers(8, 80)), int(rng.integers(8, 60)), 3), np.uint8)
        for _ in range(n)
    ]


@pytest.fixture(scope="module")
def reader(tiny_smolvlm_dirs: tuple[Path, Path]) -> SmolVlmNumberReader:
    base, adapter = tiny_smolvlm_dirs
    return SmolVlmNumberReader(str(base), str(adapter), device="cpu", batch_size=2)


@pytest.mark.parametrize("n", [0, 1, 5])
def test_read_returns_one_read_per_crop(reader: SmolVlmNumberReader, n: int) -> None:
    assert isinstance(reader, NumberReader)
    reads = reader.read(_crops(n))
    assert len(reads) == n
    for read in reads:
        assert isinstance(read, NumberRead)
        assert 0.0 <= read.confidence <= 1.0
        assert read.text == normalise_number(read.raw)
        assert (read.confidence > 0.0) == (read.raw != "")


def test_batching_does_not_change_reads(tiny_smolvlm_dirs, reader) -> None:
    base, adapter = tiny_smolvlm_dirs
    crops = _crops(5, seed=1)
    single_batch = SmolVlmNumberReader(str(base), str(adapter), device="cpu", batch_size=16)
    batched, together = reader.read(crops), single_batch.read(crops)
    assert [r.raw for r in batched] == [r.raw for r in together]
    np.testing.assert_allclose(
        [r.confidence for r in batched], [r.confidence for r in together], rtol=1e-3, atol=0.0
    )


def test_empty_crop_reads_as_none_and_keeps_alignment(reader: SmolVlmNumberReader) -> None:
    crops = _crops(2, seed=2)
    reads = reader.read([crops[0], np.zeros((0, 12, 3), np.uint8), crops[1]])
    assert reads[1] == NumberRead(text=None, confidence=0.0, raw="")
    assert [r.raw for r in (reads[0], reads[2])] == [r.raw for r in reader.read(crops)]


def test_non_rgb_crop_is_rejected(reader: SmolVlmNumberReader) -> None:
    with pytest.raises(ValueError, match="expected \\(H, W, 3\\)"):
        reader.read([np.zeros((10, 10), np.uint8)])


def test_adapter_is_merged_into_the_base(tiny_smolvlm_dirs, reader) -> None:
    base, _ = tiny_smolvlm_dirs
    plain = SmolVlmNumberReader(str(base), None, device="cpu")
    crops = _crops(3, seed=3)
    with_adapter = [r.confidence for r in reader.read(crops)]
    without = [r.confidence for r in plain.read(crops)]
    assert not np.allclose(with_adapter, without, rtol=1e-3, atol=0.0)
    assert "lora" not in type(reader._model).__name__.lower()


@pytest.mark.parametrize(
    ("base", "adapter", "named", "override"),
    [
        ("hoopray-tests/smolvlm-not-cached", None, "hoopray-tests/smolvlm-not-cached", "base"),
        ("/nonexistent/smolvlm", None, "/nonexistent/smolvlm", "base"),
        (None, "/nonexistent/lora", "/nonexistent/lora", "adapter"),
    ],
)
def test_missing_weights_fail_fast_with_a_fix(
    no_network, tiny_smolvlm_dirs, base, adapter, named, override
) -> None:
    with pytest.raises(WeightsNotFoundError) as info:
        SmolVlmNumberReader(base or str(tiny_smolvlm_dirs[0]), adapter, device="cpu")
    assert named in str(info.value)
    assert f"models.reader.{override}=" in str(info.value)


def test_config_instantiates_the_adapter(tiny_smolvlm_dirs, monkeypatch) -> None:
    monkeypatch.setenv("HOOPRAY_WEIGHTS", "/nonexistent-weights-root")
    cfg = OmegaConf.load(CONFIG)
    assert cfg.adapter.startswith("/nonexistent-weights-root/")
    assert cfg.prompt == "Read the number."
    cfg.base, cfg.adapter = (str(path) for path in tiny_smolvlm_dirs)
    cfg.device = "cpu"
    reader = instantiate(cfg)
    assert isinstance(reader, SmolVlmNumberReader)
    assert reader.prompt == "Read the number."
