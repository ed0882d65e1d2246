"""One run per output root: a heartbeat lease object ``<root>/_lock``.

The lease holds JSON ``{owner, host, pid, job, started, heartbeat, heartbeat_epoch}``
(``owner`` is a run id, times are UTC ISO 8601, ``heartbeat_epoch`` is Unix seconds). It
is created with an atomic create-if-absent: a hard link of a fully written temporary file
(``O_CREAT | O_EXCL`` where links are not supported) on a local path, ``PutObject`` with
``If-None-Match: *`` on ``s3://``. Other schemes (``gs://``, fsspec) go through
``pyarrow.fs`` with a check-then-create that is not race-free.

A lease whose heartbeat is older than ``stale_seconds``, or that cannot be parsed, belongs
to a dead run and is taken over. Taking over, refreshing and releasing compare the stored
object with what was read (the ETag on S3, the bytes elsewhere), so a run never deletes
or overwrites a lease another run has just written.

Usage::

    with acquire("s3://bucket/out", job="nightly") as lease:  # heartbeat thread runs
        ...
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import math
import os
import socket
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

log = logging.getLogger(__name__)

LOCK_NAME = "_lock"
_HELD_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412", "409"})
_MISSING_CODES = frozenset({"NoSuchKey", "NotFound", "404"})


class LeaseHeldError(RuntimeError):
    """The output root is in use by another run whose heartbeat is fresh.

    Attributes:
        holder: the lease JSON of the other run (empty when it could not be read).
        age_seconds: age of the other run's heartbeat in seconds.
    """

    def __init__(
        self, root: str, lock_uri: str, holder: dict[str, Any], age: float, stale: float
    ) -> None:
        self.holder = holder
        self.age_seconds = age
        job = f", job {holder['job']}" if holder.get("job") else ""
        super().__init__(
            f"output root {root} is in use by run {holder.get('owner', '?')} "
            f"(host {holder.get('host', '?')}, pid {holder.get('pid', '?')}{job}, "
            f"started {holder.get('started', '?')}); its heartbeat is {age:.0f} s old. "
            f"Wait for it to finish, or remove {lock_uri} if that run is dead "
            f"(a lease older than {stale:.0f} s is taken over automatically)."
        )


def heartbeat_age(holder: dict[str, Any], now: float) -> float:
    """Seconds since ``holder``'s last heartbeat at Unix time ``now`` (0 if in the future).

    Uses ``heartbeat_epoch`` and falls back to parsing the ISO ``heartbeat``.

    Raises:
        ValueError: when the holder has no usable heartbeat.
    """
    epoch = holder.get("heartbeat_epoch")
    if not isinstance(epoch, int | float) or isinstance(epoch, bool) or not math.isfinite(epoch):
        stamp = holder.get("heartbeat")
        if not isinstance(stamp, str):
            raise ValueError(f"lease has no heartbeat: {holder!r}")
        parsed = datetime.fromisoformat(stamp)
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=UTC)
        epoch = parsed.timestamp()
    return max(0.0, now - float(epoch))


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class _Stored:
    """A lease object as read: its bytes and a token to compare it by (ETag or bytes)."""

    data: bytes
    token: object


class _Store(Protocol):
    uri: str
    race_free: bool

    def read(self) -> _Stored | None: ...

    def create(self, data: bytes) -> bool: ...

    def replace(self, stored: _Stored, data: bytes) -> bool: ...

    def delete(self, stored: _Stored) -> bool: ...


class _LocalStore:
    """``<root>/_lock`` on a POSIX filesystem."""

    race_free = True

    def __init__(self, path: Path) -> None:
        self.path = path
        self.uri = str(path)

    def _temp(self, tag: str) -> Path:
        return self.path.with_name(f".{self.path.name}.{uuid.uuid4().hex}.{tag}")

    def _write_temp(self, data: bytes) -> Path:
        temp = self._temp("tmp")
        with open(temp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return temp

    def read(self) -> _Stored | None:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return None
        return _Stored(data, data)

    def create(self, data: bytes) -> bool:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temp = self._write_temp(data)
        try:
            # A hard link appears atomically with its full content, and fails if the name exists.
            os.link(temp, self.path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
                raise
        finally:
            temp.unlink(missing_ok=True)
        try:
            fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return True

    def replace(self, stored: _Stored, data: bytes) -> bool:
        current = self.read()
        if current is None or current.data != stored.data:
            return False
        os.replace(self._write_temp(data), self.path)
        return True

    def delete(self, stored: _Stored) -> bool:
        # Move the lease aside atomically, then check it is the one we read; if another run
        # wrote a new lease in between, put that one back.
        moved = self._temp("del")
        try:
            os.rename(self.path, moved)
        except FileNotFoundError:
            return False
        data = moved.read_bytes()
        if data != stored.data:
            self.create(data)
            moved.unlink(missing_ok=True)
            return False
        moved.unlink(missing_ok=True)
        return True


class _S3Store:
    """``s3://bucket/prefix/_lock`` through boto3 conditional requests."""

    race_free = True

    def __init__(self, bucket: str, key: str) -> None:
        self.bucket = bucket
        self.key = key
        self.uri = f"s3://{bucket}/{key}"
        self._client: Any = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3

            # botocore reads AWS_ENDPOINT_URL(_S3) from the environment itself.
            self._client = boto3.client("s3")
        return self._client

    @staticmethod
    def _code(exc: Exception) -> str:
        response = getattr(exc, "response", None) or {}
        code = str(response.get("Error", {}).get("Code", ""))
        status = str(response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        return code if code else status

    def read(self) -> _Stored | None:
        from botocore.exceptions import ClientError

        try:
            response = self.client.get_object(Bucket=self.bucket, Key=self.key)
        except ClientError as exc:
            if self._code(exc) in _MISSING_CODES:
                return None
            raise
        return _Stored(response["Body"].read(), response["ETag"])

    def _put(self, data: bytes, **condition: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=data,
                ContentType="application/json",
                **condition,
            )
        except ClientError as exc:
            if self._code(exc) in _HELD_CODES | _MISSING_CODES:
                return False
            raise
        return True

    def create(self, data: bytes) -> bool:
        return self._put(data, IfNoneMatch="*")

    def replace(self, stored: _Stored, data: bytes) -> bool:
        return self._put(data, IfMatch=str(stored.token))

    def delete(self, stored: _Stored) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.delete_object(Bucket=self.bucket, Key=self.key, IfMatch=str(stored.token))
        except ClientError as exc:
            code = self._code(exc)
            if code in _HELD_CODES | _MISSING_CODES:
                return False
            if code != "NotImplemented":
                raise
            # An S3-compatible store without conditional deletes: compare, then delete.
            current = self.read()
            if current is None or current.data != stored.data:
                return False
            self.client.delete_object(Bucket=self.bucket, Key=self.key)
        return True


class _ArrowStore:
    """Any ``pyarrow.fs`` (or fsspec) URI: check-then-create, not race-free."""

    race_free = False

    def __init__(self, uri: str) -> None:
        self.uri = uri
        self._fs: Any = None
        self._path = ""

    def _filesystem(self) -> tuple[Any, str]:
        if self._fs is None:
            import pyarrow as pa
            import pyarrow.fs as pafs

            try:
                self._fs, self._path = pafs.FileSystem.from_uri(self.uri)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError, ValueError):
                import fsspec

                fs, self._path = fsspec.core.url_to_fs(self.uri)
                self._fs = pafs.PyFileSystem(pafs.FSSpecHandler(fs))
        return self._fs, self._path

    def read(self) -> _Stored | None:
        fs, path = self._filesystem()
        try:
            with fs.open_input_stream(path) as f:
                data = f.read()
        except FileNotFoundError:
            return None
        return _Stored(data, data)

    def _write(self, data: bytes) -> None:
        fs, path = self._filesystem()
        with fs.open_output_stream(path) as f:
            f.write(data)

    def create(self, data: bytes) -> bool:
        if self.read() is not None:
            return False
        self._write(data)
        return True

    def replace(self, stored: _Stored, data: bytes) -> bool:
        current = self.read()
        if current is None or current.data != stored.data:
            return False
        self._write(data)
        return True

    def delete(self, stored: _Stored) -> bool:
        current = self.read()
        if current is None or current.data != stored.data:
            return False
        fs, path = self._filesystem()
        with contextlib.suppress(FileNotFoundError):
            fs.delete_file(path)
        return True


def _store_for(root: str) -> _Store:
    """The lease store for output root ``root`` (local path, ``s3://``, or other URI)."""
    if root.startswith("file://"):
        root = root.removeprefix("file://")
    if "://" not in root:
        return _LocalStore(Path(root) / LOCK_NAME)
    if root.startswith("s3://"):
        bucket, _, prefix = root.removeprefix("s3://").partition("/")
        prefix = prefix.strip("/")
        return _S3Store(bucket, f"{prefix}/{LOCK_NAME}" if prefix else LOCK_NAME)
    return _ArrowStore(f"{root.rstrip('/')}/{LOCK_NAME}")


def _parse(data: bytes) -> dict[str, Any] | None:
    """The lease JSON, or None when it is corrupt or has no usable heartbeat."""
    try:
        holder = json.loads(data)
    except (UnicodeDecodeError, ValueError):
        return None
    if not isinstance(holder, dict) or not isinstance(holder.get("owner"), str):
        return None
    try:
        heartbeat_age(holder, 0.0)
    except (TypeError, ValueError, OverflowError, OSError):
        return None
    return holder


class Lease:
    """A held lease on an output root; see :func:`acquire`.

    Attributes:
        root: the output root.
        uri: the lease object's URI.
        owner: this run's id.
        lost: True once another run replaced or removed the lease; refreshing stops then.
    """

    def __init__(
        self, store: _Store, root: str, holder: dict[str, Any], heartbeat_seconds: float
    ) -> None:
        self._store = store
        self.root = root
        self.uri = store.uri
        self.owner: str = holder["owner"]
        self.heartbeat_seconds = heartbeat_seconds
        self.lost = False
        self._holder = holder
        self._released = False
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def holder(self) -> dict[str, Any]:
        """The lease JSON this run last wrote."""
        return dict(self._holder)

    def _mark_lost(self, current: _Stored | None) -> None:
        other = _parse(current.data) if current is not None else None
        if current is None:
            reason = "it was removed"
        elif other is None:
            reason = "it was overwritten with unreadable content"
        else:
            reason = (
                f"it now belongs to run {other['owner']} "
                f"(host {other.get('host')}, pid {other.get('pid')})"
            )
        log.error(
            "lost the lease %s of run %s: %s; not refreshing it", self.uri, self.owner, reason
        )
        self.lost = True
        self._stop.set()

    def refresh(self) -> bool:
        """Rewrite the heartbeat if the stored lease is still ours.

        Returns:
            True when the heartbeat was written; False when the lease is lost (then
            :attr:`lost` is True and the heartbeat thread stops) or already released.
        """
        with self._mutex:
            if self.lost or self._released:
                return False
            current = self._store.read()
            holder = _parse(current.data) if current is not None else None
            if current is None or holder is None or holder.get("owner") != self.owner:
                self._mark_lost(current)
                return False
            now = time.time()
            updated = {**self._holder, "heartbeat": _iso(now), "heartbeat_epoch": now}
            data = json.dumps(updated).encode()
            if not self._store.replace(current, data):
                self._mark_lost(self._store.read())
                return False
            self._holder = updated
            return True

    def _run(self) -> None:
        while not self._stop.wait(self.heartbeat_seconds):
            try:
                if not self.refresh():
                    return
            except Exception:  # a transient storage error must not kill the heartbeat
                log.warning("heartbeat for lease %s failed; retrying", self.uri, exc_info=True)

    def start(self) -> Lease:
        """Start the daemon thread that refreshes the heartbeat every heartbeat_seconds."""
        if self._thread is None and not self._released:
            self._thread = threading.Thread(
                target=self._run, name=f"lease-heartbeat-{self.owner[:8]}", daemon=True
            )
            self._thread.start()
        return self

    def release(self) -> None:
        """Stop the heartbeat and delete the lease if it is still ours (idempotent)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=max(30.0, 2 * self.heartbeat_seconds))
        with self._mutex:
            if self._released:
                return
            self._released = True
            current = self._store.read()
            holder = _parse(current.data) if current is not None else None
            if current is None or holder is None or holder.get("owner") != self.owner:
                log.warning(
                    "not removing lease %s: it is no longer held by run %s", self.uri, self.owner
                )
                return
            if not self._store.delete(current):
                log.warning("not removing lease %s: it changed while releasing", self.uri)

    def __enter__(self) -> Lease:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def acquire(
    root: str,
    *,
    stale_seconds: float = 600,
    heartbeat_seconds: float = 30,
    job: str = "",
) -> Lease:
    """Take the lease on output root ``root`` (a local path, ``s3://…``, ``gs://…``).

    Call :meth:`Lease.start` (or use ``with``) to keep the heartbeat fresh; keep
    ``heartbeat_seconds`` well below ``stale_seconds``.

    Args:
        root: the output root; the lease is ``<root>/_lock``.
        stale_seconds: a lease whose heartbeat is older than this is taken over.
        heartbeat_seconds: interval of the heartbeat thread.
        job: a label recorded in the lease and shown to runs that find it held.

    Raises:
        ValueError: for a non-positive interval.
        LeaseHeldError: another run holds a lease with a fresh heartbeat (nothing is
            written then), or won the race to take over a stale one.
    """
    if heartbeat_seconds <= 0 or stale_seconds <= 0:
        raise ValueError("stale_seconds and heartbeat_seconds must be positive")
    store = _store_for(root)
    if not store.race_free:
        log.warning(
            "lease %s: this filesystem has no atomic create; two runs starting at "
            "the same moment may both get the lease",
            store.uri,
        )
    now = time.time()
    holder: dict[str, Any] = {
        "owner": str(uuid.uuid4()),
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "job": job,
        "started": _iso(now),
        "heartbeat": _iso(now),
        "heartbeat_epoch": now,
    }
    data = json.dumps(holder).encode()
    lease = Lease(store, root, holder, heartbeat_seconds)

    current = store.read()
    if current is None and store.create(data):
        return lease
    if current is None:
        current = store.read()  # lost the race to create: judge the winner's lease
    if current is not None:
        other = _parse(current.data)
        if other is not None:
            age = heartbeat_age(other, time.time())
            if age < stale_seconds:
                raise LeaseHeldError(root, store.uri, other, age, stale_seconds)
            log.warning(
                "taking over stale lease %s of run %s (host %s, pid %s): its heartbeat "
                "is %.0f s old (stale after %.0f s)",
                store.uri,
                other["owner"],
                other.get("host"),
                other.get("pid"),
                age,
                stale_seconds,
            )
        else:
            log.warning("taking over unreadable lease %s: %r", store.uri, current.data[:200])
        store.delete(current)
    if store.create(data):
        return lease
    winner = store.read()
    other = (_parse(winner.data) if winner is not None else None) or {}
    age = heartbeat_age(other, time.time()) if other else 0.0
    raise LeaseHeldError(root, store.uri, other, age, stale_seconds)
