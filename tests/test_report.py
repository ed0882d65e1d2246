"""The per-game report and the index, on output trees built by hand with the real store."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pytest
from PIL import Image

from hoopray import store, types
from hoopray.report import write_game_report, write_index
from hoopray.summary import GameSummary
from hoopray.video import H264Writer

GAME = "game-a"
EVIL = "<script>alert(1)</script>"
ROSTER_YAML = f"""
teams:
  - name: Knicks
    colour: "#006BB6"
    players: {{"23": Robinson, "11": Brunson}}
  - name: Celtics
    colour: "#007A33"
    players: {{"7": "{EVIL}", "00": Zero}}
"""


class Page(HTMLParser):
    """Tags, link attributes and table cells (by table id) of a page."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.links: list[str] = []
        self.tables: dict[str, list[list[str]]] = {}
        self.ids: dict[str, dict[str, str | None]] = {}
        self._table: str | None = None
        self._cell: list[str] | None = None
        self._in_body = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        self.elements.append((tag, values))
        self.links += [v for k, v in attrs if k in ("src", "href") and v is not None]
        if values.get("id"):
            self.ids[values["id"]] = values
        if tag == "table":
            self._table = values.get("id") or ""
            self.tables[self._table] = []
        elif tag == "tbody":
            self._in_body = True
        elif tag == "tr" and self._in_body and self._table is not None:
            self.tables[self._table].append([])
        elif tag == "td" and self._in_body:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._cell is not None and self._table is not None:
            self.tables[self._table][-1].append("".join(self._cell).strip())
            self._cell = None
        elif tag == "tbody":
            self._in_body = False
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def _id_track(clip_id: str, track_id: int, first: int, last: int, status: str, **kw) -> dict:
    return {
        "clip_id": clip_id,
        "track_id": track_id,
        "first_frame": first,
        "last_frame": last,
        "team_cluster": kw.get("cluster"),
        "team_name": kw.get("team"),
        "team_confidence": 0.9 if kw.get("team") else None,
        "number": kw.get("number"),
        "player_name": kw.get("name"),
        "status": status,
        "confirmed_at_frame": first if status == "confirmed" else None,
        "reads_seen": kw.get("seen", 3),
        "reads_agreeing": kw.get("agreeing", 3),
    }


@pytest.fixture
def mem_root() -> Iterator[str]:
    """A fresh output root on fsspec's in-memory filesystem (``mem://`` URIs)."""
    import fsspec

    store.register_filesystem("mem", fsspec.filesystem("memory"))
    root = f"mem://bucket/{uuid.uuid4().hex}/out"
    yield root
    store.delete_tree(root)


@pytest.fixture(params=["local", "mem"])
def out_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An output root on local disk, then on the in-memory store."""
    if request.param == "local":
        return str(tmp_path)
    return request.getfixturevalue("mem_root")


def _write_rows(out: str, name: str, game_id: str, rows: list[dict]) -> None:
    schema = types.SCHEMAS[name]
    for clip_id in sorted({r["clip_id"] for r in rows}):
        mine = [{k: r.get(k) for k in schema.names} for r in rows if r["clip_id"] == clip_id]
        store.write_table(out, name, game_id, clip_id, pa.Table.from_pylist(mine, schema=schema))


def _clip_row(clip_id: str, frames: int, fps: float = 10.0) -> dict:
    return {
        "clip_id": clip_id,
        "path": f"/in/{clip_id}.mp4",
        "fingerprint": "f" * 32,
        "frames": frames,
        "fps": fps,
        "width": 64,
        "height": 48,
        "read_stride": 5,
        "reader_calls": 2,
        "crops_read": 4,
        "seconds": 1.5,
    }


def _status_row(clip_id: str, status: str = "ok", **kw) -> dict:
    return {
        "clip_id": clip_id,
        "path": f"/in/{clip_id}.mp4",
        "fingerprint": "f" * 32,
        "status": status,
        "stage": kw.get("stage"),
        "reason": kw.get("reason"),
        "frames": kw.get("frames", 20),
        "confirmed": kw.get("confirmed", 0),
        "seconds_observe": kw.get("observe", 2.0),
        "seconds_resolve": 0.25,
        "seconds_render": 0.5,
    }


def _write_video(location: str, frames: int = 6) -> None:
    with store.atomic_path(location) as tmp:
        encoded = tmp.with_name(tmp.name + ".mp4")
        with H264Writer(encoded, 64, 48, 10) as writer:
            for i in range(frames):
                writer.write(np.full((48, 64, 3), 20 * i, dtype=np.uint8))
        encoded.replace(tmp)


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 30, 30)).save(buffer, format="png")
    return buffer.getvalue()


def build_game(
    out: str | Path,
    game_id: str = GAME,
    *,
    roster: str | None = ROSTER_YAML,
    teams: bool = True,
    clips: str = "mixed",
) -> str:
    """An output tree for one game, on any store. ``clips``: "mixed" (one ok, one
    failed), "failed", or "none"."""
    out = store.normalise(out)
    game_dir = store.game_dir(out, game_id)
    store.makedirs(game_dir)
    if roster is not None:
        store.write_text(store.join(game_dir, "roster.yaml"), roster)
    if teams:
        store.write_bytes(store.join(game_dir, "teams", "scatter.png"), _png())
        naming = {
            "cluster_to_team": {"0": "Knicks", "1": "Celtics"},
            "confidence": 0.75,
            "evidence": {"mapping": "identity", "colour": {"margin": 0.75}, "note": EVIL},
        }
        store.write_text(store.join(game_dir, "teams", "naming.json"), json.dumps(naming))
    if clips == "mixed":
        _write_video(store.join(game_dir, "videos", "clip-01.mp4"))
        _write_rows(out, "observations/clip", game_id, [_clip_row("clip-01", 20)])
        tracks = [
            _id_track("clip-01", 1, 0, 9, "confirmed", team="Knicks", number="23", name="Robinson"),
            _id_track(
                "clip-01", 2, 5, 14, "confirmed", team="Knicks", number="23", name="Robinson"
            ),
            _id_track("clip-01", 3, 0, 19, "ambiguous", team="Celtics", number="7", name=EVIL),
            _id_track("clip-01", 4, 0, 19, "unread", team="Knicks"),
            _id_track("clip-01", 5, 2, 6, "confirmed", team="Knicks", number="99"),
        ]
        _write_rows(out, "identities/tracks", game_id, tracks)
        _write_rows(
            out,
            "status/clips",
            game_id,
            [
                _status_row("clip-01", confirmed=3),
                _status_row(
                    "clip-02", "failed", stage="observe", reason=f"decode error {EVIL}", frames=0
                ),
            ],
        )
    elif clips == "failed":
        rows = [
            _status_row(c, "failed", stage="discover", reason="zero-byte file", frames=None)
            for c in ("clip-01", "clip-02")
        ]
        _write_rows(out, "status/clips", game_id, rows)
    return game_dir


def _report(out: str | Path, game_id: str = GAME, **kw) -> tuple[str, Page]:
    path = write_game_report(out, game_id, **kw)
    assert path == store.join(out, game_id, "report.html")
    text = store.read_text(path)
    return text, Page(text)


def _assert_relative(links: list[str]) -> None:
    for link in links:
        parts = urlsplit(link)
        assert not parts.scheme and not parts.netloc, link
        assert not link.startswith("/"), link


def test_report_of_a_game(out_root: str) -> None:
    game_dir = build_game(out_root)
    text, page = _report(out_root, stage_seconds={"teams": 3.0, "observe": 12.0})

    _assert_relative(page.links)
    assert "videos/clip-01.mp4" in page.links
    assert "teams/scatter.png" in page.links
    for link in page.links:
        if not link.startswith(("../", "#")):
            assert store.is_file(store.join(game_dir, link)), link

    assert "script" not in page.tags
    assert EVIL not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text

    roster = {(r[0], r[1]): r for r in page.tables["roster"]}
    assert set(roster) == {
        ("Knicks", "23"),
        ("Knicks", "11"),
        ("Celtics", "7"),
        ("Celtics", "00"),
    }
    robinson = roster[("Knicks", "23")]
    assert robinson[2:6] == ["Robinson", "confirmed", "clip-01 (1.5 s)", "15"]
    assert robinson[8] == "6/6"
    assert roster[("Celtics", "7")][2:4] == [EVIL, "ambiguous"]
    assert roster[("Knicks", "11")][3:5] == ["not found", ""]
    assert [r[:4] for r in page.tables["identities"]] == [["Knicks", "99", "", "confirmed"]]

    clips = {r[0]: r for r in page.tables["clips"]}
    assert set(clips) == {"clip-01", "clip-02"}
    assert clips["clip-01"][1:6] == ["ok", "64x48", "20", "2.0 s", "3"]
    assert clips["clip-02"][1] == "failed"
    video = page.ids["video-clip-01"]
    assert video["src"] == "videos/clip-01.mp4"
    assert "muted" in video and "controls" in video
    sources = [a for tag, a in page.elements if tag == "source"]
    assert [s["src"] for s in sources] == ["videos/clip-01.mp4"]
    assert sources[0]["type"].startswith('video/mp4; codecs="avc1.64')  # High profile

    assert page.tables["failures"] == [["clip-02", "observe", f"decode error {EVIL}"]]
    assert page.tables["naming"] == [["0", "Knicks"], ["1", "Celtics"]]
    timing = {r[0]: r[1:] for r in page.tables["timing"]}
    assert timing["observe"] == ["4.0 s", "12.0 s"]
    assert timing["teams"] == ["", "3.0 s"]

    index = Page(store.read_text(store.join(out_root, "index.html")))
    assert index.links == [f"{GAME}/report.html"]
    assert index.tables["games"] == [[GAME, "1", "1", "3"]]
    assert not [e.name for e in store.list_dir(game_dir) if e.name.startswith(".")]


@pytest.mark.parametrize(
    ("case", "kwargs", "expect"),
    [
        ("empty", {"clips": "none"}, "This game has no clips."),
        ("all-failed", {"clips": "failed"}, "zero-byte file"),
        ("no-roster", {"roster": None}, "No roster.yaml for this game"),
        ("bad-roster", {"roster": "teams: [1, 2, 3]"}, "The roster could not be read"),
        ("no-teams", {"teams": False}, "No team model for this game."),
    ],
)
def test_report_of_incomplete_games(out_root: str, case: str, kwargs: dict, expect: str) -> None:
    build_game(out_root, **kwargs)
    text, page = _report(out_root)
    assert expect in text
    _assert_relative(page.links)
    if kwargs.get("clips") == "failed":
        assert [r[0] for r in page.tables["failures"]] == ["clip-01", "clip-02"]
        assert all(r[3] == "not found" for r in page.tables["roster"])
    if kwargs.get("roster", ROSTER_YAML) != ROSTER_YAML:
        assert "roster" not in page.tables
        assert ["Celtics", "7", EVIL, "ambiguous"] in [r[:4] for r in page.tables["identities"]]


def test_roster_path_overrides_the_copy_in_the_output(tmp_path: Path) -> None:
    build_game(tmp_path, roster=None)
    roster = tmp_path / "input-roster.yaml"
    roster.write_text(ROSTER_YAML, encoding="utf-8")
    _, page = _report(tmp_path, roster_path=roster)
    assert len(page.tables["roster"]) == 4


def test_roster_found_beside_the_input_clips(out_root: str) -> None:
    out, inputs = store.join(out_root, "out"), store.join(out_root, "in", GAME)
    build_game(out, roster=None)
    store.write_text(store.join(inputs, "roster.yaml"), ROSTER_YAML)
    _write_rows(
        out,
        "observations/clip",
        GAME,
        [_clip_row("clip-01", 20) | {"path": store.join(inputs, "clip-01.mp4")}],
    )
    _, page = _report(out)
    assert len(page.tables["roster"]) == 4


def test_roster_path_on_the_memory_store(mem_root: str) -> None:
    build_game(mem_root, roster=None)
    roster = store.write_text(store.join(mem_root, "rosters", "game-a.yaml"), ROSTER_YAML)
    _, page = _report(mem_root, roster_path=roster)
    assert len(page.tables["roster"]) == 4


@pytest.mark.parametrize("game_id", ["../escape", "tables", ""])
def test_report_refuses_bad_game_ids(tmp_path: Path, game_id: str) -> None:
    with pytest.raises(ValueError):
        write_game_report(tmp_path, game_id)
    assert not any(tmp_path.parent.glob("escape"))


def test_index_lists_only_games_with_reports(out_root: str) -> None:
    index = write_index(out_root)
    assert index == store.join(out_root, "index.html")
    assert Page(store.read_text(index)).links == []
    build_game(out_root, "game-b", clips="none")
    build_game(out_root, "game-a")
    build_game(out_root, "game-c", roster=None, teams=False, clips="failed")  # no report
    store.write_text(store.join(out_root, "no-report", "notes.txt"), "x")
    store.write_text(store.join(out_root, "_runs", "run.json"), "{}")
    store.write_text(store.join(out_root, "_runs", "report.html"), "")
    write_game_report(out_root, "game-b", update_index=False)
    write_game_report(out_root, "game-a", update_index=False)
    page = Page(store.read_text(write_index(out_root)))
    assert page.links == ["game-a/report.html", "game-b/report.html"]
    assert page.tables["games"] == [["game-a", "1", "1", "3"], ["game-b", "0", "0", "0"]]
    _assert_relative(page.links)


def test_index_of_the_given_games(out_root: str) -> None:
    build_game(out_root, "game-a")
    build_game(out_root, "game-b")
    write_game_report(out_root, "game-a", update_index=False)
    write_game_report(out_root, "game-b", update_index=False)
    games = [
        GameSummary("game-b", clips_ok=4, clips_failed=0, confirmed=9),
        {"game_id": "game-a", "clips_ok": 2, "clips_failed": 1, "confirmed": 5},
        GameSummary("game-z", clips_ok=1),  # no report: left out
    ]
    page = Page(store.read_text(write_index(out_root, games=games)))
    assert page.links == ["game-a/report.html", "game-b/report.html"]
    assert page.tables["games"] == [["game-a", "2", "1", "5"], ["game-b", "4", "0", "9"]]


# --------------------------------------------------------------------------- off roster


def _coverage_of(roster_yaml: str | None, tracks: list[dict]) -> tuple[dict, list[tuple]]:
    import yaml

    from hoopray.report import _coverage
    from hoopray.roster import parse_roster

    roster = parse_roster(yaml.safe_load(roster_yaml)) if roster_yaml else None
    players, others = _coverage(roster, tracks)
    return (
        {(c.team, c.number): (c.name, c.status, c.tracks) for c in players},
        [(c.team, c.number, c.name, c.status, c.tracks) for c in others],
    )


@pytest.mark.parametrize(
    ("roster", "tracks", "found", "others"),
    [
        (ROSTER_YAML, [], {}, []),
        (
            ROSTER_YAML,
            [_id_track("c", 1, 0, 9, "off_roster", team="Knicks", number="99")],
            {},
            [("Knicks", "99", None, "off_roster", 1)],
        ),
        (  # a name on an off-roster row (a roster edited since) is never shown
            ROSTER_YAML,
            [_id_track("c", 1, 0, 9, "off_roster", team="Knicks", number="23", name="Robinson")],
            {},
            [("Knicks", "23", None, "off_roster", 1)],
        ),
        (  # the off-roster identity outranks an ambiguous claim of it
            ROSTER_YAML,
            [
                _id_track("c", 1, 0, 9, "ambiguous", team="Knicks", number="99"),
                _id_track("c", 2, 0, 9, "off_roster", team="Knicks", number="99"),
                _id_track("c", 3, 20, 29, "off_roster", team="Knicks", number="99"),
            ],
            {},
            [("Knicks", "99", None, "off_roster", 3)],
        ),
        (
            ROSTER_YAML,
            [
                _id_track("c", 1, 0, 9, "confirmed", team="Knicks", number="23", name="Robinson"),
                _id_track("c", 2, 0, 9, "off_roster", team="Celtics", number="23"),
                _id_track("c", 3, 0, 9, "unread", team="Celtics"),
            ],
            {("Knicks", "23"): ("Robinson", "confirmed", 1)},
            [("Celtics", "23", None, "off_roster", 1)],
        ),
        (
            None,
            [_id_track("c", 1, 0, 9, "off_roster", team="Knicks", number="99", name="X")],
            {},
            [("Knicks", "99", None, "off_roster", 1)],
        ),
    ],
    ids=["empty", "off-roster", "named-row", "with-ambiguous", "mixed", "no-roster"],
)
def test_off_roster_identities_are_listed_without_a_name(
    roster: str | None, tracks: list[dict], found: dict, others: list[tuple]
) -> None:
    players, extra = _coverage_of(roster, tracks)
    assert {k: v for k, v in players.items() if v[1] != "not found"} == found
    assert extra == others


def test_report_shows_off_roster_tracks_unnamed_and_uncounted(tmp_path: Path) -> None:
    build_game(tmp_path)
    _write_rows(
        str(tmp_path),
        "identities/tracks",
        GAME,
        [
            _id_track("clip-01", 1, 0, 9, "confirmed", team="Knicks", number="23", name="Robinson"),
            _id_track("clip-01", 5, 2, 6, "off_roster", team="Knicks", number="99", name="X"),
        ],
    )
    text, page = _report(tmp_path)
    assert [r[:4] for r in page.tables["identities"]] == [["Knicks", "99", "", "off_roster"]]
    assert 'class="st st-off-roster"' in text and ">X<" not in text
    clips = {r[0]: r for r in page.tables["clips"]}
    assert clips["clip-01"][5:7] == ["1", "#23 Robinson (Knicks)"]  # confirmed only
