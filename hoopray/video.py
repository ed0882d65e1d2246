"""Video input and output: probe, streaming and sampled decode, H.264 writing,
fingerprints, discovery.

Decoding and encoding use PyAV (FFmpeg) on local files. Frames are RGB ``uint8`` arrays
of shape ``(H, W, 3)``, already rotated as the file's display matrix asks, so a portrait
phone clip comes out upright.

A games root, a local directory or an object-store prefix (:mod:`hoopray.store`), is laid
out as ``<root>/<game_id>/<clip>`` with an optional ``<root>/<game_id>/roster.yaml``. A
clip is any file FFmpeg opens with a video stream: by name when it ends in one of
:data:`VIDEO_SUFFIXES` (mp4, mov, mkv, avi, ts, m2ts, mts, mxf, webm, m4v, any case),
otherwise by its content (:func:`not_a_video`). Discovery and fingerprints work on any
store; decoding needs a local file (:func:`hoopray.store.local_copy` gives one).
"""

from __future__ import annotations

import bisect
import contextlib
import hashlib
import io
import json
import logging
import operator
import os
import re
import stat
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path, PurePosixPath
from types import TracebackType
from typing import Any

import av
import numpy as np

from hoopray import store
from hoopray.types import ClipRef

log = logging.getLogger(__name__)

# Clips by name: never probed (one that does not decode fails when it is observed).
VIDEO_SUFFIXES = (".mp4", ".mov", ".mkv", ".avi", ".ts", ".m2ts", ".mts", ".mxf", ".webm", ".m4v")
CLIP_SUFFIXES = VIDEO_SUFFIXES  # the former name
# Label tables (``<clip_id>.parquet``, as ``data.labels`` lays them out) may share a game
# folder; they are not clips and get no status row.
LABEL_SUFFIXES = (".parquet",)
ROSTER_FILE = "roster.yaml"
# Bytes of a remote object probed in memory; a format FFmpeg cannot open from them (an MP4
# with its index at the end) is probed again from a scratch copy of the whole object.
PROBE_HEAD = 4 * 1024 * 1024
# FFmpeg demuxers of still images and text art: a "video stream" of one picture is no clip.
_STILL_FORMATS = frozenset(
    {"image2", "image2pipe", "gif", "apng", "webp", "ico", "tty", "bin", "xbin", "adf", "idf"}
)
FINGERPRINT_CHUNK = 4 * 1024 * 1024
# Names the fingerprint algorithm; a cache written under another scheme is not used.
FINGERPRINT_SCHEME = f"hoopray-fp-v1/{FINGERPRINT_CHUNK}"
_FP_PERSON = b"hoopray-fp-v1"
# A seek (decoder flush and restart at a keyframe) must skip at least this many frames.
SEEK_MIN_SKIP = 8

_MUXERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska"}
_UNSAFE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_DOT_RUNS = re.compile(r"\.{2,}")


class VideoError(RuntimeError):
    """A file cannot be used as a video; the message says which file and why."""


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe` learns about a clip.

    Attributes:
        width: width of the frames :func:`iter_frames` yields (after rotation).
        height: height of the frames :func:`iter_frames` yields (after rotation).
        fps: average frame rate.
        frames: frame count from the container header, None where it does not say
            (Matroska, for one).
        duration: seconds, None where unknown.
        rotation: counter-clockwise degrees (0, 90, 180 or 270) applied to every frame.
    """

    width: int
    height: int
    fps: float
    frames: int | None
    duration: float | None
    rotation: int


# --------------------------------------------------------------------------- decoding


def _local_path(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    if not store.is_local(text):
        raise VideoError(f"{text}: not a local file; decode a copy (hoopray.store.local_copy)")
    return Path(text[len("file://") :] if text.startswith("file://") else text)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise VideoError(f"{path}: file not found")
    if not path.is_file():
        raise VideoError(f"{path}: not a regular file")
    if path.stat().st_size == 0:
        raise VideoError(f"{path}: empty file (0 bytes)")
    if not os.access(path, os.R_OK):
        raise VideoError(f"{path}: cannot read file (permission denied)")


def _open(path: Path) -> av.container.InputContainer:
    _check_file(path)
    try:
        container = av.open(str(path))
    except (av.FFmpegError, UnicodeDecodeError) as err:
        raise VideoError(f"{path}: not a readable video file ({err})") from err
    except OSError as err:
        raise VideoError(f"{path}: cannot open ({err})") from err
    if not container.streams.video:
        container.close()
        raise VideoError(f"{path}: no video stream")
    return container


def _rotation(frame: av.VideoFrame, stream: av.VideoStream) -> int:
    """Counter-clockwise degrees, a multiple of 90 in [0, 360)."""
    degrees = float(frame.rotation or 0)
    if not degrees:
        # Legacy tag, clockwise degrees; FFmpeg normally turns it into a display matrix.
        with contextlib.suppress(ValueError):
            degrees = -float(stream.metadata.get("rotate", 0))
    return round(degrees / 90.0) % 4 * 90


def _to_rgb(frame: av.VideoFrame, rotation: int) -> np.ndarray:
    rgb = frame.to_ndarray(format="rgb24")
    if rotation:
        rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
    return rgb


def _fps(stream: av.VideoStream) -> float:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            return float(rate)
    return 0.0


def probe(path: str | Path) -> VideoInfo:
    """Read a clip's header and decode its first frame.

    Raises:
        VideoError: the file is missing, empty, unreadable, not a video, has no video
            stream or no decodable frame.
    """
    path = _local_path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        try:
            first = next(container.decode(stream), None)
        except av.FFmpegError as err:
            raise VideoError(f"{path}: no decodable video frames ({err})") from err
        if first is None:
            raise VideoError(f"{path}: no decodable video frames")
        rotation = _rotation(first, stream)
        width, height = first.width, first.height
        if rotation in (90, 270):
            width, height = height, width
        duration = None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        fps = _fps(stream)
        if fps <= 0:
            raise VideoError(f"{path}: unknown frame rate")
        return VideoInfo(
            width=width,
            height=height,
            fps=fps,
            frames=stream.frames or None,
            duration=duration,
            rotation=rotation,
        )


def iter_frames(
    path: str | Path, stride: int = 1, start: int = 0, stop: int | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode a clip frame by frame, holding one frame at a time.

    Yields ``(frame_index, rgb)`` for ``frame_index`` in ``range(start, stop, stride)``
    (indices count decoded frames from 0). Frames in any pixel format (grayscale,
    yuv444p, ...) come out as RGB uint8 ``(H, W, 3)``, rotated upright.

    A stream that breaks after some frames were decoded ends the iteration there with a
    logged warning; a stream with no decodable frame at all raises.

    Raises:
        ValueError: stride < 1, start < 0 or stop < start.
        VideoError: as :func:`probe`.
    """
    if stride < 1 or start < 0 or (stop is not None and stop < start):
        raise ValueError(f"bad frame range: stride={stride}, start={start}, stop={stop}")
    path = _local_path(path)
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rotation: int | None = None
        index = -1
        frames = container.decode(stream)
        while stop is None or index + 1 < stop:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.FFmpegError as err:
                if index < 0:
                    raise VideoError(f"{path}: no decodable video frames ({err})") from err
                log.warning("%s: decoding stopped after frame %d: %s", path, index, err)
                break
            index += 1
            if rotation is None:
                rotation = _rotation(frame, stream)
            if index >= start and (index - start) % stride == 0:
                yield index, _to_rgb(frame, rotation)
        if index < 0:
            raise VideoError(f"{path}: no decodable video frames")


@dataclass
class DecodeStats:
    """Decoding work done by :func:`read_frames_at`; one object may count several calls.

    Attributes:
        packets: compressed frames sent to the decoder, the measure of decoding work
            (in sequential mode: frames decoded).
        frames: frames the decoder returned.
        seeks: seeks to a keyframe.
        sequential: calls that decoded from the start instead of seeking (the file's
            timestamps could not stand for frame indices).
    """

    packets: int = 0
    frames: int = 0
    seeks: int = 0
    sequential: int = 0


class _OrderLost(Exception):
    """The decoder's output does not match the frame table: decode sequentially instead."""


@dataclass(frozen=True)
class _FrameTable:
    """Frame ``i`` of :func:`iter_frames` has presentation timestamp ``pts[i]``."""

    pts: list[int]
    index: dict[int, int]
    keyframes: list[int]  # frame indices, increasing


def _frame_table(
    container: av.container.InputContainer, stream: av.VideoStream
) -> _FrameTable | None:
    """The frame table from one demux pass (reads packets, decodes nothing).

    None where timestamps cannot stand for :func:`iter_frames` indices: a packet without
    a timestamp, two frames with the same one, or a stream that does not start with a
    keyframe. Edit-list packets the decoder drops (``is_discard``) are left out.
    """
    stamps: list[int] = []
    keys: list[int] = []
    try:
        for packet in container.demux(stream):
            if packet.size == 0 or packet.is_discard:
                continue
            if packet.pts is None:
                return None
            stamps.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
    except av.FFmpegError:
        pass  # a damaged tail: the table covers the packets before it
    order = sorted(stamps)
    index = {pts: i for i, pts in enumerate(order)}
    if not order or len(index) != len(order) or not keys or min(keys) != order[0]:
        return None
    return _FrameTable(order, index, sorted(index[k] for k in keys))


class _SeekingReader:
    """Decodes the wanted frames of an open container, seeking past unwanted GOPs.

    After a seek it feeds packets from the keyframe it landed on; once the packets of the
    wanted frame and of every frame before it are in the decoder and the next wanted frame
    is far ahead, it drains the decoder rather than feeding more. Every frame that comes
    out must be the next one by the table (strictly consecutive from the landing keyframe),
    else :class:`_OrderLost`.
    """

    def __init__(
        self,
        path: Path,
        container: av.container.InputContainer,
        stream: av.VideoStream,
        table: _FrameTable,
        stats: DecodeStats,
    ) -> None:
        self.path, self.container, self.stream = path, container, stream
        self.table, self.stats = table, stats
        self.rotation: int | None = None
        self.out = 0  # frames the decoder returned in this call
        self.packets: Iterator[av.Packet] | None = None
        self.floor = 0  # pts of the keyframe landed on; earlier frames are open-GOP leftovers
        self.position = 0  # index of the next frame the decoder will return
        self.fed: set[int] = set()  # pts of packets in the decoder whose frame is not out
        self.targets: Iterator[int] = iter(())
        self.current: int | None = None
        self.upcoming: int | None = None

    def _key_of(self, index: int) -> int:
        keys = self.table.keyframes
        return keys[bisect.bisect_right(keys, index) - 1]

    def _advance(self) -> None:
        self.current, self.upcoming = self.upcoming, next(self.targets, None)

    def _wanted_now(self) -> bool:
        return self.current is not None and self.current < len(self.table.pts)

    def _needs_seek(self, target: int, position: int) -> bool:
        return position > target or self._key_of(target) - position >= SEEK_MIN_SKIP

    def _seek(self, target: int) -> None:
        """Seek so that decoding starts at a keyframe at or before ``target``.

        Demuxers index seek points differently (Matroska by pts, MP4 by a shifted dts), so
        this tries timestamps from the last frame before the next keyframe downwards and
        takes the first landing at or before ``target`` (an earlier one costs frames, a
        later one would lose the target).
        """
        table = self.table
        after = bisect.bisect_right(table.keyframes, target)
        next_key = table.keyframes[after] if after < len(table.keyframes) else len(table.pts)
        earlier = table.keyframes[max(0, after - 3) : after]
        ladder = [table.pts[next_key - 1], table.pts[target]]
        ladder += [table.pts[k] for k in reversed(earlier)] + [table.pts[0]]
        for stamp in dict.fromkeys(ladder):
            try:
                self.container.seek(stamp, stream=self.stream, backward=True, any_frame=False)
                self.stats.seeks += 1
                packets = self.container.demux(self.stream)
                landing = next(
                    (p for p in packets if p.size and p.is_keyframe and p.pts is not None), None
                )
            except av.FFmpegError as err:
                raise _OrderLost(f"cannot seek ({err})") from err
            if landing is None:
                continue
            index = table.index.get(landing.pts)
            if index is None:
                raise _OrderLost(f"seek landed on an unknown timestamp {landing.pts}")
            if index <= target:
                self.packets = _prepend(landing, packets)
                self.floor, self.position, self.fed = landing.pts, index, set()
                return
        raise _OrderLost(f"no seek lands at or before frame {target}")

    def _take(
        self, frames: Sequence[av.VideoFrame], until: int | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Match decoded frames to the targets; with ``until``, stop once frame ``until``
        is out (a drained decoder returns references decoded ahead of unfed frames)."""
        for frame in frames:
            if until is not None and self.position > until:
                return
            self.stats.frames += 1
            self.out += 1
            if self.rotation is None:
                self.rotation = _rotation(frame, self.stream)
            pts = frame.pts
            self.fed.discard(pts)
            if pts is None or pts not in self.table.index:
                raise _OrderLost(f"decoder returned an unknown timestamp {pts}")
            if pts < self.floor:
                continue
            index = self.table.index[pts]
            if index != self.position:
                raise _OrderLost(f"decoder returned frame {index}, expected {self.position}")
            self.position = index + 1
            if index == self.current:
                yield index, _to_rgb(frame, self.rotation)
                self._advance()

    def _all_fed(self, target: int) -> bool:
        """Whether every frame up to ``target`` is out of the decoder or inside it."""
        pts, fed = self.table.pts, self.fed
        return pts[target] in fed and all(pts[i] in fed for i in range(self.position, target))

    def _broken(self, err: Exception) -> None:
        if self.out == 0:
            raise VideoError(f"{self.path}: no decodable video frames ({err})") from err
        log.warning("%s: decoding stopped near frame %d: %s", self.path, self.position, err)

    def read(self, wanted: Iterable[int]) -> Iterator[tuple[int, np.ndarray]]:
        self.targets = iter(wanted)
        self.current = next(self.targets, None)
        self.upcoming = next(self.targets, None)
        while self._wanted_now():
            target = self.current
            assert target is not None
            if self.packets is None or self._needs_seek(target, self.position):
                self._seek(target)
            assert self.packets is not None
            try:
                packet = next(self.packets, None)
                if packet is None:
                    raise _OrderLost(f"frame {target} never came out of the decoder")
                frames = packet.decode()
            except av.FFmpegError as err:
                self._broken(err)
                return
            if packet.size:
                self.stats.packets += 1
                self.fed.add(packet.pts)
            yield from self._take(frames)
            if self.current != target or not self._all_fed(target):
                continue
            upcoming = self.upcoming
            if (
                upcoming is None
                or upcoming >= len(self.table.pts)
                or self._needs_seek(upcoming, target + 1)
            ):
                # All the target needs is in the decoder and what follows is not wanted.
                try:
                    frames = self.stream.decode(None)
                except av.FFmpegError as err:
                    self._broken(err)
                    return
                self.packets = None
                yield from self._take(frames, until=target)
                if self.current == target:
                    raise _OrderLost(f"frame {target} did not come out of the drained decoder")


def _prepend(first: av.Packet, rest: Iterator[av.Packet]) -> Iterator[av.Packet]:
    yield first
    yield from rest


def _wanted_indices(indices: Iterable[int]) -> Sequence[int]:
    """Sorted unique frame indices (a range with a positive step is kept as it is)."""
    if isinstance(indices, range) and indices.step > 0:
        wanted: Sequence[int] = indices
    else:
        wanted = sorted({operator.index(i) for i in indices})
    if len(wanted) and wanted[0] < 0:
        raise ValueError(f"bad frame index {wanted[0]}: indices count from 0")
    return wanted


def _read_sequential(
    path: Path, wanted: Sequence[int], stats: DecodeStats
) -> Iterator[tuple[int, np.ndarray]]:
    targets = iter(wanted)
    target = next(targets, None)
    if target is None:
        return
    with _open(path) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        rotation: int | None = None
        index = -1
        frames = container.decode(stream)
        while target is not None:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except av.FFmpegError as err:
                if index < 0:
                    raise VideoError(f"{path}: no decodable video frames ({err})") from err
                log.warning("%s: decoding stopped after frame %d: %s", path, index, err)
                break
            index += 1
            stats.packets += 1
            stats.frames += 1
            if rotation is None:
                rotation = _rotation(frame, stream)
            if index == target:
                yield index, _to_rgb(frame, rotation)
                target = next(targets, None)
        if index < 0:
            raise VideoError(f"{path}: no decodable video frames")


def read_frames_at(
    path: str | Path, indices: Iterable[int], *, stats: DecodeStats | None = None
) -> Iterator[tuple[int, np.ndarray]]:
    """Decode only the frames at ``indices`` (and what they depend on), seeking past the rest.

    Yields ``(frame_index, rgb)`` in increasing index order, once per index (``indices``
    may be unsorted or repeat; a ``range`` is used lazily), with frames exactly as
    :func:`iter_frames` yields them at those indices: the same 0-based index (frames in
    decoder output order), RGB uint8 ``(H, W, 3)``, rotated upright. Indices past the end
    of the clip are ignored.

    One demux pass (reading packets, decoding nothing) maps every frame index to its
    timestamp and finds the keyframes. For each wanted frame the decoder seeks to the
    nearest keyframe at or before it and decodes forward; while the next wanted frame is
    close (its keyframe fewer than :data:`SEEK_MIN_SKIP` frames ahead) decoding just goes
    on. Where the timestamps cannot be trusted (missing or repeated timestamps, a stream
    not starting at a keyframe, a decoder whose output disagrees with them) it decodes
    from the start instead, which gives the same frames. A stream that breaks ends the
    iteration where the break is met, with a logged warning, as in :func:`iter_frames`;
    a break that a seek skips is not met.

    Args:
        path: a local clip.
        indices: frame indices, 0 or more.
        stats: counts the decoding work (:class:`DecodeStats`), when given.

    Raises:
        ValueError: a negative index.
        VideoError: as :func:`probe`.
    """
    wanted = _wanted_indices(indices)
    counters = stats if stats is not None else DecodeStats()
    local = _local_path(path)
    done = -1
    with _open(local) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if not len(wanted):
            return
        table = _frame_table(container, stream)
        if table is not None:
            reader = _SeekingReader(local, container, stream, table, counters)
            try:
                for index, rgb in reader.read(wanted):
                    done = index
                    yield index, rgb
                return
            except _OrderLost as err:
                log.info("%s: %s; decoding from the start instead", local, err)
    counters.sequential += 1
    rest = wanted[bisect.bisect_right(wanted, done) :]
    yield from _read_sequential(local, rest, counters)


def check_frame_count(
    path: str | Path, declared: int | None, decoded: int, stop: int | None = None
) -> None:
    """Refuse a clip that decoded fewer frames than its container declares.

    :func:`iter_frames` ends quietly (with a logged warning) where a stream breaks; a
    caller that needs the whole clip checks the count it got here. One frame, or 1% of
    the clip, may go missing (edit lists can hide a frame); a container that declares no
    count (Matroska) passes.

    Args:
        path: the clip (named in the error).
        declared: the frame count its header declares (:attr:`VideoInfo.frames`), or None.
        decoded: how many frames were decoded.
        stop: the ``stop`` given to :func:`iter_frames`, if any.

    Raises:
        VideoError: the clip looks truncated or corrupt.
    """
    if declared is None:
        return
    expected = declared if stop is None else min(declared, stop)
    if expected - decoded > max(1, expected // 100):
        raise VideoError(
            f"{path}: truncated or corrupt: decoded {decoded} of the {expected} frames "
            "its header declares"
        )


# --------------------------------------------------------------------------- encoding


class H264Writer:
    """Write RGB frames to a browser-playable H.264 file (libx264, yuv420p, faststart).

    yuv420p needs even sizes, so an odd width or height is padded by one pixel that
    repeats the last column or row. The file is written under a hidden temporary name in
    the target directory and renamed to ``path`` only when the ``with`` block ends
    without an exception and at least one frame was written; otherwise the temporary
    file is removed and nothing appears at ``path``.

    Example:
        >>> with H264Writer(out, 1280, 720, 30) as writer:  # doctest: +SKIP
        ...     for frame in frames:
        ...         writer.write(frame)
    """

    def __init__(
        self,
        path: str | Path,
        width: int,
        height: int,
        fps: float,
        crf: int = 23,
        preset: str = "veryfast",
    ) -> None:
        if width < 1 or height < 1:
            raise ValueError(f"bad frame size {width}x{height}")
        if fps <= 0:
            raise ValueError(f"bad fps {fps}")
        self.path = Path(path)
        if self.path.suffix.lower() not in _MUXERS:
            raise ValueError(f"{self.path}: output must end in one of {sorted(_MUXERS)}")
        self.width = width
        self.height = height
        self.fps = fps
        self.crf = crf
        self.preset = preset
        self.frames_written = 0
        self._rate = Fraction(fps).limit_denominator(1001)
        self._pad = (height % 2, width % 2)
        self._tmp: Path | None = None
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None

    def __enter__(self) -> H264Writer:
        suffix = self.path.suffix.lower()
        self._tmp = self.path.with_name(f".{self.path.stem}.{uuid.uuid4().hex[:8]}.part{suffix}")
        container_options = {"movflags": "+faststart"} if suffix in (".mp4", ".mov") else {}
        self._container = av.open(
            str(self._tmp), "w", format=_MUXERS[suffix], container_options=container_options
        )
        try:
            stream = self._container.add_stream(
                "libx264", rate=self._rate, options={"crf": str(self.crf), "preset": self.preset}
            )
            stream.width = self.width + self._pad[1]
            stream.height = self.height + self._pad[0]
            stream.pix_fmt = "yuv420p"
            self._stream = stream
        except BaseException:
            self._abort()
            raise
        return self

    def write(self, rgb: np.ndarray) -> None:
        """Append one RGB uint8 frame of shape ``(height, width, 3)``."""
        if self._container is None or self._stream is None:
            raise RuntimeError("H264Writer.write called outside its `with` block")
        if rgb.shape != (self.height, self.width, 3) or rgb.dtype != np.uint8:
            raise ValueError(
                f"frame must be uint8 ({self.height}, {self.width}, 3), got {rgb.dtype} {rgb.shape}"
            )
        if any(self._pad):
            rgb = np.pad(rgb, ((0, self._pad[0]), (0, self._pad[1]), (0, 0)), mode="edge")
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
        frame.pts = self.frames_written
        frame.time_base = 1 / self._rate
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is not None:
            self._abort()
            return
        if self.frames_written == 0:
            self._abort()
            raise VideoError(f"{self.path}: no frames were written")
        assert self._container is not None and self._stream is not None and self._tmp
        try:
            for packet in self._stream.encode(None):
                self._container.mux(packet)
            self._container.close()
        except BaseException:
            self._abort()
            raise
        self._container = None
        os.replace(self._tmp, self.path)

    def _abort(self) -> None:
        if self._container is not None:
            with contextlib.suppress(Exception):
                self._container.close()
            self._container = None
        if self._tmp is not None:
            self._tmp.unlink(missing_ok=True)


# --------------------------------------------------------------------------- probing


class _CountingReader:
    """A binary file handed to PyAV that counts the bytes FFmpeg reads from it."""

    def __init__(self, handle: Any) -> None:
        self.handle = handle
        self.bytes = 0

    def read(self, size: int = -1) -> bytes:
        data = self.handle.read(size)
        self.bytes += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self.handle.seek(offset, whence)

    def tell(self) -> int:
        return self.handle.tell()


class _Unopenable(Exception):
    """FFmpeg found no container format it can open in the bytes."""


def _still(format_name: str) -> bool:
    return any(n in _STILL_FORMATS or n.endswith("_pipe") for n in format_name.split(","))


def _verdict(source: Any) -> str | None:
    """None when FFmpeg opens the binary file object ``source`` with a video stream (not a
    still image, not an album cover); otherwise why not.

    Raises:
        _Unopenable: FFmpeg cannot open it at all.
    """
    try:
        container = av.open(source, "r")
    except (av.FFmpegError, UnicodeDecodeError, ValueError, EOFError) as err:
        why = getattr(err, "strerror", None) or str(err) or type(err).__name__
        raise _Unopenable(why) from err
    with container:
        name = container.format.name
        if _still(name):
            return f"a still image ({name})"
        cover = av.stream.Disposition.attached_pic
        moving = [s for s in container.streams if not s.disposition & cover]
        if not any(s.type == "video" for s in moving):
            kinds = ", ".join(sorted({str(s.type) for s in moving})) or "no streams"
            return f"no video stream ({name}: {kinds})"
    return None


def _probe_content(location: str) -> tuple[str | None, int]:
    """``(why it is not a video or None, bytes read)`` for a file or object.

    A local file is handed to FFmpeg as an open file, so the format is guessed from the
    content alone, never from the name. Of a remote object the first :data:`PROBE_HEAD`
    bytes are probed in memory; only where FFmpeg cannot open those (a format that keeps
    its index at the end) is the whole object copied to scratch space and probed there.
    """
    if store.is_local(location):
        with open(_local_path(location), "rb") as handle:
            source = _CountingReader(handle)
            try:
                return _verdict(source), source.bytes
            except _Unopenable as err:
                return f"FFmpeg cannot open it ({err})", source.bytes
    head = store.read_head(location, PROBE_HEAD)
    try:
        return _verdict(io.BytesIO(head)), len(head)
    except _Unopenable as err:
        if len(head) < PROBE_HEAD:  # that was the whole object
            return f"FFmpeg cannot open it ({err})", len(head)
    with store.local_copy(location) as local:
        verdict, _ = _probe_content(str(local))
        return verdict, len(head) + local.stat().st_size


def not_a_video(location: str | os.PathLike[str]) -> str | None:
    """Why the file or object at ``location`` is not a clip; None when it is one.

    A clip is what FFmpeg (PyAV) opens with a video stream, whatever the file's name:
    MP4, MOV, Matroska, WebM, AVI, MPEG-TS (``.ts``, ``.m2ts``, ``.mts``), MXF and any
    other container this FFmpeg reads. A still image (PNG, JPEG, GIF, ...), a file with
    only audio (or only an album cover) and a file FFmpeg cannot open are not.

    Raises:
        OSError: the file cannot be read.
    """
    return _probe_content(store.normalise(location))[0]


# --------------------------------------------------------------------------- fingerprints


def fingerprint(location: str | os.PathLike[str]) -> str:
    """A fast content fingerprint: blake2b (128 bit, hex) of the size and both ends.

    Hashes the file size, the first 4 MiB and the last 4 MiB (the whole file when it is
    at most 8 MiB). It ignores names and timestamps, so a copied file keeps its
    fingerprint (on any store: a clip uploaded to S3 has the fingerprint it had on disk);
    a re-encode, a trim or an appended byte changes it. An edit confined to the middle of
    a file larger than 8 MiB that keeps its size is not seen: video files are not edited
    in place, so this trade buys a read of at most 8 MiB per clip. Remote objects are
    read with two ranged reads through ``pyarrow.fs`` (``open_input_file``).

    Args:
        location: a local path or a URI (see :mod:`hoopray.store`).
    """
    return _fingerprint(os.fspath(location))[0]


def _fingerprint(location: str, size: int | None = None) -> tuple[str, int]:
    """``(fingerprint, bytes read)``; ``size`` is the file size where already known."""
    digest = hashlib.blake2b(digest_size=16, person=_FP_PERSON)
    text = store.normalise(location)
    if store.is_local(text):
        with open(text, "rb") as handle:
            return _digest(digest, handle, os.fstat(handle.fileno()).st_size)
    fs, inner = store.filesystem(text)
    with fs.open_input_file(inner) as handle:
        return _digest(digest, handle, handle.size() if size is None else size)


def _digest(digest: Any, handle: Any, size: int) -> tuple[str, int]:
    digest.update(size.to_bytes(8, "little"))
    head = handle.read(FINGERPRINT_CHUNK)
    digest.update(head)
    read = len(head)
    if size > FINGERPRINT_CHUNK:
        handle.seek(max(FINGERPRINT_CHUNK, size - FINGERPRINT_CHUNK))
        tail = handle.read(FINGERPRINT_CHUNK)
        digest.update(tail)
        read += len(tail)
    return digest.hexdigest(), read


class FingerprintCache:
    """The fingerprints of one game's clips, keyed by file name, kept while unchanged.

    An entry holds the ``(size, mtime_ns, inode)`` the file had when it was fingerprinted;
    :meth:`get` returns the fingerprint only while all three are the same, so an unchanged
    clip is never read again. Local files use ``os.stat`` (size, ``st_mtime_ns``,
    ``st_ino``): replacing a file (a new copy renamed over it) changes the inode even
    where the copy kept size and mtime. Object stores give size and last-modified time
    only (``pyarrow.fs.FileInfo`` exposes no ETag), so the inode is 0 there and an
    overwrite with an object of the same size within the store's timestamp resolution
    (one second on S3) goes unseen. Where a store reports no modification time at all
    (mtime 0), :meth:`get` never hits and such clips are read on every run.

    It also keeps the probe verdict of each file that is a clip by its content, not by
    its name (:func:`not_a_video`), under the same rule, so that an unchanged file is not
    opened again: :meth:`get_probe` and :meth:`put_probe`.

    :attr:`changed` tells whether :meth:`save` has anything to write. Stored as JSON; a
    file written for another fingerprint scheme (:data:`FINGERPRINT_SCHEME`) loads empty.
    """

    VERSION = 1
    IS_VIDEO = ""  # the probe verdict of a video

    def __init__(self) -> None:
        self._entries: dict[str, tuple[int, int, int, str]] = {}
        self._probes: dict[str, tuple[int, int, int, str]] = {}
        self.changed = False

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def get(self, name: str, size: int, mtime_ns: int, inode: int = 0) -> str | None:
        """The stored fingerprint of ``name`` if it was taken of a file with this size,
        mtime and inode; None otherwise (and always when ``mtime_ns`` is unknown, 0)."""
        entry = self._entries.get(name)
        if entry is None or not mtime_ns or entry[:3] != (size, mtime_ns, inode):
            return None
        return entry[3]

    def put(self, name: str, size: int, mtime_ns: int, inode: int, fingerprint: str) -> None:
        """Remember ``fingerprint`` for ``name`` as it is now (size, mtime, inode)."""
        entry = (int(size), int(mtime_ns), int(inode), fingerprint)
        if self._entries.get(name) != entry:
            self._entries[name] = entry
            self.changed = True

    def get_probe(self, name: str, size: int, mtime_ns: int, inode: int = 0) -> str | None:
        """The stored probe verdict of ``name`` under the rule of :meth:`get`:
        :attr:`IS_VIDEO` (``""``) for a video, the reason it is not one otherwise, None when
        unknown."""
        entry = self._probes.get(name)
        if entry is None or not mtime_ns or entry[:3] != (size, mtime_ns, inode):
            return None
        return entry[3]

    def put_probe(
        self, name: str, size: int, mtime_ns: int, inode: int, reason: str | None
    ) -> None:
        """Remember the probe verdict of ``name``: None (a video) or why it is not one."""
        entry = (int(size), int(mtime_ns), int(inode), reason or self.IS_VIDEO)
        if self._probes.get(name) != entry:
            self._probes[name] = entry
            self.changed = True

    def retain(self, names: Iterable[str]) -> None:
        """Forget every file not in ``names`` (files that were removed or renamed)."""
        keep = set(names)
        for entries in (self._entries, self._probes):
            for name in [n for n in entries if n not in keep]:
                del entries[name]
                self.changed = True

    def to_json(self) -> str:
        clips = {
            name: {"size": size, "mtime_ns": mtime, "inode": inode, "fingerprint": fp}
            for name, (size, mtime, inode, fp) in sorted(self._entries.items())
        }
        payload: dict[str, Any] = {
            "version": self.VERSION,
            "scheme": FINGERPRINT_SCHEME,
            "clips": clips,
        }
        if self._probes:
            payload["probes"] = {
                name: {"size": size, "mtime_ns": mtime, "inode": inode, "verdict": verdict}
                for name, (size, mtime, inode, verdict) in sorted(self._probes.items())
            }
        return json.dumps(payload, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FingerprintCache:
        """Parse :meth:`to_json` output; another version or scheme gives an empty cache.

        Raises:
            ValueError: text that is not a cache.
        """
        payload = json.loads(text)
        cache = cls()
        if not isinstance(payload, dict) or not all(
            isinstance(payload.get(key, {}), dict) for key in ("clips", "probes")
        ):
            raise ValueError("not a fingerprint cache")
        if payload.get("version") != cls.VERSION or payload.get("scheme") != FINGERPRINT_SCHEME:
            return cache
        try:
            for entries, key, value in (
                (cache._entries, "clips", "fingerprint"),
                (cache._probes, "probes", "verdict"),
            ):
                for name, item in payload.get(key, {}).items():
                    entries[str(name)] = (
                        int(item["size"]),
                        int(item["mtime_ns"]),
                        int(item["inode"]),
                        str(item[value]),
                    )
        except (KeyError, TypeError, ValueError) as err:
            raise ValueError(f"not a fingerprint cache: {err}") from err
        return cache

    @classmethod
    def load(cls, location: str) -> FingerprintCache:
        """The cache stored at ``location``; empty when it is missing or unreadable (a
        cache only saves reads, so a damaged one is logged and rebuilt, never fatal)."""
        try:
            text = store.read_text(location)
        except FileNotFoundError:
            return cls()
        except (OSError, UnicodeDecodeError) as err:
            log.warning("%s: fingerprint cache not read (%s); rebuilding it", location, err)
            return cls()
        try:
            return cls.from_json(text)
        except ValueError as err:
            log.warning("%s: fingerprint cache is damaged (%s); rebuilding it", location, err)
            return cls()

    def save(self, location: str) -> None:
        """Write the cache to ``location`` as one whole object and clear :attr:`changed`."""
        store.write_text(location, self.to_json())
        self.changed = False


class FingerprintCaches:
    """One :class:`FingerprintCache` per game in a directory: ``<directory>/<game_id>.json``.

    Pass an instance as ``fingerprints`` to :func:`discover_games` (it is called with each
    game id and loads that game's cache once), then call :meth:`save`.

    Example:
        >>> caches = FingerprintCaches(f"{out}/_manifest/fingerprints")  # doctest: +SKIP
        >>> games = discover_games(root, fingerprints=caches)  # doctest: +SKIP
        >>> written = caches.save()  # doctest: +SKIP
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = store.normalise(directory)
        self.loaded: dict[str, FingerprintCache] = {}

    def location(self, game_id: str) -> str:
        return store.join(self.directory, f"{store.check_id(game_id, 'game_id')}.json")

    def __call__(self, game_id: str) -> FingerprintCache:
        if game_id not in self.loaded:
            self.loaded[game_id] = FingerprintCache.load(self.location(game_id))
        return self.loaded[game_id]

    def save(self) -> list[str]:
        """Write every loaded cache that changed; the locations written."""
        written = []
        for game_id, cache in sorted(self.loaded.items()):
            if cache.changed:
                location = self.location(game_id)
                cache.save(location)
                written.append(location)
        return written


# --------------------------------------------------------------------------- discovery


def sanitise_id(name: str) -> str:
    """An id safe in paths and partitions: ASCII letters, digits, ``-``, ``_``, ``.``.

    Every other character becomes ``_``, runs of dots become ``_`` (so never ``..``) and
    a leading dot becomes ``_``.
    """
    safe = _DOT_RUNS.sub("_", _UNSAFE_ID_CHARS.sub("_", name))
    if safe.startswith("."):
        safe = "_" + safe[1:]
    return safe or "_"


@dataclass
class GameInput:
    """One game folder found by :func:`discover_games`.

    Attributes:
        game_id: the folder name, sanitised like clip ids.
        directory: the folder: an absolute local path or a URI.
        roster_path: the location of ``roster.yaml`` in the folder, or None.
        clips: usable clips in file-name order (``path``: a local path or a URI).
        problems: ``(name, reason)`` for every file (or the folder itself) that could
            not be used.
        folder_problems: those of ``problems`` that are about the folder itself (or a
            folder whose id collides with it), not about one of its files.
        skipped: ``(name, reason)`` for every file that is not a video (the reason starts
            with "not a video: "); ``roster.yaml``, label tables and hidden files are
            neither clips nor skipped.
        bytes_read: bytes of file content read to probe and fingerprint this game's files
            (0 when every verdict and fingerprint came from the cache).
        fingerprints_cached: clips whose fingerprint came from the cache unread.
    """

    game_id: str
    directory: str
    roster_path: str | None
    clips: list[ClipRef] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)
    folder_problems: list[tuple[str, str]] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    bytes_read: int = 0
    fingerprints_cached: int = 0

    def folder_problem(self, name: str, reason: str) -> None:
        """Record a problem of the folder itself (in ``problems`` and ``folder_problems``)."""
        self.problems.append((name, reason))
        self.folder_problems.append((name, reason))


CacheSource = Mapping[str, FingerprintCache] | Callable[[str], FingerprintCache | None]


@dataclass(frozen=True)
class _File:
    """A file of a game folder, stat-ed: where ``problem`` and ``skip`` are None it is a
    non-empty regular file whose size, mtime and inode (0 on object stores) are known.
    ``skip`` says why a file that is no clip by name cannot be a video at all."""

    name: str
    location: str
    size: int = 0
    mtime_ns: int = 0
    inode: int = 0
    problem: str | None = None
    skip: str | None = None


def _display(name: str) -> str:
    """``name`` with undecodable bytes (surrogate escapes) shown as U+FFFD."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _undecodable(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def video_by_name(name: str) -> bool:
    """Whether ``name`` ends in one of :data:`VIDEO_SUFFIXES` (any case)."""
    return PurePosixPath(name).suffix.lower() in VIDEO_SUFFIXES


def _is_candidate(name: str) -> bool:
    """A file that discovery looks at: not hidden, not a label table."""
    return not name.startswith(".") and PurePosixPath(name).suffix.lower() not in LABEL_SUFFIXES


def _local_file(entry: os.DirEntry[str], real_root: Path) -> _File:
    """Stat one local directory entry and say why it cannot be used as a clip, if so."""
    named = video_by_name(entry.name)
    try:
        link = entry.is_symlink()
    except OSError:
        link = False
    if link:
        try:
            target = Path(entry.path).resolve(strict=True)
        except (OSError, RuntimeError):
            return _File(entry.name, entry.path, problem="broken symlink")
        if not _inside(target, real_root):
            return _File(entry.name, entry.path, problem="symlink points outside the games root")
    try:
        st = entry.stat(follow_symlinks=True)
    except OSError as err:
        return _File(entry.name, entry.path, problem=f"cannot read file ({err.strerror or err})")
    if not stat.S_ISREG(st.st_mode):
        if not named:
            return _File(entry.name, entry.path, skip="not a regular file")
        return _File(entry.name, entry.path, problem="not a regular file")
    if st.st_size == 0:
        if not named:
            return _File(entry.name, entry.path, skip="empty file (0 bytes)")
        return _File(entry.name, entry.path, problem="empty file (0 bytes)")
    if not os.access(entry.path, os.R_OK):
        return _File(entry.name, entry.path, problem="cannot read file (permission denied)")
    return _File(entry.name, entry.path, st.st_size, st.st_mtime_ns, st.st_ino)


def _list_local_game(directory: str, real_root: Path) -> list[_File]:
    """One ``scandir`` of a local game folder: its visible candidate files, stat-ed.

    Folders inside a game are left out (a folder named like a clip is reported). ``os.scandir``
    rather than :func:`hoopray.store.list_dir`: pyarrow's local listing leaves out broken
    symlinks and fails on names that are not UTF-8, and both must be reported here.
    """
    with os.scandir(directory) as listing:
        entries = sorted((e for e in listing if _is_candidate(e.name)), key=lambda e: e.name)
    files = []
    for entry in entries:
        if entry.name != ROSTER_FILE and not video_by_name(entry.name) and _is_folder(entry):
            continue
        if entry.name == ROSTER_FILE:  # read later by the roster loader, which says what is wrong
            roster_problem = None if entry.is_file() else "not a regular file"
            files.append(_File(entry.name, entry.path, problem=roster_problem))
            continue
        if _undecodable(entry.name):
            files.append(_File(_display(entry.name), "", problem="file name is not valid UTF-8"))
            continue
        files.append(_local_file(entry, real_root))
    return files


def _list_remote_game(directory: str) -> list[_File]:
    """One :func:`hoopray.store.list_dir` of a prefix: its visible candidate objects."""
    files = []
    for entry in store.list_dir(directory):
        if entry.is_dir or not _is_candidate(entry.name):
            continue
        location = f"{directory}/{entry.name}"
        if entry.size == 0 and entry.name != ROSTER_FILE:
            if not video_by_name(entry.name):
                files.append(_File(entry.name, location, skip="empty file (0 bytes)"))
                continue
            files.append(_File(entry.name, location, problem="empty file (0 bytes)"))
            continue
        files.append(_File(entry.name, location, entry.size, entry.mtime_ns))
    return files


def _is_folder(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir(follow_symlinks=True)
    except OSError:
        return False


def _probe_verdict(
    item: _File, cache: FingerprintCache | None, game: GameInput
) -> tuple[str | None, str | None]:
    """``(why it is not a video, problem)`` of a file that is no clip by its name: the
    cached verdict while the file is unchanged, else a probe (counted in ``bytes_read``)."""
    if item.skip is not None:
        return item.skip, None
    verdict = None if cache is None else cache.get_probe(item.name, *_stamp(item))
    if verdict is not None:
        return verdict or None, None
    try:
        reason, read = _probe_content(item.location)
    except OSError as err:
        return None, f"cannot read file ({getattr(err, 'strerror', None) or err})"
    game.bytes_read += read
    if cache is not None:
        cache.put_probe(item.name, *_stamp(item), reason)
    return reason, None


def _stamp(item: _File) -> tuple[int, int, int]:
    return item.size, item.mtime_ns, item.inode


def _discover_game(
    game_id: str,
    name: str,
    directory: str,
    real_root: Path | None,
    cache: FingerprintCache | None,
) -> GameInput:
    game = GameInput(game_id=game_id, directory=directory, roster_path=None)
    try:
        if real_root is not None:
            files = _list_local_game(directory, real_root)
        else:
            files = _list_remote_game(directory)
    except OSError as err:
        game.folder_problem(name, f"cannot list folder ({err.strerror or err})")
        return game
    owners: dict[str, str] = {}
    probed: list[str] = []
    for item in files:
        if item.name == ROSTER_FILE:
            if item.problem is None:
                game.roster_path = item.location
            continue
        problem = item.problem
        if problem is None and not video_by_name(item.name):
            reason, problem = _probe_verdict(item, cache, game)
            probed.append(item.name)
            if reason is not None:
                game.skipped.append((item.name, f"not a video: {reason}"))
                continue
        clip_id = sanitise_id(PurePosixPath(item.name).stem)
        if problem is None and clip_id in owners:
            problem = f"clip id {clip_id!r} collides with {owners[clip_id]!r}; skipped"
        fp = None
        if problem is None and cache is not None:
            fp = cache.get(item.name, item.size, item.mtime_ns, item.inode)
            if fp is not None:
                game.fingerprints_cached += 1
        if problem is None and fp is None:
            try:
                fp, read = _fingerprint(item.location, item.size)
            except OSError as err:
                problem = f"cannot read file ({getattr(err, 'strerror', None) or err})"
            else:
                game.bytes_read += read
                if cache is not None:
                    cache.put(item.name, item.size, item.mtime_ns, item.inode, fp)
        if problem is not None or fp is None:
            game.problems.append((item.name, problem or "cannot read file"))
            continue
        owners[clip_id] = item.name
        game.clips.append(
            ClipRef(
                game_id=game_id,
                clip_id=clip_id,
                path=item.location,
                fingerprint=fp,
                size=int(item.size or 0),
            )
        )
    if cache is not None:
        cache.retain([*owners.values(), *probed])
    if not game.clips:
        game.folder_problem(name, "no usable clips (no file here opens as a video)")
    return game


def _cache_lookup(fingerprints: CacheSource | None) -> Callable[[str], FingerprintCache | None]:
    if fingerprints is None:
        return lambda game_id: None
    if isinstance(fingerprints, Mapping):
        return fingerprints.get
    return fingerprints


def _local_game_folders(root: str) -> Iterator[tuple[str, str, str | None]]:
    """``(name, location, problem)`` of each visible folder in a local root (one scandir)."""
    real_root = Path(root).resolve()
    with os.scandir(root) as listing:
        entries = sorted((e for e in listing if not e.name.startswith(".")), key=lambda e: e.name)
    for entry in entries:
        try:
            is_dir = entry.is_dir(follow_symlinks=True)
        except OSError:
            is_dir = False
        if not is_dir:
            if video_by_name(entry.name):
                log.warning("%s: clips must sit in a game folder; ignored", _display(entry.path))
            continue
        problem = None
        if _undecodable(entry.name):
            problem = "folder name is not valid UTF-8"
        elif entry.is_symlink() and not _inside(Path(entry.path).resolve(), real_root):
            problem = "symlink points outside the games root"
        yield _display(entry.name), _display(entry.path), problem


def _remote_game_folders(root: str) -> Iterator[tuple[str, str, str | None]]:
    """``(name, location, None)`` of each visible prefix under a remote root (one listing)."""
    entries = store.list_dir(root)
    if not entries and not store.is_dir(root):
        raise NotADirectoryError(f"games root {root} is not a directory (no objects under it)")
    for entry in entries:
        if entry.name.startswith("."):
            continue
        if not entry.is_dir:
            if video_by_name(entry.name):
                log.warning("%s/%s: clips must sit in a game folder; ignored", root, entry.name)
            continue
        yield entry.name, f"{root}/{entry.name}", None


def discover_games(
    root: str | os.PathLike[str], *, fingerprints: CacheSource | None = None
) -> list[GameInput]:
    """Find every game folder under ``root`` and its clips, sorted by game id.

    ``root`` is a local directory or an object-store prefix (any :mod:`hoopray.store`
    URI; there a "folder" is a prefix). Each visible subfolder of ``root`` is a game and
    every file in it that FFmpeg opens with a video stream is a clip: by its name when it
    ends in one of :data:`VIDEO_SUFFIXES` (any case), otherwise by its content
    (:func:`not_a_video`). Every other file is listed in ``skipped`` with the reason,
    except ``roster.yaml``, label tables (:data:`LABEL_SUFFIXES`) and names starting with
    a dot, which are ignored, as are loose files in ``root`` and folders inside a game.
    Nothing usable is dropped without a word: a clip whose id collides with an earlier one
    (in name order), a symlink that leaves the root or leads nowhere, a clip file that is
    not regular or is empty, an unreadable file, a name that is not UTF-8, and a game
    without clips are listed in ``problems``. A game folder whose id collides with an
    earlier one is skipped and listed in the earlier game's problems.

    Each folder is listed once (the root once, each game once). A clip by name is read
    only to fingerprint it; another file is opened once to probe it. Neither is read at
    all when its game's cache knows the file unchanged (a probe's verdict is cached too).

    Args:
        root: the games root.
        fingerprints: per-game fingerprint caches: a mapping or a callable from game id to
            a :class:`FingerprintCache` (or None for no cache), e.g. a
            :class:`FingerprintCaches`. Caches are updated in place (see ``changed``).

    Returns:
        The games; locations in them are absolute local paths (symlinks kept as found,
        not resolved) or URIs.

    Raises:
        NotADirectoryError: ``root`` is not a directory (or a prefix with no objects).
    """
    text = store.normalise(root)
    lookup = _cache_lookup(fingerprints)
    real_root: Path | None = None
    if store.is_local(text):
        if not os.path.isdir(text):
            raise NotADirectoryError(f"games root {text} is not a directory")
        real_root = Path(text).resolve()
        folders = _local_game_folders(text)
    else:
        folders = _remote_game_folders(text)
    games: dict[str, GameInput] = {}
    names: dict[str, str] = {}
    for name, location, problem in folders:
        game_id = sanitise_id(name)
        if game_id in games:
            reason = f"game id {game_id!r} collides with {names[game_id]!r}; skipped"
            games[game_id].folder_problem(name, reason)
            continue
        names[game_id] = name
        if problem is not None:
            games[game_id] = GameInput(game_id=game_id, directory=location, roster_path=None)
            games[game_id].folder_problem(name, problem)
            continue
        games[game_id] = _discover_game(game_id, name, location, real_root, _cache(lookup, game_id))
    return [games[key] for key in sorted(games)]


def _cache(
    lookup: Callable[[str], FingerprintCache | None], game_id: str
) -> FingerprintCache | None:
    """The game's cache; None (fingerprint by reading) when it cannot be had, since a cache
    only saves reads (an id the output layout refuses is reported by the stage that
    writes it)."""
    try:
        return lookup(game_id)
    except (OSError, ValueError) as err:
        log.warning("%s: no fingerprint cache (%s); fingerprinting by reading", game_id, err)
        return None
