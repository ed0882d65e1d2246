"""The pure helpers of hoopray.stages: the pool's read-ahead depths, batches and rows.

The operators themselves run under Ray in tests/e2e/ (test_pipeline, test_faults,
test_incremental, test_cluster).
"""

from __future__ import annotations

import numpy as np
import pytest

from hoopray.stages import RESULT_KEYS, batch_rows, read_ahead_depths, rows_batch


@pytest.mark.parametrize(
    ("pool", "expected"),
    [
        ({}, {"decode_ahead": 0, "infer_ahead": 0}),
        ({"decode_ahead": None, "infer_ahead": None}, {"decode_ahead": 0, "infer_ahead": 0}),
        ({"decode_ahead": 4, "infer_ahead": 2}, {"decode_ahead": 4, "infer_ahead": 2}),
        ({"decode_ahead": "3", "actors": [1, 4]}, {"decode_ahead": 3, "infer_ahead": 0}),
    ],
)
def test_read_ahead_depths(pool: dict, expected: dict) -> None:
    assert read_ahead_depths(pool) == expected


def test_the_production_pools_run_ahead() -> None:
    from tests.conftest import compose_config

    for ray in ("local", "cluster"):
        depths = read_ahead_depths(compose_config(f"ray={ray}").ray.observe)
        assert depths["decode_ahead"] > 0 and depths["infer_ahead"] > 0, ray


@pytest.mark.parametrize(
    "rows",
    [
        [],
        [{"kind": "observe", "frames": 3, "seconds": 1.5, "ok": True, "reason": ""}],
        [
            {"kind": "sample", "frames": 0, "seconds": 0.0, "ok": False, "reason": "x"},
            {"kind": "observe", "frames": 7, "seconds": 2.0, "ok": True, "reason": ""},
        ],
    ],
)
def test_rows_survive_a_batch(rows: list[dict]) -> None:
    keys = ("kind", "frames", "seconds", "ok", "reason")
    batch = rows_batch(rows, keys)
    assert list(batch) == list(keys)
    if rows:
        assert batch["frames"].dtype == np.int64 and batch["ok"].dtype == bool
    back = batch_rows(batch)
    assert back == rows
    assert all(type(v) is type(rows[i][k]) for i, row in enumerate(back) for k, v in row.items())


def test_result_rows_have_the_status_columns() -> None:
    assert RESULT_KEYS[0] == "kind" and "status" in RESULT_KEYS and "reason" in RESULT_KEYS
