"""The real Hydra config: composes, every option instantiates, secrets stay out."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from omegaconf import DictConfig, OmegaConf

from hoopray import config, stages
from hoopray.models.base import Models, Roles, WeightsNotFoundError
from hoopray.observe import ObserveConfig
from hoopray.pipeline import SCHEDULES
from hoopray.resolve import ResolveConfig
from hoopray.settings import Settings, ray_init_kwargs
from hoopray.teams import TeamsConfig
from tests.conftest import compose_config

CONF = Path(__file__).resolve().parents[1] / "conf"
OPTIONS = sorted(
    (role.name, option.stem)
    for role in (CONF / "models").iterdir()
    if role.is_dir()
    for option in role.glob("*.yaml")
)
# Every option of every other config group (conf/<group>/<option>.yaml).
GROUP_OPTIONS = sorted(
    (group.name, option.stem)
    for group in CONF.iterdir()
    if group.is_dir() and group.name not in ("models", "experiment", "local")
    for option in group.glob("*.yaml")
)
EXPERIMENTS = sorted(option.stem for option in (CONF / "experiment").glob("*.yaml"))


def _build_consumers(cfg: DictConfig) -> None:
    """Build what the job builds from each group, as the driver and the workers do."""
    settings = Settings.from_cfg(cfg)
    assert config.to_dataclass(ObserveConfig, settings.observe)
    assert ResolveConfig.from_mapping(settings.resolve)
    assert isinstance(stages.teams_config(settings), TeamsConfig)
    assert 0 <= settings.refit_fraction <= 1
    assert settings.hashes().observe
    assert str(settings.ray.get("schedule") or "streaming") in SCHEDULES
    kwargs = ray_init_kwargs(cfg)
    assert kwargs["ignore_reinit_error"] is True
    assert float(cfg.output.lock_stale_seconds) > float(cfg.output.lock_heartbeat_seconds) > 0


def test_default_config_composes_every_group() -> None:
    cfg = compose_config()
    for key in ("data", "models", "observe", "resolve", "teams", "ray", "output", "roles"):
        assert key in cfg, key
    assert set(cfg.models) == set(config.MODEL_ROLES)
    assert cfg.ray.address is None
    assert config.find_secrets(cfg) == []
    # keys added with the streaming pipeline and the storage layer
    assert cfg.storage.endpoint_url is None  # null: AWS_ENDPOINT_URL, or AWS itself
    assert cfg.ray.observe.clip_timeout_s is None
    assert int(cfg.ray.rounds) >= 1
    assert cfg.ray.get("schedule") in (None, "streaming")
    assert "pass1" not in cfg.ray  # pass 1 runs on the observe pool now
    assert float(cfg.output.lock_stale_seconds) == 600
    assert float(cfg.output.lock_heartbeat_seconds) == 30
    assert 0 <= float(cfg.teams.refit_fraction) <= 1
    _build_consumers(cfg)


def test_hydra_run_dir_is_under_the_working_directory() -> None:
    cfg = compose_config(hydra=True)
    run_dir = str(cfg.hydra.run.dir)
    assert run_dir.startswith("logs/hydra/"), run_dir
    assert "output" not in run_dir  # no longer under output.root (which may be s3://)
    assert cfg.hydra.job.chdir is False
    moved = compose_config("output.root=s3://bucket/out", hydra=True)
    assert str(moved.hydra.run.dir).startswith("logs/hydra/")


@pytest.mark.parametrize(("group", "option"), GROUP_OPTIONS)
def test_every_group_option_composes_and_builds(group: str, option: str) -> None:
    cfg = compose_config(f"{group}={option}")
    assert config.find_secrets(cfg) == []
    _build_consumers(cfg)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_builds(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config(f"+experiment={experiment}", f"data.labels={tmp_path}")
    assert config.find_secrets(cfg) == []
    _build_consumers(cfg)


def test_sweep_config_composes_and_builds() -> None:
    cfg = compose_config(name="sweep")
    assert ResolveConfig.from_mapping(config.to_plain(cfg.resolve))
    assert config.to_dataclass(TeamsConfig, cfg.teams)
    assert cfg.sweep.out_root


@pytest.mark.parametrize("experiment", ["smoke", "replay"])
def test_experiments_compose_and_override_only_models_data_output(experiment: str) -> None:
    base = compose_config()
    cfg = compose_config(f"+experiment={experiment}")
    assert cfg.models.detector._target_ == "hoopray.testing.replay.ReplayDetector"
    assert cfg.resolve == base.resolve
    assert cfg.observe == base.observe


def test_cluster_ray_option() -> None:
    cfg = compose_config("ray=cluster")
    assert cfg.ray.address == "auto"
    low, high = config.to_plain(cfg.ray.observe.actors)
    assert 1 <= low < high  # autoscales with the GPU workers
    assert float(cfg.ray.observe.num_gpus) >= 1
    assert float(cfg.ray.observe.clip_timeout_s) > 0  # a hung clip cannot hold a GPU forever
    assert int(cfg.ray.rounds) >= 1
    assert "pass1" not in cfg.ray
    kwargs = ray_init_kwargs(cfg)
    assert kwargs["address"] == "auto"
    assert "num_cpus" not in kwargs and "num_gpus" not in kwargs  # the cluster decides


@pytest.mark.parametrize(("role", "option"), OPTIONS)
def test_every_model_option_instantiates_or_names_missing_weights(
    role: str, option: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    monkeypatch.setenv("HOOPRAY_WEIGHTS", str(tmp_path / "weights"))
    cfg = compose_config(f"models/{role}={option}", f"data.labels={tmp_path}")
    assert cfg.models[role]._target_.startswith("hoopray.")
    try:
        model = config.instantiate_model(cfg.models[role])
    except WeightsNotFoundError as err:
        assert str(err)
        assert config.check_weights(cfg.models[role]), "pre-check missed what the adapter lacks"
        return
    except ImportError as err:  # an optional extra (hoopray[roboflow]) not installed
        assert "pip install" in str(err)
        return
    assert model is not None
    assert config.check_weights(cfg.models[role]) == []


def test_instantiate_models_builds_only_the_roles_asked(tmp_path: Path) -> None:
    cfg = compose_config("+experiment=replay", f"data.labels={tmp_path}")
    models = config.instantiate_models(cfg.models, cfg.roles, only=("detector", "reader"))
    assert isinstance(models, Models)
    assert models.detector is not None and models.reader is not None
    assert models.tracking is None and models.embedder is None
    assert models.detector.world is models.reader.world  # one shared ReplayWorld
    assert models.roles == Roles()


def test_null_model_is_none() -> None:
    assert config.instantiate_model(None) is None


@dataclass
class _Small:
    a: int = 1
    b: str = "x"


@pytest.mark.parametrize(
    ("node", "expected"),
    [({}, _Small()), ({"a": 3}, _Small(a=3)), (OmegaConf.create({"b": "y"}), _Small(b="y"))],
)
def test_to_dataclass(node: object, expected: _Small) -> None:
    assert config.to_dataclass(_Small, node) == expected


def test_to_dataclass_refuses_unknown_keys() -> None:
    with pytest.raises(TypeError, match="unknown config keys"):
        config.to_dataclass(_Small, {"c": 1})


def test_config_hash_is_stable_and_sensitive() -> None:
    assert config.config_hash({"a": 1, "b": 2}) == config.config_hash({"b": 2, "a": 1})
    assert config.config_hash({"a": 1}) != config.config_hash({"a": 2})
    assert config.config_hash(OmegaConf.create({"a": 1})) == config.config_hash({"a": 1})


@pytest.mark.parametrize(
    ("node", "missing"),
    [
        (None, 0),
        ({"_target_": "x.Y", "model": "{existing}"}, 0),
        ({"_target_": "x.Y", "checkpoint": "./nowhere/model.pth"}, 1),
        ({"_target_": "x.Y", "model": "nobody-org/no-such-model"}, 1),
        ({"_target_": "x.Y", "base": "nobody-org/no-such-model", "adapter": "/no/dir"}, 2),
        ({"_target_": "x.Y", "adapter": None, "device": "cpu"}, 0),
        ({"_target_": "x.RoboflowDetector", "model_id": "a/1"}, 1),
    ],
)
def test_check_weights(node: dict | None, missing: int, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("ROBOFLOW_API_KEY", raising=False)
    if node and node.get("model") == "{existing}":
        node = {**node, "model": str(tmp_path)}
    assert len(config.check_weights(node)) == missing


def test_roboflow_key_in_environment_satisfies_check(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBOFLOW_API_KEY", "fake-key-value-123")
    assert config.check_weights({"_target_": "x.RoboflowDetector", "model_id": "a/1"}) == []


FAKE_HF = "hf_" + "a1B2" * 9


@pytest.mark.parametrize(
    ("node", "flagged"),
    [
        ({}, []),
        ({"models": {"reader": {"api_key_env": "ROBOFLOW_API_KEY"}}}, []),
        ({"models": {"detector": {"api_key": "abc"}}}, ["models.detector.api_key"]),
        ({"x": {"token": "something"}}, ["x.token"]),
        ({"x": {"model": FAKE_HF}}, ["x.model"]),
        ({"x": {"key": "${oc.env:HF_TOKEN}"}}, ["x.key"]),
        ({"x": {"list": ["a", FAKE_HF]}}, ["x.list[1]"]),
        ({"x": {"api_key": None}}, []),
    ],
)
def test_find_secrets(node: dict, flagged: list[str]) -> None:
    assert config.find_secrets(OmegaConf.create(node)) == flagged


def test_value_equal_to_secret_env_is_flagged(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROBOFLOW_API_KEY", "Zq9fakeKeyValue77")
    cfg = OmegaConf.create({"models": {"detector": {"model_id": "Zq9fakeKeyValue77"}}})
    with pytest.raises(config.SecretInConfigError) as err:
        config.check_no_secrets(cfg)
    assert "Zq9fakeKeyValue77" not in str(err.value)


def test_redact_and_scrub_hydra_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_" + "Q" * 30)
    hydra_dir = tmp_path / ".hydra"
    hydra_dir.mkdir()
    (hydra_dir / "overrides.yaml").write_text(
        f"- +models.detector.api_key=abc123\n- x={os.environ['HF_TOKEN']}\n- data.root=ok\n"
    )
    (hydra_dir / "config.yaml").write_text("data:\n  root: ok\n")
    changed = config.scrub_hydra_dir(tmp_path)
    assert changed == [hydra_dir / "overrides.yaml"]
    text = (hydra_dir / "overrides.yaml").read_text()
    assert "abc123" not in text and os.environ["HF_TOKEN"] not in text
    assert "data.root=ok" in text
    assert config.redact(f"key {os.environ['HF_TOKEN']}") == "key ***"
