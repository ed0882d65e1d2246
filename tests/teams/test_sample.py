from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

from hoopray import store
from hoopray.teams import (
    CropSample,
    TeamModelError,
    TeamsConfig,
    collect_game_crops,
    fit_team_model,
    load_sample,
    sample_game,
    sample_indices,
    sampled_frames,
    save_sample,
    teams_dir,
)
from hoopray.teams.sample import overlap_fractions
from hoopray.types import ClipRef
from tests.teams.common import counting_clip_at, crop_sample

# ------------------------------------------------------------------ storage


def test_sample_round_trip(out_root: str) -> None:
    sample = crop_sample(7)
    sample.frames_sampled, sample.players_seen, sample.overlapping = 12, 40, 9
    sample.problems = [("clip-9", 'broken: \u00e9 "quoted"')]
    sample.embedder = "ColourHistogramEmbedder"
    embeddings = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float64)
    directory = teams_dir(out_root, "game-001")
    location = save_sample(directory, sample, embeddings)
    assert location == store.join(directory, "sample.npz")
    with np.load(io.BytesIO(store.read_bytes(location)), allow_pickle=False) as data:
        assert data["clip_ids"].dtype.kind == "U"  # nothing pickled
    loaded, got = load_sample(directory)
    assert got.dtype == np.float32 and got.shape == (7, 5)
    np.testing.assert_allclose(got, embeddings.astype(np.float32))
    assert loaded.clip_ids == sample.clip_ids
    np.testing.assert_array_equal(loaded.frames, sample.frames)
    assert loaded.frames.dtype == np.int32
    np.testing.assert_array_equal(loaded.boxes, sample.boxes)
    assert len(loaded) == 7
    for a, b in zip(loaded.crops, sample.crops, strict=True):
        np.testing.assert_array_equal(a, b)
    assert (loaded.frames_sampled, loaded.players_seen, loaded.overlapping) == (12, 40, 9)
    assert loaded.problems == sample.problems
    assert loaded.embedder == "ColourHistogramEmbedder"


def test_empty_sample_round_trip_and_errors(out_root: str) -> None:
    empty = CropSample(frames_sampled=3, problems=[("c", "no players")])
    directory = teams_dir(out_root, "game-002")
    save_sample(directory, empty, np.zeros((0, 8), np.float32))
    loaded, embeddings = load_sample(directory)
    assert len(loaded) == 0 and embeddings.shape == (0, 8) and loaded.frames_sampled == 3
    assert loaded.problems == [("c", "no players")]
    with pytest.raises(ValueError):
        save_sample(directory, crop_sample(3), np.zeros((2, 8), np.float32))
    with pytest.raises(TeamModelError, match="crop sample"):
        load_sample(teams_dir(out_root, "game-404"))
    store.write_bytes(store.join(directory, "sample.npz"), b"not an npz")
    with pytest.raises(TeamModelError):
        load_sample(directory)


def test_a_sample_saved_before_embedder_and_overlapping_were_recorded_loads(tmp_path: Path) -> None:
    location = save_sample(tmp_path, crop_sample(2), np.ones((2, 3), np.float32))
    with np.load(location, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files if k not in ("embedder", "overlapping")}
    np.savez(location, allow_pickle=False, **arrays)
    loaded, _ = load_sample(tmp_path)
    assert loaded.embedder == "" and loaded.overlapping == 0 and len(loaded) == 2


# ------------------------------------------------------------------ sampled frames


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])  # Matroska headers give no frame count
def test_sampled_frames_equal_decoding_through(tmp_path: Path, suffix: str) -> None:
    from hoopray import video

    clip = counting_clip_at(tmp_path / f"clip{suffix}")
    got = [(i, int(f.mean())) for i, f in sampled_frames(clip, 1.0)]
    want = [(i, int(f.mean())) for i, f in video.iter_frames(clip, stride=4)]
    assert got == want and [i for i, _ in got] == [0, 4, 8]


@pytest.mark.parametrize(
    ("frames", "fps", "stride_seconds", "expected"),
    [
        (10, 4.0, 1.0, [0, 4, 8]),
        (5, 30.0, 0.01, [0, 1, 2, 3, 4]),  # stride at least 1
        (0, 30.0, 1.0, []),
        (1, 30.0, 1.0, [0]),
    ],
)
def test_sample_indices(frames: int, fps: float, stride_seconds: float, expected: list) -> None:
    assert list(sample_indices(frames, fps, stride_seconds)) == expected


def test_sampled_frames_seek_with_read_frames_at(
    counting_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hoopray import video

    asked: list[list[int]] = []

    def read_frames_at(path: str | Path, indices):  # a stand-in with the same contract
        asked.append(list(indices))
        wanted = set(asked[-1])
        for index, frame in video.iter_frames(path):
            if index in wanted:
                yield index, frame

    monkeypatch.setattr(video, "read_frames_at", read_frames_at, raising=False)
    seeked = [(i, int(f.mean())) for i, f in sampled_frames(str(counting_clip), 1.0)]
    assert asked == [[0, 4, 8]]
    monkeypatch.delattr(video, "read_frames_at", raising=False)
    decoded = [(i, int(f.mean())) for i, f in sampled_frames(str(counting_clip), 1.0)]
    assert seeked == decoded
    assert [i for i, _ in decoded] == [0, 4, 8]
    assert all(abs(mean - 20 * i) <= 3 for i, mean in decoded)


# ------------------------------------------------------------------ overlapping crops

WH = (32, 24)
ISOLATED = (22, 2, 30, 22)  # central crop (24, 8, 28, 16)
LEFT = (0, 0, 10, 20)  # central crop (3, 6, 7, 14): RIGHT covers 2 of its 4 columns
RIGHT = (5, 0, 15, 20)  # central crop (8, 6, 12, 14): LEFT covers 2 of its 4 columns
REFEREE = (20, 0, 32, 24)  # covers ISOLATED whole


@pytest.mark.parametrize(
    ("boxes", "extra", "expected"),
    [
        ([], None, []),
        ([ISOLATED], None, [0.0]),  # alone
        ([ISOLATED], [REFEREE], [1.0]),  # a referee in front
        ([LEFT, RIGHT], None, [0.5, 0.5]),
        ([LEFT, RIGHT, ISOLATED], None, [0.5, 0.5, 0.0]),
        ([LEFT, RIGHT], [(5, 0, 7, 24)], [0.5, 0.5]),  # union: covered pixels count once
        ([LEFT, RIGHT], [(4, 0, 6, 24)], [0.75, 0.5]),
        ([LEFT], [(3, 6, 4, 14), (6, 6, 7, 14)], [0.5]),  # two boxes on separate quarters
        ([LEFT, LEFT], None, [1.0, 1.0]),  # a duplicate detection covers it whole
        ([(40, 0, 50, 20), LEFT], None, [0.0, 0.0]),  # off the frame: an empty crop
    ],
)
def test_overlap_fractions(boxes: list, extra: list | None, expected: list) -> None:
    got = overlap_fractions(np.array(boxes, np.float32).reshape(-1, 4), WH, 0.4, extra)
    assert got.shape == (len(boxes),)
    np.testing.assert_allclose(got, expected)


class BoxesDetector:
    """The same players and referees on every frame."""

    def __init__(self, players: list, referees: list) -> None:
        self.class_names = ["player", "referee"]
        self.players, self.referees = players, referees

    def detect(self, frames: list[np.ndarray]) -> list:
        import supervision as sv

        from hoopray.models.base import CLASS_NAME

        boxes = self.players + self.referees
        names = ["player"] * len(self.players) + ["referee"] * len(self.referees)
        found = sv.Detections(
            xyxy=np.array(boxes, np.float32).reshape(-1, 4),
            confidence=np.full(len(boxes), 0.9, np.float32),
            class_id=np.zeros(len(boxes), int),
            data={CLASS_NAME: np.array(names, dtype=object)},
        )
        return [found for _ in frames]


@pytest.mark.parametrize(
    ("players", "referees", "max_overlap", "kept", "overlapping"),
    [
        ([], [], 0.3, [], 0),  # no players
        ([ISOLATED], [], 0.0, [ISOLATED], 0),  # no other box: kept even at 0
        ([ISOLATED], [REFEREE], 0.3, [], 1),  # one box over it
        ([ISOLATED], [REFEREE], 1.0, [ISOLATED], 0),  # 1 keeps everything
        ([LEFT, RIGHT], [], 0.3, [], 2),
        ([LEFT, RIGHT], [], 0.5, [LEFT, RIGHT], 0),  # exactly at the bar: kept
        ([LEFT, RIGHT, ISOLATED], [], 0.0, [ISOLATED], 2),  # several boxes
        ([LEFT, RIGHT, ISOLATED], [REFEREE], 0.3, [], 3),
    ],
)
def test_crops_covered_by_other_people_are_skipped(
    counting_clip: Path,
    players: list,
    referees: list,
    max_overlap: float,
    kept: list,
    overlapping: int,
) -> None:
    from hoopray.models.base import Models

    clip = ClipRef("g", "c", str(counting_clip), "x")
    cfg = TeamsConfig(max_overlap=max_overlap)
    sample = collect_game_crops([clip], BoxesDetector(players, referees), Models().roles, cfg)
    frames = 3  # 10 frames at 4 fps, one a second
    assert sample.frames_sampled == frames
    assert sample.players_seen == frames * len(players)
    assert sample.overlapping == frames * overlapping
    assert len(sample) == frames * len(kept)
    assert [tuple(b) for b in sample.boxes.tolist()] == [tuple(map(float, b)) for b in kept] * 3


# ------------------------------------------------------------------ synthetic games (pass 1)


def test_sample_game_needs_a_detector_and_an_embedder() -> None:
    from hoopray.models.base import Models

    with pytest.raises(ValueError, match="team crops needs"):
        sample_game([], Models())


@pytest.mark.slow
def test_clips_without_players_or_with_referees_only_add_no_crops(game_maker) -> None:
    from hoopray.models.base import Models
    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.teams import collect_game_crops

    _, with_players = game_maker("edge-players", seed=5, clips=1, seconds=3.0)
    _, no_players = game_maker("edge-empty", seed=6, players_per_team=0)
    _, referees = game_maker("edge-refs", seed=7, only_referees=True)
    broken = Path(str(with_players[0].path) + ".broken.mp4")
    broken.write_bytes(b"not a video")
    clips = [
        with_players[0],
        ClipRef("edge", "no-players", no_players[0].path, "x"),
        ClipRef("edge", "referees", referees[0].path, "x"),
        ClipRef("edge", "broken", broken, "x"),
    ]
    detector = game_maker.world.detector()
    roles = Models().roles

    alone = collect_game_crops(clips[1:3], detector, roles)
    assert len(alone) == 0 and alone.frames_sampled == 4  # two 2 s clips at one a second
    sample = collect_game_crops(clips, detector, roles)
    assert len(sample) > 0 and set(sample.clip_ids) == {with_players[0].clip_id}
    assert sample.frames_sampled == 3 + 2 + 2
    assert [clip for clip, _ in sample.problems] == ["broken"]

    models = Models(detector=detector, embedder=ColourHistogramEmbedder())
    cfg = TeamsConfig()
    clip_ids = [c.clip_id for c in clips]
    sample, embeddings = sample_game(clips, models, cfg)
    model = fit_team_model(embeddings, cfg, sample=sample, meta={"clips": clip_ids})
    assert model.meta["problems"][0][0] == "broken"
    assert sorted(model.meta["clips"]) == sorted(clip_ids)
    few, few_embeddings = sample_game(clips[1:3], models, cfg)
    with pytest.raises(TeamModelError, match="0 player crops"):
        fit_team_model(few_embeddings, cfg, sample=few)


@pytest.mark.slow
def test_collect_game_crops_with_read_frames_at_equals_decoding_through(
    game_maker, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hoopray import video
    from hoopray.models.base import Models
    from hoopray.teams import collect_game_crops

    _, clips = game_maker("edge-seek", seed=4, clips=2, seconds=3.0)
    detector, roles = game_maker.world.detector(), Models().roles
    monkeypatch.delattr(video, "read_frames_at", raising=False)
    through = collect_game_crops(clips, detector, roles)
    asked: list[list[int]] = []

    def read_frames_at(path: str | Path, indices):
        asked.append(list(indices))
        for index, frame in video.iter_frames(path):
            if index in asked[-1]:
                yield index, frame

    monkeypatch.setattr(video, "read_frames_at", read_frames_at, raising=False)
    seeked = collect_game_crops(clips, detector, roles)
    assert asked == [[0, 4, 8], [0, 4, 8]]  # 3 s at 4 fps, one frame a second
    assert seeked.frames_sampled == through.frames_sampled == 6
    np.testing.assert_array_equal(seeked.boxes, through.boxes)
    assert seeked.clip_ids == through.clip_ids


@pytest.mark.slow
def test_max_crops_keeps_a_seeded_ordered_sample(game_maker) -> None:
    from hoopray.models.base import Models
    from hoopray.teams import collect_game_crops

    _, clips = game_maker("edge-max", seed=9, seconds=3.0)
    detector, roles = game_maker.world.detector(), Models().roles
    full = collect_game_crops(clips, detector, roles)
    small = collect_game_crops(clips, detector, roles, TeamsConfig(max_crops=5, seed=1))
    again = collect_game_crops(clips, detector, roles, TeamsConfig(max_crops=5, seed=1))
    assert full.players_seen == small.players_seen == len(full) + full.overlapping
    assert len(small) == 5 and small.overlapping == full.overlapping
    assert small.frames.tolist() == sorted(small.frames.tolist())
    np.testing.assert_array_equal(small.boxes, again.boxes)
    pairs = {(f, tuple(b)) for f, b in zip(full.frames.tolist(), full.boxes.tolist(), strict=True)}
    assert all(
        (f, tuple(b)) in pairs
        for f, b in zip(small.frames.tolist(), small.boxes.tolist(), strict=True)
    )
