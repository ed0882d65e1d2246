"""Confirm a per-track value (a jersey number) from several noisy reads.

A single read is unreliable (a 2 looks like a 7, 23 like 25), so a value is confirmed
for a track only after several reads agree. Once confirmed it stays until the track is
reset; later reads still count in the statistics but never change it.

Values are compared as given: normalise them first (:func:`hoopray.numbers.normalise_number`).
``None`` and blank strings are unreadable reads: they neither count nor break a streak.

The second half holds the joint identity posterior of :mod:`hoopray.resolve`'s default
policy, as pure numpy functions: a confusion model of digit misreads
(:func:`confusion_matrix`), the likelihood of a run of reads of one view that may repeat a
misread (:func:`run_loglik`), team votes (:func:`team_loglik`; :func:`vote_team`, a plain weighted
vote), the roster prior
(:func:`roster_log_prior`), the posterior over (team, number) pairs
(:func:`pair_posterior`) and the decision (:func:`decide_pair`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class VoteStats:
    """What a voter saw of one track.

    Attributes:
        reads_seen: readable (non-None) reads given, including any after confirmation.
        reads_agreeing: of those, reads equal to the confirmed value, or while
            unconfirmed, to the current candidate (the streak's value for
            :class:`StreakVoter`, the leading value for :class:`MajorityVoter`).
        confirmed_at_update: 0-based index of the ``update`` call that confirmed the
            value (counted since construction or :meth:`Voter.reset_all`), or None.
    """

    reads_seen: int = 0
    reads_agreeing: int = 0
    confirmed_at_update: int | None = None


@runtime_checkable
class Voter(Protocol):
    def update(
        self,
        track_ids: Sequence[int],
        values: Sequence[str | None],
        confidences: Sequence[float] | None = None,
    ) -> list[str | None]:
        """Feed one batch of reads; return each read's track's confirmed value or None."""
        ...

    def confirmed(self, track_id: int) -> str | None: ...

    def confirmed_map(self) -> dict[int, str]: ...

    def stats(self, track_id: int) -> VoteStats: ...

    def reset(self, track_id: int) -> None: ...

    def reset_all(self) -> None: ...


@dataclass
class _Track:
    counts: dict[str, int] = field(default_factory=dict)
    weights: dict[str, float] = field(default_factory=dict)
    reads_seen: int = 0
    streak_value: str | None = None
    streak: int = 0
    confirmed: str | None = None
    confirmed_at_update: int | None = None


def _clean_value(value: str | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError(f"values must be str or None; got {type(value).__name__}")
    text = value.strip()
    return text or None


def _check_n(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n (reads to confirm) must be an int >= 1; got {n!r}")
    return n


class _BaseVoter:
    """Bookkeeping shared by the voters; subclasses decide when a track is confirmed."""

    def __init__(self, n: int) -> None:
        self.n = _check_n(n)
        self._tracks: dict[int, _Track] = {}
        self._updates = 0

    def update(
        self,
        track_ids: Sequence[int],
        values: Sequence[str | None],
        confidences: Sequence[float] | None = None,
    ) -> list[str | None]:
        """Feed reads in order (a track may appear twice); see :class:`Voter`.

        Args:
            track_ids: the track of each read.
            values: each read's value, None when unreadable.
            confidences: each read's confidence, finite and ``>= 0``; None means 1 each.

        Raises:
            ValueError: on mismatched lengths or a bad confidence.
        """
        if len(track_ids) != len(values):
            raise ValueError(
                f"track_ids and values differ in length: {len(track_ids)} != {len(values)}"
            )
        if confidences is None:
            weights = [1.0] * len(values)
        else:
            if len(confidences) != len(values):
                raise ValueError(
                    f"confidences and values differ in length: {len(confidences)} != {len(values)}"
                )
            weights = [float(c) for c in confidences]
            if any(not (math.isfinite(w) and w >= 0) for w in weights):
                raise ValueError(f"confidences must be finite and >= 0; got {confidences}")
        cleaned = [_clean_value(v) for v in values]
        output: list[str | None] = []
        for track_id, value, weight in zip(track_ids, cleaned, weights, strict=True):
            track = self._tracks.setdefault(int(track_id), _Track())
            if value is not None:
                track.reads_seen += 1
                track.counts[value] = track.counts.get(value, 0) + 1
                track.weights[value] = track.weights.get(value, 0.0) + weight
                if track.confirmed is None:
                    self._advance(track, value)
                    if track.confirmed is not None:
                        track.confirmed_at_update = self._updates
            output.append(track.confirmed)
        self._updates += 1
        return output

    def _advance(self, track: _Track, value: str) -> None:
        raise NotImplementedError

    def _candidate(self, track: _Track) -> str | None:
        raise NotImplementedError

    def confirmed(self, track_id: int) -> str | None:
        track = self._tracks.get(int(track_id))
        return None if track is None else track.confirmed

    def confirmed_map(self) -> dict[int, str]:
        """Every confirmed track's value (a snapshot copy)."""
        return {tid: t.confirmed for tid, t in self._tracks.items() if t.confirmed is not None}

    def stats(self, track_id: int) -> VoteStats:
        """Statistics of a track; all zero for a track never seen."""
        track = self._tracks.get(int(track_id))
        if track is None:
            return VoteStats()
        value = track.confirmed if track.confirmed is not None else self._candidate(track)
        agreeing = track.counts.get(value, 0) if value is not None else 0
        return VoteStats(track.reads_seen, agreeing, track.confirmed_at_update)

    def reset(self, track_id: int) -> None:
        """Forget a track (unknown ids are ignored)."""
        self._tracks.pop(int(track_id), None)

    def reset_all(self) -> None:
        """Forget every track and restart the update count."""
        self._tracks.clear()
        self._updates = 0


class StreakVoter(_BaseVoter):
    """Confirm a value after ``n`` consecutive agreeing readable reads (the notebook's rule).

    A different value restarts the streak at 1; an unreadable read is skipped.
    Confidences are validated but do not weigh in.
    """

    def __init__(self, n: int = 3) -> None:
        super().__init__(n)

    def _advance(self, track: _Track, value: str) -> None:
        if value == track.streak_value:
            track.streak += 1
        else:
            track.streak_value = value
            track.streak = 1
        if track.streak >= self.n:
            track.confirmed = value

    def _candidate(self, track: _Track) -> str | None:
        return track.streak_value

    def stats(self, track_id: int) -> VoteStats:
        """As :meth:`_BaseVoter.stats`, but an unconfirmed track's agreeing reads are its
        current streak's length."""
        base = super().stats(track_id)
        track = self._tracks.get(int(track_id))
        if track is None or track.confirmed is not None:
            return base
        return VoteStats(base.reads_seen, track.streak, None)


class MajorityVoter(_BaseVoter):
    """Confirm the value with the largest total confidence once it is clearly ahead.

    After each readable read of an unconfirmed track, let ``W(v)`` be the summed
    confidence of the reads of value ``v`` and ``W`` the sum over all values. The
    leader, the value with the largest ``W(v)`` (strictly: a tie has no leader), is
    confirmed when it has at least ``n`` reads and ``W(leader) / W >= min_share``.
    Without confidences every read weighs 1, so this is a plain majority count. Reads
    are never forgotten, unlike a streak: a stray misread delays confirmation rather
    than restarting it. With ``W == 0`` (all confidences 0) nothing is confirmed.
    """

    def __init__(self, n: int = 3, min_share: float = 0.6) -> None:
        super().__init__(n)
        if not (math.isfinite(min_share) and 0 < min_share <= 1):
            raise ValueError(f"min_share must be in (0, 1]; got {min_share!r}")
        self.min_share = float(min_share)

    def _leader(self, track: _Track) -> str | None:
        if not track.weights:
            return None
        ranked = sorted(track.weights.items(), key=lambda item: item[1], reverse=True)
        if len(ranked) > 1 and ranked[0][1] == ranked[1][1]:
            return None
        return ranked[0][0]

    def _advance(self, track: _Track, value: str) -> None:
        leader = self._leader(track)
        total = sum(track.weights.values())
        if leader is None or total <= 0 or track.counts[leader] < self.n:
            return
        if track.weights[leader] / total >= self.min_share:
            track.confirmed = leader

    def _candidate(self, track: _Track) -> str | None:
        return self._leader(track)


_POLICIES: dict[str, tuple[type[_BaseVoter], frozenset[str]]] = {
    "streak": (StreakVoter, frozenset()),
    "majority": (MajorityVoter, frozenset({"min_share"})),
}


def make_voter(policy: str, n: int, **kw: float) -> StreakVoter | MajorityVoter:
    """Build the voter named by ``policy`` ("streak" or "majority").

    Args:
        policy: "streak" or "majority".
        n: reads needed to confirm.
        **kw: the policy's own options (``min_share`` for "majority").

    Raises:
        ValueError: on an unknown policy, an option the policy does not take, or a bad
            value.
    """
    if policy not in _POLICIES:
        raise ValueError(f"unknown voting policy {policy!r}; expected one of {sorted(_POLICIES)}")
    cls, allowed = _POLICIES[policy]
    unknown = sorted(set(kw) - allowed)
    if unknown:
        raise ValueError(
            f"voting policy {policy!r} takes no option(s) {unknown}; allowed: {sorted(allowed)}"
        )
    return cls(n, **kw)


# --------------------------------------------------------------------------- posterior
#
# The joint identity of a track: a posterior over (team, number) pairs from its number
# reads, grouped into runs (the reads of one view of the number, which share their errors),
# and its team evidence. Pure numpy; :mod:`hoopray.resolve` builds the inputs from tables.

NUMBERS: tuple[str, ...] = ("0", "00", *(str(n) for n in range(1, 100)))
"""Every jersey number, in the order of the posterior's number axis (101 values)."""

NUMBER_INDEX: dict[str, int] = {n: i for i, n in enumerate(NUMBERS)}

SIMILAR_DIGITS: dict[frozenset[str], float] = {
    frozenset("27"): 1.0,
    frozenset("38"): 1.0,
    frozenset("17"): 1.0,
    frozenset("68"): 0.5,
    frozenset("56"): 0.5,
    frozenset("08"): 0.5,
    frozenset("89"): 0.5,
    frozenset("14"): 0.3,
    frozenset("06"): 0.3,
    frozenset("35"): 0.3,
}
"""How alike two digits look to a reader (symmetric), relative to 2/7."""

_DROP = 1.0  # a two-digit number read as one of its digits (cropped, turned, occluded)
_SUBSTITUTE = 0.8  # one digit read as a similar one, times SIMILAR_DIGITS
_REVERSED = 0.2  # the two digits in the wrong order
_ADD = 0.01  # a one-digit number read with a digit more (a seam, a stripe)
_ONE_DIGIT = 0.1  # one digit read as another, not a similar one
_FLOOR = 0.01  # anything else (a false box on the track: shorts, a logo, an arm)


def _digit_similarity(a: str, b: str) -> float:
    return 1.0 if a == b else SIMILAR_DIGITS.get(frozenset((a, b)), 0.0)


def misread_weight(true: str, read: str) -> float:
    """Relative plausibility that a reader shows ``read`` for the number ``true``.

    Symmetric for substitutions (``2``/``7``, ``23``/``28``, weaker for any one digit:
    ``23``/``43``), reversed digits and the floor; a dropped digit (``23`` -> ``2``) is
    far more likely than an added one (``2`` -> ``23``). 0 for ``read == true``.

    Raises:
        KeyError: either is not a jersey number of :data:`NUMBERS`.
    """
    NUMBER_INDEX[true], NUMBER_INDEX[read]
    if true == read:
        return 0.0
    if len(true) == 2 and len(read) == 1 and read in {str(int(true[0])), str(int(true[1]))}:
        return _DROP
    if len(true) == 1 and len(read) == 2 and true in read:
        return _ADD
    weight = _FLOOR
    # a leading 0 is dropped when read: 00 misread as 08 is read 8
    shown = "0" + read if len(true) == 2 and len(read) == 1 else read
    if len(true) == len(shown):
        similar = [_digit_similarity(a, b) for a, b in zip(true, shown, strict=True)]
        if all(s > 0 for s in similar):
            weight = max(weight, _SUBSTITUTE * float(np.prod(similar)))
        elif sum(a != b for a, b in zip(true, shown, strict=True)) == 1:
            weight = max(weight, _ONE_DIGIT)
        if len(true) == 2 and true == shown[::-1]:
            weight = max(weight, _REVERSED)
    return weight


@lru_cache(maxsize=1)
def _weights() -> np.ndarray:
    weights = np.array([[misread_weight(t, r) for r in NUMBERS] for t in NUMBERS])
    weights.flags.writeable = False
    return weights


@lru_cache(maxsize=16)
def confusion_matrix(misread_rate: float) -> np.ndarray:
    """``C[t, r]``: probability that a read of number ``NUMBERS[t]`` shows ``NUMBERS[r]``.

    Off-diagonal entries are :func:`misread_weight` times one constant, chosen so that the
    average misread rate over all numbers is ``misread_rate``; so ``C`` is symmetric
    wherever :func:`misread_weight` is. Rows sum to 1 (unreadable reads are not modelled:
    they carry no evidence). Read-only.

    Raises:
        ValueError: ``misread_rate`` outside (0, 0.35].
    """
    if not 0.0 < misread_rate <= 0.35:
        raise ValueError(f"misread_rate must be in (0, 0.35], got {misread_rate}")
    weights = _weights()
    n = len(NUMBERS)
    matrix = weights * (misread_rate / weights.sum(axis=1).mean())
    matrix[np.arange(n), np.arange(n)] = 1.0 - matrix.sum(axis=1)
    matrix.flags.writeable = False
    return matrix


@lru_cache(maxsize=1)
def persistent_shares() -> np.ndarray:
    """``S[t, v]``: which wrong value ``v`` a persistently misread view of ``t`` shows.

    Only the structured confusions of :func:`misread_weight` (a dropped digit, similar
    digits, reversed digits, an added digit) repeat over a view; a reader does not keep
    reading 45 for 7, nor 64 for 66. Rows sum to 1 (a number without any structured
    confusion: 0). Read-only.
    """
    weights = _weights()
    structured = np.where(
        (weights > 0) & (weights != _ONE_DIGIT) & (weights > _FLOOR), weights, 0.0
    )
    totals = structured.sum(axis=1, keepdims=True)
    shares = np.divide(structured, totals, out=np.zeros_like(structured), where=totals > 0)
    shares.flags.writeable = False
    return shares


def run_loglik(
    reads: Sequence[int] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    confusion: np.ndarray,
    persistent: float,
    persistence: float = 0.85,
) -> np.ndarray:
    """Log-likelihood of one run of reads (one view of the number) for every number.

    A run is either read independently (probability ``1 - persistent``; each read drawn
    from ``confusion``) or persistently misread: one wrong value ``v`` (drawn from
    :func:`persistent_shares`) shows on each read with probability ``persistence``, the
    other reads being drawn as usual. Each read's log term is multiplied by its weight
    (its confidence and IoS), so a doubtful read counts less. A run that repeats one
    value is therefore worth little more than its first read against a number that is
    often misread as that value (7 against 2), and much more against one that is not.

    Args:
        reads: indices into :data:`NUMBERS`.
        weights: one per read, in [0, 1].
        confusion: :func:`confusion_matrix`.
        persistent: prior probability that a run is persistently misread, in [0, 1).
        persistence: share of a persistent run's reads that show its wrong value, (0, 1).

    Returns:
        float64 ``(len(NUMBERS),)``; zeros for an empty run.
    """
    idx = np.asarray(reads, dtype=np.int64).reshape(-1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    if idx.size == 0:
        return np.zeros(confusion.shape[0])
    log_c = np.log(confusion[:, idx])  # (numbers, reads)
    independent = log_c @ w
    if persistent <= 0.0:
        return independent
    shares = persistent_shares()
    escape = np.log1p(-persistence) + log_c  # a read that does not show the run's value
    values = np.unique(idx)
    with np.errstate(divide="ignore"):
        terms = [
            np.log(shares[:, v]) + np.where(idx == v, np.log(persistence), escape) @ w
            for v in values
        ]
        rest = np.clip(1.0 - shares[:, values].sum(axis=1), 0.0, 1.0)
        terms.append(np.log(rest) + escape @ w)
    persistent_ll = np.logaddexp.reduce(np.stack(terms), axis=0)
    return np.logaddexp(np.log1p(-persistent) + independent, np.log(persistent) + persistent_ll)


def split_runs(frames: Sequence[int] | np.ndarray, max_gap: int) -> np.ndarray:
    """Run index of each read: reads of frames (sorted) no more than ``max_gap`` apart
    belong to one run (one view of the number)."""
    f = np.asarray(frames, dtype=np.int64).reshape(-1)
    if f.size == 0:
        return np.zeros(0, dtype=np.int64)
    return np.r_[0, np.cumsum(np.diff(f) > max_gap)].astype(np.int64)


def number_loglik(
    reads: Sequence[int] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    runs: Sequence[int] | np.ndarray,
    confusion: np.ndarray,
    persistent: float,
) -> np.ndarray:
    """Sum of :func:`run_loglik` over the runs (``runs[i]`` is read ``i``'s run)."""
    idx = np.asarray(reads, dtype=np.int64).reshape(-1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1)
    r = np.asarray(runs, dtype=np.int64).reshape(-1)
    total = np.zeros(confusion.shape[0])
    for run in np.unique(r):
        keep = r == run
        total += run_loglik(idx[keep], w[keep], confusion, persistent)
    return total


def vote_team(
    clusters: Sequence[int] | np.ndarray, confidences: Sequence[float] | np.ndarray
) -> tuple[int | None, float]:
    """A track's team cluster from the votes of crops sampled along it.

    Resolve's ``team_cluster`` and ``team_confidence``; its posterior policy weighs the
    same votes with :func:`team_loglik`.

    Each vote counts with its confidence. The result's confidence is the weighted margin
    ``|sum(conf of 0) - sum(conf of 1)| / number of votes`` in [0, 1], so one vote at 0.2
    gives 0.2 and many agreeing confident votes approach 1. When every vote has confidence
    0 the plain majority decides with confidence 0; an exact tie gives ``(None, 0.0)``, as
    does no vote at all.

    Raises:
        ValueError: lengths differ, a cluster other than 0/1, a confidence outside [0, 1].
    """
    labels = np.asarray(clusters, dtype=np.int64).reshape(-1)
    weights = np.asarray(confidences, dtype=np.float64).reshape(-1)
    if labels.shape != weights.shape:
        raise ValueError(f"{labels.size} clusters but {weights.size} confidences")
    if labels.size == 0:
        return None, 0.0
    if not np.isin(labels, (0, 1)).all():
        raise ValueError(f"clusters must be 0 or 1; got {sorted(set(labels.tolist()))}")
    if not (np.isfinite(weights).all() and (weights >= 0).all() and (weights <= 1).all()):
        raise ValueError("confidences must be in [0, 1]")
    signed = float(np.where(labels == 0, weights, -weights).sum())
    if signed != 0:
        return (0 if signed > 0 else 1), min(1.0, abs(signed) / labels.size)
    zeros = int((labels == 0).sum())
    ones = labels.size - zeros
    if zeros == ones:
        return None, 0.0
    return (0 if zeros > ones else 1), 0.0


def team_loglik(
    votes: Sequence[int] | np.ndarray,
    weights: Sequence[float] | np.ndarray,
    vote_weight: float,
) -> np.ndarray:
    """Log-likelihood of clusters ``(0, 1)`` from a track's cluster votes.

    A vote of weight ``w`` (the team model's confidence times the crop's own-mask share)
    names the track's cluster with probability ``sigmoid(vote_weight * w)``: a vote of
    weight 0 says nothing, and each full vote moves the log-odds by ``vote_weight`` nats.

    Returns:
        float64 ``(2,)``; zeros without votes.
    """
    labels = np.asarray(votes, dtype=np.int64).reshape(-1)
    w = np.asarray(weights, dtype=np.float64).reshape(-1) * vote_weight
    out = np.zeros(2)
    for cluster in (0, 1):
        signed = np.where(labels == cluster, w, -w)
        out[cluster] = -float(np.logaddexp(0.0, -signed).sum())  # log sigmoid
    return out


def roster_log_prior(rosters: Sequence[frozenset[str] | None], off_roster: float) -> np.ndarray:
    """Log prior over (team slot, number), ``(len(rosters), len(NUMBERS))``.

    Each slot is equally likely. Within a slot with a roster, the roster's numbers share
    ``1 - off_roster`` and every other number shares ``off_roster``; a slot without a
    roster (None or empty) is uniform over all numbers.
    """
    n = len(NUMBERS)
    out = np.full((len(rosters), n), -np.log(n))
    for k, roster in enumerate(rosters):
        on = np.zeros(n, dtype=bool)
        for number in roster or ():
            if number in NUMBER_INDEX:
                on[NUMBER_INDEX[number]] = True
        count = int(on.sum())
        if 0 < count < n:
            with np.errstate(divide="ignore"):
                out[k] = np.where(
                    on,
                    np.log1p(-off_roster) - np.log(count),
                    np.log(off_roster) - np.log(n - count),
                )
    return out - np.log(max(len(rosters), 1))


def pair_posterior(log_prior: np.ndarray, team_ll: np.ndarray, number_ll: np.ndarray) -> np.ndarray:
    """Posterior ``(slots, numbers)`` from the log prior, the slots' and the numbers'
    log-likelihoods (team and number evidence are independent given the pair)."""
    joint = log_prior + team_ll[:, None] + number_ll[None, :]
    joint = joint - joint.max()
    probs = np.exp(joint)
    return probs / probs.sum()


def switch_weights(log_odds: Sequence[float]) -> np.ndarray:
    """Posterior weights of "no swap" and of each possible swap of players, from each
    swap's posterior log-odds against no swap (at most one swap per track is modelled).

    Returns:
        float64 ``(1 + len(log_odds),)``, summing to 1: ``[no swap, swap 1, ...]``.
    """
    logs = np.r_[0.0, np.asarray(log_odds, dtype=np.float64)]
    weights = np.exp(logs - logs.max())
    return weights / weights.sum()


@dataclass(frozen=True)
class PairDecision:
    """The best pair of a posterior and whether it is confirmed.

    Attributes:
        slot, number: the best pair (slot index, index into :data:`NUMBERS`).
        posterior: its probability.
        runner_slot, runner_number: the second best pair.
        margin: ``posterior`` minus the runner-up's probability.
        confirmed: ``posterior >= min_posterior`` and ``margin >= min_margin``, and the
            best is strictly ahead (an exact tie is never confirmed).
    """

    slot: int
    number: int
    posterior: float
    runner_slot: int
    runner_number: int
    margin: float
    confirmed: bool


def decide_pair(probs: np.ndarray, min_posterior: float, min_margin: float) -> PairDecision:
    """Best pair, runner-up and confirmation of a :func:`pair_posterior` (ties: the lower
    slot, then the lower number index, is reported as the best)."""
    flat = probs.reshape(-1)
    order = np.argsort(-flat, kind="stable")
    best, runner = int(order[0]), int(order[1]) if flat.size > 1 else int(order[0])
    p1 = float(flat[best])
    p2 = float(flat[runner]) if runner != best else 0.0
    margin = p1 - p2
    width = probs.shape[1]
    return PairDecision(
        slot=best // width,
        number=best % width,
        posterior=p1,
        runner_slot=runner // width,
        runner_number=runner % width,
        margin=margin,
        confirmed=p1 >= min_posterior and margin >= min_margin and margin > 0,
    )
