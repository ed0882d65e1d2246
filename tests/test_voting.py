from __future__ import annotations

import pytest

from hoopray.voting import MajorityVoter, StreakVoter, Voter, VoteStats, make_voter


def _feed(voter: Voter, reads: list[str | None], track_id: int = 1) -> list[str | None]:
    """One update per read for a single track; the confirmed value after each."""
    return [voter.update([track_id], [value])[0] for value in reads]


@pytest.mark.parametrize(
    ("n", "reads", "expected"),
    [
        (3, [], []),
        (3, ["23", "23", "23"], [None, None, "23"]),
        (1, ["7"], ["7"]),
        (3, ["23", None, "23", None, "23"], [None, None, None, None, "23"]),  # None skipped
        (3, ["23", "23", "25", "23", "23"], [None] * 5),  # a different read restarts
        (3, ["23", "23", "25", "25", "25"], [None, None, None, None, "25"]),
        (3, ["23", "23", "23", "25", "25", "25"], [None, None, "23", "23", "23", "23"]),
        (2, ["", "  ", "8", " 8 "], [None, None, None, "8"]),  # blank = unreadable
        (3, [None, None, None], [None, None, None]),
    ],
)
def test_streak_voter(n: int, reads: list[str | None], expected: list[str | None]) -> None:
    voter = StreakVoter(n)
    assert _feed(voter, reads) == expected
    assert voter.confirmed(1) == expected[-1] if expected else voter.confirmed(1) is None


@pytest.mark.parametrize(
    ("n", "min_share", "reads", "confidences", "expected"),
    [
        (3, 0.6, [], [], []),
        (3, 0.6, ["23", "23", "23"], None, [None, None, "23"]),
        # a stray misread delays but does not restart (a streak would need 3 more)
        (3, 0.6, ["23", "23", "25", "23"], None, [None, None, None, "23"]),
        # 3 of 5 = 0.6 share: confirmed exactly at the threshold
        (3, 0.6, ["23", "25", "23", "25", "23"], None, [None] * 4 + ["23"]),
        (3, 0.7, ["23", "25", "23", "25", "23"], None, [None] * 5),
        # weights: 25 read confidently twice outweighs three weak 23s
        (3, 0.6, ["23", "25", "23", "25", "23"], [0.1, 0.9, 0.1, 0.9, 0.1], [None] * 5),
        (2, 0.6, ["25", "23", "25"], [0.9, 0.1, 0.9], [None, None, "25"]),
        # leader needs n reads of its own, whatever its weight
        (3, 0.5, ["23", "23"], [1.0, 1.0], [None, None]),
        # all weights zero: nothing confirmed
        (1, 0.6, ["23", "23"], [0.0, 0.0], [None, None]),
        # an exact tie in weight has no leader (else 23 would pass at the third read)
        (2, 0.5, ["23", "25", "23", "25"], [1.0, 2.0, 1.0, 0.0], [None] * 4),
        (2, 0.5, ["23", "25", "23", "25"], None, [None, None, "23", "23"]),
        (2, 0.5, ["23", "25", "25", "23"], None, [None, None, "25", "25"]),
        (3, 0.6, [None, "5", None, "5", "5"], None, [None, None, None, None, "5"]),
    ],
)
def test_majority_voter(
    n: int,
    min_share: float,
    reads: list[str | None],
    confidences: list[float] | None,
    expected: list[str | None],
) -> None:
    voter = MajorityVoter(n, min_share)
    result = [
        voter.update([1], [value], None if confidences is None else [confidences[i]])[0]
        for i, value in enumerate(reads)
    ]
    assert result == expected


@pytest.mark.parametrize("cls", [StreakVoter, MajorityVoter])
def test_tracks_are_independent_and_batched_in_order(cls: type) -> None:
    voter = cls(2)
    assert voter.update([1, 2, 1], ["4", "9", "4"]) == [None, None, "4"]
    assert voter.update([2, 3], ["9", None]) == ["9", None]
    assert voter.update([], []) == []
    assert voter.confirmed_map() == {1: "4", 2: "9"}
    assert voter.confirmed(3) is None
    assert voter.confirmed(99) is None
    snapshot = voter.confirmed_map()
    snapshot[5] = "1"
    assert 5 not in voter.confirmed_map()


@pytest.mark.parametrize("cls", [StreakVoter, MajorityVoter])
def test_stats(cls: type) -> None:
    voter = cls(2)
    assert voter.stats(1) == VoteStats(0, 0, None)
    voter.update([1], ["3"])  # update 0
    voter.update([1], [None])  # update 1
    assert voter.stats(1) == VoteStats(1, 1, None)
    voter.update([1, 2], ["3", "8"])  # update 2: confirms track 1
    voter.update([1], ["8"])  # later reads count but do not change the value
    voter.update([1], ["3"])
    assert voter.stats(1) == VoteStats(reads_seen=4, reads_agreeing=3, confirmed_at_update=2)
    assert voter.confirmed(1) == "3"
    assert voter.stats(2) == VoteStats(1, 1, None)


def test_streak_stats_count_the_current_streak() -> None:
    voter = StreakVoter(5)
    _feed(voter, ["3", "3", "8", "3"])
    assert voter.stats(1) == VoteStats(4, 1, None)


def test_majority_stats_follow_the_leader() -> None:
    voter = MajorityVoter(5)
    _feed(voter, ["3", "8", "8", "3", "8"])
    assert voter.stats(1) == VoteStats(5, 3, None)


@pytest.mark.parametrize("cls", [StreakVoter, MajorityVoter])
def test_reset(cls: type) -> None:
    voter = cls(1)
    voter.update([1, 2], ["4", "5"])
    voter.reset(1)
    voter.reset(42)
    assert voter.confirmed(1) is None
    assert voter.stats(1) == VoteStats()
    assert voter.confirmed_map() == {2: "5"}
    assert voter.update([1], ["6"]) == ["6"]
    assert voter.stats(1).confirmed_at_update == 1
    voter.reset_all()
    assert voter.confirmed_map() == {}
    voter.update([7], ["1"])
    assert voter.stats(7).confirmed_at_update == 0


@pytest.mark.parametrize("cls", [StreakVoter, MajorityVoter])
@pytest.mark.parametrize(
    ("track_ids", "values", "confidences"),
    [
        ([1, 2], ["3"], None),
        ([1], ["3"], [0.5, 0.5]),
        ([1], ["3"], [-0.1]),
        ([1], ["3"], [float("nan")]),
    ],
)
def test_update_errors(
    cls: type, track_ids: list[int], values: list[str | None], confidences: list[float] | None
) -> None:
    voter = cls(1)
    with pytest.raises(ValueError):
        voter.update(track_ids, values, confidences)
    assert voter.confirmed_map() == {}


@pytest.mark.parametrize("cls", [StreakVoter, MajorityVoter])
def test_update_rejects_non_string_values(cls: type) -> None:
    with pytest.raises(TypeError):
        cls(1).update([1], [23])


@pytest.mark.parametrize("n", [0, -1, 1.5, True])
@pytest.mark.parametrize("cls", [StreakVoter, MajorityVoter])
def test_bad_n(cls: type, n: object) -> None:
    with pytest.raises(ValueError):
        cls(n)


@pytest.mark.parametrize("min_share", [0.0, -0.5, 1.01, float("nan")])
def test_bad_min_share(min_share: float) -> None:
    with pytest.raises(ValueError):
        MajorityVoter(3, min_share)


@pytest.mark.parametrize(
    ("policy", "n", "kw", "cls"),
    [
        ("streak", 3, {}, StreakVoter),
        ("majority", 4, {}, MajorityVoter),
        ("majority", 2, {"min_share": 0.8}, MajorityVoter),
    ],
)
def test_make_voter(policy: str, n: int, kw: dict[str, float], cls: type) -> None:
    voter = make_voter(policy, n, **kw)
    assert type(voter) is cls
    assert isinstance(voter, Voter)
    assert voter.n == n
    if "min_share" in kw:
        assert voter.min_share == kw["min_share"]


@pytest.mark.parametrize(
    ("policy", "n", "kw"),
    [
        ("vote", 3, {}),
        ("", 3, {}),
        ("streak", 3, {"min_share": 0.6}),
        ("majority", 3, {"threshold": 0.6}),
        ("streak", 0, {}),
    ],
)
def test_make_voter_errors(policy: str, n: int, kw: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        make_voter(policy, n, **kw)
