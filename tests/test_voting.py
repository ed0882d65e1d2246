from __future__ import annotations

import numpy as np
import pytest

from hoopray.voting import (
    NUMBER_INDEX,
    NUMBERS,
    MajorityVoter,
    StreakVoter,
    Voter,
    VoteStats,
    confusion_matrix,
    decide_pair,
    make_voter,
    misread_weight,
    number_loglik,
    pair_posterior,
    persistent_shares,
    roster_log_prior,
    run_loglik,
    split_runs,
    switch_weights,
    team_loglik,
    vote_team,
)


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


# --------------------------------------------------------------------------- posterior

C = confusion_matrix(0.2)
IX = NUMBER_INDEX


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("2", "7"),
        ("3", "8"),
        ("1", "7"),
        ("5", "6"),
        ("0", "8"),
        ("23", "28"),  # 3/8 in the second digit
        ("23", "73"),  # 2/7 in the first
        ("38", "83"),  # 3/8 in both, or reversed
        ("23", "32"),  # reversed
        ("23", "43"),  # any one digit
        ("23", "45"),  # unrelated: the floor
        ("00", "80"),
    ],
)
def test_confusion_is_symmetric_for_substitutions(a: str, b: str) -> None:
    assert C[IX[a], IX[b]] == pytest.approx(C[IX[b], IX[a]], rel=1e-12)
    assert misread_weight(a, b) == misread_weight(b, a) > 0


@pytest.mark.parametrize(
    ("true", "read", "likelier_than"),
    [
        ("23", "2", ("2", "23")),  # a dropped digit, not an added one
        ("23", "3", ("3", "23")),
        ("00", "0", ("0", "00")),
        ("10", "1", ("1", "10")),
        ("00", "8", ("00", "45")),  # 00 read as 08: read 8
        ("2", "7", ("2", "4")),  # similar digits before any digit
        ("23", "43", ("23", "45")),  # one digit before two
    ],
)
def test_confusion_asymmetric_and_ordered_cases(
    true: str, read: str, likelier_than: tuple[str, str]
) -> None:
    other_true, other_read = likelier_than
    assert C[IX[true], IX[read]] > C[IX[other_true], IX[other_read]]


@pytest.mark.parametrize("rate", [0.05, 0.2, 0.35])
def test_confusion_matrix_rows(rate: float) -> None:
    matrix = confusion_matrix(rate)
    assert matrix.shape == (len(NUMBERS), len(NUMBERS)) == (101, 101)
    np.testing.assert_allclose(matrix.sum(axis=1), 1.0)
    assert (matrix > 0).all() and (matrix.diagonal() > 0.3).all()
    assert 1 - matrix.diagonal().mean() == pytest.approx(rate)
    assert not matrix.flags.writeable
    shares = persistent_shares()
    np.testing.assert_allclose(shares.sum(axis=1), 1.0)
    assert shares[IX["7"], IX["45"]] == 0 and shares[IX["23"], IX["2"]] > 0


@pytest.mark.parametrize(("rate", "error"), [(0.0, ValueError), (0.4, ValueError)])
def test_confusion_matrix_rejects_bad_rates(rate: float, error: type) -> None:
    with pytest.raises(error):
        confusion_matrix(rate)


@pytest.mark.parametrize(
    ("true", "read", "weight"),
    [("23", "23", 0.0), ("23", "2", 1.0), ("2", "23", 0.01), ("2", "7", 0.8), ("23", "45", 0.01)],
)
def test_misread_weight(true: str, read: str, weight: float) -> None:
    assert misread_weight(true, read) == pytest.approx(weight)


@pytest.mark.parametrize("bad", [("23", "123"), ("x", "2"), ("07", "7")])
def test_misread_weight_rejects_non_numbers(bad: tuple[str, str]) -> None:
    with pytest.raises(KeyError):
        misread_weight(*bad)


@pytest.mark.parametrize(
    ("frames", "gap", "runs"),
    [
        ([], 10, []),
        ([5], 10, [0]),
        ([0, 5, 10, 40, 45, 100], 10, [0, 0, 0, 1, 1, 2]),
        ([0, 0, 5], 4, [0, 0, 1]),
        ([0, 10, 20], 10, [0, 0, 0]),
    ],
)
def test_split_runs(frames: list[int], gap: int, runs: list[int]) -> None:
    assert split_runs(frames, gap).tolist() == runs


def test_run_loglik_edge_cases() -> None:
    assert (run_loglik([], [], C, 0.2) == 0).all()
    reads, weights = [IX["7"]] * 4, [0.9] * 4
    independent = np.log(C[:, reads]) @ np.asarray(weights)
    np.testing.assert_allclose(run_loglik(reads, weights, C, 0.0), independent)
    np.testing.assert_allclose(run_loglik(reads, [0.0] * 4, C, 0.2), 0.0, atol=1e-12)


@pytest.mark.parametrize("k", [1, 3, 8])
def test_a_repeated_read_is_worth_little_more_against_a_lookalike(k: int) -> None:
    """A run of k reads of 7 against 2 (7 and 2 alike): bounded by the persistent
    misread's odds, however long; against 45 (no structured confusion) it grows."""
    run = run_loglik([IX["7"]] * k, [1.0] * k, C, 0.2)
    lookalike = run[IX["7"]] - run[IX["2"]]
    unrelated = run[IX["7"]] - run[IX["45"]]
    assert 0 < lookalike < 6
    assert unrelated > lookalike and unrelated > 4 * k
    total = number_loglik([IX["7"]] * 2 * k, [1.0] * 2 * k, [0] * k + [1] * k, C, 0.2)
    assert total[IX["7"]] - total[IX["2"]] == pytest.approx(2 * lookalike)  # two views count


@pytest.mark.parametrize(
    ("votes", "weights", "expected"),
    [
        ([], [], (0.0, 0.0)),
        ([0], [0.0], (-np.log(2), -np.log(2))),  # a vote of weight 0 says nothing
        ([0, 1], [1.0, 1.0], (None, None)),  # opposite votes cancel
        ([0, 0], [1.0, 1.0], (None, None)),
    ],
)
def test_team_loglik(votes: list[int], weights: list[float], expected: tuple) -> None:
    got = team_loglik(votes, weights, 0.5)
    if expected[0] is not None:
        np.testing.assert_allclose(got, expected)
    elif votes == [0, 1]:
        assert got[0] == pytest.approx(got[1])
    else:
        assert got[0] - got[1] == pytest.approx(2 * 0.5)  # 0.5 nats per full vote


def test_roster_log_prior() -> None:
    prior = np.exp(roster_log_prior([frozenset({"7", "23"}), None], 0.02))
    assert prior.sum() == pytest.approx(1.0)
    assert prior[0, [IX["7"], IX["23"]]].sum() == pytest.approx(0.5 * 0.98)
    assert prior[0, IX["7"]] == pytest.approx(prior[0, IX["23"]])
    np.testing.assert_allclose(prior[1], 0.5 / 101)
    assert np.exp(roster_log_prior([frozenset()], 0.02)).sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("probs", "min_posterior", "min_margin", "confirmed"),
    [
        ([[0.5, 0.5]], 0.0, 0.0, False),  # an exact tie is never confirmed
        ([[0.9, 0.1]], 0.9, 0.8, True),
        ([[0.9, 0.1]], 0.95, 0.0, False),
        ([[0.6, 0.1], [0.3, 0.0]], 0.5, 0.5, False),  # leads by 0.3 only
        ([[1.0]], 0.9, 0.5, True),  # one pair
    ],
)
def test_decide_pair(
    probs: list[list[float]], min_posterior: float, min_margin: float, confirmed: bool
) -> None:
    decision = decide_pair(np.asarray(probs), min_posterior, min_margin)
    assert decision.confirmed is confirmed
    assert (decision.slot, decision.number) == (0, 0)


def test_pair_posterior_combines_team_and_numbers() -> None:
    prior = roster_log_prior([frozenset({"11"}), frozenset({"7"})], 0.02)
    probs = pair_posterior(prior, np.zeros(2), np.zeros(101))
    assert probs.sum() == pytest.approx(1.0) and probs[0, IX["11"]] == pytest.approx(0.49)
    reads = number_loglik([IX["11"]] * 3, [1.0] * 3, [0, 0, 0], C, 0.2)
    probs = pair_posterior(prior, team_loglik([1] * 4, [1.0] * 4, 0.5), reads)
    best = decide_pair(probs, 0.5, 0.0)
    assert (best.slot, NUMBERS[best.number]) == (0, "11")  # the number outweighs the votes


@pytest.mark.parametrize(
    ("log_odds", "weights"),
    [([], [1.0]), ([0.0], [0.5, 0.5]), ([-800.0], [1.0, 0.0]), ([800.0], [0.0, 1.0])],
)
def test_switch_weights(log_odds: list[float], weights: list[float]) -> None:
    np.testing.assert_allclose(switch_weights(log_odds), weights, atol=1e-12)


# --------------------------------------------------------------------------- team votes


@pytest.mark.parametrize(
    ("clusters", "confidences", "expected"),
    [
        ([], [], (None, 0.0)),
        ([1], [0.2], (1, 0.2)),
        ([0, 0, 0], [0.9, 0.9, 0.9], (0, 0.9)),
        ([0, 0, 1], [0.9, 0.9, 0.9], (0, 0.3)),
        ([0, 1, 1], [0.9, 0.2, 0.2], (0, (0.9 - 0.4) / 3)),
        ([0, 1], [0.5, 0.5], (None, 0.0)),
        ([0, 1, 1], [0.0, 0.0, 0.0], (1, 0.0)),
        ([0, 1], [0.0, 0.0], (None, 0.0)),
    ],
)
def test_vote_team(clusters: list[int], confidences: list[float], expected: tuple) -> None:
    cluster, confidence = vote_team(np.array(clusters, np.int8), np.array(confidences))
    assert cluster == expected[0]
    assert confidence == pytest.approx(expected[1])


@pytest.mark.parametrize(
    ("clusters", "confidences", "match"),
    [
        ([0, 1], [0.5], "confidences"),
        ([0, 2], [0.5, 0.5], "0 or 1"),
        ([0], [1.5], r"\[0, 1\]"),
        ([0], [np.nan], r"\[0, 1\]"),
    ],
)
def test_vote_team_errors(clusters: list[int], confidences: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        vote_team(clusters, confidences)
