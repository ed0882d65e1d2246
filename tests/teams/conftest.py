"""Fixtures of the :mod:`hoopray.teams` tests: output roots (local disk and the in-memory
store), a counting clip and a maker of synthetic games."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from hoopray import store
from hoopray.types import ClipRef
from tests.teams.common import SIZE, counting_clip_at


@pytest.fixture
def mem_root() -> Iterator[str]:
    """A fresh output root on fsspec's in-memory filesystem, served as ``mem://`` URIs
    (not local disk: every access goes through ``pyarrow.fs``)."""
    import fsspec

    store.register_filesystem("mem", fsspec.filesystem("memory"))
    root = f"mem://bucket/{uuid.uuid4().hex}/out"
    yield root
    store.delete_tree(root)


@pytest.fixture(params=["local", "mem"])
def out_root(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An output root on local disk, then on the in-memory store."""
    if request.param == "local":
        return str(tmp_path / "out")
    return request.getfixturevalue("mem_root")


@pytest.fixture(scope="module")
def counting_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return counting_clip_at(tmp_path_factory.mktemp("sampled") / "clip.mp4")


@pytest.fixture(scope="module")
def game_maker(tmp_path_factory: pytest.TempPathFactory):
    """Builds synthetic games under one temporary root; returns (game, clip refs, world)."""
    from hoopray.testing.replay import ReplayWorld
    from hoopray.testing.synthetic import make_game

    root = tmp_path_factory.mktemp("team-games")
    world = ReplayWorld(root / "labels")

    def make(game_id: str, **kwargs: object) -> tuple[object, list[ClipRef]]:
        options = {"clips": 1, "seconds": 2.0, "fps": 4, "size": SIZE, **kwargs}
        game = make_game(root / "games", root / "labels", game_id, **options)
        world._paths = None  # new label files: let the replay world index them again
        clips = [
            ClipRef(game_id, clip_id, path, "test")
            for clip_id, path in zip(game.clip_ids, game.clips, strict=True)
        ]
        return game, clips

    make.world = world
    return make
