"""Weights loading shared by the adapters: local paths, the Hugging Face cache, offline mode.

Every failure to find weights becomes :class:`~hoopray.models.base.WeightsNotFoundError`
with a message that names what was asked for and how to provide it. Offline mode
(``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` set) loads with ``local_files_only=True``
so a missing model fails at once instead of trying the network.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TypeVar

from hoopray.models.base import WeightsNotFoundError

T = TypeVar("T")

_TRUE = {"1", "true", "yes", "on"}
_WEIGHT_SUFFIXES = (".pth", ".pt", ".ckpt", ".bin", ".safetensors", ".onnx")


def hub_offline() -> bool:
    """True when the Hugging Face hub must not be contacted."""
    return any(
        os.environ.get(var, "").strip().lower() in _TRUE
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def looks_like_path(name: str) -> bool:
    """Whether ``name`` is meant as a filesystem path rather than a hub id.

    An existing file or directory is a path. Otherwise a name that starts with ``/``,
    ``.``, or ``~``, has more than one ``/``, or ends with a weights suffix is a path;
    anything else ("org/name", "name") is a hub id.
    """
    if Path(name).expanduser().exists():
        return True
    return (
        name.startswith(("/", ".", "~"))
        or name.count("/") > 1
        or "\\" in name
        or name.lower().endswith(_WEIGHT_SUFFIXES)
    )


def _how_to_provide(name: str, override: str) -> str:
    return (
        f"Provide it by either (a) downloading it into the Hugging Face cache on a machine "
        f"with network access (`hf download {name}`, or `huggingface-cli download {name}`; "
        f"HF_HOME selects the cache) or (b) pointing the config at a local directory "
        f"saved with save_pretrained: `{override}=/path/to/dir`."
    )


def missing_path_error(
    path: str | os.PathLike[str], what: str, override: str
) -> WeightsNotFoundError:
    return WeightsNotFoundError(
        f"{what}: {os.fspath(path)!r} does not exist. Point the config at the weights with "
        f"`{override}=/path/to/weights`."
    )


def require_path(
    path: str | os.PathLike[str], what: str, override: str, *, directory: bool
) -> Path:
    """``path`` resolved, or WeightsNotFoundError when it is not an existing file/directory."""
    resolved = Path(path).expanduser().resolve()
    exists = resolved.is_dir() if directory else resolved.is_file()
    if not exists:
        raise missing_path_error(path, what, override)
    return resolved


def _hub_errors() -> tuple[type[BaseException], ...]:
    from huggingface_hub.errors import EntryNotFoundError, HFValidationError

    errors: list[type[BaseException]] = [OSError, EntryNotFoundError, HFValidationError]
    try:
        import httpx

        errors.append(httpx.TransportError)
    except ImportError:  # pragma: no cover - httpx ships with huggingface_hub
        pass
    return tuple(errors)


def load_pretrained(
    loader: Callable[..., T], name: str, *, what: str, override: str, **kwargs: object
) -> T:
    """Call ``loader(name, **kwargs)`` (a ``from_pretrained``), failing fast and clearly.

    Args:
        loader: e.g. ``SiglipVisionModel.from_pretrained``.
        name: a hub id or a local directory.
        what: what is being loaded, for the message ("SigLIP embedder").
        override: the Hydra key that sets ``name`` ("models.embedder.model").
        **kwargs: passed to the loader.

    Raises:
        WeightsNotFoundError: ``name`` is a missing path, or a hub id that is not cached
            while offline (or not reachable).
    """
    if looks_like_path(name):
        local = require_path(name, what, override, directory=True)
        return loader(str(local), local_files_only=True, **kwargs)
    local_only = hub_offline()
    try:
        return loader(name, local_files_only=local_only, **kwargs)
    except _hub_errors() as exc:
        where = "the Hugging Face cache (offline mode)" if local_only else "the Hugging Face hub"
        raise WeightsNotFoundError(
            f"{what}: {name!r} is not a local directory and could not be loaded from "
            f"{where}: {type(exc).__name__}. {_how_to_provide(name, override)}"
        ) from exc


def import_optional(module: str, extra: str, purpose: str) -> ModuleType:
    """Import an optional dependency or explain which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the optional package {module!r}, which is not installed: "
            f"pip install 'hoopray[{extra}]'"
        ) from exc


def require_env_secret(var: str, what: str) -> str:
    """The value of the environment variable ``var``; never logged or stored by callers."""
    value = os.environ.get(var, "").strip()
    if not value:
        raise WeightsNotFoundError(
            f"{what}: the environment variable {var} is not set. Export your Roboflow API key "
            f"before running (`export {var}=...`); it is read from the environment only and "
            "never written to config or outputs."
        )
    return value
