from __future__ import annotations

import io
import math
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hoopray import store
from hoopray.evaluate import (
    box_iou,
    evaluate_output,
    format_table,
    label_files,
    labels_from_mot_csv,
    main,
    match_boxes,
    pool,
    score_clip,
)
from hoopray.types import ID_FRAMES, ID_TRACKS, LABELS

# Two players moving right over 6 frames; frames 2 and 5 are unlabelled.
PLAYERS = {"Blue#23": ("Blue", "23", 100.0), "Red#7": ("Red", "7", 400.0)}
LABELLED_FRAMES = [0, 1, 3, 4]
ALL_FRAMES = range(6)


def _labels(frames: list[int] = LABELLED_FRAMES, with_referee: bool = True) -> pa.Table:
    rows = []
    for f in frames:
        for obj, (team, number, x) in PLAYERS.items():
            rows.append(_label_row(f, obj, "player", team, number, x + 5 * f))
        if with_referee:
            rows.append(_label_row(f, "ref-1", "referee", None, None, 800.0))
    return pa.Table.from_pylist(rows, schema=LABELS)


def _label_row(f: int, obj: str, role: str, team: str | None, number: str | None, x: float):
    return {
        "frame": f,
        "object_id": obj,
        "role": role,
        "team": team,
        "number": number,
        "x1": x,
        "y1": 100.0,
        "x2": x + 60,
        "y2": 260.0,
        "number_visible": True,
        "nx1": None,
        "ny1": None,
        "nx2": None,
        "ny2": None,
        "mask_rle": None,
    }


def _predictions(
    identity: dict[int, tuple[str | None, str | None, str]],
    track_of: dict[str, int] | None = None,
) -> tuple[pa.Table, pa.Table]:
    """identities/frames and identities/tracks for tracks following PLAYERS exactly."""
    track_of = track_of or {"Blue#23": 1, "Red#7": 2}
    frames, tracks = [], []
    for obj, tid in track_of.items():
        team, number, status = identity[tid]
        x0 = PLAYERS[obj][2]
        for f in ALL_FRAMES:
            frames.append(
                {
                    "frame": f,
                    "track_id": tid,
                    "x1": x0 + 5 * f,
                    "y1": 100.0,
                    "x2": x0 + 5 * f + 60,
                    "y2": 260.0,
                    "team_name": team,
                    "number": number,
                    "player_name": None,
                    "status": status,
                }
            )
        tracks.append(
            {
                "track_id": tid,
                "first_frame": 0,
                "last_frame": 5,
                "team_cluster": 0,
                "team_name": team,
                "team_confidence": 1.0,
                "number": number,
                "player_name": None,
                "status": status,
                "confirmed_at_frame": 3 if status == "confirmed" else None,
                "reads_seen": 3,
                "reads_agreeing": 3,
            }
        )
    return pa.Table.from_pylist(frames, schema=ID_FRAMES), pa.Table.from_pylist(
        tracks, schema=ID_TRACKS
    )


PERFECT = {1: ("Blue", "23", "confirmed"), 2: ("Red", "7", "confirmed")}


def test_perfect_predictions_score_one() -> None:
    frames, tracks = _predictions(PERFECT)
    s = score_clip(_labels(), frames, tracks)
    assert s.identity_precision == s.identity_recall == s.identity_f1 == 1.0
    assert s.track_number_accuracy == 1.0 and s.wrong_confirmations == 0
    assert s.team_accuracy == 1.0 and s.team_coverage == 1.0
    assert s.idf1 == pytest.approx(1.0) and s.mota == pytest.approx(1.0)
    assert s.hota == pytest.approx(1.0)
    assert s.median_frames_to_confirm == 3 and s.median_reads_to_confirm == 3


@pytest.mark.parametrize(
    ("identity", "precision", "track_acc", "wrong", "team_acc"),
    [
        # swapped number on track 2: its claims are wrong, one wrong confirmation
        ({1: ("Blue", "23", "confirmed"), 2: ("Red", "2", "confirmed")}, 0.5, 0.5, 1, 1.0),
        # swapped team on track 2: the identity is wrong and team accuracy drops
        ({1: ("Blue", "23", "confirmed"), 2: ("Blue", "7", "confirmed")}, 0.5, 1.0, 0, 0.5),
        # track 2 unconfirmed: no claim, so precision stays 1 but recall halves
        ({1: ("Blue", "23", "confirmed"), 2: ("Red", None, "unread")}, 1.0, 0.5, 0, 1.0),
    ],
)
def test_errors_are_counted_where_they_belong(
    identity, precision: float, track_acc: float, wrong: int, team_acc: float
) -> None:
    frames, tracks = _predictions(identity)
    s = score_clip(_labels(), frames, tracks)
    assert s.identity_precision == pytest.approx(precision)
    assert s.identity_recall == pytest.approx(0.5)
    assert s.track_number_accuracy == pytest.approx(track_acc)
    assert s.wrong_confirmations == wrong
    assert s.team_accuracy == pytest.approx(team_acc)
    assert s.idf1 == pytest.approx(1.0)  # tracking itself is perfect


def test_unlabelled_frames_are_ignored() -> None:
    frames, tracks = _predictions(PERFECT)
    # predictions exist on 6 frames, labels on 4: only the labelled 4 count
    s = score_clip(_labels(), frames, tracks)
    assert s.labelled_frames == 4
    assert s.claims == 8
    assert s.labelled_player_frames == 8


def test_referees_are_not_scored() -> None:
    frames, tracks = _predictions(PERFECT)
    assert score_clip(_labels(with_referee=True), frames, tracks) == score_clip(
        _labels(with_referee=False), frames, tracks
    )


def test_id_switch_lowers_idf1_not_identity() -> None:
    frames, tracks = _predictions(PERFECT)
    rows = frames.to_pylist()
    for r in rows:  # the tracker swaps ids from frame 3 on; identities follow the boxes
        if r["frame"] >= 3:
            r["track_id"] = 3 - r["track_id"]
            r["team_name"], r["number"] = ("Blue", "23") if r["x1"] < 300 else ("Red", "7")
    s = score_clip(_labels(), pa.Table.from_pylist(rows, schema=ID_FRAMES), tracks)
    assert s.idf1 < 1.0
    assert s.identity_precision == 1.0


def _box_row(f: int, track_id: int, x: float) -> dict:
    """An identities/frames row for a 60 x 160 box at ``x`` (the labels' box shape)."""
    return {
        "frame": f,
        "track_id": track_id,
        "x1": x,
        "y1": 100.0,
        "x2": x + 60,
        "y2": 260.0,
        "team_name": None,
        "number": None,
        "player_name": None,
        "status": "unread",
    }


def test_tracking_metrics_on_a_miss_a_false_positive_and_an_id_switch() -> None:
    """Labels: A (Blue#23) and B (Red#7) on frames 0..3. Predicted boxes match exactly
    (IoU 1) or not at all (IoU 0), so HOTA is the same at every alpha:

    ====== ============ ============ ===================
    frame  A            B            extra
    ====== ============ ============ ===================
    0      track 1      track 2
    1      track 1      track 2      track 3 (nothing)
    2      track 1      missed
    3      track 1      track 4
    ====== ============ ============ ===================

    8 labelled boxes, 8 predicted. CLEAR: TP 7, FN 1, FP 1 and 1 id switch (B goes from
    track 2 to 4), so MOTA = (7 - 1 - 1) / 8 = 0.625.
    HOTA: DetA = TP / (TP + FN + FP) = 7 / 9. Per matched pair, A(g, t) = TPA / (|g| + |t| -
    TPA): (A, 1) 4 / (4 + 4 - 4) = 1 on 4 matches, (B, 2) 2 / (4 + 2 - 2) = 0.5 on 2 and
    (B, 4) 1 / (4 + 1 - 1) = 0.25 on 1; AssA = (4 + 1 + 0.25) / 7 = 0.75, so
    HOTA = sqrt(7 / 9 * 0.75) = 0.7638.
    IDF1: A-1 and B-2 are the best id pairs, IDTP = 4 + 2, IDF1 = 2 * 6 / (8 + 8) = 0.75.
    """
    x_a, x_b = PLAYERS["Blue#23"][2], PLAYERS["Red#7"][2]
    placed = {0: [(1, x_a), (2, x_b)], 1: [(1, x_a), (2, x_b), (3, 650.0)]}
    placed |= {2: [(1, x_a)], 3: [(1, x_a), (4, x_b)]}
    rows = [_box_row(f, tid, x + 5 * f) for f, tracks in placed.items() for tid, x in tracks]
    frames = pa.Table.from_pylist(rows, schema=ID_FRAMES)
    s = score_clip(_labels([0, 1, 2, 3]), frames)
    assert s.labelled_player_frames == 8
    assert s.mota == pytest.approx((7 - 1 - 1) / 8)
    assert s.hota == pytest.approx(math.sqrt(7 / 9 * 0.75))
    assert s.idf1 == pytest.approx(0.75)


def test_partial_overlap_lowers_hota_by_alpha() -> None:
    """One player, one track, IoU 0.62 on each of 2 frames: matched for the alphas 0.05 ..
    0.6 (12 of 19), unmatched above. At a matching alpha DetA = AssA = 1; otherwise TP = 0
    and HOTA = 0. So HOTA = 12 / 19, and MOTA (threshold 0.5) = 1."""
    labels = pa.Table.from_pylist(
        [_label_row(f, "Blue#23", "player", "Blue", "23", 100.0) for f in (0, 1)], schema=LABELS
    )
    # IoU of [100, 160] with [100 + d, 160 + d] on x at equal heights: (60 - d) / (60 + d)
    shift = 60 * (1 - 0.62) / (1 + 0.62)
    frames = pa.Table.from_pylist([_box_row(f, 1, 100.0 + shift) for f in (0, 1)], schema=ID_FRAMES)
    s = score_clip(labels, frames, iou_threshold=0.5)
    assert s.hota == pytest.approx(12 / 19)
    assert s.mota == pytest.approx(1.0)


@pytest.mark.parametrize("empty", ["labels", "predictions", "both"])
def test_empty_inputs(empty: str) -> None:
    frames, tracks = _predictions(PERFECT)
    labels = _labels([]) if empty in ("labels", "both") else _labels()
    if empty in ("predictions", "both"):
        frames, tracks = ID_FRAMES.empty_table(), ID_TRACKS.empty_table()
    s = score_clip(labels, frames, tracks)
    assert s.claims == 0  # claims count on labelled frames only
    assert s.identity_precision == 0.0 and s.identity_recall == 0.0
    if empty == "predictions":
        assert s.idf1 == 0.0 and s.mota == 0.0
    else:
        assert math.isnan(s.idf1)


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([[0, 0, 10, 10]], [[0, 0, 10, 10]], [[1.0]]),
        ([[0, 0, 10, 10]], [[5, 0, 15, 10]], [[1 / 3]]),
        ([[0, 0, 10, 10]], [[20, 20, 30, 30]], [[0.0]]),
        ([[0, 0, 0, 0]], [[0, 0, 0, 0]], [[0.0]]),
        (np.zeros((0, 4)), [[0, 0, 1, 1]], np.zeros((0, 1))),
    ],
)
def test_box_iou(a, b, expected) -> None:
    np.testing.assert_allclose(box_iou(np.array(a), np.array(b)), np.array(expected))


def test_match_boxes_is_one_to_one_and_thresholded() -> None:
    labels = np.array([[0, 0, 10, 10], [100, 0, 110, 10]])
    preds = np.array([[1, 0, 11, 10], [0, 0, 10, 10], [500, 0, 510, 10]])
    assert [(a, b) for a, b, _ in match_boxes(labels, preds, 0.5)] == [(0, 1)]
    assert match_boxes(labels, np.zeros((0, 4)), 0.5) == []


def test_mot_csv_conversion(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text(
        "1,5,10,20,30,40,1,-1,-1,-1,Blue,23\n"
        "2,5,12,20,30,40,1,-1,-1,-1,Blue,23\n"
        "1,6,100,20,30,40,1,-1,-1,-1\n"
    )
    table = labels_from_mot_csv(path, identities={"6": ("Red", "7")})
    rows = table.to_pylist()
    assert [r["frame"] for r in rows] == [0, 1, 0]
    assert rows[0]["x2"] == 40 and rows[0]["y2"] == 60
    assert [(r["team"], r["number"]) for r in rows] == [
        ("Blue", "23"),
        ("Blue", "23"),
        ("Red", "7"),
    ]


@pytest.mark.parametrize(
    ("content", "message"),
    [("1,5,10\n", "at least 6 columns"), ("0,5,1,2,3,4\n", "1-based"), ("a,5,1,2,3,4\n", "gt")],
)
def test_mot_csv_errors(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "gt.txt"
    path.write_text(content)
    with pytest.raises(ValueError, match=message):
        labels_from_mot_csv(path)


def test_mot_csv_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("")
    assert labels_from_mot_csv(path).num_rows == 0


def test_pool_and_table() -> None:
    frames, tracks = _predictions(PERFECT)
    good = score_clip(_labels(), frames, tracks)
    frames, tracks = _predictions({1: ("Blue", "23", "confirmed"), 2: ("Red", "2", "confirmed")})
    bad = score_clip(_labels(), frames, tracks)
    pooled = pool({("g", "a"): good, ("g", "b"): bad})
    assert pooled["identity_precision"] == pytest.approx(12 / 16)
    assert pooled["wrong_confirmations"] == 1
    text = format_table({("g", "a"): good, ("g", "b"): bad})
    assert "g/a" in text and "ALL" in text
    assert pool({}) == {}


def test_command_prints_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hoopray import store

    frames, tracks = _predictions(PERFECT)
    out, labels = tmp_path / "out", tmp_path / "labels"
    store.write_table(out, "identities/frames", "g1", "c1", frames)
    store.write_table(out, "identities/tracks", "g1", "c1", tracks)
    (labels / "g1").mkdir(parents=True)
    pq.write_table(_labels(), labels / "g1" / "c1.parquet")
    assert main([str(out), str(labels)]) == 0
    printed = capsys.readouterr().out
    assert "g1/c1" in printed and "1.000" in printed
    assert main([str(tmp_path / "nothing"), str(labels)]) == 1


@pytest.fixture
def mem_root() -> Iterator[str]:
    """A fresh root on fsspec's in-memory filesystem (``mem://`` URIs)."""
    import fsspec

    store.register_filesystem("mem", fsspec.filesystem("memory"))
    root = f"mem://bucket/{uuid.uuid4().hex}"
    yield root
    store.delete_tree(root)


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def test_evaluate_output_and_command_on_the_memory_store(
    mem_root: str, capsys: pytest.CaptureFixture[str]
) -> None:
    frames, tracks = _predictions(PERFECT)
    out, labels = store.join(mem_root, "out"), store.join(mem_root, "labels")
    store.write_table(out, "identities/frames", "g1", "c1", frames)
    store.write_table(out, "identities/tracks", "g1", "c1", tracks)
    store.write_bytes(store.join(labels, "g1", "c1.parquet"), _parquet(_labels()))
    store.write_bytes(store.join(labels, "g1", "c2.parquet"), _parquet(_labels()))  # no ids
    store.write_text(store.join(labels, "g1", "notes.txt"), "not labels")
    assert [key[:2] for key in label_files(labels)] == [("g1", "c1"), ("g1", "c2")]
    scores = evaluate_output(out, labels)
    assert list(scores) == [("g1", "c1")]
    assert scores[("g1", "c1")].identity_f1 == 1.0
    assert main([out, labels]) == 0
    assert "g1/c1" in capsys.readouterr().out
    assert main([store.join(mem_root, "nothing"), labels]) == 1


def test_mot_csv_from_the_memory_store(mem_root: str) -> None:
    location = store.write_text(store.join(mem_root, "gt.txt"), "1,5,10,20,30,40,1,-1,-1,-1,A,9\n")
    assert labels_from_mot_csv(location).to_pylist()[0]["number"] == "9"


@pytest.mark.parametrize(
    ("identity", "claims", "wrong", "off_roster", "off_right"),
    [
        (PERFECT, 8, 0, 0, 0),
        # the roster lacks Red's 7: no claim, no confirmation, a right off-roster number
        ({1: ("Blue", "23", "confirmed"), 2: ("Red", "7", "off_roster")}, 4, 0, 1, 1),
        # a misread confirmed off the roster: not a wrong confirmation, never named
        ({1: ("Blue", "23", "confirmed"), 2: ("Red", "77", "off_roster")}, 4, 0, 1, 0),
        ({1: ("Blue", "2", "off_roster"), 2: ("Red", "7", "off_roster")}, 0, 0, 2, 1),
        ({1: ("Blue", None, "unread"), 2: ("Red", None, "unread")}, 0, 0, 0, 0),
    ],
)
def test_off_roster_tracks_are_counted_apart(
    identity: dict, claims: int, wrong: int, off_roster: int, off_right: int
) -> None:
    frames, tracks = _predictions(identity)
    s = score_clip(_labels(), frames, tracks)
    assert (s.claims, s.wrong_confirmations) == (claims, wrong)
    assert (s.off_roster_tracks, s.off_roster_numbers_right) == (off_roster, off_right)
    assert s.identity_precision == (1.0 if claims else 0.0)
    pooled = pool({("g", "a"): s, ("g", "b"): s})
    assert pooled["off_roster_tracks"] == 2 * off_roster
    assert pooled["off_roster_numbers_right"] == 2 * off_right


def test_off_roster_without_predictions() -> None:
    s = score_clip(_labels(), ID_FRAMES.empty_table(), ID_TRACKS.empty_table())
    assert (s.claims, s.off_roster_tracks, s.off_roster_numbers_right) == (0, 0, 0)
