"""Where a game's team files live, and ``.npz`` objects read and written without pickle."""

from __future__ import annotations

import io
import os
from collections.abc import Iterable, Mapping

import numpy as np

from hoopray import store

FORMAT = "hoopray.teams/1"
MODEL_FILE = "model.npz"
META_FILE = "model.json"
NAMING_FILE = "naming.json"
SAMPLE_FILE = "sample.npz"
CROPS_FILE = "crops.parquet"
SCATTER_FILE = "scatter.png"
SHEET_FILE = "contact_sheet.png"


def teams_dir(out_root: str | os.PathLike[str], game_id: str) -> str:
    """``<out>/<game_id>/teams``, the home of a game's team model and diagnostics.

    Raises:
        ValueError: an invalid or reserved ``game_id``.
    """
    return store.join(store.game_dir(out_root, game_id), "teams")


def model_present(out_root: str | os.PathLike[str], game_id: str) -> bool:
    """Whether the game has a saved team model (``model.npz``; one metadata request)."""
    return store.is_file(store.join(teams_dir(out_root, game_id), MODEL_FILE))


def write_npz(location: str, arrays: Mapping[str, np.ndarray], compressed: bool = False) -> None:
    """``np.savez`` (no pickle) into a whole object at ``location``."""
    save = np.savez_compressed if compressed else np.savez
    with store.atomic_path(location) as tmp, open(tmp, "wb") as handle:
        save(handle, allow_pickle=False, **arrays)


def read_npz(location: str, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` object (all, or those of ``names`` present); no pickle."""
    with np.load(io.BytesIO(store.read_bytes(location)), allow_pickle=False) as data:
        wanted = data.files if names is None else [n for n in names if n in data.files]
        return {name: data[name] for name in wanted}
