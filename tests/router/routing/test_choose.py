"""Selection helpers: power of two choices, latency and least-connections, sticky splits."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest

from router.routing._breaker import CircuitBreaker
from router.routing._choose import (
    choose_latency,
    choose_least_connections,
    latency_cost,
    power_of_two,
    weighted_rendezvous,
)
from router.routing._stats import LatencyStats, TargetState

N = 20_000


def within(count: int, n: int, p: float, sigmas: float = 4.0) -> bool:
    """``count`` successes of ``n`` is within ``sigmas`` binomial deviations of ``n * p``."""
    return abs(count - n * p) <= sigmas * math.sqrt(n * p * (1 - p))


def targets(*latencies: float | None) -> dict[str, TargetState]:
    """Targets t0, t1, ... with one latency sample each (None: no sample)."""
    out = {}
    for i, latency in enumerate(latencies):
        state = TargetState(f"p/t{i}", CircuitBreaker(5, 2, 30.0), LatencyStats())
        if latency is not None:
            state.stats.observe(latency)
        out[state.name] = state
    return out


# -- power of two choices -----------------------------------------------------------------


def test_p2c_of_two_picks_the_lower_cost() -> None:
    rng = random.Random(1)
    cost = {"a": 2.0, "b": 1.0}
    assert {power_of_two(["a", "b"], cost.__getitem__, rng) for _ in range(200)} == {"b"}


def test_p2c_never_picks_the_worst_nor_an_absent_candidate() -> None:
    rng = random.Random(2)
    cost = {"a": 1.0, "b": 2.0, "c": 3.0, "absent": -1.0}
    picks = Counter(power_of_two(["a", "b", "c"], cost.__getitem__, rng) for _ in range(3000))
    assert set(picks) == {"a", "b"}
    # a wins both pairs it is in (2/3 of draws), b wins the remaining pair (b, c).
    assert within(picks["a"], 3000, 2 / 3)


def test_p2c_single_candidate() -> None:
    rng = random.Random(3)
    before = rng.getstate()
    assert power_of_two(["only"], lambda _: 1.0, rng) == "only"
    assert rng.getstate() == before  # nothing to draw


def test_p2c_no_candidates() -> None:
    with pytest.raises(ValueError, match="no candidates"):
        power_of_two([], lambda _: 1.0, random.Random(0))


def test_p2c_ties_split_at_random() -> None:
    rng = random.Random(4)
    picks = Counter(power_of_two(["a", "b"], lambda _: 1.0, rng) for _ in range(N))
    assert within(picks["a"], N, 0.5)


# -- least connections ----------------------------------------------------------------------


def test_least_connections_ties_split_evenly() -> None:
    states = targets(None, None, None, None)
    rng = random.Random(5)
    names = list(states)
    picks = Counter(choose_least_connections(names, states.__getitem__, rng) for _ in range(N))
    assert set(picks) == set(names)
    assert all(within(picks[name], N, 1 / 4) for name in names)


def test_least_connections_prefers_idle_targets() -> None:
    states = targets(None, None, None, None)
    states["p/t2"].in_flight = 5
    states["p/t3"].in_flight = 5
    rng = random.Random(6)
    names = list(states)
    picks = Counter(choose_least_connections(names, states.__getitem__, rng) for _ in range(N))
    # A busy target only wins when paired with the other busy one: 1 pair in 6, a coin.
    assert within(picks["p/t2"], N, 1 / 12)
    assert within(picks["p/t0"], N, 5 / 12)


# -- latency ----------------------------------------------------------------------------


def test_latency_cost_rules() -> None:
    states = targets(None, 0.5)
    assert latency_cost(states["p/t0"]) == 0.0  # no samples: explore early
    assert latency_cost(states["p/t1"]) == 0.5
    states["p/t1"].in_flight = 3
    assert latency_cost(states["p/t1"]) == 2.0


def test_latency_busy_fast_target_yields_to_idle_slightly_slower() -> None:
    states = targets(0.1, 0.15)
    states["p/t0"].in_flight = 2
    rng = random.Random(7)
    picks = {choose_latency(list(states), states.__getitem__, rng, epsilon=0.0) for _ in range(100)}
    assert picks == {"p/t1"}


@pytest.mark.parametrize("n_good", [1, 2])
def test_latency_explores_a_bad_target_epsilon_over_n_of_the_time(n_good: int) -> None:
    states = targets(5.0, *[0.1] * n_good)  # p/t0 is bad: P2C never picks it
    names = list(states)
    rng = random.Random(8)
    picks = Counter(choose_latency(names, states.__getitem__, rng, epsilon=0.05) for _ in range(N))
    assert within(picks["p/t0"], N, 0.05 / len(names))


def test_latency_without_epsilon_never_picks_the_slow_target() -> None:
    states = targets(5.0, 0.1)
    rng = random.Random(9)
    assert all(
        choose_latency(list(states), states.__getitem__, rng, epsilon=0.0) == "p/t1"
        for _ in range(500)
    )


def test_latency_no_candidates() -> None:
    with pytest.raises(ValueError, match="no candidates"):
        choose_latency([], targets().__getitem__, random.Random(0))


# -- weighted rendezvous --------------------------------------------------------------------

KEYS = [f"user-{i}" for i in range(N)]


def test_rendezvous_shares_follow_weights() -> None:
    picks = Counter(weighted_rendezvous(key, ["a", "b"], [90, 10]) for key in KEYS)
    assert within(picks[1], N, 0.1)


def test_rendezvous_shares_three_arms() -> None:
    picks = Counter(weighted_rendezvous(key, ["a", "b", "c"], [1, 2, 5]) for key in KEYS)
    assert within(picks[0], N, 1 / 8)
    assert within(picks[1], N, 2 / 8)
    assert within(picks[2], N, 5 / 8)


def test_rendezvous_is_sticky_and_stable() -> None:
    arms, weights = ["openai/gpt-4o", "anthropic/claude"], [50.0, 50.0]
    first = [weighted_rendezvous(key, arms, weights) for key in KEYS[:500]]
    for _ in range(3):
        assert [weighted_rendezvous(key, arms, weights) for key in KEYS[:500]] == first
    # Pinned values: a change of hash would move users across a restart or a deploy.
    assert [weighted_rendezvous(f"user-{i}", arms, weights) for i in range(12)] == PINNED


PINNED = [0, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1]


def test_raising_one_weight_only_moves_keys_to_that_arm() -> None:
    arms = ["a", "b", "c"]
    before = [weighted_rendezvous(key, arms, [1, 1, 1]) for key in KEYS]
    after = [weighted_rendezvous(key, arms, [1, 3, 1]) for key in KEYS]
    moved = [(old, new) for old, new in zip(before, after, strict=True) if old != new]
    assert moved
    assert all(new == 1 for _, new in moved)
    # b goes from 1/3 to 3/5 of the keys; exactly the difference moved.
    assert within(len(moved), N, 3 / 5 - 1 / 3)


def test_lowering_one_weight_only_moves_keys_away_from_it() -> None:
    arms = ["a", "b", "c"]
    before = [weighted_rendezvous(key, arms, [2, 2, 2]) for key in KEYS]
    after = [weighted_rendezvous(key, arms, [2, 1, 2]) for key in KEYS]
    assert all(old == 1 for old, new in zip(before, after, strict=True) if old != new)


def test_adding_an_arm_only_moves_keys_to_it() -> None:
    before = [weighted_rendezvous(key, ["a", "b"], [1, 1]) for key in KEYS]
    after = [weighted_rendezvous(key, ["a", "b", "c"], [1, 1, 1]) for key in KEYS]
    assert all(new == 2 for old, new in zip(before, after, strict=True) if old != new)


def test_zero_weight_arm_never_wins() -> None:
    assert {weighted_rendezvous(key, ["a", "b"], [0, 1]) for key in KEYS[:2000]} == {1}


@pytest.mark.parametrize(("arms", "weights"), [(["a"], [1, 2]), (["a", "b"], [0, 0])])
def test_rendezvous_rejects_bad_input(arms: list[str], weights: list[float]) -> None:
    with pytest.raises(ValueError, match=r"arms|weight"):
        weighted_rendezvous("k", arms, weights)
