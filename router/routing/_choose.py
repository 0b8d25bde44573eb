"""Pure selection helpers for balance and split nodes.

- :func:`power_of_two` ("power of two choices"): sample two candidates, keep the
  cheaper. Nearly as good as scanning for the best, without every request herding onto
  the same momentarily-best target.
- :func:`choose_latency` and :func:`choose_least_connections` apply it to live
  :class:`~router._stats.TargetState`.
- :func:`weighted_rendezvous`: sticky split arms by weighted highest-random-weight
  hashing, so changing one arm's weight moves only the keys that must move.

Randomness comes from an injected ``random.Random``, so a seeded test is exact.
Candidates are what the caller may try (breakers already asked); none of these
functions ever returns anything else.
"""

from __future__ import annotations

import hashlib
import math
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    import random
    from collections.abc import Callable, Sequence

    from ._stats import TargetState

__all__ = [
    "power_of_two",
    "latency_cost",
    "choose_latency",
    "choose_least_connections",
    "weighted_rendezvous",
]

T = TypeVar("T")

_TOP_53 = 2.0**53  # a double holds 53 bits exactly: more would round h up to 1.0


def power_of_two(candidates: Sequence[T], cost: Callable[[T], float], rng: random.Random) -> T:
    """The cheaper of two distinct candidates drawn at random (the only one if just one).

    Ties go to a uniformly random one of the two: the pair comes from ``rng.sample``
    in random order, so keeping the first drawn on a tie is already a fair coin.

    Raises:
        ValueError: no candidates.
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    if len(candidates) == 1:
        return candidates[0]
    i, j = rng.sample(range(len(candidates)), 2)
    first, second = candidates[i], candidates[j]
    return second if cost(second) < cost(first) else first


def latency_cost(state: TargetState) -> float:
    """The latency strategy's cost: the latency estimate times (in-flight + 1).

    The in-flight factor (as in Finagle's "peak EWMA") keeps the fastest target from
    taking all the traffic until it slows down: a busy fast target loses to an idle one
    a little slower. A target with no samples costs 0, so a new target is tried early.
    Failures raise the estimate (see :class:`~router._stats.LatencyStats`), so a target
    that fails fast costs more than a slow healthy one.
    """
    estimate = state.stats.estimate()
    if estimate is None:
        return 0.0
    return estimate * (state.in_flight + 1)


def choose_latency(
    candidates: Sequence[T],
    state_of: Callable[[T], TargetState],
    rng: random.Random,
    epsilon: float = 0.05,
) -> T:
    """A candidate by latency, exploring with probability ``epsilon``.

    With probability ``epsilon`` the pick is uniform over the candidates instead of
    power-of-two on :func:`latency_cost`. That is how a recovered target gets noticed:
    its estimate only moves when it serves, and P2C would never pick it while a cheaper
    target shares its pair. Every candidate thus gets at least ``epsilon / n`` of the
    picks, whose successes pull its estimate back down (by ``1 - alpha`` each).

    Raises:
        ValueError: no candidates.
    """
    if not candidates:
        raise ValueError("no candidates to choose from")
    if rng.random() < epsilon:
        return rng.choice(candidates)
    return power_of_two(candidates, lambda c: latency_cost(state_of(c)), rng)


def choose_least_connections(
    candidates: Sequence[T], state_of: Callable[[T], TargetState], rng: random.Random
) -> T:
    """Power-of-two on in-flight requests, ties at random.

    Raises:
        ValueError: no candidates.
    """
    return power_of_two(candidates, lambda c: state_of(c).in_flight, rng)


def weighted_rendezvous(key: str, arms: Sequence[str], weights: Sequence[float]) -> int:
    """The index of the arm ``key`` sticks to, by weighted rendezvous hashing.

    Each arm scores ``-weight / ln(h)`` with ``h`` a stable hash of (key, arm) in (0, 1);
    the highest score wins. ``-1 / ln(h)`` of a uniform ``h`` is a draw whose maximum
    over arms lands on each arm in proportion to its weight, and a key's score for one
    arm does not depend on the other arms. So raising arm B's weight only moves keys to
    B, lowering it only moves keys away from B, and adding or removing an arm moves
    only the keys of that arm. Arms with weight 0 never win.

    The hash is BLAKE2b, not ``hash()``, which is salted per process: a key must land
    on the same arm after a restart and on every replica.

    Raises:
        ValueError: arms and weights differ in length, or no weight is positive.
    """
    if len(arms) != len(weights):
        raise ValueError(f"{len(arms)} arms but {len(weights)} weights")
    best, best_score = -1, 0.0
    for index, (arm, weight) in enumerate(zip(arms, weights, strict=True)):
        if weight <= 0:
            continue
        score = -weight / math.log(_unit_hash(key, arm))
        if best < 0 or score > best_score:
            best, best_score = index, score
    if best < 0:
        raise ValueError("no arm has a positive weight")
    return best


def _unit_hash(key: str, arm: str) -> float:
    """A stable hash of (key, arm), uniform in the open interval (0, 1)."""
    digest = hashlib.blake2b(digest_size=8, person=b"llm-router-split")
    # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
    for part in (key.encode(), arm.encode()):
        digest.update(len(part).to_bytes(8, "big"))
        digest.update(part)
    top = int.from_bytes(digest.digest(), "big") >> 11
    return (top + 0.5) / _TOP_53
