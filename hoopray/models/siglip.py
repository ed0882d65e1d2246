"""SigLIP image embeddings of player crops, for splitting players into teams.

Pooling (``pooling=``), then L2 normalisation to unit length:

- ``"mean"`` (default): the mean of the vision tower's ``last_hidden_state`` over the
  patch tokens, as the notebook's ``TeamClassifier`` embeds crops. It is the default
  because hoopray's team split (:mod:`hoopray.teams`: UMAP to 3-D, then KMeans(2)) follows
  that classifier, so with this pooling the team stage sees what the notebook's did; an
  average of patch features also keeps the colour of every patch of the jersey.
- ``"pooler"``: the tower's ``pooler_output``, SigLIP's attention-pooling head, i.e. the
  image embedding SigLIP is trained to align with text. It describes what the image shows
  (a basketball player) more than how it looks, so it may separate kits less well.
"""

from __future__ import annotations

import numpy as np

from hoopray.models.base import crop_batches
from hoopray.models.device import autocast, resolve_device
from hoopray.models.loading import load_pretrained

DEFAULT_SIGLIP = "google/siglip-base-patch16-224"
POOLINGS = ("mean", "pooler")


class SiglipEmbedder:
    """Embeds RGB uint8 crops with a SigLIP vision tower.

    Args:
        model: a Hugging Face id (from the local cache when offline) or a local directory
            saved with ``save_pretrained`` (a full SigLIP model or its vision tower, plus
            the image processor).
        device: "auto", "cpu", "cuda", ...
        batch_size: crops per forward pass.
        pooling: "mean" (of ``last_hidden_state``, the notebook's) or "pooler" (SigLIP's
            attention-pooling head); see the module docstring.

    Raises:
        ValueError: a bad ``batch_size`` or ``pooling``.
        WeightsNotFoundError: the weights are neither a local directory nor cached.
    """

    def __init__(
        self,
        model: str = DEFAULT_SIGLIP,
        device: str = "auto",
        batch_size: int = 64,
        pooling: str = "mean",
    ) -> None:
        import torch
        from transformers import AutoImageProcessor, SiglipVisionModel

        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.pooling = pooling
        self.model_name = model
        self.device = resolve_device(device)
        self.batch_size = batch_size
        where = {"what": "SigLIP embedder", "override": "models.embedder.model"}
        self._processor = load_pretrained(AutoImageProcessor.from_pretrained, model, **where)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        network = load_pretrained(SiglipVisionModel.from_pretrained, model, dtype=dtype, **where)
        self._model = network.to(self.device).eval()
        if pooling == "pooler" and not getattr(self._model.config, "vision_use_head", True):
            raise ValueError(f"{model!r} has no attention-pooling head; use pooling='mean'")
        self.dim = int(self._model.config.hidden_size)

    def __repr__(self) -> str:
        return (
            f"SiglipEmbedder(model={self.model_name!r}, device={self.device!r}, "
            f"pooling={self.pooling!r})"
        )

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        """Unit-length embeddings, one row per crop, in order.

        Args:
            crops: RGB uint8 arrays of shape (H, W, 3). A crop with no pixels (H or W
                is 0) gets a row of zeros, so rows stay aligned with the input; callers
                that fit models on embeddings should drop zero-norm rows.

        Returns:
            (N, D) float32; (0, D) for no crops.
        """
        import torch
        from PIL import Image

        out = np.zeros((len(crops), self.dim), dtype=np.float32)
        for rows in crop_batches(crops, self.batch_size):
            images = [Image.fromarray(np.ascontiguousarray(crops[i], dtype=np.uint8)) for i in rows]
            pixels = self._processor(images=images, return_tensors="pt")["pixel_values"]
            pixels = pixels.to(self.device, dtype=self._model.dtype)
            with torch.inference_mode(), autocast(self.device):
                output = self._model(pixel_values=pixels)
            if self.pooling == "mean":
                pooled = output.last_hidden_state.float().mean(dim=1)
            else:
                pooled = output.pooler_output.float()
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            out[rows] = pooled.cpu().numpy()
        return out
