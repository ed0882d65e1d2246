"""The package and its pure modules import no heavy library: those load inside the model
adapters and the pipeline's workers only."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "ray", "transformers", "rfdetr", "sam2", "umap", "sklearn", "supervision")

LIGHT_MODULES = [
    "hoopray",
    "hoopray.types",
    "hoopray.numbers",
    "hoopray.geometry",
    "hoopray.masks",
    "hoopray.voting",
    "hoopray.roster",
    "hoopray.store",
    "hoopray.manifest",
    "hoopray.settings",
    "hoopray.outputs",
    "hoopray.lease",
    "hoopray.resolve",
    "hoopray.evaluate",
    "hoopray.report",
    "hoopray.teams",
    "hoopray.observe",
    # the layers of the streaming graph: Ray and the models load inside functions and
    # workers only, so the driver's planning and the tests import them cheaply
    "hoopray.stages",
    "hoopray.pipeline",
    "hoopray.job",
    "hoopray.models.base",
]


@pytest.mark.parametrize("module", LIGHT_MODULES)
def test_import_loads_no_heavy_library(module: str) -> None:
    code = (
        f"import json, sys; import {module}; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(done.stdout.strip().splitlines()[-1]) == []


def test_heavy_libraries_are_detected() -> None:
    """The check above can fail: a heavy import is seen."""
    code = (
        "import json, sys; import supervision; "
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & set({HEAVY!r}))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert "supervision" in json.loads(done.stdout.strip().splitlines()[-1])
