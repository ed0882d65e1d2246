"""The README's DuckDB queries give the right answers on a small hand-built output.

tests/e2e/test_readme.py runs every README example; here the DuckDB block runs over tables
whose answers are known: a player lost and prompted again under a new track id, an
ambiguous track on the ball, two clips at different frame rates.
"""

from __future__ import annotations

import re
from pathlib import Path

import pyarrow as pa
import pytest

from hoopray import outputs, store, types

README = Path(__file__).resolve().parents[2] / "README.md"
GAME = "g"
BOX = {"y1": 0.0, "y2": 20.0}
# track -> (x of its box, status, team, number, name, player_key) in clip c1
C1 = {
    1: (0.0, "confirmed", "Knicks", "23", "Robinson", "g/Knicks/23"),
    2: (100.0, "confirmed", "Celtics", "7", "Sept", "g/Celtics/7"),
    3: (0.0, "confirmed", "Knicks", "23", "Robinson", "g/Knicks/23"),
    4: (200.0, "unread", None, None, None, "g/c1/track-4"),
    5: (38.0, "ambiguous", "Knicks", "23", None, "g/c1/track-5"),
}
C1_FRAMES = {1: range(0, 10), 2: range(0, 20), 3: range(12, 20), 4: range(0, 20), 5: range(5, 8)}


def _duckdb_block() -> str:
    fence = re.compile(r"^```python\n(.*?)^```", re.M | re.S)
    [code] = [c for c in fence.findall(README.read_text("utf-8")) if "Who had the ball" in c]
    return code


def _identities(rows: list[dict]) -> types.Identities:
    frames = pa.Table.from_pylist(rows, schema=types.ID_FRAMES)
    tracks = {}
    for r in rows:
        first, last = tracks.get(r["track_id"], (r["frame"], r["frame"]))[:2]
        tracks[r["track_id"]] = (min(first, r["frame"]), max(last, r["frame"]), r)
    id_tracks = pa.Table.from_pylist(
        [
            {
                "track_id": t,
                "player_key": r["player_key"],
                "first_frame": a,
                "last_frame": b,
                "team_name": r["team_name"],
                "number": r["number"],
                "player_name": r["player_name"],
                "status": r["status"],
                "reads_seen": 3,
                "reads_agreeing": 3,
            }
            for t, (a, b, r) in sorted(tracks.items())
        ],
        schema=types.ID_TRACKS,
    )
    return types.Identities(tracks=id_tracks, frames=frames)


def _frame_row(frame: int, track: int, spec: tuple) -> dict:
    x, status, team, number, name, key = spec
    return {
        "frame": frame,
        "track_id": track,
        "player_key": key,
        "x1": x,
        "x2": x + 10.0,
        **BOX,
        "team_name": team,
        "number": number,
        "player_name": name,
        "status": status,
    }


def _clip_row(frames: int, fps: float) -> pa.Table:
    return pa.Table.from_pylist(
        [
            {
                "path": "x.mp4",
                "fingerprint": "f",
                "frames": frames,
                "fps": fps,
                "width": 320,
                "height": 240,
                "read_stride": 5,
                "reader_calls": 0,
                "crops_read": 0,
                "seconds": 1.0,
            }
        ],
        schema=types.OBS_CLIP,
    )


def _detections(rows: list[tuple[int, str, str, float]]) -> pa.Table:
    """(frame, class name, role, x of a 2 px box)."""
    return pa.Table.from_pylist(
        [
            {"frame": f, "class_name": c, "role": r, "x1": x, "x2": x + 2.0, **BOX}
            for f, c, r, x in rows
        ],
        schema=types.OBS_DETECTIONS,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    out = tmp_path / "outputs" / "hoopray"
    rows = [_frame_row(f, t, C1[t]) for t, frames in C1_FRAMES.items() for f in frames]
    c2 = [_frame_row(f, 1, C1[1]) for f in range(40)]
    detections = {
        "c1": _detections(
            [
                (0, "player-in-possession", "player", 100.0),
                (0, "ball", "ball", 104.0),  # at Sept
                (5, "player-in-possession", "player", 0.0),
                (5, "ball", "ball", 40.0),  # on the ambiguous track 5, nearer Robinson
                (10, "ball", "ball", 104.0),  # in the air: nobody in possession
                (15, "player-in-possession", "player", 0.0),
                (15, "ball", "ball", 6.0),  # Robinson, on his second track
                (15, "referee", "referee", 300.0),
                (16, "player-in-possession", "player", 100.0),  # no ball seen
            ]
        ),
        "c2": types.empty_table("observations/detections"),
    }
    for clip_id, frame_rows, fps, frames in (("c1", rows, 1.0, 20), ("c2", c2, 2.0, 40)):
        store.write_table(out, "observations/detections", GAME, clip_id, detections[clip_id])
        store.write_table(out, "observations/clip", GAME, clip_id, _clip_row(frames, fps))
        outputs.write_identities(str(out), GAME, clip_id, _identities(frame_rows))
        outputs.write_status(str(out), outputs.status_row({"game_id": GAME, "clip_id": clip_id}))
    return tmp_path


def test_minutes_and_possession_queries(tree: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("duckdb")
    monkeypatch.chdir(tree)
    namespace: dict = {}
    exec(compile(_duckdb_block(), "README.md", "exec"), namespace)
    minutes = namespace["minutes"].fetchall()
    assert minutes == [
        # 18 frames at 1 fps in c1 (tracks 1 and 3), 40 at 2 fps in c2: 38 s
        (GAME, "g/Knicks/23", "Knicks", "23", "Robinson", 0.63, 2),
        (GAME, "g/Celtics/7", "Celtics", "7", "Sept", 0.33, 1),
    ]
    possession = namespace["possession"].fetchall()
    assert possession == [
        (GAME, "g/Knicks/23", "Knicks", "23", "Robinson", 2),
        (GAME, "g/Celtics/7", "Celtics", "7", "Sept", 1),
    ]
