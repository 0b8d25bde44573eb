"""Retry delays: full-jitter backoff bounds, Retry-After, deadlines."""

from __future__ import annotations

import math
import random

import pytest

from router.routing._backoff import backoff_ceiling, backoff_delay, fits, retry_delay


@pytest.mark.parametrize("attempt", range(8))
def test_full_jitter_bounds(attempt: int) -> None:
    rng = random.Random(attempt)
    ceiling = min(5.0, 0.1 * 2.0**attempt)
    delays = [backoff_delay(attempt, 0.1, 5.0, 2.0, rng) for _ in range(2000)]
    assert all(0.0 <= d <= ceiling for d in delays)
    # Full jitter spreads over the whole interval, not just near the top.
    assert min(delays) < 0.05 * ceiling
    assert max(delays) > 0.95 * ceiling


def test_ceiling() -> None:
    assert backoff_ceiling(0, 0.1, 5.0, 2.0) == 0.1
    assert backoff_ceiling(3, 0.1, 5.0, 2.0) == pytest.approx(0.8)
    assert backoff_ceiling(6, 0.1, 5.0, 2.0) == 5.0
    assert backoff_ceiling(10_000, 0.1, 5.0, 2.0) == 5.0  # no OverflowError


def test_negative_attempt_rejected() -> None:
    with pytest.raises(ValueError, match="attempt"):
        backoff_delay(-1, 0.1, 5.0, 2.0, random.Random(0))


def test_zero_initial_means_no_wait() -> None:
    assert backoff_delay(3, 0.0, 5.0, 2.0, random.Random(0)) == 0.0


def test_deterministic_with_a_seeded_rng() -> None:
    a = [backoff_delay(n, 0.1, 5.0, 2.0, random.Random(7)) for n in range(5)]
    b = [backoff_delay(n, 0.1, 5.0, 2.0, random.Random(7)) for n in range(5)]
    assert a == b


def test_retry_after_honoured_up_to_the_cap() -> None:
    rng = random.Random(0)
    assert retry_delay(2.5, 0, 0.1, 5.0, 2.0, rng, cap=30.0) == 2.5
    assert retry_delay(0.0, 4, 0.1, 5.0, 2.0, rng, cap=30.0) == 0.0
    assert retry_delay(30.0, 0, 0.1, 5.0, 2.0, rng, cap=30.0) == 30.0
    assert retry_delay(-3.0, 0, 0.1, 5.0, 2.0, rng, cap=30.0) == 0.0


def test_retry_after_beyond_the_cap_means_do_not_retry_here() -> None:
    rng = random.Random(0)
    assert retry_delay(30.001, 0, 0.1, 5.0, 2.0, rng, cap=30.0) is None
    assert retry_delay(120.0, 0, 0.1, 5.0, 2.0, rng) is None  # the default cap, 30 s
    assert retry_delay(29.0, 0, 0.1, 5.0, 2.0, rng) == 29.0


def test_retry_after_wait_then_checked_against_the_deadline() -> None:
    delay = retry_delay(4.0, 0, 0.1, 5.0, 2.0, random.Random(0))
    assert delay == 4.0
    assert fits(deadline=10.0, now=5.0, delay=delay)
    assert not fits(deadline=8.0, now=5.0, delay=delay)


def test_no_retry_after_falls_back_to_backoff() -> None:
    expected = backoff_delay(2, 0.1, 5.0, 2.0, random.Random(3))
    assert retry_delay(None, 2, 0.1, 5.0, 2.0, random.Random(3), cap=30.0) == expected


def test_fits() -> None:
    assert fits(deadline=10.0, now=5.0, delay=4.9)
    assert not fits(deadline=10.0, now=5.0, delay=5.0)  # no time left to answer
    assert not fits(deadline=10.0, now=5.0, delay=6.0)
    assert fits(deadline=math.inf, now=5.0, delay=1e9)
