"""The team model of a game: one way to fit it, kNN prediction, storage without pickle.

:func:`fit_team_model` reduces the L2-normalised embeddings of a game's crop sample to
3-D with UMAP and splits them with KMeans(2), both with a fixed ``random_state``; KMeans(2)
also runs on the embeddings themselves, and the split with the higher silhouette in
embedding space is kept (see :func:`fit_team_model` for why).

Prediction (:meth:`TeamModel.predict`) never runs UMAP: UMAP's ``transform`` of 200 points
costs seconds on a CPU (about 9 s on a first call, which compiles with numba, then 0.1-0.6
s; ``benchmarks/teams.py`` measures it), and resolve classifies crops of every track.
Instead the model keeps the fitted sample's normalised embeddings and their cluster labels
and classifies a new embedding by its ``knn_k`` nearest sample embeddings (cosine
similarity): the majority cluster wins and the confidence is the vote margin
``|votes_0 - votes_1| / k`` in [0, 1]. The model's metadata records how often this
reproduces the fitted label of the sample itself (``knn_agreement``, leave-one-out).
Embeddings given to ``predict`` must come from crops made like the fitted ones (the same
crop scale, the same embedder).

Small samples: UMAP needs more points than its ``n_neighbors``. With fewer (but at least
two) crops the model falls back to PCA (up to 3 components) before KMeans and records
``projection: "pca"`` and the reason in its metadata; with fewer than two crops, or when
all crops fall into one cluster, :class:`TeamModelError` is raised.

Storage (:meth:`TeamModel.save`, :meth:`TeamModel.load`): ``model.npz`` (numpy arrays,
loaded with ``allow_pickle=False``) and ``model.json`` (metadata). The UMAP and KMeans
objects are not kept (prediction does not need them), so loading a model never unpickles
anything; ``trusted_root`` additionally refuses a model directory outside the job's own
output tree.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

import numpy as np

from hoopray import store
from hoopray.teams.config import TeamModelError, TeamsConfig
from hoopray.teams.files import FORMAT, META_FILE, MODEL_FILE, read_npz, write_npz
from hoopray.teams.naming import cluster_colours

if TYPE_CHECKING:
    from hoopray.teams.sample import CropSample

SPLIT_MARGIN = 0.02  # silhouette gain needed to prefer the embedding-space split over UMAP's

_ARRAYS = ("embeddings", "labels", "projection", "centroids", "cluster_lab")


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
            when known (:func:`fit_team_model` sets it from the sample's crops); lets
            :func:`hoopray.teams.naming.name_clusters` run without the crops.
        meta: how the model was fitted (JSON-serialisable).
    """

    embeddings: np.ndarray
    labels: np.ndarray
    projection: np.ndarray
    centroids: np.ndarray
    knn_k: int = 15
    cluster_lab: np.ndarray | None = None
    meta: dict[str, Any] = field(default_factory=dict)

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
        write_npz(store.join(target, MODEL_FILE), arrays)
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
            arrays = read_npz(model_path, _ARRAYS)
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


def fit_team_model(
    embeddings: np.ndarray,
    cfg: TeamsConfig | None = None,
    *,
    sample: CropSample | None = None,
    meta: Mapping[str, Any] | None = None,
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

    UMAP runs when there are more than ``cfg.umap_neighbors`` embeddings; otherwise PCA to
    ``min(cfg.umap_components, N - 1)`` dimensions (zero-padded) is used and
    ``meta["projection"] == "pca"``. The model's ``knn_k`` is ``cfg.knn_k`` capped at the
    smaller cluster's size, so that the smaller team can still win a vote in small samples.

    Args:
        embeddings: (N, D) embeddings of the sampled crops.
        cfg: the ``teams`` config (defaults when None): seed, UMAP, KMeans and kNN settings.
        sample: the crops the embeddings were made from; when given, the model's
            ``cluster_lab`` (dominant colours) and the sample's counts, problems and
            embedder enter the model.
        meta: more entries for the model's metadata, e.g. ``game_id`` and ``clips``.

    Raises:
        TeamModelError: fewer than two embeddings, or all of them in one cluster.
        ValueError: embeddings that are not a finite (N, D) array, or a sample of another
            length.
    """
    cfg = cfg or TeamsConfig()
    extra = dict(meta or {})
    if sample is not None and len(sample) < 2:
        raise TeamModelError(
            f"{len(sample)} player crops{_sample_summary(sample, extra)}; "
            "a team model needs at least 2"
        )
    values = _as_embeddings(embeddings)
    count = len(values)
    if sample is not None and len(sample) != count:
        raise ValueError(f"{len(sample)} crops but {count} embeddings")
    if count < 2:
        raise TeamModelError(f"a team model needs at least 2 player crops; got {count}")
    normed, norms = _normalise(values)
    info: dict[str, Any] = {
        "seed": int(cfg.seed),
        "count": count,
        "dim": int(values.shape[1]),
        "zero_rows": int((norms == 0).sum()),
        "n_components": int(cfg.umap_components),
        "n_neighbors": int(cfg.umap_neighbors),
        "min_dist": float(cfg.umap_min_dist),
        "n_init": int(cfg.kmeans_n_init),
    }
    if count > cfg.umap_neighbors:
        projection = _umap(
            normed, cfg.seed, cfg.umap_components, cfg.umap_neighbors, cfg.umap_min_dist
        )
        info["projection"] = "umap"
    else:
        projection = _pca(normed, cfg.seed, cfg.umap_components)
        info["projection"] = "pca"
        info["fallback_reason"] = (
            f"{count} crops <= umap n_neighbors {cfg.umap_neighbors}: PCA used instead of UMAP"
        )

    candidates = {
        info["projection"]: _kmeans(projection, cfg.seed, cfg.kmeans_n_init),
        "embedding": _kmeans(normed, cfg.seed, cfg.kmeans_n_init),
    }
    scores = {name: _silhouette(normed, found) for name, found in candidates.items()}
    split = info["projection"]
    if scores["embedding"] > scores[split] + SPLIT_MARGIN:
        split = "embedding"
    labels = candidates[split]
    info["split"] = split
    info["silhouette"] = {name: round(score, 4) for name, score in scores.items()}
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
        knn_k=max(1, min(int(cfg.knn_k), int(sizes.min()))),
        meta=info,
    )
    agree, _ = model._knn(normed, exclude_self=True)
    info["cluster_sizes"] = sizes.tolist()
    info["knn_agreement"] = float((agree == labels).mean())
    if sample is not None:
        model.cluster_lab = cluster_colours(sample.crops, labels)
        info.update(
            {
                "frames_sampled": sample.frames_sampled,
                "players_seen": sample.players_seen,
                "overlapping": sample.overlapping,
                "problems": [list(p) for p in sample.problems],
                "stride_seconds": cfg.stride_seconds,
                "scale": cfg.scale,
                "max_overlap": cfg.max_overlap,
            }
        )
        if sample.embedder:
            info["embedder"] = sample.embedder
    info.update(extra)
    return model


def _sample_summary(sample: CropSample, meta: Mapping[str, Any]) -> str:
    clips = meta.get("clips")
    game = f"game {meta['game_id']!r}, " if "game_id" in meta else ""
    in_clips = f"{len(clips)} clips, " if clips is not None else ""
    return f" ({game}{in_clips}{sample.frames_sampled} frames sampled)"


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
