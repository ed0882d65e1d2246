"""Team model: fit time, prediction cost against UMAP's transform, and accuracy.

For each seed and colour pair a synthetic game is written (3 clips of 6 s at 4 fps,
640x360), player crops are sampled every 0.5 s with the ground-truth replay detector,
embedded with the colour-histogram embedder, and a team model is fitted and named
automatically. Accuracy is measured on player crops against the team of the player whose
visible mask covers most of the central crop ("crop acc"); "box acc" uses the team of the
box's own player instead, which an occluding player in front makes unreachable for any
crop classifier. "held-out" fits on every other crop and predicts the rest.

Prediction: :meth:`hoopray.teams.TeamModel.predict` (k nearest fitted sample embeddings)
of 200 embeddings, against ``umap.UMAP.transform`` of the same 200 embeddings with a
reducer fitted on the same sample with the same parameters: its first call (which
includes numba compilation, as in a fresh worker) and a warm second call. The verdict
uses the warm figure. A SigLIP-sized sample (2000 x 768, random) is timed as well.

Run: ``.venv/bin/python benchmarks/teams.py [--seeds 0 1 2]``. Last line:
``result: predict_speedup=<x> target=>=10 pass|fail``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from hoopray.geometry import box_pixels, clip_boxes, shrink_boxes
from hoopray.masks import rle_decode
from hoopray.models.base import Models
from hoopray.models.colour import ColourHistogramEmbedder
from hoopray.roster import load_roster
from hoopray.teams import (
    TeamsConfig,
    collect_game_crops,
    embed_crops,
    fit_team_model,
    name_clusters,
)
from hoopray.testing.replay import ReplayWorld
from hoopray.testing.synthetic import make_game
from hoopray.types import ClipRef

SIZE = (640, 360)
PAIRS = {"blue/red": ("#1d428a", "#ce1141"), "dark blue/dark green": ("#1d2a5a", "#1d4a2a")}


def visible_teams(label_path: Path, frames: np.ndarray, boxes: np.ndarray) -> list[str | None]:
    """Team (or "referee") owning most pixels of each central crop."""
    rows = pq.read_table(label_path).to_pylist()
    central = box_pixels(clip_boxes(shrink_boxes(boxes, 0.4), SIZE), SIZE)
    masks: dict[int, list[tuple[str, np.ndarray]]] = {}
    owners = []
    for frame, (c1, r1, c2, r2) in zip(frames.tolist(), central, strict=True):
        if frame not in masks:
            masks[frame] = [
                (
                    row["team"] if row["role"] == "player" else "referee",
                    rle_decode(row["mask_rle"], SIZE[1], SIZE[0]),
                )
                for row in rows
                if row["frame"] == frame and row["role"] in ("player", "referee")
            ]
        cover = [int(mask[r1:r2, c1:c2].sum()) for _, mask in masks[frame]]
        owners.append(masks[frame][int(np.argmax(cover))][0] if cover else None)
    return owners


def box_teams(label_path: Path, frames: np.ndarray, boxes: np.ndarray) -> list[str | None]:
    rows = [r for r in pq.read_table(label_path).to_pylist() if r["role"] == "player"]
    out = []
    for frame, box in zip(frames.tolist(), boxes, strict=True):
        same = [r for r in rows if r["frame"] == frame]
        gaps = [abs(np.array([r["x1"], r["y1"], r["x2"], r["y2"]]) - box).sum() for r in same]
        out.append(same[int(np.argmin(gaps))]["team"])
    return out


def majority(values: np.ndarray) -> object:
    names, counts = np.unique(values, return_counts=True)
    return names[int(np.argmax(counts))]


def time_call(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def umap_transform_times(sample: np.ndarray, queries: np.ndarray, seed: int) -> tuple[float, float]:
    """(cold, warm) seconds of ``UMAP.transform(queries)`` after fitting on ``sample``."""
    import umap

    normed = sample / np.maximum(np.linalg.norm(sample, axis=1, keepdims=True), 1e-12)
    queries = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    reducer = umap.UMAP(n_components=3, n_neighbors=15, min_dist=0.1, random_state=seed, n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reducer.fit(normed)
        start = time.perf_counter()
        reducer.transform(queries)
        cold = time.perf_counter() - start
        warm = time_call(lambda: reducer.transform(queries), 3)
    return cold, warm


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="hoopray-bench-teams-") as tmp:
        return run(Path(tmp), args.seeds)


def run(root: Path, seeds: list[int]) -> int:
    """Print the table for games written under ``root``; return the exit status."""
    world = ReplayWorld(root / "labels")
    embedder = ColourHistogramEmbedder()
    cfg = TeamsConfig(stride_seconds=0.5)
    rows = []
    predict_set: tuple[object, np.ndarray] | None = None
    print(
        f"{'colours':22s} {'seed':>4s} {'crops':>5s} {'fit s':>6s} {'split':>9s} "
        f"{'crop acc':>8s} {'box acc':>7s} {'held-out':>8s} {'naming':>8s} {'conf':>5s}"
    )
    for pair, colours in PAIRS.items():
        for seed in seeds:
            game_id = f"bench-{seed}-{colours[0][1:]}"
            game = make_game(
                root / "games", root / "labels", game_id,
                seed=seed, clips=3, seconds=6.0, fps=4, size=SIZE, colours=colours,
            )  # fmt: skip
            world._paths = None
            clips = [
                ClipRef(game_id, c, p, "bench")
                for c, p in zip(game.clip_ids, game.clips, strict=True)
            ]
            sample = collect_game_crops(clips, world.detector(), Models().roles, cfg)
            embeddings = embed_crops(embedder, sample.crops)
            start = time.perf_counter()
            model = fit_team_model(embeddings, cfg)
            fit_s = time.perf_counter() - start
            roster = load_roster(game.roster_path)
            naming = name_clusters(model, roster, sample.crops, model.labels)

            truth: list[str | None] = []
            by_box: list[str | None] = []
            for clip_id, path in zip(game.clip_ids, game.labels, strict=True):
                idx = [i for i, c in enumerate(sample.clip_ids) if c == clip_id]
                truth += visible_teams(path, sample.frames[idx], sample.boxes[idx])
                by_box += box_teams(path, sample.frames[idx], sample.boxes[idx])
            truth_a = np.array(truth, dtype=object)
            players = truth_a != "referee"
            named = np.array([naming.cluster_to_team[int(c)] for c in model.labels], dtype=object)
            crop_acc = float((named[players] == truth_a[players]).mean())
            box_acc = float((named == np.array(by_box, dtype=object)).mean())

            half = np.arange(len(embeddings)) % 2 == 0
            fitted = fit_team_model(embeddings[half], cfg)
            half_naming = name_clusters(
                fitted, roster, [c for c, h in zip(sample.crops, half, strict=True) if h],
                fitted.labels,
            )  # fmt: skip
            clusters, _ = fitted.predict(embeddings[~half])
            held = np.array([half_naming.cluster_to_team[int(c)] for c in clusters], dtype=object)
            rest = players[~half]
            held_acc = float((held[rest] == truth_a[~half][rest]).mean())
            correct_names = all(
                naming.cluster_to_team[c] == majority(truth_a[players & (model.labels == c)])
                for c in (0, 1)
            )
            rows.append((crop_acc, held_acc, correct_names))
            print(
                f"{pair:22s} {seed:4d} {len(sample):5d} {fit_s:6.2f} {model.meta['split']:>9s} "
                f"{crop_acc:8.3f} {box_acc:7.3f} {held_acc:8.3f} "
                f"{'right' if correct_names else 'WRONG':>8s} {naming.confidence:5.2f}"
            )
            if predict_set is None:
                predict_set = (model, embeddings)

    assert predict_set is not None
    model, embeddings = predict_set
    queries = embeddings[np.arange(200) % len(embeddings)]
    ours = time_call(lambda: model.predict(queries), 20)
    cold, warm = umap_transform_times(embeddings, queries, seed=0)
    print()
    print(f"{'predict 200 embeddings':44s} {'seconds':>9s}   (sample {embeddings.shape})")
    print(f"{'  TeamModel.predict (kNN, k=15)':44s} {ours:9.5f}")
    print(f"{'  umap.transform, first call (numba JIT)':44s} {cold:9.3f}")
    print(f"{'  umap.transform, warm':44s} {warm:9.4f}")

    rng = np.random.default_rng(0)
    big = rng.normal(0, 1, (2000, 768)).astype(np.float32)
    big[:1000] += 0.5 * rng.normal(0, 1, 768).astype(np.float32)
    start = time.perf_counter()
    big_model = fit_team_model(big)
    big_fit = time.perf_counter() - start
    big_queries = rng.normal(0, 1, (200, 768)).astype(np.float32)
    big_ours = time_call(lambda: big_model.predict(big_queries), 10)
    _, big_warm = umap_transform_times(big, big_queries, seed=0)
    print(f"{'SigLIP-sized sample (2000 x 768), fit':44s} {big_fit:9.2f}")
    print(f"{'  TeamModel.predict of 200':44s} {big_ours:9.5f}")
    print(f"{'  umap.transform of 200, warm':44s} {big_warm:9.4f}")

    accurate = all(a >= 0.98 and h >= 0.98 and n for a, h, n in rows)
    speedup = min(warm / ours, big_warm / big_ours)
    print(f"accuracy >= 0.98 and naming right in every game: {accurate}")
    verdict = "pass" if speedup >= 10 and accurate else "fail"
    print(f"result: predict_speedup={speedup:.1f} target=>=10 {verdict}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
