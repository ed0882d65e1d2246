"""hoopray.testing.demo: when the job runs the demo instead of stopping, and what it says.

The demo run itself (a subprocess of jobs/process_games.py on a fresh working folder, the
report in Chromium) is tests/e2e/test_demo.py.
"""

from __future__ import annotations

import pytest

from hoopray.testing import demo
from tests.conftest import real_config_dir


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ("data.root=/x", "data.root"),
        ("+data.root=/x", "data.root"),
        ("++data.root=/x", "data.root"),
        ("~data.labels", "data.labels"),
        ("data=local", "data"),
        ("models/detector=replay", "models/detector"),
    ],
)
def test_override_key(override: str, key: str) -> None:
    assert demo.override_key(override) == key


@pytest.mark.parametrize(
    ("overrides", "given"),
    [
        ([], False),
        (["output.root=/tmp/out", "ray.num_cpus=2"], False),
        (["data.labels=/labels"], False),  # labels alone leave the default root
        (["data.root=data/games"], True),  # named, even with the default value
        (["+data.root=/x"], True),
        (["data=local"], True),
        (["+experiment=smoke"], True),
        (["output.root=/o", "data.root=s3://bucket/games"], True),
    ],
)
def test_data_root_given(overrides: list[str], given: bool) -> None:
    assert demo.data_root_given(overrides) is given


MISSING = ["models.detector: checkpoint does not exist"]


@pytest.mark.parametrize(
    ("default_root", "has_games", "missing", "other", "expected"),
    [
        (True, False, MISSING, [], True),  # a fresh clone
        (False, False, MISSING, [], False),  # data.root given
        (True, True, MISSING, [], False),  # games present: name the weights, as always
        (True, False, [], [], False),  # every weight present: say there are no games
        (True, False, MISSING, ["storage: output.root is not writable"], False),
        (True, False, MISSING, ["ray: no Ray cluster answered"], False),
    ],
)
def test_wants_demo(
    default_root: bool, has_games: bool, missing: list[str], other: list[str], expected: bool
) -> None:
    got = demo.wants_demo(
        default_root=default_root,
        has_games=has_games,
        missing_weights=missing,
        other_problems=other,
    )
    assert got is expected


@pytest.mark.parametrize(
    ("tracker", "missing", "keep"),
    [
        ({"_target_": "hoopray.models.sam2_video.Sam2VideoTracking"}, [], True),
        ({"_target_": "hoopray.models.sam2_meta.Sam2MetaTracking"}, [], True),
        ({"_target_": "hoopray.models.sam2_video.Sam2VideoTracking"}, ["not cached"], False),
        ({"_target_": "hoopray.models.bytetrack.ByteTrackTracking"}, [], False),
        ({"_target_": "hoopray.testing.replay.ReplayTracking"}, [], False),  # never a replay
        (None, [], False),
        ({}, [], False),
    ],
)
def test_keep_tracker(tracker: dict | None, missing: list[str], keep: bool) -> None:
    assert demo.keep_tracker(tracker, missing) is keep


def _demo_cfg(overrides: list[str]):
    with real_config_dir():
        return demo.compose(overrides)


def test_compose_applies_the_demo_and_the_user_wins() -> None:
    cfg = _demo_cfg(["output.root=/tmp/mine"])
    assert cfg.output.root == "/tmp/mine"
    assert cfg.models.detector._target_ == "hoopray.testing.replay.ReplayDetector"
    assert cfg.models.detector.difficulty == "realistic"
    assert cfg.models.tracker._target_ == "hoopray.models.bytetrack.ByteTrackTracking"
    assert cfg.models.embedder._target_ == "hoopray.models.colour.ColourHistogramEmbedder"
    assert cfg.models.reader._target_ == "hoopray.models.easyocr_reader.EasyOcrNumberReader"
    assert (cfg.demo.games, cfg.demo.clips, cfg.demo.difficulty) == (2, 2, "realistic")
    assert cfg.data.root == f"{cfg.demo.dir}/games"
    assert cfg.data.labels == f"{cfg.demo.dir}/labels"


def test_compose_keeps_a_tracker_the_user_picks() -> None:
    cfg = _demo_cfg(["models/tracker=sam2_tiny"])
    assert cfg.models.tracker._target_ == "hoopray.models.sam2_video.Sam2VideoTracking"


def test_banner_says_demo_why_and_replay() -> None:
    cfg = _demo_cfg([])
    text = demo.banner("data/games", MISSING, cfg)
    assert "DEMO" in text
    assert "no games under data/games" in text
    assert MISSING[0] in text
    assert "REPLAYED FROM THE GENERATOR'S LABELS" in text
    assert "ByteTrackTracking" in text and "EasyOCR" in text
    assert "make weights" in text
    footer = demo.footer(cfg)
    assert f"{cfg.output.root}/index.html" in footer and str(demo.TARGET_F1) in footer
