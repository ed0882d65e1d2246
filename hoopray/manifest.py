"""What was produced from what: the manifest behind nightly idempotence.

``<out>/_manifest/manifest.json`` records, per game, the fingerprints of its clips and
roster, and per clip the hash of the config of each stage that produced its outputs
(team model, observe, resolve, render) with the clip's last status. :func:`plan` compares
the inputs of a run with it and says, per game and clip, which stages must run:

- the team model is refit when the game's set of clips (ids and fingerprints) or the
  team stage's config changes, or the model file is gone (unless the last fit, with
  the same clips and config, failed: it would fail again); a refit re-observes every
  clip of the game, since team votes depend on the model;
- a clip is re-observed when new, when its fingerprint or the observe config changes,
  when its observations are gone, or (only with ``retry_failed``) when it failed before;
- a game is re-resolved as a whole when any clip of it was observed again, or the
  resolve config or the roster changed (team naming uses every clip's numbers); a
  changed roster also retries the clips that failed at stage ``roster``;
- a clip is re-rendered when it is re-resolved or the render config changed; the
  pipeline also skips a render whose identities came out unchanged.

Pure: the planner reads nothing from disk; :func:`load` and :func:`save` do the I/O.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hoopray.types import ClipStatus

MANIFEST_FILE = ("_manifest", "manifest.json")
VERSION = 1


@dataclass
class ClipEntry:
    fingerprint: str
    status: str = ClipStatus.OK.value
    stage: str | None = None
    reason: str | None = None
    observe_hash: str = ""
    resolve_hash: str = ""
    render_hash: str = ""
    identities_hash: str = ""


@dataclass
class GameEntry:
    clips_key: str = ""
    team_hash: str = ""
    roster_fingerprint: str = ""
    clips: dict[str, ClipEntry] = field(default_factory=dict)
    team_failed: bool = False


@dataclass
class Manifest:
    games: dict[str, GameEntry] = field(default_factory=dict)
    version: int = VERSION

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> Manifest:
        data = json.loads(text)
        if data.get("version") != VERSION:
            raise ValueError(f"manifest version {data.get('version')!r} != {VERSION}")
        games = {}
        for game_id, g in data.get("games", {}).items():
            clips = {cid: ClipEntry(**c) for cid, c in g.get("clips", {}).items()}
            games[game_id] = GameEntry(
                clips_key=g.get("clips_key", ""),
                team_hash=g.get("team_hash", ""),
                roster_fingerprint=g.get("roster_fingerprint", ""),
                clips=clips,
                team_failed=bool(g.get("team_failed", False)),
            )
        return cls(games=games)


@dataclass(frozen=True)
class StageHashes:
    """Config hashes of the stages (see :func:`hoopray.config.config_hash`)."""

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

    def clip(self, clip_id: str) -> ClipPlan:
        return next(c for c in self.clips if c.clip_id == clip_id)


@dataclass(frozen=True)
class GameInputs:
    """What the planner needs to know about one game's inputs and outputs on disk."""

    game_id: str
    clips: dict[str, str]  # clip_id -> fingerprint
    roster_fingerprint: str = ""
    team_model_present: bool = True
    observed: frozenset[str] = frozenset()  # clip ids whose observations exist


def clips_key(clips: dict[str, str]) -> str:
    """A hash of a game's set of clips (ids and fingerprints)."""
    text = json.dumps(sorted(clips.items()))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def plan_game(
    game: GameInputs,
    entry: GameEntry | None,
    hashes: StageHashes,
    *,
    force: bool = False,
    retry_failed: bool = False,
) -> GamePlan:
    """Which stages must run for one game (see the module docstring for the rules)."""
    old = entry or GameEntry()
    fit = (
        force
        or entry is None
        or old.clips_key != clips_key(game.clips)
        or old.team_hash != hashes.team
        or (not game.team_model_present and not old.team_failed)
    )
    roster_changed = old.roster_fingerprint != game.roster_fingerprint
    observe: dict[str, bool] = {}
    for clip_id, fp in sorted(game.clips.items()):
        prev = old.clips.get(clip_id)
        roster_retry = (
            roster_changed
            and prev is not None
            and prev.stage == "roster"
            and prev.status != ClipStatus.OK
        )
        observe[clip_id] = (
            fit
            or prev is None
            or prev.fingerprint != fp
            or prev.observe_hash != hashes.observe
            or (prev.status == ClipStatus.OK and clip_id not in game.observed)
            or (retry_failed and prev.status != ClipStatus.OK)
            or (roster_retry and clip_id not in game.observed)
        )
    failed_before = {
        cid
        for cid, prev in old.clips.items()
        if prev.status != ClipStatus.OK
        and not observe.get(cid)
        and not (roster_changed and prev.stage == "roster")
    }
    resolve_game = (
        any(observe.values())
        or roster_changed
        or any(
            prev.resolve_hash != hashes.resolve
            for cid, prev in old.clips.items()
            if cid in game.clips and cid not in failed_before
        )
    )
    clips = []
    for clip_id in sorted(game.clips):
        prev = old.clips.get(clip_id)
        skip = clip_id in failed_before
        resolve = resolve_game and not skip
        render = resolve or (not skip and (prev is None or prev.render_hash != hashes.render))
        clips.append(ClipPlan(clip_id, observe[clip_id], resolve, render))
    removed = tuple(sorted(set(old.clips) - set(game.clips)))
    return GamePlan(game.game_id, fit, tuple(clips), removed)


def plan(
    games: list[GameInputs],
    manifest: Manifest,
    hashes: StageHashes,
    *,
    force: bool = False,
    retry_failed: bool = False,
) -> list[GamePlan]:
    """:func:`plan_game` for every game of the input, in input order."""
    return [
        plan_game(g, manifest.games.get(g.game_id), hashes, force=force, retry_failed=retry_failed)
        for g in games
    ]


def manifest_path(out_root: Path) -> Path:
    return Path(out_root).joinpath(*MANIFEST_FILE)


def load(out_root: Path) -> Manifest:
    """The manifest of an output root (empty when there is none yet)."""
    path = manifest_path(out_root)
    if not path.is_file():
        return Manifest()
    return Manifest.from_json(path.read_text())


def save(out_root: Path, manifest: Manifest) -> Path:
    """Write the manifest atomically."""
    from hoopray.store import atomic_write_text

    return atomic_write_text(manifest_path(out_root), manifest.to_json() + "\n")
