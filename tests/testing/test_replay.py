"""The ground-truth replay doubles, on hand-written labels with stamped frames and on a
short synthetic clip decoded from H.264."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import supervision as sv

from hoopray.masks import rle_encode
from hoopray.models.base import CLASS_NAME, SOURCE, Roles
from hoopray.testing.replay import (
    DETECTOR_PRESETS,
    READER_PRESETS,
    TRACKER_PRESETS,
    ReaderNoise,
    ReplayWorld,
    TrackerNoise,
    misread,
    noise_preset,
    persistent_confusion,
)
from hoopray.testing.synthetic import clip_key, draw_stamp, make_game
from hoopray.types import LABELS
from hoopray.video import iter_frames

HEIGHT, WIDTH = 160, 240
GAME, CLIP = "g", "c"
KEY = clip_key(GAME, CLIP)
ROLES = Roles()

# object id -> (role, team, number, box, number box)
OBJECTS = {
    "A#23": ("player", "A", "23", (40, 40, 80, 150), (52, 60, 68, 76)),
    "B#7": ("player", "B", "7", (120, 40, 160, 150), (132, 60, 148, 76)),
    "ref": ("referee", None, None, (190, 40, 230, 150), None),
    "ball": ("ball", None, None, (100, 130, 110, 140), None),
}


def label_row(frame: int, object_id: str, visible: bool = True, mask: bool = True) -> dict:
    role, team, number, box, nbox = OBJECTS[object_id]
    x1, y1, x2, y2 = box
    pixels = np.zeros((HEIGHT, WIDTH), dtype=bool)
    pixels[y1:y2, x1:x2] = True
    shows = visible and nbox is not None
    return {
        "frame": frame,
        "object_id": object_id,
        "role": role,
        "team": team,
        "number": number,
        "x1": x1,
        "y1": y1,
        "x2": x2,
        "y2": y2,
        "number_visible": shows,
        "nx1": nbox[0] if shows else None,
        "ny1": nbox[1] if shows else None,
        "nx2": nbox[2] if shows else None,
        "ny2": nbox[3] if shows else None,
        "mask_rle": rle_encode(pixels) if mask else None,
    }


def write_labels(root: Path, rows: list[dict]) -> Path:
    path = root / GAME / f"{CLIP}.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=LABELS), path)
    return root


def stamped(index: int, key: int = KEY) -> np.ndarray:
    """A frame with its stamp and a distinct texture inside each number box."""
    frame = np.full((HEIGHT, WIDTH, 3), 90, dtype=np.uint8)
    for k, (_, _, _, _, nbox) in enumerate(OBJECTS.values()):
        if nbox is not None:
            x1, y1, x2, y2 = nbox
            frame[y1:y2, x1:x2] = 30 + 60 * k
    draw_stamp(frame, key, index)
    return frame


def number_crops(world: ReplayWorld, frame: np.ndarray, detections: sv.Detections) -> list:
    """Crops made the way observe makes them."""
    from hoopray.geometry import clip_boxes, crop, pad_boxes

    numbers = ROLES.select(detections, "number")
    pad = world.number_pad
    boxes = clip_boxes(pad_boxes(numbers.xyxy, pad, pad), (frame.shape[1], frame.shape[0]))
    return [crop(frame, box) for box in boxes]


def prompts(*object_ids: str) -> sv.Detections:
    boxes = np.asarray([OBJECTS[o][3] for o in object_ids], dtype=np.float32).reshape(-1, 4)
    return sv.Detections(xyxy=boxes, data={CLASS_NAME: np.asarray(["player"] * len(boxes))})


@pytest.fixture
def world(tmp_path: Path) -> ReplayWorld:
    rows = [label_row(f, o) for f in range(3) for o in OBJECTS]
    rows.append(label_row(3, "A#23", visible=False))
    return ReplayWorld(write_labels(tmp_path, rows), misread_rate=0.0)


@pytest.mark.parametrize(
    ("index", "players", "numbers", "others"),
    [
        (0, 2, 2, {"referee", "ball"}),
        (3, 1, 0, set()),  # only A, number turned away
        (7, 0, 0, set()),  # a stamped frame without labels: nothing there
    ],
)
def test_detector_replays_labels(
    world: ReplayWorld, index: int, players: int, numbers: int, others: set
) -> None:
    (found,) = world.detector().detect([stamped(index)])
    names = list(found.data[CLASS_NAME])
    assert names.count("player") == players
    assert names.count("number") == numbers
    assert set(names) - {"player", "number"} == others
    assert np.all(found.confidence == 1.0)
    assert len(ROLES.select(found, "player")) == players
    if numbers:
        expected = [OBJECTS["A#23"][4], OBJECTS["B#7"][4]]
        assert ROLES.select(found, "number").xyxy.tolist() == [list(b) for b in expected]


@pytest.mark.parametrize(
    "frame",
    [
        np.zeros((HEIGHT, WIDTH, 3), np.uint8),  # no stamp
        stamped(0, key=KEY + 1),  # a clip without labels
    ],
)
def test_detector_unknown_frames_give_nothing(world: ReplayWorld, frame: np.ndarray) -> None:
    (found,) = world.detector().detect([frame])
    assert len(found) == 0 and world.seen is None
    assert world.reader().read([frame[:10, :10]])[0].text is None


def test_tracker_ids_masks_and_added_players(world: ReplayWorld) -> None:
    tracker = world.tracking().open()
    first = tracker.start(stamped(0), prompts("A#23"))
    assert first.tracker_id.tolist() == [1]
    assert list(first.data[SOURCE]) == ["prompt"]
    x1, y1, x2, y2 = OBJECTS["A#23"][3]
    assert first.mask.shape == (1, HEIGHT, WIDTH)
    assert first.mask[0].sum() == (x2 - x1) * (y2 - y1) and first.mask[0, y1, x1]

    second = tracker.step(stamped(1), new_detections=prompts("A#23", "B#7"))
    assert second.tracker_id.tolist() == [1, 2]
    assert list(second.data[SOURCE]) == ["propagated", "added"]
    third = tracker.step(stamped(2))
    assert third.tracker_id.tolist() == [1, 2]
    fourth = tracker.step(stamped(3))  # B gone from the labels
    assert fourth.tracker_id.tolist() == [1]
    tracker.close()
    with pytest.raises(RuntimeError):
        tracker.step(stamped(0))


@pytest.mark.parametrize(
    ("gap", "max_missing", "ids_after"),
    [
        (0, 3, [1]),
        (3, 3, [1]),  # short absence: same track
        (4, 3, [2]),  # longer absence: dropped, a new track once prompted again
        (10, 3, [2]),
    ],
)
def test_tracker_drops_after_long_absence(
    tmp_path: Path, gap: int, max_missing: int, ids_after: list[int]
) -> None:
    back = 1 + gap
    rows = [label_row(0, "A#23"), label_row(back, "A#23")]
    world = ReplayWorld(write_labels(tmp_path, rows))
    tracker = world.tracking(max_missing_frames=max_missing).open()
    tracker.start(stamped(0), prompts("A#23"))
    for index in range(1, back):
        assert len(tracker.step(stamped(index), new_detections=None)) == 0
    again = tracker.step(stamped(back), new_detections=prompts("A#23"))
    assert again.tracker_id.tolist() == ids_after


def test_tracker_box_masks_without_rle(tmp_path: Path) -> None:
    world = ReplayWorld(write_labels(tmp_path, [label_row(0, "A#23", mask=False)]))
    tracks = world.tracking().open().start(stamped(0), prompts("A#23"))
    x1, y1, x2, y2 = OBJECTS["A#23"][3]
    assert tracks.mask[0].sum() == (x2 - x1) * (y2 - y1)


def test_tracker_ignores_prompts_matching_nobody(world: ReplayWorld) -> None:
    far = sv.Detections(xyxy=np.asarray([[0, 150, 10, 160]], dtype=np.float32))
    assert len(world.tracking().open().start(stamped(0), far)) == 0
    assert len(world.tracking().open().start(stamped(0), prompts())) == 0


def test_reader_reads_the_crop_it_is_shown(world: ReplayWorld) -> None:
    frame = stamped(0)
    (found,) = world.detector().detect([frame])
    crops = number_crops(world, frame, found)
    reads = world.reader().read([*crops[::-1], np.zeros((4, 4, 3), np.uint8)])
    assert [r.text for r in reads] == ["7", "23", None]
    assert reads[-1].confidence == 0.0
    assert all(0.0 <= r.confidence <= 1.0 for r in reads)
    assert world.reader().read([]) == []


@pytest.mark.parametrize("moving", [False, True])
@pytest.mark.parametrize("ahead", [1, 2, 5])
def test_reads_do_not_depend_on_how_far_ahead_the_detector_ran(
    tmp_path: Path, ahead: int, moving: bool
) -> None:
    """observe may detect frames ahead of its reads (``infer_ahead``): frame i's crops read
    as when frame i was the last frame detected. A number whose pixels change from frame to
    frame reads exactly as its own frame; one that stays the same pixel for pixel reads as
    the first frame since the last read that showed it (the same pixels read alike)."""
    frames = 16
    rows = [label_row(f, "A#23", visible=f % 5 != 3) for f in range(frames)]
    root = write_labels(tmp_path, rows)

    def frame(index: int) -> np.ndarray:
        image = stamped(index)
        if moving:  # the number's texture changes with the frame
            x1, y1, x2, y2 = OBJECTS["A#23"][4]
            image[y1:y2, x1:x2] += index
        return image

    def reads(ahead: int) -> list[tuple[int, list[tuple[str | None, float]]]]:
        world = ReplayWorld(root, misread_rate=0.5)
        detector, reader = world.detector(), world.reader()
        crops: dict[int, list[np.ndarray]] = {}
        out = []
        for index in range(frames + ahead):
            if index < frames:
                (found,) = detector.detect([frame(index)])
                crops[index] = number_crops(world, frame(index), found)
            read = index - ahead
            if read >= 0 and read % 2 == 0 and crops[read]:  # not every frame is read
                texts = [(r.text, r.confidence) for r in reader.read(crops[read])]
                out.append((read, texts))
        return out

    def alone(index: int) -> list[tuple[str | None, float]]:
        """Frame ``index`` read by a world that detected nothing else."""
        world = ReplayWorld(root, misread_rate=0.5)
        (found,) = world.detector().detect([frame(index)])
        return [
            (r.text, r.confidence)
            for r in world.reader().read(number_crops(world, frame(index), found))
        ]

    in_step = reads(0)
    assert len({confidence for _, texts in in_step for _, confidence in texts}) > 3
    assert reads(ahead) == in_step
    own = [(index, alone(index)) for index, _ in in_step]
    assert (in_step == own) == moving  # still pixels read as an earlier frame's


def test_reader_misreads(tmp_path: Path) -> None:
    frames = 300
    rows = [label_row(f, "A#23") for f in range(frames)]
    root = write_labels(tmp_path, rows)

    def read_all(rate: float, seed: int) -> list:
        world = ReplayWorld(root, misread_rate=rate, seed=seed)
        out = []
        for index in range(frames):
            frame = stamped(index)
            (found,) = world.detector().detect([frame])
            out.extend(world.reader().read(number_crops(world, frame, found)))
        return out

    truth = read_all(0.0, 0)
    assert {r.text for r in truth} == {"23"}
    assert {r.text for r in read_all(1.0, 0)}.isdisjoint({"23"})
    noisy = read_all(0.2, 0)
    wrong = [r for r in noisy if r.text != "23"]
    assert 0.12 <= len(wrong) / frames <= 0.28
    assert {"2", "3"} & {r.text for r in wrong}
    right = [r for r in noisy if r.text == "23"]
    assert np.mean([r.confidence for r in wrong]) < np.mean([r.confidence for r in right])
    assert [r.text for r in read_all(0.2, 0)] == [r.text for r in noisy]  # same seed
    assert [r.text for r in read_all(0.2, 1)] != [r.text for r in noisy]


@pytest.mark.parametrize(
    ("number", "allowed"),
    [
        ("23", lambda t: t in {None, "73", "2", "3"} or (t and len(t) == 2)),
        ("7", lambda t: t is None or (t.isdigit() and len(t) == 1)),
        ("00", lambda t: t is None or t in {"0"} or len(t) == 2),
        ("27", lambda t: t is None or t in {"72", "2", "7"} or len(t) == 2),
    ],
)
def test_misread_is_plausible_and_wrong(number: str, allowed) -> None:
    seen = set()
    for seed in range(200):
        text = misread(number, np.random.default_rng(seed))
        assert text != number
        assert allowed(text), text
        seen.add(text)
    assert None in seen and len(seen) >= 4


@pytest.mark.parametrize("number", ["", "abc", "123"])
def test_misread_rejects_non_numbers(number: str) -> None:
    with pytest.raises(ValueError):
        misread(number, np.random.default_rng(0))


def test_world_rejects_bad_rate(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        ReplayWorld(tmp_path, misread_rate=1.5)


def test_doubles_on_decoded_synthetic_clip(tmp_path: Path) -> None:
    game = make_game(tmp_path / "games", tmp_path / "labels", clips=1, seconds=0.5, size=(426, 240))
    world = ReplayWorld(tmp_path / "labels", misread_rate=0.0)
    labels = pq.read_table(game.labels[0]).to_pylist()
    detector, reader = world.detector(), world.reader()
    tracker = world.tracking().open()
    checked = 0
    owners: dict[int, str] = {}
    for index, frame in iter_frames(game.clips[0]):
        (found,) = detector.detect([frame])
        rows = [r for r in labels if r["frame"] == index]
        players = ROLES.select(found, "player")
        assert len(players) == sum(r["role"] == "player" for r in rows)
        expected = sorted(r["number"] for r in rows if r["number_visible"])
        assert sorted(r.text for r in reader.read(number_crops(world, frame, found))) == expected
        checked += len(expected)
        tracks = tracker.start(frame, players) if index == 0 else tracker.step(frame, players)
        assert len(tracks) == len(players)
        by_box = {(r["x1"], r["y1"], r["x2"], r["y2"]): r["object_id"] for r in rows}
        for track_id, box in zip(tracks.tracker_id.tolist(), tracks.xyxy.tolist(), strict=True):
            assert owners.setdefault(track_id, by_box[tuple(box)]) == by_box[tuple(box)]
    assert checked > 0
    assert sorted(owners) == list(range(1, len(owners) + 1))
    assert len(set(owners.values())) == len(owners) == len(game.on_court)


# --------------------------------------------------------------------------- noise


@pytest.mark.parametrize(
    ("presets", "difficulty", "knobs", "expected"),
    [
        (READER_PRESETS, None, {}, ReaderNoise()),
        (READER_PRESETS, "easy", {"persistent_rate": None}, ReaderNoise()),
        (READER_PRESETS, "realistic", {}, READER_PRESETS["realistic"]),
        (
            DETECTOR_PRESETS,
            "hard",
            {"miss_rate": 0.0},
            replace(DETECTOR_PRESETS["hard"], miss_rate=0.0),
        ),
        (TRACKER_PRESETS, "realistic", {"switch_iou": 0.5}, TrackerNoise(0.05, 0.5)),
    ],
)
def test_noise_presets(presets: dict, difficulty: str | None, knobs: dict, expected) -> None:
    assert noise_preset(presets, difficulty, **knobs) == expected


def test_presets_grow_harder() -> None:
    for presets in (DETECTOR_PRESETS, TRACKER_PRESETS, READER_PRESETS):
        easy, realistic, hard = (presets[d] for d in ("easy", "realistic", "hard"))
        for f in dataclasses.fields(easy):
            if f.name in ("switch_iou", "persistence", "misread_rate"):
                continue
            assert getattr(easy, f.name) == 0 < getattr(realistic, f.name)
            assert getattr(realistic, f.name) <= getattr(hard, f.name)


@pytest.mark.parametrize(
    ("difficulty", "knobs", "message"),
    [
        ("medium", {}, "difficulty"),
        ("easy", {"blur": 1.0}, "unknown noise knobs"),
        ("easy", {"persistent_rate": 1.5}, "persistent_rate"),
        ("easy", {"misread_rate": -0.1}, "misread_rate"),
    ],
)
def test_noise_preset_rejects_bad_values(difficulty: str, knobs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        noise_preset(READER_PRESETS, difficulty, **knobs)


def test_doubles_take_difficulty_and_knobs(world: ReplayWorld) -> None:
    reader = world.reader("hard", persistent_rate=0.5)
    assert reader.noise == replace(READER_PRESETS["hard"], persistent_rate=0.5)
    assert reader.misread_rate == READER_PRESETS["hard"].misread_rate
    assert world.reader().misread_rate == world.misread_rate  # easy keeps the world's
    assert world.detector("realistic").noise == DETECTOR_PRESETS["realistic"]
    assert world.tracking(difficulty="hard").noise == TRACKER_PRESETS["hard"]
    with pytest.raises(ValueError):
        world.tracking(difficulty="hard", id_switch_rate=2.0)


@pytest.mark.parametrize(
    ("number", "options"),
    [
        ("23", {"2", "3", "73", "28"}),  # a digit dropped, 2/7, 3/8
        ("8", {"3", "6", "0"}),
        ("7", {"2", "1"}),
        ("00", {"0", "80", "8"}),  # 08 reads 8
        ("4", {"1"}),
    ],
)
def test_persistent_confusion(number: str, options: set[str]) -> None:
    seen = {persistent_confusion(number, np.random.default_rng(seed)) for seed in range(200)}
    assert seen == options


def _viewed_world(tmp_path: Path, frames: int = 60, **reader: float) -> list:
    """Reads of A#23 on every frame, its number turning away on every 10th frame (views
    of 9 frames)."""
    rows = [label_row(f, "A#23", visible=f % 10 != 0) for f in range(frames)]
    world = ReplayWorld(write_labels(tmp_path, rows), misread_rate=0.0, seed=3)
    detector, read = world.detector(), world.reader(**reader)
    out = []
    for index in range(frames):
        frame = stamped(index)
        (found,) = detector.detect([frame])
        out.append(
            [(index, r.text, r.confidence) for r in read.read(number_crops(world, frame, found))]
        )
    return [r for reads in out for r in reads]


def test_persistent_misreads_repeat_over_a_view(tmp_path: Path) -> None:
    reads = _viewed_world(tmp_path, persistent_rate=1.0, persistence=1.0, confident_misreads=1.0)
    by_view: dict[int, set] = {}
    for index, text, _ in reads:
        by_view.setdefault(index // 10, set()).add(text)
    assert all(len(texts) == 1 for texts in by_view.values())  # one confusion per view
    assert set().union(*by_view.values()) <= {"2", "3", "73", "28"}
    assert np.mean([c for _, _, c in reads]) > 0.6  # confident misreads
    unsure = _viewed_world(tmp_path, persistent_rate=1.0, persistence=1.0)
    assert [t for _, t, _ in unsure] == [t for _, t, _ in reads]
    assert np.mean([c for _, _, c in unsure]) < 0.55
    right = _viewed_world(tmp_path, persistent_rate=0.0)
    assert {t for _, t, _ in right} == {"23"}


def test_covered_digits_drop(tmp_path: Path) -> None:
    rows = []
    for f in range(3):
        row = label_row(f, "A#23")
        pixels = np.zeros((HEIGHT, WIDTH), dtype=bool)
        pixels[40:150, 40:80] = True
        pixels[60:76, 60:68] = False  # someone nearer covers the right half of the number
        row["mask_rle"] = rle_encode(pixels)
        rows.append(row)
    world = ReplayWorld(write_labels(tmp_path, rows), misread_rate=0.0)
    frame = stamped(0)
    (found,) = world.detector().detect([frame])
    crops = number_crops(world, frame, found)
    assert [r.text for r in world.reader(covered_digit_drop=1.0).read(crops)] == ["2"]
    assert [r.text for r in world.reader().read(crops)] == ["23"]


@pytest.mark.parametrize(
    ("knobs", "players", "numbers"),
    [
        ({}, 2, 2),
        ({"miss_rate": 1.0}, 0, 2),
        ({"number_miss_rate": 1.0}, 2, 0),
    ],
)
def test_detector_misses(world: ReplayWorld, knobs: dict, players: int, numbers: int) -> None:
    (found,) = world.detector(**knobs).detect([stamped(0)])
    assert len(ROLES.select(found, "player")) == players
    assert len(ROLES.select(found, "number")) == numbers


def test_detector_false_numbers_and_jitter(world: ReplayWorld) -> None:
    detector = world.detector(false_numbers=6.0, box_jitter=0.3)
    counts, kinds = [], set()
    for index in range(3):
        frame = stamped(index)
        (found,) = detector.detect([frame])
        numbers = ROLES.select(found, "number")
        counts.append(len(numbers))
        kinds |= {n.kind for n in world.seen.numbers}
        truth = [OBJECTS["A#23"][4], OBJECTS["B#7"][4]]
        for box, real in zip(numbers.xyxy[:2].tolist(), truth, strict=True):
            assert box[0] <= real[0] and box[1] <= real[1] and box[2] >= real[2]
        reads = world.reader().read(number_crops(world, frame, found))
        assert len(reads) == len(numbers) and all(r.text is not None for r in reads[:2])
    assert max(counts) > 2 and kinds - {"number"}
    (again,) = world.detector(false_numbers=6.0, box_jitter=0.3).detect([stamped(0)])
    assert len(ROLES.select(again, "number")) == counts[0]  # deterministic


def _crossing_labels(tmp_path: Path) -> ReplayWorld:
    """A#23 and B#7 walk into each other on frame 2 and apart again."""
    rows = []
    for f, (ax, bx) in enumerate([(20, 140), (50, 110), (80, 90), (110, 60), (140, 30)]):
        for obj, x in (("A#23", ax), ("B#7", bx)):
            row = label_row(f, obj, mask=False)
            row.update(
                x1=x, x2=x + 40, number_visible=False, nx1=None, ny1=None, nx2=None, ny2=None
            )
            rows.append(row)
    return ReplayWorld(write_labels(tmp_path, rows))


@pytest.mark.parametrize(("rate", "swapped"), [(0.0, False), (1.0, True)])
def test_tracker_switches_ids_when_players_cross(
    tmp_path: Path, rate: float, swapped: bool
) -> None:
    world = _crossing_labels(tmp_path)
    tracker = world.tracking(id_switch_rate=rate).open()
    boxes = np.asarray([[20, 40, 60, 150], [140, 40, 180, 150]], dtype=np.float32)
    first = tracker.start(stamped(0), sv.Detections(xyxy=boxes))
    owner = dict(zip(first.tracker_id.tolist(), first.xyxy[:, 0].tolist(), strict=True))
    assert owner == {1: 20.0, 2: 140.0}
    for index in range(1, 5):
        tracks = tracker.step(stamped(index))
    last = dict(zip(tracks.tracker_id.tolist(), tracks.xyxy[:, 0].tolist(), strict=True))
    assert last == ({1: 30.0, 2: 140.0} if swapped else {1: 140.0, 2: 30.0})
