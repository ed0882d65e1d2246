"""Acceptance of issues 5 and 14: observe -> resolve -> render on synthetic games.

- At ``realistic`` difficulty (:data:`hoopray.testing.synthetic.WORLD_PRESETS` and the replay
  doubles' presets of :mod:`hoopray.testing.replay`: misreads that repeat over a view and
  may be confident, missed and false number boxes, id switches where players cross,
  similar team colours, players hidden behind opponents), resolve's default policy
  identifies the number-visible tracks (team, number, name) and confirms no wrong
  identity; the notebook's rule (a streak of 3) does worse. Teams come from a TeamModel
  fitted on colour histograms and named automatically.
- With the tiny random-weight models, the whole chain runs and writes valid tables and a
  browser-playable H.264 file.
- Edge cases: no players in a frame, no number ever visible, a player entering at frame
  100, a track lost for good, a one-frame clip.
- Thresholds re-derive identities from stored Parquet observations without a model.

Clips are small (426 x 240) to keep the suite fast; the doubles do not care about size.
Team models are fitted with the PCA projection (``umap_neighbors`` above the crop count),
which skips UMAP's numba compilation; the UMAP path is tested in tests/teams/test_model.py.
"""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from hoopray import store
from hoopray.evaluate import match_boxes
from hoopray.masks import rle_decode
from hoopray.models.base import Models
from hoopray.models.colour import ColourHistogramEmbedder
from hoopray.observe import ObserveConfig, observe
from hoopray.render import render
from hoopray.resolve import ResolveConfig, resolve
from hoopray.roster import Roster, load_roster
from hoopray.teams import (
    TeamModel,
    TeamNaming,
    TeamsConfig,
    fit_team_model,
    name_clusters,
    sample_game,
)
from hoopray.testing.replay import ReplayWorld
from hoopray.testing.synthetic import SyntheticGame, make_game, make_roster
from hoopray.types import ClipRef, IdentityStatus, Observations, TrackSource, check_schema

SIZE = (426, 240)
MISREAD_RATE = 0.2
DIFFICULTY = "realistic"
MIN_UNCOVERED = 0.9  # share of a number box inside its player's mask to count as visible
PCA_TEAMS = TeamsConfig(umap_neighbors=10_000)
TABLES = ("tracks", "reads", "team_votes", "clip")


def clip_refs(game: SyntheticGame) -> list[ClipRef]:
    return [
        ClipRef(game.game_id, clip_id, str(path), f"synthetic-{clip_id}")
        for clip_id, path in zip(game.clip_ids, game.clips, strict=True)
    ]


def replay_models(
    world: ReplayWorld, embedder: object | None = None, difficulty: str = DIFFICULTY
) -> Models:
    return Models(
        detector=world.detector(difficulty),
        tracking=world.tracking(difficulty=difficulty),
        embedder=embedder,
        reader=world.reader(difficulty),
    )


def fit_teams(clips: list[ClipRef], models: Models, roster: Roster) -> tuple[TeamModel, TeamNaming]:
    sample, embeddings = sample_game(clips, models, PCA_TEAMS)
    model = fit_team_model(embeddings, PCA_TEAMS, sample=sample)
    return model, name_clusters(model, roster)


def track_objects(tracks: pa.Table, labels: pa.Table) -> dict[int, str]:
    """The labelled player each track follows: the one its box matches most often."""
    players = labels.filter(pc.equal(labels.column("role"), "player"))
    box_cols = ("x1", "y1", "x2", "y2")

    def boxes_by_frame(table: pa.Table, key: str) -> dict[int, tuple[np.ndarray, list]]:
        rows: dict[int, list[int]] = defaultdict(list)
        for i, frame in enumerate(table.column("frame").to_pylist()):
            rows[frame].append(i)
        boxes = np.stack([table.column(c).to_numpy() for c in box_cols], axis=1)
        keys = table.column(key).to_pylist()
        return {f: (boxes[r], [keys[i] for i in r]) for f, r in rows.items()}

    label_frames = boxes_by_frame(players, "object_id")
    votes: dict[int, Counter] = defaultdict(Counter)
    for frame, (boxes, track_ids) in boxes_by_frame(tracks, "track_id").items():
        if frame not in label_frames:
            continue
        label_boxes, object_ids = label_frames[frame]
        for label_i, track_i, _ in match_boxes(label_boxes, boxes, 0.5):
            votes[track_ids[track_i]][object_ids[label_i]] += 1
    return {track: counter.most_common(1)[0][0] for track, counter in votes.items()}


def visible_reads(labels: pa.Table, read_stride: int, size: tuple[int, int]) -> Counter:
    """Per labelled player, (read frames on which its number shows clearly, views of it).

    Clearly: labelled visible with at least ``MIN_UNCOVERED`` of its box in the player's
    own mask (no read of a more covered number can be paired at IoS 0.9). A view is a
    stretch of consecutive frames on which it shows.
    """
    width, height = size
    frames: dict[str, list[int]] = defaultdict(list)
    for row in labels.to_pylist():
        if not row["number_visible"]:
            continue
        mask = rle_decode(row["mask_rle"], height, width)
        x1, y1, x2, y2 = (round(row[k]) for k in ("nx1", "ny1", "nx2", "ny2"))
        if mask[y1:y2, x1:x2].mean() >= MIN_UNCOVERED:
            frames[row["object_id"]].append(row["frame"])
    counts: Counter = Counter()
    for obj, shown in frames.items():
        shown.sort()
        views = 1 + sum(1 for a, b in itertools.pairwise(shown) if b > a + 1)
        counts[obj] = (sum(1 for f in shown if f % read_stride == 0), views)
    return counts


def number_visible(visible: tuple[int, int]) -> bool:
    """Shown clearly on at least 4 read frames, in at least 2 views: one view of a number
    cannot be told from a persistent misread of a similar number on the roster (the
    number-visible tracks of benchmarks/identity.py)."""
    reads, views = visible
    return reads >= 4 and views >= 2


@dataclass
class TrackVerdict:
    track_id: int
    object_id: str
    visible_reads: tuple[int, int]
    status: str
    expected: tuple[str | None, str | None, str | None]
    got: tuple[str | None, str | None, str | None]

    @property
    def right(self) -> bool:
        return self.status == IdentityStatus.CONFIRMED and self.got == self.expected

    @property
    def confirmed(self) -> bool:
        return self.status in (IdentityStatus.CONFIRMED, IdentityStatus.OFF_ROSTER)

    @property
    def wrong(self) -> bool:
        return self.confirmed and self.got[:2] != self.expected[:2]


def verdicts(
    obs: Observations, labels: pa.Table, identities: pa.Table, roster: Roster
) -> list[TrackVerdict]:
    objects = track_objects(obs.tracks, labels)
    truth = {
        row["object_id"]: (row["team"], row["number"])
        for row in labels.select(["object_id", "team", "number"]).to_pylist()
    }
    size = (obs.clip.column("width")[0].as_py(), obs.clip.column("height")[0].as_py())
    visible = visible_reads(labels, obs.clip.column("read_stride")[0].as_py(), size)
    out = []
    for row in identities.to_pylist():
        object_id = objects[row["track_id"]]
        team, number = truth[object_id]
        out.append(
            TrackVerdict(
                row["track_id"],
                object_id,
                visible.get(object_id, (0, 0)),
                row["status"],
                (team, number, roster.player(team, number)),
                (row["team_name"], row["number"], row["player_name"]),
            )
        )
    return out


def assert_playable_h264(path: str | Path, frames: int, size: tuple[int, int]) -> None:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.format.name == "yuv420p"
        assert (stream.codec_context.width, stream.codec_context.height) == size
        assert sum(1 for _ in container.decode(stream)) == frames


def write_observations(out: Path, clip: ClipRef, obs: Observations) -> None:
    for name in TABLES:
        store.write_table(
            out, f"observations/{name}", clip.game_id, clip.clip_id, getattr(obs, name)
        )


# --------------------------------------------------------------------------- replay


@pytest.fixture(scope="module")
def replay_run(tmp_path_factory: pytest.TempPathFactory):
    """Two 10 s clips, six players a side, at ``realistic`` difficulty, observed once
    with the replay doubles, every number read (no OCR early stop: stopping a track's
    reads once a first read decides it leaves resolve too little to outvote a misread;
    benchmarks/identity.py measures that row)."""
    root = tmp_path_factory.mktemp("replay")
    game = make_game(
        root / "games",
        root / "labels",
        seed=1,
        clips=2,
        seconds=10,
        size=SIZE,
        players_per_team=6,
        difficulty=DIFFICULTY,
    )
    roster = load_roster(game.roster_path)
    world = ReplayWorld(root / "labels", misread_rate=MISREAD_RATE, seed=0)
    models = replay_models(world, ColourHistogramEmbedder())
    clips = clip_refs(game)
    team_model, naming = fit_teams(clips, models, roster)
    cfg = ObserveConfig(skip_confirmed_reads=None)
    observed = [observe(clip, models, cfg, roster=roster) for clip in clips]
    return game, roster, naming, team_model, clips, observed


@pytest.mark.slow
def test_replay_identifies_number_visible_tracks(replay_run) -> None:
    game, roster, naming, team_model, _, observed = replay_run
    assert {naming.cluster_to_team[0], naming.cluster_to_team[1]} == {t.name for t in roster.teams}
    runs: dict[str, list[TrackVerdict]] = {}
    for name, cfg in (("hoopray", ResolveConfig()), ("streak", ResolveConfig(policy="streak"))):
        identities = [resolve(obs, roster, naming, cfg, team_model) for obs in observed]
        runs[name] = []
        for ids, obs, labels_path in zip(identities, observed, game.labels, strict=True):
            check_schema("identities/tracks", ids.tracks)
            check_schema("identities/frames", ids.frames)
            runs[name] += verdicts(obs, pq.read_table(labels_path), ids.tracks, roster)
    all_tracks = runs["hoopray"]

    assert [v for v in all_tracks if v.wrong] == []
    eligible = [v for v in all_tracks if number_visible(v.visible_reads)]
    assert len(eligible) >= 10, f"too few number-visible tracks: {all_tracks}"
    right = [v for v in eligible if v.right]
    # benchmarks/identity.py holds the 98% target over 12 games; in one game's two dozen
    # tracks, one whose tracker swapped players twice already costs 4%: such tracks stay
    # unread here (never wrong)
    assert len(right) >= 0.9 * len(eligible), [v for v in eligible if not v.right]
    assert all(v.status == IdentityStatus.UNREAD for v in eligible if not v.right)
    assert all(v.got[0] == v.expected[0] for v in all_tracks if v.confirmed)
    # read or not, nearly every track is on the right team (some hide behind opponents)
    on_team = [v for v in all_tracks if v.got[0] == v.expected[0]]
    assert len(on_team) >= 0.9 * len(all_tracks), [v for v in all_tracks if v not in on_team]
    # the world is hard: the notebook's streak of 3 does worse
    streak = runs["streak"]
    assert sum(v.right for v in streak) < len(right) or sum(v.wrong for v in streak) > 0


@pytest.mark.slow
def test_thresholds_rederive_identities_from_stored_observations(
    replay_run, tmp_path: Path
) -> None:
    game, _, naming, team_model, clips, observed = replay_run
    clip, obs = clips[0], observed[0]
    out = tmp_path / "out"
    write_observations(out, clip, obs)
    (tmp_path / "naming.json").write_text(json.dumps(naming.to_dict()))
    team_model.save(tmp_path / "teams")
    configs = {
        "default": {},
        "single_read": {"policy": "streak", "reads_to_confirm": 1},
        "streak": {"policy": "streak"},
        "sure_reads_only": {"min_read_confidence": 1.0},
    }
    script = f"""
import json, sys
from hoopray import store
from hoopray.resolve import ResolveConfig, resolve
from hoopray.roster import load_roster
from hoopray.teams import TeamModel, TeamNaming
from hoopray.types import Observations

out, game, clip = {str(out)!r}, {clip.game_id!r}, {clip.clip_id!r}
tables = {{
    name: store.read_table(out, "observations/" + name, game, clip).drop_columns(
        ["game_id", "clip_id"]
    )
    for name in {TABLES!r}
}}
obs = Observations(**tables)
roster = load_roster({str(game.roster_path)!r})
naming = TeamNaming.from_dict(json.loads(open({str(tmp_path / "naming.json")!r}).read()))
team_model = TeamModel.load({str(tmp_path / "teams")!r})
result = {{}}
for key, values in {configs!r}.items():
    tracks = resolve(obs, roster, naming, ResolveConfig(**values), team_model).tracks
    result[key] = {{
        row["track_id"]: [row["status"], row["number"], row["confirmed_at_frame"], row["team_name"]]
        for row in tracks.to_pylist()
    }}
heavy = sorted(
    m for m in sys.modules
    if m.split(".")[0] in ("torch", "transformers", "rfdetr", "sam2")
    or m in ("hoopray.observe", "hoopray.testing.replay")
)
print(json.dumps({{"result": result, "heavy": heavy}}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=120
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["heavy"] == []
    result = {k: {int(t): v for t, v in r.items()} for k, r in report["result"].items()}

    in_memory = resolve(obs, load_roster(game.roster_path), naming, ResolveConfig(), team_model)
    assert result["default"] == {
        r["track_id"]: [r["status"], r["number"], r["confirmed_at_frame"], r["team_name"]]
        for r in in_memory.tracks.to_pylist()
    }
    assert {team for *_, team in result["default"].values()} == set(naming.cluster_to_team.values())
    with_number = {
        k: {t for t, (_, n, _, _) in r.items() if n is not None} for k, r in result.items()
    }
    # one readable read paired at IoS >= 0.9 is enough with reads_to_confirm=1
    readable = set()
    for row in obs.reads.to_pylist():
        best = max(row["candidates"], key=lambda c: c["ios"])
        if row["text"] is not None and best["ios"] >= 0.9:
            readable.add(best["track_id"])
    assert with_number["single_read"] == readable
    assert with_number["default"] and with_number["default"] <= with_number["single_read"]
    assert with_number["streak"] and with_number["streak"] <= with_number["single_read"]
    for track in with_number["streak"]:  # three reads take at least two more read frames
        assert result["single_read"][track][2] < result["streak"][track][2]
    assert with_number["sure_reads_only"] == set()
    assert {s for s, *_ in result["sure_reads_only"].values()} == {IdentityStatus.UNREAD}


# --------------------------------------------------------------------------- edge cases


@pytest.fixture(scope="module")
def edge_game(tmp_path_factory: pytest.TempPathFactory):
    """One 4 s clip: nobody for 0.5 s, a player leaving at frame 20, one entering at frame
    100, and one player whose number never shows (hidden in the labels the doubles read)."""
    root = tmp_path_factory.mktemp("edge")
    _, (team_a, team_b) = make_roster(3, ("#1d428a", "#ce1141"), 4)
    leaving = team_a.object_id(team_a.numbers[0])
    entering = team_b.object_id(team_b.numbers[-1])
    hidden = team_a.object_id(team_a.numbers[1])
    game = make_game(
        root / "games",
        root / "labels",
        seed=3,
        clips=1,
        seconds=4,
        size=SIZE,
        players_per_team=4,
        enter_frames={entering: 100},
        leave_frames={leaving: 20},
        empty_seconds=0.5,
    )
    labels = pq.read_table(game.labels[0])
    hide = pc.equal(labels.column("object_id"), hidden)
    visible = pc.if_else(hide, False, labels.column("number_visible"))
    labels = labels.set_column(
        labels.schema.get_field_index("number_visible"), "number_visible", visible
    )
    pq.write_table(labels, game.labels[0])
    return root, game, labels, {"leaving": leaving, "entering": entering, "hidden": hidden}


@pytest.mark.slow
def test_edge_cases_with_replay_doubles(edge_game, tmp_path: Path) -> None:
    root, game, labels, who = edge_game
    roster = load_roster(game.roster_path)
    world = ReplayWorld(root / "labels", misread_rate=MISREAD_RATE)
    (clip,) = clip_refs(game)
    obs = observe(clip, replay_models(world), ObserveConfig())
    assert obs.team_votes.num_rows == 0  # no embedder
    identities = resolve(obs, roster, None, ResolveConfig())
    objects = track_objects(obs.tracks, labels)
    tracks_of = defaultdict(list)
    for track, object_id in objects.items():
        tracks_of[object_id].append(track)
    rows = obs.tracks.to_pylist()
    first_row = {}
    for row in rows:
        first_row.setdefault(row["track_id"], row)
    by_track = {r["track_id"]: r for r in identities.tracks.to_pylist()}

    # nobody on the first 15 frames: tracking starts at the first detection frame after
    empty_until = min(r["frame"] for r in labels.to_pylist() if r["role"] == "player")
    assert empty_until == 15
    assert min(r["frame"] for r in rows) == 15
    assert {first_row[t]["source"] for t in tracks_of[who["hidden"]]} == {TrackSource.PROMPT}

    # the late player is added on the first detection frame where it is seen
    (late,) = tracks_of[who["entering"]]
    seen_from = min(r["frame"] for r in labels.to_pylist() if r["object_id"] == who["entering"])
    assert seen_from >= 100
    assert first_row[late]["source"] == TrackSource.ADDED
    assert first_row[late]["frame"] == -(-seen_from // 5) * 5

    # the leaving player: one track that ends when the player is gone, never recovered
    (gone,) = tracks_of[who["leaving"]]
    last_seen = max(r["frame"] for r in labels.to_pylist() if r["object_id"] == who["leaving"])
    assert by_track[gone]["last_frame"] == last_seen < 119

    # the player whose number never shows: tracked, never read, never confirmed
    (hidden,) = tracks_of[who["hidden"]]
    assert by_track[hidden]["status"] == IdentityStatus.UNREAD
    assert by_track[hidden]["number"] is None and by_track[hidden]["reads_seen"] == 0

    truth = {r["object_id"]: r["number"] for r in labels.to_pylist()}
    for track, row in by_track.items():
        if row["status"] == IdentityStatus.CONFIRMED:
            assert row["number"] == truth[objects[track]]

    video = render(clip.path, obs.tracks, identities, roster, None, tmp_path / "edge.mp4")
    assert_playable_h264(video, 120, SIZE)


@pytest.mark.slow
def test_one_frame_clip(tmp_path: Path) -> None:
    """A realistic world, read by exact doubles (the reads are checked against the labels)."""
    game = make_game(
        tmp_path / "games",
        tmp_path / "labels",
        clips=1,
        seconds=1 / 30,
        size=SIZE,
        seed=4,
        difficulty=DIFFICULTY,
    )
    roster = load_roster(game.roster_path)
    world = ReplayWorld(tmp_path / "labels", misread_rate=0.0)
    (clip,) = clip_refs(game)
    obs = observe(clip, replay_models(world, difficulty="easy"), ObserveConfig())
    labels = pq.read_table(game.labels[0]).to_pylist()
    players = [r for r in labels if r["role"] == "player"]
    assert obs.clip.column("frames")[0].as_py() == 1
    assert obs.tracks.num_rows == len(players)
    assert set(obs.tracks.column("source").to_pylist()) == {TrackSource.PROMPT}
    shown = sorted(r["number"] for r in players if r["number_visible"])
    assert sorted(obs.reads.column("text").to_pylist()) == shown
    streak = resolve(obs, roster, None, ResolveConfig(policy="streak"))
    assert set(streak.tracks.column("status").to_pylist()) == {IdentityStatus.UNREAD}
    identities = resolve(obs, roster, None, ResolveConfig())
    confirmed = [r for r in identities.tracks.to_pylist() if r["status"] != IdentityStatus.UNREAD]
    assert {r["status"] for r in confirmed} <= {IdentityStatus.CONFIRMED}
    assert all(r["number"] in shown and r["reads_seen"] == 1 for r in confirmed)
    assert all(r["team_name"] is None and r["player_name"] is None for r in confirmed)
    out = tmp_path / "out"
    write_observations(out, clip, obs)
    store.write_table(out, "identities/tracks", clip.game_id, clip.clip_id, identities.tracks)
    video = render(clip.path, obs.tracks, identities, roster, None, tmp_path / "one.mp4")
    assert_playable_h264(video, 1, SIZE)


# --------------------------------------------------------------------------- tiny models


@pytest.mark.slow
def test_tiny_models_observe_resolve_render(
    tmp_path: Path,
    tiny_rfdetr_checkpoint: Path,
    tiny_sam2_dir: Path,
    tiny_siglip_dir: Path,
    tiny_smolvlm_dirs: tuple[Path, Path],
) -> None:
    """The real adapters on random weights. The tiny RF-DETR's detections are meaningless
    (often none), so after one observe pass with it, a ReplayDetector prompts the tiny
    SAM2 tracker and feeds number boxes to the tiny SmolVLM reader, which then really run
    on every frame; the tiny SigLIP embeds the team crops."""
    from hoopray.models.rfdetr_detector import RfDetrDetector
    from hoopray.models.sam2_video import Sam2VideoTracking
    from hoopray.models.siglip import SiglipEmbedder
    from hoopray.models.smolvlm import SmolVlmNumberReader

    frames = 5
    game = make_game(
        tmp_path / "games",
        tmp_path / "labels",
        clips=1,
        seconds=frames / 30,
        size=SIZE,
        seed=9,  # both numbers show on every read frame
        players_per_team=1,
        enter_frames={},
    )
    roster = load_roster(game.roster_path)
    (clip,) = clip_refs(game)
    world = ReplayWorld(tmp_path / "labels", misread_rate=0.0)
    base, adapter = tiny_smolvlm_dirs
    tracking = Sam2VideoTracking(str(tiny_sam2_dir), device="cpu")
    reader = SmolVlmNumberReader(str(base), str(adapter), device="cpu", image_splitting=False)
    embedder = SiglipEmbedder(str(tiny_siglip_dir), device="cpu")
    cfg = ObserveConfig(read_stride=2, detect_stride=2, team_stride=2, mask_clean_distance=None)

    detector = RfDetrDetector(tiny_rfdetr_checkpoint, device="cpu")
    one_frame = ObserveConfig(max_frames=1)
    tiny_obs = observe(clip, Models(detector, tracking, embedder, reader), one_frame)
    assert tiny_obs.clip.column("frames")[0].as_py() == 1
    for name in TABLES:
        check_schema(f"observations/{name}", getattr(tiny_obs, name))

    models = Models(world.detector(), tracking, embedder, reader)
    team_model, naming = fit_teams([clip], models, roster)
    obs = observe(clip, models, cfg)
    assert obs.tracks.num_rows > 0 and obs.team_votes.num_rows > 0
    assert obs.team_votes.column("dim")[0].as_py() == team_model.dim
    assert obs.clip.column("crops_read")[0].as_py() > 0  # the tiny reader really ran
    assert obs.clip.column("reader_calls")[0].as_py() == len(
        set(obs.reads.column("frame").to_pylist())
    )

    identities = resolve(obs, roster, naming, ResolveConfig(), team_model)
    assert identities.tracks.column("team_cluster").null_count < identities.tracks.num_rows
    out = tmp_path / "out"
    write_observations(out, clip, obs)
    written = [
        store.write_table(out, "identities/tracks", clip.game_id, clip.clip_id, identities.tracks),
        store.write_table(out, "identities/frames", clip.game_id, clip.clip_id, identities.frames),
    ]
    assert all(Path(path).is_file() for path in written)
    back = store.read_table(out, "observations/tracks", clip.game_id, clip.clip_id)
    assert back.num_rows == obs.tracks.num_rows
    video = render(clip.path, obs.tracks, identities, roster, naming, out / "videos" / "c.mp4")
    assert_playable_h264(video, frames, SIZE)
