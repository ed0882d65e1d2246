from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest

from hoopray import video
from hoopray.video import (
    DecodeStats,
    H264Writer,
    VideoError,
    discover_games,
    fingerprint,
    iter_frames,
    probe,
    read_frames_at,
    sanitise_id,
)


def _frames(count: int, width: int, height: int) -> list[np.ndarray]:
    """Frames with a distinct flat grey level each and a white marker top-left."""
    out = []
    for i in range(count):
        frame = np.full((height, width, 3), 20 + 15 * i, dtype=np.uint8)
        frame[: height // 4, : width // 4] = 255
        out.append(frame)
    return out


def _write(path: Path, frames: list[np.ndarray], width: int, height: int) -> Path:
    with H264Writer(path, width, height, 30) as writer:
        for frame in frames:
            writer.write(frame)
    return path


def _write_pyav(
    path: Path,
    frames: list[np.ndarray],
    codec: str,
    pix_fmt: str,
    rotation: int = 0,
) -> Path:
    height, width = frames[0].shape[:2]
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for frame in frames:
            video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format=pix_fmt)
            for packet in stream.encode(video_frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    if rotation:
        _set_display_rotation(path, rotation)
    return path


def _set_display_rotation(path: Path, degrees: int) -> None:
    """Write a display matrix rotating by ``degrees`` counter-clockwise into the mp4's
    track header (what phones do); PyAV 14 has no API for it."""
    data = bytearray(path.read_bytes())
    at = data.index(b"tkhd")
    assert data[at + 4] == 0, "version-0 tkhd expected"
    matrix_at = at + 4 + 40
    one, minus_one = 0x00010000, 0xFFFF0000
    cos, sin = {90: (0, 1), 180: (-1, 0), 270: (0, -1)}[degrees]
    fixed = {1: one, 0: 0, -1: minus_one}
    # FFmpeg reads the matrix [a b; c d] and reports rotation = -atan2(b, a) clockwise.
    values = [fixed[cos], fixed[-sin], 0, fixed[sin], fixed[cos], 0, 0, 0, 0x40000000]
    data[matrix_at : matrix_at + 36] = b"".join(v.to_bytes(4, "big") for v in values)
    path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("video") / "clip.mp4"
    return _write(path, _frames(12, 64, 48), 64, 48)


def test_round_trip_probe_and_frames(clip: Path) -> None:
    info = probe(clip)
    assert (info.width, info.height, info.frames, info.rotation) == (64, 48, 12, 0)
    assert info.fps == pytest.approx(30.0)
    assert info.duration == pytest.approx(12 / 30, abs=0.05)
    decoded = list(iter_frames(clip))
    assert [i for i, _ in decoded] == list(range(12))
    for (_, frame), expected in zip(decoded, _frames(12, 64, 48), strict=True):
        assert frame.shape == (48, 64, 3) and frame.dtype == np.uint8
        assert np.abs(frame.astype(int) - expected).mean() < 4


@pytest.mark.parametrize(
    ("stride", "start", "stop", "expected"),
    [
        (1, 0, None, list(range(12))),
        (3, 0, None, [0, 3, 6, 9]),
        (2, 5, None, [5, 7, 9, 11]),
        (1, 4, 7, [4, 5, 6]),
        (4, 1, 100, [1, 5, 9]),
        (1, 12, None, []),
        (1, 5, 5, []),
    ],
)
def test_iter_frames_range(
    clip: Path, stride: int, start: int, stop: int | None, expected: list[int]
) -> None:
    assert [i for i, _ in iter_frames(clip, stride=stride, start=start, stop=stop)] == expected


@pytest.mark.parametrize(("stride", "start", "stop"), [(0, 0, None), (1, -1, None), (1, 5, 4)])
def test_iter_frames_bad_range(clip: Path, stride: int, start: int, stop: int | None) -> None:
    with pytest.raises(ValueError, match="bad frame range"):
        list(iter_frames(clip, stride=stride, start=start, stop=stop))


def test_odd_size_is_padded_to_even(tmp_path: Path) -> None:
    frames = [np.zeros((719, 1279, 3), np.uint8) for _ in range(2)]
    for frame in frames:
        frame[:, -1] = 250  # last column, repeated into the padding
    path = _write(tmp_path / "odd.mp4", frames, 1279, 719)
    info = probe(path)
    assert (info.width, info.height) == (1280, 720)
    _, decoded = next(iter_frames(path))
    assert decoded.shape == (720, 1280, 3)
    assert decoded[:, -1].mean() > 200 and decoded[:, :1200].mean() < 10


@pytest.mark.parametrize(
    ("codec", "pix_fmt", "name"),
    [("libx264", "yuv444p", "yuv444.mp4"), ("ffv1", "gray", "grey.mkv")],
)
def test_other_pixel_formats_come_out_rgb(
    tmp_path: Path, codec: str, pix_fmt: str, name: str
) -> None:
    frames = _frames(3, 32, 24)
    path = _write_pyav(tmp_path / name, frames, codec, pix_fmt)
    decoded = list(iter_frames(path))
    assert len(decoded) == 3
    for (_, frame), expected in zip(decoded, frames, strict=True):
        assert frame.shape == (24, 32, 3) and frame.dtype == np.uint8
        assert np.abs(frame.astype(int) - expected).mean() < 4


@pytest.mark.parametrize(("rotation", "shape"), [(0, (24, 32, 3)), (90, (32, 24, 3))])
def test_rotation_metadata_is_applied(tmp_path: Path, rotation: int, shape: tuple) -> None:
    frame = np.zeros((24, 32, 3), np.uint8)
    frame[:6, :8] = 255  # top-left marker
    path = _write_pyav(tmp_path / "rot.mp4", [frame] * 2, "libx264", "yuv420p", rotation)
    info = probe(path)
    assert info.rotation == rotation
    assert (info.height, info.width, 3) == shape
    _, decoded = next(iter_frames(path))
    assert decoded.shape == shape
    expected = np.ascontiguousarray(np.rot90(frame, k=rotation // 90))
    assert np.abs(decoded.astype(int) - expected).mean() < 8


def _audio_only(path: Path) -> None:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda p: None, "file not found"),
        (lambda p: p.write_bytes(b""), "empty file"),
        (lambda p: p.write_text("this is not a video\n" * 20), "not a readable video"),
        (lambda p: p.mkdir(), "not a regular file"),
        (_audio_only, "no video stream"),
    ],
    ids=["missing", "zero-bytes", "text", "directory", "audio-only"],
)
def test_unusable_files_raise_video_error(tmp_path: Path, make, reason: str) -> None:
    path = tmp_path / "bad.mkv"
    make(path)
    with pytest.raises(VideoError, match=reason):
        probe(path)
    with pytest.raises(VideoError, match=reason):
        next(iter_frames(path))


def test_truncated_stream_yields_what_it_can(tmp_path: Path) -> None:
    frames = [np.random.default_rng(i).integers(0, 255, (48, 64, 3), np.uint8) for i in range(30)]
    path = tmp_path / "cut.mkv"
    _write(path, frames, 64, 48)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    got = [i for i, _ in iter_frames(path)]
    assert 0 < len(got) < 30
    assert got == list(range(len(got)))


@pytest.mark.parametrize(
    ("declared", "decoded", "stop", "refused"),
    [
        (None, 0, None, False),  # no count declared (Matroska): nothing to check
        (0, 0, None, False),
        (1, 0, None, False),  # one frame may go missing
        (30, 30, None, False),
        (30, 29, None, False),
        (30, 28, None, True),
        (300, 297, None, False),  # 1% of the clip
        (300, 296, None, True),
        (300, 10, 10, False),  # observed up to ``stop`` only
        (300, 8, 10, True),
        (5, 5, 10, False),  # stop beyond the clip's end
    ],
)
def test_check_frame_count(
    declared: int | None, decoded: int, stop: int | None, refused: bool
) -> None:
    if not refused:
        video.check_frame_count("c.mp4", declared, decoded, stop)
        return
    expected = declared if stop is None else min(declared, stop)
    message = f"c.mp4: truncated or corrupt: decoded {decoded} of the {expected} frames"
    with pytest.raises(VideoError, match=message):
        video.check_frame_count("c.mp4", declared, decoded, stop)


def test_corrupt_header_with_no_frames_raises(tmp_path: Path, clip: Path) -> None:
    path = tmp_path / "head.mp4"
    path.write_bytes(clip.read_bytes()[:200])
    with pytest.raises(VideoError):
        list(iter_frames(path))


def _no_leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_writer_removes_temp_file_when_body_raises(tmp_path: Path) -> None:
    target = tmp_path / "out.mp4"
    with pytest.raises(RuntimeError, match="boom"), H264Writer(target, 64, 48, 30) as writer:
        writer.write(np.zeros((48, 64, 3), np.uint8))
        raise RuntimeError("boom")
    assert _no_leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("frame", "error"),
    [
        (np.zeros((48, 63, 3), np.uint8), ValueError),
        (np.zeros((48, 64, 3), np.float32), ValueError),
        (np.zeros((48, 64), np.uint8), ValueError),
    ],
)
def test_writer_rejects_bad_frames_and_leaves_nothing(
    tmp_path: Path, frame: np.ndarray, error: type
) -> None:
    with pytest.raises(error), H264Writer(tmp_path / "out.mp4", 64, 48, 30) as writer:
        writer.write(frame)
    assert _no_leftovers(tmp_path) == []


def test_writer_without_frames_writes_nothing(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no frames"), H264Writer(tmp_path / "o.mp4", 64, 48, 30):
        pass
    assert _no_leftovers(tmp_path) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [((0, 48, 30), "bad frame size"), ((64, 48, 0), "bad fps"), ((64, 48, 30), "must end")],
)
def test_writer_bad_arguments(tmp_path: Path, args: tuple, message: str) -> None:
    name = "o.avi" if message == "must end" else "o.mp4"
    with pytest.raises(ValueError, match=message):
        H264Writer(tmp_path / name, *args)


def test_writer_output_is_faststart_h264(clip: Path) -> None:
    data = clip.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")
    with av.open(str(clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert stream.codec_context.pix_fmt == "yuv420p"


@pytest.mark.parametrize(
    ("size", "change_at", "changes"),
    [
        (0, None, False),
        (1000, None, False),
        (1000, 0, True),
        (1000, 999, True),
        (9 << 20, (9 << 20) - 10, True),  # in the last 4 MiB
        (9 << 20, 10, True),  # in the first 4 MiB
        (9 << 20, 4 << 20 | 512 << 10, False),  # the unread middle, documented
    ],
)
def test_fingerprint(tmp_path: Path, size: int, change_at: int | None, changes: bool) -> None:
    data = bytearray(np.random.default_rng(size).integers(0, 256, size, np.uint8).tobytes())
    original = tmp_path / "a.mp4"
    original.write_bytes(data)
    copy = tmp_path / "copy.mp4"
    shutil.copyfile(original, copy)
    assert fingerprint(copy) == fingerprint(original)
    if change_at is not None:
        data[change_at] ^= 0xFF
        copy.write_bytes(data)
        assert (fingerprint(copy) != fingerprint(original)) == changes


def test_fingerprint_of_appended_file_differs(tmp_path: Path) -> None:
    path = tmp_path / "a.mp4"
    path.write_bytes(b"x" * 100)
    before = fingerprint(path)
    path.write_bytes(b"x" * 101)
    assert fingerprint(path) != before


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "_"),
        ("clip-01_a.b", "clip-01_a.b"),
        ("my clip", "my_clip"),
        ("a..b", "a_b"),
        ("..", "_"),
        (".x", "_x"),
        ("Ünï cödé", "_n__c_d_"),
        ("a/b\\c", "a_b_c"),
    ],
)
def test_sanitise_id(name: str, expected: str) -> None:
    assert sanitise_id(name) == expected


def _touch(path: Path, data: bytes = b"not decoded by discovery") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


@pytest.mark.parametrize(
    ("files", "clip_ids", "problems"),
    [
        ([], [], {"g": "no usable clips"}),
        (["notes.txt", ".hidden.mp4", "sub/x.mp4"], [], {"g": "no usable clips"}),
        (["b.mp4", "a.MOV", "c.mkv", "roster.txt"], ["a", "b", "c"], {}),
        (
            ["my clip.mp4", "my_clip.mp4", "other.mp4"],
            ["my_clip", "other"],
            {"my_clip.mp4": "collides with 'my clip.mp4'"},
        ),
        (["x.mp4", "x.mov"], ["x"], {"x.mp4": "collides with 'x.mov'"}),
        (["Ünï.mkv", "é.mp4"], ["_n_", "_"], {}),
        (["a..b.mp4"], ["a_b"], {}),
        (["empty.mp4:0", "ok.mp4"], ["ok"], {"empty.mp4": "empty file"}),
    ],
    ids=[
        "empty",
        "nothing-usable",
        "suffixes",
        "collision",
        "same-stem",
        "unicode",
        "dots",
        "zero",
    ],
)
def test_discover_game_table(
    tmp_path: Path, files: list[str], clip_ids: list[str], problems: dict[str, str]
) -> None:
    root = tmp_path / "root"
    (root / "g").mkdir(parents=True)
    for spec in files:
        name, _, size = spec.partition(":")
        _touch(root / "g" / name, b"" if size == "0" else b"clip bytes")
    (game,) = discover_games(root)
    assert game.game_id == "g"
    assert [c.clip_id for c in game.clips] == clip_ids
    assert all(c.game_id == "g" and c.fingerprint == fingerprint(c.path) for c in game.clips)
    assert [name for name, _ in game.problems] == list(problems)
    for (_, reason), expected in zip(game.problems, problems.values(), strict=True):
        assert expected in reason


def test_discover_symlinks(tmp_path: Path) -> None:
    root = tmp_path / "root"
    outside = tmp_path / "outside.mp4"
    _touch(outside)
    _touch(root / "g" / "real.mp4")
    _touch(root / "shared" / "pool.mp4")
    (root / "g" / "escape.mp4").symlink_to(outside)
    (root / "g" / "inside.mp4").symlink_to(root / "shared" / "pool.mp4")
    (root / "g" / "broken.mp4").symlink_to(root / "nowhere.mp4")
    (root / "linked").symlink_to(tmp_path, target_is_directory=True)
    games = {g.game_id: g for g in discover_games(root)}
    g = games["g"]
    assert [c.clip_id for c in g.clips] == ["inside", "real"]
    assert dict(g.problems) == {
        "broken.mp4": "broken symlink",
        "escape.mp4": "symlink points outside the games root",
    }
    assert games["linked"].clips == []
    assert games["linked"].problems == [("linked", "symlink points outside the games root")]


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_discover_unreadable_file(tmp_path: Path) -> None:
    _touch(tmp_path / "g" / "locked.mp4")
    (tmp_path / "g" / "locked.mp4").chmod(0)
    (game,) = discover_games(tmp_path)
    assert game.problems[0] == ("locked.mp4", "cannot read file (permission denied)")


def test_discover_root_layout(tmp_path: Path) -> None:
    _touch(tmp_path / "game 2" / "c.mp4")
    _touch(tmp_path / "game_2" / "d.mp4")
    _touch(tmp_path / "game-1" / "a.mp4")
    _touch(tmp_path / "game-1" / "roster.yaml", b"teams: []")
    _touch(tmp_path / ".cache" / "x.mp4")
    _touch(tmp_path / "loose.mp4")
    games = discover_games(tmp_path)
    assert [g.game_id for g in games] == ["game-1", "game_2"]
    assert games[0].roster_path == str(tmp_path / "game-1" / "roster.yaml")
    assert games[0].directory == str(tmp_path / "game-1")
    assert games[1].roster_path is None
    assert [c.path for c in games[1].clips] == [str(tmp_path / "game 2" / "c.mp4")]
    assert games[1].problems == [("game_2", "game id 'game_2' collides with 'game 2'; skipped")]


@pytest.mark.parametrize("make", [lambda p: None, lambda p: p.write_text("x")])
def test_discover_root_must_be_a_directory(tmp_path: Path, make) -> None:
    root = tmp_path / "root"
    make(root)
    with pytest.raises(NotADirectoryError):
        discover_games(root)


def test_discover_empty_root(tmp_path: Path) -> None:
    assert discover_games(tmp_path) == []


# --------------------------------------------------------------------------- read_frames_at


def _numbered(index: int, width: int = 64, height: int = 48) -> np.ndarray:
    """A smooth gradient that moves with ``index`` and the index as 8x8 binary squares:
    compressible (no scene cuts), yet any two frames differ."""
    ys, xs = np.mgrid[0:height, 0:width]
    frame = np.empty((height, width, 3), np.uint8)
    frame[..., 0] = (xs * 3 + index * 5) % 256
    frame[..., 1] = (ys * 4 + index * 3) % 256
    frame[..., 2] = 128
    for bit in range(9):
        frame[:8, bit * 7 : bit * 7 + 6] = 255 if index >> bit & 1 else 0
    return frame


def _encode(
    path: Path,
    count: int,
    codec: str = "libx264",
    options: dict[str, str] | None = None,
    pix_fmt: str = "yuv420p",
    stamps_ms: list[int] | None = None,
) -> Path:
    """``count`` numbered frames at 30 fps, or at ``stamps_ms`` (variable frame rate)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=30, options=options or {})
        stream.width, stream.height, stream.pix_fmt = 64, 48, pix_fmt
        if stamps_ms is not None:
            stream.codec_context.time_base = Fraction(1, 1000)
        for i in range(count):
            frame = av.VideoFrame.from_ndarray(_numbered(i), format="rgb24").reformat(
                format=pix_fmt
            )
            if stamps_ms is not None:
                frame.pts, frame.time_base = stamps_ms[i], Fraction(1, 1000)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def _x264(keyint: int, bframes: int, extra: str = "") -> dict[str, str]:
    params = f"keyint={keyint}:min-keyint={keyint}:scenecut=0:bframes={bframes}{extra}"
    return {"x264-params": params, "preset": "veryfast"}


_VFR_MS = [i * 33 + (i % 3) * 9 + (i // 25) * 120 for i in range(120)]

CLIPS: dict[str, Callable[[Path], Path]] = {
    "cfr-bframes-gop10.mp4": lambda p: _encode(p, 120, options=_x264(10, 3)),
    "cfr-bframes-gop10.mkv": lambda p: _encode(p, 120, options=_x264(10, 3)),
    "long-gop-writer.mp4": lambda p: _write(p, [_numbered(i) for i in range(90)], 64, 48),
    "short-gop3.mp4": lambda p: _encode(p, 60, options=_x264(3, 0)),
    "open-gop.mp4": lambda p: _encode(p, 120, options=_x264(12, 3, ":open-gop=1")),
    "vfr.mp4": lambda p: _encode(p, 120, options=_x264(10, 2), stamps_ms=_VFR_MS),
    "vfr.mkv": lambda p: _encode(p, 120, options=_x264(10, 2), stamps_ms=_VFR_MS),
    "intra-ffv1.mkv": lambda p: _encode(p, 40, codec="ffv1", pix_fmt="yuv444p"),
    "mpeg4-bframes.mp4": lambda p: _encode(p, 120, "mpeg4", {"g": "15", "bf": "2"}),
    "one-frame.mp4": lambda p: _encode(p, 1, options=_x264(10, 3)),
    "rotated.mp4": lambda p: _write_pyav(
        p, [_numbered(i) for i in range(40)], "libx264", "yuv420p", rotation=90
    ),
}

INDEX_SETS: dict[str, list[int]] = {
    "first": [0],
    "unsorted-repeats-past-end": [5, 3, 3, 500, 0],
    "every-7th": list(range(0, 130, 7)),
    "every-30th": list(range(0, 130, 30)),
    "sparse": [2, 17, 18, 40, 63, 64, 65, 99, 111],
    "run": list(range(9, 14)),
    "last": [119, 89, 59, 39],
    "none": [],
    "past-end": [1000],
}


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, dict]]:
    """Each clip of :data:`CLIPS` with all its frames as :func:`iter_frames` gives them."""
    folder = tmp_path_factory.mktemp("seek")
    made = {}
    for name, make in CLIPS.items():
        path = make(folder / name)
        made[name] = (path, dict(iter_frames(path)))
    return made


def test_test_clips_have_distinct_frames(clips: dict[str, tuple[Path, dict]]) -> None:
    for name, (_, frames) in clips.items():
        assert list(frames) == list(range(len(frames))), name
        for i in range(1, len(frames)):
            assert not np.array_equal(frames[i - 1], frames[i]), (name, i)


@pytest.mark.parametrize("indices", list(INDEX_SETS.values()), ids=list(INDEX_SETS))
@pytest.mark.parametrize("name", list(CLIPS))
def test_read_frames_at_equals_iter_frames(
    clips: dict[str, tuple[Path, dict]], name: str, indices: list[int]
) -> None:
    path, frames = clips[name]
    stats = DecodeStats()
    got = list(read_frames_at(path, indices, stats=stats))
    assert [i for i, _ in got] == sorted({i for i in indices if i in frames})
    for index, frame in got:
        assert frame.dtype == np.uint8 and frame.shape == frames[index].shape
        np.testing.assert_array_equal(frame, frames[index], err_msg=f"{name} frame {index}")
    assert stats.sequential == 0  # the seeking path did it, not the fallback


def test_read_frames_at_rotates_upright(clips: dict[str, tuple[Path, dict]]) -> None:
    path, _ = clips["rotated.mp4"]
    (_, frame), *_ = read_frames_at(path, [7])
    assert frame.shape == (64, 48, 3)
    expected = np.rot90(_numbered(7), k=1)
    assert np.abs(frame.astype(int) - expected).mean() < 8


def test_read_frames_at_accepts_a_range(clips: dict[str, tuple[Path, dict]]) -> None:
    path, _ = clips["cfr-bframes-gop10.mp4"]
    got = [i for i, _ in read_frames_at(path, range(4, 10**12, 25))]
    assert got == [4, 29, 54, 79, 104]


@pytest.mark.parametrize(("start", "most"), [(0, 20), (15, 200)])
def test_read_frames_at_decodes_only_what_it_samples(tmp_path: Path, start: int, most: int) -> None:
    path = _encode(tmp_path / "gop30.mp4", 300, options=_x264(30, 3))
    stats = DecodeStats()
    got = [i for i, _ in read_frames_at(path, range(start, 300, 30), stats=stats)]
    assert got == list(range(start, 300, 30))
    assert stats.packets <= most and stats.frames <= most
    assert stats.seeks >= 10 and stats.sequential == 0


def test_read_frames_at_goes_on_without_seeking_when_close(tmp_path: Path) -> None:
    path = _encode(tmp_path / "gop30.mp4", 60, options=_x264(30, 0))
    stats = DecodeStats()
    assert [i for i, _ in read_frames_at(path, [2, 5, 9], stats=stats)] == [2, 5, 9]
    assert stats.seeks == 1 and stats.packets == 10


@pytest.mark.parametrize("breakage", ["no-table", "wrong-table"])
def test_read_frames_at_falls_back_to_decoding_from_the_start(
    clips: dict[str, tuple[Path, dict]], monkeypatch: pytest.MonkeyPatch, breakage: str
) -> None:
    path, frames = clips["cfr-bframes-gop10.mp4"]
    real = video._frame_table

    def broken(container, stream):  # type: ignore[no-untyped-def]
        if breakage == "no-table":
            return None
        table = real(container, stream)
        pts = list(table.pts)
        pts[31], pts[32] = pts[32], pts[31]  # the decoder will disagree at frame 31
        return video._FrameTable(pts, {p: i for i, p in enumerate(pts)}, table.keyframes)

    monkeypatch.setattr(video, "_frame_table", broken)
    stats = DecodeStats()
    wanted = [3, 31, 32, 77]
    got = list(read_frames_at(path, wanted, stats=stats))
    assert [i for i, _ in got] == wanted
    for index, frame in got:
        np.testing.assert_array_equal(frame, frames[index])
    assert stats.sequential == 1


@pytest.mark.parametrize("indices", [[-1], [3, -2], range(-5, 5)])
def test_read_frames_at_rejects_negative_indices(clip: Path, indices) -> None:
    with pytest.raises(ValueError, match="bad frame index"):
        list(read_frames_at(clip, indices))


def test_read_frames_at_needs_a_local_readable_video(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="not a local file"):
        list(read_frames_at("s3://bucket/clip.mp4", [0]))
    with pytest.raises(VideoError, match="file not found"):
        list(read_frames_at(tmp_path / "missing.mp4", [0]))
    (tmp_path / "text.mp4").write_text("not a video\n" * 20)
    with pytest.raises(VideoError, match="not a readable video"):
        list(read_frames_at(tmp_path / "text.mp4", [0]))


def test_read_frames_at_on_a_truncated_clip_yields_what_decodes(tmp_path: Path) -> None:
    path = _encode(tmp_path / "cut.mkv", 90, options=_x264(10, 2))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    full = dict(iter_frames(path))
    got = list(read_frames_at(path, range(0, 90, 4)))
    assert len(got) > 0 and [i for i, _ in got] == [i for i in range(0, 90, 4) if i in full]
    for index, frame in got:
        np.testing.assert_array_equal(frame, full[index])


# --------------------------------------------------------------------------- containers

# extension -> (FFmpeg muxer, video codec, muxer options): every container a game folder may
# hold; .m4v is Apple's MPEG-4 (the "ipod" muxer), .m2ts and .mts are BDAV transport streams.
CONTAINERS = {
    "mp4": ("mp4", "libx264", {}),
    "mov": ("mov", "libx264", {}),
    "mkv": ("matroska", "libx264", {}),
    "avi": ("avi", "mpeg4", {}),
    "ts": ("mpegts", "libx264", {}),
    "m2ts": ("mpegts", "libx264", {"mpegts_m2ts_mode": "1"}),
    "mts": ("mpegts", "libx264", {"mpegts_m2ts_mode": "1"}),
    "mxf": ("mxf", "mpeg2video", {}),
    "webm": ("webm", "libvpx-vp9", {}),
    "m4v": ("ipod", "libx264", {}),
}


def _write_container(path: Path, muxer: str, codec: str, options: dict[str, str]) -> Path:
    """Six 64x48 frames in ``muxer``; skips the test where this FFmpeg cannot write it."""
    if codec not in av.codecs_available:
        pytest.skip(f"this FFmpeg build has no {codec} encoder (for {path.suffix})")
    try:
        container = av.open(str(path), "w", format=muxer, container_options=options)
    except (ValueError, av.FFmpegError) as err:
        pytest.skip(f"this FFmpeg build cannot write {muxer} ({path.suffix}): {err}")
    with container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for frame in _frames(6, 64, 48):
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


@pytest.mark.parametrize("ext", list(CONTAINERS))
def test_every_container_is_a_clip(tmp_path: Path, ext: str) -> None:
    """By its name in any case, without a probe; by its content under any other name; and
    it decodes."""
    game = tmp_path / "root" / "g"
    game.mkdir(parents=True)
    clip = _write_container(game / f"Q1-Cam.{ext.upper()}", *CONTAINERS[ext])
    shutil.copy(clip, game / "q2 feed")  # no suffix: found by its content
    shutil.copy(clip, game / "q3.dat")
    (found,) = discover_games(tmp_path / "root")
    assert [(c.clip_id, Path(c.path).name) for c in found.clips] == [
        ("Q1-Cam", clip.name),
        ("q2_feed", "q2 feed"),
        ("q3", "q3.dat"),
    ]
    assert (found.problems, found.skipped) == ([], [])
    assert video.video_by_name(clip.name) and video.not_a_video(clip) is None
    info = probe(game / "q2 feed")
    assert (info.width, info.height) == (64, 48)
    assert [i for i, _ in iter_frames(clip)] == list(range(6))


def _write_audio(path: Path) -> Path:
    with av.open(str(path), "w", format="wav") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        silence = np.zeros((1, 800), np.int16)
        frame = av.AudioFrame.from_ndarray(silence, format="s16", layout="mono")
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def test_files_that_are_not_videos_are_skipped_with_a_reason(tmp_path: Path) -> None:
    from PIL import Image

    game = tmp_path / "root" / "g"
    game.mkdir(parents=True)
    _write(game / "clip.mp4", _frames(3, 64, 48), 64, 48)
    _touch(game / "notes.txt", b"minutes of the meeting\n")
    _touch(game / "empty.txt", b"")
    _touch(game / "broken.MP4", b"a clip by name: observe says what is wrong")
    _touch(game / "roster.yaml", b"teams: []\n")
    _touch(game / "clip.parquet", b"PAR1 a label table")
    _touch(game / ".DS_Store", b"hidden")
    _touch(game / "extras" / "b-roll.txt", b"a folder inside a game")
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(game / "team photo.png")
    _write_audio(game / "commentary.wav")
    os.mkfifo(game / "pipe")
    (found,) = discover_games(tmp_path / "root")
    assert [c.clip_id for c in found.clips] == ["broken", "clip"]
    assert found.problems == [] and found.roster_path == str(game / "roster.yaml")
    assert dict(found.skipped) == {
        "commentary.wav": "not a video: no video stream (wav: audio)",
        "empty.txt": "not a video: empty file (0 bytes)",
        "notes.txt": "not a video: FFmpeg cannot open it (Invalid data found when "
        "processing input)",
        "pipe": "not a video: not a regular file",
        "team photo.png": "not a video: a still image (png_pipe)",
    }
    assert found.bytes_read > 0


def test_probing_reads_the_content_not_the_name(tmp_path: Path) -> None:
    clip = _write(tmp_path / "a.mp4", _frames(2, 32, 32), 32, 32)
    shutil.copy(clip, tmp_path / "a.txt")
    _touch(tmp_path / "b.mp4", b"text named like a video")
    assert video.not_a_video(tmp_path / "a.txt") is None
    assert video.not_a_video(tmp_path / "b.mp4") is not None
    with pytest.raises(OSError):
        video.not_a_video(tmp_path / "missing")
