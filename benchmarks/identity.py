"""Identity quality under realistic noise: hoopray's resolve against the notebook's rules.

For each difficulty (``easy``, ``realistic``, ``hard``: the world of
:func:`hoopray.testing.synthetic.make_game` and the replay doubles of :mod:`hoopray.testing.replay`,
both at that difficulty) the script writes ``--games`` small games (2 clips of
``--seconds`` at 320x180, 6 players a side), fits each game's team model (colour
histograms), observes every clip once in-process (no Ray; every number box read on every
5th frame, as the notebook does: the OCR early stop is off) and resolves the same
observations with each policy:

- ``hoopray``: :class:`hoopray.resolve.ResolveConfig` defaults, through
  :func:`hoopray.stages.resolve_game_clips` (the team naming refined by the confirmed
  numbers, as the pipeline does);
- ``hoopray-streak``: the same with ``resolve.policy=streak`` (hoopray's team voting and
  checks, the notebook's number rule);
- ``notebook``: the notebook's rules: a number confirmed by 3 equal reads in a row, and the
  team of the track's first team crop;
- ``hoopray+early-stop``: ``hoopray`` on a second observation of each clip with observe's
  default OCR early stop, as production runs it when the game has a roster (a track is no
  longer read once its reads decide it at ``observe.skip_min_posterior``, and is read again
  after it crosses another track; the other rows read every number box on every read
  frame). Its figures are in the result line too (``*_early_*``), not in the targets.

A track follows the labelled player whose box it matches on most frames. It is
*number-visible* when that player's number shows clearly (labelled visible, at least
``MIN_UNCOVERED`` of its box uncovered: resolve pairs no read below IoS 0.9) on at least
``MIN_VISIBLE_READS`` read frames of the track, in at least ``MIN_VIEWS`` separate views
(stretches of frames): one view of a number cannot be told from a persistent misread of a
similar number on the same roster, by any rule. Per policy and difficulty:

- ``right``: number-visible tracks confirmed with the right team, number and name;
- ``wrong``: confirmed tracks (any track, status ``confirmed`` or ``off_roster``) whose team
  or number is wrong, as a share of confirmed tracks;
- ``reads``: the median number of readable reads of a confirmed track up to its
  confirmation.

Targets (hoopray): at ``realistic`` right >= 98% and wrong <= 0.5%; at ``hard`` right >= 95%
and wrong <= 1%; and the notebook's wrong confirmations at least 5x hoopray's (realistic
and hard together).

    .venv/bin/python benchmarks/identity.py            # --games 12 --seconds 6
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common

if TYPE_CHECKING:
    import pyarrow as pa

    from hoopray.roster import Roster
    from hoopray.types import Observations

DIFFICULTIES = ("easy", "realistic", "hard")
EARLY = "hoopray+early-stop"
POLICIES = ("hoopray", "hoopray-streak", "notebook", EARLY)
SIZE = (320, 180)
PLAYERS_PER_TEAM = 6
READ_STRIDE = 5
MIN_VISIBLE_READS = 4
MIN_VIEWS = 2
MIN_UNCOVERED = 0.9
TARGETS = {"realistic": (0.98, 0.005), "hard": (0.95, 0.01)}
NOTEBOOK_FACTOR = 5.0


@dataclass
class Truth:
    """What a track really is."""

    team: str
    number: str
    name: str | None
    visible_reads: int
    views: int

    @property
    def number_visible(self) -> bool:
        return self.visible_reads >= MIN_VISIBLE_READS and self.views >= MIN_VIEWS


@dataclass
class Tally:
    """Scores of one policy at one difficulty."""

    tracks: int = 0
    visible: int = 0
    right: int = 0
    confirmed: int = 0
    wrong: int = 0
    ambiguous: int = 0
    reads_to_confirm: list[int] = field(default_factory=list)
    wrong_examples: list[str] = field(default_factory=list)
    missed_examples: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.tracks += other.tracks
        self.visible += other.visible
        self.right += other.right
        self.confirmed += other.confirmed
        self.wrong += other.wrong
        self.ambiguous += other.ambiguous
        self.reads_to_confirm += other.reads_to_confirm
        self.wrong_examples += other.wrong_examples
        self.missed_examples += other.missed_examples

    @property
    def right_share(self) -> float:
        return self.right / self.visible if self.visible else 0.0

    @property
    def wrong_share(self) -> float:
        return self.wrong / self.confirmed if self.confirmed else 0.0

    @property
    def median_reads(self) -> float:
        return float(statistics.median(self.reads_to_confirm)) if self.reads_to_confirm else 0.0


# --------------------------------------------------------------------------- truth


def _uncovered(row: dict[str, Any], height: int, width: int) -> float:
    """Share of a player's number box inside the player's own (visible) mask."""
    from hoopray.masks import rle_decode

    x1, y1, x2, y2 = (round(row[k]) for k in ("nx1", "ny1", "nx2", "ny2"))
    if x2 <= x1 or y2 <= y1:
        return 0.0
    mask = rle_decode(row["mask_rle"], height, width)
    return float(mask[y1:y2, x1:x2].mean())


def track_truth(tracks: pa.Table, labels: pa.Table, roster: Roster) -> dict[int, Truth]:
    """The labelled player of each track and how clearly its number showed along it.

    A number shows clearly on a frame where it is labelled visible and at least
    ``MIN_UNCOVERED`` of its box is the player's own (else no read could be paired with
    the player at resolve's IoS threshold, whatever the reader says).
    """
    from hoopray.evaluate import match_boxes

    cols = ("x1", "y1", "x2", "y2")
    height = int(tracks.column("height")[0].as_py()) if tracks.num_rows else 0
    width = int(tracks.column("width")[0].as_py()) if tracks.num_rows else 0
    label_rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in labels.to_pylist():
        if row["role"] == "player":
            label_rows[row["frame"]].append(row)
    track_rows: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for row in tracks.select(["frame", "track_id", *cols]).to_pylist():
        track_rows[row["frame"]].append(row)
    follows: dict[int, list[tuple[int, dict[str, Any]]]] = defaultdict(list)
    for frame, rows in track_rows.items():
        players = label_rows.get(frame, [])
        if not players:
            continue
        a = np.array([[p[c] for c in cols] for p in players], np.float32)
        b = np.array([[r[c] for c in cols] for r in rows], np.float32)
        for li, ti, _ in match_boxes(a, b, 0.5):
            follows[rows[ti]["track_id"]].append((frame, players[li]))
    out: dict[int, Truth] = {}
    for track, seen in follows.items():
        obj = Counter(p["object_id"] for _, p in seen).most_common(1)[0][0]
        mine = sorted(((f, p) for f, p in seen if p["object_id"] == obj), key=lambda fp: fp[0])
        shown = [
            f
            for f, p in mine
            if p["number_visible"] and _uncovered(p, height, width) >= MIN_UNCOVERED
        ]
        visible = [f for f in shown if f % READ_STRIDE == 0]
        views = int(len(shown) > 0) + sum(1 for x, y in itertools.pairwise(shown) if y > x + 1)
        team, number = mine[0][1]["team"], mine[0][1]["number"]
        out[track] = Truth(team, number, roster.player(team, number), len(visible), views)
    return out


def paired_read_frames(obs: Observations, threshold: float = 0.9) -> dict[int, list[int]]:
    """Frames of each track's readable reads (best IoS >= threshold, unshared)."""
    frames: dict[int, list[int]] = defaultdict(list)
    for row in obs.reads.select(["frame", "text", "candidates"]).to_pylist():
        if row["text"] is None or not row["candidates"]:
            continue
        best = max(c["ios"] for c in row["candidates"])
        winners = {c["track_id"] for c in row["candidates"] if c["ios"] == best}
        if best >= threshold and len(winners) == 1:
            frames[winners.pop()].append(row["frame"])
    return frames


# --------------------------------------------------------------------------- policies


def first_frame_teams(obs: Observations, team_model: Any, naming: Any) -> dict[int, str | None]:
    """The notebook's team rule: the cluster of each track's first team crop."""
    from hoopray.resolve import decode_embeddings

    votes = obs.team_votes
    if votes.num_rows == 0:
        return {}
    frames = votes.column("frame").to_numpy()
    tracks = votes.column("track_id").to_numpy()
    order = np.lexsort((tracks, frames))
    first: dict[int, int] = {}
    for i in order.tolist():
        first.setdefault(int(tracks[i]), i)
    rows = np.array(sorted(first.values()), dtype=np.int64)
    clusters, _ = team_model.predict(decode_embeddings(votes.take(rows)))
    mapping = dict(naming.cluster_to_team) if naming is not None else {}
    return {
        int(tracks[r]): mapping.get(int(c)) for r, c in zip(rows.tolist(), clusters, strict=True)
    }


def score(
    identities: pa.Table,
    truth: dict[int, Truth],
    read_frames: dict[int, list[int]],
    teams: dict[int, str | None] | None = None,
    roster: Roster | None = None,
) -> Tally:
    """Score one clip's identities; ``teams`` replaces their team (the notebook's rule)."""
    tally = Tally()
    for row in identities.to_pylist():
        t = truth.get(row["track_id"])
        if t is None:
            continue
        tally.tracks += 1
        team, number, name = row["team_name"], row["number"], row["player_name"]
        if teams is not None:  # the notebook: any confirmed number, the first crop's team
            team = teams.get(row["track_id"])
            confirmed = number is not None
            name = roster.player(team, number) if confirmed and team and roster else None
        else:
            confirmed = row["status"] in ("confirmed", "off_roster")
            tally.ambiguous += row["status"] == "ambiguous"
        if t.number_visible:
            tally.visible += 1
            right = confirmed and (team, number, name) == (t.team, t.number, t.name)
            tally.right += right
            if not right:
                tally.missed_examples.append(
                    f"{t.team}#{t.number} ({t.visible_reads} reads, {t.views} views): "
                    f"{row['status']} {team}#{number} p={row.get('posterior')} "
                    f"runner-up {row.get('runner_up')}"
                )
        if confirmed:
            tally.confirmed += 1
            if (team, number) != (t.team, t.number):
                tally.wrong += 1
                tally.wrong_examples.append(f"{t.team}#{t.number} as {team}#{number}")
            at = row["confirmed_at_frame"]
            tally.reads_to_confirm.append(
                sum(f <= at for f in read_frames.get(row["track_id"], [])) if at is not None else 0
            )
    return tally


# --------------------------------------------------------------------------- run


def run_game(root: Path, difficulty: str, seed: int, seconds: float) -> dict[str, Tally]:
    """One game at one difficulty: write, fit teams, observe, resolve with every policy."""
    import pyarrow.parquet as pq

    from hoopray.models.colour import ColourHistogramEmbedder
    from hoopray.observe import ObserveConfig, observe
    from hoopray.resolve import ResolveConfig
    from hoopray.roster import load_roster
    from hoopray.stages import resolve_game_clips
    from hoopray.teams import TeamsConfig, fit_team_model, name_clusters, sample_game
    from hoopray.testing.replay import ReplayWorld
    from hoopray.testing.synthetic import make_game

    game = make_game(
        root / "games",
        root / "labels",
        f"{difficulty}-{seed}",
        seed=seed,
        clips=2,
        seconds=seconds,
        size=SIZE,
        players_per_team=PLAYERS_PER_TEAM,
        difficulty=difficulty,
    )
    roster = load_roster(game.roster_path)
    world = ReplayWorld(root / "labels", misread_rate=0.2, seed=seed)
    from hoopray.models.base import Models

    models = Models(
        detector=world.detector(difficulty),
        tracking=world.tracking(difficulty=difficulty),
        embedder=ColourHistogramEmbedder(),
        reader=world.reader(difficulty),
    )
    clips = common.clip_refs(game)
    teams_cfg = TeamsConfig(umap_neighbors=10_000)
    sample, embeddings = sample_game(clips, models, teams_cfg)
    team_model = fit_team_model(embeddings, teams_cfg, sample=sample)
    naming = name_clusters(team_model, roster)
    cfg = ObserveConfig(read_stride=READ_STRIDE, skip_confirmed_reads=None)
    observed = {clip.clip_id: observe(clip, models, cfg) for clip in clips}
    early = ObserveConfig(read_stride=READ_STRIDE)  # observe's default OCR early stop
    stopped = {clip.clip_id: observe(clip, models, early, roster=roster) for clip in clips}
    truths = {
        clip_id: track_truth(obs.tracks, pq.read_table(path), roster)
        for (clip_id, obs), path in zip(observed.items(), game.labels, strict=True)
    }
    frames = {clip_id: paired_read_frames(obs) for clip_id, obs in observed.items()}
    out = {policy: Tally() for policy in POLICIES}
    for policy, resolve_cfg in (
        ("hoopray", ResolveConfig()),
        ("hoopray-streak", ResolveConfig(policy="streak")),
    ):
        resolved, _, _ = resolve_game_clips(observed, roster, naming, team_model, resolve_cfg)
        for clip_id, (ids, _) in resolved.items():
            out[policy].add(score(ids.tracks, truths[clip_id], frames[clip_id]))
    resolved, _, _ = resolve_game_clips(stopped, roster, naming, team_model, ResolveConfig())
    for clip_id, (ids, _) in resolved.items():
        # the same tracks as the full observation's (same doubles, same frames)
        read_frames = paired_read_frames(stopped[clip_id])
        out[EARLY].add(score(ids.tracks, truths[clip_id], read_frames))
    streak = ResolveConfig(policy="streak")
    for clip_id, obs in observed.items():
        from hoopray.resolve import resolve

        ids = resolve(obs, roster, naming, streak, team_model)
        teams = first_frame_teams(obs, team_model, naming)
        out["notebook"].add(score(ids.tracks, truths[clip_id], frames[clip_id], teams, roster))
    return out


def measure(root: Path, games: int, seconds: float, difficulties: tuple[str, ...] = DIFFICULTIES):
    """Tallies per (difficulty, policy) over ``games`` games per difficulty."""
    tallies = {(d, p): Tally() for d in difficulties for p in POLICIES}
    for difficulty in difficulties:
        for g in range(games):
            for policy, tally in run_game(root / difficulty, difficulty, 100 + g, seconds).items():
                tallies[(difficulty, policy)].add(tally)
    return tallies


def verdict(tallies: dict[tuple[str, str], Tally]) -> tuple[bool, str]:
    """Whether every target holds, and the result line's value."""
    checks = []
    for difficulty, (right, wrong) in TARGETS.items():
        t = tallies.get((difficulty, "hoopray"))
        if t is not None:
            checks.append(t.right_share >= right and t.wrong_share <= wrong)
    ours = sum(tallies[(d, "hoopray")].wrong for d in TARGETS if (d, "hoopray") in tallies)
    theirs = sum(tallies[(d, "notebook")].wrong for d in TARGETS if (d, "notebook") in tallies)
    factor = theirs / ours if ours else float("inf") if theirs else 0.0
    checks.append(factor >= NOTEBOOK_FACTOR)
    parts = [
        f"{d}_right={tallies[(d, 'hoopray')].right_share:.3f},"
        f"{d}_wrong={tallies[(d, 'hoopray')].wrong_share:.4f},"
        f"{d}_early_right={tallies[(d, EARLY)].right_share:.3f},"
        f"{d}_early_wrong={tallies[(d, EARLY)].wrong_share:.4f}"
        for d in TARGETS
        if (d, "hoopray") in tallies
    ]
    value = ",".join([*parts, f"notebook_errors_x={factor:.3g}"])
    return all(checks), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--games", type=int, default=12, help="games per difficulty (>= 6)")
    parser.add_argument("--seconds", type=float, default=6.0, help="length of each clip")
    parser.add_argument("--difficulties", default=",".join(DIFFICULTIES))
    parser.add_argument("--examples", action="store_true", help="list the wrong confirmations")
    args = parser.parse_args()
    common.quiet()
    print(common.machine_line())
    difficulties = tuple(args.difficulties.split(","))
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hoopray-identity-") as tmp:
        tallies = measure(Path(tmp), args.games, args.seconds, difficulties)
    print(
        f"{args.games} games per difficulty, 2 clips x {args.seconds:g} s at "
        f"{SIZE[0]}x{SIZE[1]}, {PLAYERS_PER_TEAM} players a side; number-visible: >= "
        f"{MIN_VISIBLE_READS} read frames in >= {MIN_VIEWS} views"
    )
    headers = (
        "difficulty",
        "policy",
        "tracks",
        "number-visible",
        "right",
        "right %",
        "confirmed",
        "wrong",
        "wrong %",
        "ambiguous",
        "median reads",
    )
    rows = [
        (
            d,
            p,
            t.tracks,
            t.visible,
            t.right,
            100 * t.right_share,
            t.confirmed,
            t.wrong,
            100 * t.wrong_share,
            t.ambiguous if p != "notebook" else "",
            t.median_reads,
        )
        for (d, p), t in tallies.items()
    ]
    print(common.format_table(headers, rows))
    if args.examples:
        for (d, p), t in tallies.items():
            if t.wrong_examples:
                print(f"{d} {p} wrong: {'; '.join(t.wrong_examples)}")
            if t.missed_examples and p == "hoopray":
                print(f"{d} {p} not right:\n  " + "\n  ".join(t.missed_examples))
    print(f"total {time.perf_counter() - started:.0f} s")
    passed, value = verdict(tallies)
    target = "realistic:right>=0.98,wrong<=0.005;hard:right>=0.95,wrong<=0.01;notebook_x>=5"
    print(common.result_line("identity", value, target, passed))


if __name__ == "__main__":
    main()
