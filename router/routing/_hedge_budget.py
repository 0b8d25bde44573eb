"""The hedge budget: a token bucket filled per request, not per second.

``defaults.hedge_budget = 0.1`` means extra hedged attempts are at most 10% of requests.
Counting per request (no clock) ties the budget to load: when upstreams slow down and
every request wants a hedge, the hedges stay a fixed share of the traffic instead of
doubling it, which is what keeps an overloaded upstream from being hit twice as hard.
A time-based bucket would allow the same hedges per second whatever the load.
"""

from __future__ import annotations

import math

# Slow answers come in clusters (an upstream's bad minute); with a burst of one, every
# slow request within 1/rate requests of the last hedge went unhedged, and the tail
# stayed (the 1000-request simulation in tests/router/routing/test_engine_hedge.py: p99 5 s
# with a burst of 1, 0.4 s with 3 to 5).
_MIN_BURST = 5.0

__all__ = ["TokenBucket"]

# Repeated float additions of a rate like 0.1 come out a hair under whole numbers (ten
# adds give 0.9999999999999999); without the slack the tenth request would earn nothing.
_SLACK = 1e-9


class TokenBucket:
    """Every request adds ``rate`` tokens (up to ``burst``); every hedge spends one.

    The bucket starts full. Over ``n`` requests at most ``burst + rate * n`` hedges are
    allowed.

    Args:
        rate: Tokens per request, the hedge share (0 disables hedging).
        burst: Most tokens held. Default ``10 * rate``, at least 5 when ``rate > 0``: a
            small allowance, so the first hedges of a quiet daemon are not refused and a
            cluster of slow answers can be hedged, yet small enough that a sudden
            slowdown cannot spend a long quiet spell's savings all at once.

    Raises:
        ValueError: a negative rate or burst.
    """

    def __init__(self, rate: float, burst: float | None = None) -> None:
        self.rate = self.burst = 0.0
        self._tokens = math.inf  # the first configure caps it: the bucket starts full
        #: Requests and hedges since the shared bucket last heard (``HedgeShare``).
        self.unsynced_requests = 0
        self.unsynced_hedges = 0
        self.configure(rate, burst)

    def configure(self, rate: float, burst: float | None = None) -> None:
        """A new rate and burst (a reload); the tokens in hand stay, up to the new burst.

        Raises:
            ValueError: as the constructor.
        """
        if rate < 0:
            raise ValueError(f"rate must be at least 0, got {rate:g}")
        if burst is None:
            burst = max(_MIN_BURST, 10 * rate) if rate > 0 else 0.0
        if burst < 0:
            raise ValueError(f"burst must be at least 0, got {burst:g}")
        self.rate = rate
        self.burst = burst
        self._tokens = min(self._tokens, burst)

    @property
    def tokens(self) -> float:
        """Tokens in hand now."""
        return self._tokens

    def on_request(self) -> None:
        """A request arrived: it earns ``rate`` tokens."""
        self._tokens = min(self.burst, self._tokens + self.rate)
        self.unsynced_requests += 1

    def try_take(self) -> bool:
        """Spend one token for an extra (hedged) attempt; False if there is none."""
        if self._tokens + _SLACK < 1:
            return False
        self._tokens = max(0.0, self._tokens - 1)
        self.unsynced_hedges += 1
        return True

    def adopt(self, shared: float) -> None:
        """The shared bucket's tokens, plus what happened here since they were read."""
        mine = self.unsynced_requests * self.rate - self.unsynced_hedges
        self._tokens = max(0.0, min(self.burst, shared + mine))

    def snapshot(self) -> dict[str, float]:
        """The budget for ``/admin/status``."""
        return {"tokens": self._tokens, "rate": self.rate, "burst": self.burst}
