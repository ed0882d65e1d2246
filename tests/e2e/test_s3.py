"""The whole job with inputs and outputs on a real S3 endpoint (moto on 127.0.0.1).

Detection, tracking and reading are ground-truth replay doubles (``+experiment=replay``);
the clips, rosters and every output travel through ``pyarrow.fs.S3FileSystem``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from hoopray import job, store
from tests.reliability_corpus import TIMING, config, table_content

ROOT = Path(__file__).resolve().parents[2]
SIZE = (320, 180)
pytestmark = [pytest.mark.slow, pytest.mark.reliability]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from hoopray.testing.synthetic import make_game

    root = tmp_path_factory.mktemp("s3-world")
    games, labels = root / "games", root / "labels"
    make_game(games, labels, "g1", seed=11, clips=2, seconds=1.5, fps=10, size=SIZE)
    make_game(games, labels, "g2", seed=12, clips=1, seconds=1.5, fps=10, size=SIZE)
    return {"games": games, "labels": labels}


def upload(local: Path, bucket: str, prefix: str) -> str:
    from tests.s3 import s3_client

    client = s3_client()
    for path in sorted(local.rglob("*")):
        if path.is_file():
            client.upload_file(str(path), bucket, f"{prefix}/{path.relative_to(local).as_posix()}")
    return f"s3://{bucket}/{prefix}"


def content(out: str, game_id: str) -> dict[str, list[str]]:
    """What two runs must agree on; paths differ between S3 and local disk."""
    return table_content(out, game_id, TIMING | {"path"})


def _run(cfg) -> int:
    return job.run_job(cfg, incremental=False, start_ray=lambda **k: None)


def test_s3_end_to_end_equals_local_disk(
    ray_local, world, s3_endpoint: str, s3_bucket: str, tmp_path: Path, monkeypatch
) -> None:
    games = upload(world["games"], s3_bucket, "games")
    out = f"s3://{s3_bucket}/hoopray"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    started = time.perf_counter()
    assert _run(config(games, world["labels"], out)) == 0
    s3_seconds = time.perf_counter() - started
    leftovers = [p for p in cwd.rglob("*") if p.is_file() and "logs" not in p.parts]
    assert leftovers == []

    local_out = tmp_path / "local"
    started = time.perf_counter()
    assert _run(config(world["games"], world["labels"], local_out)) == 0
    local_seconds = time.perf_counter() - started
    print(f"\nS3 end-to-end: {s3_seconds:.1f} s; local disk: {local_seconds:.1f} s")
    for game_id in ("g1", "g2"):
        assert content(out, game_id) == content(str(local_out), game_id)
        for clip_id in ("clip-01",):
            assert store.is_file(f"{out}/{game_id}/videos/{clip_id}.mp4")
        assert store.is_file(f"{out}/{game_id}/report.html")
        assert store.is_file(f"{out}/{game_id}/teams/model.npz")
        assert store.is_file(f"{out}/_manifest/games/{game_id}.json")
    assert store.is_file(f"{out}/index.html")
    assert [e for e in store.list_dir(f"{out}/_runs") if e.name.endswith(".json")]
    assert not store.exists(f"{out}/_lock")  # released


def test_tables_on_s3_read_back_with_pyarrow_duckdb_and_polars(
    ray_local, world, s3_endpoint: str, s3_bucket: str
) -> None:
    import duckdb
    import polars as pl
    import pyarrow.dataset as ds
    import pyarrow.fs as pafs

    games = upload(world["games"], s3_bucket, "games")
    out = f"s3://{s3_bucket}/hoopray"
    assert _run(config(games, world["labels"], out, "output.render=false")) == 0
    expected = store.read_table(out, "identities/frames")
    assert expected.num_rows > 0

    fs = pafs.S3FileSystem(endpoint_override=s3_endpoint, region="us-east-1")
    dataset = ds.dataset(
        f"{s3_bucket}/hoopray/tables/identities/frames",
        filesystem=fs,
        format="parquet",
        partitioning="hive",
    )
    frames_tbl = dataset.to_table()
    assert frames_tbl.num_rows == expected.num_rows
    assert set(frames_tbl.column("game_id").to_pylist()) == {"g1", "g2"}

    per_game = duckdb.sql(
        "select game_id, count(*) as n from frames_tbl group by game_id order by game_id"
    ).fetchall()
    games_of = expected.column("game_id").to_pylist()
    assert per_game == [(g, games_of.count(g)) for g in ("g1", "g2")]

    options = {
        "aws_endpoint_url": s3_endpoint,
        "aws_access_key_id": os.environ["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": os.environ["AWS_SECRET_ACCESS_KEY"],
        "aws_region": "us-east-1",
        "aws_allow_http": "true",
    }
    frame = pl.scan_parquet(
        f"s3://{s3_bucket}/hoopray/tables/identities/tracks/**/*.parquet",
        hive_partitioning=True,
        storage_options=options,
    ).collect()
    assert frame.height == store.read_table(out, "identities/tracks").num_rows
    assert "confirmed" in frame["status"].to_list()


def _whole_objects(bucket: str) -> list[str]:
    """Every object key now; every Parquet object must parse whole, and no key is a
    temporary one."""
    import io

    from tests.s3 import s3_client

    client = s3_client()
    keys = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix="out/"):
        keys += [o["Key"] for o in page.get("Contents", [])]
    for key in keys:
        name = key.rsplit("/", 1)[-1]
        if name.startswith("."):
            assert name.endswith(".tmp"), key  # an upload in flight, never a table
            continue
        if key.endswith(".parquet"):
            try:
                body = client.get_object(Bucket=bucket, Key=key)["Body"].read()
            except client.exceptions.NoSuchKey:
                continue  # deleted between list and get by the rerun's cleanup
            pq.read_table(io.BytesIO(body))
    return keys


def test_job_killed_mid_run_on_s3_reruns_to_equal_tables(
    ray_local, world, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    from hoopray.testing.synthetic import make_game

    games_local, labels = tmp_path / "games", tmp_path / "labels"
    make_game(games_local, labels, "k", seed=21, clips=4, seconds=1.5, fps=10, size=SIZE)
    games = upload(games_local, s3_bucket, "games")
    out = f"s3://{s3_bucket}/out"
    paused = tmp_path / "paused"
    command = [
        sys.executable,
        str(ROOT / "jobs" / "nightly.py"),
        "+experiment=replay",
        f"data.root={games}",
        f"data.labels={labels}",
        f"output.root={out}",
        f"hydra.run.dir={tmp_path / 'h1'}",
        "models.tracker._target_=tests.reliability_corpus.FaultyTracking",
        f"+models.tracker.marker={paused}",
        "+models.tracker.pause_env=HOOPRAY_TEST_PAUSE_AFTER",
        "observe.read_stride=2",
        "teams.umap_neighbors=500",
        "ray.num_cpus=2",
    ]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    running = subprocess.Popen(
        command,
        cwd=tmp_path,
        env={**env, "HOOPRAY_TEST_PAUSE_AFTER": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 240
        while not paused.exists():
            assert running.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "the job never reached its third clip"
            _whole_objects(s3_bucket)
            time.sleep(0.3)
        _whole_objects(s3_bucket)
    finally:
        os.killpg(running.pid, signal.SIGKILL)
        running.wait(timeout=60)
    done = set(store.list_clips(out, "observations/clip", "k"))
    assert done and len(done) < 4

    rerun = subprocess.run(
        [
            *command[:6],
            f"hydra.run.dir={tmp_path / 'h2'}",
            *command[7:],
            "output.lock_stale_seconds=1",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    _whole_objects(s3_bucket)
    whole = tmp_path / "whole"
    calm = config(games_local, labels, whole, *command[7:10])  # the same tracker, unpaused
    assert _run(calm) == 0
    assert content(out, "k") == content(str(whole), "k")
