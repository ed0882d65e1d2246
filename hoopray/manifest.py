"""What was produced from what: the per-game manifest behind incremental runs.

``<out>/_manifest/games/<game_id>.json`` records one game: the clips its team model was
fitted from and that fit's config hash, the roster's fingerprint, the resolve config, and
per clip its fingerprint, last status and the config hashes of the stages that produced
its outputs. The finishing task of a game writes it once, when the game is done. A job
killed earlier leaves the completion markers of what it finished (the clip's
``observations/clip`` row carries its fingerprint and observe hash, the team model its
``fit.json``), and the next plan trusts those.

:func:`plan_game` compares a game's inputs with its entry and says which stages run:

- the team model is refitted when the team config changes, when the model is gone
  (unless the last fit, on the same clips and config, failed), or when the clips it was
  fitted from and the game's clips differ by more than ``refit_fraction`` (clips added,
  removed or changed over the clips fitted from). Otherwise new clips use the model;
- a clip is observed when it is new, its fingerprint or the observe config changed, its
  observations are gone, or (with ``retry_failed``) it failed before. Observing needs no
  team model, so a refit never re-observes;
- a game is resolved as a whole when a clip of it is observed, the model is refitted,
  a clip was removed, the roster or the resolve config changed;
- a clip is rendered when it is resolved or the render config changed (the render is
  skipped when its identities came out unchanged and the video exists).

Pure: the planner reads nothing; :func:`load_game` and :func:`save_game` do the I/O.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

from hoopray.types import ClipStatus

MANIFEST_DIR = ("_manifest", "games")
FINGERPRINTS_DIR = ("_manifest", "fingerprints")
VERSION = 2


@dataclass
class ClipEntry:
    fingerprint: str
    status: str = ClipStatus.OK.value
    stage: str | None = None
    reason: str | None = None
    observe_hash: str = ""
    render_hash: str = ""
    identities_hash: str = ""


@dataclass
class GameEntry:
    team_hash: str = ""
    team_clips: dict[str, str] = field(default_factory=dict)  # clip_id -> fingerprint fitted
    team_failed: bool = False
    roster_fingerprint: str = ""
    resolve_hash: str = ""
    clips: dict[str, ClipEntry] = field(default_factory=dict)
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> GameEntry:
        data = json.loads(text)
        if data.get("version") != VERSION:
            raise ValueError(f"manifest version {data.get('version')!r} != {VERSION}")
        clips = {cid: ClipEntry(**c) for cid, c in data.get("clips", {}).items()}
        return cls(
            team_hash=str(data.get("team_hash", "")),
            team_clips=dict(data.get("team_clips", {})),
            team_failed=bool(data.get("team_failed", False)),
            roster_fingerprint=str(data.get("roster_fingerprint", "")),
            resolve_hash=str(data.get("resolve_hash", "")),
            clips=clips,
        )


@dataclass(frozen=True)
class StageHashes:
    """Config hashes of the stages: each covers only the keys that change what it computes."""

    team: str
    observe: str
    resolve: str
    render: str


@dataclass(frozen=True)
class ClipPlan:
    clip_id: str
    observe: bool
    resolve: bool
    render: bool

    @property
    def idle(self) -> bool:
        return not (self.observe or self.resolve or self.render)


@dataclass(frozen=True)
class GamePlan:
    game_id: str
    fit_teams: bool
    clips: tuple[ClipPlan, ...]
    removed: tuple[str, ...] = ()

    @property
    def idle(self) -> bool:
        return not self.fit_teams and not self.removed and all(c.idle for c in self.clips)

    @property
    def resolves(self) -> bool:
        return any(c.resolve or c.render for c in self.clips) or bool(self.removed)

    def clip(self, clip_id: str) -> ClipPlan:
        return next(c for c in self.clips if c.clip_id == clip_id)


@dataclass(frozen=True)
class Fit:
    """What a finished team fit recorded in ``teams/fit.json``."""

    team_hash: str
    clips: dict[str, str]
    failed: bool = False


@dataclass(frozen=True)
class GameInputs:
    """What the planner knows about one game's inputs and outputs.

    ``observed``: clip id -> (fingerprint, observe hash) of every clip whose observations
    are complete in the store. ``fit``: the last finished fit when the model is present
    or that fit failed, else None.
    """

    game_id: str
    clips: dict[str, str]  # clip_id -> fingerprint
    roster_fingerprint: str = ""
    observed: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    fit: Fit | None = None


def changed_fraction(fitted: Mapping[str, str], current: Mapping[str, str]) -> float:
    """Clips added, removed or changed since the fit, over the clips fitted from."""
    changed = {c for c in set(fitted) | set(current) if fitted.get(c) != current.get(c)}
    return len(changed) / max(1, len(fitted))


def plan_game(
    game: GameInputs,
    entry: GameEntry | None,
    hashes: StageHashes,
    *,
    refit_fraction: float = 0.2,
    force: bool = False,
    retry_failed: bool = False,
) -> GamePlan:
    """Which stages must run for one game (see the module docstring for the rules)."""
    old = entry or GameEntry()
    fit = game.fit
    if fit is None or force or fit.team_hash != hashes.team:
        fit_teams = True
    elif fit.failed:
        fit_teams = retry_failed or fit.clips != game.clips
    else:
        fit_teams = changed_fraction(fit.clips, game.clips) > refit_fraction
    roster_changed = old.roster_fingerprint != game.roster_fingerprint
    decided = []
    for clip_id, fp in sorted(game.clips.items()):
        prev = old.clips.get(clip_id)
        failed = prev is not None and prev.status == ClipStatus.FAILED
        fresh = game.observed.get(clip_id) == (fp, hashes.observe)
        if force or (failed and retry_failed):
            observe = True
        elif fresh:
            observe = False
        else:
            # a clip whose observe failed on the same input and config would fail again
            observe = not (
                failed
                and prev.stage == "observe"
                and prev.fingerprint == fp
                and prev.observe_hash == hashes.observe
            )
        # observations the entry does not know of: a killed run made them, never resolved
        # (a failed observe leaves no marker, so a marker next to one is newer)
        unrecorded = fresh and (
            prev is None
            or (failed and prev.stage == "observe")
            or (prev.fingerprint, prev.observe_hash) != (fp, hashes.observe)
        )
        skip = (
            failed
            and not observe
            and not unrecorded
            and not (roster_changed and prev.stage == "roster")
        )
        decided.append((clip_id, observe, unrecorded or observe or prev is None, prev, skip))
    removed = tuple(sorted(set(old.clips) - set(game.clips)))
    refitted = (
        fit is not None
        and entry is not None
        and (fit.team_hash, fit.clips, fit.failed)
        != (old.team_hash, old.team_clips, old.team_failed)
    )
    resolve_game = (
        fit_teams
        or refitted
        or bool(removed)
        or roster_changed
        or old.resolve_hash != hashes.resolve
        or any(new for _, _, new, _, _ in decided)
    )
    plans = []
    for clip_id, observe, _, prev, skip in decided:
        resolve = resolve_game and not skip
        render = resolve or (not skip and (prev is None or prev.render_hash != hashes.render))
        plans.append(ClipPlan(clip_id, observe, resolve, render))
    return GamePlan(game.game_id, fit_teams, tuple(plans), removed)


def clips_key(clips: Mapping[str, str]) -> str:
    """A hash of a set of clips (ids and fingerprints)."""
    text = json.dumps(sorted(clips.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def game_location(out_root: str, game_id: str) -> str:
    from hoopray import store

    return store.join(out_root, *MANIFEST_DIR, f"{store.check_id(game_id, 'game_id')}.json")


def load_game(out_root: str, game_id: str) -> GameEntry | None:
    """A game's entry, or None when it has none (one read, no listing)."""
    from hoopray import store

    location = game_location(out_root, game_id)
    try:
        return GameEntry.from_json(store.read_text(location))
    except FileNotFoundError:
        return None


def save_game(out_root: str, game_id: str, entry: GameEntry) -> str:
    """Write a game's entry as one whole object."""
    from hoopray import store

    return store.write_text(game_location(out_root, game_id), entry.to_json() + "\n")


def delete_game(out_root: str, game_id: str) -> None:
    from hoopray import store

    store.delete(game_location(out_root, game_id))
