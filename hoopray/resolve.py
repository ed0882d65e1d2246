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
2. Reads. Reads with ``text`` null or ``confidence < min_read_confidence`` are fed to the
   voter as None reads (they neither count nor break a streak). With
   ``read_stride_multiple = m > 1`` only reads on frames that are multiples of
   ``read_stride * m`` are used (``read_stride`` from ``observations/clip``), which
   simulates a sparser OCR stride on the same observations; this assumes observe read on
   frames that are multiples of its stride.
3. Voting. Each track's reads are fed in (frame, read_id) order to a voter from
   :func:`hoopray.voting.make_voter`; ``confirmed_at_frame`` is the frame of the read that
   confirmed the number, ``reads_seen`` / ``reads_agreeing`` come from the voter.
4. Team. The embeddings of ``observations/team_votes`` (float16, see
   :func:`decode_embeddings`) are classified by the game's team model in one
   ``team_model.predict`` call per clip; each vote weighs ``confidence * own_fraction``
   (a crop that is mostly another player's counts little) in
   :func:`hoopray.teams.vote_team` over the track's votes. A result below
   ``min_team_confidence`` leaves the team unknown (its confidence is still reported);
   without a team model or team votes every team is unknown. ``team_name`` comes from the
   naming (null without one).
5. Roster. ``player_name = roster.player(team_name, number)``. A confirmed number that is
   not on the team's roster keeps its number with a null name (and status confirmed).
6. Conflicts. Confirmed tracks with the same (team cluster, number) whose frame ranges
   overlap cannot all be that player: taken from the strongest (most agreeing reads, then
   earliest confirmation, then lowest track id), each one that overlaps an already kept
   track becomes ``ambiguous`` (number kept, name null). Tracks with an unknown team form
   their own group. Non-overlapping tracks with one identity stay confirmed (a player
   re-tracked after leaving the picture).

Outputs ``identities/tracks`` (one row per track id of ``observations/tracks``, by track
id) and ``identities/frames`` (one row per row of ``observations/tracks``, in that order,
carrying the identity of the whole track, known in hindsight; keep rows with
``frame >= confirmed_at_frame`` of the track for what was known at the time).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from hoopray import types
from hoopray.roster import Roster
from hoopray.teams import TeamModel, TeamNaming, vote_team
from hoopray.types import Identities, IdentityStatus, Observations
from hoopray.voting import make_voter

POLICIES = ("streak", "majority")


@dataclass(frozen=True)
class ResolveConfig:
    """Thresholds of :func:`resolve` (Hydra group ``resolve``).

    Attributes:
        ios_threshold: minimum IoS between a number box and a track's mask to pair them.
        policy: "streak" (n agreeing reads in a row) or "majority" (n reads and a share).
        reads_to_confirm: n, the agreeing reads needed to confirm a number.
        min_read_confidence: reads below it count as unreadable.
        read_stride_multiple: use only reads on frames that are multiples of
            ``read_stride * read_stride_multiple`` (1 uses every stored read).
        min_team_confidence: team votes below it leave the team unknown.
        majority_min_share: share of agreeing reads the "majority" policy needs.
    """

    ios_threshold: float = 0.9
    policy: str = "streak"
    reads_to_confirm: int = 3
    min_read_confidence: float = 0.0
    read_stride_multiple: int = 1
    min_team_confidence: float = 0.0
    majority_min_share: float = 0.6

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
        for name in ("min_read_confidence", "min_team_confidence", "majority_min_share"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")

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


def _pair_reads(reads: pa.Table, threshold: float) -> np.ndarray:
    """Track id assigned to each read, or -1 when unassigned."""
    n = reads.num_rows
    assigned = np.full(n, -1, dtype=np.int64)
    if n == 0:
        return assigned
    candidates = reads.column("candidates").combine_chunks()
    flat = pc.list_flatten(candidates)
    if len(flat) == 0:
        return assigned
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
    return assigned


def _vote_numbers(
    frame: np.ndarray,
    read_id: np.ndarray,
    track: np.ndarray,
    text: list[str | None],
    confidence: np.ndarray,
    cfg: ResolveConfig,
) -> tuple[dict[int, str], dict[int, int], dict[int, tuple[int, int]]]:
    """Feed reads to a voter frame by frame.

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


def _vote_teams(
    votes: pa.Table, track_ids: np.ndarray, team_model: TeamModel | None, cfg: ResolveConfig
) -> tuple[list[int | None], list[float | None]]:
    """Team cluster (None when unknown) and vote confidence per track of ``track_ids``."""
    clusters: list[int | None] = [None] * len(track_ids)
    confidences: list[float | None] = [None] * len(track_ids)
    if team_model is None or votes.num_rows == 0 or len(track_ids) == 0:
        return clusters, confidences
    vtrack = _column(votes, "track_id").astype(np.int64)
    pos = np.searchsorted(track_ids, vtrack)
    pos_clip = np.minimum(pos, len(track_ids) - 1)
    known = track_ids[pos_clip] == vtrack
    order = np.flatnonzero(known)[np.argsort(pos[known], kind="stable")]
    if len(order) == 0:
        return clusters, confidences
    embeddings = decode_embeddings(votes)[order]
    vcluster, vconf = team_model.predict(embeddings)
    vcluster, vconf = np.asarray(vcluster), np.asarray(vconf, dtype=np.float64)
    if vcluster.shape != (len(order),) or vconf.shape != (len(order),):
        raise ValueError(f"the team model returned {vcluster.shape} for {len(order)} embeddings")
    own = np.clip(_column(votes, "own_fraction").astype(np.float64)[order], 0.0, 1.0)
    weight = vconf * own
    group = pos[order]
    bounds = np.r_[np.flatnonzero(np.r_[True, group[1:] != group[:-1]]), len(order)]
    for lo, hi in pairwise(bounds):
        cluster, confidence = vote_team(vcluster[lo:hi], weight[lo:hi])
        k = int(group[lo])
        confidences[k] = float(confidence)
        if cluster is not None and confidence >= cfg.min_team_confidence:
            clusters[k] = int(cluster)
    return clusters, confidences


def _lookup(roster: Roster | None, team_name: str | None, number: str | None) -> str | None:
    """The roster's player, or None (no roster, no team, a team the roster lacks)."""
    if roster is None or team_name is None:
        return None
    try:
        return roster.player(team_name, number)
    except KeyError:
        return None


def _overlaps(a: tuple[int, int], b: tuple[int, int]) -> bool:
    return a[0] <= b[1] and b[0] <= a[1]


def _mark_conflicts(
    candidates: list[int],
    key: list[tuple[int | None, str]],
    span: list[tuple[int, int]],
    strength: list[tuple[int, int, int]],
) -> set[int]:
    """Indices (into ``candidates``) that lose a same-identity, overlapping conflict."""
    groups: dict[tuple[int | None, str], list[int]] = {}
    for i in candidates:
        groups.setdefault(key[i], []).append(i)
    losers: set[int] = set()
    for members in groups.values():
        kept: list[int] = []
        for i in sorted(members, key=lambda m: strength[m]):
            if any(_overlaps(span[i], span[j]) for j in kept):
                losers.add(i)
            else:
                kept.append(i)
    return losers


def _empty_identities() -> Identities:
    return Identities(
        tracks=types.empty_table("identities/tracks"),
        frames=types.empty_table("identities/frames"),
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
    if reads.num_rows and cfg.read_stride_multiple > 1:
        step = _read_stride(obs.clip) * cfg.read_stride_multiple
        reads = reads.filter(pa.array(_column(reads, "frame") % step == 0))
    assigned = _pair_reads(reads, cfg.ios_threshold)
    pos = np.minimum(np.searchsorted(track_ids, assigned), len(track_ids) - 1)
    idx = np.flatnonzero((assigned >= 0) & (track_ids[pos] == assigned))
    r_conf = _column(reads, "confidence").astype(np.float32)[idx]
    raw_text = reads.column("text").take(pa.array(idx, pa.int64())).to_pylist()
    usable = r_conf >= np.float32(cfg.min_read_confidence)
    r_text = [t if ok else None for t, ok in zip(raw_text, usable.tolist(), strict=True)]
    numbers, confirmed_at, counts = _vote_numbers(
        _column(reads, "frame").astype(np.int64)[idx],
        _column(reads, "read_id").astype(np.int64)[idx],
        assigned[idx],
        r_text,
        r_conf,
        cfg,
    )
    clusters, team_conf = _vote_teams(obs.team_votes, track_ids, team_model, cfg)

    cluster_to_team = dict(naming.cluster_to_team) if naming is not None else {}
    n = len(track_ids)
    team_names: list[str | None] = [
        cluster_to_team.get(c) if c is not None else None for c in clusters
    ]
    number_list: list[str | None] = [numbers.get(int(t)) for t in track_ids]
    span = [(int(a), int(b)) for a, b in zip(first, last, strict=True)]
    strength = [
        (-counts.get(int(t), (0, 0))[1], confirmed_at.get(int(t), 0), int(t)) for t in track_ids
    ]
    confirmed_idx = [i for i in range(n) if number_list[i] is not None]
    key = [(clusters[i], number_list[i] or "") for i in range(n)]
    losers = _mark_conflicts(confirmed_idx, key, span, strength)

    status: list[str] = []
    players: list[str | None] = []
    for i in range(n):
        if number_list[i] is None:
            status.append(IdentityStatus.UNREAD.value)
            players.append(None)
        elif i in losers:
            status.append(IdentityStatus.AMBIGUOUS.value)
            players.append(None)
        else:
            status.append(IdentityStatus.CONFIRMED.value)
            players.append(_lookup(roster, team_names[i], number_list[i]))

    id_tracks = pa.table(
        {
            "track_id": pa.array(track_ids, pa.int32()),
            "first_frame": pa.array(first, pa.int32()),
            "last_frame": pa.array(last, pa.int32()),
            "team_cluster": pa.array(clusters, pa.int8()),
            "team_name": pa.array(team_names, pa.string()),
            "team_confidence": pa.array(team_conf, pa.float32()),
            "number": pa.array(number_list, pa.string()),
            "player_name": pa.array(players, pa.string()),
            "status": pa.array(status, pa.string()),
            "confirmed_at_frame": pa.array(
                [confirmed_at.get(int(t)) for t in track_ids], pa.int32()
            ),
            "reads_seen": pa.array([counts.get(int(t), (0, 0))[0] for t in track_ids], pa.int32()),
            "reads_agreeing": pa.array(
                [counts.get(int(t), (0, 0))[1] for t in track_ids], pa.int32()
            ),
        },
        schema=types.ID_TRACKS,
    )
    take = pa.array(inverse.astype(np.int64))
    id_frames = pa.table(
        {
            "frame": tracks.column("frame").cast(pa.int32()),
            "track_id": tracks.column("track_id").cast(pa.int32()),
            **{c: tracks.column(c).cast(pa.float32()) for c in ("x1", "y1", "x2", "y2")},
            "team_name": id_tracks.column("team_name").take(take),
            "number": id_tracks.column("number").take(take),
            "player_name": id_tracks.column("player_name").take(take),
            "status": id_tracks.column("status").take(take),
        },
        schema=types.ID_FRAMES,
    )
    return Identities(tracks=id_tracks, frames=id_frames)
