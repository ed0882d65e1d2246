"""observe() on scripted fake models: what gets detected, tracked, read and recorded.

The fakes read the frame index from pixel (0, 0) and the jersey number from the pixels of
the number box, so every decision observe takes is visible in the tables. Frames come
from a monkeypatched ``hoopray.video.iter_frames`` (no encoding needed); the real decoder
is exercised in tests/e2e/test_identify_acceptance.py.
"""

from __future__ import annotations

import inspect
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import supervision as sv

import hoopray.observe
import hoopray.video
from hoopray import store
from hoopray.models.base import CLASS_NAME, SOURCE, Models
from hoopray.observe import (
    STREAMED_TABLES,
    ObserveConfig,
    _EarlyStop,
    _fill_from_tracker,
    _TableBuilder,
    observe,
    team_crop,
    touching_pairs,
)
from hoopray.resolve import ResolveConfig, decode_embeddings, resolve
from hoopray.roster import Roster, TeamRoster
from hoopray.teams import BLANK
from hoopray.types import (
    OBS_READS,
    OBS_TEAM_VOTES,
    ClipRef,
    NumberRead,
    Observations,
    check_schema,
)
from hoopray.voting import vote_team

HEIGHT, WIDTH = 96, 160


@dataclass
class Obj:
    object_id: str
    box: tuple[int, int, int, int]
    number: str | None = None  # drawn (and detected) when not None
    team: int = 0
    hole: tuple[int, int, int, int] | None = None  # pixels left out of the tracker's mask
    number_at: tuple[int, int, int, int] | None = None  # the number box, if not the default


Scene = dict[int, list[Obj]]


def number_box(obj: Obj) -> tuple[int, int, int, int]:
    """8 x 10 px in the upper part of the player (legible under the default gates), or
    ``obj.number_at``."""
    if obj.number_at is not None:
        return obj.number_at
    x1, y1, x2, _ = obj.box
    cx = (x1 + x2) // 2
    return (cx - 4, y1 + 4, cx + 4, y1 + 14)


def render(index: int, objects: list[Obj]) -> np.ndarray:
    frame = np.zeros((HEIGHT, WIDTH, 3), dtype=np.uint8)
    for obj in objects:
        x1, y1, x2, y2 = obj.box
        frame[y1:y2, x1:x2] = (200, 0, 0) if obj.team == 0 else (0, 0, 200)
        if obj.number is not None:
            nx1, ny1, nx2, ny2 = number_box(obj)
            frame[ny1:ny2, nx1:nx2, 1] = int(obj.number) + 1
    frame[0, 0, 0] = index % 256
    frame[0, 0, 1] = index // 256
    return frame


def frame_index(frame: np.ndarray) -> int:
    return int(frame[0, 0, 0]) + 256 * int(frame[0, 0, 1])


def detections(boxes: list, names: list[str], confidence: float = 0.9) -> sv.Detections:
    return sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32).reshape(len(boxes), 4),
        confidence=np.full(len(boxes), confidence, dtype=np.float32),
        class_id=np.zeros(len(boxes), dtype=int),
        data={CLASS_NAME: np.asarray(names, dtype=object)},
    )


@dataclass
class FakeDetector:
    scene: Scene
    confidence: float = 0.9
    calls: list[int] = field(default_factory=list)
    class_names: list[str] = field(default_factory=lambda: ["player", "number"])

    def detect(self, frames: list[np.ndarray]) -> list[sv.Detections]:
        out = []
        for frame in frames:
            index = frame_index(frame)
            self.calls.append(index)
            objects = self.scene.get(index, [])
            boxes = [o.box for o in objects] + [number_box(o) for o in objects if o.number]
            names = ["player"] * len(objects) + ["number"] * sum(bool(o.number) for o in objects)
            out.append(detections(boxes, names, self.confidence))
        return out


@dataclass
class FakeTracker:
    scene: Scene
    ids: dict[str, int] = field(default_factory=dict)
    closed: bool = False
    prompts: list[int] = field(default_factory=list)

    def start(self, frame: np.ndarray, dets: sv.Detections) -> sv.Detections:
        return self._advance(frame, dets, "prompt")

    def step(self, frame: np.ndarray, new_detections: sv.Detections | None = None):
        return self._advance(frame, new_detections, "added")

    def close(self) -> None:
        self.closed = True

    def _advance(self, frame, prompts, source):
        index = frame_index(frame)
        objects = {o.object_id: o for o in self.scene.get(index, [])}
        added = set()
        if prompts is not None:
            self.prompts.append(index)
            for box in np.asarray(prompts.xyxy).tolist():
                for obj in objects.values():
                    if tuple(obj.box) == tuple(box) and obj.object_id not in self.ids:
                        self.ids[obj.object_id] = len(self.ids) + 1
                        added.add(obj.object_id)
        live = [o for o in objects.values() if o.object_id in self.ids]
        masks = np.zeros((len(live), HEIGHT, WIDTH), dtype=bool)
        for k, obj in enumerate(live):
            x1, y1, x2, y2 = obj.box
            masks[k, y1:y2, x1:x2] = True
            if obj.hole is not None:
                hx1, hy1, hx2, hy2 = obj.hole
                masks[k, hy1:hy2, hx1:hx2] = False
        return sv.Detections(
            xyxy=np.asarray([o.box for o in live], dtype=np.float32).reshape(len(live), 4),
            mask=masks,
            tracker_id=np.asarray([self.ids[o.object_id] for o in live], dtype=int),
            data={
                SOURCE: np.asarray(
                    [source if o.object_id in added else "propagated" for o in live], dtype=object
                )
            },
        )


@dataclass
class FakeTracking:
    scene: Scene
    opened: list[FakeTracker] = field(default_factory=list)

    def open(self) -> FakeTracker:
        self.opened.append(FakeTracker(self.scene))
        return self.opened[-1]


@dataclass
class FakeReader:
    wrong: bool = False
    batches: list[int] = field(default_factory=list)

    def read(self, crops: list[np.ndarray]) -> list[NumberRead]:
        self.batches.append(len(crops))
        out = []
        for image in crops:
            value = int(image[image.shape[0] // 2, image.shape[1] // 2, 1]) - 1
            text = None if value < 0 else str(value + 1 if self.wrong else value)
            out.append(NumberRead(text, 0.9, text or ""))
        return out


class FakeEmbedder:
    """A third of the mean colour of each crop (200 / 3: a value float16 rounds); every
    output is kept in ``outputs``."""

    def __init__(self) -> None:
        self.calls = 0
        self.outputs: list[np.ndarray] = []

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        self.calls += 1
        means = [c.reshape(-1, 3).mean(axis=0) / 3 for c in crops]
        out = np.asarray(means, np.float32).reshape(-1, 3)
        self.outputs.append(out)
        return out


class FakeTeamModel:
    """Cluster 1 for blue crops (see :func:`render`), 0 for red ones."""

    def __init__(self) -> None:
        self.calls = 0

    def predict(self, embeddings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.calls += 1
        clusters = (embeddings[:, 2] > embeddings[:, 0]).astype(np.int8)
        return clusters, np.full(len(embeddings), 0.8, np.float32)


def team_clusters(obs: Observations) -> dict[int, int | None]:
    """Each track's team cluster as resolve assigns it with :class:`FakeTeamModel`."""
    identities = resolve(obs, None, None, ResolveConfig(), team_model=FakeTeamModel())
    rows = identities.tracks.to_pylist()
    return {row["track_id"]: row["team_cluster"] for row in rows}


@dataclass
class Rig:
    scene: Scene
    frames: int
    detector: FakeDetector
    tracking: FakeTracking
    reader: FakeReader
    embedder: FakeEmbedder
    clip: ClipRef

    def models(self) -> Models:
        return Models(
            detector=self.detector,
            tracking=self.tracking,
            embedder=self.embedder,
            reader=self.reader,
        )


@pytest.fixture
def rig(monkeypatch: pytest.MonkeyPatch):
    """Builds a Rig for a scene and makes hoopray.video serve its frames."""

    def make(scene: Scene, frames: int, reader: FakeReader | None = None) -> Rig:
        def fake_iter(path, stride=1, start=0, stop=None):
            end = frames if stop is None else min(frames, stop)
            for index in range(start, end, stride):
                yield index, render(index, scene.get(index, []))

        def fake_probe(path):
            return hoopray.video.VideoInfo(WIDTH, HEIGHT, 30.0, frames, frames / 30, 0)

        monkeypatch.setattr(hoopray.video, "iter_frames", fake_iter)
        monkeypatch.setattr(hoopray.video, "probe", fake_probe)
        return Rig(
            scene,
            frames,
            FakeDetector(scene),
            FakeTracking(scene),
            reader or FakeReader(),
            FakeEmbedder(),
            ClipRef("game", "clip", "clip.mp4", "fp"),
        )

    return make


def still(frames: int, objects: list[Obj]) -> Scene:
    return {i: list(objects) for i in range(frames)}


A = Obj("a", (10, 20, 40, 80), "23", team=0)
B = Obj("b", (60, 20, 90, 80), "7", team=1)
C = Obj("c", (110, 20, 140, 80), "11", team=1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({}, None),
        ({"read_stride": 0}, "read_stride"),
        ({"detect_stride": 0}, "detect_stride"),
        ({"team_stride": 0}, "team_stride"),
        ({"number_pad": -1}, "number_pad"),
        ({"crop_scale": 0.0}, "crop_scale"),
        ({"skip_confirmed_reads": 0}, "skip_confirmed_reads"),
        ({"max_frames": 0}, "max_frames"),
        ({"read_min_ios": 1.5}, "read_min_ios"),
        ({"read_min_height": -1}, "read_min_height"),
        ({"read_min_aspect": 3.0}, "read_min_aspect"),
        ({"read_min_aspect": -0.1}, "read_min_aspect"),
        ({"skip_min_posterior": 1.5}, "skip_min_posterior"),
        ({"skip_min_posterior": -0.1}, "skip_min_posterior"),
    ],
)
def test_config_validation(changes: dict, message: str | None) -> None:
    if message is None:
        assert ObserveConfig(**changes).read_stride == 5
        return
    with pytest.raises(ValueError, match=message):
        ObserveConfig(**changes)


def test_tracks_reads_and_calls(rig) -> None:
    scene = still(11, [A, B])
    r = rig(scene, 11)
    cfg = ObserveConfig(skip_confirmed_reads=None, team_stride=5)
    obs = observe(r.clip, r.models(), cfg)

    assert r.detector.calls == [0, 5, 10]  # one call per detection frame
    assert r.reader.batches == [2, 2, 2]  # one batched call per read frame
    tracks = obs.tracks.to_pydict()
    assert len(tracks["frame"]) == 22
    assert tracks["source"][:2] == ["prompt", "prompt"]
    assert set(tracks["source"][2:]) == {"propagated"}
    assert tracks["mask_area"][0] == 30 * 60
    assert (tracks["x1"][0], tracks["y1"][0], tracks["x2"][0], tracks["y2"][0]) == A.box
    # class and confidence known on detection frames only
    assert tracks["class_name"][0] == "player" and tracks["det_confidence"][0] == pytest.approx(0.9)
    assert tracks["class_name"][2] is None
    reads = obs.reads.to_pydict()
    assert reads["frame"] == [0, 0, 5, 5, 10, 10]
    assert reads["read_id"] == list(range(6))
    assert reads["text"] == ["23", "7"] * 3
    assert reads["candidates"][0] == [{"track_id": 1, "ios": 1.0}]
    assert (reads["x1"][0], reads["y1"][0]) == number_box(A)[:2]
    votes = obs.team_votes.to_pydict()
    assert votes["frame"] == [0, 0, 5, 5, 10, 10]
    assert votes["dim"] == [3] * 6 and votes["own_fraction"] == [1.0] * 6
    assert team_clusters(obs) == {1: 0, 2: 1}
    clip = obs.clip.to_pylist()[0]
    assert clip["frames"] == 11
    assert (clip["width"], clip["height"], clip["read_stride"]) == (WIDTH, HEIGHT, 5)
    assert (clip["reader_calls"], clip["crops_read"]) == (3, 6)
    assert r.tracking.opened[0].closed
    for name in ("tracks", "reads", "team_votes", "clip"):
        check_schema(f"observations/{name}", getattr(obs, name))


@pytest.mark.parametrize(
    ("skip", "wrong", "expected_reads"),
    [
        (None, False, 6),  # no early stop: every number on every read frame
        (2, False, 4),  # both tracks stop after two equal reads
        (1, False, 2),
        (2, True, 4),  # equal wrong reads stop just the same: resolve decides later
    ],
)
def test_early_stop(rig, skip: int | None, wrong: bool, expected_reads: int) -> None:
    r = rig(still(15, [A, B]), 15, FakeReader(wrong=wrong))
    cfg = ObserveConfig(skip_policy="streak", skip_confirmed_reads=skip)
    obs = observe(r.clip, r.models(), cfg)
    assert obs.reads.num_rows == expected_reads
    assert obs.extra["numbers_skipped"] == 6 - expected_reads


@pytest.mark.parametrize(
    ("texts", "ios", "done"),
    [
        ([], [], False),
        (["7", "7", "7"], [1.0, 1.0, 1.0], True),
        (["7", None, "7", "7"], [1.0] * 4, True),  # unreadable: skipped, as resolve does
        (["7", "1", "7", "7"], [1.0] * 4, False),
        (["7", "7", "7"], [1.0, 0.5, 1.0], False),  # low-IoS reads do not count
        (["2", "7", "7", "7"], [1.0] * 4, True),
    ],
)
def test_early_stop_runs(texts: list, ios: list, done: bool) -> None:
    stop = _EarlyStop(3, 0.9, "streak")
    for text, value in zip(texts, ios, strict=True):
        stop.update(1, value, text)
    assert (1 in stop.done) is done


@pytest.mark.parametrize(
    ("reads", "min_posterior", "stops_at"),
    [
        ([], 0.96, None),
        ([("23", 0.9, 0)], 0.0, None),  # one read never decides without a roster
        ([("23", 0.9, 0), ("23", 0.9, 5)], 0.0, 1),  # resolve's own bar: the second read
        ([("23", 0.9, 0), ("23", 0.9, 5), ("23", 0.9, 10)], 0.96, None),  # one view: unsure
        ([("23", 0.9, 0), ("23", 0.9, 50)], 0.96, 1),  # two views of it
        ([("23", 0.9, 0), ("7", 0.9, 50), ("23", 0.9, 100)], 0.96, None),
        ([("7", 0.9, 0)] + [("23", 0.9, f) for f in (50, 100, 150, 200)], 0.96, 4),
    ],
)
def test_the_posterior_early_stop_waits_for_its_own_bar(
    reads: list[tuple[str, float, int]], min_posterior: float, stops_at: int | None
) -> None:
    stop = _EarlyStop(3, 0.9, "posterior", 10, (), min_posterior)
    decided = None
    for i, (text, confidence, frame) in enumerate(reads):
        stop.update(1, 1.0, text, confidence, frame)
        if decided is None and 1 in stop.done:
            decided = i
    assert decided == stops_at


@pytest.mark.parametrize(
    ("boxes", "expected"),
    [
        ([], set()),
        ([(0, 0, 10, 10)], set()),  # one track
        ([(0, 0, 10, 10), (20, 0, 30, 10)], set()),  # apart
        ([(0, 0, 10, 10), (5, 0, 15, 10)], {(1, 2)}),  # IoU 1/3
        ([(0, 0, 10, 10), (6, 0, 16, 10)], set()),  # IoU 0.25
        ([(0, 0, 10, 10), (5, 0, 15, 10), (5, 0, 15, 10)], {(1, 2), (1, 3), (2, 3)}),
        ([(0, 0, 0, 0), (0, 0, 0, 0)], set()),  # empty boxes never touch
    ],
)
def test_touching_pairs(boxes: list, expected: set) -> None:
    ids = np.arange(1, len(boxes) + 1)
    assert touching_pairs(np.array(boxes, np.float32).reshape(-1, 4), ids, 0.3) == expected


@pytest.mark.parametrize("policy", ["posterior", "streak"])
def test_a_reopened_track_is_decided_again_from_its_later_reads(policy: str) -> None:
    stop = _EarlyStop(2, 0.9, policy, 10, ())
    for frame in (0, 50, 100):
        stop.update(1, 1.0, "23", 0.9, frame)
    assert 1 in stop.done
    stop.reopen(1)
    stop.reopen(2)  # a track it never saw: nothing to forget
    assert 1 not in stop.done
    stop.update(1, 1.0, "23", 0.9, 150)
    assert 1 not in stop.done  # the reads before the crossing no longer count
    stop.update(1, 1.0, "23", 0.9, 200)
    assert 1 in stop.done


def _passing(cross: bool) -> Scene:
    """A, number showing, stands still; B passes far from it, or over it on frames 40..49
    (box IoU 0.5)."""
    return {
        i: [A, Obj("b", (20, 20, 50, 80) if cross and 40 <= i < 50 else (110, 20, 140, 80))]
        for i in range(100)
    }


@pytest.mark.parametrize(("cross", "frames_read"), [(False, [0]), (True, [0, 50])])
def test_a_track_that_crosses_another_is_read_again(
    rig, cross: bool, frames_read: list[int]
) -> None:
    r = rig(_passing(cross), 100, ScriptedReader(["23"] * 20, 0.9))
    obs = observe(r.clip, r.models(), ObserveConfig(), roster=ROSTER)
    assert obs.reads.column("frame").to_pylist() == frames_read  # one read decides "23"
    unassigned = 2 if cross else 0  # frames 40 and 45: the number lies on both tracks
    assert obs.extra["numbers_unassigned"] == unassigned
    assert obs.extra["numbers_skipped"] == 20 - len(frames_read) - unassigned


@dataclass
class ScriptedReader:
    """Returns the given texts in order, one per crop read."""

    texts: list[str | None]
    confidence: float = 0.9
    batches: list[int] = field(default_factory=list)

    def read(self, crops: list[np.ndarray]) -> list[NumberRead]:
        self.batches.append(len(crops))
        out = []
        for _ in crops:
            text = self.texts.pop(0)
            out.append(NumberRead(text, self.confidence, text or ""))
        return out


@pytest.mark.parametrize(
    ("texts", "reads"),
    [
        (["23", "23", "23"], 3),
        (["23", None, "23", "23"], 4),  # an unreadable read neither counts nor breaks the run
        (["23", "2", "23", "23", "23"], 5),  # a misread restarts it
        (["2", "23", "23", "2", None, "23", "23", "23"], 8),
    ],
)
def test_a_track_is_read_until_resolve_would_confirm_it(
    rig, texts: list[str | None], reads: int
) -> None:
    frames = 5 * (len(texts) + 3)
    r = rig(still(frames, [A]), frames, ScriptedReader(list(texts) + ["99"] * 3))
    obs = observe(r.clip, r.models(), ObserveConfig(skip_policy="streak"))
    assert obs.reads.column("text").to_pylist() == texts  # and not one read more
    assert obs.extra["numbers_skipped"] == 3
    identities = resolve(obs, None, None, ResolveConfig(policy="streak"))
    assert identities.tracks.column("number").to_pylist() == ["23"]
    assert obs.reads.num_rows == reads


def _without_last_read(obs: Observations) -> Observations:
    return Observations(
        tracks=obs.tracks,
        reads=obs.reads.slice(0, obs.reads.num_rows - 1),
        team_votes=obs.team_votes,
        clip=obs.clip,
    )


def _views(views: int, per_view: int = 3, gap: int = 3) -> tuple[Scene, int]:
    """A's number shows on ``per_view`` read frames in a row, then turns away for ``gap``
    read frames (each view is a separate run of reads for resolve), ``views`` times."""
    period = 5 * (per_view + gap)
    frames = period * views
    hidden = Obj(A.object_id, A.box, None)
    scene = {i: [A if i % period < 5 * per_view else hidden] for i in range(frames)}
    return scene, frames


@pytest.mark.parametrize(
    ("texts", "confidence"),
    [
        (["23"] * 12, 0.9),
        (["23"] * 12, 0.5),  # doubtful reads weigh less: more are needed
        (["23", "2", "23", "23", None, "23"] + ["23"] * 9, 0.9),
        (["7", "23", "28", "23"] + ["23"] * 11, 0.8),
    ],
)
def test_the_posterior_early_stop_stops_at_the_read_that_decides(
    rig, texts: list[str | None], confidence: float
) -> None:
    scene, frames = _views(len(texts) // 3)
    r = rig(scene, frames, ScriptedReader(list(texts), confidence))
    obs = observe(r.clip, r.models(), ObserveConfig())  # skip_policy="posterior"
    assert obs.extra["numbers_skipped"] > 0  # it stopped before the reads ran out
    cfg = ResolveConfig()  # policy="posterior"; no roster: the uniform prior observe uses
    (row,) = resolve(obs, None, None, cfg).tracks.to_pylist()
    assert (row["number"], row["status"]) == ("23", "confirmed")
    assert row["posterior"] >= ObserveConfig().skip_min_posterior
    (before,) = resolve(_without_last_read(obs), None, None, cfg).tracks.to_pylist()
    assert (before["posterior"] or 0.0) < ObserveConfig().skip_min_posterior  # it decided


ROSTER = Roster(
    (
        TeamRoster("Red", "#c80000", {"23": "Ann", "7": "Bea", "11": "Cy"}),
        TeamRoster("Blue", "#0000c8", {"5": "Dee", "8": "Eve"}),
    )
)


def _stopped_where_resolve_is_sure(obs: Observations, roster: Roster | None) -> bool:
    """True when observe stopped reading at the read from which resolve (its default
    policy, the same roster, no team model: a track of unknown team, as observe sees it)
    confirms the track with a posterior of at least ``skip_min_posterior``, and read on to
    the end when resolve never gets there."""
    cfg, bar = ResolveConfig(), ObserveConfig().skip_min_posterior
    (row,) = resolve(obs, roster, None, cfg).tracks.to_pylist()
    sure = row["status"] in ("confirmed", "off_roster") and (row["posterior"] or 0.0) >= bar
    if obs.extra["numbers_skipped"] == 0:
        return not sure
    (before,) = resolve(_without_last_read(obs), roster, None, cfg).tracks.to_pylist()
    return sure and (before["posterior"] or 0.0) < bar


@pytest.mark.parametrize("number", ["23", "7", "42"])  # 42 is on neither roster
def test_with_the_roster_observe_stops_where_resolve_is_sure(rig, number: str) -> None:
    reads = {}
    for roster in (None, ROSTER):
        r = rig(still(60, [A]), 60, ScriptedReader([number] * 12, 0.9))
        obs = observe(r.clip, r.models(), ObserveConfig(), roster=roster)
        assert _stopped_where_resolve_is_sure(obs, roster)
        reads[roster is not None] = obs.reads.num_rows
    if number != "42":  # the roster's prior decides a roster number no later
        assert reads[True] <= reads[False]


P = Obj("p", (10, 20, 40, 80), "23")
Q = Obj("q", (40, 20, 70, 80))  # stands right of P


@pytest.mark.parametrize(
    ("number_at", "changes", "read", "counter"),
    [
        (None, {}, True, None),
        ((21, 24, 29, 30), {}, False, "numbers_illegible"),  # 6 px tall
        ((21, 24, 29, 30), {"read_min_height": 6}, True, None),
        ((10, 24, 40, 34), {}, False, "numbers_illegible"),  # 30 x 10: aspect 3
        ((24, 24, 25, 34), {}, False, "numbers_illegible"),  # 1 x 10: aspect 0.1
        ((35, 30, 45, 40), {}, False, "numbers_unassigned"),  # half on P, half on Q
        ((35, 30, 45, 40), {"read_min_ios": 0.0}, False, "numbers_unassigned"),  # still a tie
        ((33, 30, 43, 40), {}, False, "numbers_unassigned"),  # 70 % on P: IoS 0.7 < 0.8
        ((33, 30, 43, 40), {"read_min_ios": 0.6}, True, None),
        ((31, 30, 41, 40), {}, True, None),  # 90 % on P
    ],
)
def test_only_legible_numbers_are_read(
    rig, number_at: tuple | None, changes: dict, read: bool, counter: str | None
) -> None:
    p = Obj(P.object_id, P.box, P.number, number_at=number_at)
    r = rig(still(1, [p, Q]), 1)
    obs = observe(r.clip, r.models(), ObserveConfig(**changes))
    assert obs.reads.num_rows == int(read)
    assert r.reader.batches == ([1] if read else [])
    for name in ("numbers_illegible", "numbers_unassigned"):
        assert obs.extra[name] == int(name == counter)
    if read and number_at is not None and number_at[2] > 40:  # straddles: both are candidates
        ((candidates,),) = [obs.reads.column("candidates").to_pylist()]
        assert [c["track_id"] for c in candidates] == [1, 2]
        assert candidates[0]["ios"] > 0.5 > candidates[1]["ios"] > 0


def test_player_entering_later_is_added(rig) -> None:
    scene = {i: [A] + ([C] if i >= 7 else []) for i in range(16)}
    r = rig(scene, 16)
    obs = observe(r.clip, r.models(), ObserveConfig(skip_confirmed_reads=None))
    rows = obs.tracks.to_pydict()
    c_rows = [
        (f, s)
        for f, t, s in zip(rows["frame"], rows["track_id"], rows["source"], strict=True)
        if t == 2
    ]
    # C appears at frame 7 and is prompted at the next detection frame (10)
    assert c_rows[0] == (10, "added")
    assert {s for _, s in c_rows[1:]} == {"propagated"}
    assert 2 in {
        c["track_id"] for cands in obs.reads.column("candidates").to_pylist() for c in cands
    }


def test_no_players_at_first_then_some(rig) -> None:
    scene = {i: ([A] if i >= 3 else []) for i in range(12)}
    r = rig(scene, 12)
    obs = observe(r.clip, r.models(), ObserveConfig())
    frames = obs.tracks.column("frame").to_pylist()
    assert frames[0] == 5 and frames == list(range(5, 12))  # first detection frame with players
    assert obs.clip.column("frames")[0].as_py() == 12


@pytest.mark.parametrize(
    ("scene", "frames", "track_rows", "reads"),
    [
        ({}, 6, 0, 0),  # nobody ever
        ({0: [A]}, 1, 1, 1),  # a one-frame clip
        ({i: [Obj("a", A.box, None)] for i in range(6)}, 6, 6, 0),  # no number visible
        ({i: [A] if i < 3 else [] for i in range(11)}, 11, 3, 1),  # track lost for good
        ({i: [A] if i % 5 else [] for i in range(11)}, 11, 0, 0),  # players only between detections
    ],
)
def test_edge_cases(rig, scene: Scene, frames: int, track_rows: int, reads: int) -> None:
    r = rig(scene, frames)
    obs = observe(r.clip, r.models(), ObserveConfig(skip_confirmed_reads=None))
    assert obs.tracks.num_rows == track_rows
    assert obs.reads.num_rows == reads
    assert obs.clip.column("frames")[0].as_py() == frames
    assert all(t.closed for t in r.tracking.opened)


def test_numbers_outside_tracks_are_not_read(rig) -> None:
    low = Obj("low", A.box, "5")
    r = rig(still(6, [low, B]), 6)
    r.detector.confidence = 0.3  # below new_track_min_confidence: nobody is tracked
    obs = observe(r.clip, r.models(), ObserveConfig())
    assert obs.tracks.num_rows == 0 and obs.reads.num_rows == 0
    assert r.reader.batches == []
    assert obs.extra["numbers_unassigned"] == 4


def test_max_frames(rig) -> None:
    r = rig(still(20, [A]), 20)
    obs = observe(r.clip, r.models(), ObserveConfig(max_frames=7))
    assert obs.clip.column("frames")[0].as_py() == 7
    assert max(obs.tracks.column("frame").to_pylist()) == 6


def test_zero_frames_raise(rig) -> None:
    r = rig({}, 0)
    with pytest.raises(hoopray.video.VideoError):
        observe(r.clip, r.models(), ObserveConfig())


@pytest.mark.parametrize("missing", ["detector", "tracking", "reader"])
def test_missing_models(rig, missing: str) -> None:
    r = rig(still(2, [A]), 2)
    models = r.models()
    setattr(models, missing, None)
    with pytest.raises(ValueError, match=missing):
        observe(r.clip, models, ObserveConfig())


def test_without_an_embedder_no_team_votes_are_recorded(rig) -> None:
    r = rig(still(20, [A, B]), 20)
    models = r.models()
    models.embedder = None
    obs = observe(r.clip, models, ObserveConfig(team_stride=5))
    assert obs.tracks.num_rows == 40 and obs.reads.num_rows > 0
    assert obs.team_votes.num_rows == 0 and obs.team_votes.schema == OBS_TEAM_VOTES
    assert (obs.extra["embedder_calls"], obs.extra["team_crops"]) == (0, 0)
    assert team_clusters(obs) == {1: None, 2: None}


@pytest.mark.parametrize("infer_ahead", [0, 2])
@pytest.mark.parametrize("broken", ["reader", "tracker"])
def test_tracker_closed_when_a_model_fails(rig, broken: str, infer_ahead: int) -> None:
    r = rig(still(10, [A]), 10)
    threads = threading.active_count()

    def reader_died(crops):
        raise RuntimeError("reader died")

    if broken == "reader":
        r.reader.read = reader_died
    else:
        opened = r.tracking.open

        def open_breaking_on_frame_6() -> FakeTracker:
            tracker = opened()
            step = tracker.step

            def step_or_die(frame, new_detections=None):
                if frame_index(frame) == 6:
                    assert not tracker.closed  # the tracker is closed after its last call
                    raise RuntimeError("tracker died")
                return step(frame, new_detections)

            tracker.step = step_or_die
            return tracker

        r.tracking.open = open_breaking_on_frame_6
    with pytest.raises(RuntimeError, match=f"{broken} died"):
        observe(r.clip, r.models(), ObserveConfig(), infer_ahead=infer_ahead, decode_ahead=2)
    assert r.tracking.opened[0].closed
    assert threading.active_count() == threads  # the threads that ran ahead have ended


def test_team_votes_cadence(rig) -> None:
    scene = {i: [A] + ([B] if i >= 4 else []) for i in range(40)}
    r = rig(scene, 40)
    cfg = ObserveConfig(detect_stride=1, team_stride=15)
    obs = observe(r.clip, r.models(), cfg)
    votes = obs.team_votes.to_pydict()
    by_track = {
        t: [f for f, tt in zip(votes["frame"], votes["track_id"], strict=True) if tt == t]
        for t in (1, 2)
    }
    assert by_track == {1: [0, 15, 30], 2: [4, 19, 34]}
    assert r.embedder.calls == obs.extra["embedder_calls"] == 6  # one call per frame with votes
    assert team_clusters(obs) == {1: 0, 2: 1}


def test_team_votes_store_the_embeddings_in_float16(rig) -> None:
    scene = {i: [A] + ([B] if i >= 4 else []) for i in range(20)}
    r = rig(scene, 20)
    obs = observe(r.clip, r.models(), ObserveConfig(team_stride=5))
    embedded = np.concatenate(r.embedder.outputs)
    votes = obs.team_votes.to_pydict()
    assert len(votes["frame"]) == len(embedded) == obs.extra["team_crops"] > 0
    assert votes["embedding"][0] == np.asarray(embedded[0], dtype="<f2").tobytes()
    decoded = decode_embeddings(obs.team_votes)
    assert decoded.dtype == np.float32 and decoded.shape == embedded.shape
    np.testing.assert_array_equal(decoded, embedded.astype(np.float16).astype(np.float32))
    np.testing.assert_allclose(decoded, embedded, rtol=2**-11)
    assert not np.array_equal(decoded, embedded)  # the values really are rounded


def test_resolve_decides_teams_as_the_old_observe_time_prediction(rig) -> None:
    """Before issue 13 observe stored ``predict(embedding)`` per vote and resolve voted on
    it; now resolve predicts from the stored float16 embeddings: same decisions."""
    scene = {i: [A, B] + ([C] if i >= 7 else []) for i in range(30)}
    r = rig(scene, 30)
    obs = observe(r.clip, r.models(), ObserveConfig(team_stride=4))
    model = FakeTeamModel()
    clusters, confidence = model.predict(np.concatenate(r.embedder.outputs))
    old: dict[int, tuple[int | None, float]] = {}
    track_ids = np.asarray(obs.team_votes.column("track_id").to_pylist())
    for tid in np.unique(track_ids).tolist():
        old[tid] = vote_team(clusters[track_ids == tid], confidence[track_ids == tid])
    model.calls = 0
    identities = resolve(obs, None, None, ResolveConfig(), team_model=model)
    assert model.calls == 1  # one batched call for the whole clip
    new = {
        row["track_id"]: (row["team_cluster"], row["team_confidence"])
        for row in identities.tracks.to_pylist()
    }
    assert {t: c for t, (c, _) in new.items()} == {t: c for t, (c, _) in old.items()}
    assert {t: c for t, (c, _) in old.items()} == {1: 0, 2: 1, 3: 1}
    for tid, (_, conf) in old.items():
        assert new[tid][1] == pytest.approx(conf)


@pytest.mark.parametrize(
    ("hole", "own_fraction"),
    [
        (None, 1.0),
        ((10, 20, 15, 30), 1.0),  # outside the central crop (19, 38, 31, 62)
        ((19, 38, 25, 62), 0.5),
        ((19, 38, 25, 50), 0.75),
        ((19, 38, 31, 62), 0.0),  # the crop is all someone else's
    ],
)
def test_own_fraction_is_the_share_of_the_crop_in_the_own_mask(
    rig, hole: tuple[int, int, int, int] | None, own_fraction: float
) -> None:
    r = rig(still(1, [Obj("a", A.box, "23", hole=hole)]), 1)
    obs = observe(r.clip, r.models(), ObserveConfig())
    tracks = obs.tracks.to_pylist()
    assert [(t["x1"], t["y1"], t["x2"], t["y2"]) for t in tracks] == [A.box]
    assert obs.team_votes.column("own_fraction").to_pylist() == [pytest.approx(own_fraction)]
    (row,) = resolve(obs, None, None, team_model=FakeTeamModel()).tracks.to_pylist()
    assert row["team_confidence"] == pytest.approx(0.8 * own_fraction)


_PIXELS = np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3) + 1  # no pixel is BLANK


def _mask(rows: slice, cols: slice) -> np.ndarray:
    mask = np.zeros((4, 5), dtype=bool)
    mask[rows, cols] = True
    return mask


@pytest.mark.parametrize(
    ("bounds", "mask", "kept"),
    [
        ((1, 0, 4, 3), None, np.ones((3, 3), bool)),  # no mask: the crop as it is
        ((0, 0, 5, 4), _mask(slice(None), slice(None)), np.ones((4, 5), bool)),
        # another player over the right half: his pixels are blanked
        ((0, 0, 4, 4), _mask(slice(None), slice(0, 2)), _mask(slice(None), slice(0, 2))[:, :4]),
        ((1, 1, 4, 3), _mask(slice(0, 2), slice(0, 5)), np.array([[1, 1, 1], [0, 0, 0]], bool)),
        ((0, 0, 5, 4), np.zeros((4, 5), bool), np.zeros((4, 5), bool)),  # none of it is own
        ((2, 2, 3, 3), _mask(slice(2, 3), slice(2, 3)), np.ones((1, 1), bool)),  # one pixel
        ((2, 1, 2, 3), _mask(slice(None), slice(None)), np.ones((2, 0), bool)),  # empty crop
        ((3, 3, 3, 3), None, np.ones((0, 0), bool)),
    ],
)
def test_team_crop_blanks_every_pixel_that_is_not_the_tracks_own(
    bounds: tuple[int, int, int, int], mask: np.ndarray | None, kept: np.ndarray
) -> None:
    c1, r1, c2, r2 = bounds
    before = _PIXELS.copy()
    image = team_crop(_PIXELS, bounds, mask)
    np.testing.assert_array_equal(_PIXELS, before)  # a copy: the frame is untouched
    assert image.shape == (r2 - r1, c2 - c1, 3) == (*kept.shape, 3)
    np.testing.assert_array_equal(image[kept], _PIXELS[r1:r2, c1:c2][kept])
    assert (image[~kept] == BLANK).all()


class CropKeepingEmbedder(FakeEmbedder):
    def __init__(self) -> None:
        super().__init__()
        self.crops: list[np.ndarray] = []

    def embed(self, crops: list[np.ndarray]) -> np.ndarray:
        self.crops += [c.copy() for c in crops]
        return super().embed(crops)


def test_an_overlapping_opponent_is_blanked_out_of_the_team_crop(rig) -> None:
    behind = Obj("a", A.box, "23", team=0, hole=(10, 30, 25, 70))  # red, 15 px hidden
    front = Obj("d", (0, 30, 25, 70), team=1)  # blue, drawn over a's left part
    r = rig(still(1, [behind, front]), 1)
    r.embedder = CropKeepingEmbedder()
    obs = observe(r.clip, r.models(), ObserveConfig())
    votes = obs.team_votes.to_pylist()
    crops = dict(zip((v["track_id"] for v in votes), r.embedder.crops, strict=True))
    own = {v["track_id"]: v["own_fraction"] for v in votes}
    assert own == {1: pytest.approx(0.5), 2: pytest.approx(1.0)}
    a_crop = crops[1]  # central crop (19, 38, 31, 62): columns 19..24 are d's
    assert (a_crop[:, :6] == BLANK).all()
    assert (a_crop[:, 6:] == (200, 0, 0)).all()
    assert not (a_crop == (0, 0, 200)).all(axis=2).any()  # no blue pixel of d votes for a


@pytest.mark.parametrize(("observe_hash", "stored"), [("", None), ("abc123", "abc123")])
def test_observe_hash_is_stored(rig, observe_hash: str, stored: str | None) -> None:
    r = rig(still(2, [A]), 2)
    obs = observe(r.clip, r.models(), ObserveConfig(), observe_hash=observe_hash)
    assert obs.clip.column("observe_hash").to_pylist() == [stored]
    assert obs.clip.column("path").to_pylist() == ["clip.mp4"]


def test_the_team_model_argument_is_gone(rig) -> None:
    assert list(inspect.signature(observe).parameters) == [
        "clip",
        "models",
        "cfg",
        "sink",
        "observe_hash",
        "roster",  # for the early stop's prior only
        "decode_ahead",  # changes no result
        "infer_ahead",  # changes no result
    ]
    r = rig(still(2, [A]), 2)
    with pytest.raises(TypeError):
        observe(r.clip, r.models(), FakeTeamModel(), ObserveConfig())
    with pytest.raises(TypeError):
        observe(r.clip, r.models(), ObserveConfig(), team_model=FakeTeamModel())


@pytest.mark.parametrize("rows", [0, 1, 5, 12])
def test_table_builder_chunks(rows: int) -> None:
    builder = _TableBuilder(OBS_TEAM_VOTES, chunk_rows=4)
    for i in range(rows):
        builder.extend(
            {
                "frame": [i],
                "track_id": [1],
                "embedding": [b"\x00<"],
                "dim": [1],
                "own_fraction": [0.5],
            }
        )
    table = builder.table()
    assert table.num_rows == rows == builder.rows
    assert table.column("frame").to_pylist() == list(range(rows))
    assert table.schema == OBS_TEAM_VOTES
    with pytest.raises(ValueError):
        builder.extend({"frame": [1]})
    assert isinstance(table, pa.Table)


@pytest.mark.parametrize(
    ("chunk_text_bytes", "batches"),
    [(10**6, [5]), (6, [2, 2, 1]), (1, [1] * 5)],  # each row carries 3 characters
)
def test_table_builder_hands_batches_to_the_sink(chunk_text_bytes: int, batches: list) -> None:
    got: list[pa.RecordBatch] = []
    builder = _TableBuilder(
        OBS_READS, chunk_rows=100, chunk_text_bytes=chunk_text_bytes, sink=got.append
    )
    for i in range(5):
        builder.extend(
            {
                "frame": [i],
                "read_id": [i],
                "x1": [0.0],
                "y1": [0.0],
                "x2": [1.0],
                "y2": [1.0],
                "text": ["7"],
                "raw": ["#7"],
                "confidence": [0.5],
                "candidates": [[]],
            }
        )
    table = builder.table()
    assert table.num_rows == 0 and table.schema == OBS_READS  # the rows went to the sink
    assert [b.num_rows for b in got] == batches
    assert pa.Table.from_batches(got).column("frame").to_pylist() == list(range(5))
    assert builder.rows == 5


def test_sink_gets_the_rows_observe_would_return(rig, monkeypatch: pytest.MonkeyPatch) -> None:
    scene = {i: [A] + ([B] if i >= 4 else []) + ([C] if 9 <= i < 20 else []) for i in range(30)}
    cfg = ObserveConfig(skip_confirmed_reads=None, team_stride=3)
    r = rig(scene, 30)
    kept = observe(r.clip, r.models(), cfg)
    monkeypatch.setattr(hoopray.observe, "_CHUNK_ROWS", 4)
    r = rig(scene, 30)
    calls: list[tuple[str, int]] = []
    batches: dict[str, list[pa.RecordBatch]] = {name: [] for name in STREAMED_TABLES}

    def sink(name: str, batch: pa.RecordBatch) -> None:
        calls.append((name, batch.num_rows))
        batches[name].append(batch)

    streamed = observe(r.clip, r.models(), cfg, sink=sink)
    assert all(0 < n < 4 + 3 for _, n in calls)  # closed at 4 rows; a frame adds <= 3
    assert {name for name, _ in calls} == set(STREAMED_TABLES)
    for name in STREAMED_TABLES:
        expected = getattr(kept, name)
        assert expected.num_rows > 4  # several batches
        assert getattr(streamed, name).num_rows == 0
        assert pa.Table.from_batches(batches[name], expected.schema).equals(expected)
        assert streamed.extra["rows"][name] == kept.extra["rows"][name] == expected.num_rows
    assert streamed.clip.drop_columns(["seconds"]).equals(kept.clip.drop_columns(["seconds"]))


def test_sink_error_stops_observe_and_closes_the_tracker(rig) -> None:
    r = rig(still(10, [A, B]), 10)

    def full_disk(name: str, batch: pa.RecordBatch) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        observe(r.clip, r.models(), ObserveConfig(), sink=full_disk)
    assert r.tracking.opened[0].closed


@pytest.mark.slow
def test_streamed_files_equal_the_in_memory_result_with_replay_doubles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from hoopray.stages import observe_to_store
    from hoopray.testing.replay import ReplayWorld
    from hoopray.testing.synthetic import make_game

    game = make_game(tmp_path / "games", tmp_path / "labels", seed=5, clips=1, seconds=1.0)
    clip = ClipRef(game.game_id, game.clip_ids[0], str(game.clips[0]), "fp")
    world = ReplayWorld(tmp_path / "labels", misread_rate=0.2, seed=0)
    models = Models(
        detector=world.detector(),
        tracking=world.tracking(),
        embedder=FakeEmbedder(),
        reader=world.reader(),
    )
    cfg = ObserveConfig(skip_confirmed_reads=None, team_stride=5)
    kept = observe(clip, models, cfg)
    monkeypatch.setattr(hoopray.observe, "_CHUNK_ROWS", 4)
    out = tmp_path / "out"
    streamed = observe_to_store(str(out), clip, models, cfg)
    for name in STREAMED_TABLES:
        expected = getattr(kept, name)
        assert expected.num_rows > 4, name  # several batches, several row groups
        path = store.table_path(out, f"observations/{name}", clip.game_id, clip.clip_id)
        assert pq.ParquetFile(path).num_row_groups > 1
        stored = store.read_table(out, f"observations/{name}").drop_columns(["game_id", "clip_id"])
        assert stored.equals(expected), name
        assert getattr(streamed, name).num_rows == 0
    clip_table = store.read_table(out, "observations/clip").drop_columns(["game_id", "clip_id"])
    assert clip_table.drop_columns(["seconds"]).equals(kept.clip.drop_columns(["seconds"]))
    assert not [p for p in out.rglob(".*") if p.is_file()]


@pytest.mark.parametrize(
    ("names", "tracked", "confidence", "expected"),
    [
        ([], None, None, []),
        ([None, None], None, None, [None, None]),  # the tracker carries nothing
        ([None, "player"], ["player-jump-shot", "x"], [0.7, 0.2], ["player-jump-shot", "player"]),
        ([None], [None], None, [None]),
    ],
)
def test_class_names_fall_back_to_the_tracker(
    names: list, tracked: list | None, confidence: list | None, expected: list
) -> None:
    n = len(names)
    live = sv.Detections(
        xyxy=np.zeros((n, 4), np.float32),
        confidence=None if confidence is None else np.asarray(confidence, np.float32),
        data={} if tracked is None else {CLASS_NAME: np.asarray(tracked, dtype=object)},
    )
    confidences: list = [None if name is None else 0.9 for name in names]
    _fill_from_tracker(names, confidences, live, np.ones(n, dtype=bool))
    assert names == expected
    if confidence is not None:
        assert confidences[0] == pytest.approx(confidence[0])
        assert confidences[-1] == 0.9


AHEAD_SCENES = {
    "still": (lambda: (still(7, [A]), 7, None, None)),
    "crossing, early stop with a roster": (
        lambda: (_passing(True), 100, ScriptedReader(["23"] * 20, 0.9), ROSTER)
    ),
    "entering later": (
        lambda: ({i: [A] + ([C] if i >= 7 else []) for i in range(16)}, 16, None, None)
    ),
    "nobody at first": (lambda: ({i: ([A] if i >= 3 else []) for i in range(12)}, 12, None, None)),
    "nobody ever": (lambda: ({}, 6, None, None)),
    "one frame": (lambda: ({0: [A]}, 1, None, None)),
    "lost for good": (lambda: ({i: [A] if i < 3 else [] for i in range(11)}, 11, None, None)),
}


@pytest.mark.parametrize("scene_name", list(AHEAD_SCENES))
@pytest.mark.parametrize(("decode_ahead", "infer_ahead"), [(1, 0), (4, 0), (0, 1), (4, 2), (0, 5)])
def test_running_ahead_changes_no_result(
    rig, scene_name: str, decode_ahead: int, infer_ahead: int
) -> None:
    def run(**ahead: int) -> Observations:
        scene, frames, reader, roster = AHEAD_SCENES[scene_name]()
        r = rig(scene, frames, reader)
        obs = observe(r.clip, r.models(), ObserveConfig(team_stride=5), roster=roster, **ahead)
        assert all(t.closed for t in r.tracking.opened)
        return obs

    plain = run()
    ahead = run(decode_ahead=decode_ahead, infer_ahead=infer_ahead)
    for name in STREAMED_TABLES:
        assert getattr(ahead, name).equals(getattr(plain, name)), name
    assert ahead.clip.drop_columns(["seconds"]).equals(plain.clip.drop_columns(["seconds"]))
    assert ahead.extra == plain.extra


@pytest.mark.slow
@pytest.mark.parametrize(
    ("decode_ahead", "infer_ahead", "read_stride"),
    [
        (4, 2, 2),  # the production pool on the tests' read stride: a detection frame ahead
        (0, 6, 5),
        (4, 2, 5),  # never a detection frame ahead
    ],
)
def test_running_ahead_changes_no_result_with_noisy_replay_doubles(
    tmp_path: Path, decode_ahead: int, infer_ahead: int, read_stride: int
) -> None:
    """The doubles of the pipeline tests, with realistic noise, on a decoded clip: the
    reader finds its crops' frame whatever frames the detector saw since (a reader as slow
    as a real one lets the detector run a detection frame ahead)."""
    from hoopray.testing.replay import ReplayWorld
    from hoopray.testing.synthetic import make_game

    game = make_game(
        tmp_path / "games", tmp_path / "labels", seed=7, clips=1, seconds=2.0, size=(320, 180)
    )
    clip = ClipRef(game.game_id, game.clip_ids[0], str(game.clips[0]), "fp")

    def run(**ahead: int) -> Observations:
        world = ReplayWorld(tmp_path / "labels", seed=3)
        reader = world.reader("realistic")
        read = reader.read

        def slow_read(crops: list[np.ndarray]) -> list[NumberRead]:
            time.sleep(0.05)
            return read(crops)

        reader.read = slow_read  # type: ignore[method-assign]
        models = Models(
            detector=world.detector("realistic"),
            tracking=world.tracking(difficulty="realistic"),
            embedder=FakeEmbedder(),
            reader=reader,
        )
        cfg = ObserveConfig(read_stride=read_stride)
        return observe(clip, models, cfg, roster=ROSTER, **ahead)

    plain = run()
    assert plain.reads.num_rows > 5
    assert len(set(plain.reads.column("confidence").to_pylist())) > 5
    ahead = run(decode_ahead=decode_ahead, infer_ahead=infer_ahead)
    for name in STREAMED_TABLES:
        assert getattr(ahead, name).equals(getattr(plain, name)), name


class _WatchedTracking(FakeTracking):
    """Notes the frames its trackers stepped, for a reader to look at."""

    def __init__(self, scene: Scene) -> None:
        super().__init__(scene)
        self.stepped: list[int] = []

    def open(self) -> FakeTracker:
        tracker = super().open()
        advance = tracker._advance

        def watched(frame, prompts, source):
            self.stepped.append(frame_index(frame))
            return advance(frame, prompts, source)

        tracker._advance = watched
        return tracker


@pytest.mark.parametrize(("infer_ahead", "overlapped"), [(0, False), (1, True), (3, True)])
def test_the_next_frames_track_while_this_frame_is_read(
    rig, infer_ahead: int, overlapped: bool
) -> None:
    """With ``infer_ahead`` the tracker steps frame i + 1 while the reader still works on
    frame i (the reader waits for it); without, the reader's frame is the last stepped."""
    r = rig(still(18, [A]), 18)
    tracking = _WatchedTracking(r.scene)
    r.tracking = tracking
    seen: list[bool] = []
    read = r.reader.read

    def reader_waiting_for_the_next_frame(crops):
        frame = 5 * len(seen)
        deadline = time.monotonic() + (5.0 if overlapped else 0.3)
        while max(tracking.stepped) <= frame and time.monotonic() < deadline:
            time.sleep(0.005)
        seen.append(max(tracking.stepped) > frame)
        return read(crops)

    r.reader.read = reader_waiting_for_the_next_frame
    observe(r.clip, r.models(), ObserveConfig(skip_confirmed_reads=None), infer_ahead=infer_ahead)
    assert seen == [overlapped] * 4  # frames 0, 5, 10, 15
