"""Shared fixtures and helpers. The network is blocked for every test: only loopback is
allowed (Ray's local cluster and the browser tests talk to 127.0.0.1).

- :func:`compose_config`: the real config of ``conf/``, composed as the jobs compose it,
  shrunk for CPU on request (:data:`CPU_OVERRIDES`);
- :func:`ray_local`: one local Ray for the session (2 CPUs, a fake GPU);
- tiny random-weight models of the real architectures, built once per session;
- a real S3 endpoint (moto on 127.0.0.1).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from omegaconf import DictConfig

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")

_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


class NetworkBlockedError(OSError):
    """Raised when a test tries to reach anything but loopback."""


def _is_local(address: object) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0] if isinstance(address, tuple) else address
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: object) -> None:
    if not _is_local(address):
        raise NetworkBlockedError(f"tests are offline: connection to {address!r} refused")
    return _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: object) -> int:
    if not _is_local(address):
        raise NetworkBlockedError(f"tests are offline: connection to {address!r} refused")
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]


@pytest.fixture
def no_network() -> None:
    """Documents that a test relies on the blocked network (it is blocked for all)."""
    with pytest.raises(NetworkBlockedError):
        socket.create_connection(("203.0.113.1", 443), timeout=1)


# The real config (conf/), composed as the jobs compose it.

CONF = Path(__file__).resolve().parents[1] / "conf"
# The real config shrunk for a CPU test: numbers read on every 2nd frame, and PCA instead of
# UMAP for the team model (no numba compilation in a test).
CPU_OVERRIDES = ("observe.read_stride=2", "teams.umap_neighbors=500")


@contextlib.contextmanager
def real_config_dir() -> Iterator[None]:
    """Hydra initialised on ``conf/``, as ``@hydra.main`` initialises it for the jobs."""
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        yield


def compose_config(
    *overrides: str, name: str = "config", cpu: bool = False, hydra: bool = False
) -> DictConfig:
    """The real config ``name`` (``conf/<name>.yaml``) with ``overrides``.

    Args:
        overrides: Hydra command-line overrides, as a user gives them.
        name: ``config`` (the jobs) or ``sweep``.
        cpu: shrink it for CPU with :data:`CPU_OVERRIDES`, given before ``overrides`` (so
            an override of the same key wins).
        hydra: keep the ``hydra`` node (``return_hydra_config``).
    """
    from hydra import compose

    with real_config_dir():
        return compose(
            config_name=name,
            overrides=[*(CPU_OVERRIDES if cpu else ()), *overrides],
            return_hydra_config=hydra,
        )


# One local Ray for the tests that run the pipeline in this process.

LOCAL_RAY = {
    # a new local instance: never the cluster another process on this machine left in
    # /tmp/ray/ray_current_cluster (a ray.cluster_utils.Cluster, `ray start`)
    "address": "local",
    "num_cpus": 2,
    "num_gpus": 1,  # a fake GPU: the GPU-actor paths are scheduled as on a cluster
    "include_dashboard": False,
    "log_to_driver": False,
}


@pytest.fixture(scope="session")
def ray_local() -> Iterator[ModuleType]:
    """A local Ray (:data:`LOCAL_RAY`), started on first use and shut down at the end of
    the session; the tests pass ``start_ray=lambda **k: None`` to the job."""
    import ray

    ray.init(**LOCAL_RAY)
    yield ray
    ray.shutdown()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The tests that start their own Ray in this process (:func:`own_ray`) run last: after
    a ``ray.cluster_utils.Cluster`` in this process, a local Ray started later does not
    bring a killed observe actor back (``e2e/test_faults.py`` hangs)."""
    items.sort(key=lambda item: "own_ray" in getattr(item, "fixturenames", ()))


@pytest.fixture
def own_ray() -> Iterator[ModuleType]:
    """For a test that starts its own Ray in this process (several nodes of
    ``ray.cluster_utils.Cluster``): the session's :func:`ray_local`, if it runs, is shut
    down for the test and started again after it."""
    import ray

    running = ray.is_initialized()
    if running:
        ray.shutdown()
    yield ray
    if ray.is_initialized():
        ray.shutdown()
    if running:
        ray.init(**LOCAL_RAY)


# Tiny random-weight models of the real architectures (hoopray.testing.tiny), built once per
# session and loaded by the production adapters through their ordinary loading path.


@pytest.fixture(scope="session")
def tiny_siglip_dir(tmp_path_factory: pytest.TempPathFactory):
    from hoopray.testing.tiny import build_tiny_siglip

    return build_tiny_siglip(tmp_path_factory.mktemp("tiny-siglip"))


@pytest.fixture(scope="session")
def tiny_smolvlm_dirs(tmp_path_factory: pytest.TempPathFactory):
    """(base directory, LoRA adapter directory)."""
    from hoopray.testing.tiny import build_tiny_smolvlm

    return build_tiny_smolvlm(tmp_path_factory.mktemp("tiny-smolvlm"))


@pytest.fixture(scope="session")
def tiny_rfdetr_checkpoint(tmp_path_factory: pytest.TempPathFactory):
    from hoopray.testing.tiny import build_tiny_rfdetr

    return build_tiny_rfdetr(tmp_path_factory.mktemp("tiny-rfdetr") / "players.pth")


@pytest.fixture(scope="session")
def tiny_sam2_dir(tmp_path_factory: pytest.TempPathFactory) -> os.PathLike[str]:
    """A tiny randomly initialised transformers ``Sam2VideoModel`` (128 px input) and its
    processor, saved with ``save_pretrained``; load it through the production path."""
    from hoopray.testing.tiny import build_tiny_sam2_video

    return build_tiny_sam2_video(tmp_path_factory.mktemp("tiny_sam2"), seed=0)


# A real S3 endpoint (moto server on 127.0.0.1) with dummy credentials; see tests/s3.py.


@pytest.fixture(scope="session")
def s3_endpoint():
    """The endpoint URL of a session-wide moto S3 server; AWS_* env vars point at it."""
    from tests.s3 import moto_s3

    with moto_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_bucket(s3_endpoint: str):
    """A fresh, empty bucket on :func:`s3_endpoint`; yields its name."""
    from tests.s3 import create_bucket, delete_bucket

    name = create_bucket()
    yield name
    delete_bucket(name)
