"""The scale benchmarks stay runnable and their checks can fail.

``benchmarks/cluster_sim.py`` (GPU utilisation on 4 fake GPUs) and
``benchmarks/driver_scale.py`` (the driver's cost per clip at two archive sizes) run in
their ``--quick`` modes as a user runs them (a subprocess from the repository root); no
speed target is asserted, only that each ends with a well-formed ``result:`` line. The
checks behind those lines are tested on hand-made inputs whose answer is known.
"""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
RESULT = re.compile(r"^result: (?P<name>[a-z0-9_]+)=(?P<value>[0-9.]+) target=\S+ (pass|fail)$")


def bench(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` as the scripts see each other (``import common``)."""
    if str(ROOT / "benchmarks") not in sys.path:
        sys.path.insert(0, str(ROOT / "benchmarks"))
    return importlib.import_module(name)


def run_script(name: str, *args: str, timeout: float) -> list[str]:
    """Run ``benchmarks/<name>.py`` as a user would; its stdout lines."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / f"{name}.py"), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.splitlines()


# --------------------------------------------------------------------------- cluster_sim


def events(*rows: tuple[str, str, str, str, float, float], pid: int = 1) -> list:
    """Events of one actor: (what, kind, game, clip, start, end)."""
    cluster_sim = bench("cluster_sim")
    return [
        cluster_sim.Event(pid, what, kind, game, clip, start, end, end - start)
        for what, kind, game, clip, start, end in rows
    ]


def test_utilisation_is_the_bound_over_the_makespan() -> None:
    cluster_sim = bench("cluster_sim")
    made = [
        *events(
            ("ready", "", "", "", 0.5, 0.5),
            ("item", "observe", "g1", "c1", 1.0, 4.5),
            ("track", "observe", "g1", "c1", 1.0, 3.0),
            ("track", "observe", "g1", "c1", 3.0, 4.0),
            ("item", "sample", "g2", "", 5.0, 6.0),
            ("detect", "sample", "g2", "", 5.0, 6.0),
        ),
        *events(
            ("item", "observe", "g1", "c2", 2.0, 3.5),
            ("track", "observe", "g1", "c2", 2.0, 3.0),
            pid=2,
        ),
    ]
    run = cluster_sim.measure_run("streaming", made, 0.0, 6.0, 0)
    # 5 GPU-s over 4 GPUs is 1.25 s, but g1's clip c1 alone needs 3 s: bound 3, makespan 6
    assert run.bound.gpu_seconds == pytest.approx(5.0)
    assert (run.bound.chain, run.bound.chain_game) == (pytest.approx(3.0), "g1")
    assert run.utilisation == pytest.approx(0.5)
    assert run.cpu_in_items == pytest.approx(6.0 - 5.0)  # 3.5 + 1 + 1.5 held, 5 slept
    assert run.outside_items == pytest.approx(4 * 6.0 - 6.0)
    assert (run.first_item, run.tail) == (pytest.approx(1.0), pytest.approx(0.0))
    first = run.actors[0]
    assert (first.pid, first.ready, first.items, first.gaps) == (1, 0.5, 2, pytest.approx(0.5))
    assert cluster_sim.verdict([run]) == "result: gpu_utilisation=0.5 target=>=0.85 fail"


def test_utilisation_passes_only_at_the_target_and_without_failures() -> None:
    cluster_sim = bench("cluster_sim")
    busy = [
        e
        for pid in range(4)
        for e in events(
            ("item", "observe", f"g{pid}", "c", 0.0, 10.0),
            ("track", "observe", f"g{pid}", "c", 0.0, 9.0),
            pid=pid,
        )
    ]
    run = cluster_sim.measure_run("streaming", busy, 0.0, 10.0, 0)
    assert run.utilisation == pytest.approx(0.9)
    assert cluster_sim.verdict([run]).endswith("target=>=0.85 pass")
    failed = cluster_sim.measure_run("streaming", busy, 0.0, 10.0, 1)
    assert cluster_sim.verdict([failed]).endswith("fail")
    slow = cluster_sim.measure_run("streaming", busy, 0.0, 12.0, 0)
    assert cluster_sim.verdict([slow]) == "result: gpu_utilisation=0.75 target=>=0.85 fail"
    assert cluster_sim.utilisation(1.0, 0.0) == 0.0


def test_model_calls_on_observes_threads_count_for_the_running_item(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """observe calls the tracker from its own thread (``infer_ahead``): the call's GPU time
    still belongs to the work item the actor runs, and nothing is credited between items."""
    import threading

    from hoopray import stages

    cluster_sim = bench("cluster_sim")

    def one(self, row):
        call = threading.Thread(
            target=cluster_sim.hold_gpu, args=(log, "track", 0.01, lambda: None)
        )
        call.start()
        call.join()
        return row

    monkeypatch.setattr(stages.GpuWorker, "_one", one)
    log = cluster_sim.EventLog(str(tmp_path))
    cluster_sim._time_work_items(log)
    for clip in ("c1", "c2"):
        stages.GpuWorker._one(None, {"kind": "observe", "game_id": "g", "clip_id": clip})
    cluster_sim.hold_gpu(log, "track", 0.01, lambda: None)  # between items
    found = [(e.what, e.item) for e in cluster_sim.read_events(tmp_path)]
    assert found == [
        ("track", ("observe", "g", "c1")),
        ("item", ("observe", "g", "c1")),
        ("track", ("observe", "g", "c2")),
        ("item", ("observe", "g", "c2")),
        ("track", ("?", "", "")),
    ]


def test_the_archive_is_uneven_and_seeded() -> None:
    cluster_sim = bench("cluster_sim")
    spec = cluster_sim.archive_spec(24, (1, 6), (1, 6), seed=0)
    assert spec == cluster_sim.archive_spec(24, (1, 6), (1, 6), seed=0)
    assert len(spec) == 24
    assert len({len(g) for g in spec}) > 2
    assert len({s for g in spec for s in g}) > 2
    assert all(1 <= len(g) <= 6 and all(1 <= s <= 6 for s in g) for g in spec)


@pytest.mark.slow
def test_cluster_sim_quick_prints_a_result_line() -> None:
    lines = run_script("cluster_sim", "--quick", "--schedule", "streaming", timeout=300)
    found = RESULT.match(lines[-1])
    assert found, lines[-5:]
    assert found["name"] == "gpu_utilisation"
    assert 0 < float(found["value"]) <= 1.0
    assert any(line.startswith("streaming ") for line in lines)  # the table's row


# --------------------------------------------------------------------------- driver_scale


@pytest.mark.slow
def test_driver_scale_quick_prints_a_result_line() -> None:
    lines = run_script("driver_scale", "--quick", "--repeats", "1", "--reads", "50", timeout=300)
    found = RESULT.match(lines[-1])
    assert found, lines[-5:]
    assert found["name"] == "per_clip_ratio_2k_vs_200"
    assert float(found["value"]) > 0
    assert not any(line.startswith("check failed") for line in lines), lines


@pytest.mark.slow
def test_driver_scale_checks_trip(tmp_path: Path) -> None:
    """A missing fingerprint cache makes the no-op nightly read clips; a new clip makes it
    ask for Ray: both fail the benchmark."""
    driver_scale = bench("driver_scale")
    root = driver_scale.build_root(tmp_path / "a", 20, per_game=10, frames=5)
    clean = driver_scale.measure(root, repeats=1, reads=3)
    assert clean.ok, clean.problems_found()
    assert (clean.bytes_read, clean.probe_bytes, clean.ray_calls) == (0, 0, 0)

    (root.out / "_manifest" / "fingerprints" / f"{driver_scale.game_id(1)}.json").unlink()
    missing = driver_scale.measure(root, repeats=1, reads=3)
    assert missing.probe_bytes > 0 and missing.bytes_read > 0
    assert not missing.ok
    assert any("bytes read" in p for p in missing.problems_found())
    assert driver_scale.verdict([clean, missing]).endswith("fail")

    (root.games / driver_scale.game_id(0) / "clip-new.mp4").write_bytes(b"a new clip\n")
    new_clip = driver_scale.measure(root, repeats=1, reads=3)
    assert not new_clip.idle and new_clip.ray_calls == 1 and new_clip.exit_codes == [2]
    assert not new_clip.ok


def test_driver_scale_ratio_fails_beyond_the_target() -> None:
    driver_scale = bench("driver_scale")

    def size(clips: int, seconds: float) -> object:
        made = driver_scale.Size(clips, clips // 10)
        made.seconds = {m: seconds for m in driver_scale.MEASURES}
        made.cpu = dict(made.seconds)
        made.units = {"plan": clips, "nightly": clips, "read": 100}
        made.exit_codes = [0]
        return made

    small, flat, steep = size(2000, 1.0), size(20000, 10.0), size(20000, 20.0)
    assert driver_scale.ratios(small, flat) == {"plan": 1.0, "nightly": 1.0, "read": 10.0}
    assert driver_scale.verdict([small, flat]).endswith("fail")  # read: 10x per read
    flat.cpu["read"] = 1.2
    assert driver_scale.verdict([small, flat]) == (
        "result: per_clip_ratio_20k_vs_2k=1.2 target=<=1.5 pass"
    )
    steep.cpu["read"] = 1.0
    assert driver_scale.verdict([small, steep]) == (
        "result: per_clip_ratio_20k_vs_2k=2 target=<=1.5 fail"
    )
