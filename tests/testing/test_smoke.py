"""hoopray.testing.smoke: the generated inputs of the smoke run and of the demo, built once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from hoopray.testing.smoke import SmokeConfig, game_ids, input_node, missing, prepare

TINY = {"games": 1, "clips": 1, "seconds": 0.4, "fps": 5, "size": [320, 180]}


def _cfg(root: Path, **values: Any) -> SmokeConfig:
    return SmokeConfig.from_mapping({"dir": str(root), **TINY, **values})


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"dir": "x"}, SmokeConfig(dir="x")),
        (
            {"dir": "x", "size": [960, 540], "prefix": "demo", "difficulty": "realistic"},
            SmokeConfig(dir="x", size=(960, 540), prefix="demo", difficulty="realistic"),
        ),
        ({"dir": "x", "models": ["sam2"]}, SmokeConfig(dir="x", models=("sam2",))),
        ({"dir": "x", "models": None}, SmokeConfig(dir="x")),
    ],
)
def test_from_mapping(values: dict[str, Any], expected: SmokeConfig) -> None:
    assert SmokeConfig.from_mapping(values) == expected


@pytest.mark.parametrize(
    ("values", "match"),
    [
        ({"dir": "x", "colour": "red"}, "unknown smoke options"),
        ({"dir": "x", "models": ["yolo"]}, "unknown tiny models"),
    ],
)
def test_from_mapping_refuses(values: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        SmokeConfig.from_mapping(values)


@pytest.mark.parametrize(
    ("count", "prefix", "expected"),
    [
        (0, "smoke", []),
        (1, "smoke", ["smoke-001"]),
        (2, "demo", ["demo-001", "demo-002"]),
    ],
)
def test_game_ids(count: int, prefix: str, expected: list[str]) -> None:
    assert game_ids(count, prefix) == expected


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        ({}, None),
        ({"smoke": {"dir": "s"}}, ("smoke", {"dir": "s"})),
        ({"demo": {"dir": "d"}}, ("demo", {"dir": "d"})),
        ({"smoke": None, "demo": {"dir": "d"}}, ("demo", {"dir": "d"})),
        ({"data": {"root": "x"}}, None),
    ],
)
def test_input_node(cfg: dict[str, Any], expected: tuple[str, Any] | None) -> None:
    assert input_node(cfg) == expected


def _labels(root: Path, game_id: str) -> list[dict[str, Any]]:
    return pq.read_table(root / "labels" / game_id / "clip-01.parquet").to_pylist()


def test_prepare_builds_once_and_again_when_settings_change(tmp_path: Path) -> None:
    cfg = _cfg(tmp_path, prefix="demo", difficulty="realistic")
    assert missing(cfg) == [str(tmp_path / "games" / "demo-001")]
    paths = prepare(cfg)
    assert paths == {"games": tmp_path / "games", "labels": tmp_path / "labels"}
    game = tmp_path / "games" / "demo-001"
    assert (game / "clip-01.mp4").is_file() and (game / "roster.yaml").is_file()
    assert missing(cfg) == []
    stamp = json.loads((tmp_path / "games" / ".demo-001.built.json").read_text())
    assert stamp["difficulty"] == "realistic" and stamp["prefix"] == "demo"

    built = (game / "clip-01.mp4").stat().st_mtime_ns
    prepare(cfg)
    assert (game / "clip-01.mp4").stat().st_mtime_ns == built  # same settings: not rebuilt
    prepare(_cfg(tmp_path, prefix="demo", difficulty="realistic", seed=1))
    assert (game / "clip-01.mp4").stat().st_mtime_ns != built  # another seed: rebuilt


def test_prepare_passes_the_difficulty_to_the_generator(tmp_path: Path) -> None:
    prepare(_cfg(tmp_path / "easy", seconds=1.0))
    prepare(_cfg(tmp_path / "hard", seconds=1.0, difficulty="hard"))
    assert _labels(tmp_path / "easy", "smoke-001") != _labels(tmp_path / "hard", "smoke-001")


def test_prepare_refuses_an_unknown_difficulty(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="difficulty"):
        prepare(_cfg(tmp_path, difficulty="nightmare"))
