"""The Ray Data pipeline end to end on two synthetic games, under a local Ray with a fake GPU.

Detection, tracking and reading are ground-truth replay doubles (``+experiment=replay``)
so that the pipeline around the models is what is tested; the smoke run with tiny real
models is in ``tests/e2e/test_jobs.py``.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

import pytest
from omegaconf import DictConfig

from hoopray import job, pipeline, store
from hoopray.settings import Settings
from hoopray.types import ClipStatus
from tests.conftest import compose_config

GAMES = ("game-a", "game-b")

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from hoopray.testing.synthetic import make_game

    root = tmp_path_factory.mktemp("pipeline")
    games, labels = root / "games", root / "labels"
    for seed, game_id in enumerate(GAMES):
        make_game(games, labels, game_id, seed=seed, clips=2, seconds=3.0, fps=10, size=(640, 360))
    (games / GAMES[1] / "broken.mp4").write_text("this is not a video\n")
    return {"games": games, "labels": labels, "out": root / "out"}


def _config(inputs: dict[str, Path]) -> DictConfig:
    return compose_config(
        "+experiment=replay",
        f"data.root={inputs['games']}",
        f"data.labels={inputs['labels']}",
        f"output.root={inputs['out']}",
        "ray.observe.num_gpus=0.5",
        cpu=True,
    )


def _no_ray(**kwargs: object) -> None:
    raise AssertionError("a job with nothing to do must not start Ray")


@pytest.fixture(scope="module")
def first_run(ray_local, inputs: dict[str, Path]) -> dict[str, object]:
    cfg = _config(inputs)
    handler = _Records()
    logging.getLogger("hoopray").addHandler(handler)
    logging.getLogger("hoopray").setLevel(logging.INFO)
    try:
        code = job.run_job(cfg, incremental=False, start_ray=lambda **kw: None)
    finally:
        logging.getLogger("hoopray").removeHandler(handler)
    return {"code": code, "cfg": cfg, "log": handler.lines}


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_two_games_end_to_end(first_run: dict, inputs: dict[str, Path]) -> None:
    import av

    out = inputs["out"]
    assert first_run["code"] == 1  # the broken clip failed
    for game_id in GAMES:
        teams = out / game_id / "teams"
        assert (teams / "model.npz").is_file()
        naming = json.loads((teams / "naming.json").read_text())
        assert set(naming["cluster_to_team"]) == {"0", "1"}
        roster_copy = out / game_id / "roster.yaml"
        assert roster_copy.read_bytes() == (inputs["games"] / game_id / "roster.yaml").read_bytes()
        for clip_id in ("clip-01", "clip-02"):
            for name in ("observations/tracks", "observations/clip", "identities/frames"):
                assert os.path.isfile(store.table_path(str(out), name, game_id, clip_id)), name
            video = out / game_id / "videos" / f"{clip_id}.mp4"
            with av.open(str(video)) as container:
                stream = container.streams.video[0]
                assert stream.codec_context.name == "h264"
                assert sum(1 for _ in container.decode(stream)) == 30
    identities = store.read_table(str(out), "identities/tracks")
    assert identities.num_rows > 0
    assert "confirmed" in identities.column("status").to_pylist()


def test_broken_clip_is_a_status_row_and_the_rest_finish(first_run, inputs) -> None:
    status = store.read_table(str(inputs["out"]), "status/clips").to_pylist()
    by_clip = {(r["game_id"], r["clip_id"]): r for r in status}
    assert len(by_clip) == 5
    broken = by_clip[(GAMES[1], "broken")]
    assert broken["status"] == ClipStatus.FAILED
    assert broken["stage"] == "observe"
    assert broken["reason"]
    ok = [r for k, r in by_clip.items() if k[1] != "broken"]
    assert all(r["status"] == ClipStatus.OK and r["frames"] == 30 for r in ok)
    assert not (inputs["out"] / GAMES[1] / "videos" / "broken.mp4").exists()


PROGRESS = re.compile(
    r"^observed (\d+)/(\d+) \((game-[ab])/(clip-0[12]|broken) (ok|failed)\), "
    r"[\d.]+/min, ETA (\d+ s|\?)"
)


def test_progress_lines_per_clip(first_run) -> None:
    observed = [line for line in first_run["log"] if line.startswith("observed ")]
    assert len(observed) == 5
    found = [PROGRESS.match(line) for line in observed]
    assert all(found), observed
    assert sorted(int(m[1]) for m in found) == [1, 2, 3, 4, 5]
    assert {int(m[2]) for m in found} == {5}
    clips = {(m[3], m[4]): m[5] for m in found}
    assert len(clips) == 5 and clips[(GAMES[1], "broken")] == "failed"
    assert sum(status == "ok" for status in clips.values()) == 4


def test_run_summary_json(first_run, inputs) -> None:
    runs = sorted((inputs["out"] / "_runs").glob("*.json"))
    summary = json.loads(runs[-1].read_text())
    assert summary["totals"]["clips_ok"] == 4
    assert summary["totals"]["clips_failed"] == 1
    assert summary["exit_code"] == 1
    assert {"observe", "resolve", "render"} <= set(summary["stage_seconds"])
    assert summary["stage_seconds"]["observe"] > 0


def test_tables_readable_by_duckdb_and_polars(first_run, inputs) -> None:
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    glob = str(inputs["out"] / "tables" / "identities" / "frames" / "**" / "*.parquet")
    rows = duckdb.sql(
        f"select game_id, count(*) n from read_parquet('{glob}', hive_partitioning=true) "
        "group by game_id order by game_id"
    ).fetchall()
    assert [r[0] for r in rows] == list(GAMES) and all(r[1] > 0 for r in rows)
    frame = pl.read_parquet(glob, hive_partitioning=True)
    assert frame.height == sum(r[1] for r in rows)
    assert {"game_id", "clip_id", "track_id", "status"} <= set(frame.columns)


def _manifest(out: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((out / "_manifest" / "games").glob("*.json"))}


def test_nightly_after_a_full_run_does_nothing(first_run, inputs) -> None:
    manifest = _manifest(inputs["out"])
    assert set(manifest) == {f"{g}.json" for g in GAMES}
    status = store.table_path(str(inputs["out"]), "status/clips", GAMES[0], "clip-01")
    before = os.stat(status).st_mtime_ns
    assert job.run_job(first_run["cfg"], incremental=True, start_ray=_no_ray) == 0
    assert os.stat(status).st_mtime_ns == before
    assert _manifest(inputs["out"]) == manifest


def test_nightly_plans_only_the_changed_game_and_a_refit_never_reobserves(
    first_run, inputs
) -> None:
    settings = Settings.from_cfg(first_run["cfg"])
    changed = inputs["games"] / GAMES[0] / "clip-02.mp4"
    original = changed.read_bytes()
    try:
        shutil.copyfile(inputs["games"] / GAMES[0] / "clip-01.mp4", changed)
        run = pipeline.plan_run(settings, str(inputs["games"]))
    finally:
        changed.write_bytes(original)
    plans = {p.game_id: p for p in run.plans}
    game = plans[GAMES[0]]
    assert game.fit_teams  # 1 of 2 clips changed: over teams.refit_fraction
    work = {c.clip_id: (c.observe, c.resolve, c.render) for c in game.clips}
    assert work == {"clip-01": (False, True, True), "clip-02": (True, True, True)}
    assert plans[GAMES[1]].idle


@pytest.mark.parametrize(
    ("sizes", "chosen", "expected"),
    [
        ({}, set(), []),
        ({"a": 10}, {"a"}, ["a"]),
        ({"a": 10}, set(), []),
        ({"a": 1, "b": 30, "c": 20}, {"a", "b", "c"}, ["b", "c", "a"]),
        ({"a": 1, "b": 30, "c": 20}, {"a", "c"}, ["c", "a"]),
        ({"a": 5, "b": 5, "c": 0}, {"a", "b", "c"}, ["a", "b", "c"]),  # ties keep file order
    ],
)
def test_longest_first(sizes: dict[str, int], chosen: set[str], expected: list[str]) -> None:
    from hoopray.types import ClipRef

    clips = [ClipRef("g", name, f"/x/{name}.mp4", "fp", size) for name, size in sizes.items()]
    assert [c.clip_id for c in pipeline._longest_first(clips, chosen)] == expected


@pytest.mark.parametrize(
    ("per_game", "expected"),
    [
        ([], []),
        ([([], [])], []),
        ([([], ["s"])], ["s"]),  # a game with nothing to observe (its pass 1 only)
        ([([5, 2], ["a1", "a2"])], ["a1", "a2"]),
        # by the largest clip, not the total: b's 9 before c's 4 + 4 + 4 = 12
        (
            [([1], ["a"]), ([9], ["b"]), ([4, 4, 4], ["c1", "c2", "c3"])],
            ["b", "c1", "c2", "c3", "a"],
        ),
        (
            [([4], ["a"]), ([4, 3], ["b1", "b2"]), ([4, 1], ["c1", "c2"])],
            ["b1", "b2", "c1", "c2", "a"],
        ),
        ([([3], ["a"]), ([3], ["b"]), ([], ["c"])], ["a", "b", "c"]),  # ties keep game order
    ],
)
def test_games_longest_clip_first(per_game: list, expected: list[str]) -> None:
    assert pipeline._games_longest_clip_first(per_game) == expected


@pytest.mark.parametrize("actors", [0, 1, 2])
def test_stop_actors_kills_what_registered(ray_local, actors: int) -> None:
    import ray

    from hoopray import stages

    @ray.remote(num_cpus=0, max_restarts=-1)
    class Worker:
        def __init__(self, registry) -> None:
            ray.get(registry.add.remote(ray.get_runtime_context().current_actor))

        def ping(self) -> str:
            return "pong"

    registry = ray.remote(num_cpus=0)(stages.ActorRegistry).remote()
    workers = [Worker.remote(registry) for _ in range(actors)]
    assert ray.get([w.ping.remote() for w in workers]) == ["pong"] * actors
    assert stages.stop_actors(registry) == actors
    for worker in workers:  # killed for good (ray.kill acts soon, not at once)
        assert _dies_within(worker, 30.0)


def _dies_within(worker, seconds: float) -> bool:
    import ray

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            ray.get(worker.ping.remote(), timeout=seconds)
        except ray.exceptions.RayActorError:
            return True
        time.sleep(0.2)
    return False
