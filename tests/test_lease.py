"""hoopray.lease: one run per output root, on local paths and on S3 (moto on 127.0.0.1)."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

from hoopray import lease as lease_module
from hoopray.lease import Lease, LeaseHeldError, acquire, heartbeat_age
from tests.s3 import s3_client

REPO = Path(__file__).resolve().parents[1]


@dataclass
class Root:
    """An output root under test and raw access to its ``_lock`` object."""

    kind: str
    uri: str
    lock_uri: str
    read: Callable[[], bytes | None]
    write: Callable[[bytes], None]
    listing: Callable[[], list[str]]


def _local_root(path: Path) -> Root:
    lock = path / "_lock"

    def read() -> bytes | None:
        return lock.read_bytes() if lock.exists() else None

    def write(data: bytes) -> None:
        path.mkdir(parents=True, exist_ok=True)
        lock.write_bytes(data)

    def listing() -> list[str]:
        return sorted(p.name for p in path.iterdir()) if path.exists() else []

    return Root("local", str(path), str(lock), read, write, listing)


def _s3_root(kind: str, bucket: str) -> Root:
    client = s3_client()

    def read() -> bytes | None:
        try:
            return client.get_object(Bucket=bucket, Key="out/_lock")["Body"].read()
        except client.exceptions.NoSuchKey:
            return None

    def write(data: bytes) -> None:
        client.put_object(Bucket=bucket, Key="out/_lock", Body=data)

    def listing() -> list[str]:
        response = client.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in response.get("Contents", []))

    return Root(kind, f"s3://{bucket}/out", f"s3://{bucket}/out/_lock", read, write, listing)


@pytest.fixture(params=["local", "s3", "s3-arrow"])
def root(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Root:
    """A local root, an S3 root (boto3 conditional writes) and an S3 root reached through
    the generic ``pyarrow.fs`` fallback that ``gs://`` and fsspec URIs use."""
    if request.param == "local":
        return _local_root(tmp_path / "out")
    bucket = request.getfixturevalue("s3_bucket")
    if request.param == "s3-arrow":
        monkeypatch.setattr(
            lease_module, "_store_for", lambda root: lease_module._ArrowStore(f"{root}/_lock")
        )
    return _s3_root(request.param, bucket)


def _holder(owner: str = "other-run", age: float = 0.0, **extra: object) -> bytes:
    epoch = time.time() - age
    stamp = datetime.fromtimestamp(epoch).astimezone().isoformat()
    holder = {
        "owner": owner,
        "host": "elsewhere",
        "pid": 4242,
        "job": "other-job",
        "started": stamp,
        "heartbeat": stamp,
        "heartbeat_epoch": epoch,
        **extra,
    }
    return json.dumps(holder).encode()


def _stored(root: Root) -> dict:
    data = root.read()
    assert data is not None, f"no lease at {root.lock_uri}"
    return json.loads(data)


def test_acquire_writes_the_lease(root: Root) -> None:
    before = time.time()
    lease = acquire(root.uri, job="nightly")
    try:
        stored = _stored(root)
        assert set(stored) == {
            "owner",
            "host",
            "pid",
            "job",
            "started",
            "heartbeat",
            "heartbeat_epoch",
        }
        assert stored["owner"] == lease.owner
        assert uuid.UUID(stored["owner"])
        assert stored["pid"] == os.getpid()
        assert stored["host"]
        assert stored["job"] == "nightly"
        assert datetime.fromisoformat(stored["started"]).utcoffset().total_seconds() == 0
        assert before - 1 <= stored["heartbeat_epoch"] <= time.time() + 1
        assert heartbeat_age(stored, time.time()) < 5
        assert lease.uri == root.lock_uri
        assert lease.holder == stored
        assert not lease.lost
    finally:
        lease.release()


def test_second_acquire_names_the_holder_and_writes_nothing(root: Root) -> None:
    first = acquire(root.uri, job="nightly")
    try:
        data, listing = root.read(), root.listing()
        with pytest.raises(LeaseHeldError) as caught:
            acquire(root.uri, job="second")
        message = str(caught.value)
        assert f"output root {root.uri} is in use by run {first.owner}" in message
        assert f"pid {os.getpid()}" in message
        assert "job nightly" in message
        assert f"started {first.holder['started']}" in message
        assert "its heartbeat is 0 s old" in message
        assert f"remove {root.lock_uri} if that run is dead" in message
        assert "older than 600 s is taken over" in message
        assert isinstance(caught.value, RuntimeError)
        assert caught.value.holder["owner"] == first.owner
        assert 0 <= caught.value.age_seconds < 5
        assert root.read() == data
        assert root.listing() == listing
    finally:
        first.release()


def test_release_removes_the_lease_and_a_new_run_gets_it(root: Root) -> None:
    first = acquire(root.uri)
    first.release()
    assert root.read() is None
    first.release()  # idempotent
    second = acquire(root.uri)
    assert _stored(root)["owner"] == second.owner != first.owner
    second.release()
    assert root.read() is None


def test_stale_lease_is_taken_over(root: Root, caplog: pytest.LogCaptureFixture) -> None:
    root.write(_holder("dead-run", age=1000))
    with caplog.at_level(logging.WARNING, logger="hoopray.lease"):
        lease = acquire(root.uri, stale_seconds=600)
    try:
        assert any(
            "taking over stale lease" in r.message and "dead-run" in r.message
            for r in caplog.records
        )
        assert _stored(root)["owner"] == lease.owner
    finally:
        lease.release()


def test_fresh_lease_of_another_run_is_not_taken_over(root: Root) -> None:
    root.write(_holder("live-run", age=100))
    with pytest.raises(LeaseHeldError, match=r"live-run .* heartbeat is 100 s old"):
        acquire(root.uri, stale_seconds=600)
    assert _stored(root)["owner"] == "live-run"


def test_corrupt_lease_is_taken_over(root: Root, caplog: pytest.LogCaptureFixture) -> None:
    root.write(b'{"owner": "half-writ')
    with caplog.at_level(logging.WARNING, logger="hoopray.lease"):
        lease = acquire(root.uri)
    try:
        assert any("unreadable lease" in r.message for r in caplog.records)
        assert _stored(root)["owner"] == lease.owner
    finally:
        lease.release()


def test_heartbeat_thread_advances_the_heartbeat(root: Root) -> None:
    with acquire(root.uri, heartbeat_seconds=0.2) as lease:
        first = _stored(root)
        time.sleep(0.8)
        later = _stored(root)
        assert later["heartbeat_epoch"] > first["heartbeat_epoch"]
        assert later["heartbeat"] != first["heartbeat"]
        assert later["started"] == first["started"]
        assert later["owner"] == lease.owner
        assert lease._thread is not None and lease._thread.is_alive()
    assert root.read() is None
    assert not lease._thread.is_alive()


def test_refresh_rewrites_the_heartbeat(root: Root) -> None:
    lease = acquire(root.uri)
    try:
        before = _stored(root)["heartbeat_epoch"]
        time.sleep(0.01)
        assert lease.refresh() is True
        assert _stored(root)["heartbeat_epoch"] > before
        assert lease.holder == _stored(root)
    finally:
        lease.release()


def test_stolen_lease_is_lost_and_not_deleted(root: Root, caplog: pytest.LogCaptureFixture) -> None:
    lease = acquire(root.uri)
    thief = _holder("thief-run")
    root.write(thief)
    with caplog.at_level(logging.WARNING, logger="hoopray.lease"):
        assert lease.refresh() is False
        assert lease.lost
        assert lease.refresh() is False  # stays stopped
        lease.release()
    assert any(r.levelno == logging.ERROR and "thief-run" in r.message for r in caplog.records)
    assert root.read() == thief


def test_heartbeat_thread_stops_when_the_lease_is_stolen(root: Root) -> None:
    lease = acquire(root.uri, heartbeat_seconds=0.1).start()
    thief = _holder("thief-run")
    root.write(thief)
    deadline = time.monotonic() + 5
    while not lease.lost and time.monotonic() < deadline:
        time.sleep(0.05)
    assert lease.lost
    assert lease._thread is not None
    lease._thread.join(timeout=2)
    assert not lease._thread.is_alive()
    lease.release()
    assert root.read() == thief


def test_removed_lease_is_lost(root: Root) -> None:
    lease = acquire(root.uri)
    lease_module._store_for(root.uri).delete(lease_module._store_for(root.uri).read())
    assert root.read() is None
    assert lease.refresh() is False
    assert lease.lost
    lease.release()
    assert root.read() is None


def test_store_deletes_and_replaces_only_what_it_read(root: Root) -> None:
    store = lease_module._store_for(root.uri)
    assert store.create(b"first")
    assert not store.create(b"second")
    stored = store.read()
    assert stored is not None and stored.data == b"first"
    root.write(b"newer")
    assert not store.replace(stored, b"mine")
    assert not store.delete(stored)
    assert root.read() == b"newer"
    current = store.read()
    assert current is not None and store.replace(current, b"mine")
    assert root.read() == b"mine"
    assert store.delete(store.read())
    assert root.read() is None


def test_takeover_that_loses_the_race_raises(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _local_root(tmp_path / "out")
    root.write(_holder("dead-run", age=1000))
    real_delete = lease_module._LocalStore.delete

    def delete_then_lose(self: lease_module._LocalStore, stored: lease_module._Stored) -> bool:
        deleted = real_delete(self, stored)
        root.write(_holder("faster-run"))  # another run takes over first
        return deleted

    monkeypatch.setattr(lease_module._LocalStore, "delete", delete_then_lose)
    with pytest.raises(LeaseHeldError, match="faster-run") as caught:
        acquire(root.uri)
    assert caught.value.holder["owner"] == "faster-run"
    assert _stored(root)["owner"] == "faster-run"


def test_local_root_is_created(tmp_path: Path) -> None:
    root = tmp_path / "a" / "b" / "out"
    with acquire(str(root)) as lease:
        assert (root / "_lock").is_file()
        assert lease.uri == str(root / "_lock")
    assert sorted(p.name for p in root.iterdir()) == []


def test_local_create_without_hard_links(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_links(src: object, dst: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(lease_module.os, "link", no_links)
    root = _local_root(tmp_path / "out")
    with acquire(root.uri) as lease:
        assert _stored(root)["owner"] == lease.owner
        with pytest.raises(LeaseHeldError):
            acquire(root.uri)
        assert root.listing() == ["_lock"]
    assert root.listing() == []


def test_intervals_must_be_positive(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        acquire(str(tmp_path), heartbeat_seconds=0)
    assert not (tmp_path / "_lock").exists()


@pytest.mark.parametrize(
    ("uri", "kind", "lock"),
    [
        ("/data/out", "_LocalStore", "/data/out/_lock"),
        ("file:///data/out", "_LocalStore", "/data/out/_lock"),
        ("s3://bucket", "_S3Store", "s3://bucket/_lock"),
        ("s3://bucket/a/out/", "_S3Store", "s3://bucket/a/out/_lock"),
        ("gs://bucket/out", "_ArrowStore", "gs://bucket/out/_lock"),
    ],
)
def test_store_for_scheme(uri: str, kind: str, lock: str) -> None:
    store = lease_module._store_for(uri)
    assert type(store).__name__ == kind
    assert store.uri == lock


def test_only_the_non_atomic_fallback_warns(root: Root, caplog: pytest.LogCaptureFixture) -> None:
    assert not lease_module._store_for("gs://bucket/out").race_free
    with caplog.at_level(logging.WARNING, logger="hoopray.lease"), acquire(root.uri):
        pass
    warned = any("no atomic create" in r.message for r in caplog.records)
    assert warned == (root.kind == "s3-arrow")


def test_heartbeat_age() -> None:
    assert heartbeat_age({"heartbeat_epoch": 100.0}, 112.5) == 12.5
    assert heartbeat_age({"heartbeat_epoch": 100}, 90.0) == 0.0  # clock skew
    assert heartbeat_age({"heartbeat": "1970-01-01T00:01:40+00:00"}, 110.0) == 10.0
    assert heartbeat_age({"heartbeat": "1970-01-01T00:01:40"}, 110.0) == 10.0  # naive: UTC
    with pytest.raises(ValueError):
        heartbeat_age({"owner": "x"}, 0.0)
    with pytest.raises(ValueError):
        heartbeat_age({"heartbeat": "yesterday"}, 0.0)


def test_lease_is_a_context_manager(root: Root) -> None:
    with acquire(root.uri) as lease:
        assert isinstance(lease, Lease)
        assert _stored(root)["owner"] == lease.owner
        with pytest.raises(LeaseHeldError):
            acquire(root.uri)
    assert root.read() is None


@pytest.mark.parametrize("kind", ["local", "s3"])
def test_killed_run_is_taken_over_once_stale(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    if kind == "local":
        root = _local_root(tmp_path / "out")
    else:
        root = _s3_root(kind, request.getfixturevalue("s3_bucket"))
    code = (
        "from hoopray.lease import acquire; import time; "
        f"l=acquire({root.uri!r}, heartbeat_seconds=0.2); l.start(); "
        "print('ok', flush=True); time.sleep(60)"
    )
    child = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        line = child.stdout.readline()
        assert line.strip() == "ok", child.stderr.read() if child.stderr else line
        time.sleep(0.5)  # a couple of heartbeats
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=10)
        if child.stdout is not None:
            child.stdout.close()
        if child.stderr is not None:
            child.stderr.close()
    holder = _stored(root)
    assert holder["pid"] == child.pid
    with pytest.raises(LeaseHeldError, match=f"pid {child.pid}"):
        acquire(root.uri, stale_seconds=30)
    time.sleep(1.5)
    lease = acquire(root.uri, stale_seconds=1)
    assert _stored(root)["owner"] == lease.owner != holder["owner"]
    lease.release()
