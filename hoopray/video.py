"""Video input and output: probe, streaming decode, H.264 writing, fingerprints, discovery.

Decoding and encoding use PyAV (FFmpeg). Frames are RGB ``uint8`` arrays of shape
``(H, W, 3)``, already rotated as the file's display matrix asks, so a portrait phone
clip comes out upright.

A games root is laid out as ``<root>/<game_id>/<clip>.mp4`` (``.mov`` and ``.mkv`` too)
with an optional ``<root>/<game_id>/roster.yaml``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np

from hoopray.types import ClipRef

log = logging.getLogger(__name__)

CLIP_SUFFIXES = (".mp4", ".mov", ".mkv")
ROSTER_FILE = "roster.yaml"
FINGERPRINT_CHUNK = 4 * 1024 * 1024

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
    path = Path(path)
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
    path = Path(path)
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


def check_complete(path: str | Path, decoded: int, stop: int | None = None) -> None:
    """Refuse a clip that decoded fewer frames than its container declares.

    :func:`iter_frames` ends quietly (with a logged warning) where a stream breaks; a
    caller that needs the whole clip checks the count it got here. One frame, or 1% of
    the clip, may go missing (edit lists can hide a frame); a container that declares no
    count (Matroska) passes.

    Args:
        path: the clip.
        decoded: how many frames were decoded.
        stop: the ``stop`` given to :func:`iter_frames`, if any.

    Raises:
        VideoError: the clip looks truncated or corrupt.
    """
    declared = probe(path).frames
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


# --------------------------------------------------------------------------- discovery


def fingerprint(path: str | Path) -> str:
    """A fast content fingerprint: blake2b (128 bit, hex) of the size and both ends.

    Hashes the file size, the first 4 MiB and the last 4 MiB (the whole file when it is
    at most 8 MiB). It ignores names and timestamps, so a copied file keeps its
    fingerprint; a re-encode, a trim or an appended byte changes it. An edit confined to
    the middle of a file larger than 8 MiB that keeps its size is not seen: video files
    are not edited in place, so this trade buys a read of at most 8 MiB per clip.
    """
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.blake2b(digest_size=16, person=b"hoopray-fp-v1")
    digest.update(size.to_bytes(8, "little"))
    with path.open("rb") as fh:
        digest.update(fh.read(FINGERPRINT_CHUNK))
        if size > FINGERPRINT_CHUNK:
            fh.seek(max(FINGERPRINT_CHUNK, size - FINGERPRINT_CHUNK))
            digest.update(fh.read(FINGERPRINT_CHUNK))
    return digest.hexdigest()


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
        directory: the folder.
        roster_path: ``roster.yaml`` in the folder, or None.
        clips: usable clips in file-name order.
        problems: ``(name, reason)`` for every file (or the folder itself) left out.
    """

    game_id: str
    directory: Path
    roster_path: Path | None
    clips: list[ClipRef] = field(default_factory=list)
    problems: list[tuple[str, str]] = field(default_factory=list)


def _inside(path: Path, root: Path) -> bool:
    return path == root or root in path.parents


def _visible_entries(directory: Path) -> list[Path]:
    return sorted(
        (p for p in directory.iterdir() if not p.name.startswith(".")), key=lambda p: p.name
    )


def _clip_problem(path: Path, root: Path) -> str | None:
    """Why a clip file cannot be used, or None."""
    if path.is_symlink():
        if not path.exists():
            return "broken symlink"
        if not _inside(path.resolve(), root):
            return "symlink points outside the games root"
    if not path.is_file():
        return "not a regular file"
    if path.stat().st_size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "cannot read file (permission denied)"
    return None


def _discover_game(game_id: str, directory: Path, root: Path) -> GameInput:
    game = GameInput(game_id=game_id, directory=directory, roster_path=None)
    roster = directory / ROSTER_FILE
    if roster.is_file():
        game.roster_path = roster
    owners: dict[str, str] = {}
    try:
        entries = _visible_entries(directory)
    except OSError as err:
        game.problems.append((directory.name, f"cannot list folder ({err.strerror or err})"))
        return game
    for entry in entries:
        if entry.suffix.lower() not in CLIP_SUFFIXES:
            continue
        problem = _clip_problem(entry, root)
        clip_id = sanitise_id(entry.stem)
        if problem is None and clip_id in owners:
            problem = f"clip id {clip_id!r} collides with {owners[clip_id]!r}; skipped"
        fp = ""
        if problem is None:
            try:
                fp = fingerprint(entry)
            except OSError as err:
                problem = f"cannot read file ({err.strerror or err})"
        if problem is not None:
            game.problems.append((entry.name, problem))
            continue
        owners[clip_id] = entry.name
        game.clips.append(ClipRef(game_id=game_id, clip_id=clip_id, path=entry, fingerprint=fp))
    if not game.clips:
        game.problems.append((directory.name, "no usable clips (.mp4, .mov, .mkv)"))
    return game


def discover_games(root: str | Path) -> list[GameInput]:
    """Find every game folder under ``root`` and its clips, sorted by game id.

    Each visible subfolder of ``root`` is a game; its ``*.mp4``, ``*.mov`` and ``*.mkv``
    files (any case) are its clips. Names starting with a dot are ignored, and so are
    loose files in ``root`` and folders inside a game. Nothing usable is dropped without
    a word: a clip whose id collides with an earlier one (in name order), a symlink that
    leaves the root, an empty or unreadable file, and a game without clips are listed in
    ``problems``. A game folder whose id collides with an earlier one is skipped and
    listed in the earlier game's problems.

    Raises:
        NotADirectoryError: ``root`` is not a directory.
    """
    root = Path(root)
    if not root.is_dir():
        raise NotADirectoryError(f"games root {root} is not a directory")
    real_root = root.resolve()
    games: dict[str, GameInput] = {}
    for entry in _visible_entries(root):
        if not entry.is_dir():
            if entry.suffix.lower() in CLIP_SUFFIXES:
                log.warning("%s: clips must sit in a game folder; ignored", entry)
            continue
        game_id = sanitise_id(entry.name)
        if game_id in games:
            games[game_id].problems.append(
                (
                    entry.name,
                    f"game id {game_id!r} collides with {games[game_id].directory.name!r}; skipped",
                )
            )
            continue
        if entry.is_symlink() and not _inside(entry.resolve(), real_root):
            games[game_id] = GameInput(
                game_id=game_id,
                directory=entry,
                roster_path=None,
                problems=[(entry.name, "symlink points outside the games root")],
            )
            continue
        games[game_id] = _discover_game(game_id, entry, real_root)
    return [games[key] for key in sorted(games)]
