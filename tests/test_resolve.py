from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import yaml

from hoopray import store, types
from hoopray.resolve import ResolveConfig, decode_embeddings, resolve
from hoopray.roster import Roster, parse_roster
from hoopray.teams import TeamNaming
from hoopray.types import Observations

ROOT = Path(__file__).resolve().parents[1]
ROSTER = parse_roster(
    {
        "teams": [
            {"name": "Knicks", "colour": "#006bb6", "players": {"7": "Seven", "23": "Robinson"}},
            {"name": "Celtics", "colour": "#007a33", "players": {"7": "Sept", "11": "Eleven"}},
        ]
    }
)
NAMING = TeamNaming(cluster_to_team={0: "Knicks", 1: "Celtics"}, confidence=1.0, evidence={})
STREAK = ResolveConfig(policy="streak")  # the notebook's rule: the mechanics tests below

Read = tuple[int, str | None, float, list[tuple[int, float]]]  # frame, text, conf, candidates


def _tracks(spans: dict[int, tuple[int, int]], every: int = 1) -> pa.Table:
    rows = [(f, t) for t, (a, b) in spans.items() for f in range(a, b + 1, every)]
    rows.sort()
    n = len(rows)
    return pa.table(
        {
            "frame": pa.array([f for f, _ in rows], pa.int32()),
            "track_id": pa.array([t for _, t in rows], pa.int32()),
            "x1": pa.array([float(t) for _, t in rows], pa.float32()),
            "y1": pa.array([0.0] * n, pa.float32()),
            "x2": pa.array([float(t) + 5 for _, t in rows], pa.float32()),
            "y2": pa.array([9.0] * n, pa.float32()),
            "mask_area": pa.array([1] * n, pa.int64()),
            "mask_rle": pa.array(["0"] * n, pa.string()),
            "height": pa.array([10] * n, pa.int32()),
            "width": pa.array([10] * n, pa.int32()),
            "class_name": pa.array(["player"] * n, pa.string()),
            "det_confidence": pa.array([1.0] * n, pa.float32()),
            "source": pa.array(["propagated"] * n, pa.string()),
        },
        schema=types.OBS_TRACKS,
    )


def _reads(reads: list[Read]) -> pa.Table:
    n = len(reads)
    return pa.table(
        {
            "frame": pa.array([r[0] for r in reads], pa.int32()),
            "read_id": pa.array(range(n), pa.int32()),
            "x1": pa.array([1.0] * n, pa.float32()),
            "y1": pa.array([1.0] * n, pa.float32()),
            "x2": pa.array([2.0] * n, pa.float32()),
            "y2": pa.array([2.0] * n, pa.float32()),
            "text": pa.array([r[1] for r in reads], pa.string()),
            "raw": pa.array([r[1] or "" for r in reads], pa.string()),
            "confidence": pa.array([r[2] for r in reads], pa.float32()),
            "candidates": pa.array(
                [[{"track_id": t, "ios": s} for t, s in r[3]] for r in reads],
                pa.list_(types.CANDIDATE),
            ),
        },
        schema=types.OBS_READS,
    )


class VoteModel:
    """A team model for hand-made votes: an embedding ``(cluster, confidence)`` is
    predicted as just that; ``calls`` has the number of embeddings of each call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def predict(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls.append(len(embeddings))
        return embeddings[:, 0].round().astype(np.int8), embeddings[:, 1].astype(np.float32)


MODEL = VoteModel()

Vote = tuple[int, int, int, float, float]  # frame, track, cluster, confidence, own_fraction


def _vote_rows(rows: list[Vote]) -> pa.Table:
    embeddings = [np.asarray([r[2], r[3]], dtype="<f2").tobytes() for r in rows]
    table = pa.table(
        {
            "frame": pa.array([r[0] for r in rows], pa.int32()),
            "track_id": pa.array([r[1] for r in rows], pa.int32()),
            "embedding": pa.array(embeddings, pa.binary()),
            "dim": pa.array([2] * len(rows), pa.int32()),
            "own_fraction": pa.array([r[4] for r in rows], pa.float32()),
        },
        schema=types.OBS_TEAM_VOTES,
    )
    return types.check_schema("observations/team_votes", table)


def _votes(cluster_by_track: dict[int, int], confidence: float = 1.0, k: int = 3) -> pa.Table:
    return _vote_rows(
        [(f, t, c, confidence, 1.0) for t, c in cluster_by_track.items() for f in range(k)]
    )


def _clip(read_stride: int = 1) -> pa.Table:
    return pa.table(
        {
            "path": ["c.mp4"],
            "fingerprint": ["x"],
            "frames": pa.array([100], pa.int32()),
            "fps": pa.array([30.0], pa.float32()),
            "width": pa.array([10], pa.int32()),
            "height": pa.array([10], pa.int32()),
            "read_stride": pa.array([read_stride], pa.int32()),
            "reader_calls": pa.array([0], pa.int32()),
            "crops_read": pa.array([0], pa.int32()),
            "seconds": pa.array([0.0], pa.float32()),
            "observe_hash": pa.array([None], pa.string()),
        },
        schema=types.OBS_CLIP,
    )


def _obs(
    spans: dict[int, tuple[int, int]],
    reads: list[Read],
    teams: dict[int, int] | None = None,
    read_stride: int = 1,
) -> Observations:
    return Observations(
        tracks=_tracks(spans),
        reads=_reads(reads),
        team_votes=_votes(teams or {}),
        clip=_clip(read_stride),
    )


def _series(track: int, texts: list[str | None], start: int = 0, step: int = 1) -> list[Read]:
    return [(start + i * step, t, 0.9, [(track, 1.0)]) for i, t in enumerate(texts)]


def _by_track(identities: types.Identities) -> dict[int, dict]:
    types.check_schema("identities/tracks", identities.tracks)
    types.check_schema("identities/frames", identities.frames)
    return {row["track_id"]: row for row in identities.tracks.to_pylist()}


def test_empty_observations() -> None:
    obs = Observations(
        tracks=types.empty_table("observations/tracks"),
        reads=types.empty_table("observations/reads"),
        team_votes=types.empty_table("observations/team_votes"),
        clip=types.empty_table("observations/clip"),
    )
    got = resolve(obs, ROSTER, NAMING, ResolveConfig())
    assert got.tracks.num_rows == 0 and got.frames.num_rows == 0
    assert got.tracks.schema == types.ID_TRACKS
    assert got.frames.schema == types.ID_FRAMES


def test_tracks_without_reads_are_unread() -> None:
    got = _by_track(resolve(_obs({1: (0, 9), 2: (3, 4)}, []), ROSTER, NAMING))
    assert {t: r["status"] for t, r in got.items()} == {1: "unread", 2: "unread"}
    assert got[2]["first_frame"] == 3 and got[2]["last_frame"] == 4
    assert got[1]["reads_seen"] == 0 and got[1]["number"] is None


def test_one_frame_clip() -> None:
    obs = _obs({1: (0, 0)}, [(0, "23", 0.9, [(1, 1.0)])], {1: 0})
    cfg = ResolveConfig(policy="streak", reads_to_confirm=1)
    got = _by_track(resolve(obs, ROSTER, NAMING, cfg, team_model=MODEL))
    assert got[1]["status"] == "confirmed"
    assert (got[1]["number"], got[1]["player_name"], got[1]["team_name"]) == (
        "23",
        "Robinson",
        "Knicks",
    )
    assert got[1]["confirmed_at_frame"] == 0
    assert got[1]["posterior"] is None and got[1]["runner_up"] is None  # streak: no posterior
    default = _by_track(resolve(obs, ROSTER, NAMING, ResolveConfig(), team_model=MODEL))[1]
    assert (default["status"], default["number"], default["confirmed_at_frame"]) == (
        "confirmed",
        "23",
        0,
    )  # one read on a roster of four numbers, on the voted team
    assert default["posterior"] >= 0.8 and default["runner_up"] is not None


@pytest.mark.parametrize(
    ("candidates", "threshold", "expected"),
    [
        ([(1, 0.95)], 0.9, "7"),
        ([(1, 0.9)], 0.9, "7"),  # equal counts, in float32 as stored
        ([(1, 0.89)], 0.9, None),  # below the threshold: ignored
        ([(1, 0.89)], 0.8, "7"),
        ([], 0.9, None),  # no candidate at all
        ([(1, 0.95), (2, 0.95)], 0.9, None),  # tied between two tracks
        ([(1, 0.95), (2, 0.91)], 0.9, "7"),  # the best one wins
        ([(2, 0.99), (1, 0.95)], 0.9, None),  # track 2 gets it, track 1 nothing
        ([(99, 1.0)], 0.9, None),  # a track not in observations/tracks
    ],
)
def test_pairing(
    candidates: list[tuple[int, float]], threshold: float, expected: str | None
) -> None:
    reads = [(f, "7", 0.9, candidates) for f in range(3)]
    cfg = ResolveConfig(threshold, policy="streak")
    got = _by_track(resolve(_obs({1: (0, 5), 2: (0, 5)}, reads), None, None, cfg))
    assert got[1]["number"] == expected


@pytest.mark.parametrize(
    ("texts", "policy", "number", "seen", "agreeing", "confirmed_at"),
    [
        (["7", "7", "2", "7", "7", "7"], "streak", "7", 6, 5, 5),
        (["7", None, "7", None, "7"], "streak", "7", 3, 3, 4),  # None breaks nothing
        (["7", "2", "7", "7"], "streak", None, 4, 2, None),
        (["7", "2", "7", "7"], "majority", "7", 4, 3, 3),
        (["2", "7", "2", "7"], "majority", None, 4, None, None),  # tie: no leader
        ([None, None], "streak", None, 0, 0, None),
        (["7", "7", "7", "2", "2", "2"], "streak", "7", 6, 3, 2),  # confirmed sticks
    ],
)
def test_voting(
    texts: list[str | None],
    policy: str,
    number: str | None,
    seen: int,
    agreeing: int | None,
    confirmed_at: int | None,
) -> None:
    obs = _obs({1: (0, 10)}, _series(1, texts))
    got = _by_track(resolve(obs, None, None, ResolveConfig(policy=policy)))[1]
    assert got["number"] == number
    assert got["status"] == ("confirmed" if number else "unread")
    assert got["reads_seen"] == seen
    if agreeing is not None:
        assert got["reads_agreeing"] == agreeing
    assert got["confirmed_at_frame"] == confirmed_at


def test_reads_in_frame_order_not_row_order() -> None:
    reads = _series(1, ["7", "7", "2", "7"])[::-1]  # frames 3, 2, 1, 0 in row order
    got = _by_track(resolve(_obs({1: (0, 5)}, reads), None, None, STREAK))[1]
    assert got["number"] is None  # 7, 7, 2, 7 in frame order never makes a streak of 3


def test_two_reads_of_one_track_in_one_frame_both_count() -> None:
    reads = [(0, "7", 0.9, [(1, 1.0)]), (0, "7", 0.9, [(1, 1.0)]), (1, "7", 0.9, [(1, 1.0)])]
    got = _by_track(resolve(_obs({1: (0, 5)}, reads), None, None, STREAK))[1]
    assert (got["number"], got["reads_seen"], got["confirmed_at_frame"]) == ("7", 3, 1)


@pytest.mark.parametrize(
    ("min_conf", "number", "seen"),
    [(0.0, "7", 3), (0.5, "7", 3), (0.95, None, 0)],
)
def test_min_read_confidence(min_conf: float, number: str | None, seen: int) -> None:
    obs = _obs({1: (0, 5)}, _series(1, ["7", "7", "7"]))
    cfg = ResolveConfig(policy="streak", min_read_confidence=min_conf)
    got = _by_track(resolve(obs, None, None, cfg))[1]
    assert (got["number"], got["reads_seen"]) == (number, seen)


@pytest.mark.parametrize(
    ("multiple", "number", "seen"),
    [(1, "7", 6), (2, "7", 3), (3, None, 2)],
)
def test_read_stride_multiple(multiple: int, number: str | None, seen: int) -> None:
    reads = _series(1, ["7", "2", "7", "2", "7", "2"], step=5)  # frames 0, 5, ..., 25
    obs = _obs({1: (0, 30)}, reads, read_stride=5)
    cfg = ResolveConfig(read_stride_multiple=multiple, policy="majority", majority_min_share=0.5)
    got = _by_track(resolve(obs, None, None, cfg))[1]
    assert (got["number"], got["reads_seen"]) == (number, seen)


@pytest.mark.parametrize(
    ("spans", "reads_a", "reads_b", "status_a", "status_b"),
    [
        # overlapping; A has more agreeing reads -> B ambiguous
        ({1: (0, 50), 2: (20, 80)}, 4, 3, "confirmed", "ambiguous"),
        # overlapping; B has more agreeing reads -> A ambiguous
        ({1: (0, 50), 2: (20, 80)}, 3, 5, "ambiguous", "confirmed"),
        # overlapping by one frame; equal reads -> the later confirmation loses
        ({1: (0, 50), 2: (50, 80)}, 3, 3, "confirmed", "ambiguous"),
        # one after the other: a player re-tracked -> both confirmed
        ({1: (0, 49), 2: (50, 80)}, 3, 5, "confirmed", "confirmed"),
    ],
)
def test_same_identity_conflicts(
    spans: dict[int, tuple[int, int]], reads_a: int, reads_b: int, status_a: str, status_b: str
) -> None:
    a0, b0 = spans[1][0], spans[2][0]
    reads = _series(1, ["23"] * reads_a, start=a0) + _series(2, ["23"] * reads_b, start=b0)
    got = _by_track(resolve(_obs(spans, reads, {1: 0, 2: 0}), ROSTER, NAMING, STREAK, MODEL))
    assert (got[1]["status"], got[2]["status"]) == (status_a, status_b)
    for row in got.values():
        assert row["number"] == "23"
        assert row["player_name"] == ("Robinson" if row["status"] == "confirmed" else None)
    names = [r["player_name"] for r in got.values() if r["player_name"]]
    assert names  # one of them always keeps the name


def test_same_number_other_team_is_no_conflict() -> None:
    reads = _series(1, ["7"] * 3) + _series(2, ["7"] * 3)
    obs = _obs({1: (0, 9), 2: (0, 9)}, reads, {1: 0, 2: 1})
    got = _by_track(resolve(obs, ROSTER, NAMING, team_model=MODEL))
    assert [(r["status"], r["player_name"]) for r in got.values()] == [
        ("confirmed", "Seven"),
        ("confirmed", "Sept"),
    ]


def test_three_way_conflict_keeps_non_overlapping() -> None:
    spans = {1: (0, 100), 2: (50, 150), 3: (120, 200)}
    reads = (
        _series(1, ["23"] * 5)
        + _series(2, ["23"] * 4, start=50)
        + _series(3, ["23"] * 3, start=120)
    )
    got = _by_track(resolve(_obs(spans, reads, {1: 0, 2: 0, 3: 0}), ROSTER, NAMING, STREAK, MODEL))
    assert [got[t]["status"] for t in (1, 2, 3)] == ["confirmed", "ambiguous", "confirmed"]


@pytest.mark.parametrize("cfg", [STREAK, ResolveConfig()], ids=["streak", "posterior"])
def test_number_not_on_roster_is_off_roster(cfg: ResolveConfig) -> None:
    reads = _series(1, ["99"] * 3) + _series(1, ["99"] * 3, start=60)
    obs = _obs({1: (0, 80)}, reads, {1: 0})
    got = _by_track(resolve(obs, ROSTER, NAMING, cfg, team_model=MODEL))
    assert (got[1]["status"], got[1]["number"], got[1]["player_name"]) == ("off_roster", "99", None)
    assert got[1]["team_name"] == "Knicks"


@pytest.mark.parametrize(
    ("roster", "naming", "team_name", "player"),
    [
        (ROSTER, NAMING, "Knicks", "Robinson"),
        (ROSTER, None, None, None),
        (None, NAMING, "Knicks", None),
        (None, None, None, None),
        (ROSTER, TeamNaming({0: "Lakers", 1: "Celtics"}, 1.0, {}), "Lakers", None),
    ],
)
def test_naming_and_roster(
    roster: Roster | None, naming: TeamNaming | None, team_name: str | None, player: str | None
) -> None:
    obs = _obs({1: (0, 5)}, _series(1, ["23"] * 3), {1: 0})
    row = _by_track(resolve(obs, roster, naming, STREAK, MODEL))[1]
    assert (row["team_cluster"], row["team_name"], row["player_name"]) == (0, team_name, player)
    assert row["number"] == "23" and row["status"] == "confirmed"
    # the posterior: without a roster one view of a number is not enough (a dropped digit
    # of 13, 23, ..., 73, ...), two views are
    two_views = _obs(
        {1: (0, 80)}, _series(1, ["23"] * 3) + _series(1, ["23"] * 3, start=60), {1: 0}
    )
    row = _by_track(resolve(two_views, roster, naming, team_model=MODEL))[1]
    assert (row["team_cluster"], row["team_name"], row["player_name"]) == (0, team_name, player)
    assert row["number"] == "23" and row["status"] == "confirmed"


@pytest.mark.parametrize("cfg", [STREAK, ResolveConfig()], ids=["streak", "posterior"])
def test_no_team_votes_leave_team_unknown(cfg: ResolveConfig) -> None:
    model = VoteModel()
    obs = _obs({1: (0, 5)}, _series(1, ["23"] * 3))
    row = _by_track(resolve(obs, ROSTER, NAMING, cfg, model))[1]
    assert (row["team_cluster"], row["team_name"], row["player_name"]) == (None, None, None)
    assert row["team_confidence"] is None and row["status"] == "confirmed"
    assert model.calls == []


@pytest.mark.parametrize("cfg", [STREAK, ResolveConfig()], ids=["streak", "posterior"])
def test_no_team_model_leaves_team_unknown(cfg: ResolveConfig) -> None:
    obs = _obs({1: (0, 5), 2: (0, 5)}, _series(1, ["23"] * 3), {1: 0, 2: 1})
    for got in (resolve(obs, ROSTER, NAMING, cfg), resolve(obs, ROSTER, NAMING, cfg, None)):
        rows = _by_track(got)
        assert [
            (r["team_cluster"], r["team_name"], r["team_confidence"]) for r in rows.values()
        ] == [(None, None, None)] * 2
        assert (rows[1]["number"], rows[1]["player_name"]) == ("23", None)


def test_min_team_confidence() -> None:
    obs = _obs({1: (0, 5)}, _series(1, ["23"] * 3))
    obs.team_votes = _votes({1: 1}, confidence=0.4)
    row = _by_track(resolve(obs, ROSTER, NAMING, STREAK, MODEL))[1]
    assert row["team_cluster"] == 1 and row["team_name"] == "Celtics"
    strict = ResolveConfig(
        policy="streak", min_team_confidence=min(1.0, row["team_confidence"] + 0.01)
    )
    row = _by_track(resolve(obs, ROSTER, NAMING, strict, MODEL))[1]
    assert row["team_cluster"] is None and row["team_name"] is None
    assert row["team_confidence"] is not None


@pytest.mark.parametrize(
    ("votes", "cluster", "confidence"),
    [
        ([], None, None),  # no team vote
        ([(0, 0, 1.0, 1.0)], 0, 1.0),  # one frame, all its own
        ([(0, 1, 1.0, 0.25)], 1, 0.25),  # one frame, three quarters someone else's
        ([(0, 0, 0.5, 0.5)], 0, 0.25),  # the model's confidence and own_fraction multiply
        ([(0, 0, 1.0, 0.0)], 0, 0.0),  # weight 0: the plain majority, confidence 0
        ([(0, 0, 1.0, 1.0), (1, 1, 1.0, 0.5)], 0, 0.25),
        ([(0, 0, 1.0, 0.2), (1, 1, 1.0, 0.9)], 1, 0.35),  # the occluded vote loses
        ([(0, 0, 1.0, 0.0), (1, 1, 1.0, 0.0)], None, 0.0),  # a tie
        ([(f, 0, 1.0, 1.0) for f in range(3)] + [(3, 1, 1.0, 1.0)], 0, 0.5),
        ([(f, 0, 1.0, 0.1) for f in range(3)] + [(3, 1, 1.0, 1.0)], 1, 0.175),
    ],
)
def test_own_fraction_weighs_team_votes(
    votes: list[tuple[int, int, float, float]], cluster: int | None, confidence: float | None
) -> None:
    obs = _obs({1: (0, 5)}, _series(1, ["23"] * 3))
    obs.team_votes = _vote_rows([(f, 1, c, conf, own) for f, c, conf, own in votes])
    row = _by_track(resolve(obs, ROSTER, NAMING, STREAK, MODEL))[1]
    assert row["team_cluster"] == cluster
    assert row["team_name"] == (None if cluster is None else NAMING.cluster_to_team[cluster])
    if confidence is None:
        assert row["team_confidence"] is None
    else:
        assert row["team_confidence"] == pytest.approx(confidence, abs=1e-6)
    if votes == [(0, 1, 1.0, 0.25)]:
        strict = ResolveConfig(policy="streak", min_team_confidence=0.3)
        assert _by_track(resolve(obs, ROSTER, NAMING, strict, MODEL))[1]["team_cluster"] is None


def test_one_predict_call_per_clip() -> None:
    votes = _vote_rows(
        [(f, t, t % 2, 1.0, 1.0) for f in range(4) for t in (1, 2, 3)]
        + [(0, 99, 1, 1.0, 1.0)]  # a track that observations/tracks lacks: not predicted
    )
    obs = _obs({1: (0, 5), 2: (0, 5), 3: (0, 5)}, [])
    obs.team_votes = pa.concat_tables([votes.slice(0, 5), votes.slice(5)])  # two chunks
    model = VoteModel()
    got = _by_track(resolve(obs, None, None, team_model=model))
    assert model.calls == [12]
    assert {t: r["team_cluster"] for t, r in got.items()} == {1: 1, 2: 0, 3: 1}
    obs.team_votes = _vote_rows([(0, 99, 1, 1.0, 1.0)])
    assert _by_track(resolve(obs, None, None, team_model=model))[1]["team_cluster"] is None
    assert model.calls == [12]


def test_real_team_model_decides_as_the_old_observe_time_prediction() -> None:
    """Before issue 13 observe stored each crop's ``TeamModel.predict`` (of the float32
    embedding) and resolve voted on those; resolve now predicts from the float16
    embeddings stored by observe. On noisy blobs (some votes disagree within a track) the
    decisions are the same."""
    from hoopray.teams import TeamsConfig, fit_team_model
    from hoopray.voting import vote_team

    rng = np.random.default_rng(3)
    centres = rng.normal(0, 1, (2, 16)) * 1.5
    fit_truth = np.arange(60) % 2
    model = fit_team_model(
        (centres[fit_truth] + rng.normal(0, 1, (60, 16))).astype(np.float32),
        TeamsConfig(umap_neighbors=10_000, knn_k=7),
    )
    spans = {t: (0, 40) for t in range(1, 9)}
    rows = [(f, t) for f in range(0, 40, 4) for t in spans]
    embedded = np.stack([centres[t % 2] + rng.normal(0, 1.5, 16) for _, t in rows]).astype(
        np.float32
    )
    votes = pa.table(
        {
            "frame": pa.array([f for f, _ in rows], pa.int32()),
            "track_id": pa.array([t for _, t in rows], pa.int32()),
            "embedding": pa.array([np.asarray(e, "<f2").tobytes() for e in embedded], pa.binary()),
            "dim": pa.array([16] * len(rows), pa.int32()),
            "own_fraction": pa.array([1.0] * len(rows), pa.float32()),
        },
        schema=types.OBS_TEAM_VOTES,
    )
    old_clusters, old_conf = model.predict(embedded)
    tracks = np.array([t for _, t in rows])
    old = {t: vote_team(old_clusters[tracks == t], old_conf[tracks == t]) for t in spans}
    assert 0 < old_conf.mean() < 1  # not every neighbour agrees: a real test
    assert len({c for c, _ in old.values()}) == 2

    obs = _obs(spans, [])
    obs.team_votes = votes
    got = _by_track(resolve(obs, None, None, ResolveConfig(), model))
    assert {t: got[t]["team_cluster"] for t in spans} == {t: c for t, (c, _) in old.items()}
    for t, (_, conf) in old.items():
        assert got[t]["team_confidence"] == pytest.approx(conf, abs=1e-6)

    wrong_dim = _obs(spans, [])
    wrong_dim.team_votes = _votes({1: 0})
    with pytest.raises(ValueError, match="16"):
        resolve(wrong_dim, None, None, ResolveConfig(), model)


@pytest.mark.parametrize("start", [0, 1, 3])
def test_decode_embeddings(start: int) -> None:
    values = np.arange(12, dtype=np.float32).reshape(4, 3) / 7
    table = pa.table(
        {
            "frame": pa.array(range(4), pa.int32()),
            "track_id": pa.array([1] * 4, pa.int32()),
            "embedding": pa.array([np.asarray(v, "<f2").tobytes() for v in values]),
            "dim": pa.array([3] * 4, pa.int32()),
            "own_fraction": pa.array([1.0] * 4, pa.float32()),
        },
        schema=types.OBS_TEAM_VOTES,
    )
    sliced = table.slice(start)  # buffers shared with the whole table, read at an offset
    decoded = decode_embeddings(sliced)
    assert decoded.dtype == np.float32 and decoded.shape == (4 - start, 3)
    np.testing.assert_array_equal(decoded, values[start:].astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(decoded, values[start:], rtol=2**-11)
    assert decode_embeddings(table.slice(0, 0)).shape == (0, 0)


@pytest.mark.parametrize(
    ("embeddings", "dims", "match"),
    [
        ([b"\x00<\x00<", b"\x00<"], [2, 1], "one dim"),
        ([b"\x00<\x00<", b"\x00<"], [2, 2], "2 float16 values"),
        ([b"", b""], [0, 0], "one dim"),
    ],
)
def test_decode_embeddings_errors(embeddings: list[bytes], dims: list[int], match: str) -> None:
    table = pa.table(
        {
            "frame": pa.array([0, 1], pa.int32()),
            "track_id": pa.array([1, 1], pa.int32()),
            "embedding": pa.array(embeddings, pa.binary()),
            "dim": pa.array(dims, pa.int32()),
            "own_fraction": pa.array([1.0, 1.0], pa.float32()),
        },
        schema=types.OBS_TEAM_VOTES,
    )
    with pytest.raises(ValueError, match=match):
        decode_embeddings(table)


def test_team_model_is_a_resolve_argument() -> None:
    parameters = inspect.signature(resolve).parameters
    assert list(parameters) == ["obs", "roster", "naming", "cfg", "team_model"]
    assert parameters["team_model"].default is None


def test_frames_carry_track_identity() -> None:
    spans = {1: (0, 4), 2: (2, 6)}
    obs = _obs(spans, _series(1, ["23"] * 3), {1: 0, 2: 1})
    got = resolve(obs, ROSTER, NAMING, team_model=MODEL)
    frames = got.frames.to_pylist()
    assert len(frames) == obs.tracks.num_rows
    assert [(r["frame"], r["track_id"]) for r in frames] == list(
        zip(obs.tracks["frame"].to_pylist(), obs.tracks["track_id"].to_pylist(), strict=True)
    )
    for r in frames:
        if r["track_id"] == 1:
            assert (r["number"], r["player_name"], r["status"]) == ("23", "Robinson", "confirmed")
        else:
            assert (r["team_name"], r["number"], r["status"]) == ("Celtics", None, "unread")
    assert frames[0]["x1"] == 1.0  # boxes come from observations


def test_extra_partition_columns_are_ignored(tmp_path: Path) -> None:
    obs = _obs({1: (0, 5)}, _series(1, ["23"] * 3), {1: 0})
    for name in ("tracks", "team_votes", "clip"):
        store.write_table(tmp_path, f"observations/{name}", "g", "c", getattr(obs, name))
    obs.tracks = store.read_table(tmp_path, "observations/tracks")
    obs.team_votes = store.read_table(tmp_path, "observations/team_votes")
    assert obs.team_votes.num_rows == 3
    row = _by_track(resolve(obs, ROSTER, NAMING, team_model=MODEL))[1]
    assert (row["team_name"], row["player_name"]) == ("Knicks", "Robinson")


@pytest.mark.parametrize(
    "kwargs",
    [
        {"ios_threshold": 1.5},
        {"ios_threshold": -0.1},
        {"policy": "vote"},
        {"reads_to_confirm": 0},
        {"reads_to_confirm": 2.5},
        {"read_stride_multiple": 0},
        {"min_read_confidence": 2.0},
        {"min_team_confidence": -1.0},
        {"majority_min_share": 1.5},
        {"policy": "notebook"},
        {"min_posterior": 1.1},
        {"min_margin": -0.1},
        {"misread_rate": 0.0},
        {"misread_rate": 0.5},
        {"persistent_misread": 1.0},
        {"off_roster_prior": -0.01},
        {"team_vote_weight": -1.0},
        {"id_switch_prior": 1.0},
        {"crossing_iou": 2.0},
    ],
)
def test_config_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError):
        ResolveConfig(**kwargs)


def test_config_file_matches_defaults() -> None:
    data = yaml.safe_load((ROOT / "conf/resolve/default.yaml").read_text())
    assert ResolveConfig.from_mapping(data) == ResolveConfig()
    with pytest.raises(ValueError, match="unknown"):
        ResolveConfig.from_mapping({**data, "ios_treshold": 0.5})


_SWEEP = """
import json, sys
before = set(sys.modules)
from hoopray import store
from hoopray.resolve import ResolveConfig, decode_embeddings, resolve
from hoopray.types import Observations

out, = sys.argv[1:]
obs = Observations(*(store.read_table(out, "observations/" + n, "g", "c").drop_columns(
    ["game_id", "clip_id"]) for n in ("tracks", "reads", "team_votes", "clip")))
result = {}
for ios in (0.8, 0.9):
    for n in (3, 4):
        cfg = ResolveConfig(policy="streak", ios_threshold=ios, reads_to_confirm=n)
        ids = resolve(obs, None, None, cfg)
        result[f"{ios}/{n}"] = ids.tracks.column("number").to_pylist()
heavy = ("torch", "transformers", "ray", "rfdetr", "sam2", "umap")
result["imported"] = sorted(m for m in set(sys.modules) - before if m.split(".")[0] in heavy
                            or m.startswith(("hoopray.models", "hoopray.testing")))
print(json.dumps(result))
"""


def test_threshold_sweep_re_resolves_stored_observations_without_models(tmp_path: Path) -> None:
    reads = [(f, "7", 0.9, [(1, 0.85)]) for f in range(3)] + [
        (f, "11", 0.9, [(2, 0.95)]) for f in range(4)
    ]
    obs = _obs({1: (0, 5), 2: (0, 5)}, reads)
    for name in ("tracks", "reads", "team_votes", "clip"):
        store.write_table(tmp_path, f"observations/{name}", "g", "c", getattr(obs, name))
    done = subprocess.run(
        [sys.executable, "-c", _SWEEP, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    result = json.loads(done.stdout)
    assert result.pop("imported") == []
    assert result == {
        "0.8/3": ["7", "11"],
        "0.8/4": [None, "11"],
        "0.9/3": [None, "11"],
        "0.9/4": [None, "11"],
    }


# --------------------------------------------------------------------------- posterior


def _two_views(text: str, k: int = 3) -> list[Read]:
    """``k`` reads of ``text`` at frames 0.. and again at 100..: two views of a number."""
    return _series(1, [text] * k) + _series(1, [text] * k, start=100)


VOTES = {  # frame, cluster, confidence, own_fraction (cluster 0 is the Knicks)
    "none": [],
    "knicks": [(f, 0, 1.0, 1.0) for f in range(0, 200, 15)],
    "weak knicks": [(f, 0, 1.0, 0.2) for f in range(0, 200, 15)],  # crops mostly not its own
    "split": [(f, (f // 15) % 2, 1.0, 1.0) for f in range(0, 240, 15)],  # 8 against 8
    "zero weight": [(0, 0, 1.0, 0.0), (15, 1, 1.0, 0.0)],
}


def _posterior_row(reads: list[Read], votes: str, roster: Roster | None = ROSTER) -> dict:
    obs = _obs({1: (0, 200)}, reads)
    obs.team_votes = _vote_rows([(f, 1, c, conf, own) for f, c, conf, own in VOTES[votes]])
    return _by_track(resolve(obs, roster, NAMING, ResolveConfig(), MODEL))[1]


@pytest.mark.parametrize(
    ("text", "votes", "status", "team", "player"),
    [
        ("23", "knicks", "confirmed", "Knicks", "Robinson"),
        ("23", "split", "confirmed", "Knicks", "Robinson"),  # 23: on the Knicks' roster only
        ("11", "split", "confirmed", "Celtics", "Eleven"),  # the number flips the team
        ("11", "weak knicks", "confirmed", "Celtics", "Eleven"),  # ... against weak votes
        ("7", "knicks", "confirmed", "Knicks", "Seven"),  # on both rosters: the votes decide
        ("7", "split", "unread", None, None),  # on both rosters, votes split: a tie
        ("7", "zero weight", "unread", None, None),  # votes that carry nothing: a tie
        ("99", "knicks", "off_roster", "Knicks", None),  # on neither roster: never named
        ("99", "none", "confirmed", None, None),  # no team: off whose roster?
    ],
)
def test_posterior_team_from_votes_and_rosters(
    text: str, votes: str, status: str, team: str | None, player: str | None
) -> None:
    row = _posterior_row(_two_views(text), votes)
    assert (row["status"], row["team_name"], row["player_name"]) == (status, team, player)
    assert row["number"] == (None if status == "unread" else text)
    assert 0.0 <= row["margin"] <= row["posterior"] <= 1.0
    assert row["runner_up"] is not None and row["runner_up"] != f"{team}#{text}"
    if status == "unread":
        assert row["margin"] == pytest.approx(0.0, abs=1e-6) and row["posterior"] <= 0.5 + 1e-6


TIE_ROSTER = parse_roster(
    {
        "teams": [
            {"name": "Knicks", "colour": "#006bb6", "players": {"2": "Two", "7": "Seven"}},
            {"name": "Celtics", "colour": "#007a33", "players": {"11": "Eleven", "23": "Jo"}},
        ]
    }
)


@pytest.mark.parametrize(
    ("texts", "number"),
    [
        (["2", "7", "2", "7"], None),  # 2 and 7 look alike and both are Knicks: a tie
        (["7", "2", "7", "2"], None),
        (["7", "7", "2", "7"], "7"),
        (["2", "2", "7", "2"], "2"),
        (["2", "7"], None),
    ],
)
def test_posterior_ties_stay_unread(texts: list[str], number: str | None) -> None:
    reads = _series(1, texts, step=50)  # one read per view
    row = _posterior_row(reads, "knicks", TIE_ROSTER)
    assert row["number"] == number
    assert row["status"] == ("unread" if number is None else "confirmed")
    if number is None:
        assert row["posterior"] < ResolveConfig().min_posterior


@pytest.mark.parametrize(
    ("views", "status", "number"),
    [
        ([["2"] * 3, ["2"] * 3], "unread", None),  # 23 with a digit dropped: never read 23
        ([["2"] * 3, ["2", "23"]], "confirmed", "23"),  # once read 23: the roster explains 2
        ([["73", "73"], ["23"]], "confirmed", "23"),  # 73 is on no roster; 7 and 2 look alike
        ([["2"]] * 6, "off_roster", "2"),  # six views of 2: a 2 that is not on the roster
    ],
)
def test_posterior_roster_explains_misreads(
    views: list[list[str]], status: str, number: str | None
) -> None:
    reads = [r for v, texts in enumerate(views) for r in _series(1, texts, start=40 * v)]
    row = _posterior_row(reads, "knicks")
    assert (row["status"], row["number"]) == (status, number)
    assert row["player_name"] == ("Robinson" if number == "23" else None)


@pytest.mark.parametrize("text", ["99", "11", "45", "00"])
@pytest.mark.parametrize("votes", ["knicks", "weak knicks", "split", "none"])
@pytest.mark.parametrize("cfg", [STREAK, ResolveConfig()], ids=["streak", "posterior"])
def test_off_roster_numbers_are_never_named(text: str, votes: str, cfg: ResolveConfig) -> None:
    obs = _obs({1: (0, 200)}, _two_views(text))
    obs.team_votes = _vote_rows([(f, 1, c, conf, own) for f, c, conf, own in VOTES[votes]])
    row = _by_track(resolve(obs, ROSTER, NAMING, cfg, MODEL))[1]
    if row["status"] == "off_roster":
        assert (
            row["player_name"] is None
            and row["number"] not in ROSTER.team(row["team_name"]).players
        )
    if row["player_name"] is not None:
        assert ROSTER.player(row["team_name"], row["number"]) == row["player_name"]


def test_posterior_statistics_and_confirmation_frame() -> None:
    reads = _series(1, ["23", "2", "23"], step=5) + _series(1, ["23", "23"], start=100, step=5)
    row = _posterior_row(reads, "knicks")
    assert (row["status"], row["number"], row["reads_seen"], row["reads_agreeing"]) == (
        "confirmed",
        "23",
        5,
        4,
    )
    assert row["confirmed_at_frame"] == 0  # one read of 23 on a Knicks track settles it
    unread = _posterior_row([(0, None, 0.9, [(1, 1.0)])], "knicks")
    assert (unread["status"], unread["reads_seen"], unread["posterior"]) == ("unread", 0, None)
    assert unread["team_name"] == "Knicks"  # the votes still name the team


def test_posterior_without_roster_or_naming() -> None:
    row = _posterior_row(_two_views("23"), "knicks", roster=None)
    assert (row["status"], row["team_name"], row["number"], row["player_name"]) == (
        "confirmed",
        "Knicks",
        "23",
        None,
    )
    obs = _obs({1: (0, 200)}, _two_views("23"), {1: 0})
    row = _by_track(resolve(obs, ROSTER, None, ResolveConfig(), MODEL))[1]
    assert (row["status"], row["team_name"], row["number"]) == ("confirmed", None, "23")
    assert row["runner_up"].startswith("cluster ")


def _crossing_tracks(meet: tuple[int, int], frames: int = 160) -> pa.Table:
    """Tracks 1 and 2, 60 px apart, whose boxes meet over frames ``meet`` (inclusive)."""
    rows = []
    for track, (before, after) in ((1, (0, 60)), (2, (60, 0))):
        for f in range(frames):
            x = before if f < meet[0] else after if f > meet[1] else 30
            rows.append((f, track, x))
    rows.sort()
    n = len(rows)
    table = _tracks({1: (0, frames - 1), 2: (0, frames - 1)})
    return (
        table.set_column(2, "x1", pa.array([float(r[2]) for r in rows], pa.float32()))
        .set_column(4, "x2", pa.array([float(r[2]) + 10 for r in rows], pa.float32()))
        .slice(0, n)
    )


@pytest.mark.parametrize(
    ("switch_prior", "one", "two"),
    [
        (0.03, ("Celtics", "11"), ("Knicks", "23")),  # swapped at frame 48: the longer parts
        (0.0, ("Knicks", "23"), ("Celtics", "11")),  # trusted: the parts with more reads
    ],
)
def test_posterior_id_switch_at_a_crossing(
    switch_prior: float, one: tuple[str, str], two: tuple[str, str]
) -> None:
    def reads_of(track: int, text: str, starts: list[int]) -> list[Read]:
        return [(s + i, text, 0.9, [(track, 1.0)]) for s in starts for i in range(3)]

    reads = (
        reads_of(1, "23", [0, 20, 40])
        + reads_of(1, "11", [100, 140])
        + reads_of(2, "11", [0, 20, 40])
        + reads_of(2, "23", [100, 140])
    )
    votes = [(f, t, int((f < 50) == (t == 2)), 1.0, 1.0) for t in (1, 2) for f in range(0, 160, 20)]
    obs = Observations(
        tracks=_crossing_tracks((48, 52)),
        reads=_reads(sorted(reads)),
        team_votes=_vote_rows(votes),
        clip=_clip(),
    )
    got = _by_track(
        resolve(obs, ROSTER, NAMING, ResolveConfig(id_switch_prior=switch_prior), MODEL)
    )
    assert (got[1]["team_name"], got[1]["number"]) == one
    assert (got[2]["team_name"], got[2]["number"]) == two
    assert {got[1]["status"], got[2]["status"]} == {"confirmed"}


@pytest.mark.parametrize(
    ("meet", "expected"),
    [
        (None, {}),
        ((48, 52), {1: [(48, 2)], 2: [(48, 1)]}),
        ((0, 5), {1: [(0, 2)], 2: [(0, 1)]}),  # together from the first frame
    ],
)
def test_crossings(meet: tuple[int, int] | None, expected: dict) -> None:
    from hoopray.resolve import crossings

    tracks = _tracks({1: (0, 9)}) if meet is None else _crossing_tracks(meet)
    assert crossings(tracks, 0.3) == expected
    assert crossings(types.empty_table("observations/tracks"), 0.3) == {}


# --------------------------------------------------------------------------- player keys


def _tracks_at(frames_by_track: dict[int, list[int]]) -> pa.Table:
    """Tracks live on the given frames only (a track may be lost and found again), 20 px
    apart (they never cross)."""
    template = _tracks({1: (0, 0)}).to_pylist()[0]
    rows = sorted((f, t) for t, frames in frames_by_track.items() for f in frames)
    return pa.Table.from_pylist(
        [
            {**template, "frame": f, "track_id": t, "x1": 20.0 * t, "x2": 20.0 * t + 5}
            for f, t in rows
        ],
        schema=types.OBS_TRACKS,
    )


def _frames(a: int, b: int) -> list[int]:
    return list(range(a, b + 1))


LINK_CASES = {
    # a track lost at frame 40, the player prompted again as track 2 at frame 60
    "lost and re-prompted": (
        {1: _frames(0, 40), 2: _frames(60, 100)},
        {1: "23", 2: "23"},
        {1: 0, 2: 0},
        ROSTER,
        {1: ("confirmed", "g/Knicks/23"), 2: ("confirmed", "g/Knicks/23")},
    ),
    # track 1 lost twice and found again under its own id; track 2 fills the gap
    "alternating, never together": (
        {1: _frames(0, 20) + _frames(60, 80), 2: _frames(30, 50)},
        {1: "23", 2: "23"},
        {1: 0, 2: 0},
        ROSTER,
        {1: ("confirmed", "g/Knicks/23"), 2: ("confirmed", "g/Knicks/23")},
    ),
    "two claimants at once": (
        {1: _frames(0, 60), 2: _frames(30, 100)},
        {1: "23", 2: "23"},
        {1: 0, 2: 0},
        ROSTER,
        {1: ("confirmed", "g/Knicks/23"), 2: ("ambiguous", "g/c/track-2")},
    ),
    "together on one frame": (
        {1: _frames(0, 50), 2: _frames(50, 100)},
        {1: "23", 2: "23"},
        {1: 0, 2: 0},
        ROSTER,
        {1: ("confirmed", "g/Knicks/23"), 2: ("ambiguous", "g/c/track-2")},
    ),
    "same number, other team": (
        {1: _frames(0, 60), 2: _frames(0, 60)},
        {1: "7", 2: "7"},
        {1: 0, 2: 1},
        ROSTER,
        {1: ("confirmed", "g/Knicks/7"), 2: ("confirmed", "g/Celtics/7")},
    ),
    "unconfirmed keeps its own key": (
        {1: _frames(0, 40), 2: _frames(60, 100), 3: _frames(0, 100)},
        {1: "23", 2: None, 3: None},
        {1: 0, 2: 0, 3: 1},
        ROSTER,
        {
            1: ("confirmed", "g/Knicks/23"),
            2: ("unread", "g/c/track-2"),
            3: ("unread", "g/c/track-3"),
        },
    ),
    "off roster, linked but unnamed": (
        {1: _frames(0, 40), 2: _frames(60, 100)},
        {1: "99", 2: "99"},
        {1: 0, 2: 0},
        ROSTER,
        {1: ("off_roster", "g/Knicks/99"), 2: ("off_roster", "g/Knicks/99")},
    ),
    "no roster": (
        {1: _frames(0, 40), 2: _frames(60, 100)},
        {1: "23", 2: "23"},
        {1: 0, 2: 0},
        None,
        {1: ("confirmed", "g/Knicks/23"), 2: ("confirmed", "g/Knicks/23")},
    ),
    "team unknown: never linked": (
        {1: _frames(0, 40), 2: _frames(60, 100)},
        {1: "23", 2: "23"},
        {},
        ROSTER,
        {1: ("confirmed", "g/c/track-1"), 2: ("confirmed", "g/c/track-2")},
    ),
    "one frame": (
        {1: [0]},
        {1: "23"},
        {1: 0},
        ROSTER,
        {1: ("confirmed", "g/Knicks/23")},
    ),
}


@pytest.mark.parametrize("policy", ["streak", "posterior"])
@pytest.mark.parametrize("case", list(LINK_CASES))
def test_player_key_links_one_players_tracks(case: str, policy: str) -> None:
    frames_by_track, numbers, clusters, roster, expected = LINK_CASES[case]
    reads = [  # two views of the number: at the track's first and last frames
        r
        for t, text in numbers.items()
        if text is not None
        for start in sorted({frames_by_track[t][0], frames_by_track[t][-1] - 2})
        for r in _series(t, [text] * 3, start=start)
        if r[0] in frames_by_track[t]
    ]
    votes = [(f, t, c, 1.0, 1.0) for t, c in clusters.items() for f in frames_by_track[t][:3]]
    obs = Observations(
        tracks=_tracks_at(frames_by_track),
        reads=_reads(sorted(reads)),
        team_votes=_vote_rows(votes),
        clip=_clip(),
        game_id="g",
        clip_id="c",
    )
    cfg = ResolveConfig(policy=policy, reads_to_confirm=1 if case == "one frame" else 3)
    got = resolve(obs, roster, NAMING, cfg, MODEL)
    rows = _by_track(got)
    assert {t: (r["status"], r["player_key"]) for t, r in rows.items()} == expected
    for row in rows.values():
        if row["status"] != "confirmed":
            assert row["player_name"] is None
    frame_keys = {(r["track_id"], r["player_key"]) for r in got.frames.to_pylist()}
    assert frame_keys == {(t, key) for t, (_, key) in expected.items()}


def test_player_key_without_naming_uses_the_cluster() -> None:
    obs = _obs({1: (0, 40), 2: (60, 100)}, _series(1, ["23"] * 3) + _series(2, ["23"] * 3, 60))
    obs.team_votes = _vote_rows([(0, 1, 1, 1.0, 1.0), (60, 2, 1, 1.0, 1.0)])
    obs.game_id, obs.clip_id = "g", "c"
    rows = _by_track(resolve(obs, None, None, STREAK, MODEL))
    assert [r["player_key"] for r in rows.values()] == ["g/cluster-1/23", "g/cluster-1/23"]


def test_player_key_of_an_empty_clip() -> None:
    obs = Observations(
        tracks=types.empty_table("observations/tracks"),
        reads=types.empty_table("observations/reads"),
        team_votes=types.empty_table("observations/team_votes"),
        clip=types.empty_table("observations/clip"),
        game_id="g",
        clip_id="c",
    )
    got = resolve(obs, ROSTER, NAMING)
    assert got.tracks["player_key"].to_pylist() == [] == got.frames["player_key"].to_pylist()


@pytest.mark.parametrize(
    ("args", "key"),
    [
        (("g", "c", 4, "Knicks", "23", "confirmed"), "g/Knicks/23"),
        (("g", "c", 4, "Knicks", "99", "off_roster"), "g/Knicks/99"),
        (("g", "c", 4, "cluster-0", "23", "confirmed"), "g/cluster-0/23"),
        (("g", "c", 4, "Knicks", "23", "ambiguous"), "g/c/track-4"),
        (("g", "c", 4, "Knicks", None, "unread"), "g/c/track-4"),
        (("g", "c", 4, None, "23", "confirmed"), "g/c/track-4"),
        (("", "", 4, "Knicks", "23", "confirmed"), "Knicks/23"),
        (("", "", 4, None, None, "unread"), "track-4"),
    ],
)
def test_player_key(args: tuple, key: str) -> None:
    from hoopray.resolve import player_key

    assert player_key(*args) == key


def _detections(rows: list[tuple[int, str, str | None, int | None]]) -> pa.Table:
    """``observations/detections`` of (frame, class name, role, matched track)."""
    n = len(rows)
    return types.check_schema(
        "observations/detections",
        pa.table(
            {
                "frame": pa.array([r[0] for r in rows], pa.int32()),
                "class_name": pa.array([r[1] for r in rows], pa.string()),
                "role": pa.array([r[2] for r in rows], pa.string()),
                "x1": pa.array([0.0] * n, pa.float32()),
                "y1": pa.array([0.0] * n, pa.float32()),
                "x2": pa.array([5.0] * n, pa.float32()),
                "y2": pa.array([9.0] * n, pa.float32()),
                "confidence": pa.array([0.9] * n, pa.float32()),
                "track_id": pa.array([r[3] for r in rows], pa.int32()),
            }
        ),
    )


@pytest.mark.parametrize(
    ("detections", "expected"),
    [
        ([], {}),
        ([(0, "ball", "ball", None), (5, "referee", "referee", None)], {}),  # no player
        (
            [
                (0, "player-in-possession", "player", 1),
                (0, "player", "player", 2),
                (0, "ball", "ball", None),
                (5, "player-jump-shot", "player", 1),
                (5, "player", "player", None),  # a player no track matched
            ],
            {(0, 1): "player-in-possession", (0, 2): "player", (5, 1): "player-jump-shot"},
        ),
        ([(99, "player", "player", 1)], {}),  # a frame the track is not on
    ],
)
def test_frames_carry_the_matched_detection_class(
    detections: list[tuple[int, str, str | None, int | None]], expected: dict
) -> None:
    obs = _obs({1: (0, 9), 2: (0, 9)}, [])
    obs.detections = _detections(detections)
    frames = resolve(obs, None, None).frames.to_pylist()
    assert len(frames) == 20
    assert {
        (r["frame"], r["track_id"]): r["class_name"] for r in frames if r["class_name"]
    } == expected


# --------------------------------------------------------------------------- confusion


def _roster_of(number: str) -> Roster:
    return parse_roster(
        {
            "teams": [
                {"name": "Knicks", "colour": "#006bb6", "players": {number: "Player"}},
                {"name": "Celtics", "colour": "#007a33", "players": {"11": "Eleven"}},
            ]
        }
    )


@pytest.mark.parametrize(
    ("on_roster", "misread", "status", "number"),
    [
        # the symmetric substitutions: each way round, a lookalike is explained
        ("2", "7", "confirmed", "2"),
        ("7", "2", "confirmed", "7"),
        ("3", "8", "confirmed", "3"),
        ("8", "3", "confirmed", "8"),
        ("1", "7", "confirmed", "1"),
        ("7", "1", "confirmed", "7"),
        ("23", "28", "confirmed", "23"),
        ("28", "23", "confirmed", "28"),
        # a dropped digit is a misread; an added one is not
        ("23", "2", "confirmed", "23"),
        ("23", "3", "confirmed", "23"),
        ("2", "23", "off_roster", "23"),
        ("3", "23", "off_roster", "23"),
        # unrelated digits explain nothing
        ("2", "5", "unread", None),
        ("23", "45", "off_roster", "45"),
    ],
)
def test_posterior_confusion_cases(
    on_roster: str, misread: str, status: str, number: str | None
) -> None:
    """Three reads of ``misread`` in one view, one of the roster's number in another."""
    reads = _series(1, [misread] * 3) + _series(1, [on_roster], start=40)
    row = _posterior_row(reads, "knicks", _roster_of(on_roster))
    assert (row["status"], row["number"]) == (status, number)
    assert row["player_name"] == ("Player" if status == "confirmed" else None)


@pytest.mark.parametrize("text", ["99", "45", "00", "10"])
@pytest.mark.parametrize("cfg", [STREAK, ResolveConfig()], ids=["streak", "posterior"])
def test_a_number_on_no_roster_is_off_roster_and_unnamed(text: str, cfg: ResolveConfig) -> None:
    obs = _obs({1: (0, 200)}, _two_views(text))
    obs.team_votes = _vote_rows([(f, 1, c, w, own) for f, c, w, own in VOTES["knicks"]])
    row = _by_track(resolve(obs, ROSTER, NAMING, cfg, MODEL))[1]
    assert (row["status"], row["team_name"], row["number"], row["player_name"]) == (
        "off_roster",
        "Knicks",
        text,
        None,
    )
