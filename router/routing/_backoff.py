"""Delays between retries on one target: full-jitter backoff, or the upstream's Retry-After.

Full jitter (a uniform draw in ``[0, ceiling)``) rather than a fixed exponential: when
an upstream blips, every request retrying at the same instants would hit it in waves;
spreading them over the whole interval keeps the load flat.

Pure: the caller passes the ``random.Random`` and ``now``, and sleeps itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random

__all__ = ["RETRY_AFTER_CAP", "backoff_ceiling", "backoff_delay", "retry_delay", "fits"]

# The longest Retry-After honoured by default, in seconds.
RETRY_AFTER_CAP = 30.0


def backoff_ceiling(attempt: int, initial: float, maximum: float, multiplier: float) -> float:
    """``min(maximum, initial * multiplier**attempt)``, the most :func:`backoff_delay` waits.

    Raises:
        ValueError: a negative attempt.
    """
    if attempt < 0:
        raise ValueError(f"attempt must be at least 0, got {attempt}")
    try:
        return min(maximum, initial * multiplier**attempt)
    except OverflowError:  # a huge attempt number: the cap has long been reached
        return maximum


def backoff_delay(
    attempt: int, initial: float, maximum: float, multiplier: float, rng: random.Random
) -> float:
    """Seconds to wait before retry number ``attempt`` (0 for the first retry).

    A uniform draw in ``[0, min(maximum, initial * multiplier**attempt)]``.

    Raises:
        ValueError: a negative attempt.
    """
    return rng.uniform(0.0, backoff_ceiling(attempt, initial, maximum, multiplier))


def retry_delay(
    retry_after: float | None,
    attempt: int,
    initial: float,
    maximum: float,
    multiplier: float,
    rng: random.Random,
    cap: float = RETRY_AFTER_CAP,
) -> float | None:
    """The wait before a retry on the same target, or None not to retry there.

    A Retry-After (or ``retry-after-ms``, converted to seconds by the caller) is the
    upstream's own word on when it can serve again, so it replaces the backoff instead
    of adding to it; a negative value (clock skew on an HTTP date) counts as 0. One
    longer than ``cap`` gives None: retrying sooner than asked only earns another 429,
    and waiting that long on one upstream parks the request while another target could
    answer, so the caller moves on. Whether the wait fits the request's deadline is the
    caller's check, with :func:`fits`. Without a Retry-After: :func:`backoff_delay`.

    Raises:
        ValueError: a negative attempt.
    """
    if retry_after is not None:
        wait = max(retry_after, 0.0)
        return wait if wait <= cap else None
    return backoff_delay(attempt, initial, maximum, multiplier, rng)


def fits(deadline: float, now: float, delay: float) -> bool:
    """Whether waiting ``delay`` from ``now`` still leaves time before ``deadline``.

    Strict: a retry that would start exactly at the deadline has no time to answer.
    """
    return now + delay < deadline
