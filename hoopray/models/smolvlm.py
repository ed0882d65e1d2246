"""Jersey-number reader: SmolVLM2 with an optional PEFT LoRA adapter.

Base model: ``HuggingFaceTB/SmolVLM2-2.2B-Instruct``, the model Roboflow's
``basketball-jersey-numbers-ocr`` LoRA was trained on (Roboflow names it
``smolvlm2/smolvlm-2.2b-instruct``). The adapter is merged into the base for speed.

The conversation mirrors Roboflow's LoRA SmolVLM inference: one user turn with the
text ``preamble`` ("Answer briefly."), the crop, and the ``prompt``. Crops are read in
batches with left padding and greedy decoding.

Confidence of a read is the product of the probabilities (softmax of the raw logits) of
the greedily chosen tokens of the answer and of the end-of-answer token that closed it:
the model's probability of this whole answer, ended there. So a read cut short ("2" where
the model was unsure whether "23" goes on) is not confident. An empty answer, or one that
``max_new_tokens`` cut off before its end token, has confidence 0.

``max_new_tokens`` must hold the longest number answer with the processor's tokenizer: a
leading space, two digits and the end token (:func:`answer_budget`), which is checked when
the reader is made.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from hoopray.models.base import crop_batches
from hoopray.models.device import autocast, resolve_device
from hoopray.models.loading import load_pretrained
from hoopray.types import NumberRead

DEFAULT_SMOLVLM2 = "HuggingFaceTB/SmolVLM2-2.2B-Instruct"
DEFAULT_PROMPT = "Read the number."
DEFAULT_PREAMBLE = "Answer briefly."
JERSEY_NUMBERS = ("00", *(str(n) for n in range(100)))


def answer_tokens(
    generated: np.ndarray, probabilities: np.ndarray, stop_ids: Sequence[int]
) -> list[tuple[list[int], float]]:
    """Answer token ids and confidence of each generated sequence.

    Args:
        generated: (B, T) token ids produced by ``generate`` (the prompt removed).
        probabilities: (B, T) probability the model gave each of those tokens.
        stop_ids: ids that end an answer (end of utterance, eos, pad).

    Returns:
        For each row: the ids before the first stop id, and the product of their
        probabilities and the stop id's. 0.0 when there are no ids before it, or no stop
        id at all (the answer was cut off).
    """
    stops = set(int(i) for i in stop_ids)
    answers: list[tuple[list[int], float]] = []
    for row, probs in zip(generated, probabilities, strict=True):
        tokens = row.tolist()
        end = next((k for k, token in enumerate(tokens) if token in stops), None)
        ids = [int(token) for token in tokens[:end]]
        confidence = 0.0
        if ids and end is not None:
            confidence = float(np.prod(probs[: end + 1], dtype=np.float64))
        answers.append((ids, min(max(confidence, 0.0), 1.0)))
    return answers


def answer_budget(tokenizer: Any) -> int:
    """Tokens the longest jersey-number answer takes with ``tokenizer``, its end included.

    Every number from "0" to "99" and "00" is counted with and without a leading space
    (the answer follows "Assistant:"), plus one end-of-answer token.
    """
    lengths = [
        len(tokenizer(text, add_special_tokens=False)["input_ids"])
        for number in JERSEY_NUMBERS
        for text in (number, f" {number}")
    ]
    return max(lengths) + 1


def _merge_adapter(model: Any, adapter: str) -> Any:
    from peft import PeftModel

    def load(name: str, **kwargs: object) -> Any:
        return PeftModel.from_pretrained(model, name, **kwargs)

    peft_model = load_pretrained(
        load,
        adapter,
        what="SmolVLM2 number reader (LoRA adapter)",
        override="models.reader.adapter",
    )
    return peft_model.merge_and_unload()


class SmolVlmNumberReader:
    """Reads jersey numbers from RGB uint8 crops.

    Args:
        base: Hugging Face id (from the local cache when offline) or local directory of
            the SmolVLM2 base model and its processor.
        adapter: local directory (or Hugging Face id) of a PEFT LoRA adapter, or None.
        prompt: the question asked about each crop.
        device: "auto", "cpu", "cuda", ...
        batch_size: crops per ``generate`` call.
        max_new_tokens: longest answer generated, its end token included; at least
            :func:`answer_budget` of the processor's tokenizer.
        preamble: text placed before the crop in the user turn; None for none.
        image_splitting: passed to the processor as ``do_image_splitting``; None keeps
            the processor's own setting. False is much faster on small crops.

    Raises:
        ValueError: ``batch_size`` < 1, or ``max_new_tokens`` too small for a two-digit
            answer and its end token.
        WeightsNotFoundError: the base or the adapter cannot be found locally.
    """

    def __init__(
        self,
        base: str = DEFAULT_SMOLVLM2,
        adapter: str | None = None,
        prompt: str = DEFAULT_PROMPT,
        device: str = "auto",
        batch_size: int = 16,
        max_new_tokens: int = 4,
        preamble: str | None = DEFAULT_PREAMBLE,
        image_splitting: bool | None = None,
    ) -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        if batch_size < 1 or max_new_tokens < 1:
            raise ValueError("batch_size and max_new_tokens must be >= 1")
        self.base = base
        self.adapter = adapter
        self.prompt = prompt
        self.preamble = preamble
        self.device = resolve_device(device)
        self.batch_size = batch_size
        self.max_new_tokens = max_new_tokens
        self.image_splitting = image_splitting
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        where = {"what": "SmolVLM2 number reader (base)", "override": "models.reader.base"}
        self._processor = load_pretrained(AutoProcessor.from_pretrained, base, **where)
        self._processor.tokenizer.padding_side = "left"
        budget = answer_budget(self._processor.tokenizer)
        if max_new_tokens < budget:
            raise ValueError(
                f"max_new_tokens={max_new_tokens} cannot hold a two-digit answer and its end "
                f"token, which take {budget} tokens with {base!r}'s tokenizer"
            )
        model = load_pretrained(
            AutoModelForImageTextToText.from_pretrained, base, dtype=dtype, **where
        )
        if adapter is not None:
            model = _merge_adapter(model, adapter)
        self._model = model.to(self.device).eval()
        tokenizer = self._processor.tokenizer
        stop = {tokenizer.eos_token_id, tokenizer.pad_token_id}
        stop.add(tokenizer.convert_tokens_to_ids("<end_of_utterance>"))
        stop.discard(None)
        stop.discard(tokenizer.unk_token_id)
        self._stop_ids = sorted(int(i) for i in stop)
        self._text = self._conversation()

    def __repr__(self) -> str:
        return (
            f"SmolVlmNumberReader(base={self.base!r}, adapter={self.adapter!r}, "
            f"device={self.device!r})"
        )

    def _conversation(self) -> str:
        content: list[dict[str, str]] = []
        if self.preamble:
            content.append({"type": "text", "text": self.preamble})
        content += [{"type": "image"}, {"type": "text", "text": self.prompt}]
        messages = [{"role": "user", "content": content}]
        return self._processor.apply_chat_template(messages, add_generation_prompt=True)

    def read(self, crops: list[np.ndarray]) -> list[NumberRead]:
        """One read per crop, in order. A crop with no pixels reads as None, confidence 0."""
        reads = [NumberRead(text=None, confidence=0.0, raw="") for _ in crops]
        for rows in crop_batches(crops, self.batch_size):
            for row, read in zip(rows, self._read_batch([crops[i] for i in rows]), strict=True):
                reads[row] = read
        return reads

    def _read_batch(self, crops: list[np.ndarray]) -> list[NumberRead]:
        import torch
        from PIL import Image

        from hoopray.numbers import normalise_number

        images = [[Image.fromarray(np.ascontiguousarray(crop, dtype=np.uint8))] for crop in crops]
        kwargs = {}
        if self.image_splitting is not None:
            kwargs["do_image_splitting"] = self.image_splitting
        inputs = self._processor(
            text=[self._text] * len(crops),
            images=images,
            return_tensors="pt",
            padding=True,
            **kwargs,
        )
        inputs = {
            key: value.to(self.device, dtype=self._model.dtype)
            if value.is_floating_point()
            else value.to(self.device)
            for key, value in inputs.items()
        }
        tokenizer = self._processor.tokenizer
        with torch.inference_mode(), autocast(self.device):
            output = self._model.generate(
                **inputs,
                do_sample=False,
                max_new_tokens=self.max_new_tokens,
                return_dict_in_generate=True,
                output_logits=True,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=self._stop_ids,
            )
        prompt_length = inputs["input_ids"].shape[1]
        generated = output.sequences[:, prompt_length:]
        steps = generated.shape[1]
        logits = torch.stack(output.logits[:steps], dim=1).float()
        chosen = torch.softmax(logits, dim=-1).gather(-1, generated.unsqueeze(-1)).squeeze(-1)
        answers = answer_tokens(generated.cpu().numpy(), chosen.cpu().numpy(), self._stop_ids)
        reads = []
        for ids, confidence in answers:
            raw = tokenizer.decode(ids, skip_special_tokens=True).strip()
            reads.append(NumberRead(text=normalise_number(raw), confidence=confidence, raw=raw))
        return reads
