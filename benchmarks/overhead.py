"""Per-frame work between the tracker and the writer: hoopray's production path against the
notebook's per-frame work, on the same inputs.

Inputs: a 1280x720 read frame (a frame with number boxes), 10 player masks as SAM2 gives
them (a body and a head, with a few stray fragments, some far away; two pairs of players
overlap, the front one hiding part of the one behind) and 12 number boxes: 8 on one player
each, 3 that straddle the two players of a pair (half and half, 70/30, 5/95) and one on the
floor. The 10 player detections of the frame come with them.

- hoopray (what production runs, timed from the tracker's model output to the rows handed
  to the writer): the tracker's clean-up (:func:`hoopray.masks.clean_masks` in place, as
  the SAM2 trackers run it on the stack they just built), then observe's own per-frame code,
  ``_ClipObserver._record_tracks``, ``_reopen_crossed`` (the early stop's crossing check),
  ``_record_detections`` and ``_read_numbers``: areas, boxes and COCO RLE of every mask
  (:func:`hoopray.masks.encode_masks`), the players' class and confidence, every detection's
  row with its matched track, IoS of every number box, the legibility gates, the crops, the
  candidates and every ``tracks``, ``detections`` and ``reads`` row, with the Arrow record
  batches those rows make counted per frame (the rows of all repeats are packed at the end
  and that time is spread over the frames).
- notebook (its per-frame work, written for this benchmark): a full-frame
  connected-components clean-up of each mask with its fixed 300 px distance, boxes with
  ``supervision.mask_to_xyxy``, a full-frame boolean mask per number box, IoS with
  ``supervision.mask_iou_batch``, the padded crops, and the pairs above 0.9.

Left out on both sides: the models (detector, SAM2 step, OCR: the reader here answers
at once), decoding the frame and writing Parquet. Left out of hoopray's time: the tracker's
bookkeeping after its clean-up (``TrackBook.update``: the boxes for its new-track rule and
the returned ``sv.Detections``), printed on its own line for information. Each repeat
hands both sides a fresh copy of the raw masks (untimed; a copy has just been written, as
the tracker's output has) and the two sides alternate, so both see the same machine load.

The pairing check compares which number box goes to which track: the notebook's pairs
above 0.9 and the reads hoopray records whose best candidate resolve would pair at 0.9.
The straddling boxes make it able to fail: pairing each box with the track it overlaps
most (:func:`naive_pairs`) gives other pairs.

Timing: each side's fastest repeat (wall clock) counts: on this shared 2-core machine other
people's work only ever slows a repeat down, by up to 10x at a load average of 10, and
more so the shorter the work; the medians (wall and CPU time) are printed beside.

Run: ``.venv/bin/python benchmarks/overhead.py [--repeats 30]``. The last line is
``result: speedup=<notebook ms / hoopray ms, fastest repeats> target=>=20 pass|fail``; it
fails too when the pairs differ.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import common
import numpy as np
import supervision as sv

from hoopray.masks import clean_masks
from hoopray.models.base import CLASS_NAME, SOURCE, Models
from hoopray.observe import ObserveConfig, _ClipObserver, _Live
from hoopray.types import NumberRead

W, H = 1280, 720
PLAYERS = 10
IOS_THRESHOLD = 0.9
CLEAN_DISTANCE = 0.5  # the SAM2 trackers' default clean_max_distance
# Left edges of the players' bodies (80 px wide): players 2/3 and 5/6 overlap, 3 and 6 in front.
LEFT = (40, 160, 280, 350, 520, 640, 700, 880, 1010, 1140)
PAIRS = ((2, 3), (5, 6))
Box = tuple[float, float, float, float]


@dataclass(frozen=True)
class Inputs:
    """One read frame's tracker masks and detections."""

    masks: np.ndarray  # (10, H, W) bool, raw (with fragments)
    track_ids: np.ndarray  # (10,) the tracker's ids
    players: sv.Detections  # the frame's player detections
    numbers: np.ndarray  # (12, 4) float32 number boxes
    frame: np.ndarray  # (H, W, 3) uint8

    @property
    def detections(self) -> sv.Detections:
        """The detector's whole output of the frame: the players, then the number boxes."""
        numbers = sv.Detections(
            xyxy=self.numbers,
            confidence=np.full(len(self.numbers), 0.9, dtype=np.float32),
            class_id=np.ones(len(self.numbers), dtype=int),
            data={CLASS_NAME: np.array(["number"] * len(self.numbers), dtype=object)},
        )
        return sv.Detections.merge([self.players, numbers])


def make_inputs(seed: int = 0) -> Inputs:
    """10 players with fragments, two overlapping pairs, and 12 number boxes (see module)."""
    rng = np.random.default_rng(seed)
    masks = np.zeros((PLAYERS, H, W), dtype=bool)
    tops = [200 + int(rng.integers(-60, 60)) for _ in range(PLAYERS)]
    for back, front in PAIRS:
        tops[front] = tops[back]
    boxes = []
    for i, (x, y) in enumerate(zip(LEFT, tops, strict=True)):
        masks[i, y : y + 260, x : x + 80] = True  # body
        masks[i, y - 40 : y, x + 25 : x + 55] = True  # head
        for _ in range(3):  # stray fragments, some far away
            fx, fy = int(rng.integers(0, W - 20)), int(rng.integers(0, H - 20))
            masks[i, fy : fy + 12, fx : fx + 12] = True
        boxes.append((x - 25, y - 40, x + 80, y + 260))
    for back, front in PAIRS:  # the front player hides the one behind
        masks[back] &= ~masks[front]
    numbers = [[x + 20, y + 40, x + 60, y + 90] for x, y in zip(LEFT[:8], tops[:8], strict=True)]
    edge, y = LEFT[3], tops[3]
    numbers.append([edge - 20, y + 100, edge + 20, y + 140])  # half and half: no pair
    edge, y = LEFT[6], tops[6]
    numbers.append([edge - 28, y + 150, edge + 12, y + 190])  # 70 % behind: no pair
    numbers.append([edge - 2, y + 100, edge + 38, y + 140])  # 95 % in front: a pair
    numbers.append([600, 640, 630, 690])  # on the floor
    players = sv.Detections(
        xyxy=np.asarray(boxes, dtype=np.float32),
        confidence=np.full(PLAYERS, 0.9, dtype=np.float32),
        class_id=np.zeros(PLAYERS, dtype=int),
        data={CLASS_NAME: np.array(["player"] * PLAYERS, dtype=object)},
    )
    return Inputs(
        masks=masks,
        track_ids=np.arange(1, PLAYERS + 1),
        players=players,
        numbers=np.asarray(numbers, dtype=np.float32),
        frame=np.zeros((H, W, 3), dtype=np.uint8),
    )


# --------------------------------------------------------------------------- notebook


def _filter_segments_by_distance(mask: np.ndarray, distance_threshold: float = 300) -> np.ndarray:
    """The notebook's clean-up: keep the largest component and those whose centroid lies
    within ``distance_threshold`` px of its centroid (full-frame components)."""
    import cv2

    count, labels, stats, centroids = cv2.connectedComponentsWithStats(
        mask.astype(np.uint8), connectivity=8
    )
    if count <= 1:
        return mask.copy()
    main = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    keep = np.zeros_like(mask, dtype=bool)
    for label in range(1, count):
        if label == main or np.linalg.norm(centroids[label] - centroids[main]) <= 300:
            keep[labels == label] = True
    return keep


def _xyxy_to_mask(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """The notebook's number-box masks (inclusive edges, truncated coordinates)."""
    masks = np.zeros((len(boxes), height, width), dtype=bool)
    for i, (x1, y1, x2, y2) in enumerate(boxes):
        x1, y1 = max(0, int(x1)), max(0, int(y1))
        x2, y2 = min(width - 1, int(x2)), min(height - 1, int(y2))
        if x2 >= x1 and y2 >= y1:
            masks[i, y1 : y2 + 1, x1 : x2 + 1] = True
    return masks


def notebook_frame(masks: np.ndarray, inputs: Inputs) -> set[tuple[int, int]]:
    """The notebook's per-frame work on a read frame; returns its (track id, box) pairs."""
    cleaned = np.array([_filter_segments_by_distance(m) for m in masks])
    players = sv.Detections(
        xyxy=sv.mask_to_xyxy(masks=cleaned), mask=cleaned, tracker_id=inputs.track_ids
    )
    number_masks = _xyxy_to_mask(inputs.numbers, W, H)
    padded = sv.pad_boxes(xyxy=inputs.numbers, px=10, py=10)
    _crops = [sv.crop_image(inputs.frame, xyxy) for xyxy in padded]
    ios = sv.mask_iou_batch(
        masks_true=players.mask, masks_detection=number_masks, overlap_metric=sv.OverlapMetric.IOS
    )
    rows, cols = np.where(ios > IOS_THRESHOLD)
    pairs = sorted(zip(rows.tolist(), cols.tolist(), strict=True), key=lambda rc: -ios[rc])
    return {(int(players.tracker_id[r]), c) for r, c in pairs}


# --------------------------------------------------------------------------- hoopray


class _InstantReader:
    """A reader that answers at once: the model's time is not measured here."""

    def read(self, crops: list[np.ndarray]) -> list[NumberRead]:
        return [NumberRead("7", 0.9, "7") for _ in crops]


class _Roles:
    """Numbers are the detections given; players come separately (see :func:`hoopray_frame`)."""

    def select(self, detections: sv.Detections, role: str) -> sv.Detections:
        return detections


def make_observer() -> _ClipObserver:
    """observe's per-clip state with an instant reader; every number is read every time."""
    models = Models(reader=_InstantReader())
    models.roles = _Roles()  # type: ignore[assignment]
    observer = _ClipObserver(models, ObserveConfig(skip_confirmed_reads=None))
    observer.size = (W, H)
    return observer


def tracker_output(masks: np.ndarray, inputs: Inputs) -> sv.Detections:
    """What a tracker returns: the (cleaned) masks with ids, boxes, source and class.

    The boxes here are the detections' (hoopray recomputes its own from the masks).
    """
    return sv.Detections(
        xyxy=inputs.players.xyxy,
        mask=masks,
        confidence=np.full(len(masks), 0.95, dtype=np.float32),
        tracker_id=inputs.track_ids,
        data={
            SOURCE: np.array(["propagated"] * len(masks), dtype=object),
            CLASS_NAME: np.array(["player"] * len(masks), dtype=object),
        },
    )


def hoopray_frame(
    observer: _ClipObserver, index: int, masks: np.ndarray, inputs: Inputs
) -> tuple[Clock, _Live]:
    """Production's per-frame path on ``masks`` (the tracker's raw stack, cleaned in place).

    Returns the time it took (building the ``sv.Detections`` the tracker hands over is not
    counted) and the recorded tracks.
    """
    detections = inputs.detections
    clock = Clock.start()
    clean_masks(masks, CLEAN_DISTANCE, in_place=True)
    clock.pause()
    live = tracker_output(masks, inputs)
    clock.resume()
    numbers = sv.Detections(xyxy=inputs.numbers)
    tracks = observer._record_tracks(index, live, inputs.players, "propagated")  # type: ignore[arg-type]
    if observer.cfg.skip_confirmed_reads is not None:
        observer._reopen_crossed(tracks)
    observer._record_detections(index, detections, tracks)
    observer._read_numbers(index, inputs.frame, numbers, tracks)
    clock.pause()
    return clock, tracks


def pack_seconds(observer: _ClipObserver, repeats: int = 5) -> Clock:
    """Time to pack the rows the observer holds into Arrow record batches, as a flush does
    (median of ``repeats``; the rows stay held)."""
    import pyarrow as pa

    clocks = []
    for _ in range(repeats):
        clock = Clock.start()
        for builder in (observer.tracks, observer.reads, observer.detections):
            pa.RecordBatch.from_pydict(builder._columns, schema=builder.schema)
        clock.pause()
        clocks.append(clock)
    return Clock.median(clocks)


def recorded_pairs(observer: _ClipObserver, frame: int = 0) -> set[tuple[int, Box]]:
    """(track id, number box) pairs that resolve would make at 0.9 from the reads of
    ``frame``: the best candidate, if its IoS is high enough and no other track ties it."""
    pairs = set()
    for row in observer.reads.table().to_pylist():
        candidates = row["candidates"]
        if row["frame"] != frame or not candidates:
            continue
        best = candidates[0]
        tied = len(candidates) > 1 and candidates[1]["ios"] == best["ios"]
        if best["ios"] >= IOS_THRESHOLD and not tied:
            pairs.add((best["track_id"], (row["x1"], row["y1"], row["x2"], row["y2"])))
    return pairs


def hoopray_pairs(inputs: Inputs) -> set[tuple[int, int]]:
    """hoopray's pairs on the inputs, as box indices (one frame through production code)."""
    observer = make_observer()
    hoopray_frame(observer, 0, inputs.masks.copy(), inputs)
    index = {tuple(float(v) for v in box): j for j, box in enumerate(inputs.numbers)}
    return {(tid, index[box]) for tid, box in recorded_pairs(observer)}


def naive_pairs(inputs: Inputs) -> set[tuple[int, int]]:
    """Each number box with the track it overlaps most, whatever the IoS: a wrong rule the
    check must tell apart."""
    from hoopray.geometry import ios_masks_boxes

    ios = ios_masks_boxes(inputs.masks, inputs.numbers)
    return {
        (int(inputs.track_ids[ios[:, j].argmax()]), j)
        for j in range(ios.shape[1])
        if ios[:, j].max() > 0
    }


def tracker_bookkeeping(masks: np.ndarray) -> Clock:
    """Time of ``TrackBook.update`` (boxes and the returned detections) on ``masks``."""
    from hoopray.models.tracking import TrackBook, TrackSettings
    from hoopray.types import TrackSource

    book = TrackBook(TrackSettings())
    ids = book.add(sv.Detections(xyxy=np.zeros((len(masks), 4), np.float32)), 0, TrackSource.PROMPT)
    clock = Clock.start()
    book.update(1, ids, masks)
    clock.pause()
    return clock


# --------------------------------------------------------------------------- timing


@dataclass
class Clock:
    """Wall-clock and CPU seconds (``time.process_time``: this process, all its threads) of
    some work, which may be paused and resumed."""

    wall: float = 0.0
    cpu: float = 0.0
    _since: tuple[float, float] | None = None

    @classmethod
    def start(cls) -> Clock:
        clock = cls()
        clock.resume()
        return clock

    def resume(self) -> None:
        self._since = (time.perf_counter(), time.process_time())

    def pause(self) -> None:
        assert self._since is not None
        wall, cpu = self._since
        self.wall += time.perf_counter() - wall
        self.cpu += time.process_time() - cpu
        self._since = None

    @classmethod
    def median(cls, clocks: list[Clock]) -> Clock:
        return cls(
            float(np.median([c.wall for c in clocks])), float(np.median([c.cpu for c in clocks]))
        )

    @classmethod
    def fastest(cls, clocks: list[Clock]) -> Clock:
        """The repeat with the least wall time (other processes only ever slow one down)."""
        return min(clocks, key=lambda c: c.wall)


@dataclass(frozen=True)
class Timing:
    """Per-repeat clocks of both sides, and the packing of all of hoopray's rows."""

    notebook: list[Clock]
    hoopray: list[Clock]
    packing: Clock
    bookkeeping: list[Clock]

    def per_frame(self, side: str, kind: str = "wall", stat: str = "fastest") -> float:
        """Seconds per frame (``stat`` "fastest" or "median" repeat, ``kind`` "wall" or
        "cpu"); hoopray's includes its share of the packing."""
        clocks = self.notebook if side == "notebook" else self.hoopray
        value = getattr(getattr(Clock, stat)(clocks), kind)
        if side == "hoopray":
            value += getattr(self.packing, kind) / len(self.hoopray)
        return float(value)

    def speedup(self, kind: str = "wall", stat: str = "fastest") -> float:
        return self.per_frame("notebook", kind, stat) / self.per_frame("hoopray", kind, stat)


def measure(inputs: Inputs, repeats: int) -> Timing:
    """Alternate the two sides ``repeats`` times, each on a fresh copy of the raw masks."""
    notebook_frame(inputs.masks.copy(), inputs)  # warm-up: imports, caches
    warm = make_observer()
    hoopray_frame(warm, 0, inputs.masks.copy(), inputs)
    pack_seconds(warm, 1)  # the first packing of a process sets pyarrow up (about 0.4 s)
    observer = make_observer()
    cleaned, _ = clean_masks(inputs.masks, CLEAN_DISTANCE)
    notebook, hoopray, bookkeeping = [], [], []
    for index in range(repeats):
        masks = inputs.masks.copy()
        clock = Clock.start()
        notebook_frame(masks, inputs)
        clock.pause()
        notebook.append(clock)
        hoopray.append(hoopray_frame(observer, index, inputs.masks.copy(), inputs)[0])
        bookkeeping.append(tracker_bookkeeping(cleaned.copy()))
    return Timing(notebook, hoopray, pack_seconds(observer), bookkeeping)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    print(common.machine_line())
    inputs = make_inputs()
    timing = measure(inputs, args.repeats)
    pairs_nb = notebook_frame(inputs.masks.copy(), inputs)
    pairs_hr = hoopray_pairs(inputs)
    same = pairs_nb == pairs_hr
    print(
        f"inputs: {W}x{H} read frame, {PLAYERS} player masks with fragments (2 overlapping "
        f"pairs), {len(inputs.numbers)} number boxes (3 straddle two players); "
        f"{args.repeats} repeats, alternating"
    )
    packing = timing.packing
    bookkeeping = timing.bookkeeping
    frames = args.repeats

    def row(name: str, clocks: list[Clock], pairs: object, work: str, extra: float = 0) -> tuple:
        fastest, median = Clock.fastest(clocks), Clock.median(clocks)
        return (
            name,
            (fastest.wall + extra) * 1e3,
            (median.wall + extra) * 1e3,
            (median.cpu + extra) * 1e3,
            pairs,
            work,
        )

    rows = [
        row(
            "notebook",
            timing.notebook,
            len(pairs_nb),
            "clean-up, boxes, box masks, crops, IoS, pairs",
        ),
        row(
            "hoopray",
            timing.hoopray,
            len(pairs_hr),
            "clean-up, areas, boxes, RLE, IoS, gates, crops, candidates, rows",
            packing.wall / frames,
        ),
        (
            "  of which packing",
            packing.wall / frames * 1e3,
            packing.wall / frames * 1e3,
            packing.cpu / frames * 1e3,
            "",
            "Arrow record batches of the rows, per frame",
        ),
        row(
            "tracker bookkeeping", bookkeeping, "", "info, not in hoopray's time: TrackBook.update"
        ),
    ]
    headers = (
        "side",
        "fastest ms",
        "median ms",
        "median CPU ms",
        f"pairs>={IOS_THRESHOLD}",
        "work",
    )
    print(common.format_table(headers, rows))
    print(
        f"ms per read frame over {frames} repeats: the fastest (wall; the result), the median "
        "(wall and CPU: time.process_time of this process); speedup on medians: "
        f"wall {timing.speedup('wall', 'median'):.1f}, CPU {timing.speedup('cpu', 'median'):.1f}"
    )
    print(f"same pairs: {same} {sorted(pairs_hr)}")
    print(f"naive argmax pairing differs (the check can fail): {naive_pairs(inputs) != pairs_nb}")
    speedup = timing.speedup("wall", "fastest")
    print(common.result_line("speedup", speedup, ">=20", speedup >= 20 and same))


if __name__ == "__main__":
    main()
