from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hoopray.teams import TeamsConfig

CONF = Path(__file__).resolve().parents[2] / "conf" / "teams" / "default.yaml"


def test_default_config_builds() -> None:
    cfg = TeamsConfig(**yaml.safe_load(CONF.read_text()))
    assert cfg.stride_seconds == 1.0 and cfg.scale == 0.4 and cfg.umap_components == 3
    assert cfg.max_overlap == 0.3
    assert cfg.override is None


@pytest.mark.parametrize(
    ("changes", "ok"),
    [
        ({}, True),
        ({"override": {"0": "A", "1": "B"}}, True),
        ({"stride_seconds": 0}, False),
        ({"scale": 1.5}, False),
        ({"knn_k": 0}, False),
        ({"umap_neighbors": 1}, False),
        ({"refit_fraction": 0.0}, True),
        ({"refit_fraction": 1.5}, False),
        ({"max_overlap": 0.0}, True),
        ({"max_overlap": 1.0}, True),
        ({"max_overlap": -0.1}, False),
        ({"max_overlap": 1.5}, False),
        ({"override": {0: "A"}}, False),
    ],
)
def test_config_validation(changes: dict, ok: bool) -> None:
    if ok:
        cfg = TeamsConfig(**changes)
        if cfg.override is not None:
            assert cfg.override == {0: "A", 1: "B"}
    else:
        with pytest.raises(ValueError):
            TeamsConfig(**changes)
