"""The hedge budget by property: over any run of requests and hedge asks, the hedges
granted never exceed ``burst + rate * requests``.

For the rates and bursts a config holds (a few decimals) the bucket decides exactly as
exact arithmetic does, so the bound holds exactly. For any float rate the float bucket
may grant each hedge ``1e-9`` early (its slack for sums like ten times 0.1 coming out a
hair under 1), and the bound holds up to that.
"""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from router.routing._hedge_budget import TokenBucket

# True: a request arrives; False: an attempt asks for a hedge.
EVENTS = st.lists(st.booleans(), max_size=200)
SLACK = 1e-9


@given(st.integers(0, 1000), st.none() | st.integers(0, 12), EVENTS)
def test_hedges_granted_are_bounded_by_requests_exactly(
    per_mille: int, burst: int | None, events: list[bool]
) -> None:
    rate = Fraction(per_mille, 1000)
    bucket = TokenBucket(per_mille / 1000, None if burst is None else float(burst))
    if burst is None:  # the documented default
        cap = max(Fraction(5), 10 * rate) if rate else Fraction(0)
    else:
        cap = Fraction(burst)
    tokens, requests, granted = cap, 0, 0
    for is_request in events:
        if is_request:
            bucket.on_request()
            requests += 1
            tokens = min(cap, tokens + rate)
        else:
            allowed = tokens >= 1
            assert bucket.try_take() == allowed
            if allowed:
                tokens -= 1
                granted += 1
        assert granted <= cap + rate * requests


@given(st.floats(0, 10), st.none() | st.floats(0, 50), EVENTS)
def test_hedges_granted_are_bounded_by_requests_for_any_float_rate(
    rate: float, burst: float | None, events: list[bool]
) -> None:
    bucket = TokenBucket(rate, burst)
    requests = granted = 0
    for is_request in events:
        if is_request:
            bucket.on_request()
            requests += 1
        elif bucket.try_take():
            granted += 1
        assert 0 <= bucket.tokens <= bucket.burst
        assert granted <= bucket.burst + bucket.rate * requests + granted * SLACK
