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

from hoopray.masks import rle_encode
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
    return ocr_work.PolicyRun(8.0, "c", policy, crops, crops, 1, confirmed, 0, 1.0, 0.1)


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
    assert all(r.length == 3 for r in runs)
    # the notebook reads every number box of every read frame, one call per crop
    assert notebook.crops == notebook.number_boxes == notebook.reader_calls > 0
    assert hoopray.number_boxes == notebook.number_boxes
    assert 0 < hoopray.crops < notebook.crops
    assert hoopray.wrong_confirmations == 0


def test_ocr_work_notebook_side_reads_everything() -> None:
    cfg = bench("ocr_work").notebook_config()
    assert cfg.skip_confirmed_reads is None
    boxes = np.array([[0, 0, 2, 30], [0, 0, 90, 3], [0, 0, 1, 1]], dtype=np.float32)
    assert cfg.legible(boxes).all()  # no size or aspect gate
    assert cfg.read_min_ios == 0.0


# --------------------------------------------------------------------------- memory


def test_memory_reports_both_lengths(tmp_path: Path, tiny_dirs) -> None:
    memory = bench("memory")
    reports = memory.measure(tmp_path, short=5, long=10, size=SIZE, modes=("tiny",), tiny=tiny_dirs)
    assert [(r["mode"], r["frames"]) for r in reports] == [("tiny", 5), ("tiny", 10)]
    assert all(r["highest_mib"] >= r["baseline_mib"] > 0 for r in reports)
    assert all(r["growth_mib"] == r["highest_mib"] - r["baseline_mib"] for r in reports)
    assert set(memory.growth_rates(reports)) == {"tiny"}
    # two clips, not the start of one: each run observed its whole clip
    assert len(list((tmp_path / "games").glob("*/*.mp4"))) == 2


@pytest.mark.parametrize(
    ("short", "long", "expected"),
    [((10, 100.0), (1010, 105.0), 5.0), ((300, 50.0), (3300, 44.0), -2.0)],
)
def test_memory_growth_rate(short: tuple, long: tuple, expected: float) -> None:
    reports = [
        {"mode": "tiny", "frames": short[0], "growth_mib": short[1]},
        {"mode": "tiny", "frames": long[0], "growth_mib": long[1]},
    ]
    assert bench("memory").growth_rates(reports) == {"tiny": pytest.approx(expected)}


def test_memory_refuses_bad_lengths(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="short < long"):
        bench("memory").measure(tmp_path, short=10, long=10, size=SIZE, modes=("replay",))


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


# --------------------------------------------------------------------------- overhead


def test_overhead_pairs_agree_and_the_check_can_fail() -> None:
    overhead = bench("overhead")
    inputs = overhead.make_inputs()
    notebook = overhead.notebook_frame(inputs.masks.copy(), inputs)
    hoopray = overhead.hoopray_pairs(inputs)
    assert hoopray == notebook
    # 8 boxes on one player each, and of the three straddling boxes only the one 95 % in
    # front pairs (with the front player, track 7); the floor box pairs with no one
    assert hoopray == {(j + 1, j) for j in range(8)} | {(7, 10)}
    # pairing each box with its most overlapping track gives other pairs on these inputs
    assert overhead.naive_pairs(inputs) != notebook


def test_overhead_times_the_production_path() -> None:
    overhead = bench("overhead")
    inputs = overhead.make_inputs()
    timing = overhead.measure(inputs, repeats=2)
    assert len(timing.notebook) == len(timing.hoopray) == 2
    assert all(c.wall > 0 and c.cpu >= 0 for c in timing.notebook + timing.hoopray)
    assert timing.speedup("wall") > 0
    observer = overhead.make_observer()
    clock, tracks = overhead.hoopray_frame(observer, 0, inputs.masks.copy(), inputs)
    assert clock.wall > 0 and len(tracks.track_ids) == 10
    # one row per player, with the area and RLE of the cleaned mask
    rows = observer.tracks.table().to_pylist()
    assert [r["track_id"] for r in rows] == list(range(1, 11))
    cleaned, _ = overhead.clean_masks(inputs.masks.copy(), overhead.CLEAN_DISTANCE)
    assert [r["mask_area"] for r in rows] == [int(m.sum()) for m in cleaned]
    assert [r["mask_rle"] for r in rows] == [rle_encode(m) for m in cleaned]
    assert observer.reads.rows == 9  # 12 boxes: the tie, the 70/30 box and the floor go


# --------------------------------------------------------------------------- real_size


def test_real_size_schedules() -> None:
    real_size = bench("real_size")
    costs = real_size.Costs(track=0.05, detect=0.02, embed=0.01, read_batched=0.2, read_single=0.05)
    hoopray = real_size.loop_time(costs, "hoopray", 8.0, reads_per_track=2)
    notebook = real_size.loop_time(costs, "notebook", 8.0, reads_per_track=2)
    assert hoopray.frames == notebook.frames == 240
    assert hoopray.seconds["track"] == notebook.seconds["track"] == pytest.approx(12.0)
    assert notebook.seconds["detect"] == pytest.approx(2 * hoopray.seconds["detect"])
    assert hoopray.seconds["detect"] == pytest.approx(48 * 0.02)
    assert hoopray.seconds["read"] == pytest.approx(2 * 0.2)  # decided after two reads
    assert notebook.seconds["read"] == pytest.approx(48 * 10 * 0.05)  # every crop, every time
    assert hoopray.seconds["embed"] == notebook.seconds["embed"]
    assert hoopray.fps > notebook.fps
    with pytest.raises(ValueError, match="schedule"):
        real_size.loop_time(costs, "other", 8.0, 2)


def test_real_size_quick_times_every_stage_through_the_adapters(tmp_path: Path) -> None:
    real_size = bench("real_size")
    opts = real_size.Options(device="cpu", frames=1, crops=2, image_splitting=None, quick=True)
    stages = real_size.measure(tmp_path, opts)
    assert [s.stage for s in stages] == ["detect", "track", "embed", "read", "read"]
    assert all(s.seconds > 0 and s.params_m > 0 for s in stages)
    costs = real_size.costs_of(stages, stages[1].model, stages[0].model)
    assert costs.read_single * 10 == pytest.approx(stages[-1].seconds)


def test_models_benchmark_imports() -> None:
    models = bench("models")
    assert models._rate(lambda: None, items=4, repeats=1) > 0
