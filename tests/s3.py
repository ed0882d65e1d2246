"""A real S3 endpoint for tests: a moto server on 127.0.0.1 with dummy credentials.

:func:`moto_s3` starts the server and points the AWS environment (boto3, botocore and
``pyarrow.fs``, which all read ``AWS_ENDPOINT_URL``) at it; the ``s3_endpoint`` and
``s3_bucket`` fixtures in ``tests/conftest.py`` wrap it.
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from collections.abc import Iterator
from typing import Any

DUMMY_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing-secret-key-not-real",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}
# Unset while the server runs, so that no real profile, token or endpoint mixes in.
_CLEARED_ENV = ("AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_S3")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def moto_s3() -> Iterator[str]:
    """Run a moto S3 server on 127.0.0.1 and yield its endpoint URL.

    Sets :data:`DUMMY_ENV` and ``AWS_ENDPOINT_URL`` in ``os.environ`` for the duration and
    restores the previous environment afterwards.
    """
    from moto.server import ThreadedMotoServer

    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    changes: dict[str, str | None] = {**DUMMY_ENV, "AWS_ENDPOINT_URL": endpoint}
    changes.update(dict.fromkeys(_CLEARED_ENV))
    saved = {name: os.environ.get(name) for name in changes}
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield endpoint
    finally:
        server.stop()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def s3_client() -> Any:
    """A boto3 S3 client for the endpoint in ``AWS_ENDPOINT_URL`` (see :func:`moto_s3`)."""
    import boto3

    return boto3.client(
        "s3", endpoint_url=os.environ["AWS_ENDPOINT_URL"], region_name=DUMMY_ENV["AWS_REGION"]
    )


def create_bucket(prefix: str = "hoopray-test") -> str:
    """Create a bucket with a fresh name ``<prefix>-<hex>`` and return the name."""
    name = f"{prefix}-{uuid.uuid4().hex}"[:63]
    s3_client().create_bucket(Bucket=name)
    return name


def delete_bucket(name: str) -> None:
    """Best effort: delete every object in bucket ``name``, then the bucket."""
    client = s3_client()
    with contextlib.suppress(Exception):
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=item["Key"])
        client.delete_bucket(Bucket=name)
