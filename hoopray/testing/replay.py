"""Ground-truth replay doubles: FOR TESTS AND BENCHMARKS ONLY.

These models do not look at pixels the way a real model does. Every frame made by
:func:`hoopray.testing.synthetic.make_game` carries a stamp that
:func:`hoopray.testing.synthetic.read_stamp` decodes to ``(clip_key, frame_index)``; the
doubles use it to look the frame up in the generator's labels
(``<labels_root>/<game_id>/<clip_id>.parquet``, schema :data:`hoopray.types.LABELS`) and
replay what a perfect model would return:

- :class:`ReplayDetector`: the labelled players, referees, ball, rim and, for players whose
  number is visible, the number box (class ``"number"``), all with confidence 1.0.
- :class:`ReplayTracking` / :class:`ReplayTracker`: the labelled masks of the players it was
  prompted with (prompt boxes matched to labelled player boxes by IoU), with stable tracker
  ids from 1, new players added from ``new_detections``.
- :class:`ReplayReader`: the true number of each crop, or a realistic misread with
  probability ``misread_rate`` (2<->7, a digit dropped or changed, unreadable).

Each double takes the noise of its model as named constructor knobs, and ``difficulty``
(``easy``, the default and the perfect models above, ``realistic`` or ``hard``) presets
them all (:data:`DETECTOR_PRESETS`, :data:`TRACKER_PRESETS`, :data:`READER_PRESETS`);
from YAML e.g. ``+models.reader.difficulty=realistic +models.reader.persistent_rate=0.3``:

- detector: ``miss_rate`` (a player is not detected), ``number_miss_rate`` (a visible
  number is not detected), ``false_numbers`` (false number boxes per frame: scoreboard
  digits, the crowd, a referee's number, a player's shorts), ``box_jitter`` (number boxes
  grow by up to this share of their height on each side, into their neighbours);
- tracker: ``id_switch_rate`` (two tracked players whose boxes start to overlap by
  ``switch_iou`` swap tracker ids);
- reader: ``misread_rate`` (independent misreads; None keeps the world's),
  ``persistent_rate`` (a view of a number, one stretch of frames in which it shows, is
  misread as one fixed confusion: 23 as 2, 8 and 3 swapped, 2 and 7 swapped, ...) on
  ``persistence`` of its reads, ``confident_misreads`` (a misread, or a persistently
  misread view, carries a true read's confidence), ``covered_digit_drop`` (a two-digit
  number partly covered by a nearer player reads as its visible digit).

Every draw depends only on the seed, the clip, the frame and the objects involved, never
on the order of calls. The reader finds the frame its crops were cut from among the last
frames the detector saw (observe may detect a few frames ahead of its reads,
``infer_ahead``), so how far ahead the detector ran changes no read.

This module is the only place where ground truth enters the pipeline. Real clips have no
stamp: the detector then returns nothing and the reader reads nothing.
"""

from __future__ import annotations

import threading
import zlib
from collections import OrderedDict, deque
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import pyarrow.parquet as pq

from hoopray.geometry import clip_boxes, crop, pad_boxes
from hoopray.models.base import CLASS_NAME, SOURCE
from hoopray.numbers import normalise_number
from hoopray.types import NumberRead, TrackSource

if TYPE_CHECKING:
    import supervision as sv

REPLAY_CLASSES = ["ball", "number", "player", "referee", "rim"]
_ROLE_CLASS = {"player": "player", "referee": "referee", "ball": "ball", "rim": "rim"}
_MATCH_IOU = 0.5
DIFFICULTIES = ("easy", "realistic", "hard")


@dataclass(frozen=True)
class DetectorNoise:
    """Noise knobs of :class:`ReplayDetector` (see the module docstring)."""

    miss_rate: float = 0.0
    number_miss_rate: float = 0.0
    false_numbers: float = 0.0
    box_jitter: float = 0.0


@dataclass(frozen=True)
class TrackerNoise:
    """Noise knobs of :class:`ReplayTracker` (see the module docstring)."""

    id_switch_rate: float = 0.0
    switch_iou: float = 0.3


@dataclass(frozen=True)
class ReaderNoise:
    """Noise knobs of :class:`ReplayReader` (see the module docstring)."""

    misread_rate: float | None = None
    persistent_rate: float = 0.0
    persistence: float = 0.85
    confident_misreads: float = 0.0
    covered_digit_drop: float = 0.0


DETECTOR_PRESETS: dict[str, DetectorNoise] = {
    "easy": DetectorNoise(),
    "realistic": DetectorNoise(
        miss_rate=0.03, number_miss_rate=0.1, false_numbers=0.5, box_jitter=0.15
    ),
    "hard": DetectorNoise(miss_rate=0.06, number_miss_rate=0.2, false_numbers=1.0, box_jitter=0.3),
}
TRACKER_PRESETS: dict[str, TrackerNoise] = {
    "easy": TrackerNoise(),
    "realistic": TrackerNoise(id_switch_rate=0.05),
    "hard": TrackerNoise(id_switch_rate=0.08),
}
READER_PRESETS: dict[str, ReaderNoise] = {
    "easy": ReaderNoise(),
    "realistic": ReaderNoise(
        persistent_rate=0.08, persistence=0.85, confident_misreads=0.3, covered_digit_drop=0.7
    ),
    "hard": ReaderNoise(
        misread_rate=0.25,
        persistent_rate=0.12,
        persistence=0.9,
        confident_misreads=0.5,
        covered_digit_drop=0.9,
    ),
}

_Noise = TypeVar("_Noise", DetectorNoise, TrackerNoise, ReaderNoise)


def noise_preset(
    presets: dict[str, _Noise], difficulty: str | None, **knobs: float | None
) -> _Noise:
    """The preset of ``difficulty`` (None: ``easy``) with the knobs given (not None).

    Raises:
        ValueError: an unknown difficulty or knob, or a rate outside [0, 1].
    """
    chosen = presets.get(difficulty or "easy")
    if chosen is None:
        raise ValueError(f"difficulty must be one of {DIFFICULTIES}, got {difficulty!r}")
    known = {f.name for f in fields(chosen)}
    unknown = sorted(set(knobs) - known)
    if unknown:
        raise ValueError(f"unknown noise knobs {unknown}; known: {sorted(known)}")
    noise = replace(chosen, **{k: v for k, v in knobs.items() if v is not None})
    for f in fields(noise):
        value = getattr(noise, f.name)
        limit = float("inf") if f.name == "false_numbers" else 1.0
        if value is not None and not 0.0 <= value <= limit:
            raise ValueError(f"{f.name} must be in [0, {limit}], got {value}")
    return noise


def _key(part: int | str) -> int:
    return zlib.crc32(part.encode()) if isinstance(part, str) else int(part) & 0xFFFFFFFF


def _rng(seed: int, *parts: int | str) -> np.random.Generator:
    """A generator that depends only on ``seed`` and ``parts`` (ints or strings)."""
    return np.random.default_rng([seed & 0xFFFFFFFF, *(_key(p) for p in parts)])


@dataclass
class _Frame:
    """Labels of one frame, as arrays."""

    object_id: list[str]
    role: list[str]
    number: list[str | None]
    boxes: np.ndarray  # (N, 4) float32
    number_visible: np.ndarray  # (N,) bool
    number_boxes: np.ndarray  # (N, 4) float32, NaN where not visible
    mask_rle: list[str | None]
    view: np.ndarray  # (N,) int: how many times the object's number came into view so far


@dataclass
class _SeenNumber:
    """A number crop the detector showed, kept for the reader to recognise.

    Attributes:
        kind: ``"number"`` for a player's number, else the kind of false box
            (``scoreboard``, ``crowd``, ``referee``, ``shorts``), whose ``number`` is what
            it reads as.
        view: the view of the number (see :class:`_Frame`).
        covered: the share of the left and right half of the number box that someone
            nearer covers.
    """

    crop: np.ndarray
    number: str
    object_id: str
    kind: str = "number"
    view: int = 0
    covered: tuple[float, float] = (0.0, 0.0)


@dataclass
class _Seen:
    clip_key: int
    frame_index: int
    numbers: list[_SeenNumber] = field(default_factory=list)


def _box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    import supervision as sv

    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), dtype=np.float32)
    return sv.box_iou_batch(np.asarray(a, np.float32), np.asarray(b, np.float32))


def _detections(
    xyxy: np.ndarray,
    class_names: list[str],
    *,
    mask: np.ndarray | None = None,
    tracker_id: np.ndarray | None = None,
    sources: list[str] | None = None,
) -> sv.Detections:
    import supervision as sv

    n = len(class_names)
    data: dict[str, np.ndarray] = {CLASS_NAME: np.asarray(class_names, dtype=object)}
    if sources is not None:
        data[SOURCE] = np.asarray(sources, dtype=object)
    return sv.Detections(
        xyxy=np.asarray(xyxy, dtype=np.float32).reshape(n, 4),
        mask=mask,
        confidence=np.ones(n, dtype=np.float32),
        class_id=np.asarray([REPLAY_CLASSES.index(c) for c in class_names], dtype=int),
        tracker_id=tracker_id,
        data=data,
    )


SEEN_FRAMES = 64
"""Detected frames with number crops that the world remembers for the reader: more than
observe can detect ahead of its reads (``infer_ahead`` frames)."""


class ReplayWorld:
    """Labels of the synthetic clips under ``labels_root``, shared by the three doubles.

    Args:
        labels_root: the ``labels_root`` given to :func:`hoopray.testing.synthetic.make_game`.
        misread_rate: probability that the reader returns something other than the truth.
        seed: makes the misreads reproducible; a read's outcome depends only on the seed,
            the clip, the frame and the object read, not on the order of calls.
        number_pad: padding (px) that the pipeline uses around number boxes before reading;
            must equal :attr:`hoopray.observe.ObserveConfig.number_pad` for crops to match.
        cache_clips: how many clips' labels are kept in memory.
    """

    def __init__(
        self,
        labels_root: Path | str,
        misread_rate: float = 0.2,
        seed: int = 0,
        number_pad: int = 10,
        cache_clips: int = 4,
    ) -> None:
        if not 0.0 <= misread_rate <= 1.0:
            raise ValueError(f"misread_rate must be in [0, 1], got {misread_rate}")
        self.labels_root = Path(labels_root)
        self.misread_rate = misread_rate
        self.seed = seed
        self.number_pad = number_pad
        self._cache_clips = max(1, cache_clips)
        self._paths: dict[int, Path] | None = None
        self._clips: OrderedDict[int, dict[int, _Frame]] = OrderedDict()
        self.seen: _Seen | None = None  # the frame the detector saw last
        self._log: deque[tuple[int, _Seen]] = deque(maxlen=SEEN_FRAMES)
        self._logged = 0
        self._lock = threading.Lock()

    def saw(self, seen: _Seen | None) -> None:
        """The detector saw ``seen`` (None: a frame without a stamp or labels); a frame
        with number crops is logged for the reader."""
        with self._lock:
            self.seen = seen
            if seen is not None and seen.numbers:
                self._logged += 1
                self._log.append((self._logged, seen))

    def seen_after(self, number: int) -> list[tuple[int, _Seen]]:
        """The frames the detector saw after its ``number``-th (numbered from 1; 0: all
        it still remembers, the last :data:`SEEN_FRAMES`), oldest first."""
        with self._lock:
            return [(n, seen) for n, seen in self._log if n > number]

    def detector(self, difficulty: str | None = None, **knobs: float | None) -> ReplayDetector:
        return ReplayDetector(self, difficulty, **knobs)

    def tracking(
        self, max_missing_frames: int = 15, difficulty: str | None = None, **knobs: float | None
    ) -> ReplayTracking:
        return ReplayTracking(self, max_missing_frames, difficulty, **knobs)

    def reader(self, difficulty: str | None = None, **knobs: float | None) -> ReplayReader:
        return ReplayReader(self, difficulty, **knobs)

    def frame_labels(self, frame: np.ndarray) -> tuple[int, int, _Frame] | None:
        """(clip_key, frame_index, labels) of a stamped frame; None when it has no stamp or
        its clip has no labels."""
        from hoopray.testing.synthetic import read_stamp

        stamp = read_stamp(frame)
        if stamp is None:
            return None
        key, index = stamp
        frames = self._clip(key)
        if frames is None:
            return None
        return key, index, frames.get(index, _EMPTY_FRAME)

    def _clip(self, key: int) -> dict[int, _Frame] | None:
        if key in self._clips:
            self._clips.move_to_end(key)
            return self._clips[key]
        path = self._label_paths().get(key)
        if path is None:
            return None
        frames = _load_frames(path)
        self._clips[key] = frames
        while len(self._clips) > self._cache_clips:
            self._clips.popitem(last=False)
        return frames

    def _label_paths(self) -> dict[int, Path]:
        if self._paths is None:
            from hoopray.testing.synthetic import clip_key

            self._paths = {
                clip_key(path.parent.name, path.stem): path
                for path in sorted(self.labels_root.glob("*/*.parquet"))
            }
        return self._paths


_EMPTY_FRAME = _Frame(
    object_id=[],
    role=[],
    number=[],
    boxes=np.zeros((0, 4), np.float32),
    number_visible=np.zeros(0, bool),
    number_boxes=np.zeros((0, 4), np.float32),
    mask_rle=[],
    view=np.zeros(0, np.int64),
)


def _load_frames(path: Path) -> dict[int, _Frame]:
    table = pq.read_table(path)
    cols = {name: table.column(name).to_pylist() for name in table.column_names}
    rows_by_frame: dict[int, list[int]] = {}
    for i, f in enumerate(cols["frame"]):
        rows_by_frame.setdefault(int(f), []).append(i)

    def floats(names: tuple[str, ...], rows: list[int]) -> np.ndarray:
        out = np.array(
            [[np.nan if cols[n][r] is None else cols[n][r] for n in names] for r in rows],
            dtype=np.float32,
        )
        return out.reshape(len(rows), len(names))

    views: dict[str, int] = {}
    shown: set[str] = set()
    view = [0] * len(cols["frame"])
    for f in sorted(rows_by_frame):
        now = set()
        for r in rows_by_frame[f]:
            obj = str(cols["object_id"][r])
            if cols["number_visible"][r]:
                now.add(obj)
                if obj not in shown:
                    views[obj] = views.get(obj, 0) + 1
            view[r] = views.get(obj, 0)
        shown = now

    frames: dict[int, _Frame] = {}
    for f, rows in rows_by_frame.items():
        frames[f] = _Frame(
            object_id=[str(cols["object_id"][r]) for r in rows],
            role=[str(cols["role"][r]) for r in rows],
            number=[cols["number"][r] for r in rows],
            boxes=floats(("x1", "y1", "x2", "y2"), rows),
            number_visible=np.array([bool(cols["number_visible"][r]) for r in rows], bool),
            number_boxes=floats(("nx1", "ny1", "nx2", "ny2"), rows),
            mask_rle=[cols["mask_rle"][r] for r in rows],
            view=np.array([view[r] for r in rows], dtype=np.int64),
        )
    return frames


class ReplayDetector:
    """Returns the labelled objects of each stamped frame (confidence 1.0), with the noise
    of :class:`DetectorNoise` (``difficulty`` presets it; knobs given override it).

    The number crops of the last frame it saw (padded as the pipeline pads them) are kept
    in the shared world so that :class:`ReplayReader` can tell which number a crop shows.
    """

    class_names = REPLAY_CLASSES

    def __init__(
        self,
        world: ReplayWorld,
        difficulty: str | None = None,
        miss_rate: float | None = None,
        number_miss_rate: float | None = None,
        false_numbers: float | None = None,
        box_jitter: float | None = None,
    ) -> None:
        self.world = world
        self.noise = noise_preset(
            DETECTOR_PRESETS,
            difficulty,
            miss_rate=miss_rate,
            number_miss_rate=number_miss_rate,
            false_numbers=false_numbers,
            box_jitter=box_jitter,
        )

    def detect(self, frames: list[np.ndarray]) -> list[sv.Detections]:
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> sv.Detections:
        found = self.world.frame_labels(frame)
        if found is None:
            self.world.saw(None)
            return _detections(np.zeros((0, 4), np.float32), [])
        key, index, labels = found
        noise, seed = self.noise, self.world.seed
        height, width = frame.shape[:2]

        def kept(i: int, salt: int, rate: float) -> bool:
            return rate <= 0 or _rng(seed, key, index, labels.object_id[i], salt).random() >= rate

        keep = [
            i
            for i, role in enumerate(labels.role)
            if role in _ROLE_CLASS and (role != "player" or kept(i, 1, noise.miss_rate))
        ]
        names = [_ROLE_CLASS[labels.role[i]] for i in keep]
        boxes = [labels.boxes[i] for i in keep]
        numbered = [
            i
            for i, role in enumerate(labels.role)
            if role == "player"
            and labels.number_visible[i]
            and labels.number[i] is not None
            and not np.isnan(labels.number_boxes[i]).any()
            and kept(i, 2, noise.number_miss_rate)
        ]
        seen = _Seen(key, index)
        found_boxes: list[np.ndarray] = []
        for i in numbered:
            box = labels.number_boxes[i].copy()
            covered = _covered(labels, i, box, height, width)
            if noise.box_jitter > 0:
                grow = _rng(seed, key, index, labels.object_id[i], 3).random(4)
                box = box + np.array([-1, -1, 1, 1]) * grow * noise.box_jitter * (box[3] - box[1])
            found_boxes.append(box.astype(np.float32))
            seen.numbers.append(
                _SeenNumber(
                    np.zeros((0, 0, 3), np.uint8),
                    str(labels.number[i]),
                    labels.object_id[i],
                    view=int(labels.view[i]),
                    covered=covered,
                )
            )
        for kind, text, box in _false_numbers(noise, seed, key, index, labels, width, height):
            found_boxes.append(box)
            seen.numbers.append(
                _SeenNumber(np.zeros((0, 0, 3), np.uint8), text, f"false-{kind}", kind=kind)
            )
        number_boxes = clip_boxes(
            np.asarray(found_boxes, np.float32).reshape(len(found_boxes), 4), (width, height)
        )
        if len(number_boxes):
            pad = self.world.number_pad
            padded = clip_boxes(pad_boxes(number_boxes, pad, pad), (width, height))
            for number, box in zip(seen.numbers, padded, strict=True):
                number.crop = crop(frame, box).copy()
        self.world.saw(seen)
        all_boxes = np.concatenate(
            [np.asarray(boxes, np.float32).reshape(len(boxes), 4), number_boxes]
        )
        return _detections(all_boxes, names + ["number"] * len(number_boxes))


def _covered(
    labels: _Frame, i: int, box: np.ndarray, height: int, width: int
) -> tuple[float, float]:
    """Share of the left and right half of number box ``box`` outside object ``i``'s mask."""
    rle = labels.mask_rle[i]
    x1, y1, x2, y2 = (round(float(v)) for v in box)
    x1, x2 = max(0, x1), min(width, x2)
    y1, y2 = max(0, y1), min(height, y2)
    if not rle or x2 - x1 < 2 or y2 <= y1:
        return 0.0, 0.0
    own = _decode(rle, height, width)[y1:y2, x1:x2]
    half = own.shape[1] // 2
    return float(1.0 - own[:, :half].mean()), float(1.0 - own[:, half:].mean())


_FALSE_KINDS = ("scoreboard", "crowd", "referee", "shorts")


def _false_numbers(
    noise: DetectorNoise,
    seed: int,
    key: int,
    index: int,
    labels: _Frame,
    width: int,
    height: int,
) -> list[tuple[str, str, np.ndarray]]:
    """False number boxes of one frame: (kind, the text it reads as, xyxy box)."""
    if noise.false_numbers <= 0:
        return []
    rng = _rng(seed, key, index, "false")
    out: list[tuple[str, str, np.ndarray]] = []
    size = max(8.0, 0.065 * height)  # about a near player's number
    referees = [i for i, r in enumerate(labels.role) if r == "referee"]
    players = [i for i, r in enumerate(labels.role) if r == "player"]
    for _ in range(int(rng.poisson(noise.false_numbers))):
        kind = _FALSE_KINDS[int(rng.integers(len(_FALSE_KINDS)))]
        w, h = 1.3 * size, size
        if kind == "scoreboard":  # the score changes every few seconds
            text = str(int(_rng(seed, key, index // 150, "score").integers(10, 100)))
            x1, y1 = 0.95 * width - w, 0.04 * height
        elif kind == "crowd":
            text = str(int(rng.integers(0, 100)))
            x1, y1 = rng.uniform(0, width - w), rng.uniform(0.12 * height, 0.3 * height - h)
        elif kind == "referee" and referees:
            ref = referees[int(rng.integers(len(referees)))]
            bx1, by1, bx2, by2 = labels.boxes[ref]
            text = str(zlib.crc32(labels.object_id[ref].encode()) % 60 + 10)
            x1, y1 = (bx1 + bx2 - w) / 2, by1 + 0.3 * (by2 - by1)
        elif kind == "shorts" and players:
            who = players[int(rng.integers(len(players)))]
            bx1, by1, bx2, by2 = labels.boxes[who]
            text = str(int(rng.integers(0, 100)))
            h = w = 0.8 * size
            x1, y1 = (bx1 + bx2 - w) / 2, by2 - 0.4 * (by2 - by1)
        else:
            continue
        out.append((kind, text, np.array([x1, y1, x1 + w, y1 + h], np.float32)))
    return out


class ReplayTracking:
    """Opens one :class:`ReplayTracker` per clip, with the noise of :class:`TrackerNoise`."""

    def __init__(
        self,
        world: ReplayWorld,
        max_missing_frames: int = 15,
        difficulty: str | None = None,
        id_switch_rate: float | None = None,
        switch_iou: float | None = None,
    ) -> None:
        self.world = world
        self.max_missing_frames = max_missing_frames
        self.noise = noise_preset(
            TRACKER_PRESETS, difficulty, id_switch_rate=id_switch_rate, switch_iou=switch_iou
        )

    def open(self) -> ReplayTracker:
        return ReplayTracker(self.world, self.max_missing_frames, self.noise)


class ReplayTracker:
    """Replays labelled player masks for the players it was prompted with.

    A prompt box (on ``start``, or in ``new_detections`` on ``step``) is matched to the
    labelled player with the highest box IoU (>= 0.5). Each matched player gets the next
    tracker id (from 1) and keeps it while it stays in the labels. A player missing from
    the labels for more than ``max_missing_frames`` frames is dropped for good: when it
    comes back it is a new track (new id) once a detection prompts it again, as a real
    tracker that lost someone would do. A label without ``mask_rle`` gives a box mask.

    With ``noise.id_switch_rate``, two tracked players whose boxes start to overlap (IoU
    at least ``noise.switch_iou`` where the frame before they did not) swap their tracker
    ids with that probability, as a tracker does when players cross.
    """

    def __init__(
        self, world: ReplayWorld, max_missing_frames: int = 15, noise: TrackerNoise | None = None
    ) -> None:
        self.world = world
        self.max_missing_frames = max_missing_frames
        self.noise = noise or TrackerNoise()
        self._ids: dict[str, int] = {}  # object_id -> tracker id, live tracks only
        self._last_seen: dict[str, int] = {}
        self._touching: set[tuple[str, str]] = set()
        self._next_id = 1
        self._frame = -1
        self._closed = False

    def start(self, frame: np.ndarray, detections: sv.Detections) -> sv.Detections:
        self._ids.clear()
        self._last_seen.clear()
        self._touching.clear()
        return self._advance(frame, detections, TrackSource.PROMPT)

    def step(self, frame: np.ndarray, new_detections: sv.Detections | None = None) -> sv.Detections:
        return self._advance(frame, new_detections, TrackSource.ADDED)

    def close(self) -> None:
        self._closed = True
        self._ids.clear()
        self._last_seen.clear()

    def _switch_ids(self, key: int, labels: _Frame, players: list[int]) -> None:
        tracked = [i for i in players if labels.object_id[i] in self._ids]
        touching: set[tuple[str, str]] = set()
        if len(tracked) >= 2:
            iou = _box_iou(labels.boxes[tracked], labels.boxes[tracked])
            for a in range(len(tracked)):
                for b in range(a + 1, len(tracked)):
                    if iou[a, b] >= self.noise.switch_iou:
                        pair = tuple(
                            sorted((labels.object_id[tracked[a]], labels.object_id[tracked[b]]))
                        )
                        touching.add((pair[0], pair[1]))
        for one, two in sorted(touching - self._touching):
            draw = _rng(self.world.seed, key, self._frame, one, two, "switch").random()
            if draw < self.noise.id_switch_rate:
                self._ids[one], self._ids[two] = self._ids[two], self._ids[one]
        self._touching = touching

    def _advance(
        self, frame: np.ndarray, prompts: sv.Detections | None, new_source: TrackSource
    ) -> sv.Detections:
        if self._closed:
            raise RuntimeError("tracker is closed")
        height, width = frame.shape[:2]
        found = self.world.frame_labels(frame)
        labels = found[2] if found is not None else _EMPTY_FRAME
        self._frame = found[1] if found is not None else self._frame + 1
        players = [i for i, role in enumerate(labels.role) if role == "player"]
        present = {labels.object_id[i] for i in players}
        for obj in present & self._ids.keys():
            self._last_seen[obj] = self._frame
        for obj in list(self._ids):
            if self._frame - self._last_seen.get(obj, self._frame) > self.max_missing_frames:
                del self._ids[obj]
                del self._last_seen[obj]
        if found is not None and self.noise.id_switch_rate > 0:
            self._switch_ids(found[0], labels, players)

        added: set[str] = set()
        if prompts is not None and len(prompts) and players:
            iou = _box_iou(np.asarray(prompts.xyxy), labels.boxes[players])
            for p in range(len(prompts)):
                best = int(np.argmax(iou[p]))
                obj = labels.object_id[players[best]]
                if iou[p, best] >= _MATCH_IOU and obj not in self._ids:
                    self._ids[obj] = self._next_id
                    self._last_seen[obj] = self._frame
                    self._next_id += 1
                    added.add(obj)

        rows = [i for i in players if labels.object_id[i] in self._ids]
        rows.sort(key=lambda i: self._ids[labels.object_id[i]])
        masks = np.zeros((len(rows), height, width), dtype=bool)
        for k, i in enumerate(rows):
            rle = labels.mask_rle[i]
            if rle:
                masks[k] = _decode(rle, height, width)
            else:
                x1, y1, x2, y2 = np.round(labels.boxes[i]).astype(int)
                masks[k, max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)] = True
        sources = [
            str(new_source if labels.object_id[i] in added else TrackSource.PROPAGATED)
            for i in rows
        ]
        return _detections(
            labels.boxes[rows].reshape(len(rows), 4),
            ["player"] * len(rows),
            mask=masks,
            tracker_id=np.asarray([self._ids[labels.object_id[i]] for i in rows], dtype=int),
            sources=sources,
        )


def _decode(counts: str, height: int, width: int) -> np.ndarray:
    """COCO RLE -> mask without :func:`hoopray.masks.rle_decode`'s checks (labels are
    trusted here, and this runs for every tracked player on every frame)."""
    from pycocotools import mask as coco_mask

    return coco_mask.decode({"size": [height, width], "counts": counts.encode("ascii")}) > 0


def misread(number: str, rng: np.random.Generator) -> str | None:
    """A plausible wrong answer for ``number``: 2<->7 swapped, a digit dropped, a digit
    changed, or unreadable (None). Never returns ``number`` itself.

    Raises:
        ValueError: ``number`` is not one or two digits.
    """
    if not (number.isdigit() and 1 <= len(number) <= 2):
        raise ValueError(f"a jersey number has one or two digits, got {number!r}")
    options: list[str | None] = [None]
    swapped = number.translate(str.maketrans("27", "72"))
    if swapped != number:
        options.append(swapped)
    if len(number) == 2:
        options.extend([number[0], number[1]])
    for _ in range(4):
        pos = int(rng.integers(len(number)))
        digit = str(int(rng.integers(10)))
        changed = number[:pos] + digit + number[pos + 1 :]
        if changed != number and changed not in options:
            options.append(changed)
            break
    return options[int(rng.integers(len(options)))]


_SIMILAR_READS = {
    "0": "8",
    "1": "7",
    "2": "7",
    "3": "8",
    "4": "1",
    "5": "6",
    "6": "85",
    "7": "21",
    "8": "360",
    "9": "8",
}


def persistent_confusion(number: str, rng: np.random.Generator) -> str:
    """The fixed wrong answer of a persistently misread view of ``number``: a digit
    dropped (23 as 2 or 3) or one digit read as a similar one (3 and 8, 2 and 7, 1 and 7,
    ...). Never ``number`` itself, never None.

    Raises:
        ValueError: ``number`` is not one or two digits.
    """
    if not (number.isdigit() and 1 <= len(number) <= 2):
        raise ValueError(f"a jersey number has one or two digits, got {number!r}")
    options: list[str] = []
    if len(number) == 2:
        options.extend(d for d in (str(int(number[0])), str(int(number[1]))) if d != number)
    for pos, digit in enumerate(number):
        for other in _SIMILAR_READS[digit]:
            changed = normalise_number(number[:pos] + other + number[pos + 1 :])
            if changed is not None and changed != number and changed not in options:
                options.append(changed)
    return options[int(rng.integers(len(options)))]


class ReplayReader:
    """Reads the true number of a crop, with realistic misreads (:class:`ReaderNoise`;
    ``difficulty`` presets it, knobs given override it).

    A crop is recognised by its pixels among the padded number crops of the frame the
    detector saw last (exact match first, then the closest crop of the same shape with a
    mean absolute difference below 2 grey levels). An unrecognised crop reads as
    ``NumberRead(None, 0.0)``. A false box reads as its text (scoreboard and referee
    digits with a true read's confidence, the others lower). Confidences: true reads ~
    Beta(6, 2) (mean 0.75), misreads ~ Beta(2, 3) (mean 0.4): lower on average, but the
    ranges overlap; a confident misread has a true read's confidence.

    Order of the noise for a player's number: a partly covered two-digit number may read
    as its visible digit; a persistently misread view shows its confusion on each read
    with probability ``persistence``; otherwise the read is right, or with
    ``misread_rate`` an independent misread (:func:`misread`).
    """

    def __init__(
        self,
        world: ReplayWorld,
        difficulty: str | None = None,
        misread_rate: float | None = None,
        persistent_rate: float | None = None,
        persistence: float | None = None,
        confident_misreads: float | None = None,
        covered_digit_drop: float | None = None,
    ) -> None:
        self.world = world
        self._last_frame = 0  # the number of the detected frame read last (0: none)
        self.noise = noise_preset(
            READER_PRESETS,
            difficulty,
            misread_rate=misread_rate,
            persistent_rate=persistent_rate,
            persistence=persistence,
            confident_misreads=confident_misreads,
            covered_digit_drop=covered_digit_drop,
        )

    @property
    def misread_rate(self) -> float:
        rate = self.noise.misread_rate
        return self.world.misread_rate if rate is None else rate

    def read(self, crops: list[np.ndarray]) -> list[NumberRead]:
        seen, matches = self._frame_of(crops)
        return [self._read_one(seen, match) for match in matches]

    def _frame_of(self, crops: list[np.ndarray]) -> tuple[_Seen | None, list[_SeenNumber | None]]:
        """The detected frame that ``crops`` were cut from (one call reads one frame), and
        the number each crop shows there.

        The candidates are the frames the detector saw after the one this reader read
        last; the one whose number crops match ``crops`` best wins (fewest crops without a
        match, then the least pixel difference), the earliest of equals. A frame's own
        crops match exactly, so a frame the detector saw later never wins over it. Crops
        whose pixels equal those of an earlier frame since the last read (a number that
        did not move) read as that frame's: the same pixels read alike, as they would by
        a model.
        """
        best: tuple[tuple[int, float], int, _Seen, list[_SeenNumber | None]] | None = None
        for number, seen in self.world.seen_after(self._last_frame):
            found = [_match_crop(image, seen.numbers) for image in crops]
            cost = (
                sum(match is None for match, _ in found),
                sum(diff for match, diff in found if match is not None),
            )
            if best is None or cost < best[0]:
                best = (cost, number, seen, [match for match, _ in found])
            if cost == (0, 0.0):
                break
        if best is None or best[0][0] == len(crops):
            return None, [None] * len(crops)
        _, self._last_frame, seen, matches = best
        return seen, matches

    def _misread_confidence(self, rng: np.random.Generator) -> float:
        confident = (
            self.noise.confident_misreads > 0 and rng.random() < self.noise.confident_misreads
        )
        return float(rng.beta(6, 2) if confident else rng.beta(2, 3))

    def _read_one(self, seen: _Seen | None, match: _SeenNumber | None) -> NumberRead:
        if seen is None or match is None:
            return NumberRead(None, 0.0, "")
        seed, noise = self.world.seed, self.noise
        rng = _rng(seed, seen.clip_key, seen.frame_index, match.object_id)
        if match.kind != "number":
            crisp = match.kind in ("scoreboard", "referee")
            return NumberRead(match.number, float(rng.beta(6, 2) if crisp else rng.beta(3, 3)))
        number = match.number
        covered = noise.covered_digit_drop > 0 and len(number) == 2 and max(match.covered) > 0.15
        if covered and (
            _rng(seed, seen.clip_key, seen.frame_index, match.object_id, "covered").random()
            < noise.covered_digit_drop
        ):
            left, right = match.covered
            text = str(int(number[1] if left > right else number[0]))
            return NumberRead(text, self._misread_confidence(rng), text)
        if noise.persistent_rate > 0:
            view = _rng(seed, seen.clip_key, match.object_id, match.view, "view")
            if view.random() < noise.persistent_rate:
                text = persistent_confusion(number, view)
                confident = view.random() < noise.confident_misreads
                if rng.random() < noise.persistence:
                    conf = float(rng.beta(6, 2) if confident else rng.beta(2, 3))
                    return NumberRead(text, conf, text)
        if rng.random() >= self.misread_rate:
            return NumberRead(number, float(rng.beta(6, 2)), number)
        text = misread(number, rng)
        return NumberRead(text, self._misread_confidence(rng), text or "?")


def _match_crop(
    image: np.ndarray, candidates: list[_SeenNumber]
) -> tuple[_SeenNumber | None, float]:
    """The candidate whose crop ``image`` is (an equal one, else the closest of the same
    shape within a mean absolute difference of 2 grey levels), and that difference."""
    same_shape = [c for c in candidates if c.crop.shape == image.shape]
    if not same_shape or image.size == 0:
        return None, 0.0
    for c in same_shape:
        if np.array_equal(c.crop, image):
            return c, 0.0
    diffs = [np.abs(c.crop.astype(np.int16) - image.astype(np.int16)).mean() for c in same_shape]
    best = int(np.argmin(diffs))
    return (same_shape[best], float(diffs[best])) if diffs[best] < 2.0 else (None, 0.0)
