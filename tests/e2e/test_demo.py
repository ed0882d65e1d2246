"""The first hour: ``make run`` on a fresh clone runs the demo of the real pipeline.

One demo run (module fixture): ``jobs/process_games.py`` with no arguments, as ``make run``
starts it, in an empty working folder (no ``data/games``, no ``weights/``, an empty
Hugging Face cache and EasyOCR cache: the recogniser comes from the ``ocr`` extra). The
tests read what it printed and wrote, and open its report in headless Chromium (the
fixtures of tests/e2e/test_browser.py). A rendered frame and the report page are saved to
``test-artifacts/``.

The other tests check that the job never substitutes demo models otherwise: with a game
folder present, a ``data.root`` given, or every weight present, it stops as it always did.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tests.e2e.test_browser import PLAY, base_url, chromium, driver  # noqa: F401 (fixtures)

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
F1_LINE = re.compile(r"identity F1 (\d\.\d+) \(precision (\d\.\d+), recall (\d\.\d+)\)")
GAMES = ("demo-001", "demo-002")


@dataclass(frozen=True)
class DemoRun:
    work: Path
    out: Path
    inputs: Path
    code: int
    stdout: str
    stderr: str

    @property
    def summary(self) -> dict:
        [run] = sorted((self.out / "_runs").glob("*.json"))
        return json.loads(run.read_text())


def _fresh_env(work: Path) -> dict[str, str]:
    """The environment of a fresh clone: no weights anywhere the config looks."""
    return {
        **os.environ,
        "HOOPRAY_WEIGHTS": str(work / "weights"),
        "HF_HOME": str(work / "hf-cache"),
        "HF_HUB_OFFLINE": "1",
        "EASYOCR_MODULE_PATH": str(work / "easyocr-cache"),
        "RAY_USAGE_STATS_ENABLED": "0",
    }


def _job(work: Path, *args: str, timeout: int = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "process_games.py"), *args],
        cwd=work,
        env=_fresh_env(work),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> DemoRun:
    pytest.importorskip(
        "easyocr_en_models", reason="the demo reads numbers with the `ocr` extra's EasyOCR"
    )
    work = tmp_path_factory.mktemp("fresh-clone")
    result = _job(work, timeout=900)
    return DemoRun(
        work=work,
        out=work / "outputs" / "demo",
        inputs=work / "outputs" / "demo-inputs",
        code=result.returncode,
        stdout=result.stdout,
        stderr=result.stderr,
    )


def _tail(run: DemoRun) -> str:
    return (run.stdout + run.stderr)[-4000:]


@pytest.mark.slow
def test_demo_says_it_is_a_demo_and_why(demo_run: DemoRun) -> None:
    assert demo_run.code == 0, _tail(demo_run)
    text = demo_run.stdout
    assert "hoopray DEMO" in text
    assert f"no games under {demo_run.work / 'data' / 'games'}" in text
    for role in ("models.detector", "models.tracker", "models.embedder", "models.reader"):
        assert role in text.split("So this run is a demo")[0], role  # the missing weights
    assert "REPLAYED FROM THE GENERATOR'S LABELS" in text
    assert "tracker: ByteTrackTracking" in text and "EasyOCR" in text
    assert "hoopray cannot start" not in text


@pytest.mark.slow
def test_demo_confirms_identities_and_scores_them(demo_run: DemoRun) -> None:
    assert demo_run.code == 0, _tail(demo_run)
    listed = re.search(r"confirmed identities \((\d+)\)", demo_run.stdout)
    assert listed and int(listed.group(1)) > 0, _tail(demo_run)
    match = F1_LINE.search(demo_run.stdout)
    assert match, _tail(demo_run)
    f1, precision, recall = (float(v) for v in match.groups())
    assert f1 >= 0.9, match.group(0)
    assert 0 < precision <= 1 and 0 < recall <= 1
    assert f1 == pytest.approx(2 * precision * recall / (precision + recall), abs=2e-3)

    summary = demo_run.summary
    assert summary["scores"]["identity_f1"] == pytest.approx(f1, abs=5e-4)
    assert summary["totals"]["confirmed"] > 0 and summary["exit_code"] == 0
    import yaml

    for identity in summary["identities"]:
        roster = yaml.safe_load(
            (demo_run.inputs / "games" / identity["game_id"] / "roster.yaml").read_text()
        )
        players = {t["name"]: t["players"] for t in roster["teams"]}
        assert players[identity["team"]][identity["number"]] == identity["player"], identity
        assert identity["player"] in demo_run.stdout


@pytest.mark.slow
def test_demo_writes_reports_and_videos(demo_run: DemoRun) -> None:
    assert demo_run.code == 0, _tail(demo_run)
    assert (demo_run.out / "index.html").is_file()
    for game_id in GAMES:
        assert (demo_run.out / game_id / "report.html").is_file()
        videos = sorted(p.name for p in (demo_run.out / game_id / "videos").glob("*.mp4"))
        assert videos == ["clip-01.mp4", "clip-02.mp4"]
        labels = sorted(p.name for p in (demo_run.inputs / "labels" / game_id).glob("*"))
        assert labels == ["clip-01.parquet", "clip-02.parquet"]


def _frame(path: Path, index: int) -> np.ndarray:
    from hoopray.video import iter_frames

    for i, rgb in iter_frames(path):
        if i == index:
            return rgb
    raise AssertionError(f"{path} has no frame {index}")


@pytest.mark.slow
def test_rendered_frame_is_annotated_and_readable(demo_run: DemoRun) -> None:
    """The rendered frame differs from the clip where players are drawn (outlines and name
    tags), and leaves the rest of the picture as it was."""
    from PIL import Image

    assert demo_run.code == 0, _tail(demo_run)
    rendered = _frame(demo_run.out / "demo-001" / "videos" / "clip-01.mp4", 60)
    source = _frame(demo_run.inputs / "games" / "demo-001" / "clip-01.mp4", 60)
    assert rendered.shape == source.shape
    changed = np.abs(rendered.astype(int) - source.astype(int)).max(axis=2) > 40
    assert 0.005 < changed.mean() < 0.15, changed.mean()
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "demo-frame.png"
    Image.fromarray(rendered).save(shot)
    assert shot.stat().st_size > 10_000


@pytest.fixture(scope="module")
def output_tree(demo_run: DemoRun) -> dict[str, object]:
    """The demo's output root, served by tests/e2e/test_browser.py's ``base_url``."""
    if demo_run.code != 0:
        pytest.fail(f"the demo run failed:\n{_tail(demo_run)}")
    return {"out": demo_run.out}


@pytest.mark.slow
@pytest.mark.browser
def test_demo_report_lists_players_and_plays_videos(
    driver: object,  # noqa: F811
    base_url: str,  # noqa: F811
    demo_run: DemoRun,
) -> None:
    from selenium.webdriver.common.by import By

    confirmed = {
        game_id: {i["player"] for i in demo_run.summary["identities"] if i["game_id"] == game_id}
        for game_id in GAMES
    }
    driver.get(f"{base_url}/index.html")
    assert [a.text for a in driver.find_elements(By.CSS_SELECTOR, "table#games a")] == list(GAMES)
    for game_id in GAMES:
        driver.get(f"{base_url}/{game_id}/report.html")
        names = {
            row.find_elements(By.TAG_NAME, "td")[2].text
            for row in driver.find_elements(By.CSS_SELECTOR, "table#roster tbody tr")
            if row.get_attribute("data-status") == "confirmed"
        }
        assert names and names == confirmed[game_id], (names, confirmed[game_id])
        for clip_id in ("clip-01", "clip-02"):
            result = driver.execute_async_script(PLAY, f"video-{clip_id}")
            assert result.get("err") is None, result
            assert result["rs"] >= 2 and result["t"] > 0, result
            assert (result["w"], result["h"]) == (960, 540), result
    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(4000, int(height) + 120))
    shot = ARTIFACTS / "demo-report.png"
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


# --------------------------------------------------------------------------- no demo


def _game_folder(work: Path) -> None:
    game = work / "data" / "games" / "game-001"
    game.mkdir(parents=True)
    (game / "roster.yaml").write_text("teams: []\n")


REAL_ADAPTERS_WITHOUT_WEIGHTS = [
    "models/detector=replay",
    "models/tracker=bytetrack",
    "models/embedder=colour",
    "models/reader=easyocr",
]


@pytest.mark.parametrize(
    ("case", "args", "says"),
    [
        ("game folder present", (), "model weights are not available"),
        ("data.root given", ("data.root=elsewhere",), "model weights are not available"),
        ("every weight present", tuple(REAL_ADAPTERS_WITHOUT_WEIGHTS), "no input games under"),
    ],
)
def test_no_demo_with_games_a_data_root_or_weights(
    tmp_path: Path, case: str, args: tuple[str, ...], says: str
) -> None:
    if case == "game folder present":
        _game_folder(tmp_path)
    if case == "data.root given":
        (tmp_path / "elsewhere").mkdir()
    if case == "every weight present":
        pytest.importorskip("easyocr_en_models", reason="EasyOCR's weights: the `ocr` extra")
    result = _job(tmp_path, *args)
    assert result.returncode == 2, result.stdout + result.stderr[-2000:]
    assert "hoopray cannot start" in result.stdout and says in result.stdout
    if says.startswith("model weights"):
        assert "models.detector" in result.stdout
    assert "DEMO" not in result.stdout
    assert not (tmp_path / "outputs").exists()
    assert "Started a local Ray" not in result.stdout + result.stderr
