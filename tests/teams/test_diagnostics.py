from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from hoopray import store, types
from hoopray.teams import (
    TeamModel,
    TeamNaming,
    crops_table,
    fit_team_model,
    hex_to_lab,
    load_naming,
    model_present,
    save_game,
    teams_dir,
)
from tests.teams.common import BLUE, GREEN, PCA, blobs, crop_sample


def test_save_load_round_trip_and_diagnostics(out_root: str) -> None:
    values, _ = blobs(30, dim=8)
    model = fit_team_model(values, PCA)
    model.cluster_lab = np.stack([hex_to_lab(BLUE), hex_to_lab(GREEN)])
    sample = crop_sample(30)
    naming = TeamNaming({0: "Blue", 1: "Green"}, 0.7, {"mapping": "identity"})
    directory = teams_dir(out_root, "game-001")
    assert directory == store.join(out_root, "game-001", "teams")
    assert not model_present(out_root, "game-001")
    paths = save_game(directory, model, sample, naming)
    assert model_present(out_root, "game-001")
    assert all(isinstance(p, str) and p.startswith(directory + "/") for p in paths.values())

    loaded = TeamModel.load(directory, trusted_root=out_root)
    np.testing.assert_array_equal(loaded.labels, model.labels)
    np.testing.assert_array_equal(loaded.cluster_lab, model.cluster_lab)
    assert loaded.meta == json.loads(json.dumps(model.meta))
    probe, _ = blobs(50, dim=8, seed=9)
    for got, want in zip(loaded.predict(probe), model.predict(probe), strict=True):
        np.testing.assert_array_equal(got, want)
    assert load_naming(directory) == naming
    assert load_naming(out_root) is None

    for key in ("scatter", "contact_sheet"):
        assert store.read_bytes(paths[key])[:8] == b"\x89PNG\r\n\x1a\n"
    table = pq.read_table(pa.BufferReader(store.read_bytes(paths["crops"])))
    assert table.schema.equals(types.TEAM_CROPS, check_metadata=False)
    assert table.column("cluster").to_pylist() == model.labels.tolist()
    names = {e.name for e in store.list_dir(directory)}
    assert names == {
        "model.npz",
        "model.json",
        "naming.json",
        "crops.parquet",
        "scatter.png",
        "contact_sheet.png",
    }  # no temporary files left


@pytest.mark.parametrize(("crops", "labels"), [(4, 4), (3, 4), (5, 4)])
def test_crops_table_needs_one_crop_per_label(crops: int, labels: int) -> None:
    values, _ = blobs(labels, dim=4)
    model = fit_team_model(values, PCA)
    if crops != labels:
        with pytest.raises(ValueError, match=f"{crops} crops but the model has {labels}"):
            crops_table(model, crop_sample(crops))
        return
    table = crops_table(model, crop_sample(crops))
    assert table.num_rows == labels and table.column("frame").to_pylist() == [0, 30, 60, 90]
