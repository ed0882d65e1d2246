"""Ground-truth replay doubles: FOR TESTS AND BENCHMARKS ONLY.

These models do not look at pixels the way a real model does. Every frame made by
:func:`hoopray.synthetic.make_game` carries a stamp that :func:`hoopray.synthetic.read_stamp`
decodes to ``(clip_key, frame_index)``; the doubles use it to look the frame up in the
generator's labels (``<labels_root>/<game_id>/<clip_id>.parquet``, schema
:data:`hoopray.types.LABELS`) and replay what a perfect model would return:

- :class:`ReplayDetector`: the labelled players, referees, ball, rim and, for players whose
  number is visible, the number box (class ``"number"``), all with confidence 1.0.
- :class:`ReplayTracking` / :class:`ReplayTracker`: the labelled masks of the players it was
  prompted with (prompt boxes matched to labelled player boxes by IoU), with stable tracker
  ids from 1, new players added from ``new_detections``.
- :class:`ReplayReader`: the true number of each crop, or a realistic misread with
  probability ``misread_rate`` (2<->7, a digit dropped or changed, unreadable).

This module is the only place where ground truth enters the pipeline. Real clips have no
stamp: the detector then returns nothing and the reader reads nothing.
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.parquet as pq

from hoopray.geometry import clip_boxes, crop, pad_boxes
from hoopray.models.base import CLASS_NAME, SOURCE
from hoopray.types import NumberRead, TrackSource

if TYPE_CHECKING:
    import supervision as sv

REPLAY_CLASSES = ["ball", "number", "player", "referee", "rim"]
_ROLE_CLASS = {"player": "player", "referee": "referee", "ball": "ball", "rim": "rim"}
_MATCH_IOU = 0.5


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


@dataclass
class _SeenNumber:
    """A number crop the detector showed, kept for the reader to recognise."""

    crop: np.ndarray
    number: str
    object_id: str


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


class ReplayWorld:
    """Labels of the synthetic clips under ``labels_root``, shared by the three doubles.

    Args:
        labels_root: the ``labels_root`` given to :func:`hoopray.synthetic.make_game`.
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
        self.seen: _Seen | None = None

    def detector(self) -> ReplayDetector:
        return ReplayDetector(self)

    def tracking(self, max_missing_frames: int = 15) -> ReplayTracking:
        return ReplayTracking(self, max_missing_frames=max_missing_frames)

    def reader(self) -> ReplayReader:
        return ReplayReader(self)

    def frame_labels(self, frame: np.ndarray) -> tuple[int, int, _Frame] | None:
        """(clip_key, frame_index, labels) of a stamped frame; None when it has no stamp or
        its clip has no labels."""
        from hoopray.synthetic import read_stamp

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
            from hoopray.synthetic import clip_key

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
        )
    return frames


class ReplayDetector:
    """Returns the labelled objects of each stamped frame (confidence 1.0).

    The number crops of the last frame it saw (padded as the pipeline pads them) are kept
    in the shared world so that :class:`ReplayReader` can tell which number a crop shows.
    """

    class_names = REPLAY_CLASSES

    def __init__(self, world: ReplayWorld) -> None:
        self.world = world

    def detect(self, frames: list[np.ndarray]) -> list[sv.Detections]:
        return [self._detect_one(frame) for frame in frames]

    def _detect_one(self, frame: np.ndarray) -> sv.Detections:
        found = self.world.frame_labels(frame)
        if found is None:
            self.world.seen = None
            return _detections(np.zeros((0, 4), np.float32), [])
        key, index, labels = found
        keep = [i for i, role in enumerate(labels.role) if role in _ROLE_CLASS]
        names = [_ROLE_CLASS[labels.role[i]] for i in keep]
        boxes = [labels.boxes[i] for i in keep]
        numbered = [
            i
            for i, role in enumerate(labels.role)
            if role == "player"
            and labels.number_visible[i]
            and labels.number[i] is not None
            and not np.isnan(labels.number_boxes[i]).any()
        ]
        number_boxes = np.asarray([labels.number_boxes[i] for i in numbered], np.float32)
        number_boxes = number_boxes.reshape(len(numbered), 4)
        seen = _Seen(key, index)
        if len(numbered):
            pad = self.world.number_pad
            height, width = frame.shape[:2]
            padded = clip_boxes(pad_boxes(number_boxes, pad, pad), (width, height))
            for i, box in zip(numbered, padded, strict=True):
                seen.numbers.append(
                    _SeenNumber(crop(frame, box).copy(), str(labels.number[i]), labels.object_id[i])
                )
        self.world.seen = seen
        all_boxes = np.concatenate(
            [np.asarray(boxes, np.float32).reshape(len(boxes), 4), number_boxes]
        )
        return _detections(all_boxes, names + ["number"] * len(numbered))


class ReplayTracking:
    """Opens one :class:`ReplayTracker` per clip."""

    def __init__(self, world: ReplayWorld, max_missing_frames: int = 15) -> None:
        self.world = world
        self.max_missing_frames = max_missing_frames

    def open(self) -> ReplayTracker:
        return ReplayTracker(self.world, self.max_missing_frames)


class ReplayTracker:
    """Replays labelled player masks for the players it was prompted with.

    A prompt box (on ``start``, or in ``new_detections`` on ``step``) is matched to the
    labelled player with the highest box IoU (>= 0.5). Each matched player gets the next
    tracker id (from 1) and keeps it while it stays in the labels. A player missing from
    the labels for more than ``max_missing_frames`` frames is dropped for good: when it
    comes back it is a new track (new id) once a detection prompts it again, as a real
    tracker that lost someone would do. A label without ``mask_rle`` gives a box mask.
    """

    def __init__(self, world: ReplayWorld, max_missing_frames: int = 15) -> None:
        self.world = world
        self.max_missing_frames = max_missing_frames
        self._ids: dict[str, int] = {}  # object_id -> tracker id, live tracks only
        self._last_seen: dict[str, int] = {}
        self._next_id = 1
        self._frame = -1
        self._closed = False

    def start(self, frame: np.ndarray, detections: sv.Detections) -> sv.Detections:
        self._ids.clear()
        self._last_seen.clear()
        return self._advance(frame, detections, TrackSource.PROMPT)

    def step(self, frame: np.ndarray, new_detections: sv.Detections | None = None) -> sv.Detections:
        return self._advance(frame, new_detections, TrackSource.ADDED)

    def close(self) -> None:
        self._closed = True
        self._ids.clear()
        self._last_seen.clear()

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


class ReplayReader:
    """Reads the true number of a crop, with ``misread_rate`` realistic misreads.

    A crop is recognised by its pixels among the padded number crops of the frame the
    detector saw last (exact match first, then the closest crop of the same shape with a
    mean absolute difference below 2 grey levels). An unrecognised crop reads as
    ``NumberRead(None, 0.0)``. Confidences: true reads ~ Beta(6, 2) (mean 0.75), misreads
    ~ Beta(2, 3) (mean 0.4): lower on average, but the ranges overlap.
    """

    def __init__(self, world: ReplayWorld) -> None:
        self.world = world

    def read(self, crops: list[np.ndarray]) -> list[NumberRead]:
        return [self._read_one(c) for c in crops]

    def _read_one(self, image: np.ndarray) -> NumberRead:
        seen = self.world.seen
        match = _match_crop(image, seen.numbers) if seen is not None else None
        if seen is None or match is None:
            return NumberRead(None, 0.0, "")
        rng = np.random.default_rng(
            [
                self.world.seed,
                seen.clip_key & 0xFFFFFFFF,
                seen.frame_index,
                zlib.crc32(match.object_id.encode()),
            ]
        )
        if rng.random() >= self.world.misread_rate:
            return NumberRead(match.number, float(rng.beta(6, 2)), match.number)
        text = misread(match.number, rng)
        return NumberRead(text, float(rng.beta(2, 3)), text or "?")


def _match_crop(image: np.ndarray, candidates: list[_SeenNumber]) -> _SeenNumber | None:
    same_shape = [c for c in candidates if c.crop.shape == image.shape]
    if not same_shape or image.size == 0:
        return None
    for c in same_shape:
        if np.array_equal(c.crop, image):
            return c
    diffs = [np.abs(c.crop.astype(np.int16) - image.astype(np.int16)).mean() for c in same_shape]
    best = int(np.argmin(diffs))
    return same_shape[best] if diffs[best] < 2.0 else None
