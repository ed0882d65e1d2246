"""Per-clip observation loop: everything the models compute for one clip, recorded once.

:func:`observe` streams a clip's frames and writes down what the detector, tracker,
embedder and number reader say, without deciding anything: the decisions (which read
belongs to which track, when a number is confirmed, which team a track is on) are made by
:func:`hoopray.resolve.resolve` from these observations, so thresholds can be changed
without running a model again.

Per frame ``i`` (0-based, as decoded):

- detection frames (``i % detect_stride == 0``, and every read frame): one detector call
  gives players and numbers together; the first detection frame with players prompts the
  tracker, later ones hand their players to the tracker so that players who enter later
  are added (the tracker decides which ones are new).
- detection frames: every detection (players, numbers, referees, ball, rim) becomes an
  ``observations/detections`` row with its role and, for a player, the track it matches
  (:mod:`hoopray.detections`).
- every frame once tracking started: the tracker steps; each live track with a non-empty
  mask becomes an ``observations/tracks`` row (box of the cleaned mask, area, COCO RLE,
  and the class and confidence of the player detection it matches on detection frames,
  or else whatever the tracker carries from the detection that prompted it).
- read frames (``i % read_stride == 0``): the frame's number boxes are paired with the
  track masks by IoS. Only *legible* boxes are read, in one batched reader call: a box
  whose best IoS is below ``read_min_ios`` or is shared by two tracks (resolve could give
  it to no track), one shorter than ``read_min_height`` pixels, or one whose width /
  height lies outside ``[read_min_aspect, read_max_aspect]`` (a number seen edge-on, or a
  box around something else) is counted and left; so is a box whose best track has been
  *early-stopped* (below). Every read is recorded with its IoS to every track it overlaps
  (``observations/reads``).
- team evidence (with an embedder): on a track's first frame and every ``team_stride``
  frames after, the central part of its box is cropped with every pixel that is not the
  track's own mask blanked (set to :data:`hoopray.teams.BLANK`, which the colour embedder
  skips: the background and other players do not vote; :func:`team_crop`), embedded, and
  the embedding is recorded (float16) with ``own_fraction``, the share of that crop
  covered by the track's own mask (``observations/team_votes``). No team model is
  involved: :func:`hoopray.resolve.resolve` assigns the clusters, so refitting a game's
  team model re-observes nothing.

Early stop (``skip_policy``, ``skip_confirmed_reads``): OCR is the expensive part, so a
track stops being read once its identity is decided by its own reads (those where it is the
best overlapping track with IoS >= ``skip_min_ios``), under the rule of resolve's default
policy: ``posterior`` (the default), the number posterior of
:class:`hoopray.resolve.ResolveConfig`'s defaults confirms a number at a posterior of at
least ``skip_min_posterior`` (0.96, stricter than resolve's 0.8: resolve's posterior of a
(team, number) pair also carries the team's uncertainty, so a number just over resolve's
bar here often stays under it there), with resolve's prior for a track of unknown team
(observe knows no teams): the game's two rosters mixed when :func:`observe` is given the
roster, else uniform; or ``streak``, :class:`hoopray.voting.StreakVoter` with ``n =
skip_confirmed_reads`` (that many equal readable reads in a row; an unreadable read neither
counts nor breaks the run). Where two tracks start to overlap (box IoU at least resolve's
``crossing_iou``: where a tracker may swap their players, see
:func:`hoopray.resolve.crossings`) both are reopened: read again until their reads from
then on decide them. This only saves work: :func:`hoopray.resolve.resolve` still decides
from the stored reads. The trade-offs: a resolve config stricter than the early stop's rule
(a higher ``min_posterior`` than ``skip_min_posterior``, a higher ``min_margin``, more
``reads_to_confirm`` than ``skip_confirmed_reads``, a higher IoS than ``skip_min_ios``)
finds fewer reads than a full read would give; so does a sweep of ``min_read_confidence``,
which may turn some of the early-stopping reads into unreadable ones. Resolve, knowing the
track's team, weighs the numbers of that team's roster only: a track whose reads settle on
a number of the other team's roster may stop being read before resolve would confirm it,
and without a roster here reading goes on longer than resolve needs. Set the early stop to
the strictest setting you plan to sweep, or ``skip_confirmed_reads`` to None to read every
number on every read frame. Likewise the IoS gate: resolve thresholds below
``read_min_ios`` find no reads.

Each frame is handled in two steps: the detector and tracker calls
(:meth:`_ClipObserver.infer`), which depend only on the frames before, and the recording
(:meth:`_ClipObserver.record`: the rows, pairing, the early stop, and the reader's and
embedder's calls). With ``infer_ahead`` the first runs that many frames ahead on a thread,
so the device has the next frame's work while the Python side records this one.

Per frame, nothing the size of the frame is copied: the masks the tracker returns are read
once for their areas, boxes and COCO RLE strings (:func:`hoopray.masks.encode_masks`, which
scans each mask's bounding window only after one pass for its rows), and the IoS of each
number box is counted on the patches where it meets a mask's box.

Rows are packed into Arrow record batches of at most 4,096 rows or about 8 MiB of strings
and bytes (RLE strings, embeddings) as they accumulate. Without a sink, :func:`observe`
keeps those batches and returns whole tables, so its memory grows with the clip's rows (a
few KiB per frame with real masks). With a ``sink`` (the pipeline's path: it streams them
into the store's Parquet writers) each full batch is handed over and dropped, so memory is
bounded by one frame, the live masks, the tracker's state and one batch per table, whatever
the clip's length.
"""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from hoopray import voting
from hoopray.detections import class_roles, detection_rows
from hoopray.geometry import (
    box_pixels,
    clip_boxes,
    ios_masks_boxes,
    pad_boxes,
    shrink_boxes,
)
from hoopray.masks import MaskSummary, clean_masks, encode_masks
from hoopray.models.base import CLASS_NAME, SOURCE, Models, Tracker
from hoopray.teams import BLANK
from hoopray.types import (
    OBS_CLIP,
    OBS_DETECTIONS,
    OBS_READS,
    OBS_TEAM_VOTES,
    OBS_TRACKS,
    ClipRef,
    Observations,
    TrackSource,
    check_schema,
)
from hoopray.voting import StreakVoter

if TYPE_CHECKING:
    import supervision as sv

    from hoopray.roster import Roster

_CLASS_MATCH_IOU = 0.5
_CHUNK_ROWS = 4096
_CHUNK_TEXT_BYTES = 8 * 2**20

RowSink = Callable[[str, pa.RecordBatch], None]
"""Receives each full record batch of a streamed table, e.g. ``sink("tracks", batch)``."""

SKIP_POLICIES = ("posterior", "streak")
"""Rules of the OCR early stop (``ObserveConfig.skip_policy``)."""

STREAMED_TABLES = ("tracks", "reads", "team_votes", "detections")
"""The observation tables whose rows go to the sink (``clip`` is one row, returned)."""


@dataclass(frozen=True)
class ObserveConfig:
    """Settings of :func:`observe` (Hydra group ``observe``, ``conf/observe/default.yaml``).

    Attributes:
        read_stride: numbers are read on every k-th frame (the notebook's 5).
        detect_stride: the detector runs on every k-th frame to find new players; read
            frames always run it too (the read needs that frame's number boxes), so the
            default, equal to ``read_stride``, gives exactly one detector call per read frame.
        number_pad: padding in pixels around a number box before it is cropped and read.
        team_stride: frames between two team crops of the same track.
        crop_scale: the central fraction of a player's box used for team crops.
        new_track_min_confidence: players detected below this confidence prompt no track.
        read_min_ios: a number is read only when its best IoS with a track is at least this
            (0: any overlap) and no other track has the same IoS. Resolve thresholds below
            it find no reads; the default is the lowest ``resolve.ios_threshold`` the
            documented sweeps use.
        read_min_height: number boxes shorter than this many pixels (before padding) are
            not read: too few pixels for the reader.
        read_min_aspect: number boxes narrower than this width / height are not read (a
            number seen edge-on; a one-digit number is about 0.5).
        read_max_aspect: number boxes wider than this width / height are not read (two
            digits are about 1.2 to 1.6; wider boxes hold something else).
        skip_policy: the rule that decides a track's identity for the early stop (see the
            module docstring): "posterior" (resolve's default policy) or "streak".
        skip_confirmed_reads: early stop of OCR per track: for "streak" the equal reads in
            a row that decide; None reads every number on every read frame, whatever the
            policy.
        skip_min_ios: a read counts towards the early stop only with at least this IoS.
        skip_min_posterior: the posterior early stop's bar: the best number's posterior
            (resolve's, for a track of unknown team) must reach this, above resolve's
            ``min_posterior``, because resolve's pair posterior also carries the track's
            team uncertainty and sees the track's later reads.
        max_frames: observe only the first ``max_frames`` frames (None: all).
        mask_clean_distance: keep a mask's main segment and the pieces within this fraction
            of its diagonal (:func:`hoopray.masks.clean_masks`); None (the default) keeps
            masks as the tracker gives them: the SAM2 adapters clean their own masks, which
            they need clean for their lost-track and new-player decisions.
    """

    read_stride: int = 5
    detect_stride: int = 5
    number_pad: int = 10
    team_stride: int = 15
    crop_scale: float = 0.4
    new_track_min_confidence: float = 0.5
    read_min_ios: float = 0.8
    read_min_height: float = 8.0
    read_min_aspect: float = 0.2
    read_max_aspect: float = 2.5
    skip_policy: str = "posterior"
    skip_confirmed_reads: int | None = 3
    skip_min_ios: float = 0.9
    skip_min_posterior: float = 0.96
    max_frames: int | None = None
    mask_clean_distance: float | None = None

    def __post_init__(self) -> None:
        for name in ("read_stride", "detect_stride", "team_stride"):
            if getattr(self, name) < 1:
                raise ValueError(f"observe.{name} must be >= 1, got {getattr(self, name)}")
        if self.number_pad < 0:
            raise ValueError(f"observe.number_pad must be >= 0, got {self.number_pad}")
        if not 0.0 < self.crop_scale <= 1.0:
            raise ValueError(f"observe.crop_scale must be in (0, 1], got {self.crop_scale}")
        if self.skip_confirmed_reads is not None and self.skip_confirmed_reads < 1:
            raise ValueError(
                "observe.skip_confirmed_reads must be >= 1 or None, "
                f"got {self.skip_confirmed_reads}"
            )
        if self.max_frames is not None and self.max_frames < 1:
            raise ValueError(f"observe.max_frames must be >= 1 or None, got {self.max_frames}")
        if self.skip_policy not in SKIP_POLICIES:
            raise ValueError(
                f"observe.skip_policy must be one of {SKIP_POLICIES}, got {self.skip_policy!r}"
            )
        if not 0.0 <= self.skip_min_posterior <= 1.0:
            raise ValueError(
                f"observe.skip_min_posterior must be in [0, 1], got {self.skip_min_posterior}"
            )
        if not 0.0 <= self.read_min_ios <= 1.0:
            raise ValueError(f"observe.read_min_ios must be in [0, 1], got {self.read_min_ios}")
        if not self.read_min_height >= 0:
            raise ValueError(f"observe.read_min_height must be >= 0, got {self.read_min_height}")
        if not 0.0 <= self.read_min_aspect <= self.read_max_aspect:
            raise ValueError(
                "observe.read_min_aspect and read_max_aspect must satisfy 0 <= min <= max, got "
                f"{self.read_min_aspect} and {self.read_max_aspect}"
            )

    def legible(self, boxes: np.ndarray) -> np.ndarray:
        """Which ``(M, 4)`` xyxy number boxes pass the size and aspect gates, bool ``(M,)``."""
        width = boxes[:, 2] - boxes[:, 0]
        height = boxes[:, 3] - boxes[:, 1]
        aspect = np.divide(width, height, out=np.zeros_like(width), where=height > 0)
        return (
            (height >= self.read_min_height)
            & (height > 0)
            & (aspect >= self.read_min_aspect)
            & (aspect <= self.read_max_aspect)
        )


class _TableBuilder:
    """Accumulates rows column-wise and packs them into Arrow record batches as it goes.

    A batch is packed once it holds ``chunk_rows`` rows or ``chunk_text_bytes`` characters
    of strings and bytes of binary values. Without a ``sink`` the batches are kept for
    :meth:`table`; with one, each is handed to it and dropped, and :meth:`table` returns an
    empty table.
    """

    def __init__(
        self,
        schema: pa.Schema,
        chunk_rows: int = _CHUNK_ROWS,
        chunk_text_bytes: int = _CHUNK_TEXT_BYTES,
        sink: Callable[[pa.RecordBatch], None] | None = None,
    ) -> None:
        self.schema = schema
        self.chunk_rows = chunk_rows
        self.chunk_text_bytes = chunk_text_bytes
        self.sink = sink
        self._columns: dict[str, list[object]] = {name: [] for name in schema.names}
        self._text_columns = [
            f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_binary(f.type)
        ]
        self._text_bytes = 0
        self._batches: list[pa.RecordBatch] = []
        self.rows = 0

    def extend(self, columns: dict[str, Sequence[object]]) -> None:
        lengths = {len(values) for values in columns.values()}
        if columns.keys() != self._columns.keys() or len(lengths) != 1:
            raise ValueError("extend() needs every column, all of the same length")
        for name, values in columns.items():
            self._columns[name].extend(values)
        self.rows += lengths.pop()
        self._text_bytes += sum(
            len(v)  # type: ignore[arg-type]
            for name in self._text_columns
            for v in columns[name]
            if v is not None
        )
        if (
            len(self._columns[self.schema.names[0]]) >= self.chunk_rows
            or self._text_bytes >= self.chunk_text_bytes
        ):
            self._flush()

    def _flush(self) -> None:
        if self._columns[self.schema.names[0]]:
            batch = pa.RecordBatch.from_pydict(self._columns, schema=self.schema)
            self._columns = {name: [] for name in self.schema.names}
            self._text_bytes = 0
            if self.sink is None:
                self._batches.append(batch)
            else:
                self.sink(batch)

    def table(self) -> pa.Table:
        self._flush()
        return pa.Table.from_batches(self._batches, schema=self.schema)


@dataclass
class _EarlyStop:
    """Which tracks' identities are decided, by resolve's rules on the reads so far.

    A read counts for a track when it is the read's best track with at least ``min_ios``
    (compared in float32, the stored precision, as resolve does). ``policy`` "streak":
    :class:`hoopray.voting.StreakVoter` confirms after ``needed`` equal readable reads in
    a row. ``policy`` "posterior": the number posterior of resolve's default
    :class:`hoopray.resolve.ResolveConfig` (confusion model, runs two read strides apart,
    reads weighed by confidence x IoS) confirms its best number at a posterior of at least
    ``min_posterior`` (and resolve's own bar), with resolve's prior for a track of unknown
    team: both teams' rosters mixed (``rosters``), or uniform without a roster. A track that
    crosses another (:meth:`reopen`) is decided again from its later reads only. ``needed``
    None decides nothing.
    """

    needed: int | None
    min_ios: float
    policy: str = "streak"
    run_gap: int = 10
    rosters: tuple[frozenset[str], ...] = ()
    min_posterior: float = 0.0

    def __post_init__(self) -> None:
        self.done: set[int] = set()
        self._voter = StreakVoter(self.needed) if self.needed and self.policy == "streak" else None
        self._reads: dict[int, list[tuple[int, int, float]]] = {}
        from hoopray.resolve import ResolveConfig

        self._resolve = ResolveConfig()
        self.crossing_iou = self._resolve.crossing_iou
        if self.policy == "posterior":
            self._confusion = voting.confusion_matrix(self._resolve.misread_rate)
            off_roster = self._resolve.off_roster_prior
            if self.rosters:
                both = voting.roster_log_prior(list(self.rosters), off_roster)
                self._prior = np.logaddexp.reduce(both, axis=0)[None, :]
            else:
                self._prior = voting.roster_log_prior([None], off_roster)

    def reopen(self, track_id: int) -> None:
        """Forget what decided ``track_id``: it crossed another track, which may have
        swapped their players, so it is read again until its reads from now on decide."""
        self.done.discard(track_id)
        self._reads.pop(track_id, None)
        if self._voter is not None:
            self._voter.reset(track_id)

    def update(
        self, track_id: int, ios: float, text: str | None, confidence: float = 1.0, frame: int = 0
    ) -> None:
        if self.needed is None or np.float32(ios) < np.float32(self.min_ios):
            return
        if self._voter is not None:
            if self._voter.update([track_id], [text])[0] is not None:
                self.done.add(track_id)
            return
        if text not in voting.NUMBER_INDEX:
            return
        weight = float(np.clip(np.float32(confidence) * np.float32(ios), 0.0, 1.0))
        reads = self._reads.setdefault(track_id, [])
        reads.append((frame, voting.NUMBER_INDEX[text], weight))
        frames, numbers, weights = (np.array(column) for column in zip(*reads, strict=True))
        cfg = self._resolve
        number_ll = voting.number_loglik(
            numbers,
            weights,
            voting.split_runs(frames, self.run_gap),
            self._confusion,
            cfg.persistent_misread,
        )
        probs = voting.pair_posterior(self._prior, np.zeros(1), number_ll)
        bar = max(cfg.min_posterior, self.min_posterior)
        if voting.decide_pair(probs, bar, cfg.min_margin).confirmed:
            self.done.add(track_id)
            del self._reads[track_id]


@dataclass(frozen=True)
class _Live:
    """The recorded tracks of one frame.

    ``masks`` is the tracker's whole stack, not copied; ``keep`` indexes the rows with a
    non-empty mask, and every other field is per kept track except ``summary`` (per row of
    ``masks``).
    """

    masks: np.ndarray
    summary: MaskSummary
    keep: np.ndarray
    track_ids: np.ndarray
    areas: np.ndarray
    boxes: np.ndarray


@dataclass(frozen=True)
class _Inferred:
    """What the models said of one frame (:meth:`_ClipObserver.infer`), not yet recorded.

    ``live`` is None while tracking has not started (no confident player yet); ``source``
    is the default source of its tracks (prompted on the first tracked frame, then
    propagated).
    """

    index: int
    frame: np.ndarray
    is_read: bool
    detections: sv.Detections | None
    players: sv.Detections | None
    live: sv.Detections | None
    source: TrackSource = TrackSource.PROPAGATED


def _player_class_and_confidence(
    boxes: np.ndarray, players: sv.Detections | None
) -> tuple[list[str | None], list[float | None]]:
    """Class name and confidence of the detection that best matches each track box."""
    n = len(boxes)
    if players is None or len(players) == 0 or n == 0:
        return [None] * n, [None] * n
    import supervision as sv

    iou = sv.box_iou_batch(boxes.astype(np.float32), np.asarray(players.xyxy, np.float32))
    best = iou.argmax(axis=1)
    names = players.data.get(CLASS_NAME)
    conf = players.confidence
    out_names: list[str | None] = []
    out_conf: list[float | None] = []
    for i in range(n):
        j = int(best[i])
        if iou[i, j] < _CLASS_MATCH_IOU:
            out_names.append(None)
            out_conf.append(None)
            continue
        out_names.append(None if names is None else str(names[j]))
        out_conf.append(None if conf is None else float(conf[j]))
    return out_names, out_conf


def _fill_from_tracker(
    names: list[str | None],
    confidences: list[float | None],
    live: sv.Detections,
    keep: np.ndarray,
) -> None:
    """Where no detection of this frame matched, take what the tracker carries (the class
    and confidence of the detection that prompted the track), if anything."""
    tracked_names = live.data.get(CLASS_NAME)
    kept_names = None if tracked_names is None else np.asarray(tracked_names, dtype=object)[keep]
    kept_conf = None if live.confidence is None else np.asarray(live.confidence)[keep]
    for k in range(len(names)):
        if names[k] is not None:
            continue
        if kept_names is not None and kept_names[k] is not None:
            names[k] = str(kept_names[k])
        if kept_conf is not None and np.isfinite(kept_conf[k]):
            confidences[k] = float(kept_conf[k])


def _confident(players: sv.Detections, min_confidence: float) -> sv.Detections:
    if len(players) == 0 or players.confidence is None:
        return players
    return players[np.asarray(players.confidence) >= min_confidence]


def _check_models(models: Models) -> None:
    missing = [name for name in ("detector", "tracking", "reader") if getattr(models, name) is None]
    if missing:
        raise ValueError(f"observe needs models: {', '.join(missing)}")


class _ClipObserver:
    """State of one clip's observation; :func:`observe` drives it frame by frame."""

    def __init__(
        self,
        models: Models,
        cfg: ObserveConfig,
        sink: RowSink | None = None,
        roster: Roster | None = None,
    ):
        self.models = models
        self.cfg = cfg
        self.tracks, self.reads, self.team_votes, self.detections = (
            _TableBuilder(
                schema,
                _CHUNK_ROWS,
                _CHUNK_TEXT_BYTES,
                None if sink is None else functools.partial(sink, name),
            )
            for name, schema in zip(
                STREAMED_TABLES,
                (OBS_TRACKS, OBS_READS, OBS_TEAM_VOTES, OBS_DETECTIONS),
                strict=True,
            )
        )
        self.class_roles = class_roles(models.roles)
        self.early_stop = _EarlyStop(
            cfg.skip_confirmed_reads,
            cfg.skip_min_ios,
            cfg.skip_policy,
            2 * cfg.read_stride,
            () if roster is None else tuple(frozenset(t.players) for t in roster.teams),
            cfg.skip_min_posterior,
        )
        self.last_team_frame: dict[int, int] = {}
        self.touching: set[tuple[int, int]] = set()
        self.tracker: Tracker | None = None
        self.track_ids: set[int] = set()
        self.frames = 0
        self.size: tuple[int, int] | None = None  # (width, height)
        self.counts = {
            "detector_calls": 0,
            "reader_calls": 0,
            "crops_read": 0,
            "numbers_seen": 0,
            "numbers_unassigned": 0,
            "numbers_skipped": 0,
            "numbers_illegible": 0,
            "embedder_calls": 0,
            "team_crops": 0,
        }

    def close(self) -> None:
        if self.tracker is not None:
            tracker, self.tracker = self.tracker, None
            tracker.close()

    def infer(self, index: int, frame: np.ndarray) -> _Inferred:
        """The detector and tracker calls of frame ``index``, nothing recorded.

        Depends only on the frames before it (the tracker's state), never on what
        :meth:`record` decides, so it may run ahead of :meth:`record` on another thread.
        """
        cfg = self.cfg
        if self.size is None:
            self.size = (int(frame.shape[1]), int(frame.shape[0]))
        is_read = index % cfg.read_stride == 0
        detections = players = prompts = None
        if is_read or index % cfg.detect_stride == 0:
            assert self.models.detector is not None
            detections = self.models.detector.detect([frame])[0]
            self.counts["detector_calls"] += 1
            players = self.models.roles.select(detections, "player")
            prompts = _confident(players, cfg.new_track_min_confidence)
        if self.tracker is None:
            if prompts is None or len(prompts) == 0:
                return _Inferred(index, frame, is_read, detections, players, None)
            assert self.models.tracking is not None
            self.tracker = self.models.tracking.open()
            live = self.tracker.start(frame, prompts)
            source = TrackSource.PROMPT
        else:
            live = self.tracker.step(
                frame, new_detections=prompts if prompts is not None and len(prompts) else None
            )
            source = TrackSource.PROPAGATED
        return _Inferred(index, frame, is_read, detections, players, live, source)

    def record(self, step: _Inferred) -> None:
        """Record what :meth:`infer` found on one frame: tracks, detections, number reads
        (the reader's call) and team crops (the embedder's call), in frame order."""
        self.frames += 1
        index, frame, detections = step.index, step.frame, step.detections
        if step.live is None:
            if detections is not None:
                self._record_detections(index, detections, self._no_tracks())
                if step.is_read:
                    self._read_numbers(index, frame, detections, self._no_tracks())
            return
        tracks = self._record_tracks(index, step.live, step.players, step.source)
        if self.cfg.skip_confirmed_reads is not None:
            self._reopen_crossed(tracks)
        if detections is not None:
            self._record_detections(index, detections, tracks)
            if step.is_read:
                self._read_numbers(index, frame, detections, tracks)
        if self.models.embedder is not None:
            self._team_evidence(index, frame, tracks)

    def _record_detections(self, index: int, detections: sv.Detections, tracks: _Live) -> None:
        """Record every detection of a detection frame, players with their matched track."""
        self.detections.extend(
            detection_rows(index, detections, self.class_roles, tracks.boxes, tracks.track_ids)
        )

    def _reopen_crossed(self, tracks: _Live) -> None:
        """Reopen both tracks of every pair that starts to overlap on this frame (box IoU at
        least resolve's ``crossing_iou``, as :func:`hoopray.resolve.crossings` finds them)."""
        now = touching_pairs(tracks.boxes, tracks.track_ids, self.early_stop.crossing_iou)
        present = set(tracks.track_ids.tolist())
        for one, two in now - self.touching:
            self.early_stop.reopen(one)
            self.early_stop.reopen(two)
        self.touching = now | {
            p for p in self.touching if p[0] not in present or p[1] not in present
        }

    def _no_tracks(self) -> _Live:
        width, height = self.size or (0, 0)
        masks = np.zeros((0, height, width), dtype=bool)
        none = np.zeros(0, dtype=np.int64)
        return _Live(masks, encode_masks(masks), none, none, none, np.zeros((0, 4), np.float32))

    def _record_tracks(
        self,
        index: int,
        live: sv.Detections,
        players: sv.Detections | None,
        default_source: TrackSource,
    ) -> _Live:
        """Record the live tracks with a non-empty mask and return them."""
        width, height = self.size or (0, 0)
        if len(live) == 0:
            return self._no_tracks()
        if live.mask is None or live.tracker_id is None:
            raise ValueError("the tracker must return masks and tracker ids")
        masks = np.asarray(live.mask)
        if masks.dtype != bool:
            masks = masks != 0
        if self.cfg.mask_clean_distance is not None:
            masks, _ = clean_masks(masks, self.cfg.mask_clean_distance)
        summary = encode_masks(masks)
        keep = np.flatnonzero(summary.areas > 0)
        areas = summary.areas[keep]
        boxes = summary.boxes[keep]
        track_ids = np.asarray(live.tracker_id, dtype=np.int64)[keep]
        raw_sources = live.data.get(SOURCE)
        sources = (
            [str(s) for s in np.asarray(raw_sources, dtype=object)[keep]]
            if raw_sources is not None
            else [str(default_source)] * len(track_ids)
        )
        names, confidences = _player_class_and_confidence(boxes, players)
        _fill_from_tracker(names, confidences, live, keep)
        self.track_ids.update(track_ids.tolist())
        n = len(track_ids)
        self.tracks.extend(
            {
                "frame": [index] * n,
                "track_id": track_ids.tolist(),
                "x1": boxes[:, 0].tolist(),
                "y1": boxes[:, 1].tolist(),
                "x2": boxes[:, 2].tolist(),
                "y2": boxes[:, 3].tolist(),
                "mask_area": areas.tolist(),
                "mask_rle": [summary.counts[k] for k in keep.tolist()],
                "height": [height] * n,
                "width": [width] * n,
                "class_name": names,
                "det_confidence": confidences,
                "source": sources,
            }
        )
        return _Live(masks, summary, keep, track_ids, areas, boxes)

    def _read_numbers(
        self, index: int, frame: np.ndarray, detections: sv.Detections, tracks: _Live
    ) -> None:
        numbers = self.models.roles.select(detections, "number")
        self.counts["numbers_seen"] += len(numbers)
        if len(numbers) == 0:
            return
        track_ids = tracks.track_ids
        if len(track_ids) == 0:
            self.counts["numbers_unassigned"] += len(numbers)
            return
        cfg = self.cfg
        number_boxes = np.asarray(numbers.xyxy, dtype=np.float32).reshape(-1, 4)
        summary = tracks.summary
        ios = ios_masks_boxes(tracks.masks, number_boxes, summary.areas, summary.bounds)
        ios = ios[tracks.keep]
        columns = np.arange(len(number_boxes))
        ranked = np.argsort(-ios, axis=0, kind="stable")
        best = ranked[0]
        best_ios = ios[best, columns]
        runner_up = ios[ranked[1], columns] if len(ios) > 1 else np.zeros_like(best_ios)
        shared = np.float32(runner_up) == np.float32(best_ios)
        assignable = (best_ios > 0) & (best_ios >= cfg.read_min_ios) & ~shared
        legible = cfg.legible(number_boxes)
        pad = cfg.number_pad
        size = self.size or (0, 0)
        patches = box_pixels(clip_boxes(pad_boxes(number_boxes, pad, pad), size), size).tolist()
        done = self.early_stop.done
        todo: list[int] = []
        crops: list[np.ndarray] = []
        for j, (c1, r1, c2, r2) in enumerate(patches):
            if not assignable[j]:
                self.counts["numbers_unassigned"] += 1
            elif int(track_ids[best[j]]) in done:
                self.counts["numbers_skipped"] += 1
            elif not legible[j]:
                self.counts["numbers_illegible"] += 1
            elif c2 <= c1 or r2 <= r1:
                self.counts["numbers_unassigned"] += 1
            else:
                todo.append(j)
                crops.append(frame[r1:r2, c1:c2].copy())
        if not crops:
            return
        assert self.models.reader is not None
        results = self.models.reader.read(crops)
        if len(results) != len(crops):
            raise ValueError(f"the reader returned {len(results)} reads for {len(crops)} crops")
        self.counts["reader_calls"] += 1
        self.counts["crops_read"] += len(crops)

        first_id = self.reads.rows
        candidates = []
        for j, result in zip(todo, results, strict=True):
            hits = np.flatnonzero(ios[:, j] > 0)
            hits = hits[np.argsort(-ios[hits, j], kind="stable")]
            candidates.append(
                [{"track_id": int(track_ids[t]), "ios": float(ios[t, j])} for t in hits]
            )
            self.early_stop.update(
                int(track_ids[best[j]]),
                float(best_ios[j]),
                result.text,
                float(np.clip(result.confidence, 0.0, 1.0)),
                index,
            )
        chosen = number_boxes[todo]
        self.reads.extend(
            {
                "frame": [index] * len(todo),
                "read_id": list(range(first_id, first_id + len(todo))),
                "x1": chosen[:, 0].tolist(),
                "y1": chosen[:, 1].tolist(),
                "x2": chosen[:, 2].tolist(),
                "y2": chosen[:, 3].tolist(),
                "text": [r.text for r in results],
                "raw": [r.raw for r in results],
                "confidence": [float(np.clip(r.confidence, 0.0, 1.0)) for r in results],
                "candidates": candidates,
            }
        )

    def _team_evidence(self, index: int, frame: np.ndarray, tracks: _Live) -> None:
        track_ids, masks, boxes = tracks.track_ids, tracks.masks, tracks.boxes
        due = [
            k
            for k, tid in enumerate(track_ids.tolist())
            if tid not in self.last_team_frame
            or index - self.last_team_frame[tid] >= self.cfg.team_stride
        ]
        if not due:
            return
        central = clip_boxes(shrink_boxes(boxes[due], self.cfg.crop_scale), self.size or (0, 0))
        bounds = box_pixels(central, self.size or (0, 0))
        kept: list[int] = []
        crops: list[np.ndarray] = []
        own: list[float] = []
        for k, (c1, r1, c2, r2) in zip(due, bounds.tolist(), strict=True):
            if c2 <= c1 or r2 <= r1:
                continue
            mask = masks[tracks.keep[k]]
            kept.append(k)
            crops.append(team_crop(frame, (c1, r1, c2, r2), mask))
            own.append(_own_fraction(mask, (c1, r1, c2, r2)))
        if not crops:
            return
        assert self.models.embedder is not None
        embeddings = np.asarray(self.models.embedder.embed(crops))
        if embeddings.ndim != 2 or len(embeddings) != len(crops):
            raise ValueError(
                f"the embedder returned shape {embeddings.shape} for {len(crops)} crops"
            )
        self.counts["embedder_calls"] += 1
        self.counts["team_crops"] += len(crops)
        ids = [int(track_ids[k]) for k in kept]
        for tid in ids:
            self.last_team_frame[tid] = index
        values = embeddings.astype("<f2")
        self.team_votes.extend(
            {
                "frame": [index] * len(ids),
                "track_id": ids,
                "embedding": [row.tobytes() for row in values],
                "dim": [values.shape[1]] * len(ids),
                "own_fraction": own,
            }
        )


def touching_pairs(
    boxes: np.ndarray, track_ids: np.ndarray, min_iou: float
) -> set[tuple[int, int]]:
    """``(lower id, higher id)`` of the tracks whose boxes overlap with IoU >= ``min_iou``."""
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    if len(b) < 2:
        return set()
    lo_xy = np.maximum(b[:, None, :2], b[None, :, :2])
    hi_xy = np.minimum(b[:, None, 2:], b[None, :, 2:])
    inter = np.clip(hi_xy - lo_xy, 0, None).prod(axis=2)
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area[:, None] + area[None, :] - inter
    iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
    ids = np.asarray(track_ids).tolist()
    return {
        (min(ids[i], ids[j]), max(ids[i], ids[j]))
        for i, j in zip(*np.nonzero(np.triu(iou >= min_iou, 1)), strict=True)
    }


def team_crop(
    frame: np.ndarray, bounds: tuple[int, int, int, int], mask: np.ndarray | None
) -> np.ndarray:
    """A copy of the pixels ``[c1, r1, c2, r2)`` of ``frame`` where every pixel outside
    ``mask`` (the track's own, frame-sized) is :data:`hoopray.teams.BLANK`; without a mask,
    the crop as it is. Empty bounds give an empty crop."""
    c1, r1, c2, r2 = bounds
    image = frame[r1:r2, c1:c2].copy()
    if mask is not None and image.size:
        image[~np.asarray(mask[r1:r2, c1:c2], dtype=bool)] = BLANK
    return image


def _own_fraction(mask: np.ndarray | None, bounds: tuple[int, int, int, int]) -> float:
    """Share of the pixels ``[c1, r1, c2, r2)`` that ``mask`` covers; 1.0 without a mask."""
    if mask is None:
        return 1.0
    c1, r1, c2, r2 = bounds
    patch = mask[r1:r2, c1:c2]
    return float(np.count_nonzero(patch)) / patch.size if patch.size else 0.0


def _inferred(
    observer: _ClipObserver, frames: Iterator[tuple[int, np.ndarray]]
) -> Iterator[_Inferred]:
    """:meth:`_ClipObserver.infer` of each decoded frame; closing it closes ``frames``."""
    with contextlib.closing(frames):
        for index, frame in frames:
            yield observer.infer(index, frame)


def observe(
    clip: ClipRef,
    models: Models,
    cfg: ObserveConfig,
    *,
    sink: RowSink | None = None,
    observe_hash: str = "",
    roster: Roster | None = None,
    decode_ahead: int = 0,
    infer_ahead: int = 0,
) -> Observations:
    """Run the models over one clip and record what they see.

    Args:
        clip: the clip to observe; ``clip.path`` is a local path.
        models: detector, tracking and reader are required; without an embedder no team
            evidence is recorded.
        cfg: strides, padding and early stop.
        sink: where the rows of :data:`STREAMED_TABLES` go as they are produced, one record
            batch at a time (``sink(name, batch)``, in row order; the schemas are those of
            ``observations/<name>``; a table without rows gets no call). None keeps
            them and returns them as tables.
        observe_hash: the hash of the observe stage's config, stored in
            ``observations/clip`` (null when empty).
        roster: the game's roster, if known; it serves only the posterior early stop (its
            prior, as resolve's for a track of unknown team, so that a track stops being
            read about when resolve would confirm it) and nothing of it is recorded.
        decode_ahead: frames decoded ahead on a thread while the models run (0: none);
            it changes no result.
        infer_ahead: frames whose detector and tracker calls run ahead on a thread while
            the frames before them are recorded (pairing, mask encoding, rows, and the
            reader's and embedder's calls), so that the device is not idle during that
            work (0: none); it changes no result.

    Returns:
        Observations with the ``observations/tracks``, ``reads``, ``team_votes``,
        ``detections`` and ``clip`` tables; ``extra`` holds counters (detector and reader
        calls, numbers seen, skipped by the early stop, left by the size and aspect gates
        (``numbers_illegible``), or by the IoS gate (``numbers_unassigned``)) and
        ``rows``, the row count of each streamed table, and ``declared_frames``, the frame
        count the clip's header declares (None if it declares none). With a ``sink``, the
        streamed tables are empty tables of their schemas: their rows went to the sink.

    Raises:
        hoopray.video.VideoError: the clip cannot be opened or no frame decodes.
        ValueError: a required model is missing or a model breaks its contract.
    """
    from hoopray.read_ahead import read_ahead
    from hoopray.video import VideoError, iter_frames, probe

    _check_models(models)
    started = time.perf_counter()
    info = probe(clip.path)
    observer = _ClipObserver(models, cfg, sink, roster)
    frames = read_ahead(iter_frames(clip.path, stop=cfg.max_frames), decode_ahead)
    steps = read_ahead(_inferred(observer, frames), infer_ahead)
    try:
        for step in steps:
            observer.record(step)
    finally:
        steps.close()  # stops the model calls' thread before the tracker is closed
        observer.close()
    if observer.frames == 0 or observer.size is None:
        raise VideoError(f"no frame could be decoded from {clip.path}")
    tables = {
        name: check_schema(f"observations/{name}", getattr(observer, name).table())
        for name in STREAMED_TABLES
    }
    width, height = observer.size
    counts = observer.counts
    clip_table = pa.table(
        {
            "path": [str(clip.path)],
            "fingerprint": [clip.fingerprint],
            "frames": [observer.frames],
            "fps": [float(info.fps)],
            "width": [width],
            "height": [height],
            "read_stride": [cfg.read_stride],
            "reader_calls": [counts["reader_calls"]],
            "crops_read": [counts["crops_read"]],
            "seconds": [time.perf_counter() - started],
            "observe_hash": [observe_hash or None],
        },
        schema=OBS_CLIP,
    )
    rows = {name: getattr(observer, name).rows for name in STREAMED_TABLES}
    return Observations(
        **tables,
        clip=check_schema("observations/clip", clip_table),
        extra={
            **counts,
            "tracks": len(observer.track_ids),
            "rows": rows,
            "declared_frames": info.frames,
        },
        game_id=clip.game_id,
        clip_id=clip.clip_id,
    )
