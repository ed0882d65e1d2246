"""Rows of observations/detections (hoopray.detections)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
import supervision as sv

from hoopray import types
from hoopray.detections import class_roles, detection_rows, match_tracks
from hoopray.models.base import CLASS_NAME, Roles

ROLES = class_roles(Roles())


def _detections(rows: list[tuple[str, tuple[float, float, float, float]]]) -> sv.Detections:
    if not rows:
        return sv.Detections.empty()
    return sv.Detections(
        xyxy=np.array([box for _, box in rows], dtype=np.float32),
        confidence=np.linspace(0.9, 0.5, len(rows)).astype(np.float32),
        class_id=np.zeros(len(rows), dtype=int),
        data={CLASS_NAME: np.array([name for name, _ in rows])},
    )


def test_class_roles_follow_the_config() -> None:
    assert ROLES["player-in-possession"] == ROLES["player"] == "player"
    assert (ROLES["ball"], ROLES["ball-in-basket"], ROLES["rim"]) == ("ball", "ball", "rim")
    assert (ROLES["number"], ROLES["referee"]) == ("number", "referee")
    custom = class_roles(Roles(player=("athlete",), ball=("ball", "athlete")))
    assert custom["athlete"] == "player"  # the first role wins
    assert "player" not in custom


P = (0.0, 0.0, 10.0, 20.0)  # a player's box
Q = (50.0, 0.0, 60.0, 20.0)


@pytest.mark.parametrize(
    ("dets", "players", "tracks", "expected"),
    [
        ([], [], [], []),
        ([P], [True], [], [None]),  # before tracking starts
        ([P], [True], [(7, P)], [7]),
        ([P], [False], [(7, P)], [None]),  # a referee or a ball is never matched
        ([P, Q], [True, True], [(7, Q), (8, P)], [8, 7]),
        ([P], [True], [(7, (5.0, 0.0, 15.0, 20.0))], [None]),  # IoU 1/3
        ([P], [True], [(7, (0.0, 0.0, 10.0, 12.0))], [7]),  # IoU 0.6
        # two tracks on one detection: the one that overlaps it most
        ([P], [True], [(7, (0.0, 0.0, 10.0, 12.0)), (8, (0.0, 0.0, 10.0, 18.0))], [8]),
        ([P, P], [True, True], [(7, P)], [7, None]),  # a duplicate detection stays unmatched
    ],
)
def test_match_tracks(
    dets: list[tuple], players: list[bool], tracks: list[tuple], expected: list
) -> None:
    got = match_tracks(
        np.array(dets, dtype=np.float64).reshape(-1, 4),
        np.array(players, dtype=bool),
        np.array([b for _, b in tracks], dtype=np.float64).reshape(-1, 4),
        np.array([t for t, _ in tracks], dtype=np.int64),
    )
    assert got == expected


def test_detection_rows_fit_the_schema() -> None:
    dets = _detections(
        [("player-in-possession", P), ("ball", (4.0, 4.0, 6.0, 6.0)), ("rim", Q), ("logo", Q)]
    )
    rows = detection_rows(12, dets, ROLES, np.array([P]), np.array([3]))
    table = types.check_schema("observations/detections", pa.table(rows))
    assert table.to_pylist()[0] == {
        "frame": 12,
        "class_name": "player-in-possession",
        "role": "player",
        "x1": 0.0,
        "y1": 0.0,
        "x2": 10.0,
        "y2": 20.0,
        "confidence": pytest.approx(0.9),
        "track_id": 3,
    }
    assert table["role"].to_pylist() == ["player", "ball", "rim", None]  # logo: no role
    assert table["track_id"].to_pylist() == [3, None, None, None]


def test_detection_rows_of_an_empty_frame() -> None:
    rows = detection_rows(0, _detections([]), ROLES, np.zeros((0, 4)), np.zeros(0, np.int64))
    table = types.check_schema("observations/detections", pa.table(rows, types.OBS_DETECTIONS))
    assert table.num_rows == 0
