from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from hoopray.teams import (
    TeamModel,
    TeamModelError,
    TeamsConfig,
    fit_team_model,
    name_clusters,
    sample_game,
    save_game,
    teams_dir,
)
from tests.teams.common import BLUE, GREEN, PCA, accuracy, blobs, crop_sample, visible_team

# ------------------------------------------------------------------ fit and predict


@pytest.mark.slow
def test_umap_fit_separates_blobs_and_knn_predict_matches() -> None:
    values, truth = blobs(80, seed=3)
    model = fit_team_model(values)
    assert model.meta["projection"] == "umap"
    assert model.projection.shape == (80, 3)
    assert accuracy(model.labels, truth) == 1.0
    assert model.meta["knn_agreement"] == 1.0
    fresh, fresh_truth = blobs(200, seed=3)  # same centres, new noise
    clusters, confidence = model.predict(fresh[:200] + 0.01)
    assert clusters.dtype == np.int8 and confidence.dtype == np.float32
    agree = (clusters == model.labels[0]) == (fresh_truth == truth[0])
    assert agree.all()
    assert confidence.min() > 0.8
    again = fit_team_model(values)
    np.testing.assert_array_equal(again.labels, model.labels)
    np.testing.assert_allclose(again.projection, model.projection)


@pytest.mark.parametrize("count", [2, 3, 5, 15])
def test_few_crops_fall_back_to_pca_and_record_it(count: int) -> None:
    values, truth = blobs(count, seed=1)
    model = fit_team_model(values, TeamsConfig(umap_neighbors=15))
    assert model.meta["projection"] == "pca"
    assert "PCA used instead of UMAP" in model.meta["fallback_reason"]
    assert model.projection.shape == (count, 3)
    assert accuracy(model.labels, truth) == 1.0
    clusters, _ = model.predict(values)
    assert accuracy(clusters, truth) == 1.0


@pytest.mark.parametrize(
    ("values", "error", "match"),
    [
        (np.zeros((0, 8), np.float32), TeamModelError, "at least 2"),
        (np.ones((1, 8), np.float32), TeamModelError, "at least 2"),
        (np.ones((6, 8), np.float32), TeamModelError, "do not split"),
        (np.full((4, 8), np.nan, np.float32), ValueError, "NaN"),
        (np.ones(8, np.float32), ValueError, "shape"),
    ],
)
def test_fit_errors(values: np.ndarray, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        fit_team_model(values, PCA)


@pytest.mark.parametrize(
    ("crops", "rows", "error", "match"),
    [
        (0, 0, TeamModelError, "0 player crops .*game 'g'.*3 frames sampled"),
        (1, 1, TeamModelError, "1 player crops"),
        (4, 3, ValueError, "4 crops but 3 embeddings"),
    ],
)
def test_fit_errors_with_a_sample(
    crops: int, rows: int, error: type[Exception], match: str
) -> None:
    sample = crop_sample(crops)
    sample.frames_sampled = 3
    values, _ = blobs(rows, dim=4)
    with pytest.raises(error, match=match):
        fit_team_model(values, PCA, sample=sample, meta={"game_id": "g"})


def test_fit_with_a_sample_records_its_colours_counts_and_meta() -> None:
    values, _ = blobs(12, dim=4)
    sample = crop_sample(12)
    sample.frames_sampled, sample.players_seen, sample.embedder = 5, 20, "Colour"
    sample.problems = [("clip-9", "broken")]
    model = fit_team_model(values, PCA, sample=sample, meta={"game_id": "g", "clips": ["a"]})
    assert model.cluster_lab is not None and model.cluster_lab.shape == (2, 3)
    assert np.isfinite(model.cluster_lab).all()
    assert model.meta["frames_sampled"] == 5 and model.meta["players_seen"] == 20
    assert model.meta["problems"] == [["clip-9", "broken"]]
    assert model.meta["embedder"] == "Colour"
    assert (model.meta["game_id"], model.meta["clips"]) == ("g", ["a"])
    assert fit_team_model(values, PCA).cluster_lab is None  # no sample: no colours


def test_predict_empty_wrong_dim_and_zero_rows() -> None:
    values, _ = blobs(20, dim=8)
    model = fit_team_model(values, TeamsConfig(umap_neighbors=10_000, knn_k=5))
    clusters, confidence = model.predict(np.zeros((0, 8), np.float32))
    assert clusters.shape == confidence.shape == (0,)
    with pytest.raises(ValueError, match=r"\(N, 8\)"):
        model.predict(np.zeros((2, 9), np.float32))
    clusters, confidence = model.predict(np.vstack([values[:3], np.zeros((1, 8))]))
    assert confidence[3] == 0.0
    assert np.isin(clusters, (0, 1)).all()
    assert ((confidence >= 0) & (confidence <= 1)).all()


def test_predict_confidence_is_the_vote_margin_and_k_is_capped() -> None:
    values = np.array(
        [[1, 0], [1, 0.1], [1, 0.2], [1, 0.3], [0, 1], [0.1, 1], [0.2, 1]], np.float32
    )
    model = fit_team_model(values, TeamsConfig(umap_neighbors=10_000, knn_k=5))
    assert model.knn_k == 3  # the smaller cluster's size
    first = model.labels[0]
    clusters, confidence = model.predict(np.array([[1, 0.05], [0.05, 1]], np.float32))
    assert clusters.tolist() == [first, 1 - first]
    np.testing.assert_allclose(confidence, [1.0, 1.0])
    model.knn_k = 7
    clusters, confidence = model.predict(np.array([[1, 0.05], [0.05, 1]], np.float32))
    assert clusters.tolist() == [first, first]  # 4 vs 3 of all 7 neighbours
    np.testing.assert_allclose(confidence, [1 / 7, 1 / 7])


# ------------------------------------------------------------------ storage


def test_uri_model_outside_the_trusted_root_is_refused(mem_root: str) -> None:
    values, _ = blobs(6, dim=4)
    model = fit_team_model(values, PCA)
    inside = model.save(teams_dir(mem_root, "game"))
    elsewhere = model.save(mem_root + "-other/game/teams")  # shares the root's prefix
    assert TeamModel.load(inside, trusted_root=mem_root + "/").labels.tolist() == (
        model.labels.tolist()
    )
    for directory, root in [
        (elsewhere, mem_root),
        (inside, "/" + mem_root.split("://", 1)[1]),  # a local root never trusts a URI
        (mem_root + "/../out-other/game/teams", mem_root),
        (inside, inside),
    ]:
        with pytest.raises(TeamModelError, match="outside"):
            TeamModel.load(directory, trusted_root=root)


def test_load_refuses_outside_trusted_root(tmp_path: Path) -> None:
    values, _ = blobs(6, dim=4)
    directory = fit_team_model(values, PCA).save(tmp_path / "elsewhere")
    assert directory == str(tmp_path / "elsewhere")
    with pytest.raises(TeamModelError, match="outside"):
        TeamModel.load(directory, trusted_root=tmp_path / "out")
    link = tmp_path / "out" / "game" / "teams"
    link.parent.mkdir(parents=True)
    link.symlink_to(directory)
    with pytest.raises(TeamModelError, match="outside"):
        TeamModel.load(link, trusted_root=tmp_path / "out")


@pytest.mark.parametrize("damage", ["no_model", "no_meta", "format", "pickled", "shapes"])
def test_load_errors(tmp_path: Path, damage: str) -> None:
    values, _ = blobs(6, dim=4)
    directory = Path(fit_team_model(values, PCA).save(tmp_path / "teams"))
    if damage == "no_model":
        (directory / "model.npz").unlink()
    elif damage == "no_meta":
        (directory / "model.json").unlink()
    elif damage == "format":
        (directory / "model.json").write_text(json.dumps({"format": "other", "knn_k": 3}))
    elif damage == "pickled":
        arrays = dict(np.load(directory / "model.npz"))
        arrays["labels"] = np.array([object()] * 6, dtype=object)
        with open(directory / "model.npz", "wb") as handle:
            np.savez(handle, **arrays)
    elif damage == "shapes":
        arrays = dict(np.load(directory / "model.npz"))
        arrays["labels"] = arrays["labels"][:3]
        with open(directory / "model.npz", "wb") as handle:
            np.savez(handle, **arrays)
    with pytest.raises(TeamModelError):
        TeamModel.load(directory)


# ------------------------------------------------------------------ synthetic games (pass 1)

PAIRS = {"default": ("#1d428a", "#ce1141"), "dark-blue-vs-dark-green": (BLUE, GREEN)}


@pytest.mark.slow
@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_games_split_into_named_teams(game_maker, seed: int, pair: str) -> None:
    from hoopray.models.base import Models
    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.roster import load_roster

    game, clips = game_maker(
        f"acc-{pair}-{seed}", seed=seed, clips=3, seconds=6.0, colours=PAIRS[pair]
    )
    models = Models(detector=game_maker.world.detector(), embedder=ColourHistogramEmbedder())
    cfg = TeamsConfig(stride_seconds=0.5)
    sample, embeddings = sample_game(clips, models, cfg)
    model = fit_team_model(embeddings, cfg, sample=sample)
    assert set(np.unique(sample.frames % 2).tolist()) == {0}  # stride round(4 fps * 0.5 s)
    assert model.meta["projection"] == "umap"
    naming = name_clusters(model, load_roster(game.roster_path))  # colours kept in the model

    truth = []
    for clip_id, label_path in zip(game.clip_ids, game.labels, strict=True):
        rows = [i for i, c in enumerate(sample.clip_ids) if c == clip_id]
        truth += visible_team(label_path, sample.frames[rows], sample.boxes[rows], 0.4)
    truth = np.array(truth, dtype=object)
    players = truth != "referee"
    predicted = np.array([naming.cluster_to_team[int(c)] for c in model.labels], dtype=object)
    share = float((predicted[players] == truth[players]).mean())
    assert share >= 0.98, (share, model.meta, naming.evidence)
    for cluster in (0, 1):  # both clusters named after the team they mostly hold
        members = truth[players & (model.labels == cluster)]
        names, counts = np.unique(members, return_counts=True)
        assert naming.cluster_to_team[cluster] == names[np.argmax(counts)]
    assert naming.confidence > 0.5


@pytest.mark.slow
def test_too_few_crops_for_umap_fall_back_to_pca(game_maker) -> None:
    from hoopray.models.base import Models
    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.roster import load_roster

    game, clips = game_maker("edge-few", seed=8, players_per_team=1, seconds=1.0)
    models = Models(detector=game_maker.world.detector(), embedder=ColourHistogramEmbedder())
    cfg = TeamsConfig(max_overlap=1.0)  # keep both crops, however close the players stand
    sample, embeddings = sample_game(clips, models, cfg)
    model = fit_team_model(embeddings, cfg, sample=sample)
    assert len(sample) == 2  # one frame, two players
    assert model.meta["projection"] == "pca" and "fallback_reason" in model.meta
    assert sorted(model.labels.tolist()) == [0, 1]
    naming = name_clusters(model, load_roster(game.roster_path), sample.crops, model.labels)
    truth = visible_team(game.labels[0], sample.frames, sample.boxes, 0.4)
    assert [naming.cluster_to_team[int(c)] for c in model.labels] == truth


@pytest.mark.slow
def test_fit_through_the_tiny_siglip_adapter(game_maker, tiny_siglip_dir, tmp_path) -> None:
    from hoopray.models.base import Models
    from hoopray.models.siglip import SiglipEmbedder
    from hoopray.roster import load_roster

    game, clips = game_maker("siglip", seed=3, seconds=4.0)
    embedder = SiglipEmbedder(model=str(tiny_siglip_dir), device="cpu")
    models = Models(detector=game_maker.world.detector(), embedder=embedder)
    cfg = TeamsConfig(stride_seconds=0.5)
    sample, embeddings = sample_game(clips, models, cfg)
    model = fit_team_model(embeddings, cfg, sample=sample)
    assert model.dim == embedder.dim and len(model.labels) == len(sample)
    assert model.meta["embedder"] == "SiglipEmbedder"
    naming = name_clusters(model, load_roster(game.roster_path), sample.crops, model.labels)
    directory = tmp_path / "out" / game.game_id / "teams"
    save_game(directory, model, sample, naming)
    loaded = TeamModel.load(directory, trusted_root=tmp_path / "out")
    clusters, confidence = loaded.predict(embedder.embed(sample.crops[:7]))
    assert clusters.shape == confidence.shape == (min(7, len(sample)),)
