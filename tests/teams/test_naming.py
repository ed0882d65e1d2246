from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from hoopray import store, types
from hoopray.teams import (
    BLANK,
    TeamModel,
    TeamNaming,
    cluster_colours,
    confirmed_numbers,
    crop_colour,
    fit_team_model,
    hex_to_lab,
    load_naming,
    name_clusters,
    refine_naming,
    save_naming,
    teams_dir,
)
from tests.teams.common import BLUE, GREEN, PCA, blobs, patch, roster

# ------------------------------------------------------------------ naming


def _naming_case(
    colour_order: tuple[str, str] | None, confirmed: list[tuple[int, str]] | None
) -> TeamNaming:
    crops, clusters = [], []
    if colour_order is not None:
        for cluster, hex_colour in enumerate(colour_order):
            crops += [patch(hex_colour, seed=cluster * 10 + i) for i in range(6)]
            clusters += [cluster] * 6
    return name_clusters(
        None,
        roster(),
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
    values, _ = blobs(10, dim=4)
    model = fit_team_model(values, PCA)
    model.cluster_lab = np.stack([hex_to_lab(GREEN), hex_to_lab(BLUE)])
    naming = name_clusters(model, roster())
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
    crops = [patch(BLUE, 0), patch(GREEN, 1)]
    if isinstance(result, dict):
        naming = name_clusters(None, roster(), crops, [0, 1], override=override)
        assert naming.cluster_to_team == result
        assert naming.confidence == 1.0
        assert naming.evidence["mapping"] == "override"
        assert naming.evidence["automatic"] == {"0": "Blue", "1": "Green"}
    else:
        with pytest.raises(result):
            name_clusters(None, roster(), crops, [0, 1], override=override)


def test_identical_roster_colours_give_no_colour_confidence() -> None:
    crops = [patch(BLUE, 0), patch(GREEN, 1)]
    naming = name_clusters(None, roster((BLUE, BLUE)), crops, [0, 1])
    assert naming.confidence == 0.0
    assert naming.evidence["colour"]["margin"] == 0.0


# ------------------------------------------------------------------ colours


def _blanked(image: np.ndarray, rows: slice) -> np.ndarray:
    out = image.copy()
    out[rows] = BLANK
    return out


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        (np.zeros((0, 5, 3), np.uint8), None),  # empty crop
        (np.full((4, 4, 3), BLANK, np.uint8), None),  # all blanked
        (np.full((1, 1, 3), (29, 42, 90), np.uint8), BLUE),  # one pixel
        (np.full((6, 4, 3), (29, 42, 90), np.uint8), BLUE),
        # most pixels blanked: the few jersey pixels decide
        (_blanked(np.full((10, 4, 3), (29, 74, 42), np.uint8), slice(0, 8)), GREEN),
        # a real grey next to the blank value is kept
        (np.full((3, 3, 3), (128, 128, 127), np.uint8), "#80807f"),
    ],
)
def test_crop_colour_skips_blanked_pixels(image: np.ndarray, expected: str | None) -> None:
    got = crop_colour(image)
    if expected is None:
        assert got is None
    else:
        assert got is not None and got.dtype == np.float32
        np.testing.assert_allclose(got, hex_to_lab(expected), atol=0.5)


def test_cluster_colours_of_an_empty_cluster_are_nan() -> None:
    lab = cluster_colours([patch(BLUE, 0), np.full((3, 3, 3), BLANK, np.uint8)], [0, 1])
    assert np.isfinite(lab[0]).all() and np.isnan(lab[1]).all()
    with pytest.raises(ValueError, match="2 crops but 1 clusters"):
        cluster_colours([patch(BLUE, 0), patch(GREEN, 1)], [0])


# ------------------------------------------------------------------ refining with numbers

BLUE_NUMBERS = [(0, "1"), (0, "7"), (0, "23"), (1, "2"), (1, "8"), (1, "30")]


def _coloured_model(first: str, second: str) -> TeamModel:
    values, _ = blobs(10, dim=4)
    model = fit_team_model(values, PCA)
    model.cluster_lab = np.stack([hex_to_lab(first), hex_to_lab(second)])
    return model


def test_refine_naming_changes_a_wrong_colour_call() -> None:
    model = _coloured_model(GREEN, BLUE)  # colours say cluster 0 is Green ...
    colours = name_clusters(model, roster())
    assert colours.cluster_to_team == {0: "Green", 1: "Blue"}
    refined, changed = refine_naming(model, roster(), colours, BLUE_NUMBERS)  # ... numbers not
    assert changed
    assert refined is not None and refined.cluster_to_team == {0: "Blue", 1: "Green"}
    assert refined.evidence["source"] == "colours+numbers"
    assert refined.evidence["numbers"]["identity_votes"] == 6
    fresh, changed = refine_naming(model, roster(), None, BLUE_NUMBERS)
    assert changed and fresh is not None and fresh.cluster_to_team == refined.cluster_to_team
    forced, _ = refine_naming(
        model, roster(), colours, BLUE_NUMBERS, override={0: "Green", 1: "Blue"}
    )
    assert forced is not None and forced.cluster_to_team == {0: "Green", 1: "Blue"}


def test_refine_naming_that_agrees_is_no_change() -> None:
    model = _coloured_model(BLUE, GREEN)
    colours = name_clusters(model, roster())
    refined, changed = refine_naming(model, roster(), colours, BLUE_NUMBERS)
    assert not changed
    assert refined is not None and refined is not colours
    assert refined.cluster_to_team == colours.cluster_to_team
    assert refined.evidence["source"] == "colours+numbers"


@pytest.mark.parametrize("missing", ["roster", "model", "confirmed"])
def test_refine_naming_without_roster_model_or_numbers_keeps_the_naming(missing: str) -> None:
    model = _coloured_model(GREEN, BLUE)
    naming = name_clusters(model, roster())
    refined, changed = refine_naming(
        None if missing == "model" else model,
        None if missing == "roster" else roster(),
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


# ------------------------------------------------------------------ storage


def test_naming_round_trip_on_the_memory_store(mem_root: str) -> None:
    naming = TeamNaming({1: "Green", 0: "Blue"}, 0.25, {"score": 0.5})
    directory = teams_dir(mem_root, "g")
    assert load_naming(directory) is None
    assert save_naming(naming, directory) == store.join(directory, "naming.json")
    loaded = load_naming(directory)
    assert loaded is not None and loaded.cluster_to_team == {0: "Blue", 1: "Green"}


def test_naming_round_trip_keeps_int_keys(tmp_path) -> None:
    naming = TeamNaming({1: "Green", 0: "Blue"}, 0.25, {"score": 0.5})
    save_naming(naming, tmp_path)
    loaded = load_naming(tmp_path)
    assert loaded is not None and loaded.cluster_to_team == {0: "Blue", 1: "Green"}
