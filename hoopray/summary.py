"""The end-of-run summary: games, clips ok and failed, frames, identities, time per stage;
for a small run the confirmed identities themselves, and with labels the identity F1."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

from hydra.experimental.callback import Callback

from hoopray import store
from hoopray.types import ClipStatus, IdentityStatus

log = logging.getLogger(__name__)

# Runs of more games than this list no identities (the reports do); scoring is unaffected.
MAX_GAMES_LISTED = 20
SCORE_KEYS = ("clips", "identity_f1", "identity_precision", "identity_recall")


@dataclass
class GameSummary:
    game_id: str
    clips_ok: int = 0
    clips_failed: int = 0
    clips_skipped: int = 0
    frames: int = 0
    confirmed: int = 0


@dataclass
class ConfirmedIdentity:
    """A player confirmed in a run: the clips of the game where a track confirmed it."""

    game_id: str
    team: str | None
    number: str
    player: str | None
    clips: list[str] = field(default_factory=list)


@dataclass
class RunSummary:
    """What a run did. ``stage_seconds``: the seconds each stage worked, summed over its
    work items (pass 1 per game, observe, resolve and render per clip); the stages overlap
    in a streaming run, so they add up to more than ``wall_seconds``. ``identities``: the
    confirmed identities of the run's clips (:func:`confirmed_identities`), ``scores``: the
    pooled scores against labels (:func:`label_scores`); both empty when not gathered."""

    games: list[GameSummary] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0
    idle: bool = False
    identities: list[ConfirmedIdentity] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    labels_root: str | None = None

    @property
    def clips_ok(self) -> int:
        return sum(g.clips_ok for g in self.games)

    @property
    def clips_failed(self) -> int:
        return sum(g.clips_failed for g in self.games)

    @property
    def frames(self) -> int:
        return sum(g.frames for g in self.games)

    @property
    def confirmed(self) -> int:
        return sum(g.confirmed for g in self.games)

    @property
    def exit_code(self) -> int:
        return 1 if self.clips_failed else 0

    def to_dict(self) -> dict[str, object]:
        return {
            **asdict(self),
            "totals": {
                "games": len(self.games),
                "clips_ok": self.clips_ok,
                "clips_failed": self.clips_failed,
                "frames": self.frames,
                "confirmed": self.confirmed,
            },
            "exit_code": self.exit_code,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


def summarise(
    status_rows: Sequence[Mapping[str, object]],
    stage_seconds: Mapping[str, float],
    wall_seconds: float,
) -> RunSummary:
    """Fold per-clip status rows (``game_id``, ``clip_id``, ``status``, ``stage``,
    ``reason``, ``frames``, ``confirmed``) into a :class:`RunSummary`."""
    games: dict[str, GameSummary] = {}
    failures = []
    for row in status_rows:
        game = games.setdefault(str(row["game_id"]), GameSummary(str(row["game_id"])))
        status = row.get("status")
        if status == ClipStatus.OK:
            game.clips_ok += 1
        elif status == ClipStatus.FAILED:
            game.clips_failed += 1
            failures.append(
                {
                    "game_id": str(row["game_id"]),
                    "clip_id": str(row["clip_id"]),
                    "stage": str(row.get("stage") or ""),
                    "reason": str(row.get("reason") or ""),
                }
            )
        else:
            game.clips_skipped += 1
        game.frames += int(row.get("frames") or 0)
        game.confirmed += int(row.get("confirmed") or 0)
    return RunSummary(
        games=[games[k] for k in sorted(games)],
        failures=failures,
        stage_seconds={k: round(float(v), 2) for k, v in stage_seconds.items()},
        wall_seconds=round(float(wall_seconds), 2),
        idle=not status_rows,
    )


def _number_key(number: object) -> tuple[int, int, str]:
    text = str(number)
    return (0, int(text), text) if text.isdigit() else (1, 0, text)


def fold_identities(
    tracks: Sequence[tuple[str, str, Mapping[str, object]]],
) -> list[ConfirmedIdentity]:
    """One entry per confirmed (game, team, number, player) of ``(game_id, clip_id, row)``
    track rows (``identities/tracks``), with the clips it was confirmed in; sorted by
    game, team and number."""
    found: dict[tuple[str, str, str, str], ConfirmedIdentity] = {}
    for game_id, clip_id, row in tracks:
        if row.get("status") != IdentityStatus.CONFIRMED or row.get("number") is None:
            continue
        team, name = row.get("team_name"), row.get("player_name")
        team = None if team is None else str(team)
        name = None if name is None else str(name)
        number = str(row["number"])
        key = (game_id, team or "", number, name or "")
        entry = found.setdefault(key, ConfirmedIdentity(game_id, team, number, name))
        if clip_id not in entry.clips:
            entry.clips.append(clip_id)
    return [found[k] for k in sorted(found, key=lambda k: (k[0], k[1], _number_key(k[2]), k[3]))]


def confirmed_identities(
    out_root: str, clips: Sequence[tuple[str, str]]
) -> list[ConfirmedIdentity]:
    """:func:`fold_identities` over the stored ``identities/tracks`` of ``clips``
    (``(game_id, clip_id)``; one partition read per clip)."""
    rows = []
    for game_id, clip_id in clips:
        table = store.read_partition(out_root, "identities/tracks", game_id, clip_id)
        if table is not None:
            rows += [(game_id, clip_id, row) for row in table.to_pylist()]
    return fold_identities(rows)


def label_scores(
    out_root: str, labels_root: str, clips: Sequence[tuple[str, str]] | None = None
) -> dict[str, float]:
    """Identity precision, recall and F1 of the stored identities against the labels
    under ``labels_root`` (:mod:`hoopray.evaluate`), pooled over the labelled ``clips``
    (``(game_id, clip_id)``; None: every labelled clip), one clip in memory at a time;
    empty when no clip was scored."""
    from hoopray.evaluate import label_files, pool, read_labels, score_clip

    wanted = None if clips is None else set(clips)
    scores = {}
    for game_id, clip_id, location in label_files(labels_root):
        key = (game_id, clip_id)
        if wanted is not None and key not in wanted:
            continue
        frames = store.read_partition(out_root, "identities/frames", game_id, clip_id)
        tracks = store.read_partition(out_root, "identities/tracks", game_id, clip_id)
        if frames is None or tracks is None:
            continue
        scores[key] = score_clip(read_labels(location), frames, tracks)
    pooled = pool(scores)
    return {k: float(pooled[k]) for k in SCORE_KEYS if k in pooled}


def with_results(
    summary: RunSummary,
    out_root: str,
    clips: Sequence[tuple[str, str]],
    labels_root: str | None = None,
) -> RunSummary:
    """``summary`` with the confirmed identities of ``clips`` (for runs of at most
    :data:`MAX_GAMES_LISTED` games) and, given labels, the scores of those clips. A
    labels root that cannot be read is logged and leaves the scores empty."""
    games = {g for g, _ in clips}
    identities = confirmed_identities(out_root, clips) if len(games) <= MAX_GAMES_LISTED else []
    scores: dict[str, float] = {}
    if labels_root and clips:
        try:
            scores = label_scores(out_root, labels_root, clips)
        except Exception as err:
            log.warning("scoring against the labels under %s failed: %s", labels_root, err)
    return replace(summary, identities=identities, scores=scores, labels_root=labels_root)


def _table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    cells = [[str(c) for c in header], *[[str(c) for c in r] for r in rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]

    def line(r: Sequence[str]) -> str:
        return "  ".join(
            c.ljust(w) if i == 0 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )

    return [line(cells[0]), line(["-" * w for w in widths]), *(line(r) for r in cells[1:])]


def format_summary(summary: RunSummary) -> str:
    """A plain-text table for the terminal."""
    if summary.idle:
        return "nothing to do: every output is up to date"
    rows = [
        (g.game_id, g.clips_ok, g.clips_failed, g.clips_skipped, g.frames, g.confirmed)
        for g in summary.games
    ]
    rows.append(
        (
            "total",
            summary.clips_ok,
            summary.clips_failed,
            sum(g.clips_skipped for g in summary.games),
            summary.frames,
            summary.confirmed,
        )
    )
    lines = _table(("game", "clips ok", "failed", "skipped", "frames", "confirmed"), rows)
    lines += _identity_lines(summary)
    if summary.stage_seconds:
        lines += ["", *_table(("stage", "busy s"), list(summary.stage_seconds.items()))]
    lines.append(f"\nwall time {summary.wall_seconds:.1f} s")
    for f in summary.failures:
        lines.append(f"FAILED {f['game_id']}/{f['clip_id']} at {f['stage']}: {f['reason']}")
    return "\n".join(lines)


def _identity_lines(summary: RunSummary) -> list[str]:
    lines = []
    if summary.identities:
        rows = [
            (i.game_id, i.team or "?", f"#{i.number}", i.player or "?", " ".join(i.clips))
            for i in summary.identities
        ]
        lines += [f"\nconfirmed identities ({len(rows)})"]
        lines += _table(("game", "team", "number", "player", "clips"), rows)
    if summary.scores:
        s = summary.scores
        lines.append(
            f"\nidentity F1 {s['identity_f1']:.3f} (precision {s['identity_precision']:.3f}, "
            f"recall {s['identity_recall']:.3f}) over {int(s['clips'])} labelled clips, "
            f"against the labels under {summary.labels_root}"
        )
    return lines


# --------------------------------------------------------------------------- sweeps

METRICS_DIR = "metrics"


def sweep_rows(sweep_dir: str | os.PathLike[str]) -> list[dict[str, object]]:
    """The metrics rows of a sweep, one per setting (``<sweep_dir>/metrics/*.json``; the
    sweep folder may be any :mod:`hoopray.store` location)."""
    metrics = store.join(sweep_dir, METRICS_DIR)
    names = [
        e.name
        for e in store.list_dir(metrics)
        if not e.is_dir and e.name.endswith(".json") and not e.name.startswith(".")
    ]
    return [json.loads(store.read_text(store.join(metrics, name))) for name in sorted(names)]


def write_sweep_summary(sweep_dir: str | os.PathLike[str]) -> str:
    """Sort a sweep's rows by their objective (best first) into ``summary.csv`` and
    ``summary.md`` and return the markdown table ("" when the sweep has no rows)."""
    import csv

    rows = sweep_rows(sweep_dir)
    if not rows:
        return ""
    rows.sort(key=lambda r: (-_number(r.get("objective_value")), int(r.get("job", 0))))
    keys = list(dict.fromkeys(k for r in rows for k in r if k != "metrics"))
    metric_keys = list(dict.fromkeys(k for r in rows for k in r.get("metrics", {})))
    flat = [{**{k: r.get(k) for k in keys}, **r.get("metrics", {})} for r in rows]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=[*keys, *metric_keys], lineterminator="\n")
    writer.writeheader()
    writer.writerows(flat)
    store.write_text(store.join(sweep_dir, "summary.csv"), buffer.getvalue())
    columns = ["job", "overrides", "objective", "objective_value", *metric_keys]
    lines = [
        "| " + " | ".join(columns) + " |",
        "|" + "---|" * len(columns),
        *("| " + " | ".join(_cell(f.get(c)) for c in columns) + " |" for f in flat),
    ]
    table = "\n".join(lines) + "\n"
    store.write_text(store.join(sweep_dir, "summary.md"), table)
    return table


def _number(value: object) -> float:
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("-inf")
    return number if number == number else float("-inf")


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list):
        return " ".join(str(v) for v in value)
    return "" if value is None else str(value)


class SweepSummaryCallback(Callback):
    """Hydra callback: when a multirun ends, write and print the sweep's sorted summary."""

    def on_multirun_end(self, config: Any, **kwargs: Any) -> None:
        sweep_dir = str(config.hydra.sweep.dir)
        table = write_sweep_summary(sweep_dir)
        if table:
            print(f"sweep summary ({store.join(sweep_dir, 'summary.md')}):\n{table}")
