"""``make weights`` (jobs/weights.py), offline: the downloads are monkeypatched."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import types
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests.conftest import compose_config

ROOT = Path(__file__).resolve().parents[1]
HF_IDS = [
    "facebook/sam2.1-hiera-large",
    "google/siglip-base-patch16-224",
    "HuggingFaceTB/SmolVLM2-2.2B-Instruct",
]
FAKE_KEY = "rf_" + "Qw7e" * 5


def _job() -> ModuleType:
    """jobs/weights.py as a module (jobs/ is no package)."""
    name = "hoopray_jobs_weights"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, ROOT / "jobs" / "weights.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[name]


@pytest.fixture
def downloads(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, dict[str, Any]]]:
    """snapshot_download replaced: records each call and whether progress bars were on."""
    import huggingface_hub
    from huggingface_hub.utils import are_progress_bars_disabled, disable_progress_bars

    calls: list[tuple[str, dict[str, Any]]] = []

    def fake(repo_id: str, **kwargs: Any) -> str:
        calls.append((repo_id, {**kwargs, "bars_on": not are_progress_bars_disabled()}))
        return f"/cache/{repo_id}"

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake)
    for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_PROGRESS_BARS"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    disable_progress_bars()  # the job must turn them on itself
    return calls


def test_every_hugging_face_id_is_downloaded_with_progress_bars(
    downloads: list[tuple[str, dict[str, Any]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from tqdm import tqdm

    monkeypatch.chdir(tmp_path)
    # the local RF-DETR checkpoint and LoRA adapter are missing
    assert _job().run(compose_config()) == 1
    assert [repo for repo, _ in downloads] == HF_IDS
    for _, kwargs in downloads:
        assert issubclass(kwargs["tqdm_class"], tqdm) and kwargs["bars_on"]
    out = capsys.readouterr().out
    assert "models.detector.checkpoint=" in out and "cannot be downloaded" in out
    assert "models.reader.adapter=" in out


def test_a_missing_roboflow_key_is_reported_not_raised(
    downloads: list[tuple[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    cfg = compose_config("models/detector=roboflow", "models/reader=roboflow")
    assert _job().run(cfg) == 1
    assert [repo for repo, _ in downloads] == HF_IDS[:2]  # SAM2.1 and SigLIP still come
    out = capsys.readouterr().out
    assert out.count("set ROBOFLOW_API_KEY in the environment") == 2
    assert "basketball-player-detection-3-ycjdo/4" in out
    assert "basketball-jersey-numbers-ocr/3" in out


def test_roboflow_models_are_fetched_with_the_key_from_the_environment(
    downloads: list[tuple[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fetched: list[tuple[str, str]] = []
    fake = types.ModuleType("inference")
    fake.get_model = lambda model_id, api_key: fetched.append((model_id, api_key))  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "inference", fake)
    monkeypatch.setenv("ROBOFLOW_API_KEY", FAKE_KEY)
    cfg = compose_config(
        "models/detector=roboflow", "models/reader=roboflow", "models/tracker=bytetrack"
    )
    assert _job().run(cfg) == 0
    assert fetched == [
        ("basketball-player-detection-3-ycjdo/4", FAKE_KEY),
        ("basketball-jersey-numbers-ocr/3", FAKE_KEY),
    ]
    assert [repo for repo, _ in downloads] == HF_IDS[1:2]
    assert FAKE_KEY not in capsys.readouterr().out


def test_without_inference_it_says_how_to_install_it(
    downloads: list[tuple[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setitem(sys.modules, "inference", None)  # import inference -> ImportError
    monkeypatch.setenv("ROBOFLOW_API_KEY", FAKE_KEY)
    assert _job().run(compose_config("models/detector=roboflow", "models/embedder=colour")) == 1
    assert "pip install -e '.[roboflow]'" in capsys.readouterr().out


def test_offline_mode_downloads_nothing(
    downloads: list[tuple[str, dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert _job().run(compose_config("models/detector=replay", "models/reader=replay")) == 1
    assert downloads == []
    assert "unset it to download" in capsys.readouterr().out


def test_the_easyocr_reader_is_found_offline(
    downloads: list[tuple[str, dict[str, Any]]], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("easyocr_en_models", reason="the `ocr` extra is not installed")
    cfg = compose_config(
        "models/detector=replay",
        "models/tracker=bytetrack",
        "models/embedder=colour",
        "models/reader=easyocr",
    )
    assert _job().run(cfg) == 0 and downloads == []
    assert "EasyOCR english_g2 is at" in capsys.readouterr().out


def test_the_entry_point_runs_and_names_what_is_missing(tmp_path: Path) -> None:
    """The Hydra entry point as `make weights` runs it, offline: nothing is downloaded."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "jobs" / "weights.py"), "models/tracker=bytetrack"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1, result.stderr
    assert "still missing:" in result.stdout
    assert "google/siglip-base-patch16-224" in result.stdout
