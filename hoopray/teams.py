"""Team model per game: fitted once from all clips, named automatically, voted along tracks.

Pass 1 of the pipeline, callable without Ray:

1. :func:`collect_game_crops` samples frames across every clip of a game (one a second by
   default), detects players (referees and every other role left out) and keeps the central
   part of each player box (:func:`central_crops`, scale 0.4), at most ``max_crops`` of them
   (a seeded reservoir sample, so memory stays bounded on long games).
2. The crops are embedded (any :class:`hoopray.models.base.Embedder`) and
   :func:`fit_team_model` reduces the L2-normalised embeddings to 3-D with UMAP and splits
   them with KMeans(2), both with a fixed ``random_state``. KMeans(2) also runs on the
   embeddings themselves, and the split with the higher silhouette in embedding space is
   kept (see :func:`fit_team_model` for why). :func:`fit_game` glues 1 and 2.

Prediction (:meth:`TeamModel.predict`) never runs UMAP: UMAP's ``transform`` of 200 points
costs seconds on a CPU (about 9 s on a first call, which compiles with numba, then 0.1-0.6
s; ``benchmarks/teams.py`` measures it), and pass 2 classifies crops of every track.
Instead the model keeps the fitted sample's normalised embeddings and their cluster
labels and classifies a new embedding by its ``knn_k`` nearest sample embeddings (cosine
similarity): the majority cluster wins and the confidence is the vote margin
``|votes_0 - votes_1| / k`` in [0, 1]. The model's metadata records how often this
reproduces the fitted label of the sample itself (``knn_agreement``, leave-one-out).
:func:`vote_team` then combines the votes of the crops sampled along a whole track. Crops
given to ``predict`` must be made like the fitted ones
(:func:`central_crops` with the same scale, the same embedder).

Small samples: UMAP needs more points than its ``n_neighbors``. With fewer (but at least
two) crops the model falls back to PCA (up to 3 components) before KMeans and records
``projection: "pca"`` and the reason in its metadata; with fewer than two crops, or when
all crops fall into one cluster, :class:`TeamModelError` is raised.

Naming (:func:`name_clusters`) maps the two clusters to the roster's two teams without a
manual choice, from the clusters' dominant jersey colour against the roster colours and,
once numbers are confirmed, from which roster the confirmed numbers of each cluster fit.
A config override (``teams.override: {0: "Team", 1: "Other"}``) remains for a wrong call.

Storage, under ``<output>/<game_id>/teams/`` (:func:`teams_dir`; any store location: a
local path, ``s3://``, ``gs://`` or another fsspec URI, see :mod:`hoopray.store`),
contains no pickle at all: ``model.npz`` (numpy arrays, loaded with
``allow_pickle=False``), ``model.json`` (metadata), ``naming.json``, the game's pass-1 crop
sample ``sample.npz`` (:func:`save_sample`), and the diagnostics ``crops.parquet``
(:data:`hoopray.types.TEAM_CROPS`), ``scatter.png`` and ``contact_sheet.png``. The UMAP and
KMeans objects are not kept (prediction does not need them), so loading a model never
unpickles anything; ``trusted_root`` additionally refuses a model directory outside the
job's own output tree.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from hoopray import store, types, video
from hoopray.geometry import clip_boxes, crop, shrink_boxes
from hoopray.video import VideoError, iter_frames, probe

if TYPE_CHECKING:
    from hoopray.models.base import Detector, Embedder, Models, Roles
    from hoopray.roster import Roster
    from hoopray.types import ClipRef

FORMAT = "hoopray.teams/1"
MODEL_FILE = "model.npz"
META_FILE = "model.json"
NAMING_FILE = "naming.json"
SAMPLE_FILE = "sample.npz"
CROPS_FILE = "crops.parquet"
SCATTER_FILE = "scatter.png"
SHEET_FILE = "contact_sheet.png"

SPLIT_MARGIN = 0.02  # silhouette gain needed to prefer the embedding-space split over UMAP's

_ARRAYS = ("embeddings", "labels", "projection", "centroids", "cluster_lab")


class TeamModelError(ValueError):
    """A team model cannot be fitted, loaded or named from what was given."""


@dataclass(frozen=True)
class TeamsConfig:
    """The ``teams`` config group (``conf/teams/default.yaml``).

    Attributes:
        stride_seconds: seconds between two sampled frames of a clip.
        scale: central fraction of a player box that is cropped.
        max_crops: most crops kept per game (seeded reservoir sample beyond that).
        detect_batch: frames per detector call.
        embed_batch: crops per embedder call.
        seed: random_state of UMAP, KMeans and the reservoir sample.
        umap_components: UMAP output dimensions.
        umap_neighbors: UMAP ``n_neighbors``; fewer crops than this + 1 use PCA instead.
        umap_min_dist: UMAP ``min_dist``.
        kmeans_n_init: KMeans ``n_init``.
        knn_k: neighbours voting in :meth:`TeamModel.predict`.
        override: ``{cluster: team name}`` for both clusters, replacing automatic naming.
        refit_fraction: planning only (:mod:`hoopray.manifest`): the model is refitted
            when the game's clips differ from those it was fitted on by more than this share.
    """

    stride_seconds: float = 1.0
    scale: float = 0.4
    max_crops: int = 2000
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
        for name in ("max_crops", "detect_batch", "embed_batch", "umap_components", "knn_k"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}")
        if self.umap_neighbors < 2:
            raise ValueError(f"umap_neighbors must be >= 2; got {self.umap_neighbors}")
        if not 0 <= self.refit_fraction <= 1:
            raise ValueError(f"refit_fraction must be in [0, 1]; got {self.refit_fraction}")
        if self.override is not None:
            object.__setattr__(self, "override", _check_override_keys(self.override))


@dataclass
class CropSample:
    """Player crops sampled from a game, in clip and frame order.

    Attributes:
        crops: central crops, RGB uint8 (none is empty).
        clip_ids: clip of each crop.
        frames: frame index of each crop, int32 (N,).
        boxes: the detected player box of each crop (before shrinking), float32 (N, 4).
        frames_sampled: frames given to the detector.
        players_seen: player detections seen (before the ``max_crops`` sample).
        problems: ``(clip_id, reason)`` for clips that could not be read.
    """

    crops: list[np.ndarray] = field(default_factory=list)
    clip_ids: list[str] = field(default_factory=list)
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float32))
    frames_sampled: int = 0
    players_seen: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.crops)


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


@dataclass
class TeamModel:
    """A fitted two-team split of one game's player crops.

    Attributes:
        embeddings: the fitted sample's embeddings, L2-normalised, float32 (N, D).
        labels: KMeans cluster (0 or 1) of each sample embedding, int8 (N,).
        projection: the sample's UMAP (or PCA) coordinates, float32 (N, 3), diagnostics.
        centroids: normalised mean embedding of each cluster, float32 (2, D).
        knn_k: neighbours voting in :meth:`predict`.
        cluster_lab: dominant jersey colour of each cluster in CIE Lab, float32 (2, 3),
            when known (:func:`fit_game` sets it); lets :func:`name_clusters` run without
            the crops.
        meta: how the model was fitted (JSON-serialisable).
    """

    embeddings: np.ndarray
    labels: np.ndarray
    projection: np.ndarray
    centroids: np.ndarray
    knn_k: int = 15
    cluster_lab: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, embeddings: np.ndarray, seed: int = 0, **kwargs: Any) -> TeamModel:
        """Same as :func:`fit_team_model`."""
        return fit_team_model(embeddings, seed=seed, **kwargs)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def predict(
        self, embeddings: np.ndarray, batch_size: int = 1024
    ) -> tuple[np.ndarray, np.ndarray]:
        """Classify embeddings by their nearest fitted sample embeddings.

        Returns:
            ``(clusters int8[N], confidence float32[N])``; the confidence is the vote margin
            of the ``knn_k`` neighbours, and 0 for an all-zero embedding (an empty crop).

        Raises:
            ValueError: for embeddings of another dimension.
        """
        query = _as_embeddings(embeddings, self.dim)
        clusters = np.zeros(len(query), dtype=np.int8)
        confidence = np.zeros(len(query), dtype=np.float32)
        for start in range(0, len(query), batch_size):
            part = slice(start, start + batch_size)
            clusters[part], confidence[part] = self._knn(query[part])
        return clusters, confidence

    def _knn(self, query: np.ndarray, exclude_self: bool = False) -> tuple[np.ndarray, np.ndarray]:
        normed, norms = _normalise(query)
        similarity = normed @ self.embeddings.T
        if exclude_self:
            np.fill_diagonal(similarity, -np.inf)
        available = similarity.shape[1] - int(exclude_self)
        k = max(1, min(self.knn_k, available))
        nearest = np.argpartition(-similarity, k - 1, axis=1)[:, :k]
        votes_one = (self.labels[nearest] == 1).sum(axis=1)
        votes_zero = k - votes_one
        rows = np.arange(len(query))
        first = nearest[rows, np.argmax(similarity[rows[:, None], nearest], axis=1)]
        clusters = np.where(
            votes_one == votes_zero, self.labels[first], (votes_one > votes_zero).astype(np.int8)
        ).astype(np.int8)
        confidence = (np.abs(votes_one - votes_zero) / k).astype(np.float32)
        confidence[norms == 0] = 0.0
        return clusters, confidence

    def save(self, directory: str | os.PathLike[str]) -> str:
        """Write ``model.npz`` and ``model.json`` into ``directory`` (atomically each).

        Args:
            directory: any store location (local path or URI).

        Returns:
            The directory, normalised (:func:`hoopray.store.normalise`).
        """
        target = store.normalise(directory)
        arrays = {
            "embeddings": self.embeddings.astype(np.float32),
            "labels": self.labels.astype(np.int8),
            "projection": self.projection.astype(np.float32),
            "centroids": self.centroids.astype(np.float32),
        }
        if self.cluster_lab is not None:
            arrays["cluster_lab"] = np.asarray(self.cluster_lab, dtype=np.float32)
        _write_npz(store.join(target, MODEL_FILE), arrays)
        meta = {"format": FORMAT, "knn_k": int(self.knn_k), "meta": self.meta}
        store.write_text(store.join(target, META_FILE), json.dumps(meta, indent=2, sort_keys=True))
        return target

    @classmethod
    def load(
        cls,
        directory: str | os.PathLike[str],
        trusted_root: str | os.PathLike[str] | None = None,
    ) -> TeamModel:
        """Load a model written by :meth:`save`; nothing is unpickled.

        Args:
            directory: the model's directory (``<output>/<game_id>/teams``), any store
                location.
            trusted_root: when given, a directory that is not inside it (the job's output
                tree) is refused: local paths are compared after resolving symlinks, URIs
                by prefix (and may not contain ``..``).

        Raises:
            TeamModelError: a refused location, missing files, another format or arrays
                that do not fit together.
        """
        source = store.normalise(directory)
        if trusted_root is not None and not _inside(source, trusted_root):
            raise TeamModelError(
                f"refusing to load a team model from {source}: outside {trusted_root}"
            )
        meta_path, model_path = store.join(source, META_FILE), store.join(source, MODEL_FILE)
        try:
            meta = json.loads(store.read_text(meta_path))
            arrays = _read_npz(model_path, _ARRAYS)
        except (OSError, ValueError, KeyError) as err:
            raise TeamModelError(f"cannot load a team model from {source}: {err}") from err
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            found = meta.get("format") if isinstance(meta, dict) else meta
            raise TeamModelError(f"{meta_path}: format {found!r} != {FORMAT}")
        missing = [name for name in _ARRAYS[:4] if name not in arrays]
        if missing:
            raise TeamModelError(f"{model_path}: missing arrays {missing}")
        try:
            model = cls(
                embeddings=arrays["embeddings"].astype(np.float32),
                labels=arrays["labels"].astype(np.int8),
                projection=arrays["projection"].astype(np.float32),
                centroids=arrays["centroids"].astype(np.float32),
                knn_k=int(meta["knn_k"]),
                cluster_lab=arrays.get("cluster_lab"),
                meta=dict(meta.get("meta") or {}),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise TeamModelError(f"cannot load a team model from {source}: {err}") from err
        _check_model(model, source)
        return model


def _inside(location: str, trusted_root: str | os.PathLike[str]) -> bool:
    """Whether ``location`` lies inside ``trusted_root`` (local: after resolving links)."""
    root = os.fspath(trusted_root)
    if store.is_local(location) != store.is_local(root):
        return False
    if store.is_local(location):
        return Path(location).resolve().is_relative_to(Path(store.normalise(root)).resolve())
    if ".." in PurePosixPath(location.split("://", 1)[1]).parts:
        return False
    return store.normalise(location).startswith(store.normalise(root) + "/")


def _write_npz(location: str, arrays: Mapping[str, np.ndarray], compressed: bool = False) -> None:
    """``np.savez`` (no pickle) into a whole object at ``location``."""
    save = np.savez_compressed if compressed else np.savez
    with store.atomic_path(location) as tmp, open(tmp, "wb") as handle:
        save(handle, allow_pickle=False, **arrays)


def _read_npz(location: str, names: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` object (all, or those of ``names`` present); no pickle."""
    with np.load(io.BytesIO(store.read_bytes(location)), allow_pickle=False) as data:
        wanted = data.files if names is None else [n for n in names if n in data.files]
        return {name: data[name] for name in wanted}


def _check_model(model: TeamModel, source: str) -> None:
    n, d = model.embeddings.shape if model.embeddings.ndim == 2 else (-1, -1)
    if (
        n < 2
        or model.labels.shape != (n,)
        or model.projection.shape[0] != n
        or model.centroids.shape != (2, d)
        or not set(np.unique(model.labels).tolist()) == {0, 1}
        or (model.cluster_lab is not None and model.cluster_lab.shape != (2, 3))
    ):
        raise TeamModelError(f"{source}: the model's arrays do not fit together")


def _check_override_keys(override: Mapping[Any, str]) -> dict[int, str]:
    try:
        mapping = {int(k): str(v) for k, v in dict(override).items()}
    except (TypeError, ValueError) as err:
        raise ValueError(f"teams.override keys must be 0 and 1; got {override!r}") from err
    if set(mapping) != {0, 1} or mapping[0] == mapping[1]:
        raise ValueError(
            f"teams.override must name both clusters 0 and 1 with two teams; got {override!r}"
        )
    return mapping


def _normalise(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    norms = np.linalg.norm(values, axis=1)
    safe = np.where(norms > 0, norms, 1.0)
    return (values / safe[:, None]).astype(np.float32), norms


def _as_embeddings(embeddings: np.ndarray, dim: int | None = None) -> np.ndarray:
    values = np.asarray(embeddings, dtype=np.float32)
    if values.ndim != 2 or (dim is not None and values.shape[1] != dim):
        expected = "(N, D)" if dim is None else f"(N, {dim})"
        raise ValueError(f"embeddings must have shape {expected}; got {values.shape}")
    if not np.isfinite(values).all():
        raise ValueError("embeddings contain NaN or infinity")
    return values


def teams_dir(out_root: str | os.PathLike[str], game_id: str) -> str:
    """``<out>/<game_id>/teams``, the home of a game's team model and diagnostics.

    Raises:
        ValueError: an invalid or reserved ``game_id``.
    """
    return store.join(store.game_dir(out_root, game_id), "teams")


def model_present(out_root: str | os.PathLike[str], game_id: str) -> bool:
    """Whether the game has a saved team model (``model.npz``; one metadata request)."""
    return store.is_file(store.join(teams_dir(out_root, game_id), MODEL_FILE))


def central_crops(frame: np.ndarray, xyxy: np.ndarray, scale: float = 0.4) -> list[np.ndarray]:
    """The central ``scale`` part of each box, cropped from ``frame`` (may be empty)."""
    height, width = frame.shape[:2]
    boxes = clip_boxes(shrink_boxes(xyxy, scale), (width, height))
    return [crop(frame, box) for box in boxes]


class _Reservoir:
    """A seeded uniform sample of at most ``size`` items from a stream (Algorithm R)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seen = 0
        self.items: list[tuple[int, Any]] = []
        self.rng = np.random.default_rng(seed)

    def add(self, item: Any) -> None:
        if len(self.items) < self.size:
            self.items.append((self.seen, item))
        else:
            slot = int(self.rng.integers(0, self.seen + 1))
            if slot < self.size:
                self.items[slot] = (self.seen, item)
        self.seen += 1

    def ordered(self) -> list[Any]:
        return [item for _, item in sorted(self.items, key=lambda pair: pair[0])]


def sample_indices(frames: int, fps: float, stride_seconds: float) -> range:
    """Frame indices sampled from a clip of ``frames`` frames: one each ``stride_seconds``.

    The stride is ``max(1, round(fps * stride_seconds))`` frames, starting at frame 0.
    """
    return range(0, max(0, int(frames)), max(1, round(fps * stride_seconds)))


def sampled_frames(
    path: str | os.PathLike[str], stride_seconds: float
) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, rgb)`` of a local clip's sampled frames (:func:`sample_indices`).

    With :func:`hoopray.video.read_frames_at` only the sampled frames are decoded (a seek to
    the keyframe before each). The frame count comes from the container header, else from
    the duration (rounded up: indices past the end are ignored). Without
    ``read_frames_at``, or with neither count nor duration, the clip is decoded through
    and every stride-th frame kept, which gives the same frames.

    Raises:
        hoopray.video.VideoError: the clip cannot be read.
    """
    info = probe(path)
    stride = max(1, round(info.fps * stride_seconds))
    frames = info.frames
    if frames is None and info.duration:
        frames = math.ceil(info.duration * info.fps) + 1
    read_frames_at = getattr(video, "read_frames_at", None)
    if read_frames_at is None or frames is None:
        yield from iter_frames(path, stride=stride)
        return
    yield from read_frames_at(path, sample_indices(frames, info.fps, stride_seconds))


def collect_game_crops(
    clips: Sequence[ClipRef],
    detector: Detector,
    roles: Roles,
    stride_seconds: float = 1.0,
    scale: float = 0.4,
    max_crops: int = 2000,
    batch_size: int = 8,
    seed: int = 0,
) -> CropSample:
    """Sample frames of every clip, detect players and keep their central crops.

    Only the sampled frames are decoded (:func:`sampled_frames`). Only detections with the
    ``player`` role are kept
    (referees, numbers, ball and rim are not). A clip that cannot be decoded is recorded in
    ``problems`` and the others go on.

    Returns:
        A :class:`CropSample` of at most ``max_crops`` crops (uniform seeded sample).
    """
    reservoir = _Reservoir(max_crops, seed)
    sample = CropSample()

    def flush(clip_id: str, batch: list[tuple[int, np.ndarray]]) -> None:
        detections = detector.detect([frame for _, frame in batch])
        sample.frames_sampled += len(batch)
        for (index, frame), found in zip(batch, detections, strict=True):
            players = roles.select(found, "player")
            if len(players) == 0:
                continue
            boxes = np.asarray(players.xyxy, dtype=np.float32)
            for box, image in zip(boxes, central_crops(frame, boxes, scale), strict=True):
                if image.size == 0:
                    continue
                sample.players_seen += 1
                reservoir.add((clip_id, index, box, image))

    for clip in clips:
        batch: list[tuple[int, np.ndarray]] = []
        try:
            for index, frame in sampled_frames(clip.path, stride_seconds):
                batch.append((index, frame))
                if len(batch) >= batch_size:
                    flush(clip.clip_id, batch)
                    batch = []
            if batch:
                flush(clip.clip_id, batch)
        except VideoError as err:
            sample.problems.append((clip.clip_id, str(err)))

    kept = reservoir.ordered()
    sample.crops = [item[3] for item in kept]
    sample.clip_ids = [item[0] for item in kept]
    sample.frames = np.array([item[1] for item in kept], dtype=np.int32)
    sample.boxes = np.array([item[2] for item in kept], dtype=np.float32).reshape(-1, 4)
    return sample


def embed_crops(
    embedder: Embedder, crops: Sequence[np.ndarray], batch_size: int = 64
) -> np.ndarray:
    """Embed ``crops`` in batches and return (N, D) float32."""
    parts = [
        np.asarray(embedder.embed(list(crops[start : start + batch_size])), dtype=np.float32)
        for start in range(0, len(crops), batch_size)
    ]
    if not parts:
        return np.asarray(embedder.embed([]), dtype=np.float32)
    return np.concatenate(parts, axis=0)


def fit_team_model(
    embeddings: np.ndarray,
    seed: int = 0,
    *,
    n_components: int = 3,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_init: int = 10,
    knn_k: int = 15,
) -> TeamModel:
    """Split embeddings into two clusters: UMAP (or PCA for few points), then KMeans(2).

    The embeddings are L2-normalised first (so Euclidean UMAP and KMeans follow cosine
    similarity, as :meth:`TeamModel.predict` does). KMeans(2) on the UMAP coordinates is
    the primary split. UMAP keeps local neighbourhoods but not the distances between its
    sub-clusters: a team seen from the front (numbers) and from the back forms two blobs,
    and KMeans on the layout can pair blobs of different teams. So KMeans(2) is also run
    on the embeddings themselves, and that split replaces UMAP's when its silhouette,
    measured in embedding space, is higher by more than :data:`SPLIT_MARGIN`;
    ``meta["split"]`` says which was kept and ``meta["silhouette"]`` gives both scores.

    UMAP runs when there are more than ``n_neighbors`` embeddings; otherwise PCA to
    ``min(n_components, N - 1)`` dimensions (zero-padded to ``n_components``) is used and
    ``meta["projection"] == "pca"``.
    The model's ``knn_k`` is ``knn_k`` capped at the smaller cluster's size, so that the
    smaller team can still win a vote in small samples.

    Raises:
        TeamModelError: fewer than two embeddings, or all of them in one cluster.
        ValueError: embeddings that are not a finite (N, D) array.
    """
    values = _as_embeddings(embeddings)
    count = len(values)
    if count < 2:
        raise TeamModelError(f"a team model needs at least 2 player crops; got {count}")
    normed, norms = _normalise(values)
    meta: dict[str, Any] = {
        "seed": int(seed),
        "count": count,
        "dim": int(values.shape[1]),
        "zero_rows": int((norms == 0).sum()),
        "n_components": int(n_components),
        "n_neighbors": int(n_neighbors),
        "min_dist": float(min_dist),
        "n_init": int(n_init),
    }
    if count > n_neighbors:
        projection = _umap(normed, seed, n_components, n_neighbors, min_dist)
        meta["projection"] = "umap"
    else:
        projection = _pca(normed, seed, n_components)
        meta["projection"] = "pca"
        meta["fallback_reason"] = (
            f"{count} crops <= umap n_neighbors {n_neighbors}: PCA used instead of UMAP"
        )

    candidates = {
        meta["projection"]: _kmeans(projection, seed, n_init),
        "embedding": _kmeans(normed, seed, n_init),
    }
    scores = {name: _silhouette(normed, found) for name, found in candidates.items()}
    split = meta["projection"]
    if scores["embedding"] > scores[split] + SPLIT_MARGIN:
        split = "embedding"
    labels = candidates[split]
    meta["split"] = split
    meta["silhouette"] = {name: round(score, 4) for name, score in scores.items()}
    sizes = np.bincount(labels, minlength=2)
    if sizes.min() == 0:
        raise TeamModelError(
            f"the {count} player crops do not split into two clusters (all look alike)"
        )
    centroids = np.stack([normed[labels == c].mean(axis=0) for c in (0, 1)])
    centroids, _ = _normalise(centroids)
    model = TeamModel(
        embeddings=normed,
        labels=labels,
        projection=projection.astype(np.float32),
        centroids=centroids,
        knn_k=max(1, min(int(knn_k), int(sizes.min()))),
        meta=meta,
    )
    agree, _ = model._knn(normed, exclude_self=True)
    meta["cluster_sizes"] = sizes.tolist()
    meta["knn_agreement"] = float((agree == labels).mean())
    return model


def _kmeans(points: np.ndarray, seed: int, n_init: int) -> np.ndarray:
    from sklearn.cluster import KMeans

    kmeans = KMeans(n_clusters=2, random_state=seed, n_init=n_init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "fewer distinct points than clusters": checked later
        return kmeans.fit_predict(points.astype(np.float64)).astype(np.int8)


def _silhouette(normed: np.ndarray, labels: np.ndarray) -> float:
    """Silhouette of a split, measured in embedding space; -1 where it is undefined."""
    from sklearn.metrics import silhouette_score

    if not 2 <= len(np.unique(labels)) <= len(labels) - 1:
        return -1.0
    return float(silhouette_score(normed, labels, metric="euclidean"))


def _umap(
    values: np.ndarray, seed: int, n_components: int, n_neighbors: int, min_dist: float
) -> np.ndarray:
    import umap

    reducer = umap.UMAP(
        n_components=n_components,
        n_neighbors=n_neighbors,
        min_dist=min_dist,
        metric="euclidean",
        random_state=seed,
        n_jobs=1,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return np.asarray(reducer.fit_transform(values), dtype=np.float32)


def _pca(values: np.ndarray, seed: int, n_components: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    keep = max(1, min(n_components, len(values) - 1, values.shape[1]))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # zero variance: identical crops, raised after KMeans
        reduced = PCA(n_components=keep, random_state=seed).fit_transform(values.astype(np.float64))
    out = np.zeros((len(values), n_components), dtype=np.float32)
    out[:, :keep] = reduced
    return out


def fit_sample(
    sample: CropSample,
    embeddings: np.ndarray,
    cfg: TeamsConfig,
    game_id: str,
    clip_ids: Sequence[str],
) -> TeamModel:
    """Fit a game's :class:`TeamModel` on its crop sample and their embeddings.

    The model's ``cluster_lab`` (dominant colours) and ``meta`` (game, clips, crop counts,
    problems) are filled in.

    Raises:
        TeamModelError: fewer than 2 player crops.
    """
    if len(sample) < 2:
        raise TeamModelError(
            f"game {game_id!r}: {len(sample)} player crops in {len(clip_ids)} clips "
            f"({sample.frames_sampled} frames sampled); a team model needs at least 2"
        )
    model = fit_team_model(
        embeddings,
        seed=cfg.seed,
        n_components=cfg.umap_components,
        n_neighbors=cfg.umap_neighbors,
        min_dist=cfg.umap_min_dist,
        n_init=cfg.kmeans_n_init,
        knn_k=cfg.knn_k,
    )
    model.cluster_lab = cluster_colours(sample.crops, model.labels)
    model.meta.update(
        {
            "game_id": game_id,
            "clips": list(clip_ids),
            "frames_sampled": sample.frames_sampled,
            "players_seen": sample.players_seen,
            "problems": [list(p) for p in sample.problems],
            "stride_seconds": cfg.stride_seconds,
            "scale": cfg.scale,
        }
    )
    return model


def fit_game(
    clips: Sequence[ClipRef], models: Models, cfg: TeamsConfig | None = None
) -> tuple[TeamModel, CropSample]:
    """Pass 1 for one game: sample crops, embed them and fit its :class:`TeamModel`.

    The model's ``cluster_lab`` (dominant colours) and ``meta`` (game, clips, crop counts,
    problems) are filled in.

    Raises:
        ValueError: ``models`` without a detector or an embedder.
        TeamModelError: too few player crops in the whole game.
    """
    cfg = cfg or TeamsConfig()
    if models.detector is None or models.embedder is None:
        raise ValueError("fitting a team model needs models.detector and models.embedder")
    sample = collect_game_crops(
        clips,
        models.detector,
        models.roles,
        stride_seconds=cfg.stride_seconds,
        scale=cfg.scale,
        max_crops=cfg.max_crops,
        batch_size=cfg.detect_batch,
        seed=cfg.seed,
    )
    embeddings = embed_crops(models.embedder, sample.crops, cfg.embed_batch)
    game = clips[0].game_id if clips else ""
    model = fit_sample(sample, embeddings, cfg, game, [clip.clip_id for clip in clips])
    model.meta["embedder"] = type(models.embedder).__name__
    return model, sample


def vote_team(
    clusters: Sequence[int] | np.ndarray, confidences: Sequence[float] | np.ndarray
) -> tuple[int | None, float]:
    """A track's team from the cluster votes of crops sampled along it.

    Each vote counts with its confidence. The result's confidence is the weighted margin
    ``|sum(conf of 0) - sum(conf of 1)| / number of votes`` in [0, 1], so one vote at 0.2
    gives 0.2 and many agreeing confident votes approach 1. When every vote has confidence
    0 the plain majority decides with confidence 0; an exact tie gives ``(None, 0.0)``, as
    does no vote at all.

    Raises:
        ValueError: lengths differ, a cluster other than 0/1, a confidence outside [0, 1].
    """
    labels = np.asarray(clusters, dtype=np.int64).reshape(-1)
    weights = np.asarray(confidences, dtype=np.float64).reshape(-1)
    if labels.shape != weights.shape:
        raise ValueError(f"{labels.size} clusters but {weights.size} confidences")
    if labels.size == 0:
        return None, 0.0
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"clusters must be 0 or 1; got {sorted(set(labels.tolist()))}")
    if not (np.isfinite(weights).all() and (weights >= 0).all() and (weights <= 1).all()):
        raise ValueError("confidences must be in [0, 1]")
    signed = float(np.where(labels == 0, weights, -weights).sum())
    if signed != 0:
        return (0 if signed > 0 else 1), min(1.0, abs(signed) / labels.size)
    zeros = int((labels == 0).sum())
    ones = labels.size - zeros
    if zeros == ones:
        return None, 0.0
    return (0 if zeros > ones else 1), 0.0


def hex_to_lab(colour: str) -> np.ndarray:
    """CIE Lab (L in 0..100) of a ``"#rrggbb"`` colour, float32 (3,)."""
    text = colour.strip().lstrip("#")
    if len(text) != 6:
        raise ValueError(f"colour must be '#rrggbb'; got {colour!r}")
    rgb = np.array([[[int(text[i : i + 2], 16) for i in (0, 2, 4)]]], dtype=np.uint8)
    return _rgb_to_lab(rgb)[0, 0]


def _rgb_to_lab(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb.astype(np.float32) / 255.0, cv2.COLOR_RGB2Lab)


def crop_colour(image: np.ndarray) -> np.ndarray | None:
    """Per-channel median CIE Lab colour of a crop's pixels; None for an empty crop.

    The crop is the central part of a player box, mostly jersey; the median ignores the
    minority of skin, number and background pixels.
    """
    if image.size == 0:
        return None
    return np.median(_rgb_to_lab(image).reshape(-1, 3), axis=0).astype(np.float32)


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
        forced = _check_override_keys(override)
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


def save_sample(
    directory: str | os.PathLike[str], sample: CropSample, embeddings: np.ndarray
) -> str:
    """Write a game's pass-1 crop sample and its embeddings as ``sample.npz`` (no pickle).

    Arrays: ``crop_0`` .. ``crop_<N-1>`` (RGB uint8), ``frames`` int32 (N,), ``boxes``
    float32 (N, 4), ``clip_ids`` unicode (N,), ``embeddings`` float32 (N, D),
    ``frames_sampled`` and ``players_seen`` int64 scalars, and ``problems`` (the JSON of
    ``[[clip_id, reason], ...]`` as a unicode scalar).

    Returns:
        The location of the file.

    Raises:
        ValueError: the sample's lists and arrays, or the embeddings, differ in length.
    """
    n = len(sample)
    values = np.asarray(embeddings, dtype=np.float32)
    if values.size == 0 and n == 0:
        values = values.reshape(0, values.shape[-1] if values.ndim == 2 else 0)
    if (
        values.ndim != 2
        or len(values) != n
        or len(sample.clip_ids) != n
        or len(sample.frames) != n
        or len(np.asarray(sample.boxes).reshape(-1, 4)) != n
    ):
        raise ValueError(
            f"{n} crops but {len(sample.clip_ids)} clip ids, {len(sample.frames)} frames, "
            f"{len(np.asarray(sample.boxes).reshape(-1, 4))} boxes, embeddings {values.shape}"
        )
    arrays: dict[str, np.ndarray] = {
        "frames": np.asarray(sample.frames, dtype=np.int32).reshape(n),
        "boxes": np.asarray(sample.boxes, dtype=np.float32).reshape(n, 4),
        "clip_ids": np.array([str(c) for c in sample.clip_ids], dtype=np.str_).reshape(n),
        "embeddings": values,
        "frames_sampled": np.asarray(int(sample.frames_sampled), dtype=np.int64),
        "players_seen": np.asarray(int(sample.players_seen), dtype=np.int64),
        "problems": np.asarray(json.dumps([[str(c), str(r)] for c, r in sample.problems])),
    }
    for i, image in enumerate(sample.crops):
        arrays[f"crop_{i}"] = np.asarray(image, dtype=np.uint8)
    location = store.join(directory, SAMPLE_FILE)
    _write_npz(location, arrays, compressed=True)
    return location


def load_sample(directory: str | os.PathLike[str]) -> tuple[CropSample, np.ndarray]:
    """The crop sample and embeddings saved by :func:`save_sample`; nothing is unpickled.

    Raises:
        TeamModelError: a missing or damaged ``sample.npz``.
    """
    location = store.join(directory, SAMPLE_FILE)
    try:
        arrays = _read_npz(location)
        frames = arrays["frames"].astype(np.int32).reshape(-1)
        n = len(frames)
        problems = json.loads(str(arrays["problems"].item()))
        sample = CropSample(
            crops=[arrays[f"crop_{i}"] for i in range(n)],
            clip_ids=[str(c) for c in arrays["clip_ids"].reshape(-1).tolist()],
            frames=frames,
            boxes=arrays["boxes"].astype(np.float32).reshape(-1, 4),
            frames_sampled=int(arrays["frames_sampled"]),
            players_seen=int(arrays["players_seen"]),
            problems=[(str(c), str(r)) for c, r in problems],
        )
        embeddings = arrays["embeddings"].astype(np.float32)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TeamModelError(f"cannot load the crop sample {location}: {err}") from err
    if (
        len(sample.clip_ids) != n
        or len(sample.boxes) != n
        or embeddings.ndim != 2
        or len(embeddings) != n
        or any(image.dtype != np.uint8 or image.ndim != 3 for image in sample.crops)
    ):
        raise TeamModelError(f"{location}: the sample's arrays do not fit together")
    return sample, embeddings


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
