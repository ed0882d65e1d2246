from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pytest

from hoopray import store, types
from hoopray.masks import rle_encode
from hoopray.render import (
    NEUTRAL,
    Style,
    drawn_rows,
    render,
    render_options,
    track_styles,
)
from hoopray.roster import parse_roster
from hoopray.teams import TeamNaming
from hoopray.types import Identities
from hoopray.video import H264Writer, VideoError, iter_frames

W, H, N = 160, 80, 6
GREY = 100
BLUE = (0, 0, 255)
ROSTER = parse_roster(
    {
        "teams": [
            {"name": "Knicks", "colour": "#0000ff", "players": {"23": "Robinson"}},
            {"name": "Celtics", "colour": "#00ff00", "players": {"7": "Sept"}},
        ]
    }
)
NAMING = TeamNaming({0: "Knicks", 1: "Celtics"}, 1.0, {})
BOX_1 = (10, 10, 40, 40)  # x1, y1, x2, y2 (exclusive ends)
BOX_2 = (120, 10, 150, 40)


def _identity(track_id: int, status: str, number: str | None = None, **kw: object) -> dict:
    return {
        "track_id": track_id,
        "first_frame": 0,
        "last_frame": N - 1,
        "team_cluster": kw.get("team_cluster"),
        "team_name": kw.get("team_name"),
        "team_confidence": None,
        "number": number,
        "player_name": kw.get("player_name"),
        "status": status,
        "confirmed_at_frame": 0 if status != "unread" else None,
        "reads_seen": 3,
        "reads_agreeing": 3,
    }


def _identities(rows: list[dict]) -> Identities:
    return Identities(
        tracks=pa.Table.from_pylist(rows, schema=types.ID_TRACKS),
        frames=types.empty_table("identities/frames"),
    )


def _tracks(rows: list[tuple[int, int, tuple[int, int, int, int]]]) -> pa.Table:
    data: dict[str, list] = {name: [] for name in types.OBS_TRACKS.names}
    for frame, track_id, (x1, y1, x2, y2) in rows:
        mask = np.zeros((H, W), bool)
        mask[y1:y2, x1:x2] = True
        for name, value in [
            ("frame", frame),
            ("track_id", track_id),
            ("x1", x1),
            ("y1", y1),
            ("x2", x2),
            ("y2", y2),
            ("mask_area", int(mask.sum())),
            ("mask_rle", rle_encode(mask)),
            ("height", H),
            ("width", W),
            ("class_name", "player"),
            ("det_confidence", 1.0),
            ("source", "propagated"),
        ]:
            data[name].append(value)
    return pa.table(data, schema=types.OBS_TRACKS)


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("clip") / "clip.mp4"
    with H264Writer(path, W, H, 30, crf=10) as writer:
        for _ in range(N):
            writer.write(np.full((H, W, 3), GREY, np.uint8))
    return path


def _frames(location: str | Path) -> list[np.ndarray]:
    with store.local_copy(location) as local:
        return [rgb for _, rgb in iter_frames(local)]


@pytest.fixture
def mem_root() -> Iterator[str]:
    """A fresh output root on fsspec's in-memory filesystem (``mem://`` URIs)."""
    import fsspec

    store.register_filesystem("mem", fsspec.filesystem("memory"))
    root = f"mem://bucket/{uuid.uuid4().hex}/out"
    yield root
    store.delete_tree(root)


def _near(pixel: np.ndarray, expected: tuple[float, float, float], tol: float = 25) -> bool:
    return bool(np.all(np.abs(pixel.astype(float) - np.asarray(expected)) <= tol))


def _blend(colour: tuple[int, int, int], opacity: float = 0.5) -> tuple[float, float, float]:
    r, g, b = ((1 - opacity) * GREY + opacity * c for c in colour)
    return (r, g, b)


def test_render_paints_team_colour_and_labels(clip: Path, tmp_path: Path) -> None:
    rows = [(f, 1, BOX_1) for f in range(N)] + [(f, 2, BOX_2) for f in (2, 3)]
    identities = _identities(
        [
            _identity(
                1,
                "confirmed",
                "23",
                team_cluster=0,
                team_name="Knicks",
                player_name="Robinson",
            ),
            _identity(2, "unread"),
        ]
    )
    target = tmp_path / "v" / "out.mp4"
    out = render(clip, _tracks(rows), identities, ROSTER, NAMING, target, masks="fill")
    assert out == str(target)
    with av.open(out) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"
    frames = _frames(out)
    assert len(frames) == N
    assert [p.name for p in Path(out).parent.iterdir()] == ["out.mp4"]
    for f, rgb in enumerate(frames):
        assert _near(rgb[25, 25], _blend(BLUE)), rgb[25, 25]  # confirmed: team colour
        expect_2 = _blend(NEUTRAL) if f in (2, 3) else (GREY, GREY, GREY)
        assert _near(rgb[25, 135], expect_2), (f, rgb[25, 135])  # unread: neutral, when present
        assert _near(rgb[5, 50], (GREY, GREY, GREY))  # background untouched
        label_1 = rgb[42:60, 10:40].astype(float)
        assert (label_1[..., 2] - label_1[..., 0]).mean() > 40  # a blue tag under player 1
        below_2 = rgb[42:60, 120:150].astype(float)
        assert np.abs(below_2 - GREY).mean() < 8  # no tag under an unread player


@pytest.mark.parametrize("opacity", [0.0, 1.0])
def test_opacity(clip: Path, tmp_path: Path, opacity: float) -> None:
    identities = _identities([_identity(1, "confirmed", "23", team_name="Knicks")])
    tracks = _tracks([(f, 1, BOX_1) for f in range(N)])
    out = render(
        clip, tracks, identities, ROSTER, None, tmp_path / "o.mp4", masks="fill", opacity=opacity
    )
    assert _near(_frames(out)[0][25, 25], _blend(BLUE, opacity))


def test_no_tracks_copies_the_clip(clip: Path, tmp_path: Path) -> None:
    out = render(
        clip,
        types.empty_table("observations/tracks"),
        _identities([]),
        None,
        None,
        tmp_path / "o.mp4",
    )
    frames = _frames(out)
    assert len(frames) == N
    assert all(np.abs(f.astype(float) - GREY).max() < 8 for f in frames)


def test_track_missing_from_identities_is_neutral(clip: Path, tmp_path: Path) -> None:
    tracks = _tracks([(0, 5, BOX_1)])
    out = render(clip, tracks, _identities([]), ROSTER, NAMING, tmp_path / "o.mp4", masks="fill")
    assert _near(_frames(out)[0][25, 25], _blend(NEUTRAL))


def test_mask_of_another_size_is_resized(clip: Path, tmp_path: Path) -> None:
    half = np.zeros((H // 2, W // 2), bool)
    half[5:20, 5:20] = True  # rows/cols 10..40 at full size
    tracks = _tracks([(0, 1, BOX_1)])
    tracks = tracks.set_column(7, "mask_rle", pa.array([rle_encode(half)]))
    tracks = tracks.set_column(8, "height", pa.array([H // 2], pa.int32()))
    tracks = tracks.set_column(9, "width", pa.array([W // 2], pa.int32()))
    identities = _identities([_identity(1, "confirmed", "23", team_name="Knicks")])
    out = render(clip, tracks, identities, ROSTER, NAMING, tmp_path / "o.mp4", masks="fill")
    assert _near(_frames(out)[0][25, 25], _blend(BLUE))


def test_render_to_the_memory_store(clip: Path, mem_root: str) -> None:
    identities = _identities([_identity(1, "confirmed", "23", team_name="Knicks")])
    tracks = _tracks([(f, 1, BOX_1) for f in range(N)])
    target = store.join(mem_root, "game", "videos", "clip.mp4")
    out = render(clip, tracks, identities, ROSTER, NAMING, target, masks="fill")
    assert out == target
    assert [e.name for e in store.list_dir(store.parent(target))] == ["clip.mp4"]
    assert store.read_head(out, 12)[4:8] == b"ftyp"
    frames = _frames(out)
    assert len(frames) == N
    assert _near(frames[0][25, 25], _blend(BLUE))


@pytest.mark.parametrize("where", ["local", "mem"])
def test_failed_render_leaves_nothing(
    clip: Path, tmp_path: Path, where: str, request: pytest.FixtureRequest
) -> None:
    root = str(tmp_path / "out") if where == "local" else request.getfixturevalue("mem_root")
    tracks = _tracks([(f, 1, BOX_1) for f in range(N)])
    bad = tracks.set_column(7, "mask_rle", pa.array(["not rle"] * N))
    target = store.join(root, "videos", "clip.mp4")
    with pytest.raises(Exception):  # noqa: B017 - whatever the RLE decoder raises
        render(clip, bad, _identities([]), None, None, target)
    assert not store.exists(target)
    assert store.list_dir(store.join(root, "videos")) == []


def test_output_needs_a_video_suffix(clip: Path, mem_root: str) -> None:
    with pytest.raises(ValueError, match="must end in"):
        render(
            clip,
            types.empty_table("observations/tracks"),
            _identities([]),
            None,
            None,
            store.join(mem_root, "clip.txt"),
        )


def test_missing_clip_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(VideoError):
        render(
            tmp_path / "nope.mp4",
            types.empty_table("observations/tracks"),
            _identities([]),
            None,
            None,
            tmp_path / "out" / "o.mp4",
        )
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


@pytest.mark.parametrize("opacity", [-0.1, 1.5])
def test_bad_opacity(clip: Path, tmp_path: Path, opacity: float) -> None:
    with pytest.raises(ValueError, match="opacity"):
        render(
            clip,
            types.empty_table("observations/tracks"),
            _identities([]),
            None,
            None,
            tmp_path / "o.mp4",
            opacity=opacity,
        )


@pytest.mark.parametrize(
    ("row", "naming", "expected"),
    [
        (
            _identity(1, "confirmed", "23", team_name="Knicks", player_name="Robinson"),
            None,
            Style((0, 0, 255), "#23 Robinson"),
        ),
        (_identity(1, "confirmed", "99", team_name="Celtics"), None, Style((0, 255, 0), "#99")),
        (_identity(1, "confirmed", "23"), None, Style(NEUTRAL, "#23")),  # team unknown
        (_identity(1, "confirmed", "23", team_cluster=1), NAMING, Style((0, 255, 0), "#23")),
        (_identity(1, "confirmed", "23", team_name="Lakers"), None, Style(NEUTRAL, "#23")),
        (_identity(1, "ambiguous", "23", team_name="Knicks"), None, Style(NEUTRAL, "#23 ?")),
        (_identity(1, "unread", team_name="Knicks"), None, Style(NEUTRAL, None)),
    ],
)
def test_track_styles(row: dict, naming: TeamNaming | None, expected: Style) -> None:
    assert track_styles(_identities([row]), ROSTER, naming) == {1: expected}


def test_track_styles_empty() -> None:
    assert track_styles(_identities([]), ROSTER, NAMING) == {}


def _bluish(patch: np.ndarray) -> float:
    """How much bluer than red a patch is, on average (grey: about 0)."""
    values = patch.astype(float).reshape(-1, 3)
    return float((values[:, 2] - values[:, 0]).mean())


def _outline_frame(clip: Path, tmp_path: Path, **options: object) -> np.ndarray:
    identities = _identities([_identity(1, "confirmed", "23", team_name="Knicks")])
    tracks = _tracks([(f, 1, BOX_1) for f in range(N)])
    out = render(clip, tracks, identities, ROSTER, NAMING, tmp_path / "o.mp4", **options)
    return _frames(out)[0]


def test_default_outline_leaves_the_player_visible(clip: Path, tmp_path: Path) -> None:
    rgb = _outline_frame(clip, tmp_path)
    assert _bluish(rgb[9:12, 15:35]) > 20  # top edge of the box in team colour
    assert _bluish(rgb[15:35, 9:12]) > 20  # left edge
    assert _near(rgb[25, 25], (GREY, GREY, GREY), tol=12)  # inside untouched
    assert _bluish(rgb[42:60, 10:40]) > 40  # the label is still drawn


def test_masks_none_draws_labels_only(clip: Path, tmp_path: Path) -> None:
    rgb = _outline_frame(clip, tmp_path, masks="none")
    assert abs(_bluish(rgb[9:12, 15:35])) < 8
    assert _near(rgb[25, 25], (GREY, GREY, GREY), tol=12)
    assert _bluish(rgb[42:60, 10:40]) > 40


def test_max_masks_keeps_identified_players(clip: Path, tmp_path: Path) -> None:
    rows = [(f, 1, BOX_1) for f in range(N)] + [(f, 2, BOX_2) for f in range(N)]
    identities = _identities(
        [_identity(1, "unread"), _identity(2, "confirmed", "23", team_name="Knicks")]
    )
    out = render(clip, _tracks(rows), identities, ROSTER, NAMING, tmp_path / "o.mp4", max_masks=1)
    rgb = _frames(out)[0]
    assert _bluish(rgb[9:12, 125:145]) > 20  # the confirmed player's outline (track 2)
    assert np.abs(rgb[9:12, 15:35].astype(float) - GREY).mean() < 8  # track 1 left out


@pytest.mark.parametrize(
    ("rows", "labelled", "max_masks", "expected"),
    [
        ([], [], 3, []),
        ([4, 5], [False, False], None, [4, 5]),
        ([4, 5], [False, True], 2, [4, 5]),  # under the cap: all, in order
        ([4, 5, 6], [False, True, False], 2, [5, 4]),  # labelled first, then in order
        ([4, 5, 6], [True, False, True], 1, [4]),
        ([4, 5, 6], [True, True, True], 0, []),
    ],
)
def test_drawn_rows(
    rows: list[int], labelled: list[bool], max_masks: int | None, expected: list[int]
) -> None:
    got = drawn_rows(np.asarray(rows, int), np.asarray(labelled, bool), max_masks)
    assert got.tolist() == expected


@pytest.mark.parametrize(
    ("output", "expected"),
    [
        ({}, {}),
        ({"render": True, "crf": 23, "report": True}, {}),
        (
            {"masks": "fill", "mask_opacity": 0.3, "max_masks": None, "crf": 18},
            {"masks": "fill", "opacity": 0.3, "max_masks": None},
        ),
        ({"masks": "outline"}, {"masks": "outline"}),
    ],
)
def test_render_options(output: dict, expected: dict) -> None:
    assert render_options(output) == expected


@pytest.mark.parametrize(
    ("options", "match"),
    [({"masks": "blobs"}, "masks must be"), ({"max_masks": -1}, "max_masks")],
)
def test_bad_mask_options(clip: Path, tmp_path: Path, options: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        render(
            clip,
            types.empty_table("observations/tracks"),
            _identities([]),
            None,
            None,
            tmp_path / "o.mp4",
            **options,
        )


def test_a_flood_of_masks_leaves_the_picture_readable(tmp_path: Path) -> None:
    """40 masks of half the frame each, as a random-weight SAM2 gives: with the defaults
    (outlines, at most 20) most of the picture is untouched; blended without a cap, none."""
    width, height, frames = 320, 180, 2
    path = tmp_path / "flood.mp4"
    with H264Writer(path, width, height, 30, crf=10) as writer:
        for _ in range(frames):
            writer.write(np.full((height, width, 3), GREY, np.uint8))
    rng = np.random.default_rng(0)
    data: dict[str, list] = {name: [] for name in types.OBS_TRACKS.names}
    for frame in range(frames):
        for track_id in range(1, 41):
            x1, y1 = int(rng.integers(0, width // 2)), int(rng.integers(0, height // 2))
            mask = np.zeros((height, width), bool)
            mask[y1 : y1 + height // 2, x1 : x1 + width // 2] = True
            row = {
                "frame": frame,
                "track_id": track_id,
                "x1": x1,
                "y1": y1,
                "x2": x1 + width // 2,
                "y2": y1 + height // 2,
                "mask_area": int(mask.sum()),
                "mask_rle": rle_encode(mask),
                "height": height,
                "width": width,
                "class_name": "player",
                "det_confidence": 1.0,
                "source": "propagated",
            }
            for name in data:
                data[name].append(row.get(name))
    tracks = pa.table(data, schema=types.OBS_TRACKS)

    def changed(**options: object) -> float:
        out = render(path, tracks, _identities([]), None, None, tmp_path / "o.mp4", **options)
        rgb = _frames(out)[0].astype(float)
        return float((np.abs(rgb - GREY).max(axis=2) > 30).mean())

    assert changed() < 0.25  # about 0.15
    assert changed(masks="fill", max_masks=None) > 0.8  # about 0.89
