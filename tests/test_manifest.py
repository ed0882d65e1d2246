"""Planning from the per-game manifest: what a nightly run must redo, and nothing more."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from hoopray import manifest as mf

HASHES = mf.StageHashes(team="t1", observe="o1", resolve="r1", render="v1")
ROSTER = "roster"
FIVE = {f"c{i}": f"f{i}" for i in range(1, 6)}  # a game of five clips
TWO = {"a": "fa", "b": "fb"}

Work = tuple[bool, bool, bool]  # (observe, resolve, render)
ALL: Work = (True, True, True)
RESOLVE: Work = (False, True, True)
RENDER: Work = (False, False, True)
NONE: Work = (False, False, False)


def _hashes(**changed: str) -> mf.StageHashes:
    """HASHES with some stage hashes changed."""
    base = {"team": "t1", "observe": "o1", "resolve": "r1", "render": "v1"}
    return mf.StageHashes(**(base | changed))


def _entry(
    clips: dict[str, str],
    *,
    failed: dict[str, str | None] | None = None,
    team_clips: dict[str, str] | None = None,
    team_failed: bool = False,
    hashes: mf.StageHashes = HASHES,
) -> mf.GameEntry:
    """The entry a finished run on ``clips`` wrote; ``failed``: clip id -> failed stage."""
    failed = failed or {}
    return mf.GameEntry(
        team_hash=hashes.team,
        team_clips=dict(clips if team_clips is None else team_clips),
        team_failed=team_failed,
        roster_fingerprint=ROSTER,
        resolve_hash=hashes.resolve,
        clips={
            cid: mf.ClipEntry(
                fingerprint=fp,
                status="failed" if cid in failed else "ok",
                stage=failed.get(cid),
                reason="boom" if cid in failed else None,
                observe_hash=hashes.observe,
                render_hash=hashes.render,
                identities_hash=f"id-{cid}",
            )
            for cid, fp in clips.items()
        },
    )


def _observed(clips: dict[str, str], observe: str = HASHES.observe) -> dict[str, tuple[str, str]]:
    """Complete observations in the store for every clip of ``clips``."""
    return {cid: (fp, observe) for cid, fp in clips.items()}


def _fit(clips: dict[str, str], team: str = HASHES.team, failed: bool = False) -> mf.Fit:
    return mf.Fit(team_hash=team, clips=dict(clips), failed=failed)


def _inputs(
    clips: dict[str, str],
    observed: dict[str, tuple[str, str]],
    fit: mf.Fit | None,
    roster: str = ROSTER,
) -> mf.GameInputs:
    return mf.GameInputs("g", dict(clips), roster_fingerprint=roster, observed=observed, fit=fit)


def _same(clips: dict[str, str]) -> mf.GameInputs:
    """Inputs unchanged since the entry ``_entry(clips)``: observed and fitted on them."""
    return _inputs(clips, _observed(clips), _fit(clips))


def _work(plan: mf.GamePlan) -> dict[str, Work]:
    return {c.clip_id: (c.observe, c.resolve, c.render) for c in plan.clips}


def _each(clips: dict[str, str], work: Work, **other: Work) -> dict[str, Work]:
    return {cid: work for cid in clips} | other


FIVE_AND_C6 = FIVE | {"c6": "f6"}
FIVE_AND_TWO = FIVE | {"c6": "f6", "c7": "f7"}
FIVE_C1_CHANGED = FIVE | {"c1": "f1-new"}
FIVE_C2_CHANGED = FIVE | {"c2": "f2-new"}
FIVE_NO_C2 = {k: v for k, v in FIVE.items() if k != "c2"}
FIVE_NO_C5 = {k: v for k, v in FIVE.items() if k != "c5"}
C2_OBSERVE_FAILED = {"c2": "observe"}
C2_ROSTER_FAILED = {"c2": "roster"}

# inputs, entry, hashes, plan_game keyword arguments, fit_teams, work, removed; id last
PLANS: list[Any] = [
    # --- a new game
    pytest.param(
        _inputs(FIVE, {}, None), None, HASHES, {}, True, _each(FIVE, ALL), (), id="new-game"
    ),
    pytest.param(_inputs({}, {}, None), None, HASHES, {}, True, {}, (), id="new-game-no-clips"),
    pytest.param(
        _inputs({"b": "fb", "a": "fa", "c": "fc"}, {}, None),
        None,
        HASHES,
        {},
        True,
        {"a": ALL, "b": ALL, "c": ALL},
        (),
        id="new-game-clips-planned-in-id-order",
    ),
    pytest.param(
        _inputs(TWO, _observed({"a": "fa"}), None),
        None,
        HASHES,
        {},
        True,
        {"a": RESOLVE, "b": ALL},
        (),
        id="new-game-killed-after-observing-one-clip",
    ),
    pytest.param(
        _inputs(TWO, _observed(TWO), _fit(TWO)),
        None,
        HASHES,
        {},
        False,
        _each(TWO, RESOLVE),
        (),
        id="new-game-killed-after-fit-and-observe",
    ),
    # --- nothing changed
    pytest.param(_same(FIVE), _entry(FIVE), HASHES, {}, False, _each(FIVE, NONE), (), id="same"),
    pytest.param(
        _same(FIVE),
        _entry(FIVE),
        HASHES,
        {"retry_failed": True},
        False,
        _each(FIVE, NONE),
        (),
        id="same-retry-failed-without-failures",
    ),
    # --- clips added: refit only beyond refit_fraction, only the new clips observed
    pytest.param(
        _inputs(FIVE_AND_C6, _observed(FIVE), _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {},
        False,
        _each(FIVE, RESOLVE, c6=ALL),
        (),
        id="one-added-to-five-0.2-no-refit",
    ),
    pytest.param(
        _inputs(FIVE_AND_TWO, _observed(FIVE), _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {},
        True,
        _each(FIVE, RESOLVE, c6=ALL, c7=ALL),
        (),
        id="two-added-to-five-0.4-refit",
    ),
    pytest.param(
        _inputs(FIVE_AND_TWO, _observed(FIVE), _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {"refit_fraction": 0.4},
        False,
        _each(FIVE, RESOLVE, c6=ALL, c7=ALL),
        (),
        id="two-added-to-five-fraction-0.4-no-refit",
    ),
    pytest.param(
        _inputs(FIVE_AND_C6, _observed(FIVE), _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {"refit_fraction": 0.0},
        True,
        _each(FIVE, RESOLVE, c6=ALL),
        (),
        id="one-added-fraction-0-refit",
    ),
    # --- a changed fingerprint: that clip observed again
    pytest.param(
        _inputs(FIVE_C1_CHANGED, _observed(FIVE), _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {},
        False,
        _each(FIVE, RESOLVE, c1=ALL),
        (),
        id="fingerprint-changed-one-of-five",
    ),
    pytest.param(
        _inputs({"a": "fa2", "b": "fb"}, _observed(TWO), _fit(TWO)),
        _entry(TWO),
        HASHES,
        {},
        True,
        {"a": ALL, "b": RESOLVE},
        (),
        id="fingerprint-changed-one-of-two-refit-no-reobserve",
    ),
    # --- stage configs
    pytest.param(
        _same(FIVE),
        _entry(FIVE),
        _hashes(team="t2"),
        {},
        True,
        _each(FIVE, RESOLVE),
        (),
        id="team-hash-changed",
    ),
    pytest.param(
        _same(FIVE),
        _entry(FIVE),
        _hashes(resolve="r2"),
        {},
        False,
        _each(FIVE, RESOLVE),
        (),
        id="resolve-hash-changed",
    ),
    pytest.param(
        _same(FIVE),
        _entry(FIVE),
        _hashes(render="v2"),
        {},
        False,
        _each(FIVE, RENDER),
        (),
        id="render-hash-changed",
    ),
    pytest.param(
        _same(FIVE),
        _entry(FIVE),
        _hashes(observe="o2"),
        {},
        False,
        _each(FIVE, ALL),
        (),
        id="observe-hash-changed",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE), _fit(FIVE), roster="roster-2"),
        _entry(FIVE),
        HASHES,
        {},
        False,
        _each(FIVE, RESOLVE),
        (),
        id="roster-changed",
    ),
    # --- observations gone or stale in the store while the entry says ok
    pytest.param(
        _inputs(FIVE, _observed(FIVE_NO_C2), _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {},
        False,
        _each(FIVE, RESOLVE, c2=ALL),
        (),
        id="observations-missing",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE) | {"c2": ("f2", "o0")}, _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {},
        False,
        _each(FIVE, RESOLVE, c2=ALL),
        (),
        id="observations-of-an-older-observe-config",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE) | {"c2": ("f0", "o1")}, _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {},
        False,
        _each(FIVE, RESOLVE, c2=ALL),
        (),
        id="observations-of-another-fingerprint",
    ),
    # --- a clip that failed observing (no observations), same input and config
    pytest.param(
        _inputs(FIVE, _observed(FIVE_NO_C2), _fit(FIVE)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        HASHES,
        {},
        False,
        _each(FIVE, NONE),
        (),
        id="failed-left-alone",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE_NO_C2), _fit(FIVE)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        HASHES,
        {"retry_failed": True},
        False,
        _each(FIVE, RESOLVE, c2=ALL),
        (),
        id="failed-retried",
    ),
    pytest.param(
        _inputs(FIVE_C2_CHANGED, _observed(FIVE_NO_C2), _fit(FIVE)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        HASHES,
        {},
        False,
        _each(FIVE, RESOLVE, c2=ALL),
        (),
        id="failed-fingerprint-changed",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE_NO_C2), _fit(FIVE)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        _hashes(observe="o2"),
        {},
        False,
        _each(FIVE, ALL),
        (),
        id="failed-observe-hash-changed",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE_NO_C2), _fit(FIVE)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        _hashes(resolve="r2"),
        {},
        False,
        _each(FIVE, RESOLVE, c2=NONE),
        (),
        id="failed-not-resolved-with-the-game",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE_NO_C2), _fit(FIVE)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        _hashes(render="v2"),
        {},
        False,
        _each(FIVE, RENDER, c2=NONE),
        (),
        id="failed-not-rendered",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE_NO_C2), _fit(FIVE)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        _hashes(team="t2"),
        {},
        True,
        _each(FIVE, RESOLVE, c2=NONE),
        (),
        id="failed-not-observed-on-refit",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE_NO_C2), _fit(FIVE), roster="roster-2"),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        HASHES,
        {},
        False,
        _each(FIVE, RESOLVE, c2=NONE),
        (),
        id="failed-observing-not-resolved-on-roster-change",
    ),
    # --- a clip that failed at the roster stage, its observations kept
    pytest.param(
        _same(FIVE),
        _entry(FIVE, failed=C2_ROSTER_FAILED),
        HASHES,
        {},
        False,
        _each(FIVE, NONE),
        (),
        id="roster-failed-left-alone",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE), _fit(FIVE), roster="roster-2"),
        _entry(FIVE, failed=C2_ROSTER_FAILED),
        HASHES,
        {},
        False,
        _each(FIVE, RESOLVE),
        (),
        id="roster-failed-resolved-on-roster-change",
    ),
    pytest.param(
        _same(FIVE),
        _entry(FIVE, failed=C2_ROSTER_FAILED),
        _hashes(render="v2"),
        {},
        False,
        _each(FIVE, RENDER, c2=NONE),
        (),
        id="roster-failed-not-rendered",
    ),
    pytest.param(
        _same(FIVE),
        _entry(FIVE, failed=C2_ROSTER_FAILED),
        HASHES,
        {"retry_failed": True},
        False,
        _each(FIVE, RESOLVE, c2=ALL),
        (),
        id="roster-failed-retried",
    ),
    # --- the last team fit failed
    pytest.param(
        _inputs(FIVE, _observed(FIVE), _fit(FIVE, failed=True)),
        _entry(FIVE, team_failed=True),
        HASHES,
        {},
        False,
        _each(FIVE, NONE),
        (),
        id="fit-failed-same-hash-and-clips",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE), _fit(FIVE, failed=True)),
        _entry(FIVE, team_failed=True),
        HASHES,
        {"retry_failed": True},
        True,
        _each(FIVE, RESOLVE),
        (),
        id="fit-failed-retried",
    ),
    pytest.param(
        _inputs(FIVE_AND_C6, _observed(FIVE), _fit(FIVE, failed=True)),
        _entry(FIVE, team_failed=True),
        HASHES,
        {},
        True,
        _each(FIVE, RESOLVE, c6=ALL),
        (),
        id="fit-failed-clip-added-below-fraction",
    ),
    pytest.param(
        _inputs(FIVE_C1_CHANGED, _observed(FIVE), _fit(FIVE, failed=True)),
        _entry(FIVE, team_failed=True),
        HASHES,
        {},
        True,
        _each(FIVE, RESOLVE, c1=ALL),
        (),
        id="fit-failed-fingerprint-changed",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE), _fit(FIVE, team="t0", failed=True)),
        _entry(FIVE, team_failed=True),
        HASHES,
        {},
        True,
        _each(FIVE, RESOLVE),
        (),
        id="fit-failed-with-another-team-hash",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE), None),
        _entry(FIVE),
        HASHES,
        {},
        True,
        _each(FIVE, RESOLVE),
        (),
        id="team-model-gone-refit-no-reobserve",
    ),
    # --- removed clips
    pytest.param(
        _inputs(FIVE_NO_C5, _observed(FIVE), _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {},
        False,
        _each(FIVE_NO_C5, RESOLVE),
        ("c5",),
        id="one-of-five-removed",
    ),
    pytest.param(
        _inputs({"a": "fa"}, _observed(TWO), _fit(TWO)),
        _entry(TWO),
        HASHES,
        {},
        True,
        {"a": RESOLVE},
        ("b",),
        id="one-of-two-removed-refit",
    ),
    pytest.param(
        _inputs({}, {}, _fit(TWO)),
        _entry(TWO),
        HASHES,
        {},
        True,
        {},
        ("a", "b"),
        id="every-clip-removed",
    ),
    pytest.param(
        _inputs({}, {}, _fit({}, failed=True)),  # what the driver passes for a game of no clips
        _entry(TWO),
        HASHES,
        {},
        False,
        {},
        ("a", "b"),
        id="every-clip-removed-no-refit",
    ),
    pytest.param(
        _inputs(FIVE_NO_C2, _observed(FIVE_NO_C2), _fit(FIVE)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        HASHES,
        {},
        False,
        _each(FIVE_NO_C2, RESOLVE),
        ("c2",),
        id="failed-clip-removed",
    ),
    # --- force: everything
    pytest.param(
        _same(FIVE),
        _entry(FIVE),
        HASHES,
        {"force": True},
        True,
        _each(FIVE, ALL),
        (),
        id="force",
    ),
    pytest.param(
        _inputs(FIVE_NO_C5, _observed(FIVE_NO_C2), _fit(FIVE, failed=True)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED, team_failed=True),
        HASHES,
        {"force": True},
        True,
        _each(FIVE_NO_C5, ALL),
        ("c5",),
        id="force-failed-and-removed",
    ),
]


@pytest.mark.parametrize(("inputs", "entry", "hashes", "kwargs", "fit", "work", "removed"), PLANS)
def test_plan_game(
    inputs: mf.GameInputs,
    entry: mf.GameEntry | None,
    hashes: mf.StageHashes,
    kwargs: dict[str, Any],
    fit: bool,
    work: dict[str, Work],
    removed: tuple[str, ...],
) -> None:
    plan = mf.plan_game(inputs, entry, hashes, **kwargs)
    assert plan.game_id == "g"
    assert plan.fit_teams is fit
    assert _work(plan) == work
    assert [c.clip_id for c in plan.clips] == sorted(inputs.clips)
    assert plan.removed == removed
    idle = not fit and not removed and all(w == NONE for w in work.values())
    assert plan.idle is idle
    assert plan.resolves is (bool(removed) or any(w != NONE for w in work.values()))


# A job killed after some stages finished leaves their completion markers (observations,
# fit.json) but no new entry: the next plan trusts the markers, so it does not redo those
# stages, but what they produced has not been resolved yet.
RESUMED: list[Any] = [
    pytest.param(
        _inputs(FIVE_AND_TWO, _observed(FIVE_AND_TWO), _fit(FIVE_AND_TWO)),
        _entry(FIVE),
        HASHES,
        {},
        _each(FIVE_AND_TWO, RESOLVE),
        id="clips-added-refitted-and-observed",
    ),
    pytest.param(
        _inputs(FIVE_C1_CHANGED, _observed(FIVE_C1_CHANGED), _fit(FIVE)),
        _entry(FIVE),
        HASHES,
        {},
        _each(FIVE, RESOLVE),
        id="changed-clip-observed",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE, observe="o2"), _fit(FIVE)),
        _entry(FIVE),
        _hashes(observe="o2"),
        {},
        _each(FIVE, RESOLVE),
        id="observed-with-a-new-observe-config",
    ),
    pytest.param(
        _inputs(FIVE, _observed(FIVE), _fit(FIVE, team="t2")),
        _entry(FIVE),
        _hashes(team="t2"),
        {},
        _each(FIVE, RESOLVE),
        id="refitted-with-a-new-team-config",
    ),
    pytest.param(
        _inputs(FIVE_C2_CHANGED, _observed(FIVE_C2_CHANGED), _fit(FIVE)),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        HASHES,
        {},
        _each(FIVE, RESOLVE),
        id="failed-clip-changed-and-observed",
    ),
    pytest.param(
        _same(FIVE),
        _entry(FIVE, failed=C2_OBSERVE_FAILED),
        HASHES,
        {},
        _each(FIVE, RESOLVE),
        id="failed-clip-retried-and-observed",
    ),
]


@pytest.mark.parametrize(("inputs", "entry", "hashes", "kwargs", "work"), RESUMED)
def test_plan_resumes_a_killed_run(
    inputs: mf.GameInputs,
    entry: mf.GameEntry,
    hashes: mf.StageHashes,
    kwargs: dict[str, Any],
    work: dict[str, Work],
) -> None:
    plan = mf.plan_game(inputs, entry, hashes, **kwargs)
    assert not plan.fit_teams
    assert _work(plan) == work
    assert not plan.idle


def test_plan_lookup_by_clip() -> None:
    plan = mf.plan_game(_inputs(FIVE_AND_C6, _observed(FIVE), _fit(FIVE)), _entry(FIVE), HASHES)
    assert plan.clip("c6") == mf.ClipPlan("c6", observe=True, resolve=True, render=True)
    assert plan.clip("c1") == mf.ClipPlan("c1", observe=False, resolve=True, render=True)
    assert not plan.clip("c1").idle
    with pytest.raises(StopIteration):
        plan.clip("c9")


@pytest.mark.parametrize(
    ("fitted", "current", "fraction"),
    [
        ({}, {}, 0.0),
        ({}, {"a": "1"}, 1.0),  # nothing fitted: over one clip
        ({}, TWO, 2.0),
        (FIVE, FIVE, 0.0),
        (FIVE, FIVE_AND_C6, 0.2),
        (FIVE, FIVE_AND_TWO, 0.4),
        (FIVE, FIVE_NO_C5, 0.2),
        (FIVE, FIVE_C1_CHANGED, 0.2),
        (FIVE, FIVE | {"c1": "x", "c2": "y", "c6": "f6"}, 0.6),
        ({"a": "1"}, {}, 1.0),
        ({"a": "1"}, {"b": "1"}, 2.0),  # renamed: one removed, one added
        (TWO, {"a": "fa-new", "c": "fc"}, 1.5),  # changed, removed, added
    ],
)
def test_changed_fraction(fitted: dict[str, str], current: dict[str, str], fraction: float) -> None:
    assert mf.changed_fraction(fitted, current) == pytest.approx(fraction)


def test_clips_key_depends_on_ids_and_fingerprints() -> None:
    assert mf.clips_key({"a": "1"}) != mf.clips_key({"a": "2"})
    assert mf.clips_key({"a": "1"}) != mf.clips_key({"b": "1"})
    assert mf.clips_key({"a": "1", "b": "2"}) == mf.clips_key({"b": "2", "a": "1"})


ENTRIES: list[Any] = [
    pytest.param(mf.GameEntry(), id="empty"),
    pytest.param(_entry(FIVE), id="five-ok"),
    pytest.param(
        _entry(FIVE, failed={"c2": "observe", "c3": "roster"}, team_failed=True), id="failures"
    ),
    pytest.param(_entry(TWO, team_clips={"a": "fa-old"}), id="fitted-from-other-clips"),
]


@pytest.mark.parametrize("entry", ENTRIES)
def test_game_entry_json_round_trip(entry: mf.GameEntry) -> None:
    text = entry.to_json()
    assert json.loads(text)["version"] == mf.VERSION
    back = mf.GameEntry.from_json(text)
    assert back == entry
    assert all(isinstance(c, mf.ClipEntry) for c in back.clips.values())


def test_game_entry_json_keeps_every_field() -> None:
    entry = _entry(TWO, failed={"b": "roster"}, team_clips={"a": "fa"}, team_failed=True)
    data = json.loads(entry.to_json())
    assert data["team_hash"] == "t1"
    assert data["team_clips"] == {"a": "fa"}
    assert data["team_failed"] is True
    assert data["roster_fingerprint"] == ROSTER
    assert data["resolve_hash"] == "r1"
    assert data["clips"]["b"] == {
        "fingerprint": "fb",
        "status": "failed",
        "stage": "roster",
        "reason": "boom",
        "observe_hash": "o1",
        "render_hash": "v1",
        "identities_hash": "id-b",
    }


def test_game_entry_minimal_json_has_defaults() -> None:
    assert mf.GameEntry.from_json(json.dumps({"version": mf.VERSION})) == mf.GameEntry()


@pytest.mark.parametrize(
    "text",
    [
        "{}",
        '{"version": 1, "clips": {}}',
        '{"version": 99}',
        '{"version": "2"}',
        '{"version": null}',
    ],
)
def test_game_entry_of_another_version_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="version"):
        mf.GameEntry.from_json(text)


def test_load_save_delete_game(tmp_path: Path) -> None:
    root = str(tmp_path)
    assert mf.load_game(root, "g") is None
    entry = _entry(FIVE, failed=C2_ROSTER_FAILED)
    location = mf.save_game(root, "g", entry)
    path = tmp_path / "_manifest" / "games" / "g.json"
    assert Path(location) == path.resolve()
    assert path.is_file()
    assert mf.load_game(root, "g") == entry
    assert mf.load_game(root, "other") is None
    assert [p.name for p in path.parent.iterdir()] == ["g.json"]  # no temporary left behind
    changed = _entry(FIVE_AND_C6)
    mf.save_game(root, "g", changed)
    assert mf.load_game(root, "g") == changed
    mf.delete_game(root, "g")
    assert mf.load_game(root, "g") is None
    mf.delete_game(root, "g")  # deleting a missing game is fine


def test_load_game_of_another_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "_manifest" / "games" / "g.json"
    path.parent.mkdir(parents=True)
    path.write_text('{"version": 1, "clips": {}}')
    with pytest.raises(ValueError, match="version"):
        mf.load_game(str(tmp_path), "g")


@pytest.mark.parametrize("game_id", ["", "../g", "a/b", ".hidden", "a..b", "g json"])
def test_game_location_refuses_bad_ids(tmp_path: Path, game_id: str) -> None:
    with pytest.raises(ValueError):
        mf.save_game(str(tmp_path), game_id, mf.GameEntry())
    with pytest.raises(ValueError):
        mf.load_game(str(tmp_path), game_id)
    assert not (tmp_path / "_manifest").exists()
