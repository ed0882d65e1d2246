"""Bad input: the corpus of :mod:`tests.reliability_corpus` in ONE pipeline run.

Every case ends as a status row (``status/clips``): the clips hoopray can use come
through with their outputs, the others fail alone with a clear reason, and the job's
exit code and summary name what failed. Detection, tracking and reading are the replay
doubles (``+experiment=replay``) under a local Ray with a fake GPU.

Decisions these tests pin down:

- a missing ``roster.yaml`` does not fail the game: its clips are processed with teams
  and players unnamed, and their rows are ``ok`` with a warning (stage ``roster``);
- a malformed roster fails the game's clips at stage ``roster`` (their observations are
  kept: fixing the roster and rerunning re-resolves them without observing again);
- a file or folder that discovery leaves out gets a row at stage ``discover``; a
  folder-level problem is stored under clip id ``_game``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from hoopray import job, store
from hoopray import manifest as mf
from tests.reliability_corpus import CASES, Case, Corpus, build_corpus, config

pytestmark = [pytest.mark.reliability, pytest.mark.slow]


@contextlib.contextmanager
def unreadable(path: Path) -> Iterator[None]:
    """``path`` (mode 000) cannot be read. Root reads it anyway, so for root the driver's
    ``os.access`` says no for it, which is all discovery asks."""
    if os.geteuid() != 0:
        yield
        return
    real = os.access

    def access(target: object, mode: int, *args: object, **kwargs: object) -> bool:
        if Path(os.fsdecode(target)).absolute() == path.absolute():  # type: ignore[arg-type]
            return False
        return real(target, mode, *args, **kwargs)  # type: ignore[arg-type]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(os, "access", access)
        yield


def _no_ray(**kwargs: object) -> None:
    raise AssertionError("a job with nothing to do must not start Ray")


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Corpus:
    return build_corpus(tmp_path_factory.mktemp("corpus"))


@pytest.fixture(scope="module")
def run(ray_local, corpus: Corpus, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("corpus-out")
    cfg = config(corpus.games, corpus.labels, out)
    stdout = io.StringIO()
    with unreadable(corpus.unreadable), contextlib.redirect_stdout(stdout):
        code = job.run_job(cfg, incremental=False, start_ray=lambda **kw: None)
    rows = store.read_table(str(out), "status/clips").to_pylist()
    return {
        "code": code,
        "out": out,
        "cfg": cfg,
        "stdout": stdout.getvalue(),
        "status": {(r["game_id"], r["clip_id"]): r for r in rows},
        "rows": rows,
    }


def _ids(case: Case) -> str:
    return case.name


def test_corpus_has_at_least_15_cases() -> None:
    assert len(CASES) >= 15
    assert len({(c.game_id, c.clip_id) for c in CASES}) == len(CASES)
    assert {c.status for c in CASES} == {"ok", "failed", "skipped"}


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_case_outcome(case: Case, run: dict) -> None:
    row = run["status"].get((case.game_id, case.clip_id))
    assert row is not None, f"no status row for {case.game_id}/{case.clip_id}"
    assert row["status"] == case.status, row
    assert row["stage"] == case.stage, row
    if case.reason:
        assert case.reason.lower() in (row["reason"] or "").lower(), row
    else:
        assert row["reason"] is None, row
    out = run["out"]
    partitions = {
        name: os.path.isfile(store.table_path(str(out), name, case.game_id, case.clip_id))
        for name in ("observations/tracks", "observations/clip", "identities/frames")
    }
    video = out / case.game_id / "videos" / f"{case.clip_id}.mp4"
    if case.status != "ok" and case.stage != "roster":
        assert not any(partitions.values()) and not video.exists(), partitions
        return
    if case.status == "failed":  # roster: observed, not resolved
        assert partitions["observations/clip"] and not partitions["identities/frames"]
        assert not video.exists()
        return
    assert all(partitions.values()) and video.is_file(), partitions
    (clip,) = store.read_table(
        str(out), "observations/clip", case.game_id, case.clip_id
    ).to_pylist()
    assert row["frames"] == clip["frames"] > 0
    if case.frames is not None:
        assert clip["frames"] == case.frames
    if case.size is not None:
        assert (clip["width"], clip["height"]) == case.size
    if case.tracks:
        tracks = store.read_table(str(out), "observations/tracks", case.game_id, case.clip_id)
        assert tracks.num_rows > 0, "the replay doubles found no player: decoded wrongly?"


def test_exit_code_and_summary_name_every_failure(run: dict) -> None:
    failed = [c for c in CASES if c.status == "failed"]
    assert run["code"] == 1
    for case in failed:
        assert f"FAILED {case.game_id}/{case.clip_id} at {case.stage}:" in run["stdout"], case
    assert run["stdout"].count("FAILED ") == len(failed)
    summary = json.loads(sorted((run["out"] / "_runs").glob("*.json"))[-1].read_text())
    assert summary["exit_code"] == 1
    assert {(f["game_id"], f["clip_id"]) for f in summary["failures"]} == {
        (c.game_id, c.clip_id) for c in failed
    }


def test_one_row_per_case_and_nothing_else(run: dict) -> None:
    keys = [(r["game_id"], r["clip_id"]) for r in run["rows"]]
    assert len(keys) == len(set(keys))
    assert set(keys) == {(c.game_id, c.clip_id) for c in CASES}


def test_empty_first_second_starts_tracks_late(run: dict) -> None:
    tracks = store.read_table(str(run["out"]), "observations/tracks", "ctl", "empty-start")
    assert tracks.num_rows and min(tracks.column("frame").to_pylist()) >= 10


def test_nothing_escaped_and_no_roster_code_ran(run: dict, corpus: Corpus) -> None:
    assert not corpus.roster_marker.exists()
    assert sorted(p.name for p in corpus.outside.rglob("*")) == ["elsewhere.mp4", "game-x"]
    out = run["out"].resolve()
    for path in out.rglob("*"):
        assert path.resolve().is_relative_to(out), path
    assert not list(out.rglob(".*.tmp")) and not list(out.rglob("*.part*"))


def test_nightly_after_the_corpus_does_nothing(run: dict, corpus: Corpus) -> None:
    with unreadable(corpus.unreadable), contextlib.redirect_stdout(io.StringIO()):
        assert job.run_job(run["cfg"], incremental=True, start_ray=_no_ray) == 0


def test_fixed_roster_reresolves_without_observing_again(run: dict, corpus: Corpus) -> None:
    """Last in the module: it changes the corpus."""
    import yaml

    from hoopray.testing.synthetic import make_roster

    out = run["out"]
    observed = store.table_path(str(out), "observations/clip", "bad-roster", "clip-01")
    before = os.stat(observed).st_mtime_ns
    roster, _ = make_roster(2, ("#1d428a", "#ce1141"), 5)
    (corpus.games / "bad-roster" / "roster.yaml").write_text(yaml.safe_dump(roster))
    with unreadable(corpus.unreadable), contextlib.redirect_stdout(io.StringIO()):
        code = job.run_job(run["cfg"], incremental=True, start_ray=lambda **kw: None)
    assert code == 1  # the run reports the corpus's other failures again
    row = store.read_table(str(out), "status/clips", "bad-roster", "clip-01").to_pylist()[0]
    assert (row["status"], row["reason"]) == ("ok", None)
    assert os.stat(observed).st_mtime_ns == before
    assert (out / "bad-roster" / "videos" / "clip-01.mp4").is_file()


# --------------------------------------------------------------------------- planning


def _entry(
    clips: dict[str, str],
    hashes: mf.StageHashes,
    *,
    failed_at: str | None = None,
    team_failed: bool = False,
) -> mf.GameEntry:
    """The entry a finished run left: fitted on ``clips``, every clip ok or failed at
    ``failed_at``, with roster ``roster-1`` and the stage hashes of ``hashes``."""
    return mf.GameEntry(
        team_hash=hashes.team,
        team_clips=dict(clips),
        team_failed=team_failed,
        roster_fingerprint="roster-1",
        resolve_hash=hashes.resolve,
        clips={
            cid: mf.ClipEntry(
                fingerprint=fp,
                status="failed" if failed_at else "ok",
                stage=failed_at,
                observe_hash=hashes.observe,
                render_hash=hashes.render,
            )
            for cid, fp in clips.items()
        },
    )


def _inputs(
    clips: dict[str, str],
    roster: str,
    *,
    observed: bool = True,
    fit: mf.Fit | None = None,
) -> mf.GameInputs:
    """A game's inputs as :func:`hoopray.pipeline.plan_run` finds them: ``observed``:
    every clip has complete observations of the current config."""
    return mf.GameInputs(
        "g",
        dict(clips),
        roster_fingerprint=roster,
        observed={c: (fp, HASHES.observe) for c, fp in clips.items()} if observed else {},
        fit=fit,
    )


HASHES = mf.StageHashes(team="t", observe="o", resolve="r", render="v")
CLIPS = {"a": "fa"}
FITTED = mf.Fit(HASHES.team, dict(CLIPS))


@pytest.mark.parametrize(
    ("team_failed", "model_present", "fit"),
    [(False, True, False), (False, False, True), (True, False, False), (True, True, False)],
)
def test_a_failed_team_fit_is_not_redone_every_night(
    team_failed: bool, model_present: bool, fit: bool
) -> None:
    # plan_run passes the recorded fit when the model is present or that fit failed
    recorded = mf.Fit(HASHES.team, dict(CLIPS), failed=team_failed)
    last = recorded if model_present or team_failed else None
    game = _inputs(CLIPS, "roster-1", fit=last)
    plan = mf.plan_game(game, _entry(CLIPS, HASHES, team_failed=team_failed), HASHES)
    assert plan.fit_teams is fit
    assert plan.idle is not fit
    assert not any(c.observe for c in plan.clips)


@pytest.mark.parametrize(
    ("failed_at", "roster", "observed", "work"),
    [
        ("roster", "roster-1", True, (False, False, False)),  # same roster: left alone
        ("roster", "roster-2", True, (False, True, True)),  # fixed: resolve again
        ("roster", "roster-2", False, (True, True, True)),  # observations gone: observe
        ("observe", "roster-2", False, (False, False, False)),  # other failures: left alone
        ("resolve", "roster-2", True, (False, False, False)),  # (as is any other stage's)
        ("observe", "roster-1", True, (False, True, True)),  # a killed rerun observed it
        (None, "roster-2", True, (False, True, True)),  # ok clips: resolved as before
    ],
)
def test_a_changed_roster_retries_the_clips_that_failed_at_roster(
    failed_at: str | None, roster: str, observed: bool, work: tuple[bool, bool, bool]
) -> None:
    game = _inputs(CLIPS, roster, observed=observed, fit=FITTED)
    plan = mf.plan_game(game, _entry(CLIPS, HASHES, failed_at=failed_at), HASHES)
    (clip,) = plan.clips
    assert (clip.observe, clip.resolve, clip.render) == work
