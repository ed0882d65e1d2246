"""Pass 1's crop sample of a game: sampled frames, player crops, embeddings, storage.

:func:`sample_game` samples frames across every clip of a game (one a second by default),
detects players (referees and every other role left out) and keeps the central part of
each player box (:func:`central_crops`, scale 0.4), at most ``max_crops`` of them (a
seeded reservoir sample over the whole game, so memory stays bounded on long games), then
embeds them. A crop that other people's boxes cover by more than ``max_overlap``
(:func:`overlap_fractions`) is skipped: it would mix two jerseys, and pass 1 has no masks
to tell them apart. :func:`save_sample` stores the sample as ``sample.npz`` under the game's
``teams/`` directory, where the CPU fit (:func:`hoopray.teams.model.fit_team_model`)
reads it back with :func:`load_sample`.

Video decoding (PyAV, OpenCV) is imported only when frames are sampled, so importing this
module for :class:`CropSample` pulls in neither.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from hoopray import store
from hoopray.geometry import box_pixels, clip_boxes, crop, shrink_boxes
from hoopray.teams.config import TeamModelError, TeamsConfig
from hoopray.teams.files import SAMPLE_FILE, read_npz, write_npz

if TYPE_CHECKING:
    from hoopray.models.base import Detector, Embedder, Models, Roles
    from hoopray.types import ClipRef


@dataclass
class CropSample:
    """Player crops sampled from a game, in clip and frame order.

    Attributes:
        crops: central crops, RGB uint8 (none is empty).
        clip_ids: clip of each crop.
        frames: frame index of each crop, int32 (N,).
        boxes: the detected player box of each crop (before shrinking), float32 (N, 4).
        frames_sampled: frames given to the detector.
        players_seen: player detections with a non-empty crop seen (before the overlap
            check and the ``max_crops`` sample).
        overlapping: of those, crops skipped as covered by other people
            (``max_overlap``).
        problems: ``(clip_id, reason)`` for clips that could not be read.
        embedder: class name of the embedder of the sample's embeddings ("" unknown).
    """

    crops: list[np.ndarray] = field(default_factory=list)
    clip_ids: list[str] = field(default_factory=list)
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int32))
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), dtype=np.float32))
    frames_sampled: int = 0
    players_seen: int = 0
    overlapping: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    embedder: str = ""

    def __len__(self) -> int:
        return len(self.crops)


def central_crops(frame: np.ndarray, xyxy: np.ndarray, scale: float = 0.4) -> list[np.ndarray]:
    """The central ``scale`` part of each box, cropped from ``frame`` (may be empty)."""
    height, width = frame.shape[:2]
    boxes = clip_boxes(shrink_boxes(xyxy, scale), (width, height))
    return [crop(frame, box) for box in boxes]


def overlap_fractions(
    boxes: np.ndarray,
    wh: tuple[int, int],
    scale: float = 0.4,
    extra: np.ndarray | None = None,
) -> np.ndarray:
    """How much of each box's central crop other people's boxes cover, float64 (N,).

    The central crop is the one :func:`central_crops` takes (``scale``, clipped to the
    frame ``wh = (width, height)``). Its overlap is the share of its pixels that lie inside
    at least one other box: the other rows of ``boxes`` (players) and every row of
    ``extra`` (e.g. referees). So it is the IoS of the crop against the union of the others'
    boxes, in [0, 1]: 0 with no other box on it, 1 when it is covered whole. An empty crop
    gives 0.
    """
    own = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    more = np.zeros((0, 4)) if extra is None else np.asarray(extra, np.float64).reshape(-1, 4)
    central = box_pixels(clip_boxes(shrink_boxes(own, scale), wh), wh)
    people = box_pixels(np.concatenate([own, more]), wh)
    out = np.zeros(len(own))
    for i, (c1, r1, c2, r2) in enumerate(central.tolist()):
        if c2 <= c1 or r2 <= r1:
            continue
        covered = np.zeros((r2 - r1, c2 - c1), dtype=bool)
        for j, (x1, y1, x2, y2) in enumerate(people.tolist()):
            if j == i or x2 <= c1 or x1 >= c2 or y2 <= r1 or y1 >= r2:
                continue
            covered[max(y1, r1) - r1 : min(y2, r2) - r1, max(x1, c1) - c1 : min(x2, c2) - c1] = True
        out[i] = covered.mean()
    return out


class _Reservoir:
    """A seeded uniform sample of at most ``size`` items from a stream (Algorithm R)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seen = 0
        self.items: list[tuple[int, Any]] = []
        self.rng = np.random.default_rng(seed)

    def add(self, item: Any) -> None:
        if len(self.items) < self.size:
            self.items.append((self.seen, item))
        else:
            slot = int(self.rng.integers(0, self.seen + 1))
            if slot < self.size:
                self.items[slot] = (self.seen, item)
        self.seen += 1

    def ordered(self) -> list[Any]:
        return [item for _, item in sorted(self.items, key=lambda pair: pair[0])]


def sample_indices(frames: int, fps: float, stride_seconds: float) -> range:
    """Frame indices sampled from a clip of ``frames`` frames: one each ``stride_seconds``.

    The stride is ``max(1, round(fps * stride_seconds))`` frames, starting at frame 0.
    """
    return range(0, max(0, int(frames)), max(1, round(fps * stride_seconds)))


def sampled_frames(
    path: str | os.PathLike[str], stride_seconds: float
) -> Iterator[tuple[int, np.ndarray]]:
    """``(index, rgb)`` of a local clip's sampled frames (:func:`sample_indices`).

    With :func:`hoopray.video.read_frames_at` only the sampled frames are decoded (a seek to
    the keyframe before each). The frame count comes from the container header, else from
    the duration (rounded up: indices past the end are ignored). Without
    ``read_frames_at``, or with neither count nor duration, the clip is decoded through
    and every stride-th frame kept, which gives the same frames.

    Raises:
        hoopray.video.VideoError: the clip cannot be read.
    """
    from hoopray import video

    info = video.probe(path)
    stride = max(1, round(info.fps * stride_seconds))
    frames = info.frames
    if frames is None and info.duration:
        frames = math.ceil(info.duration * info.fps) + 1
    read_frames_at = getattr(video, "read_frames_at", None)
    if read_frames_at is None or frames is None:
        yield from video.iter_frames(path, stride=stride)
        return
    yield from read_frames_at(path, sample_indices(frames, info.fps, stride_seconds))


def collect_game_crops(
    clips: Sequence[ClipRef],
    detector: Detector,
    roles: Roles,
    cfg: TeamsConfig | None = None,
) -> CropSample:
    """Sample frames of every clip, detect players and keep their central crops.

    Only the sampled frames are decoded (:func:`sampled_frames`); a clip on an object store
    is read through a scratch copy (:func:`hoopray.store.local_copy`), one clip at a time.
    Only detections with the ``player`` role are kept (referees, numbers, ball and rim are
    not). A crop whose :func:`overlap_fractions` against the frame's other players and
    referees exceeds ``cfg.max_overlap`` is skipped (counted in ``overlapping``). A clip
    that cannot be decoded is recorded in ``problems`` and the others go on. ``cfg`` gives
    ``stride_seconds``, ``scale``, ``max_crops``, ``max_overlap``, ``detect_batch`` and
    ``seed``.

    Returns:
        A :class:`CropSample` of at most ``max_crops`` crops (uniform seeded sample).
    """
    from hoopray.video import VideoError

    cfg = cfg or TeamsConfig()
    reservoir = _Reservoir(cfg.max_crops, cfg.seed)
    sample = CropSample()

    def flush(clip_id: str, batch: list[tuple[int, np.ndarray]]) -> None:
        detections = detector.detect([frame for _, frame in batch])
        sample.frames_sampled += len(batch)
        for (index, frame), found in zip(batch, detections, strict=True):
            players = roles.select(found, "player")
            if len(players) == 0:
                continue
            boxes = np.asarray(players.xyxy, dtype=np.float32)
            referees = np.asarray(roles.select(found, "referee").xyxy, dtype=np.float32)
            wh = (int(frame.shape[1]), int(frame.shape[0]))
            overlap = overlap_fractions(boxes, wh, cfg.scale, referees)
            crops = central_crops(frame, boxes, cfg.scale)
            for box, image, covered in zip(boxes, crops, overlap, strict=True):
                if image.size == 0:
                    continue
                sample.players_seen += 1
                if covered > cfg.max_overlap:
                    sample.overlapping += 1
                    continue
                reservoir.add((clip_id, index, box, image))

    for clip in clips:
        batch: list[tuple[int, np.ndarray]] = []
        with store.local_copy(clip.path) as local:
            try:
                for index, frame in sampled_frames(local, cfg.stride_seconds):
                    batch.append((index, frame))
                    if len(batch) >= cfg.detect_batch:
                        flush(clip.clip_id, batch)
                        batch = []
                if batch:
                    flush(clip.clip_id, batch)
            except VideoError as err:
                sample.problems.append((clip.clip_id, str(err)))

    kept = reservoir.ordered()
    sample.crops = [item[3] for item in kept]
    sample.clip_ids = [item[0] for item in kept]
    sample.frames = np.array([item[1] for item in kept], dtype=np.int32)
    sample.boxes = np.array([item[2] for item in kept], dtype=np.float32).reshape(-1, 4)
    return sample


def embed_crops(
    embedder: Embedder, crops: Sequence[np.ndarray], batch_size: int = 64
) -> np.ndarray:
    """Embed ``crops`` in batches and return (N, D) float32."""
    parts = [
        np.asarray(embedder.embed(list(crops[start : start + batch_size])), dtype=np.float32)
        for start in range(0, len(crops), batch_size)
    ]
    if not parts:
        return np.asarray(embedder.embed([]), dtype=np.float32)
    return np.concatenate(parts, axis=0)


def sample_game(
    clips: Sequence[ClipRef], models: Models, cfg: TeamsConfig | None = None
) -> tuple[CropSample, np.ndarray]:
    """Pass 1 of one game: its crop sample (:func:`collect_game_crops`) and embeddings.

    Returns:
        ``(sample, embeddings float32 (N, D))``; ``sample.embedder`` names the embedder.

    Raises:
        ValueError: ``models`` without a detector or an embedder.
    """
    cfg = cfg or TeamsConfig()
    if models.detector is None or models.embedder is None:
        raise ValueError("sampling a game's team crops needs models.detector and models.embedder")
    sample = collect_game_crops(clips, models.detector, models.roles, cfg)
    sample.embedder = type(models.embedder).__name__
    return sample, embed_crops(models.embedder, sample.crops, cfg.embed_batch)


def save_sample(
    directory: str | os.PathLike[str], sample: CropSample, embeddings: np.ndarray
) -> str:
    """Write a game's pass-1 crop sample and its embeddings as ``sample.npz`` (no pickle).

    Arrays: ``crop_0`` .. ``crop_<N-1>`` (RGB uint8), ``frames`` int32 (N,), ``boxes``
    float32 (N, 4), ``clip_ids`` unicode (N,), ``embeddings`` float32 (N, D),
    ``frames_sampled``, ``players_seen`` and ``overlapping`` int64 scalars, ``problems``
    (the JSON of ``[[clip_id, reason], ...]`` as a unicode scalar) and ``embedder`` (a
    unicode scalar).

    Returns:
        The location of the file.

    Raises:
        ValueError: the sample's lists and arrays, or the embeddings, differ in length.
    """
    n = len(sample)
    values = np.asarray(embeddings, dtype=np.float32)
    if values.size == 0 and n == 0:
        values = values.reshape(0, values.shape[-1] if values.ndim == 2 else 0)
    boxes = np.asarray(sample.boxes).reshape(-1, 4)
    if (
        values.ndim != 2
        or len(values) != n
        or len(sample.clip_ids) != n
        or len(sample.frames) != n
        or len(boxes) != n
    ):
        raise ValueError(
            f"{n} crops but {len(sample.clip_ids)} clip ids, {len(sample.frames)} frames, "
            f"{len(boxes)} boxes, embeddings {values.shape}"
        )
    arrays: dict[str, np.ndarray] = {
        "frames": np.asarray(sample.frames, dtype=np.int32).reshape(n),
        "boxes": boxes.astype(np.float32),
        "clip_ids": np.array([str(c) for c in sample.clip_ids], dtype=np.str_).reshape(n),
        "embeddings": values,
        "frames_sampled": np.asarray(int(sample.frames_sampled), dtype=np.int64),
        "players_seen": np.asarray(int(sample.players_seen), dtype=np.int64),
        "overlapping": np.asarray(int(sample.overlapping), dtype=np.int64),
        "problems": np.asarray(json.dumps([[str(c), str(r)] for c, r in sample.problems])),
        "embedder": np.asarray(str(sample.embedder)),
    }
    for i, image in enumerate(sample.crops):
        arrays[f"crop_{i}"] = np.asarray(image, dtype=np.uint8)
    location = store.join(directory, SAMPLE_FILE)
    write_npz(location, arrays, compressed=True)
    return location


def load_sample(directory: str | os.PathLike[str]) -> tuple[CropSample, np.ndarray]:
    """The crop sample and embeddings saved by :func:`save_sample`; nothing is unpickled.

    Raises:
        TeamModelError: a missing or damaged ``sample.npz``.
    """
    location = store.join(directory, SAMPLE_FILE)
    try:
        arrays = read_npz(location)
        frames = arrays["frames"].astype(np.int32).reshape(-1)
        n = len(frames)
        problems = json.loads(str(arrays["problems"].item()))
        sample = CropSample(
            crops=[arrays[f"crop_{i}"] for i in range(n)],
            clip_ids=[str(c) for c in arrays["clip_ids"].reshape(-1).tolist()],
            frames=frames,
            boxes=arrays["boxes"].astype(np.float32).reshape(-1, 4),
            frames_sampled=int(arrays["frames_sampled"]),
            players_seen=int(arrays["players_seen"]),
            overlapping=int(arrays["overlapping"]) if "overlapping" in arrays else 0,
            problems=[(str(c), str(r)) for c, r in problems],
            embedder=str(arrays["embedder"].item()) if "embedder" in arrays else "",
        )
        embeddings = arrays["embeddings"].astype(np.float32)
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise TeamModelError(f"cannot load the crop sample {location}: {err}") from err
    if (
        len(sample.clip_ids) != n
        or len(sample.boxes) != n
        or embeddings.ndim != 2
        or len(embeddings) != n
        or any(image.dtype != np.uint8 or image.ndim != 3 for image in sample.crops)
    ):
        raise TeamModelError(f"{location}: the sample's arrays do not fit together")
    return sample, embeddings
