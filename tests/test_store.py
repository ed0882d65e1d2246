from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
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


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and p.name.startswith(".")]


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    path = store.write_table(tmp_path, "identities/frames", "game-1", "clip_a", _frames(3))
    assert path == (
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
    got = store.read_table(tmp_path, "identities/frames")
    assert got["game_id"].to_pylist() == ["001"]
    assert got["clip_id"].to_pylist() == ["007"]


def test_rewrite_replaces_partition(tmp_path: Path) -> None:
    store.write_table(tmp_path, "identities/frames", "g", "c", _frames(5))
    store.write_table(tmp_path, "identities/frames", "g", "c", _frames(2, offset=10))
    got = store.read_table(tmp_path, "identities/frames")
    assert got["frame"].to_pylist() == [10, 11]


@pytest.mark.parametrize(
    "table",
    [
        _frames(2).drop_columns(["status"]),  # missing column
        _frames(2).select([*reversed(types.ID_FRAMES.names)]),  # wrong order
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
    assert not store.table_path(tmp_path, "identities/frames", "g", "c").exists()
    assert not _leftovers(tmp_path)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_failed_rewrite_keeps_old(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store.write_table(tmp_path, "identities/frames", "g", "c", _frames(4))
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
            assert not writer.path.exists()  # nothing visible before the block ends
    assert writer.path == store.table_path(tmp_path, "identities/frames", "g", "c")
    assert writer.rows == sum(sizes)
    stored = pq.read_table(writer.path)
    assert stored.schema == types.ID_FRAMES
    assert stored.column("frame").to_pylist() == list(range(sum(sizes)))
    assert store.list_partitions(tmp_path, "identities/frames") == [("g", "c")]
    assert not _leftovers(tmp_path)


def test_streaming_writer_replaces_partition(tmp_path: Path) -> None:
    store.write_table(tmp_path, "identities/frames", "g", "c", _frames(5))
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
    path = store.table_path(tmp_path, "identities/frames", "g", "c")
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
        assert store.safe_join(tmp_path, *parts).is_relative_to(tmp_path.resolve())
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
    assert store.safe_join(root, "ok", "x") == (root / "inner" / "x").resolve()


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
    assert path.parent.name == f"clip_id={good}"


@pytest.mark.parametrize(
    ("game_id", "ok"), [("g-1", True), ("tables", False), ("_manifest", False)]
)
def test_game_dir(tmp_path: Path, game_id: str, ok: bool) -> None:
    if ok:
        assert store.game_dir(tmp_path, game_id) == tmp_path.resolve() / game_id
    else:
        with pytest.raises(ValueError, match="reserved"):
            store.game_dir(tmp_path, game_id)


@pytest.mark.parametrize("payload", [b"", b"hello", bytes(range(256)) * 100])
def test_atomic_write_bytes(tmp_path: Path, payload: bytes) -> None:
    path = store.atomic_write_bytes(tmp_path / "deep" / "dir" / "f.bin", payload)
    assert path.read_bytes() == payload
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
    assert not list((store.table_dir(tmp_path, "identities/frames") / "game_id=g2").iterdir())
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
