"""Output layout and atomic writes.

Layout under an output root ``<out>``:

- ``<out>/tables/<name>/game_id=<g>/clip_id=<c>/part-0.parquet``: every table of
  :data:`hoopray.types.SCHEMAS`, hive-partitioned by game and clip. The partition columns
  live in the path only; :func:`read_table`, DuckDB (``hive_partitioning=true``) and Polars
  (``hive_partitioning=True``) add them back. DuckDB and Polars infer partition types, so
  an all-digit id such as ``001`` comes back as an integer there unless the reader is told
  otherwise (DuckDB ``hive_types={'game_id': 'VARCHAR', 'clip_id': 'VARCHAR'}``, Polars
  ``hive_schema``); :func:`read_table` always returns strings.
- ``<out>/<game_id>/``: per-game artefacts (``teams/``, ``videos/``, ``report.html``), see
  :func:`game_dir`.

Every write goes to a hidden temporary file in the destination directory, is flushed to
disk, then renamed over the final name, so a reader sees either the old file or the new
one, never a partial one. Temporary names start with ``.`` and do not end in ``.parquet``,
so globs such as ``**/*.parquet`` never pick them up.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from hoopray import types

TABLES_DIR = "tables"
PART_FILE = "part-0.parquet"
GAME_KEY = "game_id"
CLIP_KEY = "clip_id"
RESERVED_GAME_IDS = frozenset({TABLES_DIR, "_manifest", "_hydra"})

_ID_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._+-]{0,199}")


def check_id(value: str, what: str = "id") -> str:
    """Return ``value`` if it is usable as a partition value and a directory name.

    Allowed: 1-200 characters of ``A-Z a-z 0-9 . _ + -``, not starting with ``.`` and
    without ``..`` (so no ``/``, ``=``, ``%``, spaces or hidden names).
    :func:`hoopray.video.sanitise_id` produces ids of this form.

    Raises:
        ValueError: for anything else.
    """
    if not isinstance(value, str) or not _ID_RE.fullmatch(value) or ".." in value:
        raise ValueError(f"invalid {what} {value!r}: use letters, digits and . _ + -")
    return value


def _check_name(name: str) -> str:
    if name not in types.SCHEMAS:
        raise ValueError(f"unknown table {name!r}; known: {sorted(types.SCHEMAS)}")
    return name


def safe_join(root: str | os.PathLike[str], *parts: str | os.PathLike[str]) -> Path:
    """Join ``parts`` under ``root`` and refuse any result outside ``root``.

    Symlinks are resolved before the check, so a link inside ``root`` that points
    elsewhere is refused too.

    Returns:
        The resolved path (it need not exist).

    Raises:
        ValueError: for an absolute part, a NUL byte, or a path that leaves ``root``.
    """
    base = Path(root).resolve()
    for part in parts:
        text = os.fspath(part)
        if "\x00" in text:
            raise ValueError(f"path part {text!r} contains a NUL byte")
        if Path(text).is_absolute():
            raise ValueError(f"absolute path part {text!r} under {base}")
    candidate = base.joinpath(*parts).resolve()
    if not candidate.is_relative_to(base):
        raise ValueError(f"path {candidate} escapes the output root {base}")
    return candidate


def table_dir(out_root: str | os.PathLike[str], name: str) -> Path:
    """The directory that holds every partition of table ``name``."""
    return safe_join(out_root, TABLES_DIR, *_check_name(name).split("/"))


def table_path(out_root: str | os.PathLike[str], name: str, game_id: str, clip_id: str) -> Path:
    """``<out>/tables/<name>/game_id=<g>/clip_id=<c>/part-0.parquet``."""
    return safe_join(
        table_dir(out_root, name),
        f"{GAME_KEY}={check_id(game_id, 'game_id')}",
        f"{CLIP_KEY}={check_id(clip_id, 'clip_id')}",
        PART_FILE,
    )


def game_dir(out_root: str | os.PathLike[str], game_id: str) -> Path:
    """``<out>/<game_id>/``, the home of one game's artefacts (not created here).

    Raises:
        ValueError: for an invalid id or one that collides with the output layout
            (``tables``, ``_manifest``, ``_hydra``).
    """
    if check_id(game_id, "game_id") in RESERVED_GAME_IDS:
        raise ValueError(f"game_id {game_id!r} is reserved for the output layout")
    return safe_join(out_root, game_id)


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


_TMP_SUFFIX = ".tmp"


@contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` if the block succeeds.

    The caller writes the temporary file completely inside the block (and closes it). On an
    exception the temporary file is removed and ``path`` is left untouched.
    """
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.{uuid.uuid4().hex}{_TMP_SUFFIX}")
    try:
        yield tmp
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically and return the path."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` to ``path`` atomically and return the path."""
    return atomic_write_bytes(path, text.encode(encoding))


class TableWriter:
    """Appends checked rows to one open partition file; see :func:`open_table_writer`."""

    def __init__(self, name: str, writer: pq.ParquetWriter, path: Path) -> None:
        self.name = name
        self.path = path
        self.rows = 0
        self._writer = writer

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        """Check ``data`` against the table's schema and append it (one row group or more).

        Raises:
            ValueError: ``data`` does not fit the schema (nothing of it is written).
        """
        table = pa.Table.from_batches([data]) if isinstance(data, pa.RecordBatch) else data
        checked = types.check_schema(self.name, table)
        self._writer.write_table(checked)
        self.rows += checked.num_rows


@contextmanager
def open_table_writer(
    out_root: str | os.PathLike[str], name: str, game_id: str, clip_id: str
) -> Iterator[TableWriter]:
    """Stream a partition of ``name`` batch by batch, with the guarantees of :func:`write_table`.

    The rows go to a hidden temporary Parquet file in the partition directory; when the
    block ends normally the file is closed and renamed over ``part-0.parquet`` (replacing an
    existing partition as a whole; a block that wrote nothing gives an empty file with the
    schema). When the block raises, the temporary file is removed, the old partition (if
    any) stays as it was, and directories created for the partition are removed again.
    Memory holds one row group at a time, not the table.

    Raises:
        ValueError: unknown table or invalid id (before anything is created), or a batch
            that does not fit the schema (from :meth:`TableWriter.write`).
    """
    schema = types.SCHEMAS[_check_name(name)]
    path = table_path(out_root, name, game_id, clip_id)
    try:
        with atomic_path(path) as tmp:
            writer = pq.ParquetWriter(tmp, schema, compression="zstd")
            try:
                yield TableWriter(name, writer, path)
            finally:
                writer.close()
    except BaseException:
        _remove_empty_dirs(path)
        raise


def write_table(
    out_root: str | os.PathLike[str], name: str, game_id: str, clip_id: str, table: pa.Table
) -> Path:
    """Check ``table`` against the schema of ``name`` and write its partition atomically.

    An existing partition is replaced as a whole.

    Returns:
        The path of the written file.

    Raises:
        ValueError: unknown table, invalid id, or a table that does not fit the schema.
    """
    checked = types.check_schema(_check_name(name), table)
    with open_table_writer(out_root, name, game_id, clip_id) as writer:
        writer.write(checked)
    return writer.path


def list_partitions(out_root: str | os.PathLike[str], name: str) -> list[tuple[str, str]]:
    """Sorted ``(game_id, clip_id)`` of every written partition of table ``name``."""
    root = table_dir(out_root, name)
    found: list[tuple[str, str]] = []
    if not root.is_dir():
        return found
    for game in root.glob(f"{GAME_KEY}=*"):
        for clip in game.glob(f"{CLIP_KEY}=*"):
            if (clip / PART_FILE).is_file():
                found.append((game.name.split("=", 1)[1], clip.name.split("=", 1)[1]))
    return sorted(found)


def _with_partition_columns(table: pa.Table, game_id: str, clip_id: str) -> pa.Table:
    n = table.num_rows
    table = table.append_column(GAME_KEY, pa.array([game_id] * n, pa.string()))
    return table.append_column(CLIP_KEY, pa.array([clip_id] * n, pa.string()))


def read_table(
    out_root: str | os.PathLike[str],
    name: str,
    game_id: str | None = None,
    clip_id: str | None = None,
) -> pa.Table:
    """Read the partitions of ``name`` (optionally one game and/or one clip).

    Returns:
        The rows of every matching partition, in (game_id, clip_id) order, with string
        columns ``game_id`` and ``clip_id`` appended. An empty table with that schema when
        nothing matches.

    Raises:
        ValueError: unknown table or a stored file that no longer fits its schema.
    """
    _check_name(name)
    pieces = []
    for game, clip in list_partitions(out_root, name):
        if (game_id is not None and game != game_id) or (clip_id is not None and clip != clip_id):
            continue
        path = table_path(out_root, name, game, clip)
        with open(path, "rb") as handle:
            stored = pq.read_table(handle)
        try:
            checked = types.check_schema(name, stored)
        except ValueError as err:
            raise ValueError(f"{path}: {err}") from err
        pieces.append(_with_partition_columns(checked, game, clip))
    if not pieces:
        return _with_partition_columns(types.empty_table(name), "", "")
    return pa.concat_tables(pieces)


def delete_partition(
    out_root: str | os.PathLike[str], name: str, game_id: str, clip_id: str
) -> bool:
    """Remove one partition (for reruns); its clip directory goes too when empty.

    Temporary files of the partition that a process killed mid-write left behind (a
    streaming writer holds one for a whole clip) are removed as well, so call this only
    when no writer of the partition is running.

    Returns:
        Whether a file was removed.
    """
    path = table_path(out_root, name, game_id, clip_id)
    existed = path.is_file()
    path.unlink(missing_ok=True)
    if path.parent.is_dir():
        for stale in path.parent.glob(f".{path.name}.*{_TMP_SUFFIX}"):
            stale.unlink(missing_ok=True)
    _remove_empty_dirs(path)
    return existed


def _remove_empty_dirs(path: Path) -> None:
    """Remove the clip directory above a partition file if it is empty.

    The game directory above it stays: other workers write other clips of the same game
    at the same time, and removing it could pull the floor from under one of them.
    """
    with contextlib.suppress(OSError):
        path.parent.rmdir()
