"""Faults: an observe actor killed mid-clip, a job killed mid-game, a failing write.

The faults come from a test-only double, :class:`tests.reliability_corpus.FaultyTracking`
(the replay tracker plus an ``os._exit`` or a pause on request), injected through
``models.tracker._target_``; nothing in the package can fire them.
"""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from omegaconf import DictConfig

from hoopray import pipeline, store
from tests.reliability_corpus import config

ROOT = Path(__file__).resolve().parents[1]
FAULTY = "models.tracker._target_=tests.reliability_corpus.FaultyTracking"
SIZE = (320, 180)
TIMING = {"seconds", "seconds_observe", "seconds_resolve", "seconds_render"}
TABLES = (
    "observations/tracks",
    "observations/reads",
    "observations/team_votes",
    "observations/clip",
    "identities/tracks",
    "identities/frames",
    "status/clips",
)

pytestmark = pytest.mark.reliability


@pytest.fixture(scope="module")
def ray_local():
    ray = pytest.importorskip("ray")
    ray.init(
        num_cpus=2,
        num_gpus=1,
        include_dashboard=False,
        ignore_reinit_error=True,
        log_to_driver=False,
    )
    yield ray
    ray.shutdown()


def content(out: Path, game_id: str) -> dict[str, list[str]]:
    """Every table of a game as sorted rows (JSON), timing columns left out."""
    found = {}
    for name in TABLES:
        table = store.read_table(out, name, game_id)
        keep = [c for c in table.column_names if c not in TIMING]
        rows = table.select(keep).to_pylist()
        found[name] = sorted(json.dumps(r, sort_keys=True, default=str) for r in rows)
    return found


def _run(cfg: DictConfig) -> int:
    return pipeline.run_job(cfg, incremental=False, start_ray=lambda **k: None)


# --------------------------------------------------------------------------- actor killed


@pytest.mark.slow
def test_killed_observe_actor_is_retried_and_a_poison_clip_fails_alone(
    ray_local, tmp_path: Path
) -> None:
    from hoopray.synthetic import make_game

    games, labels = tmp_path / "games", tmp_path / "labels"
    make_game(games, labels, "g", seed=5, clips=3, seconds=1.5, fps=10, size=SIZE)
    make_game(games, labels, "p", seed=6, clips=2, seconds=1.0, fps=10, size=SIZE)
    killed = tmp_path / "killed"
    calm = config(games, labels, tmp_path / "calm", FAULTY, "data.games=[g]")
    assert _run(calm) == 0
    faulty = config(
        games,
        labels,
        tmp_path / "faulty",
        FAULTY,
        "+models.tracker.crash=g/clip-02",
        "+models.tracker.crash_frame=6",
        f"+models.tracker.marker={killed}",
        "+models.tracker.poison=p/clip-02",
        "++ray.observe.max_task_retries=1",
    )
    assert _run(faulty) == 1
    assert killed.read_text() == "killed at frame 6\n"  # the actor did die mid-clip
    status = {
        (r["game_id"], r["clip_id"]): r
        for r in store.read_table(tmp_path / "faulty", "status/clips").to_pylist()
    }
    assert len(status) == 5
    poison = status[("p", "clip-02")]
    assert (poison["status"], poison["stage"]) == ("failed", "observe")
    assert "died on every try (2)" in poison["reason"]
    assert not store.table_path(tmp_path / "faulty", "observations/tracks", "p", "clip-02").exists()
    assert all(r["status"] == "ok" for k, r in status.items() if k != ("p", "clip-02"))
    expected, got = content(tmp_path / "calm", "g"), content(tmp_path / "faulty", "g")
    for name in TABLES:
        assert got[name] == expected[name], name
    tracks = store.read_table(tmp_path / "faulty", "observations/tracks", "g", "clip-02")
    keys = list(zip(tracks["frame"].to_pylist(), tracks["track_id"].to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) > 0


# --------------------------------------------------------------------------- job killed


def _job(out: Path, games: Path, labels: Path, marker: Path, hydra_dir: Path) -> list[str]:
    return [
        sys.executable,
        str(ROOT / "jobs" / "nightly.py"),
        "+experiment=replay",
        f"data.root={games}",
        f"data.labels={labels}",
        f"output.root={out}",
        f"hydra.run.dir={hydra_dir}",
        FAULTY,
        f"+models.tracker.marker={marker}",
        "+models.tracker.pause_env=HOOPRAY_TEST_PAUSE_AFTER",
        "++output.checkpoint_seconds=0",
        "observe.read_stride=2",
        "teams.umap_neighbors=500",
        "ray.num_cpus=2",
    ]


def _observed_in_manifest(out: Path) -> set[str]:
    path = out / "_manifest" / "manifest.json"
    if not path.is_file():
        return set()
    clips = json.loads(path.read_text())["games"].get("k", {}).get("clips", {})
    return {c for c, e in clips.items() if e["observe_hash"]}


def _observed_clips_in_log(hydra_dir: Path) -> set[str]:
    text = (hydra_dir / "nightly.log").read_text()
    return {
        line.split("observed k/")[1].split()[0]
        for line in text.splitlines()
        if "observed k/" in line
    }


@pytest.mark.slow
def test_job_killed_mid_game_reruns_only_the_rest(ray_local, tmp_path: Path) -> None:
    from hoopray.synthetic import make_game

    games, labels = tmp_path / "games", tmp_path / "labels"
    make_game(games, labels, "k", seed=7, clips=4, seconds=1.5, fps=10, size=SIZE)
    paused = tmp_path / "paused"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}

    job = subprocess.Popen(
        _job(tmp_path / "out", games, labels, paused, tmp_path / "h1"),
        cwd=tmp_path,
        env={**env, "HOOPRAY_TEST_PAUSE_AFTER": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:  # paused on its third clip; the driver may not have heard of the second yet
        deadline = time.monotonic() + 240
        while not (paused.exists() and _observed_in_manifest(tmp_path / "out")):
            assert job.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "the job never reached its third clip"
            time.sleep(0.2)
    finally:
        os.killpg(job.pid, signal.SIGKILL)
        job.wait(timeout=60)
    done = _observed_in_manifest(tmp_path / "out")
    rest = {"clip-01", "clip-02", "clip-03", "clip-04"} - done
    assert done and len(rest) >= 2
    written = {
        c: store.table_path(tmp_path / "out", "observations/clip", "k", c).stat().st_mtime_ns
        for c in done
    }

    rerun = subprocess.run(
        _job(tmp_path / "out", games, labels, paused, tmp_path / "h2"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert _observed_clips_in_log(tmp_path / "h2") == rest
    for clip_id, mtime in written.items():
        path = store.table_path(tmp_path / "out", "observations/clip", "k", clip_id)
        assert path.stat().st_mtime_ns == mtime, f"{clip_id} was observed again"

    whole = config(games, labels, tmp_path / "whole", FAULTY)
    assert pipeline.run_job(whole, incremental=True, start_ray=lambda **k: None) == 0
    assert content(tmp_path / "out", "k") == content(tmp_path / "whole", "k")


# --------------------------------------------------------------------------- write error


def _failing_write(monkeypatch: pytest.MonkeyPatch, table: str, clip_id: str) -> list[Path]:
    """Writes of ``table`` for ``clip_id`` put half a file down, then hit a full disk (when
    the store's Parquet writer closes its file, which every table write goes through)."""
    attempts: list[Path] = []

    class FailingWriter(store.pq.ParquetWriter):  # type: ignore[misc,name-defined]
        def __init__(self, where: object, *args: object, **kwargs: object) -> None:
            self.target = Path(str(where))
            super().__init__(where, *args, **kwargs)

        def close(self) -> None:
            super().close()
            path = self.target.as_posix()
            if f"/{table}/" in path and f"clip_id={clip_id}/" in path:
                attempts.append(self.target)
                self.target.write_bytes(self.target.read_bytes()[: self.target.stat().st_size // 2])
                raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(store.pq, "ParquetWriter", FailingWriter)
    return attempts


def _parquet_of(out: Path, clip_id: str) -> list[Path]:
    return [p for p in out.rglob("*") if p.is_file() and f"clip_id={clip_id}" in str(p)]


@pytest.fixture
def small_game(tmp_path: Path) -> dict:
    from hoopray.synthetic import make_game
    from hoopray.video import discover_games

    games, labels = tmp_path / "games", tmp_path / "labels"
    make_game(games, labels, "w", seed=8, clips=2, seconds=1.0, fps=10, size=SIZE)
    settings = pipeline.Settings.from_cfg(config(games, labels, tmp_path / "out"))
    rows = [
        {**r, "game_dir": str(games / "w")} for r in pipeline.iter_clip_rows(discover_games(games))
    ]
    return {"settings": settings, "rows": rows, "out": tmp_path / "out"}


def _observe(settings: pipeline.Settings, rows: list[dict]) -> list[dict]:
    stage = pipeline.ObserveStage(settings)
    return [
        pipeline.batch_rows(stage(pipeline.rows_batch([r], pipeline.CLIP_KEYS)))[0] for r in rows
    ]


def test_write_error_in_observe_fails_the_clip_and_leaves_no_partial_file(
    small_game: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = _failing_write(monkeypatch, "observations/team_votes", "clip-02")
    statuses = _observe(small_game["settings"], small_game["rows"])
    assert attempts, "the failing write was never reached"
    ok, failed = statuses
    assert ok["status"] == "ok"
    assert (failed["status"], failed["stage"]) == ("failed", "observe")
    assert "No space left on device" in failed["reason"]
    assert _parquet_of(small_game["out"], "clip-02") == []  # tracks and reads removed too
    assert len(_parquet_of(small_game["out"], "clip-01")) == 4


def test_write_error_in_resolve_fails_the_clip_and_leaves_no_partial_file(
    small_game: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, out = small_game["settings"], small_game["out"]
    observed = _observe(settings, small_game["rows"])
    assert all(r["status"] == "ok" for r in observed)
    attempts = _failing_write(monkeypatch, "identities/frames", "clip-02")
    rows = [
        {**r, "game_dir": small_game["rows"][0]["game_dir"], "prev_identities_hash": ""}
        for r in observed
    ]
    batch = pipeline.rows_batch(rows, pipeline.RESOLVE_IN_KEYS)
    resolved = {
        r["clip_id"]: r for r in pipeline.batch_rows(pipeline.resolve_game_group(batch, settings))
    }
    assert attempts
    assert resolved["clip-01"]["status"] == "ok"
    assert (resolved["clip-02"]["status"], resolved["clip-02"]["stage"]) == ("failed", "resolve")
    assert "No space left on device" in resolved["clip-02"]["reason"]
    for name in ("identities/tracks", "identities/frames"):
        assert not store.table_path(out, name, "w", "clip-02").exists(), name
        assert store.table_path(out, name, "w", "clip-01").is_file(), name
    assert not [p for p in out.rglob(".*") if p.is_file()]
