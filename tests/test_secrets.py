"""Secrets and untrusted files.

- ``ROBOFLOW_API_KEY``, ``HF_TOKEN`` and the AWS credentials never appear in anything a
  job writes, even when a model's error message quotes them;
- nothing hoopray reads from disk is unpickled: checkpoints load with
  ``weights_only=True`` semantics, YAML with a safe loader, arrays without pickle;
- every output path stays inside the output root, whatever the ids say.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import os
import pickle
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import yaml

from hoopray import outputs, stages, store
from hoopray.roster import RosterError, load_roster
from hoopray.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
FAKE_SECRETS = {
    "ROBOFLOW_API_KEY": "rfFAKE-roboflow-7Q2Z9X4W",
    "HF_TOKEN": "hf_FAKEtokenForTheLeakTest0123456789",
    "AWS_ACCESS_KEY_ID": "AKIAFAKELEAKTEST7Q2Z",
    "AWS_SECRET_ACCESS_KEY": "FAKEawsSecretForTheLeakTest/0123456789abcd",
    "AWS_SESSION_TOKEN": "FAKEawsSessionTokenForTheLeakTest0123456789+xyz==",
}
# The secrets the FaultyTracking ``leak`` option quotes in its error message.
QUOTED = ("ROBOFLOW_API_KEY", "HF_TOKEN")


# --------------------------------------------------------------------------- secrets


def _leaks(path: Path, secrets: list[str]) -> list[str]:
    """Which secrets a file holds (Parquet is read as a table: its pages are compressed)."""
    if path.suffix == ".parquet":
        text = str(pq.read_table(path).to_pylist())
    else:
        text = path.read_bytes().decode("utf-8", errors="replace")
    return [s for s in secrets if s in text]


@pytest.mark.reliability
@pytest.mark.slow
def test_secrets_never_appear_in_anything_the_job_writes(tmp_path: Path) -> None:
    from hoopray.testing.synthetic import make_game

    games, labels, out = tmp_path / "games", tmp_path / "labels", tmp_path / "out"
    make_game(games, labels, "s", seed=9, clips=2, seconds=1.0, fps=10, size=(320, 180))
    (games / "s" / "broken.mp4").write_text("not a video\n")
    ray_tmp = Path(tempfile.mkdtemp(prefix="hr", dir="/tmp"))  # short: Ray's socket paths
    env = {
        **os.environ,
        **FAKE_SECRETS,
        "PYTHONPATH": str(ROOT),
        "OMP_NUM_THREADS": "1",
        "RAY_TMPDIR": str(ray_tmp),
    }
    try:
        result = subprocess.run(
            [
                sys.executable,
                str(ROOT / "jobs" / "process_games.py"),
                "+experiment=replay",
                f"data.root={games}",
                f"data.labels={labels}",
                f"output.root={out}",
                "models.tracker._target_=tests.reliability_corpus.FaultyTracking",
                "+models.tracker.leak=s/clip-02",  # its error quotes ROBOFLOW_API_KEY, HF_TOKEN
                "teams.umap_neighbors=500",
                "ray.num_cpus=2",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        secrets = list(FAKE_SECRETS.values())
        assert result.returncode == 1, (result.stdout + result.stderr)[-3000:]
        assert "FAILED s/clip-02 at observe: RuntimeError: 401 Unauthorized" in result.stdout
        assert "***" in result.stdout  # redacted, not dropped
        assert not [s for s in secrets if s in result.stdout + result.stderr]
        logs = tmp_path / "logs" / "hydra"  # Hydra's run dir: in the working directory
        written = [p for p in (out, logs, ray_tmp) for p in p.rglob("*") if p.is_file()]
        hydra = [p for p in written if p.parent.name == ".hydra"]
        assert hydra and all(p.is_relative_to(logs) for p in hydra)
        assert any(p.suffix == ".log" and p.is_relative_to(logs) for p in written)
        assert any(p.parts[-3:] == ("_manifest", "games", "s.json") for p in written)
        assert any("_runs" in p.parts for p in written)
        assert any(p.parts[-5:-3] == ("status", "clips") for p in written)
        assert (out / "s" / "report.html").is_file() and (out / "index.html").is_file()
        # the failed clip's status row and the report carry the redacted reason
        status = outputs.read_status(str(out), "s", "clip-02")
        assert status is not None and "***" in str(status["reason"])
        leaks = {str(p): found for p in written if (found := _leaks(p, secrets))}
        assert leaks == {}
    finally:
        subprocess.run(["rm", "-rf", str(ray_tmp)], check=False)


# --------------------------------------------------------------------------- untrusted files


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            found.append((ast.unparse(node.func), node))
    return found


def _keyword(call: ast.Call, name: str) -> str | None:
    for kw in call.keywords:
        if kw.arg == name:
            return ast.unparse(kw.value)
    return None


def _sources() -> list[Path]:
    return sorted([*(ROOT / "hoopray").rglob("*.py"), *(ROOT / "jobs").glob("*.py")])


UNSAFE_CALLS = frozenset(
    {"pickle.load", "pickle.loads", "cloudpickle.load", "cloudpickle.loads"}
    | {"yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"}
)


def _loader_class(path: Path, loader: str) -> object:
    """The class a ``Loader=`` expression names: ``yaml.X`` or a name of the module."""
    if loader.startswith("yaml."):
        return getattr(yaml, loader.split(".", 1)[1], None)
    if not loader.isidentifier():
        return None
    if path.is_relative_to(ROOT / "hoopray"):
        module = importlib.import_module(".".join(path.relative_to(ROOT).with_suffix("").parts))
    else:
        spec = importlib.util.spec_from_file_location(path.stem, path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    return getattr(module, loader, None)


def unsafe_loads(path: Path, root: Path = ROOT) -> list[str]:
    """Deserialising calls in a source file that could run code from a file."""
    problems = []
    tree = ast.parse(path.read_text())
    for name, call in _calls(tree):
        where = f"{path.relative_to(root)}:{call.lineno} {name}"
        if name.endswith("torch.load") and _keyword(call, "weights_only") != "True":
            problems.append(f"{where} without weights_only=True")
        elif name in UNSAFE_CALLS:
            problems.append(where)
        elif name == "yaml.load":
            loader = _keyword(call, "Loader") or ""
            cls = _loader_class(path, loader)
            if not (isinstance(cls, type) and issubclass(cls, yaml.SafeLoader)):
                problems.append(f"{where} with Loader={loader}")
        elif name.endswith("np.load") and _keyword(call, "allow_pickle") not in (None, "False"):
            problems.append(f"{where} with allow_pickle")
        elif _keyword(call, "trust_checkpoint") == "True" or (
            _keyword(call, "weights_only") == "False"
        ):
            problems.append(f"{where} trusts a checkpoint")
    return problems


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", 0),
        ("import torch\ntorch.load(p, weights_only=True)\n", 0),
        ("import torch\ntorch.load(p)\n", 1),
        ("import torch\ntorch.load(p, weights_only=False)\n", 1),
        ("import pickle\npickle.loads(b)\n", 1),
        ("import yaml\nyaml.load(t, Loader=yaml.SafeLoader)\n", 0),
        ("import yaml\nclass L(yaml.SafeLoader): pass\nf = lambda t: yaml.load(t, Loader=L)\n", 0),
        ("import yaml\nclass L(yaml.Loader): pass\nf = lambda t: yaml.load(t, Loader=L)\n", 1),
        ("import yaml\nyaml.load(t, Loader=yaml.Loader)\n", 1),
        ("import yaml\nyaml.unsafe_load(t)\n", 1),
        ("import numpy as np\nnp.load(p, allow_pickle=True)\n", 1),
        ("import numpy as np\nnp.load(p, allow_pickle=False)\n", 0),
        ("m = M(p, trust_checkpoint=True)\n", 1),
    ],
)
def test_unsafe_load_scanner(source: str, expected: int, tmp_path: Path) -> None:
    scratch = tmp_path / "probe.py"
    scratch.write_text(source)
    assert len(unsafe_loads(scratch, root=tmp_path)) == expected


def test_package_never_unpickles_what_it_reads() -> None:
    problems = [p for path in _sources() for p in unsafe_loads(path)]
    assert problems == []


def test_no_config_trusts_a_checkpoint() -> None:
    for path in sorted((ROOT / "conf").rglob("*.yaml")):
        data = yaml.safe_load(path.read_text())
        text = repr(data)
        assert "'trust_checkpoint': True" not in text and "'weights_only': False" not in text


@pytest.mark.parametrize(
    "text",
    [
        "teams: !!python/object/apply:pathlib.Path.touch [['{marker}']]\n",
        "teams:\n  - !!python/object/new:pathlib.PosixPath ['{marker}']\n",
        "teams: !!python/name:os.system\n",
        "!!python/object/apply:os.system ['touch {marker}']\n",
    ],
)
def test_roster_refuses_python_tags(text: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "roster.yaml"
    path.write_text(text.format(marker=marker))
    with pytest.raises(RosterError, match="python"):
        load_roster(path)
    assert not marker.exists()


@pytest.mark.parametrize(("text", "match"), [("", "is empty"), ("teams: [\n", "YAML problem")])
def test_roster_empty_and_broken(text: str, match: str, tmp_path: Path) -> None:
    path = tmp_path / "roster.yaml"
    path.write_text(text)
    with pytest.raises(RosterError, match=match):
        load_roster(path)


class _Touch:
    """Unpickled with full pickle, it creates a file: a stand-in for arbitrary code."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple:
        return (Path.touch, (self.marker,))


@pytest.mark.slow
def test_malicious_checkpoint_is_refused_by_the_detector(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    pytest.importorskip("rfdetr")
    from hoopray.models.rfdetr_detector import RfDetrDetector

    marker = tmp_path / "code-ran"
    checkpoint = tmp_path / "players.pth"
    torch.save({"model": {"w": torch.zeros(1)}, "args": _Touch(marker)}, checkpoint)
    with pytest.raises(Exception, match=r"(?i)weights_only|safely|unsupported"):
        RfDetrDetector(checkpoint, device="cpu")
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        torch.load(checkpoint, weights_only=True)
    torch.load(checkpoint, weights_only=False)  # what a full unpickle would have done
    assert marker.exists()


BAD_IDS = ["", "..", "../escape", "a/b", "/etc", ".hidden", "a\x00b", "x" * 201, "tables/.."]


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_that_would_leave_the_output_root_are_refused(bad: str, tmp_path: Path) -> None:
    out = tmp_path / "out"
    with pytest.raises(ValueError):
        store.table_path(out, "status/clips", bad, "c")
    with pytest.raises(ValueError):
        store.table_path(out, "status/clips", "g", bad)
    with pytest.raises(ValueError):
        outputs.video_path(str(out), bad, "c")
    with pytest.raises(ValueError):
        outputs.video_path(str(out), "g", bad)
    assert not tmp_path.joinpath("escape").exists() and not out.exists()


def test_a_valid_id_is_accepted(tmp_path: Path) -> None:
    path = outputs.video_path(str(tmp_path), "game-1", "clip_01.v2")
    assert path == str((tmp_path / "game-1" / "videos" / "clip_01.v2.mp4").resolve())


def test_a_symlink_inside_the_output_root_cannot_lead_out(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (tmp_path / "out" / "g").mkdir(parents=True)
    (tmp_path / "out" / "g" / "videos").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError, match="escapes"):
        outputs.video_path(str(tmp_path / "out"), "g", "c")


def _observe_item(game_id: str, clip_id: str, path: str, game_dir: str) -> dict[str, str]:
    return {
        "kind": stages.OBSERVE,
        "game_id": game_id,
        "clip_id": clip_id,
        "path": path,
        "fingerprint": "f",
        "game_dir": game_dir,
        "clips": "",
    }


def test_observe_stage_refuses_a_bad_clip_id_and_writes_nothing(tmp_path: Path) -> None:
    from tests.reliability_corpus import config

    out = tmp_path / "out"
    settings = Settings.from_cfg(config(tmp_path, tmp_path, out))
    worker = stages.GpuWorker(settings)
    item = _observe_item("g", "../../escape", "/dev/null", str(tmp_path))
    (status,) = stages.batch_rows(worker(stages.rows_batch([item], stages.WORK_KEYS)))
    assert (status["kind"], status["status"], status["stage"]) == ("observe", "failed", "observe")
    assert "invalid clip_id" in status["reason"]
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == []


@pytest.mark.parametrize("when", ["missing", "gone after planning"])
def test_gpu_worker_with_missing_weights_names_host_and_weight(when: str, tmp_path: Path) -> None:
    """Weights are checked on each worker before its first item: a node without them
    fails at once with its host name and what it lacks, not mid-clip."""
    from tests.reliability_corpus import config

    checkpoint = tmp_path / "weights" / "players.pth"
    if when == "gone after planning":
        checkpoint.parent.mkdir()
        checkpoint.write_bytes(b"present on the driver")
    cfg = config(
        tmp_path,
        tmp_path,
        tmp_path / "out",
        "models/detector=rfdetr",
        f"models.detector.checkpoint={checkpoint}",
    )
    settings = Settings.from_cfg(cfg)
    if when == "gone after planning":
        from hoopray.config import missing_weights

        assert missing_weights(cfg) == []  # the driver's preflight finds them
        checkpoint.unlink()  # ... but this worker's node has none
    with pytest.raises(RuntimeError) as caught:
        stages.GpuWorker(settings)
    message = str(caught.value)
    assert socket.gethostname() in message
    assert "models.detector" in message and str(checkpoint) in message
    assert "models.tracker" not in message  # only what is missing is named
    assert not (tmp_path / "out").exists()  # nothing was loaded or written


def test_discovery_sanitises_folder_and_file_names(tmp_path: Path) -> None:
    from hoopray.video import discover_games

    game = tmp_path / "season..2024 finals"
    game.mkdir()
    (game / "evil..name .mp4").write_bytes(b"\x00" * 16)
    (found,) = discover_games(tmp_path)
    assert found.game_id == "season_2024_finals"
    assert [c.clip_id for c in found.clips] == ["evil_name_"]
    for value in (found.game_id, found.clips[0].clip_id):
        assert store.check_id(value) == value
