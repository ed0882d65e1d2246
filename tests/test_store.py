from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import ClassVar

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq
import pytest

from hoopray import store, types


def _frames(n: int, offset: int = 0) -> pa.Table:
    rows = {
        "frame": list(range(offset, offset + n)),
        "track_id": [1] * n,
        "x1": [0.0] * n,
        "y1": [0.0] * n,
        "x2": [10.0] * n,
        "y2": [20.0] * n,
        "team_name": ["Knicks"] * n,
        "number": ["23"] * n,
        "player_name": [None] * n,
        "status": ["confirmed"] * n,
    }
    return pa.table(rows)


def _mark(root: str | Path, game_id: str = "g", clip_id: str = "c") -> None:
    """Write the clip's ``identities/tracks``, the completion marker without which readers
    ignore its ``identities/frames`` (store.MARKERS)."""
    store.write_table(
        root, "identities/tracks", game_id, clip_id, types.empty_table("identities/tracks")
    )


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.startswith(".")]


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    path = store.write_table(tmp_path, "identities/frames", "game-1", "clip_a", _frames(3))
    _mark(tmp_path, "game-1", "clip_a")
    assert isinstance(path, str)
    assert path == str(
        tmp_path.resolve() / "tables/identities/frames/game_id=game-1/clip_id=clip_a/part-0.parquet"
    )
    stored = pq.read_table(path)
    assert stored.schema.names == types.ID_FRAMES.names
    got = store.read_table(tmp_path, "identities/frames")
    assert got.schema.names == [*types.ID_FRAMES.names, "game_id", "clip_id"]
    assert got.column("frame").to_pylist() == [0, 1, 2]
    assert set(got.column("game_id").to_pylist()) == {"game-1"}
    assert not _leftovers(tmp_path)


@pytest.mark.parametrize(
    ("game_id", "clip_id", "expected"),
    [
        (None, None, [("g1", "a", 2), ("g1", "b", 3), ("g2", "a", 1)]),
        ("g1", None, [("g1", "a", 2), ("g1", "b", 3)]),
        (None, "a", [("g1", "a", 2), ("g2", "a", 1)]),
        ("g2", "a", [("g2", "a", 1)]),
        ("g3", None, []),
    ],
)
def test_read_table_filters(
    tmp_path: Path, game_id: str | None, clip_id: str | None, expected: list
) -> None:
    for game, clip, n in [("g1", "a", 2), ("g1", "b", 3), ("g2", "a", 1)]:
        store.write_table(tmp_path, "identities/frames", game, clip, _frames(n))
        _mark(tmp_path, game, clip)
    got = store.read_table(tmp_path, "identities/frames", game_id=game_id, clip_id=clip_id)
    counts: dict[tuple[str, str], int] = {}
    for game, clip in zip(got["game_id"].to_pylist(), got["clip_id"].to_pylist(), strict=True):
        counts[(game, clip)] = counts.get((game, clip), 0) + 1
    assert sorted((g, c, n) for (g, c), n in counts.items()) == expected


def test_read_empty_has_schema(tmp_path: Path) -> None:
    got = store.read_table(tmp_path, "identities/tracks")
    assert got.num_rows == 0
    assert got.schema.names == [*types.ID_TRACKS.names, "game_id", "clip_id"]
    assert got.schema.field("game_id").type == pa.string()
    assert store.list_partitions(tmp_path, "identities/tracks") == []


def test_numeric_ids_stay_strings(tmp_path: Path) -> None:
    store.write_table(tmp_path, "identities/frames", "001", "007", _frames(1))
    _mark(tmp_path, "001", "007")
    got = store.read_table(tmp_path, "identities/frames")
    assert got["game_id"].to_pylist() == ["001"]
    assert got["clip_id"].to_pylist() == ["007"]


def test_rewrite_replaces_partition(tmp_path: Path) -> None:
    store.write_table(tmp_path, "identities/frames", "g", "c", _frames(5))
    store.write_table(tmp_path, "identities/frames", "g", "c", _frames(2, offset=10))
    _mark(tmp_path)
    got = store.read_table(tmp_path, "identities/frames")
    assert got["frame"].to_pylist() == [10, 11]


@pytest.mark.parametrize(
    "table",
    [
        _frames(2).drop_columns(["status"]),  # missing column
        _frames(2).select([*reversed(_frames(2).column_names)]),  # wrong order
        _frames(2).set_column(9, "status", pa.array([None, None], pa.string())),  # null
        _frames(2).set_column(0, "frame", pa.array(["a", "b"])),  # wrong type
    ],
    ids=["missing", "order", "null", "type"],
)
def test_write_rejects_bad_schema(tmp_path: Path, table: pa.Table) -> None:
    with pytest.raises(ValueError):
        store.write_table(tmp_path, "identities/frames", "g", "c", table)
    assert not list(tmp_path.rglob("*.parquet"))
    assert not _leftovers(tmp_path)


def test_write_unknown_table(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown table"):
        store.write_table(tmp_path, "nope", "g", "c", _frames(1))


class _HalfThenFail(pq.ParquetWriter):
    """A Parquet writer that puts half its file down on close, then hits a full disk."""

    def __init__(self, where: object, *args: object, **kwargs: object) -> None:
        self.target = Path(str(where))
        super().__init__(where, *args, **kwargs)

    def close(self) -> None:
        super().close()
        self.target.write_bytes(self.target.read_bytes()[: self.target.stat().st_size // 2])
        raise OSError("disk full")


def test_failed_write_leaves_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pq, "ParquetWriter", _HalfThenFail)
    with pytest.raises(OSError, match="disk full"):
        store.write_table(tmp_path, "identities/frames", "g", "c", _frames(3))
    assert not Path(store.table_path(tmp_path, "identities/frames", "g", "c")).exists()
    assert not _leftovers(tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_failed_rewrite_keeps_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_table(tmp_path, "identities/frames", "g", "c", _frames(4))
    _mark(tmp_path)
    monkeypatch.setattr(pq, "ParquetWriter", _HalfThenFail)
    with pytest.raises(OSError):
        store.write_table(tmp_path, "identities/frames", "g", "c", _frames(1))
    assert store.read_table(tmp_path, "identities/frames").num_rows == 4
    assert not _leftovers(tmp_path)


# --------------------------------------------------------------------------- streaming


@pytest.mark.parametrize("sizes", [[], [0], [3], [2, 0, 5, 1]])
def test_streaming_writer_round_trip(tmp_path: Path, sizes: list[int]) -> None:
    offsets = [sum(sizes[:k]) for k in range(len(sizes))]
    with store.open_table_writer(tmp_path, "identities/frames", "g", "c") as writer:
        for k, (n, offset) in enumerate(zip(sizes, offsets, strict=True)):
            table = _frames(n, offset)
            writer.write(table.to_batches()[0] if k % 2 and n else table)
            assert not Path(writer.path).exists()  # nothing visible before the block ends
    assert writer.path == store.table_path(tmp_path, "identities/frames", "g", "c")
    assert writer.rows == sum(sizes)
    stored = pq.read_table(writer.path)
    assert stored.schema == types.ID_FRAMES
    assert stored.column("frame").to_pylist() == list(range(sum(sizes)))
    assert store.list_partitions(tmp_path, "identities/frames") == [("g", "c")]
    assert not _leftovers(tmp_path)


def test_streaming_writer_replaces_partition(tmp_path: Path) -> None:
    store.write_table(tmp_path, "identities/frames", "g", "c", _frames(5))
    _mark(tmp_path)
    with store.open_table_writer(tmp_path, "identities/frames", "g", "c") as writer:
        writer.write(_frames(2, offset=10))
        assert store.read_table(tmp_path, "identities/frames").num_rows == 5  # old until done
    assert store.read_table(tmp_path, "identities/frames")["frame"].to_pylist() == [10, 11]


@pytest.mark.parametrize(
    "bad",
    [
        _frames(2).drop_columns(["status"]),
        _frames(2).set_column(9, "status", pa.array([None, None], pa.string())),
        _frames(2).set_column(0, "frame", pa.array(["a", "b"])).to_batches()[0],
    ],
    ids=["missing", "null", "type-batch"],
)
def test_streaming_writer_schema_mismatch_leaves_nothing(
    tmp_path: Path, bad: pa.Table | pa.RecordBatch
) -> None:
    with (
        pytest.raises(ValueError),
        store.open_table_writer(tmp_path, "identities/frames", "g", "c") as writer,
    ):
        writer.write(_frames(3))
        writer.write(bad)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]
    # the clip directory goes; the game directory may stay (other clips share it)
    assert not [p for p in tmp_path.rglob("clip_id=*")]


@pytest.mark.parametrize("existing", [0, 4])
def test_streaming_writer_exception_leaves_old_or_nothing(tmp_path: Path, existing: int) -> None:
    if existing:
        store.write_table(tmp_path, "identities/frames", "g", "c", _frames(existing))
        _mark(tmp_path)
    with (
        pytest.raises(RuntimeError, match="model died"),
        store.open_table_writer(tmp_path, "identities/frames", "g", "c") as writer,
    ):
        writer.write(_frames(3, offset=100))
        raise RuntimeError("model died")
    assert not _leftovers(tmp_path)
    assert store.read_table(tmp_path, "identities/frames")["frame"].to_pylist() == list(
        range(existing)
    )
    assert bool([p for p in tmp_path.rglob("*") if p.is_file()]) == bool(existing)


@pytest.mark.parametrize(("existing", "removed"), [(False, False), (True, True)])
def test_delete_partition_removes_a_killed_writers_temp_file(
    tmp_path: Path, existing: bool, removed: bool
) -> None:
    path = Path(store.table_path(tmp_path, "identities/frames", "g", "c"))
    if existing:
        store.write_table(tmp_path, "identities/frames", "g", "c", _frames(2))
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.parent / f".{path.name}.0123abcd.tmp").write_bytes(b"PAR1 half")  # killed writer
    other = path.parent.parent / "clip_id=d" / ".part-0.parquet.0123abcd.tmp"
    other.parent.mkdir()
    other.write_bytes(b"another clip's writer")
    assert store.delete_partition(tmp_path, "identities/frames", "g", "c") is removed
    assert not path.parent.exists()
    assert other.exists()  # other partitions are left alone


@pytest.mark.parametrize(
    ("name", "game_id", "message"),
    [("nope", "g", "unknown table"), ("identities/frames", "../g", "invalid game_id")],
)
def test_streaming_writer_refuses_before_creating(
    tmp_path: Path, name: str, game_id: str, message: str
) -> None:
    with (
        pytest.raises(ValueError, match=message),
        store.open_table_writer(tmp_path, name, game_id, "c"),
    ):
        pass
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("parts", "ok"),
    [
        ((), True),
        (("a", "b.txt"), True),
        (("a/../b",), True),
        (("..",), False),
        (("a", "../../etc"), False),
        (("/etc/passwd",), False),
        (("a\x00b",), False),
    ],
)
def test_safe_join(tmp_path: Path, parts: tuple[str, ...], ok: bool) -> None:
    if ok:
        joined = store.safe_join(tmp_path, *parts)
        assert isinstance(joined, str)
        assert Path(joined).is_relative_to(tmp_path.resolve())
    else:
        with pytest.raises(ValueError):
            store.safe_join(tmp_path, *parts)


def test_safe_join_refuses_escaping_symlink(tmp_path: Path) -> None:
    root = tmp_path / "out"
    root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "link").symlink_to(outside)
    (root / "inner").mkdir()
    (root / "ok").symlink_to(root / "inner")
    with pytest.raises(ValueError, match="escapes"):
        store.safe_join(root, "link", "x.parquet")
    assert store.safe_join(root, "ok", "x") == str((root / "inner" / "x").resolve())


@pytest.mark.parametrize(
    "bad", ["", "..", "../g", "a/b", "a=b", "a b", ".hidden", "a%2F", "x" * 201, "a..b"]
)
def test_invalid_ids_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError):
        store.table_path(tmp_path, "identities/frames", bad, "c")
    with pytest.raises(ValueError):
        store.table_path(tmp_path, "identities/frames", "g", bad)


@pytest.mark.parametrize("good", ["g", "_g", "-1", "Game_2025.05.05", "a+b"])
def test_sanitised_ids_accepted(tmp_path: Path, good: str) -> None:
    path = store.table_path(tmp_path, "identities/frames", good, good)
    assert Path(path).parent.name == f"clip_id={good}"


@pytest.mark.parametrize(
    ("game_id", "ok"), [("g-1", True), ("tables", False), ("_manifest", False)]
)
def test_game_dir(tmp_path: Path, game_id: str, ok: bool) -> None:
    if ok:
        assert store.game_dir(tmp_path, game_id) == str(tmp_path.resolve() / game_id)
    else:
        with pytest.raises(ValueError, match="reserved"):
            store.game_dir(tmp_path, game_id)


@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(256)) * 100])
def test_atomic_write_bytes(tmp_path: Path, payload: bytes) -> None:
    path = store.atomic_write_bytes(tmp_path / "deep" / "dir" / "f.bin", payload)
    assert path == str(tmp_path / "deep" / "dir" / "f.bin")
    assert Path(path).read_bytes() == payload
    assert not _leftovers(tmp_path)


def test_atomic_write_text_overwrites(tmp_path: Path) -> None:
    target = tmp_path / "report.html"
    store.atomic_write_text(target, "old")
    store.atomic_write_text(target, "nouveau é")
    assert target.read_text(encoding="utf-8") == "nouveau é"


def test_atomic_path_failure_keeps_old(tmp_path: Path) -> None:
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), store.atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("fail")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["a.txt"]


def test_list_and_delete_partitions(tmp_path: Path) -> None:
    for game, clip in [("g2", "a"), ("g1", "b"), ("g1", "a")]:
        store.write_table(tmp_path, "identities/frames", game, clip, _frames(1))
    assert store.list_partitions(tmp_path, "identities/frames") == [
        ("g1", "a"),
        ("g1", "b"),
        ("g2", "a"),
    ]
    assert store.delete_partition(tmp_path, "identities/frames", "g2", "a") is True
    assert store.delete_partition(tmp_path, "identities/frames", "g2", "a") is False
    assert not list((Path(store.table_dir(tmp_path, "identities/frames")) / "game_id=g2").iterdir())
    assert store.list_partitions(tmp_path, "identities/frames") == [("g1", "a"), ("g1", "b")]


def test_duckdb_and_polars_read_hive_layout(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    store.write_table(tmp_path, "identities/frames", "game-1", "clip_a", _frames(2))
    store.write_table(tmp_path, "identities/frames", "game-2", "clip_b", _frames(3))
    pattern = str(tmp_path / "tables/identities/frames/**/*.parquet")
    rows = duckdb.sql(
        f"SELECT game_id, clip_id, count(*) FROM read_parquet('{pattern}', "
        "hive_partitioning=true) GROUP BY ALL ORDER BY ALL"
    ).fetchall()
    assert rows == [("game-1", "clip_a", 2), ("game-2", "clip_b", 3)]
    frame = (
        pl.scan_parquet(pattern, hive_partitioning=True)
        .group_by("game_id", "clip_id")
        .len()
        .sort("game_id")
        .collect()
    )
    assert frame["game_id"].to_list() == ["game-1", "game-2"]
    assert frame["clip_id"].to_list() == ["clip_a", "clip_b"]
    assert frame["len"].to_list() == [2, 3]


# --------------------------------------------------------------------------- locations


def test_filesystem_of_a_local_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fs, path = store.filesystem(tmp_path)
    assert isinstance(fs, pafs.LocalFileSystem)
    assert path == str(tmp_path)
    assert store.filesystem(f"file://{tmp_path}/x")[1] == str(tmp_path / "x")
    monkeypatch.chdir(tmp_path)
    assert store.filesystem("rel/x")[1] == str(tmp_path / "rel" / "x")  # made absolute
    assert store.scheme(tmp_path) == ""
    assert store.is_local(f"file://{tmp_path}")


def test_filesystem_of_an_s3_uri(s3_endpoint: str) -> None:
    fs, path = store.filesystem("s3://some-bucket/out/tables/")
    assert isinstance(fs, pafs.S3FileSystem)
    assert path == "some-bucket/out/tables"
    # it talks to the endpoint of AWS_ENDPOINT_URL (the network beyond loopback is
    # blocked, so an answer can only come from the moto server)
    assert fs.get_file_info("some-bucket").type == pafs.FileType.NotFound


def test_filesystem_of_an_unknown_scheme() -> None:
    with pytest.raises(store.StorageError, match="nosuchscheme"):
        store.filesystem("nosuchscheme://bucket/out")
    assert issubclass(store.StorageError, OSError)
    with pytest.raises(store.StorageError, match="nosuchscheme"):
        store.check_reachable("nosuchscheme://bucket/out", "output.root")


def test_check_reachable_refuses_a_missing_bucket(s3_endpoint: str) -> None:
    bucket = f"hoopray-missing-{uuid.uuid4().hex[:12]}"
    with pytest.raises(store.StorageError, match=bucket) as caught:
        store.check_reachable(f"s3://{bucket}/out", "output.root")
    assert "output.root" in str(caught.value)
    assert "does not exist" in str(caught.value)


def test_check_reachable_passes_for_an_existing_bucket(s3_bucket: str, tmp_path: Path) -> None:
    store.check_reachable(f"s3://{s3_bucket}/out", "output.root")  # prefix not there yet
    store.check_reachable(f"s3://{s3_bucket}", "data.root")
    store.check_reachable(tmp_path / "not-yet", "output.root")  # a local root to be made


@pytest.mark.parametrize(
    ("parts", "expected"),
    [((), ""), (("a", "b.txt"), "/a/b.txt"), (("a/./b",), "/a/b"), (("./a",), "/a")],
)
def test_join_on_a_uri(parts: tuple[str, ...], expected: str) -> None:
    assert store.join("s3://bucket/out/", *parts) == "s3://bucket/out" + expected


@pytest.mark.parametrize(
    "parts", [("..",), ("a", "../../etc"), ("a/../b",), ("/etc",), ("s3://other/x",), ("a\x00",)]
)
def test_join_on_a_uri_refuses_what_leaves_the_root(parts: tuple[str, ...]) -> None:
    with pytest.raises(ValueError):
        store.join("s3://bucket/out", *parts)


# --------------------------------------------------------------------------- commit rule
#
# The same rules on a store without rename: fsspec's in-memory filesystem served as
# ``mem://`` (each test under its own prefix, as the filesystem is one per process).

_OBSERVATIONS = [f"observations/{n}" for n in ("tracks", "reads", "team_votes", "clip")]
_IDENTITIES = ["identities/frames", "identities/tracks"]


@pytest.fixture
def memory_fs() -> object:
    fsspec = pytest.importorskip("fsspec")
    memory = fsspec.filesystem("memory")
    store.register_filesystem("mem", memory)
    return memory


@pytest.fixture
def mem_root(memory_fs: object) -> Iterator[str]:
    root = f"mem://hoopray-{uuid.uuid4().hex}/out"
    yield root
    with contextlib.suppress(Exception):
        store.delete_tree(root)


def _objects(memory: object, root: str) -> list[str]:
    """Every object the in-memory filesystem holds under ``root`` (its keys, whatever
    prefix fsspec gives them)."""
    prefix = root.split("://", 1)[1]
    return sorted(k for k in memory.store if prefix in k)  # type: ignore[attr-defined]


def _tracks(n: int) -> pa.Table:
    rows = [
        {
            "frame": i,
            "track_id": 1,
            "x1": 0.0,
            "y1": 0.0,
            "x2": 1.0,
            "y2": 2.0,
            "mask_area": 2,
            "mask_rle": "",
            "height": 10,
            "width": 10,
            "class_name": "player",
            "det_confidence": 0.9,
            "source": "prompt",
        }
        for i in range(n)
    ]
    return pa.Table.from_pylist(rows, schema=types.OBS_TRACKS)


def _clip_row() -> pa.Table:
    row = {
        "path": "mem://in/g/c.mp4",
        "fingerprint": "f",
        "frames": 3,
        "fps": 30.0,
        "width": 10,
        "height": 10,
        "read_stride": 1,
        "reader_calls": 0,
        "crops_read": 0,
        "seconds": 0.5,
        "observe_hash": "h",
    }
    return pa.Table.from_pylist([row], schema=types.OBS_CLIP)


def test_partition_round_trip_on_a_remote_store(mem_root: str, memory_fs: object) -> None:
    path = store.write_table(mem_root, "identities/frames", "g", "c", _frames(3))
    assert path == f"{mem_root}/tables/identities/frames/game_id=g/clip_id=c/part-0.parquet"
    _mark(mem_root)
    assert store.is_file(path)
    assert store.list_games(mem_root, "identities/frames") == ["g"]
    assert store.list_clips(mem_root, "identities/frames", "g") == ["c"]
    got = store.read_partition(mem_root, "identities/frames", "g", "c")
    assert got is not None
    assert got.schema == types.ID_FRAMES
    assert got["frame"].to_pylist() == [0, 1, 2]
    assert store.read_table(mem_root, "identities/frames")["game_id"].to_pylist() == ["g"] * 3
    store.write_table(mem_root, "identities/frames", "g", "c", _frames(2, offset=10))  # replace
    assert store.read_table(mem_root, "identities/frames", "g")["frame"].to_pylist() == [10, 11]
    assert store.delete_partition(mem_root, "identities/frames", "g", "c") is True
    assert store.delete_partition(mem_root, "identities/frames", "g", "c") is False
    assert store.read_partition(mem_root, "identities/frames", "g", "c") is None
    assert store.list_clips(mem_root, "identities/frames", "g") == []
    # only the marker is left, and no temporary object was ever put down
    assert [k.split(mem_root.split("://", 1)[1], 1)[1] for k in _objects(memory_fs, mem_root)] == [
        "/tables/identities/tracks/game_id=g/clip_id=c/part-0.parquet"
    ]


def test_bytes_and_text_on_a_remote_store(mem_root: str, memory_fs: object) -> None:
    location = store.join(mem_root, "g", "report.html")
    assert store.write_text(location, "old") == location
    store.write_text(location, "nouveau é")
    assert store.read_text(location) == "nouveau é"
    assert store.read_head(location, 3) == b"nou"
    assert store.exists(location)
    assert store.is_dir(store.join(mem_root, "g"))
    assert [e.name for e in store.list_dir(store.join(mem_root, "g"))] == ["report.html"]
    with store.local_copy(location, suffix=".html") as local:
        assert local.read_text(encoding="utf-8") == "nouveau é"
    assert not local.exists()  # the scratch copy goes with the block
    assert store.delete(location) is True
    assert not store.exists(location)


@pytest.mark.parametrize("where", ["local", "remote"])
def test_a_partition_without_its_marker_is_ignored(
    where: str, tmp_path: Path, mem_root: str
) -> None:
    root = str(tmp_path) if where == "local" else mem_root
    store.write_table(root, "observations/tracks", "g", "c", _tracks(4))  # no observations/clip
    store.write_table(root, "identities/frames", "g", "c", _frames(2))  # no identities/tracks
    assert store.list_clips(root, "observations/tracks", "g") == ["c"]  # written, not complete
    for name in ("observations/tracks", "identities/frames"):
        assert store.read_partition(root, name, "g", "c") is None
        for filters in ({}, {"game_id": "g"}, {"game_id": "g", "clip_id": "c"}):
            got = store.read_table(root, name, **filters)
            assert got.num_rows == 0
            assert got.schema.names == [*types.SCHEMAS[name].names, "game_id", "clip_id"]
    store.write_table(root, "observations/clip", "g", "c", _clip_row())  # the marker, last
    got = store.read_partition(root, "observations/tracks", "g", "c")
    assert got is not None and got["frame"].to_pylist() == [0, 1, 2, 3]
    assert store.read_table(root, "observations/tracks").num_rows == 4
    assert store.read_table(root, "identities/frames").num_rows == 0  # still unmarked


@pytest.mark.parametrize("where", ["local", "remote"])
@pytest.mark.parametrize(
    ("names", "marker"),
    [(_OBSERVATIONS, "observations/clip"), (_IDENTITIES, "identities/tracks")],
    ids=["observations", "identities"],
)
def test_delete_partitions_deletes_the_marker_first(
    where: str,
    names: list[str],
    marker: str,
    tmp_path: Path,
    mem_root: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    root = str(tmp_path) if where == "local" else mem_root
    for name in names:  # the marker last, as writers do
        store.write_table(root, name, "g", "c", types.empty_table(name))
    store.write_table(root, names[0], "g", "other", types.empty_table(names[0]))
    marker_path = store.table_path(root, marker, "g", "c")
    calls: list[tuple[str, bool]] = []
    real_delete = store.delete

    def recording_delete(location: str) -> bool:
        calls.append((location, store.exists(marker_path)))
        return real_delete(location)

    monkeypatch.setattr(store, "delete", recording_delete)
    store.delete_partitions(root, names, "g", "c")
    assert calls[0][0] == marker_path
    assert sorted(c[0] for c in calls) == sorted(store.table_path(root, n, "g", "c") for n in names)
    # no data partition is deleted while the marker still vouches for it
    assert all(not marker_left for location, marker_left in calls[1:])
    for name in names:
        assert not store.exists(store.table_path(root, name, "g", "c"))
    assert store.list_clips(root, names[0], "g") == ["other"]  # other clips are left alone


@pytest.mark.parametrize("fail", ["exception", "half-written"])
def test_failed_streaming_write_on_a_remote_store_leaves_no_object(
    fail: str,
    mem_root: str,
    memory_fs: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    spool = tmp_path / "spool"
    spool.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    if fail == "half-written":
        monkeypatch.setattr(pq, "ParquetWriter", _HalfThenFail)
    with (
        pytest.raises((RuntimeError, OSError)),
        store.open_table_writer(mem_root, "identities/frames", "g", "c") as writer,
    ):
        writer.write(_frames(3))
        assert not store.exists(writer.path)  # nothing visible before the block ends
        if fail == "exception":
            raise RuntimeError("model died")
    assert _objects(memory_fs, mem_root) == []
    assert store.list_partitions(mem_root, "identities/frames") == []
    assert list(spool.iterdir()) == []  # the local spool file went too


def test_streaming_write_on_a_remote_store_replaces_whole(mem_root: str) -> None:
    store.write_table(mem_root, "identities/frames", "g", "c", _frames(5))
    _mark(mem_root)
    with store.open_table_writer(mem_root, "identities/frames", "g", "c") as writer:
        writer.write(_frames(2, offset=10))
        writer.write(_frames(1, offset=12).to_batches()[0])
        assert store.read_table(mem_root, "identities/frames").num_rows == 5  # old until done
    assert writer.rows == 3
    got = store.read_table(mem_root, "identities/frames")
    assert got["frame"].to_pylist() == [10, 11, 12]


def test_failed_rewrite_on_a_remote_store_keeps_old(
    mem_root: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store.write_table(mem_root, "identities/frames", "g", "c", _frames(4))
    _mark(mem_root)
    monkeypatch.setattr(pq, "ParquetWriter", _HalfThenFail)
    with pytest.raises(OSError, match="disk full"):
        store.write_table(mem_root, "identities/frames", "g", "c", _frames(1))
    assert store.read_table(mem_root, "identities/frames").num_rows == 4


# --------------------------------------------------------------------------- S3


def test_store_round_trip_on_s3(s3_bucket: str) -> None:
    root = f"s3://{s3_bucket}/out"
    for game, clip, n in [("g1", "a", 2), ("g1", "b", 3), ("g2", "a", 1)]:
        path = store.write_table(root, "identities/frames", game, clip, _frames(n))
        assert (
            path == f"{root}/tables/identities/frames/game_id={game}/clip_id={clip}/part-0.parquet"
        )
        _mark(root, game, clip)
    assert store.list_games(root, "identities/frames") == ["g1", "g2"]
    assert store.list_clips(root, "identities/frames", "g1") == ["a", "b"]
    assert store.list_clips(root, "identities/frames", "g3") == []
    got = store.read_table(root, "identities/frames")
    assert got.num_rows == 6
    assert got.schema.names == [*types.ID_FRAMES.names, "game_id", "clip_id"]
    assert store.read_table(root, "identities/frames", "g1", "b")["frame"].to_pylist() == [0, 1, 2]
    store.write_table(root, "identities/frames", "g1", "b", _frames(1, offset=7))  # replace
    assert store.read_table(root, "identities/frames", "g1", "b")["frame"].to_pylist() == [7]
    store.delete_partitions(root, _IDENTITIES, "g1", "a")
    assert store.read_partition(root, "identities/frames", "g1", "a") is None
    assert store.list_clips(root, "identities/frames", "g1") == ["b"]
    assert store.list_clips(root, "identities/tracks", "g1") == ["b"]
    assert store.delete_partition(root, "identities/frames", "g2", "a") is True
    assert store.delete(store.table_path(root, "identities/frames", "g2", "a")) is False
    assert store.list_partitions(root, "identities/frames") == [("g1", "b")]
    report = store.write_text(store.join(store.game_dir(root, "g1"), "report.html"), "<html>")
    assert store.read_text(report) == "<html>"
    assert store.delete(report) is True
    assert not store.exists(report)


def test_failed_write_on_s3_leaves_no_object(
    s3_bucket: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.s3 import s3_client

    root = f"s3://{s3_bucket}/out"
    with (
        pytest.raises(RuntimeError, match="model died"),
        store.open_table_writer(root, "identities/frames", "g", "c") as writer,
    ):
        writer.write(_frames(3))
        raise RuntimeError("model died")
    monkeypatch.setattr(pq, "ParquetWriter", _HalfThenFail)
    with pytest.raises(OSError, match="disk full"):
        store.write_table(root, "identities/frames", "g", "c", _frames(3))
    listing = s3_client().list_objects_v2(Bucket=s3_bucket)
    assert listing.get("Contents", []) == []
    uploads = s3_client().list_multipart_uploads(Bucket=s3_bucket)
    assert uploads.get("Uploads", []) == []


# --------------------------------------------------------------------------- failed uploads


@pytest.fixture
def dropping_root() -> Iterator[tuple[object, str]]:
    """``dropmem://``: an in-memory object store whose uploads can be made to fail (the
    connection drops at the first write), as a network error or an interrupt would."""
    memory = pytest.importorskip("fsspec.implementations.memory")

    class Dropping(memory.MemoryFileSystem):
        store: ClassVar[dict] = {}  # fsspec keeps the objects per class
        pseudo_dirs: ClassVar[list] = [""]
        drop = False

        def _open(self, path: str, mode: str = "rb", **kwargs: object) -> object:
            handle = super()._open(path, mode, **kwargs)
            if "w" in mode and self.drop:

                def write(data: bytes) -> int:
                    raise ConnectionResetError("connection reset by peer")

                handle.write = write
            return handle

    fs = Dropping(skip_instance_cache=True)
    store.register_filesystem("dropmem", fs)
    yield fs, f"dropmem://hoopray-{uuid.uuid4().hex}/out"


def test_a_failed_upload_leaves_the_old_object(dropping_root: tuple[object, str]) -> None:
    """Commit rule 1 on an object store: an upload that fails midway commits nothing.

    The spooled file is streamed to the store inside ``with fs.open_output_stream(...)``;
    pyarrow's stream closes (for S3: completes the multipart upload) on the way out of the
    ``with`` even when a write raised, so what was sent so far becomes the object.
    """
    fs, root = dropping_root
    report = store.join(root, "g", "report.html")
    store.write_text(report, "old report")
    store.write_table(root, "identities/frames", "g", "c", _frames(4))
    _mark(root)
    fs.drop = True  # type: ignore[attr-defined]
    with pytest.raises(ConnectionResetError):
        store.write_text(report, "new report")
    with pytest.raises(ConnectionResetError):
        store.write_text(store.join(root, "g", "new.json"), "{}")
    with pytest.raises(ConnectionResetError):
        store.write_table(root, "identities/frames", "g", "c", _frames(2))
    fs.drop = False  # type: ignore[attr-defined]
    assert store.read_text(report) == "old report"
    assert not store.exists(store.join(root, "g", "new.json"))
    assert store.read_table(root, "identities/frames")["frame"].to_pylist() == [0, 1, 2, 3]
