from __future__ import annotations

import dataclasses
import itertools
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from scipy import ndimage

from hoopray.masks import masks_to_xyxy, rle_decode
from hoopray.roster import load_roster
from hoopray.testing.synthetic import (
    MAX_FRAME_INDEX,
    SIMILAR_COLOURS,
    WORLD_PRESETS,
    ClipSpec,
    SyntheticGame,
    TeamSpec,
    WorldNoise,
    _crop_rle,
    clip_key,
    draw_stamp,
    hex_to_rgb,
    iter_clip,
    make_game,
    make_roster,
    read_stamp,
    stamp_bits,
    stamp_size,
    world_noise,
)
from hoopray.types import LABELS
from hoopray.video import iter_frames, probe

SAMPLE_FRAMES = (0, 17, 33, 52)


@pytest.fixture(scope="module")
def game(tmp_path_factory: pytest.TempPathFactory) -> SyntheticGame:
    root = tmp_path_factory.mktemp("synthetic")
    return make_game(root / "games", root / "labels", clips=1, seconds=2.0)


@pytest.fixture(scope="module")
def labels(game: SyntheticGame) -> pa.Table:
    return pq.read_table(game.labels[0])


@pytest.fixture(scope="module")
def decoded(game: SyntheticGame) -> dict[int, np.ndarray]:
    wanted = set(SAMPLE_FRAMES)
    return {i: f for i, f in iter_frames(game.clips[0], stop=max(wanted) + 1) if i in wanted}


def _rows(table: pa.Table, frame: int) -> list[dict]:
    return [r for r in table.to_pylist() if r["frame"] == frame]


def _small_spec(**changes: object) -> ClipSpec:
    _, teams = make_roster(3, ("#1d428a", "#ce1141"), 3)
    spec = ClipSpec(
        game_id="g", clip_id="c", seed=3, frames=12, fps=10, width=320, height=180, teams=teams
    )
    return dataclasses.replace(spec, **changes)


def test_files_and_schema(game: SyntheticGame, labels: pa.Table) -> None:
    assert game.clips == [game.directory / "clip-01.mp4"]
    assert labels.schema.equals(LABELS)
    info = probe(game.clips[0])
    assert (info.width, info.height, info.frames, info.fps) == (1280, 720, 60, 30.0)
    assert sorted(set(labels.column("frame").to_pylist())) == list(range(60))
    hidden = [p.name for p in game.directory.iterdir() if p.name.startswith(".")]
    assert hidden == []


def test_roster(game: SyntheticGame) -> None:
    roster = load_roster(game.roster_path)
    names = [t.name for t in roster.teams]
    assert len(set(names)) == 2
    assert [t.colour for t in roster.teams] == ["#1d428a", "#ce1141"]
    for team in roster.teams:
        assert 8 <= len(team.players) <= 12
    on_court = {
        name: {o.split("#")[1] for o in game.on_court if o.startswith(name)} for name in names
    }
    assert all(len(v) == 5 for v in on_court.values())
    assert on_court[names[0]] & on_court[names[1]], "the default game shares a number"
    for object_id in game.on_court:
        team, number = object_id.split("#")
        assert roster.player(team, number) is not None


def test_labels_match_a_fresh_render(game: SyntheticGame, labels: pa.Table) -> None:
    rows = [row for _, _, frame_rows in iter_clip(game.specs[0]) for row in frame_rows]
    assert pa.Table.from_pylist(rows, schema=LABELS).equals(labels)


@pytest.mark.parametrize(("seed", "same"), [(0, True), (1, False)])
def test_determinism_by_seed(seed: int, same: bool) -> None:
    spec = _small_spec()
    first = list(iter_clip(spec))
    again = list(iter_clip(dataclasses.replace(spec, seed=spec.seed + 1 - int(same))))
    frames_equal = all(np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    rows_equal = [a[2] for a in first] == [b[2] for b in again]
    assert frames_equal == same and rows_equal == same
    assert make_roster(seed, ("#000000", "#ffffff"), 5) == make_roster(
        seed, ("#000000", "#ffffff"), 5
    )


def test_jersey_pixels_lie_in_their_team_masks(
    game: SyntheticGame, labels: pa.Table, decoded: dict[int, np.ndarray]
) -> None:
    teams = game.roster["teams"]
    for frame, image in decoded.items():
        rows = _rows(labels, frame)
        for team in teams:
            union = np.zeros(image.shape[:2], bool)
            for row in rows:
                if row["team"] == team["name"]:
                    union |= rle_decode(row["mask_rle"], 720, 1280)
            union = ndimage.binary_dilation(union, iterations=2)  # codec blur at the edges
            distance = np.linalg.norm(image.astype(float) - hex_to_rgb(team["colour"]), axis=2)
            jersey = distance < 40
            assert jersey.sum() > 2000
            assert (jersey & union).sum() / jersey.sum() >= 0.95


def test_masks_boxes_and_number_boxes(labels: pa.Table, decoded: dict[int, np.ndarray]) -> None:
    visible_numbers = 0
    for frame, image in decoded.items():
        for row in _rows(labels, frame):
            mask = rle_decode(row["mask_rle"], 720, 1280)
            box = [row[k] for k in ("x1", "y1", "x2", "y2")]
            assert masks_to_xyxy(mask[None])[0].tolist() == box
            if row["role"] != "player":
                assert row["number_visible"] is None and row["team"] is None
                continue
            if not row["number_visible"]:
                assert row["nx1"] is None
                continue
            visible_numbers += 1
            nx1, ny1, nx2, ny2 = (int(row[k]) for k in ("nx1", "ny1", "nx2", "ny2"))
            assert box[0] <= nx1 < nx2 <= box[2] and box[1] <= ny1 < ny2 <= box[3]
            assert mask[ny1:ny2, nx1:nx2].all()
            assert 40 <= ny2 - ny1 <= 60
            patch = image[ny1:ny2, nx1:nx2].astype(int)
            assert (patch.min(axis=2) > 200).mean() > 0.15, "white digits drawn in the box"
    assert visible_numbers >= 3


def test_numbers_turn_away_and_come_back(labels: pa.Table) -> None:
    players = labels.filter(pc.equal(labels.column("role"), "player")).to_pylist()
    by_player: dict[str, list[bool]] = {}
    for row in sorted(players, key=lambda r: r["frame"]):
        by_player.setdefault(row["object_id"], []).append(row["number_visible"])
    toggles = [sum(a != b for a, b in itertools.pairwise(v)) for v in by_player.values()]
    assert len(by_player) == 10
    assert sum(t >= 1 for t in toggles) >= 0.7 * len(toggles)


def test_entering_player_has_no_rows_before_entering(game: SyntheticGame, labels: pa.Table) -> None:
    ((object_id, enter),) = game.specs[0].enter_frames.items()
    assert object_id in game.on_court and 0 < enter < 60
    frames = [r["frame"] for r in labels.to_pylist() if r["object_id"] == object_id]
    assert frames and min(frames) >= enter
    others = [r["frame"] for r in labels.to_pylist() if r["object_id"] == game.on_court[0]]
    assert min(others) == 0


def test_stamp_round_trips_through_h264(
    game: SyntheticGame, decoded: dict[int, np.ndarray]
) -> None:
    key = clip_key(game.game_id, "clip-01")
    assert {i: read_stamp(f) for i, f in decoded.items()} == {i: (key, i) for i in decoded}


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((720, 1280, 3), np.uint8),
        np.full((720, 1280, 3), 255, np.uint8),
        np.random.default_rng(0).integers(0, 256, (720, 1280, 3), np.uint8),
        np.zeros((10, 10, 3), np.uint8),
        np.zeros((720, 1280), np.uint8),
    ],
    ids=["black", "white", "noise", "tiny", "grey-2d"],
)
def test_unstamped_frames_read_none(frame: np.ndarray) -> None:
    assert read_stamp(frame) is None


@pytest.mark.parametrize(
    ("key", "index", "height"),
    [(0, 0, 720), (2**32 - 1, MAX_FRAME_INDEX, 720), (123456, 2999, 180), (7, 65536, 1080)],
)
def test_stamp_round_trip_raw(key: int, index: int, height: int) -> None:
    frame = np.full((height, height * 16 // 9, 3), 90, np.uint8)
    draw_stamp(frame, key, index)
    assert read_stamp(frame) == (key, index)
    block = stamp_size(height)[1] // 5
    frame[block : block + 2, block * 3 : block * 5] ^= 0xFF  # cell edges: still readable
    assert read_stamp(frame) == (key, index)


@pytest.mark.parametrize(("key", "index"), [(-1, 0), (2**32, 0), (0, -1), (0, MAX_FRAME_INDEX + 1)])
def test_stamp_out_of_range(key: int, index: int) -> None:
    with pytest.raises(ValueError):
        stamp_bits(key, index)


def test_clip_key_is_stable_and_distinct() -> None:
    assert clip_key("g", "c") == clip_key("g", "c")
    keys = {clip_key(f"game-{g}", f"clip-{c:02d}") for g in range(20) for c in range(20)}
    assert len(keys) == 400 and all(0 <= k < 2**32 for k in keys)


@pytest.mark.parametrize(
    ("changes", "roles_early", "roles_late"),
    [
        ({}, {"rim", "player", "referee", "ball"}, {"rim", "player", "referee", "ball"}),
        ({"empty_frames": 6}, {"rim"}, {"rim", "player", "referee", "ball"}),
        ({"referees": 0, "ball": False}, {"rim", "player"}, {"rim", "player"}),
        ({"teams": "none"}, {"rim", "referee"}, {"rim", "referee"}),
        ({"teams": "none", "referees": 0}, {"rim"}, {"rim"}),
    ],
    ids=["default", "empty-start", "players-only", "only-referees", "empty"],
)
def test_scene_options(changes: dict, roles_early: set[str], roles_late: set[str]) -> None:
    if changes.get("teams") == "none":
        base = _small_spec().teams
        changes["teams"] = tuple(TeamSpec(t.name, t.colour, ()) for t in base)
    rows = [
        (f, r["role"]) for f, _, frame_rows in iter_clip(_small_spec(**changes)) for r in frame_rows
    ]
    assert {role for f, role in rows if f < 6} == roles_early
    assert {role for f, role in rows if f >= 6} == roles_late


def test_players_per_team_zero(tmp_path: Path) -> None:
    game = make_game(
        tmp_path / "g", tmp_path / "l", seconds=0.3, size=(320, 180), players_per_team=0
    )
    table = pq.read_table(game.labels[0])
    assert game.on_court == []
    assert set(table.column("role").to_pylist()) == {"rim", "referee"}
    assert all(8 <= len(t["players"]) <= 12 for t in game.roster["teams"])


def test_leaving_player_is_gone_for_good() -> None:
    spec = _small_spec(frames=40)
    leaver = spec.teams[0].object_id(spec.teams[0].numbers[0])
    spec = dataclasses.replace(spec, leave_frames={leaver: 5})
    frames = [f for f, _, rows in iter_clip(spec) for r in rows if r["object_id"] == leaver]
    assert 5 in frames and max(frames) < 5 + 10  # a 1 s walk at 10 fps


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"enter_frames": {"Nobody#1": 3}}, "unknown object ids"),
        ({"size": (100, 80)}, "too small"),
        ({"clips": 0}, "clips"),
        ({"seconds": 0.0}, "at least one frame"),
        ({"players_per_team": 16}, "players_per_team"),
    ],
)
def test_make_game_rejects_bad_options(tmp_path: Path, kwargs: dict, message: str) -> None:
    options = {"seconds": 0.2, "size": (320, 180), **kwargs}
    with pytest.raises(ValueError, match=message):
        make_game(tmp_path / "g", tmp_path / "l", **options)


def test_enter_frames_short_form(tmp_path: Path) -> None:
    _, teams = make_roster(0, ("#1d428a", "#ce1141"), 5)
    number = teams[0].numbers[2]
    game = make_game(
        tmp_path / "g",
        tmp_path / "l",
        seconds=0.2,
        size=(320, 180),
        enter_frames={f"A-{number}": 4},
    )
    assert dict(game.specs[0].enter_frames) == {teams[0].object_id(number): 4}


@pytest.mark.parametrize(
    "window",
    [(0, 0, 0, 0), (0, 0, 5, 4), (2, 1, 3, 3), (0, 3, 5, 4), (1, 0, 4, 1)],
    ids=["empty", "full", "inner", "right-edge", "top-row"],
)
def test_crop_rle_equals_full_mask_encoding(window: tuple[int, int, int, int]) -> None:
    from hoopray.masks import rle_encode

    top, left, bottom, right = window
    mask = np.zeros((5, 4), bool)
    rng = np.random.default_rng(sum(window))
    mask[top:bottom, left:right] = rng.random((bottom - top, right - left)) < 0.6
    mask[top:bottom, left:right][:, :1] = True
    assert _crop_rle(mask[top:bottom, left:right], top, left, 5, 4) == rle_encode(mask)


# --------------------------------------------------------------------------- noise


@pytest.mark.parametrize(
    ("difficulty", "overrides", "expected"),
    [
        ("easy", {}, WorldNoise()),
        ("easy", {"hidden_players": None}, WorldNoise()),  # None keeps the preset's
        ("realistic", {}, WORLD_PRESETS["realistic"]),
        ("hard", {"number_overlap": 0.0}, replace(WORLD_PRESETS["hard"], number_overlap=0.0)),
    ],
)
def test_world_noise_presets(difficulty: str, overrides: dict, expected: WorldNoise) -> None:
    assert world_noise(difficulty, **overrides) == expected


def test_world_presets_grow_harder() -> None:
    easy, realistic, hard = (WORLD_PRESETS[d] for d in ("easy", "realistic", "hard"))
    for name in ("similar_colours", "hidden_players", "hidden_share", "number_overlap"):
        assert getattr(easy, name) == 0
        assert 0 < getattr(realistic, name) <= getattr(hard, name)


@pytest.mark.parametrize(
    ("difficulty", "overrides", "message"),
    [
        ("medium", {}, "difficulty"),
        ("easy", {"blur": 1.0}, "unknown world knobs"),
        ("easy", {"similar_colours": 1.5}, "similar_colours"),
        ("easy", {"number_overlap": 1.0}, "number_overlap"),
        ("easy", {"hidden_players": -1}, "hidden_players"),
    ],
)
def test_world_noise_rejects_bad_values(difficulty: str, overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        world_noise(difficulty, **overrides)


@pytest.mark.parametrize(
    ("kwargs", "similar"),
    [
        ({}, False),
        ({"similar_colours": 1.0}, True),
        ({"difficulty": "hard"}, True),
        ({"difficulty": "hard", "colours": ("#1d428a", "#ce1141")}, False),  # given: kept
    ],
)
def test_similar_team_colours(tmp_path: Path, kwargs: dict, similar: bool) -> None:
    game = make_game(tmp_path / "g", tmp_path / "l", seconds=0.1, size=(320, 180), **kwargs)
    colours = tuple(t["colour"] for t in game.roster["teams"])
    pairs = {p for pair in SIMILAR_COLOURS for p in (pair, pair[::-1])}
    assert (colours in pairs) is similar
    if not similar:
        assert colours == ("#1d428a", "#ce1141")


def _areas(spec: ClipSpec, object_id: str) -> dict[int, tuple[float, float, bool]]:
    """frame -> (visible mask pixels, foot y, number visible) of one object."""
    out = {}
    for frame, _, rows in iter_clip(spec):
        for r in rows:
            if r["object_id"] == object_id:
                pixels = float(rle_decode(r["mask_rle"], spec.height, spec.width).sum())
                out[frame] = (pixels, r["y2"], bool(r["number_visible"]))
    return out


def test_hidden_player_stands_behind_an_opponent() -> None:
    base = _small_spec(frames=40, fps=10)
    hider = base.teams[0].object_id(base.teams[0].numbers[0])
    target = base.teams[1].object_id(base.teams[1].numbers[0])
    spec = dataclasses.replace(base, hidden={hider: (target, 10, 30)})
    hidden, alone = _areas(spec, hider), _areas(base, hider)
    front = _areas(spec, target)
    during = range(15, 26)  # after the 0.4 s step behind
    assert sum(hidden[f][0] for f in during) < 0.6 * sum(alone[f][0] for f in during)
    assert all(hidden[f][1] < front[f][1] for f in during)  # farther away: behind
    assert not any(hidden[f][2] for f in during)  # the number is covered
    assert [hidden[f] for f in range(10)] == [alone[f] for f in range(10)]  # before: as usual
    assert _areas(spec, hider) == hidden  # deterministic


@pytest.mark.parametrize(
    "hidden",
    [{"Nobody#1": ("B#1", 0, 5)}, {"self": ("self", 0, 5)}],
)
def test_hidden_rejects_unknown_or_self(hidden: dict) -> None:
    spec = _small_spec()
    player = spec.teams[0].object_id(spec.teams[0].numbers[0])
    fixed = {
        (player if k == "self" else k): ((player if v[0] == "self" else v[0]), *v[1:])
        for k, v in hidden.items()
    }
    with pytest.raises(ValueError, match="hidden"):
        list(iter_clip(dataclasses.replace(spec, hidden=fixed)))


def test_partly_covered_numbers_with_number_overlap() -> None:
    base = _small_spec(frames=120, fps=10)
    hider = base.teams[0].object_id(base.teams[0].numbers[0])
    target = base.teams[1].object_id(base.teams[1].numbers[0])
    shares = {}
    for overlap in (0.0, 0.6):
        spec = dataclasses.replace(base, hidden={hider: (target, 0, 120)}, number_overlap=overlap)
        own = []
        for _, _, rows in iter_clip(spec):
            for r in rows:
                if r["number_visible"]:
                    mask = rle_decode(r["mask_rle"], spec.height, spec.width)
                    nx1, ny1, nx2, ny2 = (int(r[k]) for k in ("nx1", "ny1", "nx2", "ny2"))
                    own.append(mask[ny1:ny2, nx1:nx2].mean())
        shares[overlap] = own
    assert min(shares[0.0]) == 1.0
    assert min(shares[0.6]) >= 0.4 and min(shares[0.6]) < 1.0  # reaches into another's mask
    assert len(shares[0.6]) > len(shares[0.0])


def test_hard_game_is_deterministic_under_its_seed(tmp_path: Path) -> None:
    def labels(root: Path, seed: int) -> tuple[pa.Table, dict]:
        game = make_game(
            root / "g",
            root / "l",
            seed=seed,
            clips=1,
            seconds=0.5,
            size=(320, 180),
            difficulty="hard",
        )
        return pq.read_table(game.labels[0]), dict(game.specs[0].hidden)

    first, hidden = labels(tmp_path / "a", 7)
    again, hidden_again = labels(tmp_path / "b", 7)
    other, _ = labels(tmp_path / "c", 8)
    assert first.equals(again) and hidden == hidden_again
    assert not first.equals(other)
    assert len(hidden) == WORLD_PRESETS["hard"].hidden_players
    for hider, (target, start, end) in hidden.items():
        assert hider.split("#")[0] != target.split("#")[0]  # behind an opponent
        assert 0 <= start < end <= 15


@pytest.mark.parametrize(
    ("noise", "enter", "count"),
    [
        (WorldNoise(), {}, 0),
        (WorldNoise(hidden_players=1, hidden_share=0.5), {}, 1),
        (WorldNoise(hidden_players=3, hidden_share=0.5), {}, 3),
        (WorldNoise(hidden_players=9, hidden_share=0.5), {}, 3),  # one per opponent at most
        (WorldNoise(hidden_players=2, hidden_share=0.0), {}, 0),
    ],
)
def test_pick_hidden(noise: WorldNoise, enter: dict, count: int) -> None:
    from hoopray.testing.synthetic import _pick_hidden

    _, teams = make_roster(3, ("#1d428a", "#ce1141"), 3)
    picked = _pick_hidden(3, 0, teams, enter, {}, 100, noise)
    assert len(picked) == count
    targets = [t for t, _, _ in picked.values()]
    assert len(set(targets)) == len(targets) and not set(targets) & set(picked)
    assert all(end - start == round(noise.hidden_share * 100) for _, start, end in picked.values())
    assert picked == _pick_hidden(3, 0, teams, enter, {}, 100, noise)
