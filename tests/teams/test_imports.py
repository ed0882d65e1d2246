"""Resolve and the team package load without OpenCV and PyAV (and without matplotlib):
resolve runs on CPUs over stored observations, and render gets video only from
:mod:`hoopray.video`, never through :mod:`hoopray.teams`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

DECODERS = ("cv2", "av", "matplotlib")


def _loaded(module: str) -> list[str]:
    code = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted(set({DECODERS!r}) & set(sys.modules))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("hoopray.resolve", []),
        ("hoopray.teams", []),
        ("hoopray.voting", []),
        ("hoopray.video", ["av"]),  # the check can fail: the decoders' own modules
        ("hoopray.masks", ["cv2"]),
    ],
)
def test_imports_pull_no_decoder(module: str, expected: list[str]) -> None:
    assert _loaded(module) == expected


def test_resolve_imports_neither_cv2_nor_av() -> None:
    code = (
        "import hoopray.resolve, sys; assert 'cv2' not in sys.modules and 'av' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
