import inspect
import types
from pathlib import Path

import numpy as np
import pytest
from omegaconf import OmegaConf

from hoopray.models.base import NumberReader
from hoopray.models.smolvlm import SmolVlmNumberReader, answer_budget, answer_tokens
from hoopray.numbers import normalise_number
from hoopray.types import NumberRead

CONFIG = Path(__file__).parents[2] / "conf" / "models" / "reader" / "smolvlm.yaml"
STOP = (0, 2)


@pytest.mark.parametrize(
    ("generated", "probabilities", "expected"),
    [
        (np.zeros((0, 3), np.int64), np.zeros((0, 3)), []),
        ([[5, 6, 2]], [[0.5, 0.4, 0.9]], [([5, 6], 0.18)]),  # the end token counts
        ([[5, 6, 7]], [[0.5, 0.5, 0.5]], [([5, 6, 7], 0.0)]),  # cut off: no end token
        ([[2, 5, 6]], [[0.9, 0.5, 0.5]], [([], 0.0)]),
        ([[5, 0, 0], [9, 9, 2]], [[1.0, 0.3, 0.3], [0.5, 1.0, 1.0]], [([5], 0.3), ([9, 9], 0.5)]),
        # "2" then an end the model doubted (it would rather go on to "23"): not confident
        ([[7, 2, 0]], [[0.95, 0.1, 1.0]], [([7], 0.095)]),
        ([[7, 8, 2]], [[0.95, 0.9, 0.95]], [([7, 8], 0.81225)]),
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
        assert read.confidence == 0.0 or read.raw != ""


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
    merged = dict(reader._model.named_parameters())
    weights = dict(plain._model.named_parameters())
    assert merged.keys() == weights.keys()
    changed = [name for name in weights if not weights[name].equal(merged[name])]
    assert changed and all(name.endswith("_proj.weight") for name in changed)
    assert "lora" not in type(reader._model).__name__.lower()


def test_default_token_budget_holds_two_digits_and_the_end(tiny_smolvlm_dirs) -> None:
    """With a tokenizer that gives a digit a token each (the most a number can take),
    " 23" is a space and two digits, and its end token makes four."""
    from transformers import AutoProcessor

    tokenizer = AutoProcessor.from_pretrained(tiny_smolvlm_dirs[0]).tokenizer
    assert answer_budget(tokenizer) == 4
    default = inspect.signature(SmolVlmNumberReader).parameters["max_new_tokens"].default
    assert default >= 4
    assert OmegaConf.load(CONFIG).max_new_tokens >= 4


def test_too_small_token_budget_is_refused(tiny_smolvlm_dirs) -> None:
    base, _ = tiny_smolvlm_dirs
    with pytest.raises(ValueError, match="max_new_tokens=3 cannot hold a two-digit answer"):
        SmolVlmNumberReader(str(base), None, device="cpu", max_new_tokens=3)


def test_a_read_cut_off_before_its_end_is_not_confident(reader, monkeypatch) -> None:
    monkeypatch.setattr(reader, "max_new_tokens", 1)
    reads = reader.read(_crops(4, seed=4))
    assert all(read.confidence == 0.0 for read in reads)


def _scripted_generate(reader: SmolVlmNumberReader, answers: list[list[tuple[str, float]]]):
    """A ``generate`` that gives the next crops ``answers`` in turn: (token, probability) steps."""
    import torch

    tokenizer = reader._processor.tokenizer
    vocab = reader._model.config.text_config.vocab_size
    rival = tokenizer.convert_tokens_to_ids("9")
    queue = list(answers)

    def generate(input_ids, **kwargs):
        batch = [queue.pop(0) for _ in range(len(input_ids))]
        steps = max(len(answer) for answer in batch)
        tokens = torch.full((len(batch), steps), tokenizer.pad_token_id)
        logits = [torch.full((len(batch), vocab), -1e4) for _ in range(steps)]
        for row, answer in enumerate(batch):
            for step, (token, probability) in enumerate(answer):
                chosen = tokenizer.convert_tokens_to_ids(token)
                tokens[row, step] = chosen
                logits[step][row, chosen] = float(np.log(probability))
                logits[step][row, rival] = float(np.log1p(-probability))
        sequences = torch.cat([input_ids, tokens], dim=1)
        return types.SimpleNamespace(sequences=sequences, logits=tuple(logits))

    return generate


def test_confidence_includes_the_end_token(reader, monkeypatch) -> None:
    end = "<end_of_utterance>"
    answers = [
        [("Ġ", 0.99), ("2", 0.9), ("3", 0.8), (end, 0.95)],
        [("Ġ", 0.99), ("2", 0.9), (end, 0.1)],  # "2" where the model expected more
        [("Ġ", 0.99), ("2", 0.9), ("3", 0.8), ("3", 0.9)],  # no end within the budget
    ]
    monkeypatch.setattr(reader._model, "generate", _scripted_generate(reader, answers))
    reads = reader.read(_crops(3, seed=5))
    assert [read.raw for read in reads] == ["23", "2", "233"]
    assert reads[0].confidence == pytest.approx(0.99 * 0.9 * 0.8 * 0.95, rel=1e-4)
    assert reads[1].confidence == pytest.approx(0.99 * 0.9 * 0.1, rel=1e-4)
    assert reads[2].confidence == 0.0
