from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from hoopray import store, types
from hoopray.roster import Roster, TeamRoster
from hoopray.teams import (
    CropSample,
    TeamModel,
    TeamModelError,
    TeamNaming,
    TeamsConfig,
    confirmed_numbers,
    fit_team_model,
    hex_to_lab,
    load_naming,
    load_sample,
    model_present,
    name_clusters,
    refine_naming,
    save_game,
    save_naming,
    save_sample,
    teams_dir,
    vote_team,
)
from hoopray.types import ClipRef

CONF = Path(__file__).resolve().parents[1] / "conf" / "teams" / "default.yaml"
BLUE, GREEN = "#1d2a5a", "#1d4a2a"
NO_UMAP = 10_000  # umap n_neighbors so high that the PCA fallback is used (fast tests)


def _blobs(n: int, dim: int = 16, seed: int = 0, gap: float = 4.0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs and the true blob of each row."""
    rng = np.random.default_rng(seed)
    truth = np.arange(n) % 2
    centres = rng.normal(0, 1, (2, dim)) * gap
    return (centres[truth] + rng.normal(0, 1, (n, dim))).astype(np.float32), truth


def _accuracy(predicted: np.ndarray, truth: np.ndarray) -> float:
    """Accuracy up to swapping the two cluster ids."""
    same = float((predicted == truth).mean())
    return max(same, 1 - same)


def _roster(colours: tuple[str, str] = (BLUE, GREEN)) -> Roster:
    return Roster(
        (
            TeamRoster("Blue", colours[0], {"1": "a1", "7": "a7", "23": "a23", "5": "a5"}),
            TeamRoster("Green", colours[1], {"2": "b2", "8": "b8", "30": "b30", "5": "b5"}),
        )
    )


def _patch(hex_colour: str, seed: int, h: int = 24, w: int = 12) -> np.ndarray:
    rgb = np.array([int(hex_colour[i : i + 2], 16) for i in (1, 3, 5)], dtype=np.float64)
    rng = np.random.default_rng(seed)
    image = rgb + rng.normal(0, 6, (h, w, 3))
    image[: h // 5] = (200, 150, 120)  # a strip of skin-like pixels
    return np.clip(image, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------ fit and predict


@pytest.mark.slow
def test_umap_fit_separates_blobs_and_knn_predict_matches() -> None:
    values, truth = _blobs(80, seed=3)
    model = fit_team_model(values, seed=0)
    assert model.meta["projection"] == "umap"
    assert model.projection.shape == (80, 3)
    assert _accuracy(model.labels, truth) == 1.0
    assert model.meta["knn_agreement"] == 1.0
    fresh, fresh_truth = _blobs(200, seed=3)  # same centres, new noise
    clusters, confidence = model.predict(fresh[:200] + 0.01)
    assert clusters.dtype == np.int8 and confidence.dtype == np.float32
    agree = (clusters == model.labels[0]) == (fresh_truth == truth[0])
    assert agree.all()
    assert confidence.min() > 0.8
    again = fit_team_model(values, seed=0)
    np.testing.assert_array_equal(again.labels, model.labels)
    np.testing.assert_allclose(again.projection, model.projection)


@pytest.mark.parametrize("count", [2, 3, 5, 15])
def test_few_crops_fall_back_to_pca_and_record_it(count: int) -> None:
    values, truth = _blobs(count, seed=1)
    model = fit_team_model(values, seed=0, n_neighbors=15)
    assert model.meta["projection"] == "pca"
    assert "PCA used instead of UMAP" in model.meta["fallback_reason"]
    assert model.projection.shape == (count, 3)
    assert _accuracy(model.labels, truth) == 1.0
    clusters, _ = model.predict(values)
    assert _accuracy(clusters, truth) == 1.0


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
        fit_team_model(values, n_neighbors=NO_UMAP)


def test_predict_empty_wrong_dim_and_zero_rows() -> None:
    values, _ = _blobs(20, dim=8)
    model = fit_team_model(values, n_neighbors=NO_UMAP, knn_k=5)
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
    model = fit_team_model(values, n_neighbors=NO_UMAP, knn_k=5)
    assert model.knn_k == 3  # the smaller cluster's size
    first = model.labels[0]
    clusters, confidence = model.predict(np.array([[1, 0.05], [0.05, 1]], np.float32))
    assert clusters.tolist() == [first, 1 - first]
    np.testing.assert_allclose(confidence, [1.0, 1.0])
    model.knn_k = 7
    clusters, confidence = model.predict(np.array([[1, 0.05], [0.05, 1]], np.float32))
    assert clusters.tolist() == [first, first]  # 4 vs 3 of all 7 neighbours
    np.testing.assert_allclose(confidence, [1 / 7, 1 / 7])


# ------------------------------------------------------------------ voting along a track


@pytest.mark.parametrize(
    ("clusters", "confidences", "expected"),
    [
        ([], [], (None, 0.0)),
        ([1], [0.2], (1, 0.2)),
        ([0, 0, 0], [0.9, 0.9, 0.9], (0, 0.9)),
        ([0, 0, 1], [0.9, 0.9, 0.9], (0, 0.3)),
        ([0, 1, 1], [0.9, 0.2, 0.2], (0, (0.9 - 0.4) / 3)),
        ([0, 1], [0.5, 0.5], (None, 0.0)),
        ([0, 1, 1], [0.0, 0.0, 0.0], (1, 0.0)),
        ([0, 1], [0.0, 0.0], (None, 0.0)),
    ],
)
def test_vote_team(clusters: list[int], confidences: list[float], expected: tuple) -> None:
    cluster, confidence = vote_team(np.array(clusters, np.int8), np.array(confidences))
    assert cluster == expected[0]
    assert confidence == pytest.approx(expected[1])


@pytest.mark.parametrize(
    ("clusters", "confidences", "match"),
    [
        ([0, 1], [0.5], "confidences"),
        ([0, 2], [0.5, 0.5], "0 or 1"),
        ([0], [1.5], r"\[0, 1\]"),
        ([0], [np.nan], r"\[0, 1\]"),
    ],
)
def test_vote_team_errors(clusters: list[int], confidences: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        vote_team(clusters, confidences)


# ------------------------------------------------------------------ naming


def _naming_case(
    colour_order: tuple[str, str] | None, confirmed: list[tuple[int, str]] | None
) -> TeamNaming:
    crops, clusters = [], []
    if colour_order is not None:
        for cluster, hex_colour in enumerate(colour_order):
            crops += [_patch(hex_colour, seed=cluster * 10 + i) for i in range(6)]
            clusters += [cluster] * 6
    return name_clusters(
        None,
        _roster(),
        crops if colour_order else None,
        np.array(clusters) if colour_order else None,
        confirmed,
    )


@pytest.mark.parametrize(
    ("colours", "confirmed", "mapping", "conf_range"),
    [
        (None, None, {0: "Blue", 1: "Green"}, (0.0, 0.0)),  # no evidence at all
        ((BLUE, GREEN), None, {0: "Blue", 1: "Green"}, (0.3, 1.0)),
        ((GREEN, BLUE), None, {0: "Green", 1: "Blue"}, (0.3, 1.0)),
        (None, [(0, "2"), (0, "8"), (1, "23")], {0: "Green", 1: "Blue"}, (0.7, 0.8)),
        (None, [(0, "5"), (1, "99")], {0: "Blue", 1: "Green"}, (0.0, 0.0)),  # no evidence
        ((BLUE, GREEN), [(0, "7"), (1, "30")], {0: "Blue", 1: "Green"}, (0.6, 1.0)),
        # numbers outweigh a (wrong) colour call: lower confidence
        (
            (GREEN, BLUE),
            [(0, "7"), (0, "1"), (0, "23"), (1, "8")],
            {0: "Blue", 1: "Green"},
            (0.05, 0.6),
        ),
    ],
)
def test_name_clusters(
    colours: tuple[str, str] | None,
    confirmed: list[tuple[int, str]] | None,
    mapping: dict[int, str],
    conf_range: tuple[float, float],
) -> None:
    naming = _naming_case(colours, confirmed)
    assert naming.cluster_to_team == mapping
    assert conf_range[0] <= naming.confidence <= conf_range[1]
    evidence = naming.evidence
    assert (evidence["colour"] is None) == (colours is None)
    assert evidence["mapping"] == ("identity" if mapping[0] == "Blue" else "swapped")
    json.dumps(evidence)  # serialisable as it is
    if confirmed:
        counts = evidence["numbers"]["counts"]
        assert sum(sum(v.values()) for v in counts.values()) == len(confirmed)


def test_name_clusters_counts_shared_numbers_as_no_evidence() -> None:
    naming = _naming_case(None, [(0, "5"), (1, "5"), (0, "77")])
    numbers = naming.evidence["numbers"]
    assert numbers["counts"]["0"] == {"a_only": 0, "b_only": 0, "both": 1, "neither": 1}
    assert numbers["identity_votes"] == numbers["swapped_votes"] == 0


def test_name_clusters_uses_the_models_colours_without_crops() -> None:
    values, _ = _blobs(10, dim=4)
    model = fit_team_model(values, n_neighbors=NO_UMAP)
    model.cluster_lab = np.stack([hex_to_lab(GREEN), hex_to_lab(BLUE)])
    naming = name_clusters(model, _roster())
    assert naming.cluster_to_team == {0: "Green", 1: "Blue"}
    assert naming.confidence > 0.9


@pytest.mark.parametrize(
    ("override", "result"),
    [
        ({0: "Green", 1: "Blue"}, {0: "Green", 1: "Blue"}),
        ({"0": "Blue", "1": "Green"}, {0: "Blue", 1: "Green"}),
        ({0: "Blue"}, ValueError),
        ({0: "Blue", 1: "Blue"}, ValueError),
        ({0: "Blue", 1: "Red"}, ValueError),
        ({"x": "Blue", 1: "Green"}, ValueError),
    ],
)
def test_name_clusters_override(override: dict, result: dict | type) -> None:
    crops = [_patch(BLUE, 0), _patch(GREEN, 1)]
    if isinstance(result, dict):
        naming = name_clusters(None, _roster(), crops, [0, 1], override=override)
        assert naming.cluster_to_team == result
        assert naming.confidence == 1.0
        assert naming.evidence["mapping"] == "override"
        assert naming.evidence["automatic"] == {"0": "Blue", "1": "Green"}
    else:
        with pytest.raises(result):
            name_clusters(None, _roster(), crops, [0, 1], override=override)


def test_identical_roster_colours_give_no_colour_confidence() -> None:
    crops = [_patch(BLUE, 0), _patch(GREEN, 1)]
    naming = name_clusters(None, _roster((BLUE, BLUE)), crops, [0, 1])
    assert naming.confidence == 0.0
    assert naming.evidence["colour"]["margin"] == 0.0


# ------------------------------------------------------------------ refining with numbers

BLUE_NUMBERS = [(0, "1"), (0, "7"), (0, "23"), (1, "2"), (1, "8"), (1, "30")]


def _coloured_model(first: str, second: str) -> TeamModel:
    values, _ = _blobs(10, dim=4)
    model = fit_team_model(values, n_neighbors=NO_UMAP)
    model.cluster_lab = np.stack([hex_to_lab(first), hex_to_lab(second)])
    return model


def test_refine_naming_changes_a_wrong_colour_call() -> None:
    model = _coloured_model(GREEN, BLUE)  # colours say cluster 0 is Green ...
    colours = name_clusters(model, _roster())
    assert colours.cluster_to_team == {0: "Green", 1: "Blue"}
    refined, changed = refine_naming(model, _roster(), colours, BLUE_NUMBERS)  # ... numbers not
    assert changed
    assert refined is not None and refined.cluster_to_team == {0: "Blue", 1: "Green"}
    assert refined.evidence["source"] == "colours+numbers"
    assert refined.evidence["numbers"]["identity_votes"] == 6
    fresh, changed = refine_naming(model, _roster(), None, BLUE_NUMBERS)
    assert changed and fresh is not None and fresh.cluster_to_team == refined.cluster_to_team
    forced, _ = refine_naming(
        model, _roster(), colours, BLUE_NUMBERS, override={0: "Green", 1: "Blue"}
    )
    assert forced is not None and forced.cluster_to_team == {0: "Green", 1: "Blue"}


def test_refine_naming_that_agrees_is_no_change() -> None:
    model = _coloured_model(BLUE, GREEN)
    colours = name_clusters(model, _roster())
    refined, changed = refine_naming(model, _roster(), colours, BLUE_NUMBERS)
    assert not changed
    assert refined is not None and refined is not colours
    assert refined.cluster_to_team == colours.cluster_to_team
    assert refined.evidence["source"] == "colours+numbers"


@pytest.mark.parametrize("missing", ["roster", "model", "confirmed"])
def test_refine_naming_without_roster_model_or_numbers_keeps_the_naming(missing: str) -> None:
    model = _coloured_model(GREEN, BLUE)
    naming = name_clusters(model, _roster())
    refined, changed = refine_naming(
        None if missing == "model" else model,
        None if missing == "roster" else _roster(),
        naming,
        [] if missing == "confirmed" else BLUE_NUMBERS,
    )
    assert refined is naming and not changed
    assert refine_naming(model, None, None, BLUE_NUMBERS) == (None, False)


def _tracks_table(rows: list[tuple[str, int | None, str | None]]) -> pa.Table:
    schema = types.SCHEMAS["identities/tracks"]
    full = [
        {
            "track_id": i,
            "first_frame": 0,
            "last_frame": 9,
            "team_cluster": cluster,
            "team_name": None,
            "team_confidence": None,
            "number": number,
            "player_name": None,
            "status": status,
            "confirmed_at_frame": 3 if status == "confirmed" else None,
            "reads_seen": 3,
            "reads_agreeing": 3,
        }
        for i, (status, cluster, number) in enumerate(rows)
    ]
    return pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in full], schema)


def test_confirmed_numbers() -> None:
    first = _tracks_table(
        [
            ("confirmed", 0, "23"),
            ("confirmed", None, "7"),  # no team cluster
            ("ambiguous", 1, "8"),
            ("unread", 1, None),
            ("confirmed", 1, None),
            ("confirmed", 1, "00"),
        ]
    )
    second = _tracks_table([("confirmed", 1, "30")])
    empty = _tracks_table([])
    assert confirmed_numbers([first, empty, second]) == [(0, "23"), (1, "00"), (1, "30")]
    assert confirmed_numbers([types.Identities(second, pa.table({}))]) == [(1, "30")]
    assert confirmed_numbers([]) == []


# ------------------------------------------------------------------ storage and diagnostics


def _sample(n: int) -> CropSample:
    rng = np.random.default_rng(0)
    return CropSample(
        crops=[_patch(BLUE if i % 2 else GREEN, i, h=int(rng.integers(10, 40))) for i in range(n)],
        clip_ids=[f"clip-{i % 3}" for i in range(n)],
        frames=np.arange(n, dtype=np.int32) * 30,
        boxes=np.tile(np.array([[10, 20, 60, 140]], np.float32), (n, 1)),
    )


@pytest.fixture
def mem_root() -> Iterator[str]:
    """A fresh output root on fsspec's in-memory filesystem, served as ``mem://`` URIs
    (not local disk: every access goes through ``pyarrow.fs``)."""
    import fsspec

    store.register_filesystem("mem", fsspec.filesystem("memory"))
    root = f"mem://bucket/{uuid.uuid4().hex}/out"
    yield root
    store.delete_tree(root)


@pytest.fixture(params=["local", "mem"])
def out_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An output root on local disk, then on the in-memory store."""
    if request.param == "local":
        return str(tmp_path / "out")
    return request.getfixturevalue("mem_root")


def test_save_load_round_trip_and_diagnostics(out_root: str) -> None:
    values, _ = _blobs(30, dim=8)
    model = fit_team_model(values, n_neighbors=NO_UMAP)
    model.cluster_lab = np.stack([hex_to_lab(BLUE), hex_to_lab(GREEN)])
    sample = _sample(30)
    naming = TeamNaming({0: "Blue", 1: "Green"}, 0.7, {"mapping": "identity"})
    directory = teams_dir(out_root, "game-001")
    assert directory == store.join(out_root, "game-001", "teams")
    assert not model_present(out_root, "game-001")
    paths = save_game(directory, model, sample, naming)
    assert model_present(out_root, "game-001")
    assert all(isinstance(p, str) and p.startswith(directory + "/") for p in paths.values())

    loaded = TeamModel.load(directory, trusted_root=out_root)
    np.testing.assert_array_equal(loaded.labels, model.labels)
    np.testing.assert_array_equal(loaded.cluster_lab, model.cluster_lab)
    assert loaded.meta == json.loads(json.dumps(model.meta))
    probe, _ = _blobs(50, dim=8, seed=9)
    for got, want in zip(loaded.predict(probe), model.predict(probe), strict=True):
        np.testing.assert_array_equal(got, want)
    assert load_naming(directory) == naming
    assert load_naming(out_root) is None

    for key in ("scatter", "contact_sheet"):
        assert store.read_bytes(paths[key])[:8] == b"\x89PNG\r\n\x1a\n"
    table = pq.read_table(pa.BufferReader(store.read_bytes(paths["crops"])))
    assert table.schema.equals(types.TEAM_CROPS, check_metadata=False)
    assert table.column("cluster").to_pylist() == model.labels.tolist()
    names = {e.name for e in store.list_dir(directory)}
    assert names == {
        "model.npz",
        "model.json",
        "naming.json",
        "crops.parquet",
        "scatter.png",
        "contact_sheet.png",
    }  # no temporary files left


def test_uri_model_outside_the_trusted_root_is_refused(mem_root: str) -> None:
    values, _ = _blobs(6, dim=4)
    model = fit_team_model(values, n_neighbors=NO_UMAP)
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


def test_sample_round_trip(out_root: str) -> None:
    sample = _sample(7)
    sample.frames_sampled, sample.players_seen = 12, 40
    sample.problems = [("clip-9", 'broken: \u00e9 "quoted"')]
    embeddings = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float64)
    directory = teams_dir(out_root, "game-001")
    location = save_sample(directory, sample, embeddings)
    assert location == store.join(directory, "sample.npz")
    with np.load(io.BytesIO(store.read_bytes(location)), allow_pickle=False) as data:
        assert data["clip_ids"].dtype.kind == "U"  # nothing pickled
    loaded, got = load_sample(directory)
    assert got.dtype == np.float32 and got.shape == (7, 5)
    np.testing.assert_allclose(got, embeddings.astype(np.float32))
    assert loaded.clip_ids == sample.clip_ids
    np.testing.assert_array_equal(loaded.frames, sample.frames)
    assert loaded.frames.dtype == np.int32
    np.testing.assert_array_equal(loaded.boxes, sample.boxes)
    assert len(loaded) == 7
    for a, b in zip(loaded.crops, sample.crops, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (loaded.frames_sampled, loaded.players_seen) == (12, 40)
    assert loaded.problems == sample.problems


def test_empty_sample_round_trip_and_errors(out_root: str) -> None:
    empty = CropSample(frames_sampled=3, problems=[("c", "no players")])
    directory = teams_dir(out_root, "game-002")
    save_sample(directory, empty, np.zeros((0, 8), np.float32))
    loaded, embeddings = load_sample(directory)
    assert len(loaded) == 0 and embeddings.shape == (0, 8) and loaded.frames_sampled == 3
    assert loaded.problems == [("c", "no players")]
    with pytest.raises(ValueError):
        save_sample(directory, _sample(3), np.zeros((2, 8), np.float32))
    with pytest.raises(TeamModelError, match="crop sample"):
        load_sample(teams_dir(out_root, "game-404"))
    store.write_bytes(store.join(directory, "sample.npz"), b"not an npz")
    with pytest.raises(TeamModelError):
        load_sample(directory)


def test_naming_round_trip_on_the_memory_store(mem_root: str) -> None:
    naming = TeamNaming({1: "Green", 0: "Blue"}, 0.25, {"score": 0.5})
    directory = teams_dir(mem_root, "g")
    assert load_naming(directory) is None
    assert save_naming(naming, directory) == store.join(directory, "naming.json")
    loaded = load_naming(directory)
    assert loaded is not None and loaded.cluster_to_team == {0: "Blue", 1: "Green"}


def test_load_refuses_outside_trusted_root(tmp_path: Path) -> None:
    values, _ = _blobs(6, dim=4)
    directory = fit_team_model(values, n_neighbors=NO_UMAP).save(tmp_path / "elsewhere")
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
    values, _ = _blobs(6, dim=4)
    directory = Path(fit_team_model(values, n_neighbors=NO_UMAP).save(tmp_path / "teams"))
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


def test_naming_round_trip_keeps_int_keys(tmp_path: Path) -> None:
    naming = TeamNaming({1: "Green", 0: "Blue"}, 0.25, {"score": 0.5})
    save_naming(naming, tmp_path)
    loaded = load_naming(tmp_path)
    assert loaded is not None and loaded.cluster_to_team == {0: "Blue", 1: "Green"}


# ------------------------------------------------------------------ config


def test_default_config_builds() -> None:
    cfg = TeamsConfig(**yaml.safe_load(CONF.read_text()))
    assert cfg.stride_seconds == 1.0 and cfg.scale == 0.4 and cfg.umap_components == 3
    assert cfg.override is None


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({}, True),
        ({"override": {"0": "A", "1": "B"}}, True),
        ({"stride_seconds": 0}, False),
        ({"scale": 1.5}, False),
        ({"knn_k": 0}, False),
        ({"umap_neighbors": 1}, False),
        ({"refit_fraction": 0.0}, True),
        ({"refit_fraction": 1.5}, False),
        ({"override": {0: "A"}}, False),
    ],
)
def test_config_validation(changes: dict, ok: bool) -> None:
    if ok:
        cfg = TeamsConfig(**changes)
        if cfg.override is not None:
            assert cfg.override == {0: "A", 1: "B"}
    else:
        with pytest.raises(ValueError):
            TeamsConfig(**changes)


# ------------------------------------------------------------------ sampled frames


def _counting_clip(path: Path) -> Path:
    """10 frames at 4 fps; frame i is filled with the value 20 * i."""
    from hoopray.video import H264Writer

    with H264Writer(path, 32, 24, 4, crf=0) as writer:
        for i in range(10):
            writer.write(np.full((24, 32, 3), 20 * i, np.uint8))
    return path


@pytest.fixture(scope="module")
def counting_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _counting_clip(tmp_path_factory.mktemp("sampled") / "clip.mp4")


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])  # Matroska headers give no frame count
def test_sampled_frames_equal_decoding_through(tmp_path: Path, suffix: str) -> None:
    from hoopray import video
    from hoopray.teams import sampled_frames

    clip = _counting_clip(tmp_path / f"clip{suffix}")
    got = [(i, int(f.mean())) for i, f in sampled_frames(clip, 1.0)]
    want = [(i, int(f.mean())) for i, f in video.iter_frames(clip, stride=4)]
    assert got == want and [i for i, _ in got] == [0, 4, 8]


def test_sample_indices() -> None:
    from hoopray.teams import sample_indices

    assert list(sample_indices(10, 4.0, 1.0)) == [0, 4, 8]
    assert list(sample_indices(5, 30.0, 0.01)) == [0, 1, 2, 3, 4]  # stride at least 1
    assert list(sample_indices(0, 30.0, 1.0)) == []


def test_sampled_frames_seek_with_read_frames_at(
    counting_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hoopray import video
    from hoopray.teams import sampled_frames

    asked: list[list[int]] = []

    def read_frames_at(path: str | Path, indices):  # a stand-in with the same contract
        asked.append(list(indices))
        wanted = set(asked[-1])
        for index, frame in video.iter_frames(path):
            if index in wanted:
                yield index, frame

    monkeypatch.setattr(video, "read_frames_at", read_frames_at, raising=False)
    seeked = [(i, int(f.mean())) for i, f in sampled_frames(str(counting_clip), 1.0)]
    assert asked == [[0, 4, 8]]
    monkeypatch.delattr(video, "read_frames_at", raising=False)
    decoded = [(i, int(f.mean())) for i, f in sampled_frames(str(counting_clip), 1.0)]
    assert seeked == decoded
    assert [i for i, _ in decoded] == [0, 4, 8]
    assert all(abs(mean - 20 * i) <= 3 for i, mean in decoded)


# ------------------------------------------------------------------ synthetic games (pass 1)

SIZE = (640, 360)
PAIRS = {"default": ("#1d428a", "#ce1141"), "dark-blue-vs-dark-green": (BLUE, GREEN)}


@pytest.fixture(scope="module")
def game_maker(tmp_path_factory: pytest.TempPathFactory):
    """Builds synthetic games under one temporary root; returns (game, clip refs, world)."""
    from hoopray.models.replay import ReplayWorld
    from hoopray.synthetic import make_game

    root = tmp_path_factory.mktemp("team-games")
    world = ReplayWorld(root / "labels")

    def make(game_id: str, **kwargs: object) -> tuple[object, list[ClipRef]]:
        options = {"clips": 1, "seconds": 2.0, "fps": 4, "size": SIZE, **kwargs}
        game = make_game(root / "games", root / "labels", game_id, **options)
        world._paths = None  # new label files: let the replay world index them again
        clips = [
            ClipRef(game_id, clip_id, path, "test")
            for clip_id, path in zip(game.clip_ids, game.clips, strict=True)
        ]
        return game, clips

    make.world = world
    return make


def _visible_team(label_path: Path, frames: np.ndarray, boxes: np.ndarray, scale: float) -> list:
    """Per crop: the team of the player whose visible mask covers most of the central crop,
    or "referee" when a referee does (occluders make the box's own player a poor truth)."""
    from hoopray.geometry import box_pixels, clip_boxes, shrink_boxes
    from hoopray.masks import rle_decode

    labels = pq.read_table(label_path).to_pylist()
    central = box_pixels(clip_boxes(shrink_boxes(boxes, scale), SIZE), SIZE)
    owners = []
    for frame, (c1, r1, c2, r2) in zip(frames.tolist(), central, strict=True):
        best, cover = None, 0
        for row in labels:
            if row["frame"] != frame or row["role"] not in ("player", "referee"):
                continue
            mask = rle_decode(row["mask_rle"], SIZE[1], SIZE[0])
            pixels = int(mask[r1:r2, c1:c2].sum())
            if pixels > cover:
                best = row["team"] if row["role"] == "player" else "referee"
                cover = pixels
        owners.append(best)
    return owners


@pytest.mark.slow
@pytest.mark.parametrize("pair", sorted(PAIRS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_synthetic_games_split_into_named_teams(game_maker, seed: int, pair: str) -> None:
    from hoopray.models.base import Models
    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.roster import load_roster
    from hoopray.teams import fit_game

    game, clips = game_maker(
        f"acc-{pair}-{seed}", seed=seed, clips=3, seconds=6.0, colours=PAIRS[pair]
    )
    models = Models(detector=game_maker.world.detector(), embedder=ColourHistogramEmbedder())
    model, sample = fit_game(clips, models, TeamsConfig(stride_seconds=0.5))
    assert set(np.unique(sample.frames % 2).tolist()) == {0}  # stride round(4 fps * 0.5 s)
    assert model.meta["projection"] == "umap"
    naming = name_clusters(model, load_roster(game.roster_path))  # colours kept in the model

    truth = []
    for clip_id, label_path in zip(game.clip_ids, game.labels, strict=True):
        rows = [i for i, c in enumerate(sample.clip_ids) if c == clip_id]
        truth += _visible_team(label_path, sample.frames[rows], sample.boxes[rows], 0.4)
    truth = np.array(truth, dtype=object)
    players = truth != "referee"
    predicted = np.array([naming.cluster_to_team[int(c)] for c in model.labels], dtype=object)
    accuracy = float((predicted[players] == truth[players]).mean())
    assert accuracy >= 0.98, (accuracy, model.meta, naming.evidence)
    for cluster in (0, 1):  # both clusters named after the team they mostly hold
        members = truth[players & (model.labels == cluster)]
        names, counts = np.unique(members, return_counts=True)
        assert naming.cluster_to_team[cluster] == names[np.argmax(counts)]
    assert naming.confidence > 0.5


@pytest.mark.slow
def test_clips_without_players_or_with_referees_only_add_no_crops(game_maker) -> None:
    from hoopray.models.base import Models
    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.teams import collect_game_crops, fit_game

    _, with_players = game_maker("edge-players", seed=5, clips=1, seconds=3.0)
    _, no_players = game_maker("edge-empty", seed=6, players_per_team=0)
    _, referees = game_maker("edge-refs", seed=7, only_referees=True)
    broken = Path(str(with_players[0].path) + ".broken.mp4")
    broken.write_bytes(b"not a video")
    clips = [
        with_players[0],
        ClipRef("edge", "no-players", no_players[0].path, "x"),
        ClipRef("edge", "referees", referees[0].path, "x"),
        ClipRef("edge", "broken", broken, "x"),
    ]
    detector = game_maker.world.detector()
    roles = Models().roles

    alone = collect_game_crops(clips[1:3], detector, roles)
    assert len(alone) == 0 and alone.frames_sampled == 4  # two 2 s clips at one a second
    sample = collect_game_crops(clips, detector, roles)
    assert len(sample) > 0 and set(sample.clip_ids) == {with_players[0].clip_id}
    assert sample.frames_sampled == 3 + 2 + 2
    assert [clip for clip, _ in sample.problems] == ["broken"]

    models = Models(detector=detector, embedder=ColourHistogramEmbedder())
    model, _ = fit_game(clips, models, TeamsConfig())
    assert model.meta["problems"][0][0] == "broken"
    assert sorted(model.meta["clips"]) == sorted(c.clip_id for c in clips)
    with pytest.raises(TeamModelError, match="0 player crops"):
        fit_game(clips[1:3], models, TeamsConfig())


@pytest.mark.slow
def test_too_few_crops_for_umap_fall_back_to_pca(game_maker) -> None:
    from hoopray.models.base import Models
    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.roster import load_roster
    from hoopray.teams import fit_game

    game, clips = game_maker("edge-few", seed=8, players_per_team=1, seconds=1.0)
    models = Models(detector=game_maker.world.detector(), embedder=ColourHistogramEmbedder())
    model, sample = fit_game(clips, models, TeamsConfig())
    assert len(sample) == 2  # one frame, two players
    assert model.meta["projection"] == "pca" and "fallback_reason" in model.meta
    assert sorted(model.labels.tolist()) == [0, 1]
    naming = name_clusters(model, load_roster(game.roster_path), sample.crops, model.labels)
    truth = _visible_team(game.labels[0], sample.frames, sample.boxes, 0.4)
    assert [naming.cluster_to_team[int(c)] for c in model.labels] == truth


@pytest.mark.slow
def test_collect_game_crops_with_read_frames_at_equals_decoding_through(
    game_maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hoopray import video
    from hoopray.models.base import Models
    from hoopray.teams import collect_game_crops

    _, clips = game_maker("edge-seek", seed=4, clips=2, seconds=3.0)
    detector, roles = game_maker.world.detector(), Models().roles
    monkeypatch.delattr(video, "read_frames_at", raising=False)
    through = collect_game_crops(clips, detector, roles)
    asked: list[list[int]] = []

    def read_frames_at(path: str | Path, indices):
        asked.append(list(indices))
        for index, frame in video.iter_frames(path):
            if index in asked[-1]:
                yield index, frame

    monkeypatch.setattr(video, "read_frames_at", read_frames_at, raising=False)
    seeked = collect_game_crops(clips, detector, roles)
    assert asked == [[0, 4, 8], [0, 4, 8]]  # 3 s at 4 fps, one frame a second
    assert seeked.frames_sampled == through.frames_sampled == 6
    np.testing.assert_array_equal(seeked.boxes, through.boxes)
    assert seeked.clip_ids == through.clip_ids


@pytest.mark.slow
def test_max_crops_keeps_a_seeded_ordered_sample(game_maker) -> None:
    from hoopray.models.base import Models
    from hoopray.teams import collect_game_crops

    _, clips = game_maker("edge-max", seed=9, seconds=3.0)
    detector, roles = game_maker.world.detector(), Models().roles
    full = collect_game_crops(clips, detector, roles)
    small = collect_game_crops(clips, detector, roles, max_crops=5, seed=1)
    again = collect_game_crops(clips, detector, roles, max_crops=5, seed=1)
    assert len(small) == 5 and full.players_seen == small.players_seen == len(full)
    assert small.frames.tolist() == sorted(small.frames.tolist())
    np.testing.assert_array_equal(small.boxes, again.boxes)
    pairs = {(f, tuple(b)) for f, b in zip(full.frames.tolist(), full.boxes.tolist(), strict=True)}
    assert all(
        (f, tuple(b)) in pairs
        for f, b in zip(small.frames.tolist(), small.boxes.tolist(), strict=True)
    )


@pytest.mark.slow
def test_fit_game_through_the_tiny_siglip_adapter(game_maker, tiny_siglip_dir, tmp_path) -> None:
    from hoopray.models.base import Models
    from hoopray.models.siglip import SiglipEmbedder
    from hoopray.roster import load_roster
    from hoopray.teams import fit_game

    game, clips = game_maker("siglip", seed=3, seconds=4.0)
    embedder = SiglipEmbedder(model=str(tiny_siglip_dir), device="cpu")
    models = Models(detector=game_maker.world.detector(), embedder=embedder)
    model, sample = fit_game(clips, models, TeamsConfig(stride_seconds=0.5))
    assert model.dim == embedder.dim and len(model.labels) == len(sample)
    assert model.meta["embedder"] == "SiglipEmbedder"
    naming = name_clusters(model, load_roster(game.roster_path), sample.crops, model.labels)
    directory = tmp_path / "out" / game.game_id / "teams"
    save_game(directory, model, sample, naming)
    loaded = TeamModel.load(directory, trusted_root=tmp_path / "out")
    clusters, confidence = loaded.predict(embedder.embed(sample.crops[:7]))
    assert clusters.shape == confidence.shape == (min(7, len(sample)),)
