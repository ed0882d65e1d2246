"""Discovery through :mod:`hoopray.store` (local disk and object stores) and the
fingerprint cache that lets an unchanged clip go unread."""

from __future__ import annotations

import logging
import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from hoopray import store, video
from hoopray.video import (
    FINGERPRINT_SCHEME,
    FingerprintCache,
    FingerprintCaches,
    discover_games,
    fingerprint,
)


class TimedMemoryFileSystem(MemoryFileSystem):
    """fsspec's memory filesystem reporting each file's write time as its mtime, as object
    stores report last-modified (the plain one reports none)."""

    def ls(self, path: str, detail: bool = True, **kwargs: Any) -> list[Any]:
        out = super().ls(path, detail=detail, **kwargs)
        return [_with_mtime(item) for item in out] if detail else out

    def find(self, path: str, *args: Any, detail: bool = False, **kwargs: Any) -> Any:
        out = super().find(path, *args, detail=detail, **kwargs)
        return {name: _with_mtime(item) for name, item in out.items()} if detail else out

    def info(self, path: str, **kwargs: Any) -> dict[str, Any]:
        return _with_mtime(super().info(path, **kwargs))


def _with_mtime(item: dict[str, Any]) -> dict[str, Any]:
    created = item.get("created")
    if item.get("type") != "file" or created is None:
        return item
    if not isinstance(created, datetime):  # ls gives a timestamp, info a datetime
        created = datetime.fromtimestamp(created, tz=UTC)
    return {**item, "mtime": created}


@pytest.fixture(scope="module", autouse=True)
def _schemes() -> None:
    store.register_filesystem("mem", fsspec.filesystem("memory"))
    store.register_filesystem("tmem", TimedMemoryFileSystem())


def _fresh_root(scheme: str) -> Iterator[str]:
    root = f"{scheme}://bucket-{uuid.uuid4().hex}/games"
    yield root
    memory = MemoryFileSystem.store  # shared by every memory filesystem instance
    for key in [k for k in memory if k.startswith(root)]:
        del memory[key]


@pytest.fixture(params=["mem", "tmem"])
def remote_root(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh games root on an in-memory object store, without and with mtimes."""
    yield from _fresh_root(request.param)


@pytest.fixture
def timed_root() -> Iterator[str]:
    """A fresh games root on an in-memory store that reports last-modified times."""
    yield from _fresh_root("tmem")


@pytest.fixture
def untimed_root() -> Iterator[str]:
    """A fresh games root on an in-memory store that reports no modification times."""
    yield from _fresh_root("mem")


def _put(location: str, data: bytes = b"clip bytes, not decoded by discovery") -> str:
    return store.write_bytes(location, data)


def _touch(path: Path, data: bytes = b"clip bytes, not decoded by discovery") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# --------------------------------------------------------------------------- object stores


def test_filesystem_path_form_of_a_registered_scheme() -> None:
    # fsspec's memory filesystem strips only "memory://", so the URI is its own key.
    _, path = store.filesystem("mem://x/y")
    assert path == "mem://x/y"


def test_remote_discovery_layout(remote_root: str) -> None:
    _put(f"{remote_root}/game-1/b.mp4")
    _put(f"{remote_root}/game-1/a.MOV", b"other bytes")
    _put(f"{remote_root}/game-1/roster.yaml", b"teams: []")
    _put(f"{remote_root}/game-1/notes.txt")
    _put(f"{remote_root}/game-1/.hidden.mp4")
    _put(f"{remote_root}/game-1/sub/x.mp4")
    _put(f"{remote_root}/game-1/empty.mkv", b"")
    _put(f"{remote_root}/game-1/my clip.mp4")
    _put(f"{remote_root}/game-1/my_clip.mp4")
    _put(f"{remote_root}/game 2/c.mp4")
    _put(f"{remote_root}/game_2/d.mp4")
    _put(f"{remote_root}/.cache/x.mp4")
    _put(f"{remote_root}/loose.mp4")
    _put(f"{remote_root}/nothing/readme.txt")
    games = discover_games(remote_root)
    assert [g.game_id for g in games] == ["game-1", "game_2", "nothing"]
    one, two, nothing = games
    assert one.directory == f"{remote_root}/game-1"
    assert one.roster_path == f"{remote_root}/game-1/roster.yaml"
    assert [(c.clip_id, c.path) for c in one.clips] == [
        ("a", f"{remote_root}/game-1/a.MOV"),
        ("b", f"{remote_root}/game-1/b.mp4"),
        ("my_clip", f"{remote_root}/game-1/my clip.mp4"),
    ]
    assert dict(one.problems) == {
        "empty.mkv": "empty file (0 bytes)",
        "my_clip.mp4": "clip id 'my_clip' collides with 'my clip.mp4'; skipped",
    }
    assert [c.path for c in two.clips] == [f"{remote_root}/game 2/c.mp4"]
    assert two.roster_path is None
    assert two.problems == [("game_2", "game id 'game_2' collides with 'game 2'; skipped")]
    assert two.folder_problems == two.problems
    assert nothing.problems == [("nothing", "no usable clips (no file here opens as a video)")]
    not_video = "not a video: FFmpeg cannot open it (Invalid data found when processing input)"
    assert one.skipped == [("notes.txt", not_video)]
    assert nothing.skipped == [("readme.txt", not_video)]


def test_remote_fingerprints_match_local_ones(remote_root: str, tmp_path: Path) -> None:
    data = os.urandom(9 << 20)  # both ends are read: 4 MiB head, 4 MiB tail
    _put(f"{remote_root}/g/big.mp4", data)
    _touch(tmp_path / "g" / "big.mp4", data)
    ((remote,),) = [g.clips for g in discover_games(remote_root)]
    ((local,),) = [g.clips for g in discover_games(tmp_path)]
    assert remote.fingerprint == local.fingerprint == fingerprint(local.path)
    assert fingerprint(remote.path) == remote.fingerprint


def test_remote_listing_is_one_call_per_folder(
    remote_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for game in ("a", "b", "c"):
        for clip in ("1.mp4", "2.mkv", "roster.yaml"):
            _put(f"{remote_root}/{game}/{clip}")
    calls: list[str] = []
    real = store.list_dir
    monkeypatch.setattr(store, "list_dir", lambda loc: calls.append(loc) or real(loc))
    monkeypatch.setattr(store, "is_dir", lambda loc: pytest.fail("no extra probe expected"))
    monkeypatch.setattr(store, "exists", lambda loc: pytest.fail("no per-file probe expected"))
    monkeypatch.setattr(store, "info", lambda loc: pytest.fail("no per-file probe expected"))
    games = discover_games(remote_root)
    assert [len(g.clips) for g in games] == [2, 2, 2]
    assert calls == [remote_root] + [f"{remote_root}/{g}" for g in "abc"]


@pytest.mark.parametrize("make", ["missing", "object"])
def test_remote_root_must_be_a_prefix(remote_root: str, make: str) -> None:
    if make == "object":
        _put(remote_root)
    with pytest.raises(NotADirectoryError):
        discover_games(remote_root)


def test_unreadable_remote_clip_is_a_problem(
    remote_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _put(f"{remote_root}/g/a.mp4")
    _put(f"{remote_root}/g/b.mp4")
    real = video._fingerprint

    def flaky(location: str, size: int | None = None) -> tuple[str, int]:
        if location.endswith("a.mp4"):
            raise PermissionError("AWS Error ACCESS_DENIED")
        return real(location, size)

    monkeypatch.setattr(video, "_fingerprint", flaky)
    (game,) = discover_games(remote_root)
    assert [c.clip_id for c in game.clips] == ["b"]
    assert game.problems == [("a.mp4", "cannot read file (AWS Error ACCESS_DENIED)")]


# --------------------------------------------------------------------------- local roots


def test_local_locations_are_absolute_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _touch(tmp_path / "games" / "g" / "a.mp4")
    _touch(tmp_path / "games" / "g" / "roster.yaml", b"teams: []")
    monkeypatch.chdir(tmp_path)
    (game,) = discover_games("games")
    base = str(tmp_path / "games" / "g")
    assert (game.directory, game.roster_path) == (base, f"{base}/roster.yaml")
    assert [c.path for c in game.clips] == [f"{base}/a.mp4"]
    assert all(isinstance(c.path, str) for c in game.clips)


def test_local_listing_is_one_scandir_per_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for game in ("a", "b"):
        for clip in ("1.mp4", "2.mp4", "roster.yaml", "x.txt"):
            _touch(tmp_path / game / clip)
    calls: list[str] = []
    real = os.scandir
    monkeypatch.setattr(os, "scandir", lambda p: calls.append(os.fspath(p)) or real(p))
    assert [len(g.clips) for g in discover_games(tmp_path)] == [2, 2]
    assert calls == [str(tmp_path), str(tmp_path / "a"), str(tmp_path / "b")]


def test_non_utf8_names_are_problems(tmp_path: Path) -> None:
    root = os.fsencode(tmp_path)
    os.makedirs(root + b"/g")
    Path(os.fsdecode(root + b"/g/\xffclip.mp4")).write_bytes(b"x")
    Path(os.fsdecode(root + b"/g/ok.mp4")).write_bytes(b"x")
    os.makedirs(root + b"/bad\xfe/")
    Path(os.fsdecode(root + b"/bad\xfe/c.mp4")).write_bytes(b"x")
    games = {g.game_id: g for g in discover_games(tmp_path)}
    assert [c.clip_id for c in games["g"].clips] == ["ok"]
    assert games["g"].problems == [("\ufffdclip.mp4", "file name is not valid UTF-8")]
    assert games["bad_"].clips == []
    assert games["bad_"].problems == [("bad\ufffd", "folder name is not valid UTF-8")]


def test_fifo_and_symlink_loop_are_problems(tmp_path: Path) -> None:
    _touch(tmp_path / "g" / "ok.mp4")
    os.mkfifo(tmp_path / "g" / "pipe.mp4")
    (tmp_path / "g" / "loop.mp4").symlink_to(tmp_path / "g" / "loop.mp4")
    (game,) = discover_games(tmp_path)
    assert [c.clip_id for c in game.clips] == ["ok"]
    assert dict(game.problems) == {"loop.mp4": "broken symlink", "pipe.mp4": "not a regular file"}


# --------------------------------------------------------------------------- fingerprint cache


def _no_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(location: str, size: int | None = None) -> tuple[str, int]:
        raise AssertionError(f"{location} was read")

    monkeypatch.setattr(video, "_fingerprint", fail)


def test_local_cache_hit_reads_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("a.mp4", "b.mov", "c.mkv"):
        _touch(tmp_path / "g" / name, os.urandom(1000))
    caches: dict[str, FingerprintCache] = {"g": FingerprintCache()}
    (first,) = discover_games(tmp_path, fingerprints=caches)
    assert first.bytes_read == 3000 and first.fingerprints_cached == 0
    assert caches["g"].changed and len(caches["g"]) == 3
    caches["g"].changed = False
    _no_reads(monkeypatch)
    (again,) = discover_games(tmp_path, fingerprints=caches)
    assert again.bytes_read == 0 and again.fingerprints_cached == 3
    assert again.clips == first.clips
    assert not caches["g"].changed


@pytest.mark.parametrize("change", ["size", "mtime", "inode", "removed"])
def test_local_cache_misses_a_changed_file(tmp_path: Path, change: str) -> None:
    clip = _touch(tmp_path / "g" / "a.mp4", b"x" * 100)
    _touch(tmp_path / "g" / "b.mp4", b"y" * 100)
    cache = FingerprintCache()
    (before,) = discover_games(tmp_path, fingerprints=lambda game_id: cache)
    old = os.stat(clip)
    if change == "size":
        clip.write_bytes(b"x" * 101)
    elif change == "mtime":
        clip.write_bytes(b"z" * 100)  # same size, mtime moved on
        os.utime(clip, ns=(old.st_atime_ns, old.st_mtime_ns + 1_000_000_000))
    elif change == "inode":
        replacement = _touch(tmp_path / "new.bin", b"z" * 100)
        os.utime(replacement, ns=(old.st_atime_ns, old.st_mtime_ns))
        os.replace(replacement, clip)  # same size and mtime, another file
    else:
        clip.unlink()
    cache.changed = False
    (after,) = discover_games(tmp_path, fingerprints=lambda game_id: cache)
    assert cache.changed
    if change == "removed":
        assert [c.clip_id for c in after.clips] == ["b"] and after.bytes_read == 0
        assert "a.mp4" not in cache
        return
    assert after.bytes_read == os.stat(clip).st_size  # a.mp4 read again, b.mp4 not
    assert after.fingerprints_cached == 1
    assert after.clips[0].fingerprint != before.clips[0].fingerprint
    assert after.clips[0].fingerprint == fingerprint(clip)


def test_cache_does_not_hide_an_unreadable_or_emptied_file(tmp_path: Path) -> None:
    clip = _touch(tmp_path / "g" / "a.mp4", b"x" * 100)
    cache = FingerprintCache()
    discover_games(tmp_path, fingerprints={"g": cache})
    clip.write_bytes(b"")
    (game,) = discover_games(tmp_path, fingerprints={"g": cache})
    assert game.clips == [] and game.problems[0] == ("a.mp4", "empty file (0 bytes)")


def test_remote_cache_hit_reads_nothing(timed_root: str, monkeypatch: pytest.MonkeyPatch) -> None:
    _put(f"{timed_root}/g/a.mp4", b"a" * 500)
    _put(f"{timed_root}/g/b.mp4", b"b" * 700)
    cache = FingerprintCache()
    (first,) = discover_games(timed_root, fingerprints={"g": cache})
    assert first.bytes_read == 1200 and cache.changed
    cache.changed = False
    with monkeypatch.context() as patch:
        _no_reads(patch)
        (again,) = discover_games(timed_root, fingerprints={"g": cache})
    assert (again.bytes_read, again.fingerprints_cached, cache.changed) == (0, 2, False)
    assert again.clips == first.clips
    _put(f"{timed_root}/g/a.mp4", b"A" * 500)  # same size, newer last-modified
    (changed,) = discover_games(timed_root, fingerprints={"g": cache})
    assert (changed.bytes_read, changed.fingerprints_cached) == (500, 1)
    assert changed.clips[0].fingerprint != first.clips[0].fingerprint


def test_remote_store_without_mtimes_reads_every_run(untimed_root: str) -> None:
    _put(f"{untimed_root}/g/a.mp4", b"a" * 500)
    cache = FingerprintCache()
    for _ in range(2):
        (game,) = discover_games(untimed_root, fingerprints={"g": cache})
        assert (game.bytes_read, game.fingerprints_cached) == (500, 0)


def test_fingerprint_cache_round_trip() -> None:
    cache = FingerprintCache()
    assert not cache.changed and cache.get("a.mp4", 1, 2, 3) is None
    cache.put("a.mp4", 10, 20, 30, "f" * 32)
    cache.put("b c.mkv", 11, 21, 0, "e" * 32)
    assert cache.changed
    again = FingerprintCache.from_json(cache.to_json())
    assert not again.changed and len(again) == 2
    assert again.to_json() == cache.to_json()
    assert again.get("a.mp4", 10, 20, 30) == "f" * 32
    assert again.get("b c.mkv", 11, 21) == "e" * 32
    for other in [(11, 20, 30), (10, 21, 30), (10, 20, 31)]:
        assert again.get("a.mp4", *other) is None
    assert again.get("b c.mkv", 11, 0) is None  # an unknown mtime never hits
    again.put("a.mp4", 10, 20, 30, "f" * 32)
    assert not again.changed  # the same entry again changes nothing
    again.retain(["a.mp4"])
    assert again.changed and "b c.mkv" not in again


@pytest.mark.parametrize(
    ("text", "entries"),
    [
        ('{"version": 99, "scheme": "x", "clips": {"a": 1}}', 0),
        ('{"version": 1, "scheme": "hoopray-fp-v0", "clips": {}}', 0),
        (f'{{"version": 1, "scheme": "{FINGERPRINT_SCHEME}", "clips": {{}}}}', 0),
    ],
)
def test_fingerprint_cache_of_another_scheme_is_empty(text: str, entries: int) -> None:
    assert len(FingerprintCache.from_json(text)) == entries


@pytest.mark.parametrize(
    "text", ["[]", "{", '{"version": 1, "scheme": "S", "clips": {"a": {"size": 1}}}']
)
def test_fingerprint_cache_rejects_damaged_text(text: str) -> None:
    text = text.replace('"S"', f'"{FINGERPRINT_SCHEME}"')
    with pytest.raises(ValueError):
        FingerprintCache.from_json(text)


@pytest.mark.parametrize("where", ["local", "remote"])
def test_fingerprint_cache_load_and_save(
    tmp_path: Path, remote_root: str, where: str, caplog: pytest.LogCaptureFixture
) -> None:
    location = str(tmp_path / "fp" / "g.json") if where == "local" else f"{remote_root}/g.json"
    assert len(FingerprintCache.load(location)) == 0  # missing: empty
    cache = FingerprintCache()
    cache.put("a.mp4", 1, 2, 3, "abc")
    cache.save(location)
    assert not cache.changed
    assert FingerprintCache.load(location).get("a.mp4", 1, 2, 3) == "abc"
    store.write_text(location, "{not json")
    with caplog.at_level(logging.WARNING):
        assert len(FingerprintCache.load(location)) == 0
    assert "damaged" in caplog.text


def test_fingerprint_caches_per_game(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    games_root = tmp_path / "games"
    _touch(games_root / "g1" / "a.mp4")
    _touch(games_root / "g2" / "b.mp4")
    folder = str(tmp_path / "out" / "_manifest" / "fingerprints")
    caches = FingerprintCaches(folder)
    first = discover_games(games_root, fingerprints=caches)
    assert sum(g.bytes_read for g in first) > 0
    assert caches.save() == [f"{folder}/g1.json", f"{folder}/g2.json"]
    assert caches.save() == []  # nothing changed since
    _no_reads(monkeypatch)
    fresh = FingerprintCaches(folder)  # the next run, from the stored files
    again = discover_games(games_root, fingerprints=fresh)
    assert [g.bytes_read for g in again] == [0, 0]
    assert [g.clips for g in again] == [g.clips for g in first]
    assert fresh.save() == []


def test_roster_is_found_as_today(tmp_path: Path, untimed_root: str) -> None:
    """Any regular ``roster.yaml`` counts (the roster loader reports what is wrong in it),
    symlinks followed; a folder of that name does not."""
    _touch(tmp_path / "shared.yaml", b"teams: []")
    _touch(tmp_path / "games" / "empty" / "a.mp4")
    _touch(tmp_path / "games" / "empty" / "roster.yaml", b"")
    _touch(tmp_path / "games" / "linked" / "a.mp4")
    (tmp_path / "games" / "linked" / "roster.yaml").symlink_to(tmp_path / "shared.yaml")
    _touch(tmp_path / "games" / "folder" / "a.mp4")
    (tmp_path / "games" / "folder" / "roster.yaml").mkdir()
    games = {g.game_id: g for g in discover_games(tmp_path / "games")}
    assert games["empty"].roster_path == str(tmp_path / "games" / "empty" / "roster.yaml")
    assert games["linked"].roster_path == str(tmp_path / "games" / "linked" / "roster.yaml")
    assert games["folder"].roster_path is None
    assert all(g.problems == [] for g in games.values())
    _put(f"{untimed_root}/g/a.mp4")
    _put(f"{untimed_root}/g/roster.yaml", b"")
    (remote,) = discover_games(untimed_root)
    assert remote.roster_path == f"{untimed_root}/g/roster.yaml" and remote.problems == []


def test_a_cache_that_cannot_be_had_only_costs_reads(tmp_path: Path) -> None:
    long_name = "g" * 230  # a valid folder, but an id the output layout refuses
    _touch(tmp_path / "games" / long_name / "a.mp4")
    _touch(tmp_path / "games" / "ok" / "a.mp4")
    caches = FingerprintCaches(str(tmp_path / "fp"))
    games = discover_games(tmp_path / "games", fingerprints=caches)
    assert [len(g.clips) for g in games] == [1, 1]
    assert all(g.bytes_read > 0 for g in games)
    assert caches.save() == [str(tmp_path / "fp" / "ok.json")]


# --------------------------------------------------------------------------- probing by content


def _mp4_bytes(tmp_path: Path, frames: int = 4) -> bytes:
    """A small MP4 as PyAV writes it: its index (moov) after the frames, at the end."""
    import av
    import numpy as np

    path = tmp_path / f"made-{uuid.uuid4().hex[:6]}.mp4"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(frames):
            image = np.full((48, 64, 3), 20 * i % 256, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path.read_bytes()


def _no_probes(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(location: str) -> tuple[str | None, int]:
        raise AssertionError(f"{location} was probed")

    monkeypatch.setattr(video, "_probe_content", fail)


def test_an_unchanged_file_is_not_probed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = _mp4_bytes(tmp_path)
    _touch(tmp_path / "games" / "g" / "a.mp4", clip)  # a clip by name: never probed
    _touch(tmp_path / "games" / "g" / "feed", clip)  # a clip by content
    notes = _touch(tmp_path / "games" / "g" / "notes.txt", b"not a video\n")
    caches = FingerprintCaches(str(tmp_path / "fp"))
    (first,) = discover_games(tmp_path / "games", fingerprints=caches)
    assert [c.clip_id for c in first.clips] == ["a", "feed"]
    assert [name for name, _ in first.skipped] == ["notes.txt"]
    # both clips fingerprinted whole, the notes read by the probe, the feed probed too
    assert first.bytes_read > 2 * len(clip) + len(b"not a video\n")
    assert caches.save() == [str(tmp_path / "fp" / "g.json")]
    with monkeypatch.context() as patch:  # the nightly: a fresh process, the stored cache
        _no_probes(patch)
        _no_reads(patch)
        fresh = FingerprintCaches(str(tmp_path / "fp"))
        (again,) = discover_games(tmp_path / "games", fingerprints=fresh)
        assert (again.bytes_read, again.clips, again.skipped) == (0, first.clips, first.skipped)
        assert fresh.save() == []
    notes.write_bytes(_mp4_bytes(tmp_path))  # the same name, now a video
    (changed,) = discover_games(tmp_path / "games", fingerprints=fresh)
    assert [c.clip_id for c in changed.clips] == ["a", "feed", "notes"]
    assert changed.skipped == [] and changed.bytes_read > 0
    notes.unlink()
    (removed,) = discover_games(tmp_path / "games", fingerprints=fresh)
    assert "notes.txt" not in fresh("g").to_json() and len(removed.clips) == 2


def test_probe_verdicts_round_trip_in_the_cache() -> None:
    cache = FingerprintCache()
    assert cache.get_probe("x", 1, 2, 3) is None
    cache.put_probe("notes.txt", 10, 20, 30, "FFmpeg cannot open it")
    cache.put_probe("feed", 11, 21, 31, None)
    again = FingerprintCache.from_json(cache.to_json())
    assert again.get_probe("notes.txt", 10, 20, 30) == "FFmpeg cannot open it"
    assert again.get_probe("feed", 11, 21, 31) == FingerprintCache.IS_VIDEO == ""
    assert again.get_probe("feed", 11, 22, 31) is None  # changed since
    assert again.get_probe("feed", 11, 0, 31) is None  # unknown mtime: never a hit
    assert len(again) == 0 and again.to_json() == cache.to_json()
    again.retain(["feed"])
    assert again.changed and again.get_probe("notes.txt", 10, 20, 30) is None
    # a cache written before probes were kept still loads
    assert "probes" not in FingerprintCache().to_json()
    damaged = cache.to_json().replace('"verdict"', '"other"')
    with pytest.raises(ValueError):
        FingerprintCache.from_json(damaged)


def test_remote_files_are_probed_from_their_head(
    timed_root: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clip = _mp4_bytes(tmp_path, frames=12)
    _put(f"{timed_root}/g/feed", clip)
    _put(f"{timed_root}/g/notes.txt", b"n" * 3000)
    _put(f"{timed_root}/g/empty.txt", b"")
    copies: list[str] = []
    real_copy = store.local_copy

    def counted_copy(location: str, suffix: str = "") -> Any:
        copies.append(store.name_of(location))
        return real_copy(location, suffix)

    monkeypatch.setattr(store, "local_copy", counted_copy)
    cache = FingerprintCache()
    (whole,) = discover_games(timed_root, fingerprints={"g": cache})
    assert [c.clip_id for c in whole.clips] == ["feed"] and copies == []
    assert dict(whole.skipped)["empty.txt"] == "not a video: empty file (0 bytes)"
    assert whole.bytes_read == 2 * len(clip) + 3000  # both probed whole, the clip fingerprinted
    # a head too short for FFmpeg (the MP4's index is at its end): probed from a copy
    monkeypatch.setattr(video, "PROBE_HEAD", 512)
    (cut,) = discover_games(timed_root)
    assert [c.clip_id for c in cut.clips] == ["feed"]
    assert sorted(copies) == ["feed", "notes.txt"]
    assert cut.bytes_read == (512 + len(clip)) + (512 + 3000) + len(clip)
    with monkeypatch.context() as patch:
        _no_probes(patch)
        (again,) = discover_games(timed_root, fingerprints={"g": cache})
    assert (again.bytes_read, again.clips) == (0, whole.clips)


def test_discovery_rows_fail_unusable_files_and_skip_non_videos(tmp_path: Path) -> None:
    from hoopray.pipeline import GAME_ROW, _discovery_failures
    from hoopray.summary import summarise

    clip = _mp4_bytes(tmp_path)
    _touch(tmp_path / "games" / "g" / "a.mp4", clip)
    _touch(tmp_path / "games" / "g" / "a.txt", b"a note beside clip a")
    _touch(tmp_path / "games" / "g" / "notes.txt", b"minutes")
    _touch(tmp_path / "games" / "g" / "empty.mkv", b"")
    _touch(tmp_path / "games" / "g" / "feed", clip)
    _touch(tmp_path / "games" / "g" / "feed.mp4", clip)  # collides with the clip "feed"
    _touch(tmp_path / "games" / "h" / "readme.txt", b"clips arrive tomorrow")
    games = discover_games(tmp_path / "games")
    rows = _discovery_failures(games)
    got = {(r["game_id"], r["clip_id"]): (r["status"], r["write"], r["reason"]) for r in rows}
    assert {key: (status, write) for key, (status, write, _) in got.items()} == {
        ("g", "a.txt"): ("skipped", True),
        ("g", "empty"): ("failed", True),
        ("g", "feed.mp4"): ("failed", True),
        ("g", "notes"): ("skipped", True),
        ("h", "readme"): ("skipped", True),
        ("h", GAME_ROW): ("failed", True),
    }
    assert got[("g", "notes")][2].startswith("not a video: FFmpeg cannot open it")
    assert got[("h", GAME_ROW)][2] == "no usable clips (no file here opens as a video)"
    assert all(r["stage"] == "discover" and r["fingerprint"] == "" for r in rows)
    summary = summarise(rows, {}, 0.0)
    counts = {g.game_id: (g.clips_failed, g.clips_skipped) for g in summary.games}
    assert counts == {"g": (2, 2), "h": (1, 1)}
