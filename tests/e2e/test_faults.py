"""Faults: an observe actor killed mid-clip, a job killed mid-game, a failing write.

The faults come from a test-only double, :class:`tests.reliability_corpus.FaultyTracking`
(the replay tracker plus an ``os._exit`` or a pause on request), injected through
``models.tracker._target_``; nothing in the package can fire them.
"""

from __future__ import annotations

import errno
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
from omegaconf import DictConfig

from hoopray import job, outputs, pipeline, stages, store
from hoopray import manifest as mf
from hoopray.settings import Settings
from hoopray.video import GameInput
from tests.reliability_corpus import TABLES, config, nightly_command, table_content

ROOT = Path(__file__).resolve().parents[2]
FAULTY = "models.tracker._target_=tests.reliability_corpus.FaultyTracking"
SIZE = (320, 180)
pytestmark = pytest.mark.reliability


def content(out: Path, game_id: str) -> dict[str, list[str]]:
    return table_content(out, game_id)


def _run(cfg: DictConfig) -> int:
    return job.run_job(cfg, incremental=False, start_ray=lambda **k: None)


# --------------------------------------------------------------------------- actor killed


@pytest.mark.slow
def test_killed_observe_actor_is_retried_and_a_poison_clip_fails_alone(
    ray_local, tmp_path: Path
) -> None:
    from hoopray.testing.synthetic import make_game

    games, labels = tmp_path / "games", tmp_path / "labels"
    make_game(games, labels, "g", seed=5, clips=3, seconds=1.5, fps=10, size=SIZE)
    make_game(games, labels, "p", seed=6, clips=2, seconds=1.0, fps=10, size=SIZE)
    killed = tmp_path / "killed"
    faults = (
        FAULTY,
        "+models.tracker.crash=g/clip-02",
        "+models.tracker.crash_frame=6",
        f"+models.tracker.marker={killed}",
        "+models.tracker.poison=p/clip-02",
        "++ray.observe.max_task_retries=1",
    )
    assert _run(config(games, labels, tmp_path / "faulty", *faults)) == 1
    assert killed.read_text() == "killed at frame 6\n"  # the actor did die mid-clip
    # the same config (so the same stage hashes) undisturbed: the crash marker exists now
    # and the poison clip's game is left out
    assert _run(config(games, labels, tmp_path / "calm", *faults, "data.games=[g]")) == 0
    assert killed.read_text() == "killed at frame 6\n"
    status = {
        (r["game_id"], r["clip_id"]): r
        for r in store.read_table(str(tmp_path / "faulty"), "status/clips").to_pylist()
    }
    assert len(status) == 5
    poison = status[("p", "clip-02")]
    assert (poison["status"], poison["stage"]) == ("failed", "observe")
    # in_flight 2 (the default): a round of 2 tries, then one with one item per actor
    assert "the observe worker died on every try (2 in each of 2 rounds)" in poison["reason"]
    for name in TABLES[:5]:  # the observation tables
        assert not os.path.exists(store.table_path(str(tmp_path / "faulty"), name, "p", "clip-02"))
    assert all(r["status"] == "ok" for k, r in status.items() if k != ("p", "clip-02"))
    expected, got = content(tmp_path / "calm", "g"), content(tmp_path / "faulty", "g")
    for name in TABLES:
        assert got[name] == expected[name], name
    tracks = store.read_table(str(tmp_path / "faulty"), "observations/tracks", "g", "clip-02")
    keys = list(zip(tracks["frame"].to_pylist(), tracks["track_id"].to_pylist(), strict=True))
    assert len(keys) == len(set(keys)) > 0


# --------------------------------------------------------------------------- job killed


HEARTBEAT, STALE = 1, 5  # the killed job's lease is taken over by the rerun after STALE s


def _wait_until_stale(out: Path) -> None:
    """Wait until the lease the killed job left (``_lock``) is stale."""
    lock = out / "_lock"
    if lock.is_file():
        age = time.time() - float(json.loads(lock.read_text())["heartbeat_epoch"])
        time.sleep(max(0.0, STALE + 1 - age))


def _job(out: Path, games: Path, labels: Path, marker: Path, hydra_dir: Path) -> list[str]:
    return nightly_command(
        games,
        labels,
        out,
        hydra_dir,
        *_paused(marker),
        f"output.lock_heartbeat_seconds={HEARTBEAT}",
        f"output.lock_stale_seconds={STALE}",
        "observe.read_stride=2",
        "teams.umap_neighbors=500",
        "ray.num_cpus=2",
    )


def _paused(marker: Path) -> tuple[str, ...]:
    """The fault double that pauses when ``HOOPRAY_TEST_PAUSE_AFTER`` is set (and runs
    undisturbed, with the same config and so the same stage hashes, when it is not)."""
    return (
        FAULTY,
        f"+models.tracker.marker={marker}",
        "+models.tracker.pause_env=HOOPRAY_TEST_PAUSE_AFTER",
    )


def _finished_clips(out: Path, game_id: str) -> set[str]:
    """Clips whose observations are complete: their ``observations/clip`` marker exists."""
    return set(store.list_clips(str(out), "observations/clip", game_id))


OBSERVED_LINE = re.compile(r"\bobserved (\d+)/(\d+) \((\S+)/(\S+) (\w+)\)")


def _observed_in_log(hydra_dir: Path, game_id: str) -> list[tuple[int, int, str, str]]:
    """(done, total, clip id, status) of each "observed N/M (<game>/<clip> <status>)" line."""
    text = (hydra_dir / "nightly.log").read_text()
    return [
        (int(m[1]), int(m[2]), m[4], m[5]) for m in OBSERVED_LINE.finditer(text) if m[3] == game_id
    ]


@pytest.mark.slow
def test_job_killed_mid_game_reruns_only_the_rest(ray_local, tmp_path: Path) -> None:
    from hoopray.testing.synthetic import make_game

    games, labels, out = tmp_path / "games", tmp_path / "labels", tmp_path / "out"
    make_game(games, labels, "k", seed=7, clips=4, seconds=1.5, fps=10, size=SIZE)
    paused = tmp_path / "paused"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    env.pop("HOOPRAY_TEST_PAUSE_AFTER", None)

    first = subprocess.Popen(
        _job(out, games, labels, paused, tmp_path / "h1"),
        cwd=tmp_path,
        env={**env, "HOOPRAY_TEST_PAUSE_AFTER": "2"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:  # paused on its third clip, after the first two wrote their markers
        deadline = time.monotonic() + 240
        while not (paused.exists() and _finished_clips(out, "k")):
            assert first.poll() is None, "the job ended before it could be killed"
            assert time.monotonic() < deadline, "the job never reached its third clip"
            time.sleep(0.2)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(timeout=60)
    assert paused.read_text() == "paused before clip 3\n"
    assert mf.load_game(str(out), "k") is None  # killed before the game was finished
    done = _finished_clips(out, "k")
    rest = {"clip-01", "clip-02", "clip-03", "clip-04"} - done
    assert done and len(rest) >= 2
    written = {
        c: os.stat(store.table_path(str(out), "observations/clip", "k", c)).st_mtime_ns
        for c in done
    }

    assert (out / "_lock").is_file()  # the killed job could not release its lease
    _wait_until_stale(out)
    rerun = subprocess.run(
        _job(out, games, labels, paused, tmp_path / "h2"),
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert rerun.returncode == 0, (rerun.stdout + rerun.stderr)[-3000:]
    assert "taking over stale lease" in (tmp_path / "h2" / "nightly.log").read_text()
    assert not (out / "_lock").exists()
    observed = _observed_in_log(tmp_path / "h2", "k")
    assert {clip for _, _, clip, _ in observed} == rest, observed
    assert len(observed) == len(rest)
    assert all(total == len(rest) and status == "ok" for _, total, _, status in observed)
    assert sorted(n for n, _, _, _ in observed) == list(range(1, len(rest) + 1))
    for clip_id, mtime in written.items():
        path = store.table_path(str(out), "observations/clip", "k", clip_id)
        assert os.stat(path).st_mtime_ns == mtime, f"{clip_id} was observed again"
    assert _finished_clips(out, "k") == {"clip-01", "clip-02", "clip-03", "clip-04"}

    whole = config(games, labels, tmp_path / "whole", *_paused(paused))
    assert job.run_job(whole, incremental=True, start_ray=lambda **k: None) == 0
    assert content(out, "k") == content(tmp_path / "whole", "k")


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


def _parquet_of(out: Path, clip_id: str, *, status: bool = True) -> list[Path]:
    return [
        p
        for p in out.rglob("*")
        if p.is_file()
        and f"clip_id={clip_id}" in str(p)
        and (status or "/status/clips/" not in p.as_posix())
    ]


@pytest.fixture
def small_game(tmp_path: Path) -> dict:
    from hoopray.testing.synthetic import make_game
    from hoopray.video import discover_games

    games, labels = tmp_path / "games", tmp_path / "labels"
    make_game(games, labels, "w", seed=8, clips=2, seconds=1.0, fps=10, size=SIZE)
    settings = Settings.from_cfg(config(games, labels, tmp_path / "out"))
    (game,) = discover_games(str(games))
    items = [pipeline.clip_item(game, clip) for clip in game.clips]
    assert [i["clip_id"] for i in items] == ["clip-01", "clip-02"]
    return {"settings": settings, "items": items, "game": game, "out": tmp_path / "out"}


def _observe(settings: Settings, items: list[dict]) -> list[dict]:
    worker = stages.GpuWorker(settings)
    return [
        stages.batch_rows(worker(stages.rows_batch([item], stages.WORK_KEYS)))[0] for item in items
    ]


def test_write_error_in_observe_fails_the_clip_and_leaves_no_partial_file(
    small_game: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = small_game["out"]
    attempts = _failing_write(monkeypatch, "observations/team_votes", "clip-02")
    statuses = _observe(small_game["settings"], small_game["items"])
    assert attempts, "the failing write was never reached"
    ok, failed = statuses
    assert (ok["kind"], ok["status"]) == ("observe", "ok")
    assert (failed["status"], failed["stage"]) == ("failed", "observe")
    assert "No space left on device" in failed["reason"]
    # tracks and reads removed too; only the worker's own failed status row is left
    assert _parquet_of(out, "clip-02", status=False) == []
    stored = outputs.read_status(str(out), "w", "clip-02")
    assert stored is not None
    assert (stored["status"], stored["stage"]) == ("failed", "observe")
    assert "No space left on device" in stored["reason"]
    assert len(_parquet_of(out, "clip-01")) == 5  # the five observation tables
    assert not [p for p in out.rglob(".*") if p.is_file()]


def _game_payload(game: GameInput, settings: Settings) -> dict:
    """What the driver hands :func:`hoopray.stages.finish_game`: every clip resolved and
    rendered, none removed, the game's fit as recorded (None: never fitted)."""
    return {
        "game_id": game.game_id,
        "game_dir": str(game.directory),
        "roster_fingerprint": outputs.roster_fingerprint(game.roster_path),
        "removed": [],
        "fit": stages.read_fit(settings.out_root, game.game_id),
        "clips": {c.clip_id: {"resolve": True, "render": True} for c in game.clips},
    }


def test_write_error_in_resolve_fails_the_clip_and_leaves_no_partial_file(
    small_game: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings, out = small_game["settings"], small_game["out"]
    observed = _observe(settings, small_game["items"])
    assert all(r["status"] == "ok" for r in observed)
    attempts = _failing_write(monkeypatch, "identities/frames", "clip-02")
    payload = _game_payload(small_game["game"], settings)
    finished = stages.finish_game(settings, payload, observed)
    resolved = {r["clip_id"]: r for r in finished}
    assert attempts
    assert set(resolved) == {"clip-01", "clip-02"}
    assert resolved["clip-01"]["status"] == "ok"
    assert (resolved["clip-02"]["status"], resolved["clip-02"]["stage"]) == ("failed", "resolve")
    assert "No space left on device" in resolved["clip-02"]["reason"]
    for name in ("identities/tracks", "identities/frames"):
        assert not os.path.exists(store.table_path(str(out), name, "w", "clip-02")), name
        assert os.path.isfile(store.table_path(str(out), name, "w", "clip-01")), name
    stored = outputs.read_status(str(out), "w", "clip-02")
    assert stored is not None and (stored["status"], stored["stage"]) == ("failed", "resolve")
    entry = mf.load_game(str(out), "w")
    assert entry is not None
    assert (entry.clips["clip-02"].status, entry.clips["clip-02"].stage) == ("failed", "resolve")
    assert not os.path.exists(outputs.video_path(str(out), "w", "clip-02"))
    assert os.path.isfile(outputs.video_path(str(out), "w", "clip-01"))
    assert not [p for p in out.rglob(".*") if p.is_file()]
