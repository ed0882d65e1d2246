"""hoopray.summary: the end-of-run table, the confirmed identities and the label scores."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from hoopray import store, types
from hoopray.summary import (
    ConfirmedIdentity,
    GameSummary,
    RunSummary,
    confirmed_identities,
    fold_identities,
    format_summary,
    label_scores,
    with_results,
)


def _track(track_id: int, status: str, number: str | None, **kw: Any) -> dict[str, Any]:
    return {
        "track_id": track_id,
        "player_key": None,
        "first_frame": 0,
        "last_frame": 9,
        "team_cluster": 0,
        "team_name": kw.get("team", "Knicks"),
        "team_confidence": 0.9,
        "number": number,
        "player_name": kw.get("name"),
        "status": status,
        "confirmed_at_frame": 3 if status == "confirmed" else None,
        "reads_seen": 3,
        "reads_agreeing": 3,
        "posterior": 0.9,
        "margin": 0.8,
        "runner_up": None,
    }


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], []),
        ([("g", "c1", _track(1, "unread", None))], []),
        ([("g", "c1", _track(1, "ambiguous", "23"))], []),
        ([("g", "c1", _track(1, "off_roster", "77"))], []),
        (
            [("g", "c1", _track(1, "confirmed", "23", name="Robinson"))],
            [ConfirmedIdentity("g", "Knicks", "23", "Robinson", ["c1"])],
        ),
        (  # one player on two tracks of one clip and on a second clip: one entry
            [
                ("g", "c2", _track(1, "confirmed", "23", name="Robinson")),
                ("g", "c1", _track(4, "confirmed", "23", name="Robinson")),
                ("g", "c1", _track(5, "confirmed", "23", name="Robinson")),
            ],
            [ConfirmedIdentity("g", "Knicks", "23", "Robinson", ["c2", "c1"])],
        ),
        (  # sorted by game, team, number (numerically), a team unknown first
            [
                ("h", "c1", _track(1, "confirmed", "5", team="Celtics")),
                ("g", "c1", _track(2, "confirmed", "11", team="Knicks")),
                ("g", "c1", _track(3, "confirmed", "9", team="Knicks")),
                ("g", "c1", _track(4, "confirmed", "00", team=None)),
            ],
            [
                ConfirmedIdentity("g", None, "00", None, ["c1"]),
                ConfirmedIdentity("g", "Knicks", "9", None, ["c1"]),
                ConfirmedIdentity("g", "Knicks", "11", None, ["c1"]),
                ConfirmedIdentity("h", "Celtics", "5", None, ["c1"]),
            ],
        ),
    ],
)
def test_fold_identities(rows: list, expected: list[ConfirmedIdentity]) -> None:
    assert fold_identities(rows) == expected


def _summary(**kw: Any) -> RunSummary:
    return RunSummary(games=[GameSummary("g", clips_ok=1, frames=10, confirmed=1)], **kw)


def test_format_lists_identities_and_scores() -> None:
    text = format_summary(
        _summary(
            identities=[ConfirmedIdentity("g", "Knicks", "23", "Robinson", ["c1", "c2"])],
            scores={
                "clips": 2,
                "identity_f1": 0.9321,
                "identity_precision": 1.0,
                "identity_recall": 0.8729,
            },
            labels_root="data/labels",
        )
    )
    assert "confirmed identities (1)" in text
    line = next(x for x in text.splitlines() if "Robinson" in x)
    assert line.split() == ["g", "Knicks", "#23", "Robinson", "c1", "c2"]
    assert "identity F1 0.932 (precision 1.000, recall 0.873) over 2 labelled clips" in text
    assert "data/labels" in text


def test_format_without_identities_or_scores() -> None:
    text = format_summary(_summary())
    assert "confirmed identities" not in text and "identity F1" not in text
    assert text.splitlines()[0].split()[:2] == ["game", "clips"]


def _write_tracks(out: str, game_id: str, clip_id: str, rows: list[dict[str, Any]]) -> None:
    table = pa.Table.from_pylist(rows, schema=types.ID_TRACKS)
    store.write_table(out, "identities/tracks", game_id, clip_id, table)


def test_confirmed_identities_reads_only_the_clips_asked(tmp_path: Path) -> None:
    out = str(tmp_path / "out")
    _write_tracks(out, "g", "c1", [_track(1, "confirmed", "23", name="Robinson")])
    _write_tracks(out, "g", "c2", [_track(1, "confirmed", "11", name="Brunson")])
    assert confirmed_identities(out, []) == []
    assert confirmed_identities(out, [("g", "c1"), ("g", "missing")]) == [
        ConfirmedIdentity("g", "Knicks", "23", "Robinson", ["c1"])
    ]


def _labels_and_frames(tmp_path: Path, number: str) -> tuple[str, str]:
    """One clip, one labelled player (#23 of the Knicks) on 4 frames, and stored
    identities that claim ``number`` for the track that covers it."""
    import pyarrow.parquet as pq

    labels_root = tmp_path / "labels"
    (labels_root / "g").mkdir(parents=True)
    label_rows = [
        {name: None for name in types.LABELS.names}
        | {
            "frame": f,
            "object_id": "A-23",
            "role": "player",
            "team": "Knicks",
            "number": "23",
            "x1": 10.0,
            "y1": 10.0,
            "x2": 50.0,
            "y2": 90.0,
        }
        for f in range(4)
    ]
    pq.write_table(
        pa.Table.from_pylist(label_rows, schema=types.LABELS), labels_root / "g/c1.parquet"
    )
    out = str(tmp_path / "out")
    frame_rows = [
        {name: None for name in types.ID_FRAMES.names}
        | {
            "frame": f,
            "track_id": 1,
            "x1": 10.0,
            "y1": 10.0,
            "x2": 50.0,
            "y2": 90.0,
            "team_name": "Knicks",
            "number": number,
            "status": "confirmed",
        }
        for f in range(4)
    ]
    frames = pa.Table.from_pylist(frame_rows, schema=types.ID_FRAMES)
    store.write_table(out, "identities/frames", "g", "c1", frames)
    _write_tracks(out, "g", "c1", [_track(1, "confirmed", number)])
    return out, str(labels_root)


@pytest.mark.parametrize(("number", "f1"), [("23", 1.0), ("32", 0.0)])
def test_label_scores(tmp_path: Path, number: str, f1: float) -> None:
    out, labels = _labels_and_frames(tmp_path, number)
    scores = label_scores(out, labels)
    assert scores["identity_f1"] == pytest.approx(f1)
    assert scores["clips"] == 1
    assert label_scores(out, labels, [("g", "c1")]) == scores
    assert label_scores(out, labels, [("other", "c1")]) == {}
    assert label_scores(str(tmp_path / "nothing"), labels) == {}  # no identities stored


def test_with_results(tmp_path: Path) -> None:
    out, labels = _labels_and_frames(tmp_path, "23")
    summary = with_results(_summary(), out, [("g", "c1")], labels)
    assert summary.identities == [ConfirmedIdentity("g", "Knicks", "23", None, ["c1"])]
    assert summary.scores["identity_f1"] == pytest.approx(1.0)
    bare = with_results(_summary(), out, [("g", "c1")], None)
    assert bare.scores == {} and bare.identities
    assert with_results(_summary(), out, [], labels).scores == {}
    unreadable = with_results(_summary(), out, [("g", "c1")], str(tmp_path / "no-labels"))
    assert unreadable.scores == {} and unreadable.identities
    assert "identities" in summary.to_dict() and "scores" in summary.to_dict()
