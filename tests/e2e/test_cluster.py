"""Several Ray nodes on this machine (``ray.cluster_utils.Cluster``) with fake GPUs and the
outputs on the local S3 endpoint; one worker node is removed mid-run."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from hoopray import job, store
from tests.e2e.test_s3 import content, upload
from tests.reliability_corpus import config

SIZE = (320, 180)
FAULTY = "models.tracker._target_=tests.reliability_corpus.FaultyTracking"

pytestmark = [pytest.mark.slow, pytest.mark.reliability]


def _busy_nodes(tries: Path) -> set[str]:
    """Nodes whose GPU actors started a clip (the doubles log ``pid node_id`` per try)."""
    found = set()
    for path in tries.glob("*.txt") if tries.exists() else []:
        for line in path.read_text().splitlines():
            found.add(line.split()[1])
    return found


def test_node_lost_mid_run_retries_its_clips_and_equals_an_undisturbed_run(
    own_ray, s3_endpoint: str, s3_bucket: str, tmp_path: Path
) -> None:
    """Starts its own Ray (a head and two worker nodes), not the session's ``ray_local``:
    a node is removed mid-run."""
    import ray
    from ray.cluster_utils import Cluster

    from hoopray.testing.synthetic import clip_key, make_game

    games_local, labels = tmp_path / "games", tmp_path / "labels"
    make_game(games_local, labels, "n1", seed=31, clips=3, seconds=1.5, fps=10, size=SIZE)
    make_game(games_local, labels, "n2", seed=32, clips=3, seconds=1.5, fps=10, size=SIZE)
    games = upload(games_local, s3_bucket, "games")
    out = f"s3://{s3_bucket}/out"
    tries = tmp_path / "tries"

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0})
    workers = [cluster.add_node(num_cpus=2, num_gpus=1) for _ in range(2)]
    ray.init(address=cluster.address, log_to_driver=False)
    try:
        cluster.wait_for_nodes()
        same = (
            FAULTY,
            "+models.tracker.delay=0.15",
            f"+models.tracker.log_dir={tries}",
            "output.render=false",
        )
        cfg = config(
            games, labels, out, *same, "ray.observe.actors=[1,2]", "ray.observe.max_task_retries=3"
        )
        result: dict[str, int] = {}
        running = threading.Thread(
            target=lambda: result.update(
                code=job.run_job(cfg, incremental=False, start_ray=lambda **k: None)
            ),
            daemon=True,
        )
        running.start()
        deadline = time.monotonic() + 240
        busy: set[str] = set()
        while time.monotonic() < deadline and running.is_alive():
            busy = _busy_nodes(tries) & {w.node_id for w in workers}
            if busy:
                break
            time.sleep(0.1)
        victim = next(w for w in workers if w.node_id in busy)
        cluster.remove_node(victim)
        running.join(timeout=400)
        assert not running.is_alive(), "the run did not finish after the node was lost"
        assert result["code"] == 0

        keys = {
            clip_key(g, f"clip-0{i}"): (g, f"clip-0{i}") for g in ("n1", "n2") for i in (1, 2, 3)
        }
        attempts = {keys[int(p.stem)]: len(p.read_text().splitlines()) for p in tries.glob("*.txt")}
        retried = sorted(k for k, n in attempts.items() if n > 1)
        print(f"\nnode loss: clips tried more than once: {len(retried)} {retried}")
        assert len(attempts) == 6 and retried

        whole = tmp_path / "whole"
        calm = config(games_local, labels, whole, *same)
        assert job.run_job(calm, incremental=False, start_ray=lambda **k: None) == 0
        for game_id in ("n1", "n2"):
            assert content(out, game_id) == content(str(whole), game_id)
        statuses = store.read_table(out, "status/clips").to_pylist()
        assert {r["status"] for r in statuses} == {"ok"}, json.dumps(statuses, default=str)
    finally:
        ray.shutdown()
        cluster.shutdown()
