"""The benchmark scripts stay runnable: each core function runs on a tiny input.

Nothing here is timed and no speed target is asserted; the scripts under ``benchmarks/``
are run by hand (``benchmarks/README.md``). The tiny models come from the shared session
fixtures of ``tests/conftest.py``.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pyarrow as pa
import pytest

from hoopray.types import LABELS

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
SIZE = (320, 180)


def bench(name: str) -> ModuleType:
    """Import ``benchmarks/<name>.py`` as the scripts see each other (``import common``)."""
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    return importlib.import_module(name)


@pytest.fixture(scope="module")
def tiny_dirs(tiny_sam2_dir, tiny_siglip_dir, tiny_smolvlm_dirs, tiny_rfdetr_checkpoint):
    common = bench("common")
    base, adapter = tiny_smolvlm_dirs
    return common.TinyDirs(
        Path(tiny_sam2_dir),
        Path(tiny_siglip_dir),
        Path(base),
        Path(adapter),
        Path(tiny_rfdetr_checkpoint),
    )


# --------------------------------------------------------------------------- common


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], ["a  bb", "-  --"]),
        ([(1, "x")], ["a  bb", "-  --", "1  x"]),
        ([(1.23456, "long"), (100, "")], ["   a  bb", "----  ----", "1.23  long", " 100"]),
    ],
)
def test_format_table(rows: list[tuple], expected: list[str]) -> None:
    assert bench("common").format_table(("a", "bb"), rows).splitlines() == expected


def test_format_table_refuses_ragged_rows() -> None:
    with pytest.raises(ValueError):
        bench("common").format_table(("a", "bb"), [(1,)])


@pytest.mark.parametrize(
    ("value", "passed", "line"),
    [
        (5.4712, True, "result: reduction=5.47 target=>=3 pass"),
        (1.0, False, "result: reduction=1 target=>=3 fail"),
        ("detect:2.9", True, "result: reduction=detect:2.9 target=>=3 pass"),
    ],
)
def test_result_line(value: float | str, passed: bool, line: str) -> None:
    assert bench("common").result_line("reduction", value, ">=3", passed) == line


def test_rss_readings_are_positive() -> None:
    common = bench("common")
    assert common.current_rss_mib() > 0
    assert common.peak_rss_mib() >= common.current_rss_mib() * 0.5


# --------------------------------------------------------------------------- ocr_work


def label_row(frame: int, role: str = "player", visible: bool = True, number: str | None = "7"):
    box = (10.0, 10.0, 20.0, 30.0)
    return {
        "frame": frame,
        "object_id": f"{role}-{frame}",
        "role": role,
        "team": "A" if role == "player" else None,
        "number": number if role == "player" else None,
        "x1": box[0],
        "y1": box[1],
        "x2": box[2],
        "y2": box[3],
        "number_visible": visible if role == "player" else None,
        "nx1": 12.0 if visible else None,
        "ny1": 12.0 if visible else None,
        "nx2": 18.0 if visible else None,
        "ny2": 18.0 if visible else None,
        "mask_rle": None,
    }


@pytest.mark.parametrize(
    ("rows", "expected"),
    [
        ([], 0),
        ([label_row(0), label_row(5), label_row(10)], 3),
        ([label_row(1), label_row(4), label_row(6)], 0),  # not read frames
        ([label_row(0, visible=False), label_row(5, role="referee")], 0),
        ([label_row(0, number=None), label_row(0)], 1),
    ],
)
def test_number_boxes_on_read_frames(rows: list[dict], expected: int) -> None:
    labels = pa.Table.from_pylist(rows, schema=LABELS)
    assert bench("ocr_work").number_boxes_on_read_frames(labels) == expected


def policy_run(policy: str, crops: int, confirmed: int):
    ocr_work = bench("ocr_work")
    return ocr_work.PolicyRun("c", policy, crops, crops, 1, confirmed, 0, 1.0, 0.1)


@pytest.mark.parametrize(
    ("runs", "expected"),
    [
        ([], 0.0),
        ([("notebook", 300, 10), ("hoopray", 60, 10)], 5.0),
        ([("notebook", 300, 10), ("hoopray", 60, 5)], 2.5),
        ([("notebook", 300, 10), ("hoopray", 60, 0)], 0.0),  # nothing confirmed
    ],
)
def test_reduction(runs: list[tuple[str, int, int]], expected: float) -> None:
    made = [policy_run(*r) for r in runs]
    assert bench("ocr_work").reduction(made) == pytest.approx(expected)


def test_ocr_work_measures_both_policies(tmp_path: Path) -> None:
    ocr_work = bench("ocr_work")
    runs = ocr_work.measure(tmp_path, seconds=3, size=SIZE, clips=1)
    by_policy = {r.policy: r for r in runs}
    assert sorted(by_policy) == ["hoopray", "notebook"]
    hoopray, notebook = by_policy["hoopray"], by_policy["notebook"]
    assert notebook.crops == notebook.number_boxes > 0
    assert 0 < hoopray.crops <= notebook.crops
    assert hoopray.wrong_confirmations == 0


# --------------------------------------------------------------------------- memory


def test_memory_reports_both_lengths(tmp_path: Path, tiny_dirs) -> None:
    memory = bench("memory")
    reports = memory.measure(tmp_path, short=5, long=10, size=SIZE, modes=("tiny",), tiny=tiny_dirs)
    assert [(r["mode"], r["frames"]) for r in reports] == [("tiny", 5), ("tiny", 10)]
    assert all(r["peak_mib"] >= r["rss_before_mib"] > 0 for r in reports)
    assert set(memory.ratios(reports)) == {"tiny"}


def test_memory_refuses_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown mode"):
        bench("memory").measure(tmp_path, short=2, long=3, size=SIZE, modes=("huge",))


# --------------------------------------------------------------------------- sweep


def test_sweep_grid() -> None:
    sweep = bench("sweep")
    assert sweep.grid({}) == [{}]
    assert sweep.grid({"a": (1, 2), "b": ("x",)}) == [{"a": 1, "b": "x"}, {"a": 2, "b": "x"}]
    assert len(sweep.grid()) == 18


def test_sweep_times_observe_and_resolve(
    tmp_path: Path, tiny_dirs, monkeypatch: pytest.MonkeyPatch
) -> None:
    import hoopray.observe
    import hoopray.resolve
    from hoopray import outputs

    calls: dict[str, list] = {"observe": [], "resolve": []}
    real_observe, real_resolve = hoopray.observe.observe, hoopray.resolve.resolve

    def observe_spy(*args, **kwargs):
        calls["observe"].append((args, kwargs))
        return real_observe(*args, **kwargs)

    def resolve_spy(*args, **kwargs):
        calls["resolve"].append((args, kwargs))
        return real_resolve(*args, **kwargs)

    monkeypatch.setattr(hoopray.observe, "observe", observe_spy)
    monkeypatch.setattr(hoopray.resolve, "resolve", resolve_spy)
    sweep = bench("sweep")
    settings = [{"ios_threshold": 0.9}, {"reads_to_confirm": 2, "policy": "majority"}]
    observe_s, frames, results = sweep.measure(
        tmp_path, seconds=0.5, size=SIZE, clips=1, settings=settings, repeats=1, tiny=tiny_dirs
    )
    assert frames == 15
    assert observe_s > 0
    assert [r.values for r in results] == settings
    assert all(r.seconds > 0 and r.confirmed >= 0 for r in results)
    # observe(clip, models, cfg, sink=...): no team model; its rows stream to the store
    ((args, kwargs),) = calls["observe"]
    assert len(args) == 3 and callable(kwargs.get("sink"))
    # resolve(obs, roster, naming, cfg, team_model=...) once per setting and clip
    assert len(calls["resolve"]) == len(settings)
    assert all(kw.get("team_model") is not None for _, kw in calls["resolve"])
    # what was re-resolved is what is stored, with its marker
    clip, out = args[0], str(tmp_path / "out")
    assert outputs.observed_clips(out, clip.game_id) == [clip.clip_id]
    stored = outputs.read_observations(out, clip.game_id, clip.clip_id)
    assert stored.tracks.num_rows == calls["resolve"][0][0][0].tracks.num_rows > 0


def test_sweep_refuses_unknown_models(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="models must be"):
        bench("sweep").measure(tmp_path, seconds=0.2, size=SIZE, clips=1, models="real")


# --------------------------------------------------------------------------- stages


def test_stages_time_every_stage(tmp_path: Path, tiny_dirs) -> None:
    stages = bench("stages")
    measured = stages.measure(
        tmp_path, seconds=0.3, size=SIZE, model_frames=2, detect_frames=1, tiny=tiny_dirs
    )
    names = [s.name for s in measured]
    assert names == ["decode", "detect", "track", "embed", "read", "resolve", "render"]
    assert all(s.frames > 0 and np.isfinite(s.fps) and s.fps > 0 for s in measured)
    assert stages.slowest(measured).fps == min(s.fps for s in measured)


# --------------------------------------------------------------------------- lead's scripts


def test_overhead_methods_agree() -> None:
    overhead = bench("overhead")
    masks, boxes = overhead.make_inputs()
    nb = overhead.notebook_way(masks, boxes)
    hr = overhead.hoopray_way(masks, boxes)
    assert nb.shape == hr.shape == (10, 8)
    assert {tuple(p) for p in np.argwhere(nb >= 0.9)} == {tuple(p) for p in np.argwhere(hr >= 0.9)}


def test_models_benchmark_imports() -> None:
    models = bench("models")
    assert models._rate(lambda: None, items=4, repeats=1) > 0
