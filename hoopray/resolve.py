"""Observations + thresholds -> identities: a pure function, no model and no I/O.

Everything here depends only on the stored observations of one clip (see
:class:`hoopray.types.Observations`), the roster, the team naming, the game's fitted team
model and a :class:`ResolveConfig`, so a threshold sweep, a refitted team model or a
corrected roster re-derives identities in milliseconds without a GPU.

Rules, in order:

1. Pairing. A read (a row of ``observations/reads``) belongs to the track with the
   highest IoS among its candidates if that IoS is at least ``ios_threshold`` (compared
   in float32, the stored precision). A read whose best IoS is shared by two different
   tracks, or whose best is below the threshold, is unassigned and ignored.
2. Reads. Reads with ``text`` null or ``confidence < min_read_confidence`` are unreadable
   (they carry no evidence and break no streak). With ``read_stride_multiple = m > 1``
   only reads on frames that are multiples of ``read_stride * m`` are used
   (``read_stride`` from ``observations/clip``), which simulates a sparser OCR stride on
   the same observations; this assumes observe read on frames that are multiples of its
   stride.
3. Team votes. The embeddings of ``observations/team_votes`` (float16, see
   :func:`decode_embeddings`) are classified by the game's team model in one
   ``team_model.predict`` call per clip; each vote weighs ``confidence * own_fraction``
   (a crop that is mostly another player's counts little). ``team_cluster`` and
   ``team_confidence`` are :func:`hoopray.voting.vote_team` over the track's votes (the
   team model's evidence; the posterior policy's ``team_name`` may differ); a result
   below ``min_team_confidence`` leaves the cluster unknown (its confidence is still
   reported), and then the votes are no team evidence either. Without a team model or
   team votes every cluster is unknown.
4. Identity, by ``policy``:

   - ``posterior`` (the default): a posterior over the track's (team, number) pairs
     (:mod:`hoopray.voting`). Teams are the clip's two clusters, named by the naming
     (one "team unknown" slot when the clip has no team votes). The prior gives each
     team's roster numbers ``1 - off_roster_prior`` of the team's mass and every other
     number ``off_roster_prior``; a slot of unknown team mixes both rosters; without a
     roster it is uniform. Team evidence: each vote names its cluster with probability
     ``sigmoid(team_vote_weight * weight)``. Number evidence: the reads, split into runs
     (reads at most two read strides apart: one view of the number), each weighed by
     ``confidence * IoS``, through a confusion model of digit misreads (a dropped digit,
     2/7, 3/8, 1/7, ...; ``misread_rate``) in which a run may repeat one misread
     (``persistent_misread``). A number on one team's roster only is thus evidence for
     that team, and a read that a roster number explains as a misread counts for that
     number. Id switches: where two tracks cross (box IoU reaches ``crossing_iou``) the
     tracker may have swapped their players (``id_switch_prior`` per crossing); a swap is
     weighed by how well the two tracks' parts match crosswise, and under it the track
     is the player of its longer part. The best pair is confirmed when its posterior is
     at least ``min_posterior``, its lead over the runner-up pair (a probability
     difference) at least ``min_margin`` (an exact tie never is), and the track was read
     as that number at least once. An unconfirmed track gets the team of larger
     posterior. ``posterior``, ``margin`` and ``runner_up`` (``"<team>#<number>"``, team
     ``?`` when unknown or ``cluster <k>`` without a naming) are stored for tracks with
     a readable read; ``confirmed_at_frame`` is the first frame from which the evidence
     seen so far (without the swap analysis) confirmed the final pair, or the track's last
     evidence frame when only the swap analysis confirms it.
   - ``streak`` (the notebook's rule: ``reads_to_confirm`` agreeing reads in a row) or
     ``majority``: each track's reads are fed in (frame, read_id) order to a voter from
     :func:`hoopray.voting.make_voter`; ``confirmed_at_frame`` is the frame of the read
     that confirmed the number; the team is the vote's cluster. ``posterior``,
     ``margin`` and ``runner_up`` are null.

   ``reads_seen`` counts readable reads, ``reads_agreeing`` those equal to the number
   (the confirmed one, else the current candidate). ``team_name`` comes from the naming
   (null without one).
5. Roster. ``player_name = roster.player(team_name, number)``. A confirmed number that the
   roster of its (roster) team lacks gets status ``off_roster`` and no name.
6. Conflicts. Confirmed (or off-roster) tracks with the same (team, number) that are
   live at a common frame (both have a row of ``observations/tracks`` on it) cannot all
   be that player: taken from the strongest (most agreeing reads, then earliest
   confirmation, then lowest track id), each one live at a frame of an already kept track
   becomes ``ambiguous`` (number kept, name null). Tracks with an unknown team form their
   own group. Tracks with one identity that are never live together stay confirmed (a
   player lost by the tracker and prompted again under a new track id).
7. Linking. Every confirmed or off-roster track whose team is known gets the
   ``player_key`` ``"<game_id>/<team>/<number>"`` (``<team>``: the team's name, else
   ``cluster-<k>``), so the tracks of one player in a clip (and across the game's clips)
   share it; every other track (unread, ambiguous, or of unknown team) gets its own
   ``"<game_id>/<clip_id>/track-<id>"`` (:func:`player_key`).

Outputs ``identities/tracks`` (one row per track id of ``observations/tracks``, by track
id) and ``identities/frames`` (one row per row of ``observations/tracks``, in that order,
carrying the identity of the whole track, known in hindsight; keep rows with
``frame >= confirmed_at_frame`` of the track for what was known at the time). A frame's
``class_name`` is that of the player detection of ``observations/detections`` matched to
the track on that frame (``player-in-possession``, ``player-jump-shot``, ...), null where
none was (frames between detection frames included).
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, fields
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hoopray import types, voting
from hoopray.roster import Roster
from hoopray.teams import TeamModel, TeamNaming
from hoopray.types import Identities, IdentityStatus, Observations
from hoopray.voting import make_voter, vote_team

POLICIES = ("posterior", "streak", "majority")


@dataclass(frozen=True)
class ResolveConfig:
    """Thresholds of :func:`resolve` (Hydra group ``resolve``).

    Attributes:
        ios_threshold: minimum IoS between a number box and a track's mask to pair them.
        policy: "posterior" (joint posterior over (team, number)), "streak" (n agreeing
            reads in a row, the notebook's rule) or "majority" (n reads and a share).
        reads_to_confirm: streak and majority: the agreeing reads needed to confirm.
        min_read_confidence: reads below it count as unreadable.
        read_stride_multiple: use only reads on frames that are multiples of
            ``read_stride * read_stride_multiple`` (1 uses every stored read).
        min_team_confidence: team votes below it leave the team unknown.
        majority_min_share: share of agreeing reads the "majority" policy needs.
        min_posterior: posterior: the best pair's probability needed to confirm.
        min_margin: posterior: its lead over the runner-up pair needed to confirm.
        misread_rate: posterior: the reader's misread rate assumed by the confusion model.
        persistent_misread: posterior: prior probability that a run of reads (one view)
            repeats one misread.
        off_roster_prior: posterior: prior probability that a player's number is not on
            the team's roster.
        team_vote_weight: posterior: nats of team evidence per vote of weight 1.
        id_switch_prior: posterior: probability that a crossing of two tracks swapped
            their players (a tracker's id switch); 0 trusts every track.
        crossing_iou: posterior: two tracks cross where their boxes' IoU reaches this.
    """

    ios_threshold: float = 0.9
    policy: str = "posterior"
    reads_to_confirm: int = 3
    min_read_confidence: float = 0.0
    read_stride_multiple: int = 1
    min_team_confidence: float = 0.0
    majority_min_share: float = 0.6
    min_posterior: float = 0.8
    min_margin: float = 0.5
    misread_rate: float = 0.2
    persistent_misread: float = 0.2
    off_roster_prior: float = 0.02
    team_vote_weight: float = 0.7
    id_switch_prior: float = 0.03
    crossing_iou: float = 0.3

    def __post_init__(self) -> None:
        if not 0.0 <= self.ios_threshold <= 1.0:
            raise ValueError(f"ios_threshold must be in [0, 1], got {self.ios_threshold}")
        if self.policy not in POLICIES:
            raise ValueError(f"policy must be one of {POLICIES}, got {self.policy!r}")
        if int(self.reads_to_confirm) != self.reads_to_confirm or self.reads_to_confirm < 1:
            raise ValueError(f"reads_to_confirm must be >= 1, got {self.reads_to_confirm}")
        if int(self.read_stride_multiple) != self.read_stride_multiple or (
            self.read_stride_multiple < 1
        ):
            raise ValueError(
                f"read_stride_multiple must be an integer >= 1, got {self.read_stride_multiple}"
            )
        for name in (
            "min_read_confidence",
            "min_team_confidence",
            "majority_min_share",
            "min_posterior",
            "min_margin",
            "crossing_iou",
        ):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 < self.misread_rate <= 0.35:
            raise ValueError(f"misread_rate must be in (0, 0.35], got {self.misread_rate}")
        for name in ("persistent_misread", "off_roster_prior", "id_switch_prior"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{name} must be in [0, 1), got {value}")
        if not self.team_vote_weight >= 0.0:
            raise ValueError(f"team_vote_weight must be >= 0, got {self.team_vote_weight}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> ResolveConfig:
        """Build from a mapping (a Hydra node); unknown keys raise ValueError."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown resolve options {unknown}; known: {sorted(known)}")
        return cls(**dict(values))

    def voter_options(self) -> dict[str, Any]:
        return {"min_share": self.majority_min_share} if self.policy == "majority" else {}


def _column(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).to_numpy()


def _read_stride(clip: pa.Table) -> int:
    if clip.num_rows == 0 or "read_stride" not in clip.column_names:
        return 1
    return max(int(clip.column("read_stride")[0].as_py()), 1)


def _pair_reads(reads: pa.Table, threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Track id assigned to each read (-1 when unassigned) and the best IoS (0 if none)."""
    n = reads.num_rows
    assigned = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return assigned, np.zeros(0, dtype=np.float32)
    candidates = reads.column("candidates").combine_chunks()
    flat = pc.list_flatten(candidates)
    if len(flat) == 0:
        return assigned, np.zeros(n, dtype=np.float32)
    parents = pc.list_parent_indices(candidates).to_numpy().astype(np.int64)
    track = pc.fill_null(flat.field("track_id"), -1).to_numpy().astype(np.int64)
    ios = pc.fill_null(flat.field("ios"), 0.0).to_numpy().astype(np.float32)
    valid = track >= 0
    parents, track, ios = parents[valid], track[valid], ios[valid]
    best = np.full(n, -np.inf, dtype=np.float32)
    np.maximum.at(best, parents, ios)
    at_best = ios == best[parents]
    lo = np.full(n, np.iinfo(np.int64).max)
    hi = np.full(n, np.iinfo(np.int64).min)
    np.minimum.at(lo, parents[at_best], track[at_best])
    np.maximum.at(hi, parents[at_best], track[at_best])
    ok = (best >= np.float32(threshold)) & (lo == hi)
    assigned[ok] = lo[ok]
    return assigned, np.where(np.isfinite(best), best, 0.0).astype(np.float32)


def _vote_numbers(
    frame: np.ndarray,
    read_id: np.ndarray,
    track: np.ndarray,
    text: list[str | None],
    confidence: np.ndarray,
    cfg: ResolveConfig,
) -> tuple[dict[int, str], dict[int, int], dict[int, tuple[int, int]]]:
    """Feed reads to a voter frame by frame (the streak and majority policies).

    A track read twice in one frame gets its reads in separate voter updates, in
    read_id order, so every read counts once.

    Returns:
        confirmed number, confirmation frame and (reads_seen, reads_agreeing) per track.
    """
    voter = make_voter(cfg.policy, cfg.reads_to_confirm, **cfg.voter_options())
    if len(track) == 0:
        return {}, {}, {}
    n = len(track)
    by_track = np.lexsort((read_id, track, frame))
    f, t = frame[by_track], track[by_track]
    starts = np.r_[True, (f[1:] != f[:-1]) | (t[1:] != t[:-1])]
    group_start = np.maximum.accumulate(np.where(starts, np.arange(n), 0))
    rank = np.empty(n, dtype=np.int64)
    rank[by_track] = np.arange(n) - group_start
    order = np.lexsort((read_id, rank, frame))
    f_o, r_o = frame[order], rank[order]
    bounds = np.flatnonzero(np.r_[True, (f_o[1:] != f_o[:-1]) | (r_o[1:] != r_o[:-1])])
    bounds = np.r_[bounds, n]
    confirmed_at: dict[int, int] = {}
    for lo, hi in pairwise(bounds):
        idx = order[lo:hi]
        ids = [int(v) for v in track[idx]]
        outcome = voter.update(ids, [text[i] for i in idx], confidence[idx].tolist())
        at = int(frame[idx[0]])
        for tid, value in zip(ids, outcome, strict=True):
            if value is not None and tid not in confirmed_at:
                confirmed_at[tid] = at  # a voter's confirmed value never changes
    counts: dict[int, tuple[int, int]] = {}
    for tid in np.unique(track).tolist():
        stats = voter.stats(tid)
        counts[tid] = (int(stats.reads_seen), int(stats.reads_agreeing))
    return voter.confirmed_map(), confirmed_at, counts


def decode_embeddings(votes: pa.Table) -> np.ndarray:
    """The embeddings of ``observations/team_votes`` rows as float32 ``(N, dim)``.

    Raises:
        ValueError: rows of different ``dim``, or an embedding that is not ``dim``
            little-endian float16 values.
    """
    n = votes.num_rows
    if n == 0:
        return np.zeros((0, 0), dtype=np.float32)
    dims = _column(votes, "dim").astype(np.int64)
    dim = int(dims[0])
    if dim < 1 or (dims != dim).any():
        raise ValueError(f"team votes need one dim >= 1; got {sorted(set(dims.tolist()))}")
    array = votes.column("embedding").combine_chunks().cast(pa.large_binary())
    offsets = np.frombuffer(array.buffers()[1], np.int64)[array.offset : array.offset + n + 1]
    if (np.diff(offsets) != 2 * dim).any():
        raise ValueError(f"team vote embeddings must be {dim} float16 values ({2 * dim} bytes)")
    data = array.buffers()[2]
    assert data is not None
    flat = np.frombuffer(data, dtype="<f2", count=n * dim, offset=int(offsets[0]))
    return flat.reshape(n, dim).astype(np.float32)


@dataclass
class _TrackVotes:
    """One track's team votes: frames, clusters and weights (confidence * own_fraction)."""

    frames: np.ndarray
    clusters: np.ndarray
    weights: np.ndarray


@dataclass
class _Teams:
    """Per track (in ``track_ids`` order): vote cluster, its confidence, and the votes."""

    clusters: list[int | None]
    confidences: list[float | None]
    votes: list[_TrackVotes | None]


def _vote_teams(
    votes: pa.Table, track_ids: np.ndarray, team_model: TeamModel | None, cfg: ResolveConfig
) -> _Teams:
    """Team cluster (None when unknown), vote confidence and the votes of each track."""
    n = len(track_ids)
    out = _Teams([None] * n, [None] * n, [None] * n)
    if team_model is None or votes.num_rows == 0 or n == 0:
        return out
    vtrack = _column(votes, "track_id").astype(np.int64)
    pos = np.searchsorted(track_ids, vtrack)
    pos_clip = np.minimum(pos, n - 1)
    known = track_ids[pos_clip] == vtrack
    order = np.flatnonzero(known)[np.argsort(pos[known], kind="stable")]
    if len(order) == 0:
        return out
    embeddings = decode_embeddings(votes)[order]
    vcluster, vconf = team_model.predict(embeddings)
    vcluster, vconf = np.asarray(vcluster), np.asarray(vconf, dtype=np.float64)
    if vcluster.shape != (len(order),) or vconf.shape != (len(order),):
        raise ValueError(f"the team model returned {vcluster.shape} for {len(order)} embeddings")
    own = np.clip(_column(votes, "own_fraction").astype(np.float64)[order], 0.0, 1.0)
    weight = vconf * own
    vframe = _column(votes, "frame").astype(np.int64)[order]
    group = pos[order]
    bounds = np.r_[np.flatnonzero(np.r_[True, group[1:] != group[:-1]]), len(order)]
    for lo, hi in pairwise(bounds):
        cluster, confidence = vote_team(vcluster[lo:hi], weight[lo:hi])
        k = int(group[lo])
        out.confidences[k] = float(confidence)
        if confidence >= cfg.min_team_confidence:
            out.votes[k] = _TrackVotes(
                vframe[lo:hi], vcluster[lo:hi].astype(np.int64), weight[lo:hi]
            )
            if cluster is not None:
                out.clusters[k] = int(cluster)
    return out


def _lookup(roster: Roster | None, team_name: str | None, number: str | None) -> str | None:
    """The roster's player, or None (no roster, no team, a team the roster lacks)."""
    if roster is None or team_name is None:
        return None
    try:
        return roster.player(team_name, number)
    except KeyError:
        return None


def _off_roster(roster: Roster | None, team_name: str | None, number: str | None) -> bool:
    """True when ``team_name`` is a roster team whose players lack ``number``."""
    if roster is None or team_name is None or number is None:
        return False
    if team_name not in roster.names:
        return False
    return roster.player(team_name, number) is None


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _live_together(frames_a: np.ndarray, frames_b: np.ndarray) -> bool:
    """Whether two tracks' sorted unique frames share one."""
    if len(frames_a) == 0 or len(frames_b) == 0:
        return False
    if not _overlaps((frames_a[0], frames_a[-1]), (frames_b[0], frames_b[-1])):
        return False
    return bool(np.intersect1d(frames_a, frames_b, assume_unique=True).size)


def _mark_conflicts(
    candidates: list[int],
    key: list[tuple[object, str]],
    frames: list[np.ndarray],
    strength: list[tuple[float, ...]],
) -> set[int]:
    """Indices (into ``candidates``) that lose a same-identity conflict: live at a frame
    of a stronger track of the same ``key`` (``frames``: each track's sorted frames)."""
    groups: dict[tuple[object, str], list[int]] = {}
    for i in candidates:
        groups.setdefault(key[i], []).append(i)
    losers: set[int] = set()
    for members in groups.values():
        kept: list[int] = []
        for i in sorted(members, key=lambda m: strength[m]):
            if any(_live_together(frames[i], frames[j]) for j in kept):
                losers.add(i)
            else:
                kept.append(i)
    return losers


def player_key(
    game_id: str,
    clip_id: str,
    track_id: int,
    team: str | None,
    number: str | None,
    status: str,
) -> str:
    """The ``player_key`` of a track (see :mod:`hoopray.types`).

    Args:
        game_id: the clip's game ("" leaves the prefix out).
        clip_id: the clip ("" leaves it out).
        track_id: the track.
        team: the track's team name, ``cluster-<k>``, or None when unknown.
        number: the track's number, or None.
        status: the track's :class:`hoopray.types.IdentityStatus`.

    Returns:
        ``"<game_id>/<team>/<number>"`` for a confirmed or off-roster track of known team
        and number, else ``"<game_id>/<clip_id>/track-<track_id>"``.
    """
    linked = status in (IdentityStatus.CONFIRMED, IdentityStatus.OFF_ROSTER)
    if linked and team is not None and number is not None:
        parts = [game_id, team, number]
    else:
        parts = [game_id, clip_id, f"track-{track_id}"]
    return "/".join(p for p in parts if p)


def _team_label(team_name: str | None, cluster: int | None) -> str | None:
    if team_name is not None:
        return team_name
    return None if cluster is None else f"cluster-{cluster}"


def _matched_classes(tracks: pa.Table, detections: pa.Table) -> pa.Array:
    """Per row of ``tracks``, the class of the detection matched to that (frame, track),
    or null."""
    n = tracks.num_rows
    if detections.num_rows == 0 or n == 0:
        return pa.nulls(n, pa.string())
    matched = detections.filter(pc.is_valid(detections.column("track_id")))
    if matched.num_rows == 0:
        return pa.nulls(n, pa.string())

    def keys(table: pa.Table) -> np.ndarray:
        frame = _column(table, "frame").astype(np.int64)
        track = _column(table, "track_id").astype(np.int64)
        return (frame << 32) | (track & 0xFFFFFFFF)

    d_keys = keys(matched)
    order = np.argsort(d_keys, kind="stable")
    d_sorted = d_keys[order]
    t_keys = keys(tracks)
    pos = np.minimum(np.searchsorted(d_sorted, t_keys), len(d_sorted) - 1)
    hit = d_sorted[pos] == t_keys
    take = np.where(hit, order[pos], 0)
    names = matched.column("class_name").take(pa.array(take, pa.int64()))
    return pc.if_else(pa.array(hit), names, pa.nulls(n, pa.string()))


def crossings(tracks: pa.Table, min_iou: float) -> dict[int, list[tuple[int, int]]]:
    """Where each track starts to overlap another: ``track -> [(frame, other track)]``.

    Two tracks cross at a frame where their boxes' IoU reaches ``min_iou`` and did not on
    the pair's previous common frame: where a tracker may swap two players' ids.
    """
    if tracks.num_rows == 0:
        return {}
    frame = _column(tracks, "frame").astype(np.int64)
    track = _column(tracks, "track_id").astype(np.int64)
    boxes = np.stack([_column(tracks, c).astype(np.float64) for c in ("x1", "y1", "x2", "y2")], 1)
    order = np.lexsort((track, frame))
    frame, track, boxes = frame[order], track[order], boxes[order]
    bounds = np.r_[np.flatnonzero(np.r_[True, frame[1:] != frame[:-1]]), len(frame)]
    touching: set[tuple[int, int]] = set()
    out: dict[int, list[tuple[int, int]]] = {}
    for lo, hi in pairwise(bounds):
        now: set[tuple[int, int]] = set()
        present = set(track[lo:hi].tolist())
        if hi - lo >= 2:
            b = boxes[lo:hi]
            lo_xy = np.maximum(b[:, None, :2], b[None, :, :2])
            hi_xy = np.minimum(b[:, None, 2:], b[None, :, 2:])
            inter = np.clip(hi_xy - lo_xy, 0, None).prod(axis=2)
            area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
            union = area[:, None] + area[None, :] - inter
            iou = np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)
            for i, j in zip(*np.nonzero(np.triu(iou >= min_iou, 1)), strict=True):
                now.add((int(track[lo + i]), int(track[lo + j])))
        for one, two in sorted(now - touching):
            at = int(frame[lo])
            out.setdefault(one, []).append((at, two))
            out.setdefault(two, []).append((at, one))
        # a pair apart on a frame where both are present is apart; else it keeps its state
        touching = now | {p for p in touching if p[0] not in present or p[1] not in present}
    return out


def _empty_identities() -> Identities:
    return Identities(
        tracks=types.empty_table("identities/tracks"),
        frames=types.empty_table("identities/frames"),
    )


# --------------------------------------------------------------------------- posterior


@dataclass(frozen=True)
class _Slots:
    """The team axis of a clip's posteriors.

    Attributes:
        labels: per slot, the team name, ``"cluster <k>"`` or ``"?"`` (team unknown).
        names: per slot, the team name or None.
        log_prior: ``(slots, numbers)``.
    """

    labels: tuple[str, ...]
    names: tuple[str | None, ...]
    log_prior: np.ndarray


def _roster_numbers(roster: Roster | None, name: str | None) -> frozenset[str] | None:
    if roster is None or name is None or name not in roster.names:
        return None
    return frozenset(roster.team(name).players)


def _slots(
    roster: Roster | None, naming: TeamNaming | None, has_votes: bool, off_roster: float
) -> _Slots:
    """The clip's team slots and their prior: the two clusters (named by ``naming``) when
    the clip has team votes, else one "team unknown" slot. A slot of a roster team has
    that team's prior; one whose team is unknown mixes both rosters' priors."""
    if roster is None:
        mixed = voting.roster_log_prior([None], off_roster)[0]
    else:
        both = voting.roster_log_prior([frozenset(t.players) for t in roster.teams], off_roster)
        mixed = np.logaddexp.reduce(both, axis=0)
    if not has_votes:
        return _Slots(("?",), (None,), mixed[None, :])
    mapping = dict(naming.cluster_to_team) if naming is not None else {}
    names = (mapping.get(0), mapping.get(1))
    labels = tuple(n if n is not None else f"cluster {k}" for k, n in enumerate(names))
    rows = []
    for name in names:
        numbers = _roster_numbers(roster, name)
        rows.append(
            voting.roster_log_prior([numbers], off_roster)[0] if numbers else mixed - np.log(2)
        )
    return _Slots(labels, names, np.stack(rows) - np.logaddexp.reduce(np.stack(rows), axis=None))


@dataclass(frozen=True)
class _Evidence:
    """A track's evidence (or a part of it, or two tracks' parts): its readable reads by
    frame (numbers as indices into :data:`hoopray.voting.NUMBERS`, weights in [0, 1]) and
    its team votes (clusters and weights)."""

    frames: np.ndarray
    numbers: np.ndarray
    weights: np.ndarray
    vote_frames: np.ndarray
    vote_clusters: np.ndarray
    vote_weights: np.ndarray

    def part(self, start: int | None = None, stop: int | None = None) -> _Evidence:
        """The evidence of frames in ``[start, stop)`` (None: unbounded)."""
        lo = -np.inf if start is None else start
        hi = np.inf if stop is None else stop
        r = (self.frames >= lo) & (self.frames < hi)
        v = (self.vote_frames >= lo) & (self.vote_frames < hi)
        return _Evidence(
            self.frames[r],
            self.numbers[r],
            self.weights[r],
            self.vote_frames[v],
            self.vote_clusters[v],
            self.vote_weights[v],
        )

    def union(self, other: _Evidence) -> _Evidence:
        """Both evidences, as one player's (reads in frame order)."""
        frames = np.r_[self.frames, other.frames]
        order = np.argsort(frames, kind="stable")
        return _Evidence(
            frames[order],
            np.r_[self.numbers, other.numbers][order],
            np.r_[self.weights, other.weights][order],
            np.r_[self.vote_frames, other.vote_frames],
            np.r_[self.vote_clusters, other.vote_clusters],
            np.r_[self.vote_weights, other.vote_weights],
        )


@dataclass(frozen=True)
class _Model:
    """What the posterior of an evidence needs: the clip's slots and the config."""

    slots: _Slots
    cfg: ResolveConfig
    run_gap: int

    def log_joint(self, ev: _Evidence) -> np.ndarray:
        """Log prior + log-likelihood, ``(slots, numbers)``."""
        cfg = self.cfg
        number_ll = voting.number_loglik(
            ev.numbers,
            ev.weights,
            voting.split_runs(ev.frames, self.run_gap),
            voting.confusion_matrix(cfg.misread_rate),
            cfg.persistent_misread,
        )
        if len(self.slots.labels) == 2:
            team_ll = voting.team_loglik(ev.vote_clusters, ev.vote_weights, cfg.team_vote_weight)
        else:
            team_ll = np.zeros(1)
        return self.slots.log_prior + team_ll[:, None] + number_ll[None, :]

    def posterior(self, ev: _Evidence) -> tuple[np.ndarray, float]:
        """The posterior and the log evidence of ``ev``."""
        joint = self.log_joint(ev)
        log_evidence = float(np.logaddexp.reduce(joint.reshape(-1)))
        return np.exp(joint - log_evidence), log_evidence


def _loose_evidence(model: _Model, ev: _Evidence, cuts: list[int], single: float) -> float:
    """Log evidence of a track that may have changed to some other player at one of its
    crossings (normalised so that it is ``single``, the evidence of one player
    throughout, when no change explains its evidence better).

    This is the baseline a swap with another track must beat: when the other track's own
    evidence shows a change, a swap with this one is likely only if the two tracks'
    halves match crosswise."""
    prior = model.cfg.id_switch_prior
    if prior <= 0 or not cuts or len(ev.frames) + len(ev.vote_frames) == 0:
        return single
    splits = [
        model.posterior(ev.part(stop=at))[1] + model.posterior(ev.part(start=at))[1]
        for at in sorted(set(cuts))
    ]
    logs = np.r_[single, np.log(prior) - np.log1p(-prior) + np.asarray(splits)]
    return float(np.logaddexp.reduce(logs))


@dataclass(frozen=True)
class _PosteriorResult:
    decision: voting.PairDecision
    team_slot: int | None  # the slot with the larger team marginal (None on a tie)
    confirmed_at: int | None


def _decide_track(
    model: _Model,
    ev: _Evidence,
    span: tuple[int, int],
    swaps: list[tuple[int, _Evidence, float]],
    log_evidence: float,
) -> _PosteriorResult:
    """One track's decision and the first frame from which its evidence confirmed it.

    The track may have swapped players with another track at one of their crossings (a
    tracker's id switch, each with probability ``id_switch_prior``): ``swaps`` lists
    ``(frame, the other track's evidence, its log evidence allowing it a change of player
    of its own, see :func:`_loose_evidence`)``. After a swap at frame
    ``t``, this track's reads and votes before ``t`` and the other's from ``t`` on are one
    player's, and the rest the other player's; the track is then the player it follows on
    more of its frames (``span``: first and last frame). The posterior mixes "no swap"
    and each swap by their posterior weights, so a track whose reads and votes change
    identity at a crossing confirms only the identity of its longer part, and only with
    the other track's evidence in agreement.
    """
    cfg = model.cfg
    final, single = model.posterior(ev)
    if cfg.id_switch_prior > 0 and swaps:
        log_odds, majors = [], []
        prior = np.log(cfg.id_switch_prior) - np.log1p(-cfg.id_switch_prior)
        parts: dict[tuple[int | None, int | None], tuple[np.ndarray, float]] = {}

        def part(start: int | None, stop: int | None) -> tuple[np.ndarray, float]:
            if (start, stop) not in parts:
                parts[(start, stop)] = model.posterior(ev.part(start, stop))
            return parts[(start, stop)]

        cuts = sorted({at for at, _, _ in swaps})
        # changes to players seen nowhere else, at one crossing or at two: the track is
        # then the player of its longest stretch
        changes = [(at,) for at in cuts] + list(itertools.combinations(cuts, 2))
        for change in changes:
            edges: list[int | None] = [None, *change, None]
            segments = list(pairwise(edges))
            fits = [part(a, b) for a, b in segments]
            lengths = [
                (span[1] + 1 if b is None else b) - (span[0] if a is None else a)
                for a, b in segments
            ]
            log_odds.append(prior * len(change) + sum(e for _, e in fits) - single)
            majors.append(fits[int(np.argmax(lengths))][0])
        for at, other, other_evidence in swaps:  # a swap with the track it crossed
            mine_first = ev.part(stop=at).union(other.part(start=at))
            mine_last = other.part(stop=at).union(ev.part(start=at))
            p_first, e_first = model.posterior(mine_first)
            p_last, e_last = model.posterior(mine_last)
            log_odds.append(prior + e_first + e_last - single - other_evidence)
            majors.append(p_first if at - span[0] > span[1] - at else p_last)
        weights = voting.switch_weights(log_odds)
        final = weights[0] * final + np.tensordot(weights[1:], np.stack(majors), axes=1)
    decision = voting.decide_pair(final, cfg.min_posterior, cfg.min_margin)
    marginal = final.sum(axis=1)
    team_slot = (
        int(np.argmax(marginal)) if len(marginal) == 1 or (marginal[0] != marginal[1]) else None
    )
    confirmed_at = None
    if decision.confirmed:
        points = np.union1d(ev.frames, ev.vote_frames[ev.vote_frames >= ev.frames[0]])
        for at in points.tolist():
            probs, _ = model.posterior(ev.part(stop=at + 1))
            step = voting.decide_pair(probs, cfg.min_posterior, cfg.min_margin)
            if step.confirmed and (step.slot, step.number) == (decision.slot, decision.number):
                confirmed_at = int(at)
                break
        if confirmed_at is None:
            confirmed_at = int(points[-1])
    return _PosteriorResult(decision, team_slot, confirmed_at)


@dataclass
class _Decided:
    """Per track (in ``track_ids`` order) what a policy decided."""

    number: list[str | None]
    team_name: list[str | None]
    confirmed_at: list[int | None]
    seen: list[int]
    agreeing: list[int]
    posterior: list[float | None]
    margin: list[float | None]
    runner_up: list[str | None]


def _by_track(track_ids: np.ndarray, assigned: np.ndarray) -> list[np.ndarray]:
    """Row indices (into ``assigned``) of each track's reads, per track of ``track_ids``."""
    out: list[np.ndarray] = [np.zeros(0, dtype=np.int64)] * len(track_ids)
    if len(assigned) == 0:
        return out
    pos = np.searchsorted(track_ids, assigned)
    order = np.argsort(pos, kind="stable")
    bounds = np.r_[np.flatnonzero(np.r_[True, pos[order][1:] != pos[order][:-1]]), len(order)]
    for lo, hi in pairwise(bounds):
        out[int(pos[order[lo]])] = order[lo:hi]
    return out


def _evidence(
    track_ids: np.ndarray,
    r_frame: np.ndarray,
    r_read_id: np.ndarray,
    r_track: np.ndarray,
    r_text: list[str | None],
    r_weight: np.ndarray,
    teams: _Teams,
) -> list[_Evidence]:
    """Each track's evidence: readable reads in (frame, read_id) order, and votes."""
    readable = np.array([t is not None and t in voting.NUMBER_INDEX for t in r_text], bool)
    keep = np.flatnonzero(readable.reshape(-1))
    numbers = np.array([voting.NUMBER_INDEX[r_text[i]] for i in keep], dtype=np.int64)
    frame, read_id = r_frame[keep], r_read_id[keep]
    weight = np.clip(r_weight[keep], 0.0, 1.0)
    none_i, none_f = np.zeros(0, np.int64), np.zeros(0, np.float64)
    out = []
    for k, mine in enumerate(_by_track(track_ids, r_track[keep])):
        order = mine[np.lexsort((read_id[mine], frame[mine]))]
        votes = teams.votes[k]
        out.append(
            _Evidence(
                frame[order],
                numbers[order],
                weight[order],
                votes.frames if votes is not None else none_i,
                votes.clusters if votes is not None else none_i,
                votes.weights if votes is not None else none_f,
            )
        )
    return out


def _decide_posterior(
    track_ids: np.ndarray,
    evidence: list[_Evidence],
    spans: list[tuple[int, int]],
    teams: _Teams,
    roster: Roster | None,
    naming: TeamNaming | None,
    cfg: ResolveConfig,
    run_gap: int,
    cuts: dict[int, list[tuple[int, int]]],
) -> _Decided:
    n = len(track_ids)
    out = _Decided(
        [None] * n, [None] * n, [None] * n, [0] * n, [0] * n, [None] * n, [None] * n, [None] * n
    )
    has_votes = any(v is not None for v in teams.votes)
    model = _Model(_slots(roster, naming, has_votes, cfg.off_roster_prior), cfg, run_gap)
    slots = model.slots
    log_evidence = [model.posterior(ev)[1] for ev in evidence]
    index = {int(t): k for k, t in enumerate(track_ids.tolist())}
    loose = [
        _loose_evidence(model, ev, [at for at, _ in cuts.get(int(t), [])], single)
        for t, ev, single in zip(track_ids.tolist(), evidence, log_evidence, strict=True)
    ]
    for k in range(n):
        ev = evidence[k]
        out.seen[k] = len(ev.frames)
        if len(ev.frames) == 0:
            if teams.votes[k] is not None and slots.names[0] is not None:
                marginal = model.posterior(ev)[0].sum(axis=1)
                if marginal[0] != marginal[1]:
                    out.team_name[k] = slots.names[int(np.argmax(marginal))]
            continue
        swaps = [
            (at, evidence[index[other]], loose[index[other]])
            for at, other in cuts.get(int(track_ids[k]), [])
            if other in index
        ]
        result = _decide_track(model, ev, spans[k], swaps, log_evidence[k])
        d = result.decision
        out.posterior[k] = d.posterior
        out.margin[k] = d.margin
        out.runner_up[k] = f"{slots.labels[d.runner_slot]}#{voting.NUMBERS[d.runner_number]}"
        out.agreeing[k] = int(np.count_nonzero(ev.numbers == d.number))
        if d.confirmed and out.agreeing[k] > 0:  # never a number this track was not read as
            out.number[k] = voting.NUMBERS[d.number]
            out.team_name[k] = slots.names[d.slot]
            out.confirmed_at[k] = result.confirmed_at
        elif result.team_slot is not None:
            out.team_name[k] = slots.names[result.team_slot]
    return out


def _decide_voter(
    track_ids: np.ndarray,
    r_frame: np.ndarray,
    r_read_id: np.ndarray,
    r_track: np.ndarray,
    r_text: list[str | None],
    r_conf: np.ndarray,
    teams: _Teams,
    naming: TeamNaming | None,
    cfg: ResolveConfig,
) -> _Decided:
    numbers, confirmed_at, counts = _vote_numbers(r_frame, r_read_id, r_track, r_text, r_conf, cfg)
    cluster_to_team = dict(naming.cluster_to_team) if naming is not None else {}
    n = len(track_ids)
    return _Decided(
        number=[numbers.get(int(t)) for t in track_ids],
        team_name=[cluster_to_team.get(c) if c is not None else None for c in teams.clusters],
        confirmed_at=[confirmed_at.get(int(t)) for t in track_ids],
        seen=[counts.get(int(t), (0, 0))[0] for t in track_ids],
        agreeing=[counts.get(int(t), (0, 0))[1] for t in track_ids],
        posterior=[None] * n,
        margin=[None] * n,
        runner_up=[None] * n,
    )


def resolve(
    obs: Observations,
    roster: Roster | None,
    naming: TeamNaming | None,
    cfg: ResolveConfig | None = None,
    team_model: TeamModel | None = None,
) -> Identities:
    """Derive identities of one clip from its observations (see the module docstring).

    Args:
        obs: the clip's observations; extra columns (such as the ``game_id``/``clip_id``
            added by :func:`hoopray.store.read_table`) are ignored.
        roster: the game's roster, or None (no player names).
        naming: cluster -> team name, or None (no team names).
        cfg: thresholds; defaults to :class:`ResolveConfig()`.
        team_model: the game's fitted team model (anything with
            :meth:`hoopray.teams.TeamModel.predict`), or None (every team unknown).

    Returns:
        ``Identities`` whose tables fit ``identities/tracks`` and ``identities/frames``.

    Raises:
        ValueError: team vote embeddings that do not decode, or that the team model
            rejects (another dimension).
    """
    cfg = cfg or ResolveConfig()
    tracks = obs.tracks
    if tracks.num_rows == 0:
        return _empty_identities()
    t_frame = _column(tracks, "frame").astype(np.int64)
    t_track = _column(tracks, "track_id").astype(np.int64)
    track_ids, inverse = np.unique(t_track, return_inverse=True)
    by_track = np.argsort(inverse, kind="stable")
    starts = np.searchsorted(inverse[by_track], np.arange(len(track_ids)))
    first = np.minimum.reduceat(t_frame[by_track], starts)
    last = np.maximum.reduceat(t_frame[by_track], starts)

    reads = obs.reads
    stride = _read_stride(obs.clip) * cfg.read_stride_multiple
    if reads.num_rows and cfg.read_stride_multiple > 1:
        reads = reads.filter(pa.array(_column(reads, "frame") % stride == 0))
    assigned, best_ios = _pair_reads(reads, cfg.ios_threshold)
    pos = np.minimum(np.searchsorted(track_ids, assigned), len(track_ids) - 1)
    idx = np.flatnonzero((assigned >= 0) & (track_ids[pos] == assigned))
    r_conf = _column(reads, "confidence").astype(np.float32)[idx]
    raw_text = reads.column("text").take(pa.array(idx, pa.int64())).to_pylist()
    usable = r_conf >= np.float32(cfg.min_read_confidence)
    r_text = [t if ok else None for t, ok in zip(raw_text, usable.tolist(), strict=True)]
    r_frame = _column(reads, "frame").astype(np.int64)[idx]
    r_read_id = _column(reads, "read_id").astype(np.int64)[idx]
    teams = _vote_teams(obs.team_votes, track_ids, team_model, cfg)
    if cfg.policy == "posterior":
        weight = r_conf.astype(np.float64) * best_ios[idx].astype(np.float64)
        evidence = _evidence(track_ids, r_frame, r_read_id, assigned[idx], r_text, weight, teams)
        decided = _decide_posterior(
            track_ids,
            evidence,
            [(int(a), int(b)) for a, b in zip(first, last, strict=True)],
            teams,
            roster,
            naming,
            cfg,
            run_gap=2 * stride,
            cuts=crossings(tracks, cfg.crossing_iou) if cfg.id_switch_prior > 0 else {},
        )
    else:
        decided = _decide_voter(
            track_ids, r_frame, r_read_id, assigned[idx], r_text, r_conf, teams, naming, cfg
        )

    n = len(track_ids)
    frames = [np.unique(part) for part in np.split(t_frame[by_track], starts[1:])]
    strength = [
        (-decided.agreeing[i], -(decided.posterior[i] or 0.0), decided.confirmed_at[i] or 0, i)
        for i in range(n)
    ]
    confirmed_idx = [i for i in range(n) if decided.number[i] is not None]
    team_label = [_team_label(decided.team_name[i], teams.clusters[i]) for i in range(n)]
    key = [(team_label[i], decided.number[i] or "") for i in range(n)]
    losers = _mark_conflicts(confirmed_idx, key, frames, strength)

    status: list[str] = []
    players: list[str | None] = []
    for i in range(n):
        number, team_name = decided.number[i], decided.team_name[i]
        if number is None:
            status.append(IdentityStatus.UNREAD.value)
            players.append(None)
        elif i in losers:
            status.append(IdentityStatus.AMBIGUOUS.value)
            players.append(None)
        elif _off_roster(roster, team_name, number):
            status.append(IdentityStatus.OFF_ROSTER.value)
            players.append(None)
        else:
            status.append(IdentityStatus.CONFIRMED.value)
            players.append(_lookup(roster, team_name, number))

    keys = [
        player_key(
            obs.game_id, obs.clip_id, int(track_ids[i]), team_label[i], decided.number[i], status[i]
        )
        for i in range(n)
    ]
    id_tracks = pa.table(
        {
            "track_id": pa.array(track_ids, pa.int32()),
            "player_key": pa.array(keys, pa.string()),
            "first_frame": pa.array(first, pa.int32()),
            "last_frame": pa.array(last, pa.int32()),
            "team_cluster": pa.array(teams.clusters, pa.int8()),
            "team_name": pa.array(decided.team_name, pa.string()),
            "team_confidence": pa.array(teams.confidences, pa.float32()),
            "number": pa.array(decided.number, pa.string()),
            "player_name": pa.array(players, pa.string()),
            "status": pa.array(status, pa.string()),
            "confirmed_at_frame": pa.array(decided.confirmed_at, pa.int32()),
            "reads_seen": pa.array(decided.seen, pa.int32()),
            "reads_agreeing": pa.array(decided.agreeing, pa.int32()),
            "posterior": pa.array(decided.posterior, pa.float32()),
            "margin": pa.array(decided.margin, pa.float32()),
            "runner_up": pa.array(decided.runner_up, pa.string()),
        },
        schema=types.ID_TRACKS,
    )
    take = pa.array(inverse.astype(np.int64))
    id_frames = pa.table(
        {
            "frame": tracks.column("frame").cast(pa.int32()),
            "track_id": tracks.column("track_id").cast(pa.int32()),
            "player_key": id_tracks.column("player_key").take(take),
            **{c: tracks.column(c).cast(pa.float32()) for c in ("x1", "y1", "x2", "y2")},
            "team_name": id_tracks.column("team_name").take(take),
            "number": id_tracks.column("number").take(take),
            "player_name": id_tracks.column("player_name").take(take),
            "status": id_tracks.column("status").take(take),
            "class_name": _matched_classes(tracks, obs.detections),
        },
        schema=types.ID_FRAMES,
    )
    return Identities(tracks=id_tracks, frames=id_frames)
