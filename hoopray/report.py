"""Per-game HTML report and an index over the games of an output root.

``<out>/<game_id>/report.html`` shows, for a person who has just run hoopray on a game:

- roster coverage (table ``#roster``): each roster player, whether hoopray identified
  them (confirmed / ambiguous / not found), in which clips and for how long, and the
  reads behind it; identities outside the roster follow in ``#identities``, among them
  the ``off_roster`` ones (a number confirmed for a team whose roster lacks it), which
  are never shown with a player's name and never count as roster players found;
- the team model: the diagnostics images of ``<out>/<game_id>/teams/`` (scatter plot,
  contact sheet) and the cluster -> team naming with its confidence and evidence;
- the clips (``#clips``) with their rendered videos embedded, frames and identities;
- failures with their stage and reason (``#failures``);
- time per stage (``#timing``).

Every link is relative to the game folder, so the report works opened from disk or
served over HTTP (an S3 or GCS static site included), and it loads nothing from the
network. The output root may be any :mod:`hoopray.store` location; every file is read and
written through the store. Everything taken from the data
(clip ids, player and team names, failure reasons) is HTML-escaped.

Inputs: the game's partitions of the tables ``identities/tracks``, ``observations/clip``
and ``status/clips`` (:func:`hoopray.store.read_table`, one listing per table), the game's
``roster.yaml`` (see :func:`write_game_report`), ``<out>/<game_id>/teams/`` and
``<out>/<game_id>/videos/<clip_id>.mp4``. The index (:func:`write_index`) is written once
per run and reads per-game data only.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from hoopray import store
from hoopray.numbers import normalise_number
from hoopray.roster import Roster, RosterError, load_roster
from hoopray.types import ClipStatus, IdentityStatus

REPORT_FILE = "report.html"
INDEX_FILE = "index.html"
ROSTER_FILE = "roster.yaml"
TEAMS_DIR = "teams"
VIDEOS_DIR = "videos"
NAMING_FILE = "naming.json"
DEFAULT_CODECS = "avc1.64001F"
NOT_FOUND = "not found"
_STATUS_ORDER = {IdentityStatus.CONFIRMED: 0, IdentityStatus.AMBIGUOUS: 1, NOT_FOUND: 2}
# an identity seen on several tracks shows the strongest of their statuses
_STATUS_RANK = {
    IdentityStatus.CONFIRMED: 0,
    IdentityStatus.OFF_ROSTER: 1,
    IdentityStatus.AMBIGUOUS: 2,
    NOT_FOUND: 3,
}
_SHOWN = (IdentityStatus.CONFIRMED, IdentityStatus.OFF_ROSTER, IdentityStatus.AMBIGUOUS)

_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 color:#1c1e21;background:#f4f5f7}
header{background:#17324d;color:#fff;padding:14px 28px}
header h1{margin:0;font-size:1.5em}header p{margin:4px 0 0;opacity:.85}
header a{color:#cfe3ff}
main{padding:8px 28px 28px;max-width:1400px}
section{background:#fff;border-radius:8px;padding:12px 18px;margin:14px 0;
 box-shadow:0 1px 3px rgba(0,0,0,.12)}
h2{font-size:1.15em;margin:4px 0 10px}
table{border-collapse:collapse;width:100%;font-size:.92em}
th,td{text-align:left;padding:5px 9px;border-bottom:1px solid #e3e5e8;vertical-align:top}
th{background:#eef1f5;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:.9em;height:.9em;border-radius:2px;
 border:1px solid #0003;vertical-align:-1px;margin-right:5px}
.st{display:inline-block;padding:1px 7px;border-radius:9px;font-size:.85em;font-weight:600}
.st-confirmed,.st-ok{background:#d9f2dd;color:#14532d}
.st-ambiguous,.st-skipped{background:#fff1c2;color:#6b4e00}
.st-off-roster{background:#fde4cf;color:#7a3400}
.st-not-found,.st-unread{background:#eceef1;color:#59606b}
.st-failed{background:#fddcdc;color:#8a1111}
.muted{color:#6b7280}.note{color:#6b4e00}
video{width:480px;max-width:100%;background:#000;border-radius:4px;display:block}
figure{display:inline-block;margin:0 14px 10px 0;vertical-align:top}
figure img{max-width:560px;width:100%;border:1px solid #e3e5e8;border-radius:4px}
figcaption{font-size:.85em;color:#6b7280}
pre{background:#f6f8fa;padding:8px;overflow:auto;font-size:.8em;max-height:320px}
.cards{display:flex;flex-wrap:wrap;gap:10px;margin:0}
.card{background:#fff;border-radius:8px;padding:8px 14px;min-width:120px;
 box-shadow:0 1px 3px rgba(0,0,0,.12)}
.card b{display:block;font-size:1.4em}
"""


def _e(value: object) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _href(*parts: str) -> str:
    """A relative URL from path parts (each percent-encoded)."""
    return "/".join(quote(part, safe="") for part in parts)


def _css_class(value: str) -> str:
    return "st st-" + "".join(c if c.isalnum() else "-" for c in value.lower())


def _badge(value: str) -> str:
    return f'<span class="{_css_class(value)}">{_e(value)}</span>'


def _seconds(value: float | None) -> str:
    if value is None:
        return ""
    if value < 60:
        return f"{value:.1f} s"
    minutes, secs = divmod(value, 60)
    return f"{int(minutes)} min {secs:.0f} s"


# --------------------------------------------------------------------------- data


@dataclass
class ClipInfo:
    """What the report knows about one clip."""

    clip_id: str
    path: str | None = None
    status: str | None = None
    stage: str | None = None
    reason: str | None = None
    frames: int | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    confirmed: int = 0
    names: list[str] = field(default_factory=list)
    video: str | None = None

    @property
    def duration(self) -> float | None:
        if self.frames is None or not self.fps:
            return None
        return self.frames / self.fps


@dataclass
class Coverage:
    """Where one identity (a roster player, or a (team, number) outside it) was seen."""

    team: str | None
    number: str | None
    name: str | None
    colour: str | None = None
    status: str = NOT_FOUND
    tracks: int = 0
    reads_seen: int = 0
    reads_agreeing: int = 0
    intervals: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def frames_in(self, clip_id: str) -> int:
        return _union_length(self.intervals.get(clip_id, []))

    def frames(self) -> int:
        return sum(self.frames_in(c) for c in self.intervals)


def _union_length(intervals: Iterable[tuple[int, int]]) -> int:
    """Frames covered by inclusive ``(first, last)`` intervals, overlaps counted once."""
    total, end = 0, None
    for first, last in sorted(intervals):
        if end is None or first > end:
            total += last - first + 1
            end = last
        elif last > end:
            total += last - end
            end = last
    return total


def _rows(out_root: str, name: str, game_id: str) -> list[dict[str, Any]]:
    return store.read_table(out_root, name, game_id=game_id).to_pylist()


def _load_roster(location: str) -> tuple[Roster | None, str | None]:
    try:
        if not store.is_file(location):
            return None, None
        return load_roster(location), None
    except (RosterError, OSError, ValueError) as err:
        return None, str(err)


def _find_roster(game_dir: str, clips: Iterable[ClipInfo]) -> str | None:
    """The copy in the output, else the roster in the input folder of the game's clips."""
    candidates = [store.join(game_dir, ROSTER_FILE)]
    candidates += [store.join(store.parent(c.path), ROSTER_FILE) for c in clips if c.path]
    for location in dict.fromkeys(candidates):
        try:
            if store.is_file(location):
                return location
        except (OSError, ValueError):  # an input store that cannot be reached here
            continue
    return None


def _load_naming(teams_dir: str) -> tuple[dict[str, Any] | None, str | None]:
    try:
        data = json.loads(store.read_text(store.join(teams_dir, NAMING_FILE)))
    except FileNotFoundError:
        return None, None
    except (OSError, ValueError) as err:
        return None, f"{NAMING_FILE} unreadable: {err}"
    if not isinstance(data, dict):
        return None, f"{NAMING_FILE} is not a JSON object"
    return data, None


_CODEC_WINDOW = 1 << 20


def _avc_codecs(blob: bytes) -> str | None:
    at = blob.find(b"avcC")
    if at >= 0 and len(blob) >= at + 8:
        profile, compat, level = blob[at + 5], blob[at + 6], blob[at + 7]
        return f"avc1.{profile:02X}{compat:02X}{level:02X}"
    return None


def _video_codecs(location: str) -> str:
    """The RFC 6381 ``avc1.PPCCLL`` string of an H.264 mp4 (from its avcC box).

    The box sits in the ``moov`` atom, at the start of a faststart file (one ranged read);
    otherwise the end of the file is read too (from a scratch copy for a remote object).
    """
    try:
        found = _avc_codecs(store.read_head(location, _CODEC_WINDOW))
        if found:
            return found
        with store.local_copy(location) as local, open(local, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            handle.seek(max(0, handle.tell() - _CODEC_WINDOW))
            return _avc_codecs(handle.read()) or DEFAULT_CODECS
    except OSError:
        return DEFAULT_CODECS


def _clips(
    out_root: str, game_id: str, game_dir: str, tracks: Sequence[Mapping[str, Any]]
) -> dict[str, ClipInfo]:
    clips: dict[str, ClipInfo] = {}

    def info(clip_id: str) -> ClipInfo:
        return clips.setdefault(clip_id, ClipInfo(clip_id))

    for row in _rows(out_root, "status/clips", game_id):
        clip = info(row["clip_id"])
        clip.status, clip.stage, clip.reason = row["status"], row["stage"], row["reason"]
        clip.path = row["path"] or clip.path
        if row["frames"]:
            clip.frames = int(row["frames"])
        for stage in ("observe", "resolve", "render"):
            value = row[f"seconds_{stage}"]
            if value:
                clip.seconds[stage] = float(value)
    for row in _rows(out_root, "observations/clip", game_id):
        clip = info(row["clip_id"])
        clip.path = row["path"] or clip.path
        clip.frames = int(row["frames"])
        clip.fps = float(row["fps"]) or None
        clip.width, clip.height = int(row["width"]), int(row["height"])
        clip.seconds.setdefault("observe", float(row["seconds"]))
    for row in tracks:
        clip = info(row["clip_id"])
        if row["status"] == IdentityStatus.CONFIRMED:
            clip.confirmed += 1
            label = _identity_label(row["team_name"], row["number"], row["player_name"])
            if label not in clip.names:
                clip.names.append(label)
    videos = store.join(game_dir, VIDEOS_DIR)
    for entry in store.list_dir(videos):
        if not entry.is_dir and entry.name.endswith(".mp4") and not entry.name.startswith("."):
            info(entry.name[: -len(".mp4")]).video = store.join(videos, entry.name)
    return dict(sorted(clips.items()))


def _identity_label(team: str | None, number: str | None, name: str | None) -> str:
    label = f"#{number}" if number is not None else "#?"
    if name:
        label += f" {name}"
    if team:
        label += f" ({team})"
    return label


def _coverage(
    roster: Roster | None, tracks: Sequence[Mapping[str, Any]]
) -> tuple[list[Coverage], list[Coverage]]:
    """Coverage of each roster player, and of identities the roster does not hold.

    Roster players come team by team, those found first, each group by number. An
    off-roster track always goes to the second list, without a name.
    """
    in_roster: dict[tuple[str, str], Coverage] = {}
    if roster is not None:
        for team in roster.teams:
            for number, name in sorted(team.players.items(), key=lambda kv: _number_key(kv[0])):
                in_roster[(team.name, number)] = Coverage(team.name, number, name, team.colour)
    others: dict[tuple[str | None, str | None], Coverage] = {}
    for row in tracks:
        status = row["status"]
        if status not in _SHOWN:
            continue
        off_roster = status == IdentityStatus.OFF_ROSTER
        number = normalise_number(row["number"]) if row["number"] is not None else None
        key = (row["team_name"], number)
        cov = None
        if key[0] is not None and number is not None and not off_roster:
            cov = in_roster.get(key)
        if cov is None:
            name = None if off_roster else row["player_name"]
            cov = others.setdefault(key, Coverage(key[0], number, name))
        if _STATUS_RANK[status] < _STATUS_RANK.get(cov.status, 3):
            cov.status = str(status)
        cov.tracks += 1
        cov.reads_seen += int(row["reads_seen"])
        cov.reads_agreeing += int(row["reads_agreeing"])
        interval = (int(row["first_frame"]), int(row["last_frame"]))
        cov.intervals.setdefault(row["clip_id"], []).append(interval)
    extra = sorted(
        others.values(), key=lambda c: (c.team or "~", _number_key(c.number or ""), c.name or "")
    )
    team_order = {name: i for i, name in enumerate(roster.names)} if roster else {}
    players = sorted(
        in_roster.values(),
        key=lambda c: (team_order.get(c.team or "", 2), _STATUS_ORDER.get(c.status, 3)),
    )
    return players, extra


def _number_key(number: str) -> tuple[int, int, str]:
    return (0, int(number), number) if number.isdigit() else (1, 0, number)


# --------------------------------------------------------------------------- html


def _coverage_rows(items: Sequence[Coverage], clips: Mapping[str, ClipInfo]) -> list[str]:
    rows = []
    for cov in items:
        swatch = f'<span class="swatch" style="background:{_e(cov.colour)}"></span>'
        team = (swatch if cov.colour else "") + _e(cov.team or "unknown team")
        where, seconds = [], 0.0
        for clip_id in sorted(cov.intervals):
            frames = cov.frames_in(clip_id)
            fps = clips[clip_id].fps if clip_id in clips else None
            if fps:
                seconds += frames / fps
                where.append(f"{_e(clip_id)} ({frames / fps:.1f} s)")
            else:
                where.append(f"{_e(clip_id)} ({frames} frames)")
        reads = f"{cov.reads_agreeing}/{cov.reads_seen}" if cov.tracks else ""
        rows.append(
            f'<tr data-status="{_e(cov.status)}"><td>{team}</td>'
            f'<td class="num">{_e(cov.number)}</td><td>{_e(cov.name)}</td>'
            f"<td>{_badge(cov.status)}</td><td>{', '.join(where)}</td>"
            f'<td class="num">{cov.frames() or ""}</td>'
            f'<td class="num">{_seconds(seconds) if seconds else ""}</td>'
            f'<td class="num">{cov.tracks or ""}</td><td class="num">{reads}</td></tr>'
        )
    return rows


_COVERAGE_HEAD = (
    "<thead><tr><th>Team</th><th>No.</th><th>Player</th><th>Status</th><th>Clips</th>"
    "<th>Frames</th><th>Time on screen</th><th>Tracks</th>"
    '<th title="reads agreeing / reads seen">Reads</th></tr></thead>'
)


def _roster_section(
    roster: Roster | None,
    roster_error: str | None,
    players: Sequence[Coverage],
    others: Sequence[Coverage],
    clips: Mapping[str, ClipInfo],
) -> str:
    parts = ['<section id="coverage"><h2>Roster coverage</h2>']
    if roster_error:
        parts.append(f'<p class="note">The roster could not be read: {_e(roster_error)}</p>')
    elif roster is None:
        parts.append(
            '<p class="note">No roster.yaml for this game: identities are shown without '
            "roster names.</p>"
        )
    if roster is not None:
        found = sum(c.status == IdentityStatus.CONFIRMED for c in players)
        parts.append(
            f"<p>{found} of {len(players)} roster players confirmed. Time on screen counts the "
            "frames between the first and last frame of each of the player's tracks.</p>"
        )
        parts.append(f'<table id="roster">{_COVERAGE_HEAD}<tbody>')
        parts += _coverage_rows(players, clips)
        parts.append("</tbody></table>")
    if others:
        title = "Identities outside the roster" if roster is not None else "Identities"
        parts.append(f"<h2>{title}</h2>")
        parts.append(f'<table id="identities">{_COVERAGE_HEAD}<tbody>')
        parts += _coverage_rows(others, clips)
        parts.append("</tbody></table>")
    elif roster is None:
        parts.append('<p class="muted">No player was identified.</p>')
    parts.append("</section>")
    return "\n".join(parts)


def _naming_html(naming: Mapping[str, Any] | None, error: str | None) -> str:
    if error:
        return f'<p class="note">{_e(error)}</p>'
    if naming is None:
        return '<p class="muted">No cluster naming was made (no roster or no team model).</p>'
    mapping = naming.get("cluster_to_team") or {}
    evidence = naming.get("evidence") or {}
    rows = "".join(
        f'<tr><td class="num">{_e(k)}</td><td>{_e(v)}</td></tr>' for k, v in sorted(mapping.items())
    )
    parts = [
        f'<table id="naming" style="width:auto"><thead><tr><th>Cluster</th><th>Team</th></tr>'
        f"</thead><tbody>{rows}</tbody></table>"
    ]
    summary = [f"confidence {_e(_fmt(naming.get('confidence')))}"]
    if "mapping" in evidence:
        summary.append(f"decision: {_e(evidence['mapping'])}")
    if "source" in evidence:
        summary.append(f"from {_e(evidence['source'])}")
    colour = evidence.get("colour")
    if isinstance(colour, Mapping) and "margin" in colour:
        summary.append(f"colour margin {_e(_fmt(colour['margin']))}")
    numbers = evidence.get("numbers")
    if isinstance(numbers, Mapping):
        summary.append(
            f"number votes {_e(numbers.get('identity_votes'))} for, "
            f"{_e(numbers.get('swapped_votes'))} against"
        )
    parts.append(f"<p>{'; '.join(summary)}.</p>")
    pretty = json.dumps(evidence, indent=2, sort_keys=True, default=str)
    parts.append(f"<details><summary>All evidence</summary><pre>{_e(pretty)}</pre></details>")
    return "\n".join(parts)


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) else str(value)


def _teams_section(teams_dir: str) -> str:
    parts = ['<section id="teams"><h2>Team model</h2>']
    entries = [e for e in store.list_dir(teams_dir) if not e.name.startswith(".")]
    if not entries:
        parts.append('<p class="muted">No team model for this game.</p></section>')
        return "\n".join(parts)
    images = sorted(e.name for e in entries if not e.is_dir and e.name.endswith(".png"))
    for name in images:
        caption = name[: -len(".png")].replace("_", " ")
        parts.append(
            f'<figure><img src="{_e(_href(TEAMS_DIR, name))}" alt="{_e(caption)}">'
            f"<figcaption>{_e(caption)}</figcaption></figure>"
        )
    if any(e.name == NAMING_FILE for e in entries):
        parts.append(_naming_html(*_load_naming(teams_dir)))
    else:
        parts.append(_naming_html(None, None))
    parts.append("</section>")
    return "\n".join(parts)


def _video_html(clip: ClipInfo) -> str:
    if clip.video is None:
        return '<span class="muted">no rendered video</span>'
    name = store.name_of(clip.video)
    src = _e(_href(VIDEOS_DIR, name))
    codecs = _video_codecs(clip.video)
    kind = _e(f'video/mp4; codecs="{codecs}"')
    return (
        f'<video id="video-{_e(clip.clip_id)}" muted controls playsinline preload="auto" '
        f'src="{src}"><source src="{src}" type="{kind}">'
        f'<a href="{src}">{_e(name)}</a></video>'
    )


def _clips_section(clips: Mapping[str, ClipInfo]) -> str:
    parts = ['<section id="clip-list"><h2>Clips</h2>']
    if not clips:
        parts.append('<p class="muted">This game has no clips.</p></section>')
        return "\n".join(parts)
    parts.append(
        '<table id="clips"><thead><tr><th>Clip</th><th>Status</th>'
        "<th>Size</th><th>Frames</th><th>Length</th><th>Confirmed</th><th>Players</th>"
        "<th>Rendered video</th></tr>"
        "</thead><tbody>"
    )
    for clip in clips.values():
        status = clip.status or ("ok" if clip.frames is not None else "unknown")
        size = f"{clip.width}x{clip.height}" if clip.width else ""
        parts.append(
            f'<tr id="clip-{_e(clip.clip_id)}"><td>{_e(clip.clip_id)}</td>'
            f"<td>{_badge(status)}</td><td>{size}</td>"
            f'<td class="num">{_e(clip.frames)}</td><td class="num">{_seconds(clip.duration)}</td>'
            f'<td class="num">{clip.confirmed}</td><td>{"<br>".join(map(_e, clip.names))}</td>'
            f"<td>{_video_html(clip)}</td></tr>"
        )
    parts.append("</tbody></table></section>")
    return "\n".join(parts)


def _failures_section(clips: Mapping[str, ClipInfo]) -> str:
    failed = [c for c in clips.values() if c.status == ClipStatus.FAILED]
    parts = ['<section id="failure-list"><h2>Failures</h2>']
    if not failed:
        parts.append('<p class="muted">No clip failed.</p></section>')
        return "\n".join(parts)
    parts.append(
        '<table id="failures"><thead><tr><th>Clip</th><th>Stage</th><th>Reason</th></tr>'
        "</thead><tbody>"
    )
    parts += [
        f"<tr><td>{_e(c.clip_id)}</td><td>{_e(c.stage)}</td><td>{_e(c.reason)}</td></tr>"
        for c in failed
    ]
    parts.append("</tbody></table></section>")
    return "\n".join(parts)


def _timing_section(
    clips: Mapping[str, ClipInfo], stage_seconds: Mapping[str, float] | None
) -> str:
    totals: dict[str, float] = {}
    for clip in clips.values():
        for stage, value in clip.seconds.items():
            totals[stage] = totals.get(stage, 0.0) + value
    parts = ['<section id="time"><h2>Time per stage</h2>']
    if not totals and not stage_seconds:
        parts.append('<p class="muted">No timings recorded.</p></section>')
        return "\n".join(parts)
    parts.append(
        '<table id="timing" style="width:auto"><thead><tr><th>Stage</th>'
        "<th>Summed over clips</th><th>Wall time of the run</th></tr></thead><tbody>"
    )
    wall = dict(stage_seconds or {})
    for stage in [*totals, *(s for s in wall if s not in totals)]:
        parts.append(
            f'<tr><td>{_e(stage)}</td><td class="num">{_seconds(totals.get(stage))}</td>'
            f'<td class="num">{_seconds(wall.get(stage))}</td></tr>'
        )
    parts.append("</tbody></table></section>")
    return "\n".join(parts)


def _page(title: str, header: str, body: Sequence[str]) -> str:
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
            f"<header>{header}</header><main>",
            *body,
            "</main></body></html>",
            "",
        ]
    )


# --------------------------------------------------------------------------- public


def write_game_report(
    out_root: str | os.PathLike[str],
    game_id: str,
    *,
    stage_seconds: Mapping[str, float] | None = None,
    roster_path: str | os.PathLike[str] | None = None,
    update_index: bool = True,
) -> str:
    """Write ``<out_root>/<game_id>/report.html`` (as one whole object) and return it.

    Args:
        out_root: the output root of a run (any store location).
        game_id: the game.
        stage_seconds: wall seconds per stage of the run, shown beside the per-clip sums.
        roster_path: the game's roster (any store location); default
            ``<out_root>/<game_id>/roster.yaml`` if it exists, else the ``roster.yaml``
            beside the game's input clips (their folder, from the ``path`` of
            ``observations/clip`` or ``status/clips``). A missing roster shows identities
            without roster names; an unreadable one is reported on the page.
        update_index: also rewrite ``<out_root>/index.html`` (:func:`write_index`). A run
            that reports several games should pass False and write the index once.

    Returns:
        The location of the report.

    Raises:
        ValueError: an invalid or reserved ``game_id``.
    """
    root = store.normalise(out_root)
    game_dir = store.game_dir(root, game_id)
    tracks = _rows(root, "identities/tracks", game_id)
    clips = _clips(root, game_id, game_dir, tracks)
    if roster_path is None:
        roster_path = _find_roster(game_dir, clips.values())
    roster, roster_error = (
        _load_roster(store.normalise(roster_path)) if roster_path else (None, None)
    )
    players, others = _coverage(roster, tracks)

    failed = sum(c.status == ClipStatus.FAILED for c in clips.values())
    frames = sum(c.frames or 0 for c in clips.values())
    confirmed = sum(c.confirmed for c in clips.values())
    found = sum(c.status == IdentityStatus.CONFIRMED for c in players)
    cards = [
        ("clips", len(clips)),
        ("failed", failed),
        ("frames", frames),
        ("confirmed tracks", confirmed),
    ]
    if roster is not None:
        cards.append(("roster players found", f"{found}/{len(players)}"))
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"<h1>hoopray report: {_e(game_id)}</h1>"
        f'<p>generated {stamp} · <a href="../{INDEX_FILE}">all games</a></p>'
    )
    body = [
        '<div class="cards">'
        + "".join(f'<div class="card"><b>{_e(v)}</b>{_e(k)}</div>' for k, v in cards)
        + "</div>",
        _roster_section(roster, roster_error, players, others, clips),
        _clips_section(clips),
        _teams_section(store.join(game_dir, TEAMS_DIR)),
        _failures_section(clips),
        _timing_section(clips, stage_seconds),
    ]
    path = store.write_text(
        store.join(game_dir, REPORT_FILE), _page(f"hoopray: {game_id}", header, body)
    )
    if update_index:
        write_index(root)
    return path


@dataclass(frozen=True)
class _IndexRow:
    game_id: str
    clips_ok: int
    clips_failed: int
    confirmed: int


def _index_row(game: Any) -> _IndexRow:
    """A game of :func:`write_index` from a ``GameSummary``-like object or a mapping."""

    def value(key: str) -> Any:
        return game.get(key) if isinstance(game, Mapping) else getattr(game, key, None)

    return _IndexRow(
        str(value("game_id")),
        int(value("clips_ok") or 0),
        int(value("clips_failed") or 0),
        int(value("confirmed") or 0),
    )


def _counted_row(root: str, game_id: str) -> _IndexRow:
    """A game's clip counts from its partitions of ``status/clips`` (one listing)."""
    ok = failed = confirmed = 0
    for row in _rows(root, "status/clips", game_id):
        ok += row["status"] == ClipStatus.OK
        failed += row["status"] == ClipStatus.FAILED
        confirmed += int(row["confirmed"] or 0)
    return _IndexRow(game_id, ok, failed, confirmed)


def _has_report(root: str, game_id: str) -> bool:
    try:
        return store.is_file(store.join(store.game_dir(root, game_id), REPORT_FILE))
    except ValueError:  # not a usable game id, or a link out of the output root
        return False


def write_index(out_root: str | os.PathLike[str], games: Sequence[Any] | None = None) -> str:
    """Write ``<out_root>/index.html`` linking the report of every game that has one.

    Args:
        out_root: the output root (any store location).
        games: the games to list with their counts: ``GameSummary``-like objects or
            mappings with ``game_id``, ``clips_ok``, ``clips_failed`` and ``confirmed``
            (e.g. a run summary's games). Without it, the games are the folders of the
            output root and the games of the ``status/clips`` table, counted from each
            game's own partitions (one listing per game).

    Returns:
        The location of the index.
    """
    root = store.normalise(out_root)
    if games is not None:
        rows = {row.game_id: row for row in map(_index_row, games)}
    else:
        names = {e.name for e in store.list_dir(root) if e.is_dir}
        names |= set(store.list_games(root, "status/clips"))
        names -= store.RESERVED_GAME_IDS
        rows = {g: _counted_row(root, g) for g in names if _has_report(root, g)}
    listed = [rows[g] for g in sorted(rows) if games is None or _has_report(root, g)]
    if listed:
        cells = "".join(
            f'<tr><td><a href="{_e(_href(r.game_id, REPORT_FILE))}">{_e(r.game_id)}</a></td>'
            f'<td class="num">{r.clips_ok}</td>'
            f'<td class="num">{r.clips_failed}</td>'
            f'<td class="num">{r.confirmed}</td></tr>'
            for r in listed
        )
        table = (
            '<section><table id="games"><thead><tr><th>Game</th><th>Clips ok</th>'
            f"<th>Clips failed</th><th>Confirmed tracks</th></tr></thead><tbody>{cells}"
            "</tbody></table></section>"
        )
    else:
        table = '<section><p class="muted">No game report yet.</p></section>'
    header = f"<h1>hoopray: {len(listed)} game{'s' if len(listed) != 1 else ''}</h1>"
    return store.write_text(store.join(root, INDEX_FILE), _page("hoopray games", header, [table]))
