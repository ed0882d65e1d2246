"""Download the weights that the composed config names, on a machine with network access.

    make weights                                  # the models of the default config
    make weights ARGS="models/reader=easyocr"     # the same overrides as `make run`
    python jobs/weights.py models/detector=roboflow models/reader=roboflow

- Hugging Face models (``models.*`` values that are hub ids) go into the Hugging Face
  cache (``HF_HOME``; ``HF_TOKEN`` for gated ones), with a progress bar per file.
- Roboflow models are fetched through the ``inference`` package (``pip install -e
  '.[roboflow]'``) into its cache, with the key read from the environment variable the
  adapter names (``ROBOFLOW_API_KEY``), never from the config.
- EasyOCR's recogniser (``models/reader=easyocr``) goes into EasyOCR's cache, unless the
  ``ocr`` extra's offline copy or ``model_dir`` already has it.
- Local files (the fine-tuned RF-DETR checkpoint, the LoRA adapter) cannot be downloaded:
  it says where they must go.

Prints one line per weight and exits 0 when every one is there afterwards, 1 otherwise
(2: a secret was put in the config; keys come from the environment only).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

EXIT = {"code": 0}
# Adapter keys whose value names weights: a local path or a Hugging Face id.
WEIGHT_KEYS = ("model", "base", "adapter", "checkpoint", "weights", "path", "repo_id")
README = "see the README, 'Getting the real weights'"


@dataclass(frozen=True)
class Weight:
    """One weight the config names.

    Attributes:
        kind: ``hf`` (a hub id), ``roboflow`` (a hosted model id), ``easyocr`` (EasyOCR's
            recogniser), ``local`` (a path) or ``unset`` (a mandatory value left ``???``).
        key: the dotted config key (``models.tracker.model``).
        name: the hub id, model id or path.
        adapter: the adapter's config.
    """

    kind: str
    key: str
    name: str
    adapter: Mapping[str, Any]


def _leaves(node: Any, prefix: str) -> Iterator[tuple[str, str, Any]]:
    if isinstance(node, Mapping):
        for key, value in node.items():
            if key != "_target_":
                yield from _leaves(value, f"{prefix}.{key}")
    elif not isinstance(node, list):
        yield prefix, prefix.rsplit(".", 1)[-1], node


def weights_of(cfg: Any) -> list[Weight]:
    """Every weight named under ``cfg.models``, in role order."""
    from hoopray.config import MODEL_ROLES, to_plain
    from hoopray.models.loading import looks_like_path

    models = to_plain(cfg["models"]) or {}
    found = []
    for role in MODEL_ROLES:
        adapter = models.get(role)
        if not isinstance(adapter, Mapping):
            continue
        prefix = f"models.{role}"
        target = str(adapter.get("_target_", "")).lower()
        if "roboflow" in target:
            found.append(
                Weight("roboflow", f"{prefix}.model_id", str(adapter["model_id"]), adapter)
            )
            continue
        if "easyocr" in target:
            found.append(Weight("easyocr", prefix, str(adapter.get("recognizer")), adapter))
            continue
        for dotted, key, value in _leaves(adapter, prefix):
            if value == "???":
                found.append(Weight("unset", dotted, "???", adapter))
            elif isinstance(value, str) and value and (key in WEIGHT_KEYS or key.endswith("_path")):
                kind = "local" if looks_like_path(value) else "hf"
                found.append(Weight(kind, dotted, value, adapter))
    return found


def _hub_offline() -> bool:
    from hoopray.models.loading import hub_offline

    return hub_offline()


def fetch_hf(weight: Weight) -> str | None:
    """Download a hub model into the cache with progress bars; the problem, or None."""
    if _hub_offline():
        return (
            f"{weight.key}={weight.name}: HF_HUB_OFFLINE (or TRANSFORMERS_OFFLINE) is set; "
            "unset it to download"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.utils import enable_progress_bars
    from tqdm.auto import tqdm

    enable_progress_bars()
    print(f"{weight.key}: downloading {weight.name} from Hugging Face into the cache", flush=True)
    try:
        where = snapshot_download(weight.name, tqdm_class=tqdm)
    except Exception as err:  # a network, auth or missing-repo error: reported, not raised
        return f"{weight.key}={weight.name}: download failed ({type(err).__name__}: {err})"
    print(f"{weight.key}: {weight.name} is in {where}")
    return None


def fetch_roboflow(weight: Weight) -> str | None:
    """Fetch a hosted model through ``inference`` with the key from the environment."""
    from hoopray.config import redact

    env = str(weight.adapter.get("api_key_env") or "ROBOFLOW_API_KEY")
    key = os.environ.get(env, "").strip()
    if not key:
        return (
            f"{weight.key}={weight.name}: set {env} in the environment (your Roboflow API "
            "key; never in the config), then run `make weights` again"
        )
    try:
        import inference
    except ImportError:
        return (
            f"{weight.key}={weight.name}: the `inference` package is not installed: "
            "pip install -e '.[roboflow]', then run `make weights` again (or let the job "
            "fetch the model on its first run: it uses the same key)"
        )
    print(f"{weight.key}: fetching {weight.name} from Roboflow", flush=True)
    try:
        inference.get_model(model_id=weight.name, api_key=key)
    except Exception as err:
        return f"{weight.key}={weight.name}: Roboflow fetch failed ({redact(str(err))})"
    print(f"{weight.key}: {weight.name} is in the inference cache")
    return None


def fetch_easyocr(weight: Weight) -> str | None:
    """EasyOCR's recogniser into EasyOCR's cache (or ``model_dir``), unless found."""
    from hoopray.models.easyocr_reader import EasyOcrNumberReader, find_weights

    model_dir = weight.adapter.get("model_dir")
    found = find_weights(model_dir, weight.name)
    if found is None:
        print(f"{weight.key}: downloading EasyOCR's {weight.name}", flush=True)
        try:
            found = EasyOcrNumberReader(
                model_dir=model_dir, recognizer=weight.name, download=True, device="cpu"
            ).weights
        except Exception as err:
            return f"{weight.key}: EasyOCR {weight.name} not fetched ({err})"
    print(f"{weight.key}: EasyOCR {weight.name} is at {found}")
    return None


def check_local(weight: Weight, base_dir: Path) -> str | None:
    path = Path(os.path.expanduser(weight.name))
    if not path.is_absolute():
        path = base_dir / path
    if path.exists():
        print(f"{weight.key}: {path} is there")
        return None
    return (
        f"{weight.key}={weight.name} does not exist and cannot be downloaded: put the file "
        f"there or point {weight.key} at it ({README})"
    )


def fetch_all(cfg: Any, base_dir: Path | None = None) -> list[str]:
    """Fetch every weight of ``cfg``; the problems left, one line each."""
    problems = []
    for weight in weights_of(cfg):
        if weight.kind == "hf":
            problem = fetch_hf(weight)
        elif weight.kind == "roboflow":
            problem = fetch_roboflow(weight)
        elif weight.kind == "easyocr":
            problem = fetch_easyocr(weight)
        elif weight.kind == "local":
            problem = check_local(weight, base_dir or Path.cwd())
        else:
            problem = f"{weight.key} must be set ({README})"
        if problem:
            problems.append(problem)
    return problems


def run(cfg: Any) -> int:
    """Fetch, then print what is still missing; the exit code."""
    from hoopray.config import redact

    problems = fetch_all(cfg)
    if problems:
        print("\nstill missing:\n  - " + "\n  - ".join(redact(p) for p in problems))
        return 1
    print("\nall weights are there")
    return 0


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> int:
    from _entry import hydra_dir

    from hoopray.config import SecretInConfigError, check_no_secrets, scrub_hydra_dir

    try:
        check_no_secrets(cfg)
    except SecretInConfigError as err:
        where = hydra_dir()
        if where is not None:
            scrub_hydra_dir(where)
        print(f"error: {err}")
        EXIT["code"] = 2
        return EXIT["code"]
    EXIT["code"] = run(cfg)
    return EXIT["code"]


if __name__ == "__main__":
    main()
    sys.exit(EXIT["code"])
