"""What a fitted team model looks like: the crops table, a scatter plot, a contact sheet.

Written next to the model under ``<out>/<game_id>/teams/``: ``crops.parquet``
(:data:`hoopray.types.TEAM_CROPS`), ``scatter.png`` (the sample's UMAP or PCA coordinates
by cluster) and ``contact_sheet.png`` (sampled crops of each cluster). Matplotlib and
OpenCV are imported only when a plot is drawn.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hoopray import store, types
from hoopray.teams.files import CROPS_FILE, MODEL_FILE, SCATTER_FILE, SHEET_FILE
from hoopray.teams.model import TeamModel
from hoopray.teams.naming import TeamNaming, save_naming
from hoopray.teams.sample import CropSample


def crops_table(model: TeamModel, sample: CropSample) -> pa.Table:
    """The sampled crops with their cluster and projection (:data:`types.TEAM_CROPS`)."""
    if len(sample) != len(model.labels):
        raise ValueError(f"{len(sample)} crops but the model has {len(model.labels)} labels")
    boxes = sample.boxes.reshape(-1, 4)
    table = pa.table(
        {
            "clip_id": pa.array(sample.clip_ids, pa.string()),
            "frame": pa.array(sample.frames, pa.int32()),
            **{
                name: pa.array(boxes[:, i], pa.float32())
                for i, name in enumerate(("x1", "y1", "x2", "y2"))
            },
            "cluster": pa.array(model.labels, pa.int8()),
            **{f"u{i}": pa.array(model.projection[:, i], pa.float32()) for i in range(3)},
        }
    )
    return types.check_schema("teams/crops", table)


def write_diagnostics(
    directory: str | os.PathLike[str],
    model: TeamModel,
    sample: CropSample,
    naming: TeamNaming | None = None,
    per_team: int = 24,
) -> dict[str, str]:
    """Write ``crops.parquet``, ``scatter.png`` and ``contact_sheet.png`` into ``directory``
    (any store location), each as one whole object.

    Returns:
        ``{"crops": location, "scatter": location, "contact_sheet": location}``.
    """
    target = store.normalise(directory)
    table = crops_table(model, sample)
    crops = store.join(target, CROPS_FILE)
    with store.atomic_path(crops) as tmp:
        pq.write_table(table, tmp, compression="zstd")
    titles = _cluster_titles(model, naming)
    return {
        "crops": crops,
        "scatter": _save_figure(store.join(target, SCATTER_FILE), _scatter(model, titles)),
        "contact_sheet": _save_figure(
            store.join(target, SHEET_FILE), _contact_sheet(model, sample, titles, per_team)
        ),
    }


def save_game(
    directory: str | os.PathLike[str],
    model: TeamModel,
    sample: CropSample,
    naming: TeamNaming | None = None,
) -> dict[str, str]:
    """Save a game's model, naming (when given) and diagnostics into ``directory``.

    Returns:
        The location of each file: ``model``, ``crops``, ``scatter``, ``contact_sheet``
        and, with a naming, ``naming``.
    """
    target = model.save(directory)
    paths = write_diagnostics(target, model, sample, naming)
    paths["model"] = store.join(target, MODEL_FILE)
    if naming is not None:
        paths["naming"] = save_naming(naming, target)
    return paths


def _cluster_titles(model: TeamModel, naming: TeamNaming | None) -> list[str]:
    sizes = np.bincount(model.labels, minlength=2)
    titles = []
    for cluster in (0, 1):
        name = naming.cluster_to_team.get(cluster) if naming else None
        label = f"cluster {cluster}: {name}" if name else f"cluster {cluster}"
        titles.append(f"{label} ({sizes[cluster]} crops)")
    return titles


def _save_figure(location: str, figure: Any) -> str:
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    with store.atomic_path(location) as tmp, open(tmp, "wb") as handle:
        figure.savefig(handle, format="png", dpi=100)
    return location


def _scatter(model: TeamModel, titles: list[str]) -> Any:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 5))
    axes = figure.add_subplot()
    for cluster, colour in zip((0, 1), ("tab:blue", "tab:orange"), strict=True):
        points = model.projection[model.labels == cluster]
        axes.scatter(points[:, 0], points[:, 1], s=10, c=colour, label=titles[cluster])
    method = model.meta.get("projection", "umap").upper()
    axes.set_xlabel(f"{method} 1")
    axes.set_ylabel(f"{method} 2")
    axes.set_title("player crops by team cluster")
    axes.legend(loc="best", fontsize="small")
    figure.tight_layout()
    return figure


def _contact_sheet(
    model: TeamModel, sample: CropSample, titles: list[str], per_team: int, columns: int = 12
) -> Any:
    import cv2
    from matplotlib.figure import Figure

    tile_w, tile_h = 48, 64
    rows = max(1, math.ceil(min(per_team, len(sample)) / columns))
    figure = Figure(figsize=(columns * 0.6, 2 * (rows * 0.8 + 0.4)))
    for cluster in (0, 1):
        members = np.flatnonzero(model.labels == cluster)
        chosen = (
            members[np.linspace(0, len(members) - 1, min(per_team, len(members))).astype(int)]
            if len(members)
            else members
        )
        sheet = np.full((rows * tile_h, columns * tile_w, 3), 255, dtype=np.uint8)
        for slot, index in enumerate(chosen[: rows * columns]):
            tile = cv2.resize(sample.crops[index], (tile_w, tile_h), interpolation=cv2.INTER_AREA)
            r, c = divmod(slot, columns)
            sheet[r * tile_h : (r + 1) * tile_h, c * tile_w : (c + 1) * tile_w] = tile
        axes = figure.add_subplot(2, 1, cluster + 1)
        axes.imshow(sheet)
        axes.set_title(titles[cluster], fontsize="small")
        axes.axis("off")
    figure.tight_layout()
    return figure
