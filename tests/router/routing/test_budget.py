"""The hedge budget: a per-request token bucket."""

from __future__ import annotations

import pytest

from router.routing._hedge_budget import TokenBucket


def test_starts_full_with_the_default_burst() -> None:
    bucket = TokenBucket(0.1)
    assert bucket.burst == 5.0
    assert bucket.tokens == 5.0
    assert [bucket.try_take() for _ in range(6)] == [True] * 5 + [False]


def test_default_burst_is_ten_requests_worth_and_at_least_five() -> None:
    assert TokenBucket(0.9).burst == 9.0
    assert TokenBucket(0.5).burst == 5.0
    assert TokenBucket(0.01).burst == 5.0


def test_zero_rate_disables_hedging() -> None:
    bucket = TokenBucket(0.0)
    for _ in range(100):
        bucket.on_request()
    assert not bucket.try_take()


def test_ten_requests_at_rate_tenth_earn_exactly_one_token() -> None:
    bucket = TokenBucket(0.1, burst=1.0)
    assert bucket.try_take()
    for _ in range(9):
        bucket.on_request()
        assert not bucket.try_take()
    bucket.on_request()  # 0.1 added ten times is a hair under 1.0 in floats
    assert bucket.try_take()


def test_tokens_capped_at_burst() -> None:
    bucket = TokenBucket(0.1, burst=2.0)
    for _ in range(1000):
        bucket.on_request()
    assert bucket.tokens == 2.0
    assert bucket.try_take()
    assert bucket.try_take()
    assert not bucket.try_take()


@pytest.mark.parametrize(("rate", "burst"), [(0.1, None), (0.25, 3.0), (0.05, 1.0)])
def test_hedges_at_most_rate_share_plus_burst(rate: float, burst: float | None) -> None:
    bucket = TokenBucket(rate, burst)
    start = bucket.burst
    n = 10_000
    taken = 0
    for _ in range(n):
        bucket.on_request()
        while bucket.try_take():  # every request wants as many hedges as it can get
            taken += 1
    assert taken <= start + rate * n
    assert taken >= rate * n - 1  # and the budget is really available


def test_snapshot() -> None:
    assert TokenBucket(0.1).snapshot() == {"tokens": 5.0, "rate": 0.1, "burst": 5.0}


@pytest.mark.parametrize(("rate", "burst"), [(-0.1, None), (0.1, -1.0)])
def test_rejects_negative_settings(rate: float, burst: float | None) -> None:
    with pytest.raises(ValueError, match="must be at least 0"):
        TokenBucket(rate, burst)


def test_configure_applies_the_new_rate_and_keeps_the_tokens_in_hand() -> None:
    bucket = TokenBucket(0.0)  # hedging off: nothing in hand
    bucket.configure(1.0)
    assert (bucket.rate, bucket.burst, bucket.tokens) == (1.0, 10.0, 0.0)
    bucket.on_request()
    assert bucket.try_take()  # the new rate earns a hedge with the first request
    assert not bucket.try_take()


def test_configure_caps_the_tokens_at_the_new_burst() -> None:
    bucket = TokenBucket(0.5)  # full: 5 tokens
    bucket.configure(0.0)
    assert (bucket.rate, bucket.burst, bucket.tokens) == (0.0, 0.0, 0.0)
    bucket.on_request()
    assert not bucket.try_take()  # turned off means off, savings included
    with pytest.raises(ValueError, match="must be at least 0"):
        bucket.configure(-1.0)
