"""Schemas of hoopray.types: the check every write and read goes through."""

from __future__ import annotations

import pyarrow as pa
import pytest

from hoopray import types


def _frames(n: int, drop: tuple[str, ...] = ()) -> pa.Table:
    """``identities/frames`` rows as a file written before ``drop`` existed would hold."""
    values = {
        "frame": list(range(n)),
        "track_id": [1] * n,
        "player_key": ["g/Knicks/23"] * n,
        "x1": [0.0] * n,
        "y1": [0.0] * n,
        "x2": [1.0] * n,
        "y2": [1.0] * n,
        "team_name": ["Knicks"] * n,
        "number": ["23"] * n,
        "player_name": [None] * n,
        "status": ["confirmed"] * n,
        "class_name": ["player"] * n,
    }
    return pa.table({k: v for k, v in values.items() if k not in drop})


@pytest.mark.parametrize("n", [0, 1, 3])
@pytest.mark.parametrize(
    "drop", [(), ("class_name",), ("player_key",), ("player_key", "class_name")]
)
def test_missing_nullable_columns_read_as_nulls(n: int, drop: tuple[str, ...]) -> None:
    checked = types.check_schema("identities/frames", _frames(n, drop))
    assert checked.schema == types.ID_FRAMES
    assert checked.num_rows == n
    for name in drop:
        assert checked.column(name).null_count == n
    assert checked.column("frame").to_pylist() == list(range(n))


@pytest.mark.parametrize(
    "table",
    [
        _frames(2, ("status",)),  # not nullable
        _frames(2, ("frame",)),
        _frames(2).append_column("extra", pa.array([1, 2])),
        _frames(2).select(["track_id", "frame", *_frames(2).column_names[2:]]),  # order
    ],
    ids=["status", "frame", "extra", "order"],
)
def test_schema_mismatch_is_refused(table: pa.Table) -> None:
    with pytest.raises(ValueError, match="identities/frames"):
        types.check_schema("identities/frames", table)


@pytest.mark.parametrize("name", sorted(types.SCHEMAS))
def test_every_schema_accepts_its_empty_table(name: str) -> None:
    assert types.check_schema(name, types.empty_table(name)).schema == types.SCHEMAS[name]


def test_observations_default_to_empty_detections() -> None:
    obs = types.Observations(
        *(types.empty_table(f"observations/{n}") for n in ("tracks", "reads", "team_votes", "clip"))
    )
    assert obs.detections.schema == types.OBS_DETECTIONS and obs.detections.num_rows == 0
    assert (obs.game_id, obs.clip_id) == ("", "")
