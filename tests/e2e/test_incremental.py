"""Incremental runs redo only the delta; a hung clip fails alone; one run per output root."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from hoopray import job, store
from tests.e2e.test_s3 import content
from tests.reliability_corpus import config, nightly_command

ROOT = Path(__file__).resolve().parents[2]
SIZE = (320, 180)
FAULTY = "models.tracker._target_=tests.reliability_corpus.FaultyTracking"
OBSERVED = (
    "observations/tracks",
    "observations/reads",
    "observations/team_votes",
    "observations/detections",
    "observations/clip",
)

pytestmark = pytest.mark.slow


def _nightly(cfg) -> int:
    return job.run_job(cfg, incremental=True, start_ray=lambda **k: None)


def _stamps(out: Path, game_id: str, names=OBSERVED) -> dict[tuple[str, str], int]:
    """mtime (ns) of every partition file of ``names`` of a game."""
    found = {}
    for name in names:
        for clip_id in store.list_clips(str(out), name, game_id):
            path = store.table_path(str(out), name, game_id, clip_id)
            found[(name, clip_id)] = os.stat(path).st_mtime_ns
    return found


def test_a_new_clip_is_observed_alone_and_the_game_resolved_again(
    ray_local, tmp_path: Path
) -> None:
    from hoopray.testing.synthetic import make_game

    games, labels, out = tmp_path / "games", tmp_path / "labels", tmp_path / "out"
    make_game(games, labels, "a", seed=41, clips=5, seconds=1.0, fps=10, size=SIZE)
    extra = tmp_path / "extra"
    make_game(
        extra, tmp_path / "extra-labels", "a", seed=42, clips=1, seconds=1.0, fps=10, size=SIZE
    )
    assert _nightly(config(games, labels, out)) == 0
    before = _stamps(out, "a")
    model = os.stat(out / "a" / "teams" / "model.npz").st_mtime_ns
    identities = _stamps(out, "a", ("identities/tracks",))

    shutil.copy(extra / "a" / "clip-01.mp4", games / "a" / "clip-06.mp4")
    label = tmp_path / "extra-labels" / "a" / "clip-01.parquet"
    shutil.copy(label, labels / "a" / "clip-06.parquet")
    assert _nightly(config(games, labels, out)) == 0
    after = _stamps(out, "a")
    assert {k: v for k, v in after.items() if k[1] != "clip-06"} == before
    assert {k[1] for k in after} - {k[1] for k in before} == {"clip-06"}
    assert os.stat(out / "a" / "teams" / "model.npz").st_mtime_ns == model  # 1 of 5: no refit
    reresolved = _stamps(out, "a", ("identities/tracks",))
    assert all(reresolved[k] != v for k, v in identities.items())  # the game re-resolved
    assert _nightly(config(games, labels, out)) == 0  # and then nothing is left to do
    assert _stamps(out, "a") == after


def test_a_teams_only_change_resolves_again_without_observing(ray_local, tmp_path: Path) -> None:
    from hoopray.testing.synthetic import make_game

    games, labels, out = tmp_path / "games", tmp_path / "labels", tmp_path / "out"
    make_game(games, labels, "t", seed=43, clips=2, seconds=1.0, fps=10, size=SIZE)
    assert _nightly(config(games, labels, out)) == 0
    observed = _stamps(out, "t")
    model = os.stat(out / "t" / "teams" / "model.npz").st_mtime_ns
    identities = _stamps(out, "t", ("identities/tracks",))
    assert _nightly(config(games, labels, out, "teams.knn_k=3")) == 0
    assert _stamps(out, "t") == observed
    assert os.stat(out / "t" / "teams" / "model.npz").st_mtime_ns == model
    assert all(v != identities[k] for k, v in _stamps(out, "t", ("identities/tracks",)).items())
    # a key that changes the fitted model refits, and still observes nothing
    assert _nightly(config(games, labels, out, "teams.knn_k=3", "teams.scale=0.5")) == 0
    assert _stamps(out, "t") == observed
    assert os.stat(out / "t" / "teams" / "model.npz").st_mtime_ns != model


def test_a_hung_clip_times_out_and_fails_alone(ray_local, tmp_path: Path) -> None:
    from hoopray.testing.synthetic import make_game

    games, labels, out = tmp_path / "games", tmp_path / "labels", tmp_path / "out"
    make_game(games, labels, "h", seed=44, clips=3, seconds=1.0, fps=10, size=SIZE)
    cfg = config(
        games, labels, out, FAULTY, "+models.tracker.hang=h/clip-02", "ray.observe.clip_timeout_s=8"
    )
    started = time.monotonic()
    assert job.run_job(cfg, incremental=False, start_ray=lambda **k: None) == 1
    assert time.monotonic() - started < 120
    status = {r["clip_id"]: r for r in store.read_table(str(out), "status/clips").to_pylist()}
    assert {c: r["status"] for c, r in status.items()} == {
        "clip-01": "ok",
        "clip-02": "failed",
        "clip-03": "ok",
    }
    assert status["clip-02"]["stage"] == "observe"
    assert "clip_timeout_s=8" in status["clip-02"]["reason"]
    assert store.read_partition(str(out), "observations/clip", "h", "clip-02") is None
    assert store.read_table(str(out), "identities/tracks", "h", "clip-03").num_rows > 0


def _listing(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def test_a_second_run_on_the_same_root_exits_3_and_touches_nothing(
    ray_local, tmp_path: Path
) -> None:
    from hoopray.testing.synthetic import make_game

    games, labels, out = tmp_path / "games", tmp_path / "labels", tmp_path / "out"
    make_game(games, labels, "c", seed=45, clips=3, seconds=1.0, fps=10, size=SIZE)
    slow = (FAULTY, "+models.tracker.delay=0.1")
    first = subprocess.Popen(
        nightly_command(
            games,
            labels,
            out,
            tmp_path / "h1",
            *slow,
            "observe.read_stride=2",
            "teams.umap_neighbors=500",
            "ray.num_cpus=2",
        ),
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "_lock").exists():
            assert first.poll() is None and time.monotonic() < deadline
            time.sleep(0.05)
        before = _listing(out)
        second = subprocess.run(
            nightly_command(games, labels, out, tmp_path / "h2", *slow),
            cwd=tmp_path,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert second.returncode == 3, second.stdout + second.stderr
        assert "in use by run" in second.stdout and "heartbeat is" in second.stdout
        assert first.poll() is None, "the first run must still be going"
        after = _listing(out)
        assert {k: v for k, v in after.items() if k in before and k != "_lock"} == {
            k: v for k, v in before.items() if k != "_lock"
        }
        first_out, _ = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
    assert first.returncode == 0, first_out[-3000:]
    whole = tmp_path / "whole"
    assert (
        job.run_job(
            config(games, labels, whole, *slow), incremental=True, start_ray=lambda **k: None
        )
        == 0
    )
    assert content(str(out), "c") == content(str(whole), "c")
