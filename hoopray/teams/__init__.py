"""Team model per game: sampled once from all clips, fitted, named automatically.

Pass 1 of the pipeline, callable without Ray, in four small modules:

- :mod:`hoopray.teams.sample`: the game's crop sample (:func:`sample_game`: sampled
  frames, player detections, central crops, embeddings) and its storage;
- :mod:`hoopray.teams.model`: :func:`fit_team_model`, the one way to fit a
  :class:`TeamModel`, and its kNN prediction;
- :mod:`hoopray.teams.naming`: which roster team each cluster is, from colour and number
  evidence;
- :mod:`hoopray.teams.diagnostics`: the crops table and plots.

The votes of a track's crops are combined by :func:`hoopray.voting.vote_team` and
:func:`hoopray.voting.team_loglik`, next to the other voting code.

Storage, under ``<output>/<game_id>/teams/`` (:func:`teams_dir`; any store location: a
local path, ``s3://``, ``gs://`` or another fsspec URI, see :mod:`hoopray.store`),
contains no pickle at all: ``model.npz`` and ``model.json``, ``naming.json``, the game's
pass-1 crop sample ``sample.npz``, and the diagnostics ``crops.parquet``
(:data:`hoopray.types.TEAM_CROPS`), ``scatter.png`` and ``contact_sheet.png``.

Importing this package pulls in neither OpenCV nor PyAV (nor matplotlib, scikit-learn or
UMAP): they are imported where frames are decoded, colours converted or plots drawn, so
:mod:`hoopray.resolve` stays light.

    sample, embeddings = sample_game(clips, models, cfg)
    model = fit_team_model(embeddings, cfg, sample=sample)
    naming = name_clusters(model, roster)
"""

from hoopray.teams.config import TeamModelError, TeamsConfig
from hoopray.teams.diagnostics import crops_table, save_game, write_diagnostics
from hoopray.teams.files import (
    CROPS_FILE,
    FORMAT,
    META_FILE,
    MODEL_FILE,
    NAMING_FILE,
    SAMPLE_FILE,
    SCATTER_FILE,
    SHEET_FILE,
    model_present,
    teams_dir,
)
from hoopray.teams.model import TeamModel, fit_team_model
from hoopray.teams.naming import (
    BLANK,
    TeamNaming,
    cluster_colours,
    confirmed_numbers,
    crop_colour,
    hex_to_lab,
    load_naming,
    name_clusters,
    refine_naming,
    save_naming,
)
from hoopray.teams.sample import (
    CropSample,
    central_crops,
    collect_game_crops,
    embed_crops,
    load_sample,
    sample_game,
    sample_indices,
    sampled_frames,
    save_sample,
)

__all__ = [
    "BLANK",
    "CROPS_FILE",
    "FORMAT",
    "META_FILE",
    "MODEL_FILE",
    "NAMING_FILE",
    "SAMPLE_FILE",
    "SCATTER_FILE",
    "SHEET_FILE",
    "CropSample",
    "TeamModel",
    "TeamModelError",
    "TeamNaming",
    "TeamsConfig",
    "central_crops",
    "cluster_colours",
    "collect_game_crops",
    "confirmed_numbers",
    "crop_colour",
    "crops_table",
    "embed_crops",
    "fit_team_model",
    "hex_to_lab",
    "load_naming",
    "load_sample",
    "model_present",
    "name_clusters",
    "refine_naming",
    "sample_game",
    "sample_indices",
    "sampled_frames",
    "save_game",
    "save_naming",
    "save_sample",
    "teams_dir",
    "write_diagnostics",
]
