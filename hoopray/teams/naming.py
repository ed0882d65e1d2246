"""Which roster team each cluster is: colour and number evidence, and its storage.

:func:`name_clusters` maps the two clusters of a :class:`hoopray.teams.TeamModel` to the
roster's two teams without a manual choice, from the clusters' dominant jersey colour
against the roster colours and, once numbers are confirmed, from which roster the confirmed
numbers of each cluster fit (:func:`refine_naming`, :func:`confirmed_numbers`). A config
override (``teams.override: {0: "Team", 1: "Other"}``) remains for a wrong call. The
naming is stored as ``naming.json`` (:func:`save_naming`, :func:`load_naming`).

OpenCV (the Lab conversion) is imported only when colours are computed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hoopray import store
from hoopray.teams.config import check_override_keys
from hoopray.teams.files import NAMING_FILE

if TYPE_CHECKING:
    from hoopray.roster import Roster
    from hoopray.teams.model import TeamModel

BLANK = (128, 128, 128)
"""RGB of the pixels of a team crop that are not the track's own (observe's masked crops):
mid-grey, which SigLIP's normalisation maps to about 0; colour summaries skip them."""


@dataclass
class TeamNaming:
    """Which roster team each cluster is.

    Attributes:
        cluster_to_team: ``{0: team name, 1: team name}``.
        confidence: in [0, 1]; 1.0 for an override.
        evidence: what the decision was made from (JSON-serialisable).
    """

    cluster_to_team: dict[int, str]
    confidence: float
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "cluster_to_team": {str(k): v for k, v in sorted(self.cluster_to_team.items())},
            "confidence": float(self.confidence),
            "evidence": self.evidence,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TeamNaming:
        return cls(
            cluster_to_team={int(k): str(v) for k, v in data["cluster_to_team"].items()},
            confidence=float(data["confidence"]),
            evidence=dict(data.get("evidence") or {}),
        )


def hex_to_lab(colour: str) -> np.ndarray:
    """CIE Lab (L in 0..100) of a ``"#rrggbb"`` colour, float32 (3,)."""
    text = colour.strip().lstrip("#")
    if len(text) != 6:
        raise ValueError(f"colour must be '#rrggbb'; got {colour!r}")
    rgb = np.array([[[int(text[i : i + 2], 16) for i in (0, 2, 4)]]], dtype=np.uint8)
    return _rgb_to_lab(rgb)[0, 0]


def _rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def crop_colour(image: np.ndarray) -> np.ndarray | None:
    """Per-channel median CIE Lab colour of a crop's pixels; None for an empty crop.

    The crop is the central part of a player box, mostly jersey; the median ignores the
    minority of skin, number and background pixels. Pixels of exactly :data:`BLANK` (blanked
    by a mask) are left out; a crop of blank pixels only gives None.
    """
    if image.size == 0:
        return None
    pixels = np.asarray(image).reshape(-1, 3)
    pixels = pixels[(pixels != np.asarray(BLANK, dtype=pixels.dtype)).any(axis=1)]
    if len(pixels) == 0:
        return None
    return np.median(_rgb_to_lab(pixels[None]).reshape(-1, 3), axis=0).astype(np.float32)


def cluster_colours(
    crops: Sequence[np.ndarray], clusters: Sequence[int] | np.ndarray
) -> np.ndarray:
    """Dominant Lab colour of each cluster (median of its crops' colours), float32 (2, 3).

    A cluster without a usable crop gets a row of NaN.
    """
    labels = np.asarray(clusters).reshape(-1)
    if len(crops) != labels.size:
        raise ValueError(f"{len(crops)} crops but {labels.size} clusters")
    colours = [crop_colour(image) for image in crops]
    out = np.full((2, 3), np.nan, dtype=np.float32)
    for cluster in (0, 1):
        rows = [
            c for c, lab in zip(colours, labels, strict=True) if lab == cluster and c is not None
        ]
        if rows:
            out[cluster] = np.median(np.stack(rows), axis=0)
    return out


def name_clusters(
    model: TeamModel | None,
    roster: Roster,
    crops: Sequence[np.ndarray] | None = None,
    clusters: Sequence[int] | np.ndarray | None = None,
    confirmed: Iterable[tuple[int, str]] | None = None,
    *,
    override: Mapping[Any, str] | None = None,
    number_weight: float = 2.0,
) -> TeamNaming:
    """Map clusters 0/1 to the roster's two teams, with a confidence and the evidence.

    Two kinds of evidence, each a signed margin in [-1, 1] (positive: cluster 0 is the
    roster's first team, "identity"; negative: "swapped"):

    - colour: each cluster's dominant Lab colour (from ``crops``/``clusters``, else the
      model's ``cluster_lab``) against the roster colours; with ``d`` the CIE76 distance,
      ``cost_identity = d(c0, A) + d(c1, B)``, ``cost_swapped = d(c0, B) + d(c1, A)`` and
      ``margin = (cost_swapped - cost_identity) / (cost_swapped + cost_identity)``;
    - numbers (``confirmed``: ``(cluster, number)`` of confirmed tracks): a number found in
      exactly one roster is a vote for the mapping that puts its cluster on that team; a
      number in both rosters or in neither is no evidence; ``margin = (identity -
      swapped) / (identity + swapped + 1)``, so one number is weaker than several.

    ``score = colour margin + number_weight * number margin``; the mapping is identity when
    ``score >= 0``, and ``confidence = |score| / (sum of the weights of the evidence
    present)``. With no evidence at all the identity mapping is returned with confidence
    0. ``override`` (``{0: name, 1: name}``, both roster teams) wins with confidence 1;
    the computed evidence is still recorded.

    Raises:
        ValueError: an override that does not name the roster's two teams.
    """
    team_a, team_b = roster.teams
    names = (team_a.name, team_b.name)
    evidence: dict[str, Any] = {"teams": list(names)}
    score = 0.0
    weight = 0.0

    lab = None
    if crops is not None and clusters is not None:
        lab = cluster_colours(crops, clusters)
    elif model is not None and model.cluster_lab is not None:
        lab = np.asarray(model.cluster_lab, dtype=np.float32)
    if lab is not None and np.isfinite(lab).all():
        colour = _colour_evidence(lab, (team_a.colour, team_b.colour))
        evidence["colour"] = colour
        score += colour["margin"]
        weight += 1.0
    else:
        evidence["colour"] = None

    numbers = _number_evidence(confirmed or (), team_a.players, team_b.players)
    evidence["numbers"] = numbers
    if numbers["identity_votes"] + numbers["swapped_votes"] > 0:
        score += number_weight * numbers["margin"]
        weight += number_weight

    identity = score >= 0
    mapping = {0: names[0], 1: names[1]} if identity else {0: names[1], 1: names[0]}
    confidence = min(1.0, abs(score) / weight) if weight else 0.0
    evidence["score"] = score
    evidence["mapping"] = "identity" if identity else "swapped"
    if override is not None:
        forced = check_override_keys(override)
        if set(forced.values()) != set(names):
            raise ValueError(f"teams.override must name the roster teams {names}; got {forced}")
        evidence["override"] = {str(k): v for k, v in forced.items()}
        evidence["automatic"] = {str(k): v for k, v in mapping.items()}
        evidence["mapping"] = "override"
        return TeamNaming(forced, 1.0, evidence)
    return TeamNaming(mapping, confidence, evidence)


def _colour_evidence(lab: np.ndarray, colours: tuple[str, str]) -> dict[str, Any]:
    team_lab = np.stack([hex_to_lab(c) for c in colours])
    distance = np.linalg.norm(lab[:, None, :] - team_lab[None, :, :], axis=2)
    identity = float(distance[0, 0] + distance[1, 1])
    swapped = float(distance[0, 1] + distance[1, 0])
    total = identity + swapped
    return {
        "cluster_lab": np.round(lab, 2).tolist(),
        "team_lab": np.round(team_lab, 2).tolist(),
        "distance": np.round(distance, 2).tolist(),
        "cost_identity": identity,
        "cost_swapped": swapped,
        "margin": (swapped - identity) / total if total > 0 else 0.0,
    }


def _number_evidence(
    confirmed: Iterable[tuple[int, str]], players_a: Mapping[str, str], players_b: Mapping[str, str]
) -> dict[str, Any]:
    counts = {c: {"a_only": 0, "b_only": 0, "both": 0, "neither": 0} for c in (0, 1)}
    for cluster, number in confirmed:
        if int(cluster) not in counts:
            raise ValueError(f"confirmed cluster must be 0 or 1; got {cluster}")
        in_a, in_b = str(number) in players_a, str(number) in players_b
        key = "both" if in_a and in_b else "a_only" if in_a else "b_only" if in_b else "neither"
        counts[int(cluster)][key] += 1
    identity = counts[0]["a_only"] + counts[1]["b_only"]
    swapped = counts[0]["b_only"] + counts[1]["a_only"]
    return {
        "counts": {str(c): v for c, v in counts.items()},
        "identity_votes": identity,
        "swapped_votes": swapped,
        "margin": (identity - swapped) / (identity + swapped + 1),
    }


def save_naming(naming: TeamNaming, directory: str | os.PathLike[str]) -> str:
    """Write ``naming.json`` into ``directory`` (any store location) as one whole object.

    Returns:
        The location of the file.
    """
    text = json.dumps(naming.to_dict(), indent=2, sort_keys=True)
    return store.write_text(store.join(directory, NAMING_FILE), text)


def load_naming(directory: str | os.PathLike[str]) -> TeamNaming | None:
    """The naming saved by :func:`save_naming`, or None when there is none."""
    location = store.join(directory, NAMING_FILE)
    if not store.is_file(location):
        return None
    return TeamNaming.from_dict(json.loads(store.read_text(location)))


def refine_naming(
    model: TeamModel | None,
    roster: Roster | None,
    naming: TeamNaming | None,
    confirmed: Sequence[tuple[int, str]],
    override: Mapping[Any, str] | None = None,
) -> tuple[TeamNaming | None, bool]:
    """The team naming refined with a game's confirmed ``(cluster, number)`` pairs.

    The model's cluster colours and the confirmed numbers are weighed together by
    :func:`name_clusters`; the result's ``evidence["source"]`` is ``"colours+numbers"``.

    Returns:
        ``(naming, changed)``: the refined naming and whether its ``cluster_to_team``
        differs from ``naming``'s (True when ``naming`` is None). ``(naming, False)``,
        unchanged, when there is no roster, no model or no confirmed pair.
    """
    confirmed = list(confirmed)
    if roster is None or model is None or not confirmed:
        return naming, False
    refined = name_clusters(model, roster, confirmed=confirmed, override=override)
    refined.evidence["source"] = "colours+numbers"
    changed = naming is None or refined.cluster_to_team != naming.cluster_to_team
    return refined, changed


def confirmed_numbers(tracks_tables: Iterable[Any]) -> list[tuple[int, str]]:
    """``(team cluster, number)`` of every confirmed track with a cluster and a number.

    Args:
        tracks_tables: ``identities/tracks`` tables (or objects with a ``tracks`` table,
            such as :class:`hoopray.types.Identities`), e.g. one per clip of a game.
    """
    found = []
    for item in tracks_tables:
        table = getattr(item, "tracks", item)
        columns = table.select(["status", "team_cluster", "number"]).to_pydict()
        for status, cluster, number in zip(
            columns["status"], columns["team_cluster"], columns["number"], strict=True
        ):
            if status == "confirmed" and cluster is not None and number:
                found.append((int(cluster), str(number)))
    return found
