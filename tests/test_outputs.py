"""hoopray.outputs: a clip's observation tables, written and read under the marker rule."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from hoopray import outputs, store, types
from tests.test_resolve import _detections, _obs, _series


def _observations(detections: list[tuple]) -> types.Observations:
    obs = _obs({1: (0, 9)}, _series(1, ["23"] * 3))
    obs.detections = _detections(detections)
    return obs


@pytest.mark.parametrize(
    "detections",
    [[], [(0, "ball", "ball", None)], [(0, "player", "player", 1), (5, "rim", "rim", None)]],
)
def test_observations_round_trip(tmp_path: Path, detections: list[tuple]) -> None:
    obs = _observations(detections)
    outputs.write_observations(str(tmp_path), "g", "c", obs)
    got = outputs.read_observations(str(tmp_path), "g", "c")
    for name in outputs.OBSERVATION_TABLES:
        assert getattr(got, name).equals(getattr(obs, name)), name
    assert (got.game_id, got.clip_id) == ("g", "c")
    assert outputs.read_detections(str(tmp_path), "g", "c").num_rows == len(detections)


def test_clip_observed_before_detections_existed_reads_empty_ones(tmp_path: Path) -> None:
    obs = _observations([(0, "ball", "ball", None)])
    for name in ("tracks", "reads", "team_votes", "clip"):
        store.write_table(tmp_path, f"observations/{name}", "g", "c", getattr(obs, name))
    got = outputs.read_observations(str(tmp_path), "g", "c")
    assert got.detections.num_rows == 0 and got.detections.schema == types.OBS_DETECTIONS
    assert got.tracks.equals(obs.tracks)


def test_detections_without_the_marker_are_not_read(tmp_path: Path) -> None:
    obs = _observations([(0, "ball", "ball", None)])
    for name in ("detections", "tracks", "reads", "team_votes"):  # killed before "clip"
        store.write_table(tmp_path, f"observations/{name}", "g", "c", getattr(obs, name))
    with pytest.raises(FileNotFoundError, match="no complete observations"):
        outputs.read_observations(str(tmp_path), "g", "c")
    assert outputs.read_detections(str(tmp_path), "g", "c").num_rows == 0
    assert store.read_table(tmp_path, "observations/detections").num_rows == 0


def test_marker_is_written_last_and_deleted_first(tmp_path: Path, monkeypatch) -> None:
    order: list[str] = []
    write, delete = store.write_table, store.delete_partition

    def spy_write(root, name, game_id, clip_id, table: pa.Table) -> str:
        order.append(f"write {name}")
        return write(root, name, game_id, clip_id, table)

    def spy_delete(root, name, game_id, clip_id) -> bool:
        order.append(f"delete {name}")
        return delete(root, name, game_id, clip_id)

    monkeypatch.setattr(store, "write_table", spy_write)
    monkeypatch.setattr(store, "delete_partition", spy_delete)
    outputs.write_observations(str(tmp_path), "g", "c", _observations([]))
    assert order[-1] == "write observations/clip"
    assert "write observations/detections" in order
    order.clear()
    outputs.delete_observations(str(tmp_path), "g", "c")
    assert order[0] == "delete observations/clip"
    assert "delete observations/detections" in order
    assert not list(tmp_path.rglob("*.parquet"))
