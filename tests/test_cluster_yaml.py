"""cluster.yaml passes Ray's own cluster-launcher validation and says what hoopray needs."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

CLUSTER_YAML = Path(__file__).resolve().parents[1] / "cluster.yaml"


@pytest.fixture(scope="module")
def cluster() -> dict:
    return yaml.safe_load(CLUSTER_YAML.read_text())


def _prepared(config: dict) -> dict:
    from ray.autoscaler._private.util import prepare_config, validate_config

    prepared = prepare_config(copy.deepcopy(config))
    validate_config(prepared)
    return prepared


def test_cluster_yaml_passes_ray_validation(cluster: dict) -> None:
    prepared = _prepared(cluster)
    assert prepared["head_node_type"] in prepared["available_node_types"]


def test_cluster_has_cpu_head_and_gpu_workers(cluster: dict) -> None:
    types = cluster["available_node_types"]
    head = types[cluster["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0
    gpu_types = [t for name, t in types.items() if t.get("resources", {}).get("GPU", 0) >= 1]
    assert gpu_types, "no GPU worker type"
    assert all(t["min_workers"] <= t["max_workers"] for t in gpu_types)


def test_cluster_pins_image_and_installs_hoopray(cluster: dict) -> None:
    import ray

    image = cluster["docker"]["image"]
    assert image.startswith(f"rayproject/ray:{ray.__version__}-py311")
    assert any("pip install" in c and "hoopray" in c for c in cluster["setup_commands"])
    assert any("torch==" in c for c in cluster["setup_commands"])


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({}, None),
        ({"head_node_type": "missing"}, ValueError),
        ({"max_workers": -1}, Exception),
        ({"not_a_field": 1}, Exception),
    ],
)
def test_validation_rejects_broken_variants(
    cluster: dict, change: dict, error: type | None
) -> None:
    config = {**copy.deepcopy(cluster), **change}
    if error is None:
        _prepared(config)
    else:
        with pytest.raises(error):
            _prepared(config)
