"""The ``teams`` config group and the error of the team stage."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class TeamModelError(ValueError):
    """A team model cannot be fitted, loaded or named from what was given."""


@dataclass(frozen=True)
class TeamsConfig:
    """The ``teams`` config group (``conf/teams/default.yaml``).

    Attributes:
        stride_seconds: seconds between two sampled frames of a clip.
        scale: central fraction of a player box that is cropped.
        max_crops: most crops kept per game (seeded reservoir sample beyond that).
        max_overlap: a sampled crop is skipped when other people's boxes (players and
            referees) cover more than this fraction of its central box
            (:func:`hoopray.teams.sample.overlap_fractions`); 1 keeps every crop.
        detect_batch: frames per detector call.
        embed_batch: crops per embedder call.
        seed: random_state of UMAP, KMeans and the reservoir sample.
        umap_components: UMAP output dimensions.
        umap_neighbors: UMAP ``n_neighbors``; fewer crops than this + 1 use PCA instead.
        umap_min_dist: UMAP ``min_dist``.
        kmeans_n_init: KMeans ``n_init``.
        knn_k: neighbours voting in :meth:`hoopray.teams.TeamModel.predict`.
        override: ``{cluster: team name}`` for both clusters, replacing automatic naming.
        refit_fraction: planning only (:mod:`hoopray.manifest`): the model is refitted
            when the game's clips differ from those it was fitted on by more than this share.
    """

    stride_seconds: float = 1.0
    scale: float = 0.4
    max_crops: int = 2000
    max_overlap: float = 0.3
    detect_batch: int = 8
    embed_batch: int = 64
    seed: int = 0
    umap_components: int = 3
    umap_neighbors: int = 15
    umap_min_dist: float = 0.1
    kmeans_n_init: int = 10
    knn_k: int = 15
    override: Mapping[Any, str] | None = None
    refit_fraction: float = 0.2

    def __post_init__(self) -> None:
        if not self.stride_seconds > 0:
            raise ValueError(f"stride_seconds must be > 0; got {self.stride_seconds}")
        if not 0 < self.scale <= 1:
            raise ValueError(f"scale must be in (0, 1]; got {self.scale}")
        if not 0 <= self.max_overlap <= 1:
            raise ValueError(f"max_overlap must be in [0, 1]; got {self.max_overlap}")
        for name in ("max_crops", "detect_batch", "embed_batch", "umap_components", "knn_k"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.umap_neighbors < 2:
            raise ValueError(f"umap_neighbors must be >= 2; got {self.umap_neighbors}")
        if not 0 <= self.refit_fraction <= 1:
            raise ValueError(f"refit_fraction must be in [0, 1]; got {self.refit_fraction}")
        if self.override is not None:
            object.__setattr__(self, "override", check_override_keys(self.override))


def check_override_keys(override: Mapping[Any, str]) -> dict[int, str]:
    """``teams.override`` as ``{0: name, 1: name}``.

    Raises:
        ValueError: keys other than 0 and 1, or the same team for both clusters.
    """
    try:
        mapping = {int(k): str(v) for k, v in dict(override).items()}
    except (TypeError, ValueError) as err:
        raise ValueError(f"teams.override keys must be 0 and 1; got {override!r}") from err
    if set(mapping) != {0, 1} or mapping[0] == mapping[1]:
        raise ValueError(
            f"teams.override must name both clusters 0 and 1 with two teams; got {override!r}"
        )
    return mapping
