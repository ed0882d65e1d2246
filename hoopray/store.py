"""Storage: local disk, S3, GCS or any fsspec filesystem through ``pyarrow.fs``.

Every location is a string: a local path (made absolute) or a URI (``s3://bucket/key``,
``gs://bucket/key``, ``<scheme>://...`` of an installed fsspec implementation). S3 and
S3-compatible stores (MinIO, Ceph, R2) honour ``AWS_ENDPOINT_URL``; credentials come from
the standard AWS chain (environment, profile, instance role), never from config.

Tables live at ``<out>/tables/<name>/game_id=<g>/clip_id=<c>/part-0.parquet``,
hive-partitioned by game and clip (the partition columns live in the path only;
:func:`read_table`, DuckDB and Polars add them back). Per-game artefacts live under
``<out>/<game_id>/`` (:func:`game_dir`).

The commit rule, which holds on every filesystem:

1. An object becomes visible whole. Local files are written to a hidden temporary file
   beside the target, flushed and renamed over it. Object stores have no rename: the data
   is spooled to a local temporary file first, sent to a hidden temporary key (a single
   PUT, or a multipart upload completed at the end), and copied into place by the server,
   so the target only ever holds a whole object and an interrupted writer leaves at most
   a hidden ``.*.tmp`` key, which no reader or glob of ``*.parquet`` picks up.
2. A clip's completion marker is written last: ``observations/clip`` for its observation
   tables, ``identities/tracks`` for its identity tables (:data:`MARKERS`). Readers here
   ignore a partition whose marker is missing.
3. A rerun deletes stale objects before it writes new ones, the marker first
   (:func:`delete_partitions`), so no reader ever pairs an old marker with new data.

Temporary names start with ``.`` and do not end in ``.parquet``, so globs such as
``**/*.parquet`` never pick them up.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from hoopray import types

TABLES_DIR = "tables"
PART_FILE = "part-0.parquet"
GAME_KEY = "game_id"
CLIP_KEY = "clip_id"
RESERVED_GAME_IDS = frozenset({TABLES_DIR, "_manifest", "_hydra", "_runs", "_lock", "_status"})
# A table's partition counts only when the marker table's partition of the same clip exists.
MARKERS = {
    "observations/tracks": "observations/clip",
    "observations/reads": "observations/clip",
    "observations/team_votes": "observations/clip",
    "observations/detections": "observations/clip",
    "identities/frames": "identities/tracks",
}

_ID_RE = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._+-]{0,199}")
_SCHEME_RE = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_TMP_SUFFIX = ".tmp"
_COPY_CHUNK = 8 * 2**20
_LOCK = threading.Lock()
_REGISTERED: dict[str, Any] = {}


class StorageError(OSError):
    """A location that cannot be opened: unknown scheme, unreachable endpoint, no bucket."""


# --------------------------------------------------------------------------- locations


def scheme(location: str | os.PathLike[str]) -> str:
    """``"s3"``, ``"gs"``, ... for a URI; ``""`` for a local path (``file://`` included)."""
    match = _SCHEME_RE.match(os.fspath(location))
    if not match or match.group(1).lower() == "file":
        return ""
    return match.group(1).lower()


def is_local(location: str | os.PathLike[str]) -> bool:
    return scheme(location) == ""


def normalise(location: str | os.PathLike[str]) -> str:
    """A local path made absolute (``file://`` stripped), or a URI without a trailing ``/``."""
    text = os.fspath(location)
    if is_local(text):
        if text.startswith("file://"):
            text = text[len("file://") :]
        return os.path.abspath(text)
    return text.rstrip("/") if not text.endswith("://") else text


def register_filesystem(name: str, filesystem: Any) -> None:
    """Serve URIs ``<name>://...`` with ``filesystem`` (a ``pyarrow.fs.FileSystem`` or an
    fsspec filesystem). For schemes pyarrow lacks, installed fsspec implementations are
    found without registering."""
    if not isinstance(filesystem, pafs.FileSystem):
        filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(filesystem))
    with _LOCK:
        _REGISTERED[name.lower()] = filesystem
        _filesystem_for.cache_clear()


@functools.lru_cache(maxsize=64)
def _filesystem_for(kind: str, netloc: str, endpoint: str) -> pafs.FileSystem:
    if kind in _REGISTERED:
        return _REGISTERED[kind]
    if kind == "s3":
        options: dict[str, Any] = {}
        if endpoint:
            options["endpoint_override"] = endpoint
            if endpoint.startswith("http://"):
                options["scheme"] = "http"
        region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
        if region or endpoint:
            return pafs.S3FileSystem(
                region=region or "us-east-1",
                connect_timeout=10,
                retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=3),
                **options,
            )
        return pafs.FileSystem.from_uri(f"s3://{netloc}")[0]
    if kind in ("gs", "gcs"):
        return pafs.GcsFileSystem()
    try:
        import fsspec

        return pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem(kind)))
    except (ImportError, ValueError) as err:
        raise StorageError(f"no filesystem for {kind}:// URIs: {err}") from err


def filesystem(location: str | os.PathLike[str]) -> tuple[pafs.FileSystem, str]:
    """The ``pyarrow.fs`` filesystem of ``location`` and the path inside it.

    Raises:
        StorageError: a scheme neither pyarrow nor an installed fsspec package serves.
    """
    text = normalise(location)
    kind = scheme(text)
    if not kind:
        return pafs.LocalFileSystem(), text
    rest = text[len(kind) + 3 :]
    netloc = rest.split("/", 1)[0]
    endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL") or ""
    fs = _filesystem_for(kind, netloc, endpoint if kind == "s3" else "")
    if isinstance(fs, pafs.PyFileSystem) and kind not in ("s3", "gs", "gcs"):
        handler = fs.handler
        inner = getattr(handler, "fs", None)
        if inner is not None and hasattr(inner, "_strip_protocol"):
            return fs, str(inner._strip_protocol(text))
    return fs, rest


def join(base: str | os.PathLike[str], *parts: str | os.PathLike[str]) -> str:
    """Join ``parts`` under ``base`` and refuse any result outside ``base``.

    Local symlinks are resolved before the check, so a link inside ``base`` that points
    elsewhere is refused too.

    Raises:
        ValueError: an absolute part, a NUL byte, or a path that leaves ``base``.
    """
    root = normalise(base)
    texts = [os.fspath(p) for p in parts]
    for text in texts:
        if "\x00" in text:
            raise ValueError(f"path part {text!r} contains a NUL byte")
        if text.startswith("/") or Path(text).is_absolute() or scheme(text):
            raise ValueError(f"absolute path part {text!r} under {root}")
    if is_local(root):
        resolved = Path(root).resolve()
        candidate = resolved.joinpath(*texts).resolve()
        if not candidate.is_relative_to(resolved):
            raise ValueError(f"path {candidate} escapes the output root {resolved}")
        return str(candidate)
    pieces: list[str] = []
    for text in texts:
        for piece in PurePosixPath(text).parts:
            if piece == "..":
                raise ValueError(f"path part {text!r} escapes the output root {root}")
            if piece != ".":
                pieces.append(piece)
    return "/".join([root, *pieces]) if pieces else root


safe_join = join


def parent(location: str) -> str:
    text = normalise(location)
    return text.rsplit("/", 1)[0] if "/" in text else text


def name_of(location: str) -> str:
    return normalise(location).rstrip("/").rsplit("/", 1)[-1]


# --------------------------------------------------------------------------- objects


@dataclass(frozen=True)
class Entry:
    """One child of a directory: name, whether a directory, size and mtime (ns)."""

    name: str
    is_dir: bool
    size: int
    mtime_ns: int


def info(location: str) -> pafs.FileInfo:
    fs, path = filesystem(location)
    return fs.get_file_info(path)


def exists(location: str) -> bool:
    return info(location).type != pafs.FileType.NotFound


def is_file(location: str) -> bool:
    return info(location).type == pafs.FileType.File


def is_dir(location: str) -> bool:
    """A local directory, or a prefix with at least one object under it."""
    fs, path = filesystem(location)
    found = fs.get_file_info(path)
    if found.type == pafs.FileType.Directory:
        return True
    if is_local(location) or found.type == pafs.FileType.File:
        return False
    return bool(_children(fs, path))


def _children(fs: pafs.FileSystem, path: str) -> list[pafs.FileInfo]:
    try:
        return fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    except (FileNotFoundError, NotADirectoryError):
        return []


def list_dir(location: str) -> list[Entry]:
    """The children of a directory (or prefix), sorted by name; empty when it is missing."""
    fs, path = filesystem(location)
    entries = []
    for item in _children(fs, path):
        mtime = item.mtime_ns if item.mtime_ns is not None else 0
        size = item.size if item.size is not None else 0
        entries.append(
            Entry(item.base_name, item.type == pafs.FileType.Directory, int(size), int(mtime))
        )
    return sorted(entries, key=lambda e: e.name)


def read_bytes(location: str) -> bytes:
    fs, path = filesystem(location)
    with fs.open_input_stream(path) as handle:
        return handle.read()


def read_text(location: str, encoding: str = "utf-8") -> str:
    return read_bytes(location).decode(encoding)


def read_head(location: str, size: int) -> bytes:
    """The first ``size`` bytes of an object."""
    fs, path = filesystem(location)
    with fs.open_input_file(path) as handle:
        return handle.read(size)


def delete(location: str) -> bool:
    """Remove one object or file; whether it existed."""
    fs, path = filesystem(location)
    try:
        fs.delete_file(path)
    except FileNotFoundError:
        return False
    except OSError:
        if fs.get_file_info(path).type == pafs.FileType.NotFound:
            return False
        raise
    return True


def delete_tree(location: str) -> None:
    """Remove a directory (or every object under a prefix) if it exists."""
    fs, path = filesystem(location)
    found = fs.get_file_info(path)
    if found.type == pafs.FileType.Directory or (not is_local(location) and _children(fs, path)):
        fs.delete_dir(path)


def makedirs(location: str) -> None:
    if is_local(location):
        Path(location).mkdir(parents=True, exist_ok=True)


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


def _upload(local: Path, location: str) -> None:
    """Send a local file as one object. It goes to a hidden temporary key first and is
    then copied into place (a server-side copy appears whole), because an output stream
    that fails half-way is still completed when it closes."""
    fs, path = filesystem(location)
    head, _, name = path.rpartition("/")
    staging = f"{head}/.{name}.{uuid.uuid4().hex}{_TMP_SUFFIX}"
    try:
        with open(local, "rb") as source, fs.open_output_stream(staging) as sink:
            while chunk := source.read(_COPY_CHUNK):
                sink.write(chunk)
        fs.move(staging, path)
    finally:
        with contextlib.suppress(OSError):
            if fs.get_file_info(staging).type != pafs.FileType.NotFound:
                fs.delete_file(staging)


@contextmanager
def atomic_path(location: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a local temporary path for ``location``; commit it if the block succeeds.

    The caller writes the temporary file completely inside the block (and closes it).
    Locally it is then renamed over the target; on an object store it is sent as one
    object. On an exception nothing is committed and the target is left as it was.
    """
    target = normalise(location)
    if is_local(target):
        final = Path(target)
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
        return
    spool = Path(tempfile.mkdtemp(prefix="hoopray-spool-"))
    try:
        tmp = spool / f".{name_of(target)}{_TMP_SUFFIX}"
        yield tmp
        _upload(tmp, target)
    finally:
        shutil.rmtree(spool, ignore_errors=True)


def write_bytes(location: str | os.PathLike[str], data: bytes) -> str:
    """Write ``data`` to ``location`` as one whole object and return the location."""
    with atomic_path(location) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
    return normalise(location)


def write_text(location: str | os.PathLike[str], text: str, encoding: str = "utf-8") -> str:
    return write_bytes(location, text.encode(encoding))


atomic_write_bytes = write_bytes
atomic_write_text = write_text


@contextmanager
def local_copy(location: str | os.PathLike[str], suffix: str = "") -> Iterator[Path]:
    """A local path holding ``location``'s bytes: the file itself when local, otherwise a
    scratch copy in the system's temporary directory, removed when the block ends."""
    text = normalise(location)
    if is_local(text):
        yield Path(text)
        return
    scratch = Path(tempfile.mkdtemp(prefix="hoopray-scratch-"))
    try:
        target = scratch / (name_of(text) + suffix)
        fs, path = filesystem(text)
        with fs.open_input_stream(path) as source, open(target, "wb") as sink:
            while chunk := source.read(_COPY_CHUNK):
                sink.write(chunk)
        yield target
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def check_reachable(location: str, what: str = "location") -> None:
    """Fail fast with the URI and the reason when ``location``'s store cannot be used.

    Raises:
        StorageError: an unknown scheme, an unreachable endpoint, a missing bucket.
    """
    text = normalise(location)
    try:
        fs, path = filesystem(text)
        if not is_local(text):
            bucket = path.split("/", 1)[0]
            found = fs.get_file_info(bucket)
            if found.type == pafs.FileType.NotFound:
                raise StorageError(f"{what} {text}: bucket {bucket!r} does not exist")
        fs.get_file_info(path)
    except StorageError:
        raise
    except Exception as err:
        raise StorageError(f"{what} {text}: {type(err).__name__}: {err}") from err


# --------------------------------------------------------------------------- layout


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


def table_dir(out_root: str | os.PathLike[str], name: str) -> str:
    """The directory that holds every partition of table ``name``."""
    return join(out_root, TABLES_DIR, *_check_name(name).split("/"))


def _game_part(game_id: str) -> str:
    return f"{GAME_KEY}={check_id(game_id, 'game_id')}"


def _clip_part(clip_id: str) -> str:
    return f"{CLIP_KEY}={check_id(clip_id, 'clip_id')}"


def table_path(out_root: str | os.PathLike[str], name: str, game_id: str, clip_id: str) -> str:
    """``<out>/tables/<name>/game_id=<g>/clip_id=<c>/part-0.parquet``."""
    return join(table_dir(out_root, name), _game_part(game_id), _clip_part(clip_id), PART_FILE)


def game_dir(out_root: str | os.PathLike[str], game_id: str) -> str:
    """``<out>/<game_id>/``, the home of one game's artefacts (not created here).

    Raises:
        ValueError: for an invalid id or one that collides with the output layout.
    """
    if check_id(game_id, "game_id") in RESERVED_GAME_IDS:
        raise ValueError(f"game_id {game_id!r} is reserved for the output layout")
    return join(out_root, game_id)


# --------------------------------------------------------------------------- tables


class TableWriter:
    """Appends checked rows to one open partition file; see :func:`open_table_writer`."""

    def __init__(self, name: str, writer: pq.ParquetWriter, path: str) -> None:
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

    The rows go to a temporary Parquet file (beside the partition locally, in the system's
    temporary directory for object stores); when the block ends normally the file is
    committed over ``part-0.parquet`` as a whole (a block that wrote nothing gives an
    empty file with the schema). When the block raises, nothing is committed, the old
    partition (if any) stays, and a local clip directory created for it is removed again.
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
        _remove_empty_dir(path)
        raise


def write_table(
    out_root: str | os.PathLike[str], name: str, game_id: str, clip_id: str, table: pa.Table
) -> str:
    """Check ``table`` against the schema of ``name`` and write its partition whole.

    An existing partition is replaced as a whole.

    Returns:
        The location of the written file.

    Raises:
        ValueError: unknown table, invalid id, or a table that does not fit the schema.
    """
    checked = types.check_schema(_check_name(name), table)
    with open_table_writer(out_root, name, game_id, clip_id) as writer:
        writer.write(checked)
    return writer.path


def _partition_value(entry_name: str, key: str) -> str | None:
    prefix = f"{key}="
    return entry_name[len(prefix) :] if entry_name.startswith(prefix) else None


def list_games(out_root: str | os.PathLike[str], name: str) -> list[str]:
    """Game ids with at least a directory in table ``name`` (one listing)."""
    found = []
    for entry in list_dir(table_dir(out_root, name)):
        value = _partition_value(entry.name, GAME_KEY)
        if entry.is_dir and value:
            found.append(value)
    return sorted(found)


def list_clips(out_root: str | os.PathLike[str], name: str, game_id: str) -> list[str]:
    """Clip ids of one game with a written partition of ``name`` (one listing per game).

    Marker rules are not applied here; :func:`read_table` applies them.
    """
    game = join(table_dir(out_root, name), _game_part(game_id))
    fs, path = filesystem(game)
    try:
        found = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
    except (FileNotFoundError, NotADirectoryError):
        found = []
    clips = []
    for item in found:
        pieces = item.path[len(path) :].strip("/").split("/")
        if len(pieces) == 2 and pieces[1] == PART_FILE and item.type == pafs.FileType.File:
            value = _partition_value(pieces[0], CLIP_KEY)
            if value:
                clips.append(value)
    return sorted(clips)


def list_partitions(out_root: str | os.PathLike[str], name: str) -> list[tuple[str, str]]:
    """Sorted ``(game_id, clip_id)`` of every written partition of ``name`` (lists the
    whole table: for reports and tools, not for per-clip work)."""
    return [(g, c) for g in list_games(out_root, name) for c in list_clips(out_root, name, g)]


def _with_partition_columns(table: pa.Table, game_id: str, clip_id: str) -> pa.Table:
    n = table.num_rows
    table = table.append_column(GAME_KEY, pa.array([game_id] * n, pa.string()))
    return table.append_column(CLIP_KEY, pa.array([clip_id] * n, pa.string()))


def read_partition(
    out_root: str | os.PathLike[str], name: str, game_id: str, clip_id: str
) -> pa.Table | None:
    """One clip's partition of ``name`` read by its path (no listing), checked against the
    schema; None when it is missing or its completion marker is (:data:`MARKERS`).

    Raises:
        ValueError: a stored file that no longer fits its schema.
    """
    _check_name(name)
    marker = MARKERS.get(name)
    if marker is not None and not is_file(table_path(out_root, marker, game_id, clip_id)):
        return None
    path = table_path(out_root, name, game_id, clip_id)
    fs, inner = filesystem(path)
    try:
        with fs.open_input_file(inner) as handle:
            stored = pq.read_table(handle)
    except FileNotFoundError:
        return None
    try:
        return types.check_schema(name, stored)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def read_table(
    out_root: str | os.PathLike[str],
    name: str,
    game_id: str | None = None,
    clip_id: str | None = None,
) -> pa.Table:
    """Read the partitions of ``name``: one clip's by its path, a game's with one listing,
    or the whole table's.

    Returns:
        The rows of every matching partition, in (game_id, clip_id) order, with string
        columns ``game_id`` and ``clip_id`` appended. An empty table with that schema when
        nothing matches. Partitions without their completion marker are left out.

    Raises:
        ValueError: unknown table or a stored file that no longer fits its schema.
    """
    _check_name(name)
    if game_id is not None and clip_id is not None:
        keys: Sequence[tuple[str, str]] = [(game_id, clip_id)]
    elif game_id is not None:
        keys = [(game_id, c) for c in list_clips(out_root, name, game_id)]
    else:
        keys = [(g, c) for g, c in list_partitions(out_root, name) if clip_id in (None, c)]
    pieces = []
    for game, clip in keys:
        table = read_partition(out_root, name, game, clip)
        if table is not None:
            pieces.append(_with_partition_columns(table, game, clip))
    if not pieces:
        return _with_partition_columns(types.empty_table(name), "", "")
    return pa.concat_tables(pieces)


def delete_partition(
    out_root: str | os.PathLike[str], name: str, game_id: str, clip_id: str
) -> bool:
    """Remove one partition (for reruns); a local clip directory goes too when empty.

    Temporary files a killed local writer left in the partition's directory are removed as
    well, so call this only when no writer of the partition is running.

    Returns:
        Whether a file was removed.
    """
    path = table_path(out_root, name, game_id, clip_id)
    existed = delete(path)
    stale_prefix = f".{PART_FILE}."
    if is_local(path):
        directory = Path(path).parent
        if directory.is_dir():
            for stale in directory.glob(f"{stale_prefix}*{_TMP_SUFFIX}"):
                stale.unlink(missing_ok=True)
        _remove_empty_dir(path)
        return existed
    directory = parent(path)
    for entry in list_dir(directory):
        if entry.name.startswith(stale_prefix) and entry.name.endswith(_TMP_SUFFIX):
            delete(f"{directory}/{entry.name}")
    return existed


def delete_partitions(
    out_root: str | os.PathLike[str], names: Sequence[str], game_id: str, clip_id: str
) -> None:
    """Remove a clip's partitions of ``names``, markers first (commit rule 3)."""
    markers = set(MARKERS.values())
    for name in sorted(names, key=lambda n: n not in markers):
        delete_partition(out_root, name, game_id, clip_id)


def _remove_empty_dir(path: str) -> None:
    """Remove the local clip directory above a partition file if it is empty.

    The game directory above it stays: other workers write other clips of the same game
    at the same time, and removing it could pull the floor from under one of them.
    """
    if is_local(path):
        with contextlib.suppress(OSError):
            Path(path).parent.rmdir()
