"""The entry points as a user runs them: jobs/process_games.py, jobs/sweep.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from hoopray import store
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "hf_" + "Zx81" * 9


def _job(script: str, *args: str, cwd: Path, timeout: int = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / script), *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_defaults_without_weights_stop_before_ray_and_suggest_smoke(tmp_path: Path) -> None:
    # data.root named: never the demo (tests/e2e/test_demo.py runs the fresh-clone demo)
    args = ("data.root=data/games", f"output.root={tmp_path / 'out'}")
    result = _job("process_games.py", *args, cwd=tmp_path)
    assert result.returncode == 2
    text = result.stdout
    assert "model weights are not available" in text
    assert "models.detector" in text and "models.reader" in text
    assert "+experiment=smoke" in text
    assert "no input games" in text and "roster.yaml" in text
    assert "Started a local Ray" not in result.stderr + result.stdout
    # Hydra's run dir is under logs/hydra of the working directory, not the output root
    hydra_dirs = list((tmp_path / "logs" / "hydra").rglob(".hydra"))
    assert len(hydra_dirs) == 1 and (hydra_dirs[0] / "config.yaml").is_file()
    assert not (tmp_path / "out").exists()  # a job that cannot start writes no output


def test_secret_on_the_command_line_is_refused_and_scrubbed(tmp_path: Path) -> None:
    hydra_dir = tmp_path / "hydra"
    result = _job(
        "process_games.py",
        "+experiment=replay",
        f"+models.detector.api_key={FAKE_KEY}",
        f"hydra.run.dir={hydra_dir}",
        f"output.root={tmp_path / 'out'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert "models.detector.api_key" in result.stdout
    written = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.parent.name == ".hydra" and p.parent.parent == hydra_dir for p in written)
    assert not (tmp_path / "logs").exists()  # hydra.run.dir given: nothing in logs/hydra
    for path in written:
        assert FAKE_KEY not in path.read_text(errors="replace"), path
    assert FAKE_KEY not in result.stdout + result.stderr


@pytest.fixture(scope="module")
def stored(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """One synthetic game observed and finished by the stage operators, without Ray: the
    GPU worker's pass 1 (sample) and observe items, the team fit and the game's finish."""
    from hoopray import outputs, stages
    from hoopray.settings import Settings
    from hoopray.testing.synthetic import make_game
    from hoopray.video import discover_games

    root = tmp_path_factory.mktemp("jobs")
    games, labels, out = root / "games", root / "labels", root / "out"
    make_game(games, labels, "game-s", seed=3, clips=2, seconds=3.0, fps=10, size=(640, 360))
    cfg = compose_config(
        "+experiment=replay",
        f"data.root={games}",
        f"data.labels={labels}",
        f"output.root={out}",
        "output.render=false",
        "output.report=false",
        cpu=True,
    )
    settings = Settings.from_cfg(cfg)
    (game,) = discover_games(games)
    worker = stages.GpuWorker(settings)

    def work(item: dict) -> dict:
        (row,) = stages.batch_rows(worker(stages.rows_batch([item], stages.WORK_KEYS)))
        return row

    directory = str(game.directory)
    clips = {c.clip_id: c.fingerprint for c in game.clips}
    listed = [[c.clip_id, str(c.path), c.fingerprint] for c in game.clips]
    sample = work(
        {
            "kind": stages.SAMPLE,
            "game_id": game.game_id,
            "clip_id": "",
            "path": directory,
            "fingerprint": "",
            "game_dir": directory,
            "clips": json.dumps(listed),
        }
    )
    assert sample["status"] == "ok", sample
    fitted = stages.fit_teams(settings, game.game_id, directory, clips)
    assert fitted["status"] == "ok", fitted
    rows = [
        work(
            {
                "kind": stages.OBSERVE,
                "game_id": game.game_id,
                "clip_id": clip.clip_id,
                "path": str(clip.path),
                "fingerprint": clip.fingerprint,
                "game_dir": directory,
                "clips": "",
            }
        )
        for clip in game.clips
    ]
    assert all(r["status"] == "ok" for r in rows), rows
    finished = stages.finish_game(
        settings,
        {
            "game_id": game.game_id,
            "game_dir": directory,
            "roster_fingerprint": outputs.roster_fingerprint(game.roster_path),
            "removed": [],
            "fit": stages.read_fit(settings.out_root, game.game_id),
            "clips": {c: {"resolve": True, "render": False} for c in clips},
        },
        [outputs.status_row(r, **{k: r[k] for k in outputs.STATUS_KEYS}) for r in rows],
    )
    assert [r["status"] for r in finished] == ["ok", "ok"], finished
    assert (out / "_manifest" / "games" / "game-s.json").is_file()
    return {"out": out, "labels": labels}


def _snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")}


@pytest.mark.slow
def test_sweep_of_four_settings_over_stored_observations(stored, tmp_path: Path) -> None:
    sweep_dir = tmp_path / "sweep"
    before = _snapshot(stored["out"])
    result = _job(
        "sweep.py",
        "-m",
        f"sweep.out_root={stored['out']}",
        f"sweep.labels={stored['labels']}",
        "resolve.ios_threshold=0.8,0.95",
        "resolve.reads_to_confirm=1,3",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(p.read_text()) for p in sorted((sweep_dir / "metrics").glob("*.json"))]
    assert len(rows) == 4
    assert {(r["resolve"]["ios_threshold"], r["resolve"]["reads_to_confirm"]) for r in rows} == {
        (0.8, 1),
        (0.8, 3),
        (0.95, 1),
        (0.95, 3),
    }
    assert all(r["objective"] == "identity_f1" and r["metrics"]["clips_scored"] == 2 for r in rows)
    summary = (sweep_dir / "summary.md").read_text().splitlines()[2:]
    values = [float(line.split("|")[4]) for line in summary]
    assert len(values) == 4 and values == sorted(values, reverse=True)
    # the summary step can be run again by hand
    again = _job("sweep.py", "--summary", str(sweep_dir), cwd=tmp_path)
    assert again.returncode == 0 and "identity_f1" in again.stdout
    # no model was loaded, and nothing in the output root was written or changed
    assert _snapshot(stored["out"]) == before


@pytest.mark.slow
def test_sweep_tunes_min_posterior_and_min_margin(stored, tmp_path: Path) -> None:
    """Thresholds above every stored track's posterior (or margin) confirm nothing; the
    lenient setting confirms what the run did, and every row is scored."""
    tracks = store.read_table(stored["out"], "identities/tracks").to_pylist()
    confirmed = sum(t["status"] == "confirmed" for t in tracks)
    top_posterior = max(t["posterior"] for t in tracks if t["posterior"] is not None)
    top_margin = max(t["margin"] for t in tracks if t["margin"] is not None)
    assert confirmed and top_posterior < 1.0 and top_margin < 1.0
    strict_posterior = (top_posterior + 1.0) / 2
    strict_margin = (top_margin + 1.0) / 2
    sweep_dir = tmp_path / "sweep"
    result = _job(
        "sweep.py",
        "-m",
        f"sweep.out_root={stored['out']}",
        f"sweep.labels={stored['labels']}",
        f"resolve.min_posterior=0.5,{strict_posterior!r}",
        f"resolve.min_margin=0.0,{strict_margin!r}",
        f"hydra.sweep.dir={sweep_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    rows = [json.loads(p.read_text()) for p in sorted((sweep_dir / "metrics").glob("*.json"))]
    got = {(r["resolve"]["min_posterior"], r["resolve"]["min_margin"]): r for r in rows}
    assert set(got) == {
        (0.5, 0.0),
        (0.5, strict_margin),
        (strict_posterior, 0.0),
        (strict_posterior, strict_margin),
    }
    for key, row in got.items():
        metrics = row["metrics"]
        assert row["objective"] == "identity_f1" and metrics["clips_scored"] == 2
        assert metrics["tracks"] == len(tracks)
        assert sum(metrics[s] for s in ("confirmed", "ambiguous", "off_roster", "unread")) == len(
            tracks
        )
        if key == (0.5, 0.0):
            assert metrics["confirmed"] >= confirmed and metrics["identity_f1"] > 0
        else:
            assert metrics["confirmed"] == 0 and metrics["identity_f1"] == 0


def test_sweep_summary_of_an_empty_dir_fails(tmp_path: Path) -> None:
    result = _job("sweep.py", "--summary", str(tmp_path), cwd=tmp_path)
    assert result.returncode == 1
    assert "no metrics rows" in result.stdout


@pytest.mark.slow
def test_smoke_experiment_end_to_end(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    pl = pytest.importorskip("polars")
    out = tmp_path / "out"
    result = _job(
        "process_games.py",
        "+experiment=smoke",
        f"smoke.dir={tmp_path / 'inputs'}",
        f"output.root={out}",
        cwd=tmp_path,
        timeout=600,
    )
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "clips ok" in result.stdout
    games = sorted(p.name for p in (tmp_path / "inputs" / "games").iterdir() if p.is_dir())
    assert len(games) == 2
    for game_id in games:
        assert (out / game_id / "teams" / "model.npz").is_file()
        assert len(list((out / game_id / "videos").glob("*.mp4"))) == 2
        assert (out / "_manifest" / "games" / f"{game_id}.json").is_file()
        assert (out / game_id / "report.html").is_file()
    assert not (out / "_manifest" / "manifest.json").exists()  # one manifest per game now
    assert list((out / "_runs").glob("*.json"))
    assert list((tmp_path / "logs" / "hydra").rglob(".hydra"))
    assert not list(out.rglob(".hydra"))
    glob = str(out / "tables" / "identities" / "tracks" / "**" / "*.parquet")
    count = duckdb.sql(f"select count(*) from read_parquet('{glob}', hive_partitioning=true)")
    assert count.fetchall()[0][0] == pl.read_parquet(glob, hive_partitioning=True).height > 0
    assert store.read_table(out, "observations/tracks").num_rows > 0
