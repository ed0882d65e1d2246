"""Planning from the manifest: what a nightly run must redo, and nothing more."""

from __future__ import annotations

from pathlib import Path

import pytest

from hoopray import manifest as mf

HASHES = mf.StageHashes(team="t1", observe="o1", resolve="r1", render="v1")


def _entry(clips: dict[str, str], status: dict[str, str] | None = None) -> mf.GameEntry:
    status = status or {}
    return mf.GameEntry(
        clips_key=mf.clips_key(clips),
        team_hash=HASHES.team,
        roster_fingerprint="roster",
        clips={
            cid: mf.ClipEntry(
                fingerprint=fp,
                status=status.get(cid, "ok"),
                observe_hash=HASHES.observe,
                resolve_hash=HASHES.resolve,
                render_hash=HASHES.render,
            )
            for cid, fp in clips.items()
        },
    )


def _inputs(clips: dict[str, str], **kw: object) -> mf.GameInputs:
    values = {"roster_fingerprint": "roster", "observed": frozenset(clips)} | kw
    return mf.GameInputs("g", clips, **values)  # type: ignore[arg-type]


def _work(plan: mf.GamePlan) -> dict[str, tuple[bool, bool, bool]]:
    return {c.clip_id: (c.observe, c.resolve, c.render) for c in plan.clips}


CLIPS = {"a": "fa", "b": "fb"}
ALL = (True, True, True)
NONE = (False, False, False)
RESOLVE = (False, True, True)
RENDER = (False, False, True)


@pytest.mark.parametrize(
    ("inputs", "entry", "hashes", "fit", "work"),
    [
        # empty game: nothing to plan but a first fit
        (_inputs({}), None, HASHES, True, {}),
        # first run: everything
        (_inputs(CLIPS), None, HASHES, True, {"a": ALL, "b": ALL}),
        # nothing changed: nothing
        (_inputs(CLIPS), _entry(CLIPS), HASHES, False, {"a": NONE, "b": NONE}),
        # one clip re-encoded: refit (clip set changed), so every clip is observed again
        (_inputs({"a": "fa2", "b": "fb"}), _entry(CLIPS), HASHES, True, {"a": ALL, "b": ALL}),
        # observe config changed: observe all, no refit
        (
            _inputs(CLIPS),
            _entry(CLIPS),
            mf.StageHashes("t1", "o2", "r1", "v1"),
            False,
            {"a": ALL, "b": ALL},
        ),
        # resolve config changed: resolve + render only
        (
            _inputs(CLIPS),
            _entry(CLIPS),
            mf.StageHashes("t1", "o1", "r2", "v1"),
            False,
            {"a": RESOLVE, "b": RESOLVE},
        ),
        # render config changed: render only
        (
            _inputs(CLIPS),
            _entry(CLIPS),
            mf.StageHashes("t1", "o1", "r1", "v2"),
            False,
            {"a": RENDER, "b": RENDER},
        ),
        # roster edited: the whole game is resolved again
        (
            _inputs(CLIPS, roster_fingerprint="new"),
            _entry(CLIPS),
            HASHES,
            False,
            {"a": RESOLVE, "b": RESOLVE},
        ),
        # observations of one clip deleted: that clip observed, the game resolved
        (
            _inputs(CLIPS, observed=frozenset({"a"})),
            _entry(CLIPS),
            HASHES,
            False,
            {"a": RESOLVE, "b": ALL},
        ),
        # team model deleted: refit and observe all
        (
            _inputs(CLIPS, team_model_present=False),
            _entry(CLIPS),
            HASHES,
            True,
            {"a": ALL, "b": ALL},
        ),
        # a clip that failed and did not change is left alone (error case)
        (
            _inputs(CLIPS, observed=frozenset({"a"})),
            _entry(CLIPS, {"b": "failed"}),
            HASHES,
            False,
            {"a": NONE, "b": NONE},
        ),
    ],
)
def test_plan_game(
    inputs: mf.GameInputs,
    entry: mf.GameEntry | None,
    hashes: mf.StageHashes,
    fit: bool,
    work: dict[str, tuple[bool, bool, bool]],
) -> None:
    plan = mf.plan_game(inputs, entry, hashes)
    assert plan.fit_teams is fit
    assert _work(plan) == work
    assert plan.idle is (not fit and all(w == NONE for w in work.values()))


def test_failed_clip_is_retried_only_when_asked() -> None:
    inputs = _inputs(CLIPS, observed=frozenset({"a"}))
    entry = _entry(CLIPS, {"b": "failed"})
    plan = mf.plan_game(inputs, entry, HASHES, retry_failed=True)
    assert _work(plan)["b"] == ALL
    assert _work(plan)["a"] == RESOLVE


def test_force_redoes_everything() -> None:
    plan = mf.plan_game(_inputs(CLIPS), _entry(CLIPS), HASHES, force=True)
    assert plan.fit_teams and _work(plan) == {"a": ALL, "b": ALL}


def test_removed_clip_is_listed() -> None:
    plan = mf.plan_game(_inputs({"a": "fa"}), _entry(CLIPS), HASHES)
    assert plan.removed == ("b",)
    assert not plan.idle


def test_clips_key_depends_on_ids_and_fingerprints() -> None:
    assert mf.clips_key({"a": "1"}) != mf.clips_key({"a": "2"})
    assert mf.clips_key({"a": "1"}) != mf.clips_key({"b": "1"})
    assert mf.clips_key({"a": "1", "b": "2"}) == mf.clips_key({"b": "2", "a": "1"})


def test_manifest_round_trip(tmp_path: Path) -> None:
    assert mf.load(tmp_path).games == {}
    manifest = mf.Manifest(games={"g": _entry(CLIPS, {"b": "failed"})})
    mf.save(tmp_path, manifest)
    assert mf.load(tmp_path) == manifest
    assert not list(mf.manifest_path(tmp_path).parent.glob(".*"))


@pytest.mark.parametrize("text", ['{"version": 99, "games": {}}', "{}"])
def test_manifest_of_another_version_is_refused(tmp_path: Path, text: str) -> None:
    path = mf.manifest_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(text)
    with pytest.raises(ValueError, match="version"):
        mf.load(tmp_path)
