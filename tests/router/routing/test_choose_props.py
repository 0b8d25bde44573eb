"""Sticky-split hashing (weighted rendezvous) by property, over any arms, weights and keys.

A key's arm depends only on the key and that arm's name and weight, so the arm it
sticks to is the same on every call, in any order of the arms, and changing the arms
moves only the keys that must move. Shares follow the weights over a fixed set of keys
(so the check is exact and the same on every run).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING

from hypothesis import given, settings
from hypothesis import strategies as st

from router.routing._choose import weighted_rendezvous

if TYPE_CHECKING:
    import random

ARMS = st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=6, unique=True)
KEYS = st.lists(st.text(max_size=12), min_size=1, max_size=30)
WEIGHT = st.sampled_from([0.0, 0.5, 1.0, 2.0, 3.0, 10.0, 99.0]) | st.floats(0.01, 1000.0)


@st.composite
def splits(draw: st.DrawFn) -> tuple[list[str], list[float]]:
    """Arms and their weights, at least one of them positive."""
    arms = draw(ARMS)
    weights = draw(st.lists(WEIGHT, min_size=len(arms), max_size=len(arms)))
    if not any(w > 0 for w in weights):
        weights[draw(st.integers(0, len(arms) - 1))] = 1.0
    return arms, weights


def arm_of(key: str, arms: list[str], weights: list[float]) -> str:
    return arms[weighted_rendezvous(key, arms, weights)]


@given(splits(), KEYS, st.randoms(use_true_random=False))
def test_a_key_sticks_to_one_arm_whatever_the_order_of_the_arms(
    split: tuple[list[str], list[float]], keys: list[str], rng: random.Random
) -> None:
    arms, weights = split
    pairs = list(zip(arms, weights, strict=True))
    rng.shuffle(pairs)
    shuffled = [a for a, _ in pairs], [w for _, w in pairs]
    for key in keys:
        arm = arm_of(key, arms, weights)
        assert arm_of(key, arms, weights) == arm
        assert arm_of(key, *shuffled) == arm
        assert weights[arms.index(arm)] > 0  # an arm of weight 0 never wins


@given(splits(), KEYS, st.data())
def test_removing_an_arm_moves_only_the_keys_that_were_on_it(
    split: tuple[list[str], list[float]], keys: list[str], data: st.DataObject
) -> None:
    arms, weights = split
    gone = data.draw(st.integers(0, len(arms) - 1))
    rest = [a for i, a in enumerate(arms) if i != gone]
    rest_weights = [w for i, w in enumerate(weights) if i != gone]
    if not any(w > 0 for w in rest_weights):
        return  # nothing left to stick to
    for key in keys:
        before = arm_of(key, arms, weights)
        if before != arms[gone]:
            assert arm_of(key, rest, rest_weights) == before


@given(splits(), KEYS, st.data(), WEIGHT)
def test_changing_one_weight_moves_keys_only_to_or_only_from_that_arm(
    split: tuple[list[str], list[float]], keys: list[str], data: st.DataObject, weight: float
) -> None:
    arms, weights = split
    changed = data.draw(st.integers(0, len(arms) - 1))
    new_weights = [weight if i == changed else w for i, w in enumerate(weights)]
    if not any(w > 0 for w in new_weights):
        return
    arm = arms[changed]
    for key in keys:
        before, after = arm_of(key, arms, weights), arm_of(key, arms, new_weights)
        if before == after:
            continue
        if weight > weights[changed]:
            assert after == arm  # raised: keys move only to it
        else:
            assert before == arm  # lowered: keys move only away from it


SAMPLE = [f"user-{i}" for i in range(3000)]


@settings(max_examples=15)
@given(st.lists(st.integers(1, 20), min_size=2, max_size=4))
def test_shares_follow_the_weights(weights: list[int]) -> None:
    arms = [f"arm-{i}" for i in range(len(weights))]
    picks = Counter(weighted_rendezvous(key, arms, weights) for key in SAMPLE)
    n, total = len(SAMPLE), sum(weights)
    for i, w in enumerate(weights):
        p = w / total
        # A fixed sample: a deviation under 4.5 binomial sigmas holds on every run.
        assert abs(picks[i] - n * p) <= 4.5 * math.sqrt(n * p * (1 - p))
