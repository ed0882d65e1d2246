"""Bad storage and cluster input stops the job before Ray starts: exit 2, the URI and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from hoopray import job, store
from tests.reliability_corpus import config


def _no_ray(**kwargs: object) -> None:
    raise AssertionError("Ray must not start")


@pytest.fixture
def games(tmp_path: Path) -> Path:
    from hoopray.testing.synthetic import make_game

    root = tmp_path / "games"
    make_game(root, tmp_path / "labels", "g", seed=1, clips=1, seconds=0.5, fps=10, size=(320, 180))
    return root


@pytest.mark.parametrize(
    ("data_root", "out_root", "expected"),
    [
        ("s3://{missing}/games", "{tmp}/out", ["s3://{missing}/games", "does not exist"]),
        ("{games}", "s3://{missing}/out", ["s3://{missing}/out", "does not exist"]),
        (
            "nosuchscheme://bucket/games",
            "{tmp}/out",
            ["nosuchscheme://bucket/games", "nosuchscheme"],
        ),
    ],
    ids=["missing-input-bucket", "missing-output-bucket", "unknown-scheme"],
)
def test_unusable_storage_exits_2_before_ray(
    s3_endpoint: str,
    games: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    data_root: str,
    out_root: str,
    expected: list[str],
) -> None:
    names = {"missing": "hoopray-no-such-bucket", "tmp": str(tmp_path), "games": str(games)}
    cfg = config(data_root.format(**names), tmp_path / "labels", out_root.format(**names))
    assert job.run_job(cfg, incremental=False, start_ray=_no_ray) == 2
    text = capsys.readouterr().out
    assert "hoopray cannot start" in text
    for part in expected:
        assert part.format(**names) in text
    assert not (tmp_path / "out").exists()


def test_unreachable_endpoint_exits_2_before_ray(
    s3_endpoint: str, games: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as probe:  # a port that nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = config(
        "s3://some-bucket/games",
        tmp_path / "labels",
        tmp_path / "out",
        f"storage.endpoint_url=http://127.0.0.1:{port}",
    )
    try:
        assert job.run_job(cfg, incremental=False, start_ray=_no_ray) == 2
    finally:
        import os

        os.environ["AWS_ENDPOINT_URL"] = s3_endpoint
    text = capsys.readouterr().out
    assert "s3://some-bucket/games" in text and "storage:" in text


def test_no_cluster_at_the_address_exits_2(
    games: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    cfg = config(games, tmp_path / "labels", tmp_path / "out", f"ray.address=127.0.0.1:{port}")
    assert job.run_job(cfg, incremental=False, start_ray=_no_ray) == 2
    text = capsys.readouterr().out
    assert f"no Ray cluster answered at ray.address='127.0.0.1:{port}'" in text
    assert "Traceback" not in text
    assert not store.exists(str(tmp_path / "out" / "_lock"))
