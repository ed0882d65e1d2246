"""The package and its pure modules import no heavy library: those load inside the model
adapters and the pipeline's workers only. Product code does not import the test and demo
support of ``hoopray/testing/``, except the entry points that run the smoke run and the
demo, inside a function."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

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


# --------------------------------------------------------------------------- hoopray.testing

TESTING = "hoopray.testing"
# Product modules (hoopray/ outside hoopray/testing/, and jobs/) allowed to import
# hoopray.testing, inside a function only, and why.
TESTING_ALLOWED = {
    "hoopray/job.py": "run_job builds the smoke and demo inputs and runs the demo",
    "jobs/process_games.py": "composes the demo's config on a fresh clone",
}
PRODUCT = sorted(
    p.relative_to(ROOT).as_posix()
    for p in [*(ROOT / "hoopray").rglob("*.py"), *(ROOT / "jobs").glob("*.py")]
    if not p.relative_to(ROOT).as_posix().startswith("hoopray/testing/")
)


def imports_of_testing(source: str) -> list[tuple[int, bool]]:
    """``(line, at import time)`` of each import of :data:`TESTING` in ``source``; at import
    time means outside any function (module level, a class body, ``if TYPE_CHECKING``)."""
    found: list[tuple[int, bool]] = []

    def names(node: ast.Import | ast.ImportFrom) -> list[str]:
        if isinstance(node, ast.Import):
            return [alias.name for alias in node.names]
        if node.level == 0 and node.module:
            return [node.module, *(f"{node.module}.{alias.name}" for alias in node.names)]
        return []

    def visit(node: ast.AST, in_function: bool) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any(
            n == TESTING or n.startswith(TESTING + ".") for n in names(node)
        ):
            found.append((node.lineno, not in_function))
        inside = in_function or isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        for child in ast.iter_child_nodes(node):
            visit(child, inside)

    visit(ast.parse(source), False)
    return found


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("", []),
        ("import hoopray.store\nfrom hoopray import store", []),
        ("import hoopray.testing_tools", []),
        ("import hoopray.testing", [(1, True)]),
        ("from hoopray import testing", [(1, True)]),
        ("from hoopray.testing.replay import ReplayWorld", [(1, True)]),
        ("if TYPE_CHECKING:\n    from hoopray.testing import tiny", [(2, True)]),
        ("class A:\n    import hoopray.testing.smoke", [(2, True)]),
        ("def f():\n    from hoopray.testing import demo", [(2, False)]),
        ("async def f():\n    if x:\n        import hoopray.testing.tiny", [(3, False)]),
    ],
)
def test_imports_of_testing(source: str, expected: list[tuple[int, bool]]) -> None:
    assert imports_of_testing(source) == expected


def test_allow_list_names_product_modules() -> None:
    assert set(TESTING_ALLOWED) <= set(PRODUCT)
    assert "hoopray/job.py" in PRODUCT and "hoopray/models/sam2_video.py" in PRODUCT
    assert not any(p.startswith("hoopray/testing/") for p in PRODUCT)


@pytest.mark.parametrize("path", PRODUCT)
def test_product_code_does_not_import_hoopray_testing(path: str) -> None:
    found = imports_of_testing((ROOT / path).read_text("utf-8"))
    at_import = [line for line, top in found if top]
    assert not at_import, f"{path} imports {TESTING} at import time (lines {at_import})"
    if path not in TESTING_ALLOWED:
        lines = [line for line, _ in found]
        assert not found, f"{path} imports {TESTING} (lines {lines}): not in TESTING_ALLOWED"
