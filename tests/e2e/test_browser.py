"""The per-game report as a user sees it: headless Chromium opens it over HTTP.

The output tree comes from the real stages run directly (no Ray): a synthetic game
(:func:`hoopray.testing.synthetic.make_game`), the ground-truth replay doubles as models,
:func:`hoopray.teams.fit_team_model`, :func:`hoopray.observe.observe`,
:func:`hoopray.resolve.resolve`, :func:`hoopray.render.render` and the store; then
:func:`hoopray.report.write_game_report`. A screenshot of the page is saved to
``test-artifacts/report.png``.

Needs Debian's ``chromium`` and ``chromium-driver``. Where they are missing, the setup
installs them with apt-get when it runs as root, and otherwise skips with the reason.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
GAME = "game-001"
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--window-size=1400,1000",
)


def _binaries() -> tuple[str | None, str | None]:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    return browser, shutil.which("chromedriver")


def _install_chromium() -> str:
    """Try ``apt-get install chromium chromium-driver``; return what happened."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0 or not shutil.which("apt-get"):
        return "not root or no apt-get, so it cannot be installed here"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (
        ["apt-get", "update", "-qq"],
        ["apt-get", "install", "-y", "-qq", "chromium", "chromium-driver"],
    ):
        try:
            subprocess.run(command, env=env, check=True, capture_output=True, timeout=600)
        except (subprocess.SubprocessError, OSError) as err:
            return f"`{' '.join(command)}` failed: {err}"
    return "installed with apt-get"


@pytest.fixture(scope="module")
def chromium() -> tuple[str, str]:
    browser, driver = _binaries()
    if browser is None or driver is None:
        outcome = _install_chromium()
        browser, driver = _binaries()
        if browser is None or driver is None:
            pytest.skip(
                "headless Chromium tests need Debian's `chromium` and `chromium-driver` "
                f"(apt-get install -y chromium chromium-driver); {outcome}"
            )
    return browser, driver


@pytest.fixture(scope="module")
def output_tree(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """One synthetic game through the real stages; returns paths and the expectations."""
    from hoopray import store, teams
    from hoopray.models.base import Models, Roles
    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.observe import ObserveConfig, observe
    from hoopray.render import render
    from hoopray.report import write_game_report
    from hoopray.resolve import ResolveConfig, resolve
    from hoopray.roster import load_roster
    from hoopray.testing.replay import ReplayWorld
    from hoopray.testing.synthetic import make_game
    from hoopray.video import discover_games

    root = tmp_path_factory.mktemp("browser")
    make_game(
        root / "games",
        root / "labels",
        GAME,
        clips=1,
        seconds=3.0,
        fps=10,
        size=(640, 360),
        players_per_team=3,
        referees=1,
    )
    [game] = discover_games(root / "games")
    assert game.roster_path is not None
    roster = load_roster(game.roster_path)
    world = ReplayWorld(root / "labels", misread_rate=0.0)
    models = Models(
        detector=world.detector(),
        tracking=world.tracking(),
        embedder=ColourHistogramEmbedder(),
        reader=world.reader(),
        roles=Roles(player=("player",)),
    )
    out = root / "out"
    # Few crops: umap_neighbors above their count makes the model use PCA (no numba JIT).
    teams_cfg = teams.TeamsConfig(umap_neighbors=200, knn_k=5)
    sample, embeddings = teams.sample_game(game.clips, models, teams_cfg)
    model = teams.fit_team_model(embeddings, teams_cfg, sample=sample)
    naming = teams.name_clusters(model, roster)
    teams.save_game(teams.teams_dir(out, GAME), model, sample, naming)
    confirmed: set[str] = set()
    for clip in game.clips:
        obs = observe(clip, models, ObserveConfig(read_stride=2, detect_stride=2))
        ids = resolve(obs, roster, naming, ResolveConfig(), team_model=model)
        for name in ("tracks", "reads", "team_votes", "clip"):
            store.write_table(out, f"observations/{name}", GAME, clip.clip_id, getattr(obs, name))
        for name in ("tracks", "frames"):
            store.write_table(out, f"identities/{name}", GAME, clip.clip_id, getattr(ids, name))
        render(
            clip.path,
            obs.tracks,
            ids,
            roster,
            naming,
            store.join(store.game_dir(out, GAME), "videos", f"{clip.clip_id}.mp4"),
        )
        confirmed |= {
            row["player_name"]
            for row in ids.tracks.to_pylist()
            if row["status"] == "confirmed" and row["player_name"]
        }
    write_game_report(out, GAME)  # as the pipeline calls it: finds the input roster itself
    players = sum(len(team.players) for team in roster.teams)
    return {
        "out": out,
        "clips": [c.clip_id for c in game.clips],
        "players": players,
        "confirmed": confirmed,
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def base_url(output_tree: dict[str, object]) -> Iterator[str]:
    port = _free_port()
    directory = str(output_tree["out"])
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            "127.0.0.1",
            "--directory",
            directory,
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"http.server did not start on port {port}")
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def driver(chromium: tuple[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    from selenium import webdriver

    browser, chromedriver = chromium
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    chrome = webdriver.Chrome(service=webdriver.ChromeService(chromedriver), options=options)
    chrome.set_script_timeout(30)
    try:
        yield chrome
    finally:
        chrome.quit()


PLAY = """
const [id, done] = arguments;
const v = document.getElementById(id);
if (!v) { done({err: 'no element ' + id}); return; }
const report = () => done({rs: v.readyState, w: v.videoWidth, h: v.videoHeight,
  t: v.currentTime, err: v.error && v.error.code,
  type: v.querySelector('source') && v.querySelector('source').type,
  can: v.canPlayType(v.querySelector('source').type)});
v.muted = true;
v.play().then(() => setTimeout(() => { v.pause(); report(); }, 800),
              e => done({err: String(e)}));
"""


def test_report_shows_roster_and_plays_video(
    driver: object, base_url: str, output_tree: dict[str, object]
) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/{GAME}/report.html")
    rows = driver.find_elements(By.CSS_SELECTOR, "table#roster tbody tr")
    assert len(rows) == output_tree["players"]
    found = {
        row.find_elements(By.TAG_NAME, "td")[2].text
        for row in rows
        if row.get_attribute("data-status") == "confirmed"
    }
    assert found == output_tree["confirmed"] and found

    for clip_id in output_tree["clips"]:
        result = driver.execute_async_script(PLAY, f"video-{clip_id}")
        assert result.get("err") is None, result
        assert result["rs"] >= 2 and result["w"] == 640 and result["h"] == 360, result
        assert result["t"] > 0 and result["can"] == "probably", result

    ARTIFACTS.mkdir(exist_ok=True)
    height = driver.execute_script("return document.documentElement.scrollHeight")
    driver.set_window_size(1400, min(4000, int(height) + 120))
    shot = ARTIFACTS / "report.png"
    assert driver.save_screenshot(str(shot))
    assert shot.stat().st_size > 10_000


def test_index_links_to_the_report(driver: object, base_url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(f"{base_url}/index.html")
    links = driver.find_elements(By.CSS_SELECTOR, "table#games a")
    assert [a.text for a in links] == [GAME]
    links[0].click()
    assert driver.find_element(By.TAG_NAME, "h1").text.endswith(GAME)
    images = driver.execute_script(
        "return [...document.images].map(i => [i.getAttribute('src'), i.naturalWidth])"
    )
    assert images and all(width > 0 for _, width in images), images
