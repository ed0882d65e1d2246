"""Confirm a per-track value (a jersey number) from several noisy reads.

A single read is unreliable (a 2 looks like a 7, 23 like 25), so a value is confirmed
for a track only after several reads agree. Once confirmed it stays until the track is
reset; later reads still count in the statistics but never change it.

Values are compared as given: normalise them first (:func:`hoopray.numbers.normalise_number`).
``None`` and blank strings are unreadable reads: they neither count nor break a streak.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable


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
