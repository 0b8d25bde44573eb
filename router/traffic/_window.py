"""Request and token windows (rpm, tpm) per key, on an injected clock; a provider's own
headers, once read (by each kind's parser in ``adapters``), can block a key until their reset.

Semantics: a *moving* 60-second window. Every admitted request is an entry
``(at, requests=1, tokens)``; an entry counts while ``now < at + 60`` and leaves at
exactly ``at + 60``. A refusal says how long until enough of the oldest entries leave for
the request to fit, which is exact (the Retry-After a client can trust), unlike a
sliding-window *counter*, whose weighted estimate can only guess when capacity returns.

Why not the ``limits`` package (the project's preference; checked against limits 5.8):

- ``MemoryStorage`` takes no clock: it calls the ``time`` module directly in a dozen
  places, including ``Entry.__init__`` at module level, and starts a ``threading.Timer``
  in its constructor and again on every hit. A subclass that used our clock would have
  to override ``__init__``, ``acquire_entry`` and ``get_moving_window``, which is all of
  the moving-window code; swapping the module's ``time`` would change it for every user
  in the process. ``SlidingWindowCounterRateLimiter.get_window_stats`` also reads
  ``time.time()`` in the strategy itself.
- It disagrees with itself at the window edge: at ``t + 60`` after ten hits at ``t``
  (10/minute), ``test()`` is True and ``get_window_stats`` says 10 remaining with
  ``reset_time = t + 60``, but ``hit()`` is refused (``>=`` in one place, ``>`` in the
  other). Its reset time is the oldest entry's, not the time until ``cost`` fits.
- A hit of cost N stores N list entries and prepends them: at tpm = 2,000,000 a window
  holds up to 2 M entries and one more hit took ~0.6 ms, about a whole request's CPU
  budget in this daemon.
- It cannot give back (``release``), adjust a past hit (``reconcile``), or go over the
  limit when usage turns out larger than estimated.

So the window is ours (~one entry per request, O(1) per admitted request), with the
``limits`` moving-window meaning and the edge made consistent. Not thread-safe: every
call comes from the trio thread.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["WINDOW", "KeyUsage", "RateLimiter"]

WINDOW = 60.0
"""Seconds in the rpm/tpm window."""

LOW_FRACTION = 0.05
"""Provider headers showing less than this share of our configured limit block the key."""


@attrs.frozen
class KeyUsage:
    """One key in :meth:`RateLimiter.snapshot` (for ``/admin/status``).

    ``blocked_until`` is on the limiter's clock, and None once it has passed.
    """

    rpm: int | None
    tpm: int | None
    requests: int
    tokens: int
    blocked_until: float | None


class _Entry:
    __slots__ = ("at", "requests", "settled", "tokens")

    def __init__(self, at: float, requests: int, tokens: int, *, settled: bool = False) -> None:
        self.at = at
        self.requests = requests  # 1 for an admitted request, 0 for a usage correction
        self.tokens = tokens
        self.settled = settled  # reconciled already: not matched again


class _Key:
    __slots__ = ("blocked_until", "entries", "requests", "rpm", "tokens", "tpm")

    def __init__(self) -> None:
        self.rpm: int | None = None
        self.tpm: int | None = None
        self.entries: deque[_Entry] = deque()  # oldest first
        self.requests = 0  # sums over entries
        self.tokens = 0
        self.blocked_until: float | None = None


def _check_limit(name: str, value: int | None) -> None:
    if value is not None and value < 1:
        raise ValueError(f"{name} must be at least 1 or absent, got {value}")


class RateLimiter:
    """Request and token windows per key (a target or a client key).

    A key needs no :meth:`configure`: an unknown key has no limits of its own but still
    counts usage and honours :meth:`note_upstream`.

    Entries carry no identity (the interface has no handle), so :meth:`reconcile` and
    :meth:`release` act on the newest not-yet-reconciled entry charged exactly that many
    tokens. Requests with equal estimates are interchangeable except for when they leave
    the window, so the totals are always right.

    Args:
        clock: Seconds on a monotonic clock, e.g. ``trio.current_time`` (which follows the
            test ``MockClock``).
    """

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = self.clock = clock
        self._keys: dict[str, _Key] = {}

    def configure(self, key: str, rpm: int | None, tpm: int | None) -> None:
        """Set a key's limits (None: no limit). Idempotent; usage in the window is kept.

        Raises:
            ValueError: a limit below 1.
        """
        _check_limit("rpm", rpm)
        _check_limit("tpm", tpm)
        state = self._state(key)
        state.rpm, state.tpm = rpm, tpm

    def forget(self, key: str) -> None:
        """Drop a key: its limits, its usage and any provider block (a limit removed)."""
        self._keys.pop(key, None)

    def acquire(self, key: str, tokens: int) -> float | None:
        """Take one request and ``tokens`` tokens if both fit; else take nothing.

        A request estimated above the whole tpm is admitted once the window is empty
        (otherwise it could never run, and its Retry-After would be a lie).

        Returns:
            None when taken; otherwise the seconds until it would fit (> 0): until the
            oldest entries that must leave have left, or a provider block ends.

        Raises:
            ValueError: negative ``tokens``.
        """
        if tokens < 0:
            raise ValueError(f"tokens must not be negative, got {tokens}")
        now = self._clock()
        state = self._state(key)
        _prune(state, now)
        wait = _wait(state, now, tokens)
        if wait is None:
            state.entries.append(_Entry(now, 1, tokens))
            state.requests += 1
            state.tokens += tokens
        return wait

    def reconcile(self, key: str, estimated: int, actual: int) -> None:
        """Correct the token window once the upstream reported ``actual`` usage.

        The request's entry (the newest unreconciled one charged ``estimated``) is set to
        ``actual`` and keeps its time. If it has already left the window, a surplus is
        charged now and a shortfall is dropped (those tokens are gone anyway). Usage never
        goes below zero.
        """
        now = self._clock()
        state = self._state(key)
        _prune(state, now)
        actual = max(actual, 0)
        entry = _newest(state, estimated)
        if entry is not None:
            state.tokens += actual - entry.tokens
            entry.tokens = actual
            entry.settled = True
        elif actual > estimated:
            state.entries.append(_Entry(now, 0, actual - estimated, settled=True))
            state.tokens += actual - estimated

    def release(self, key: str, tokens: int) -> None:
        """Give back the request and ``tokens`` of an attempt that never reached the
        upstream (nothing, if that entry has already left the window)."""
        now = self._clock()
        state = self._state(key)
        _prune(state, now)
        entry = _newest(state, tokens)
        if entry is not None:
            state.entries.remove(entry)
            state.requests -= entry.requests
            state.tokens -= entry.tokens

    def note_upstream(
        self,
        key: str,
        remaining_requests: int | None,
        remaining_tokens: int | None,
        reset_after: float | None,
    ) -> None:
        """Apply the provider's own headers: slow down before it answers 429.

        When a remaining count is 0, or under 5% of the limit configured here, the key is
        full until ``reset_after`` seconds from now. Blocks only ever extend: a later,
        healthier reading may be older information (a long response started earlier),
        and the provider's reset time bounds the block anyway. Without ``reset_after``
        nothing is blocked (no trustworthy Retry-After; the provider's 429 will say).
        """
        if reset_after is None or not reset_after > 0:
            return
        now = self._clock()
        state = self._state(key)
        _prune(state, now)
        if _low(remaining_requests, state.rpm) or _low(remaining_tokens, state.tpm):
            until = now + reset_after
            if state.blocked_until is None or until > state.blocked_until:
                state.blocked_until = until

    def blocked_for(self, key: str, tokens: int = 1) -> float | None:
        """Seconds until the key could take a request of ``tokens`` (default: any request
        at all), or None if it could now. Takes nothing: for routing to skip a target."""
        state = self._keys.get(key)
        if state is None:
            return None
        now = self._clock()
        _prune(state, now)
        return _wait(state, now, tokens)

    def snapshot(self) -> dict[str, KeyUsage]:
        """Every key's limits, usage in the current window and provider block."""
        now = self._clock()
        result = {}
        for key in sorted(self._keys):
            state = self._keys[key]
            _prune(state, now)
            result[key] = KeyUsage(
                state.rpm, state.tpm, state.requests, state.tokens, state.blocked_until
            )
        return result

    def _state(self, key: str) -> _Key:
        state = self._keys.get(key)
        if state is None:
            state = self._keys[key] = _Key()
        return state


def _prune(state: _Key, now: float) -> None:
    # `at + WINDOW <= now` is the same expression _wait subtracts `now` from, so sleeping
    # the returned wait lands exactly on the edge where the entry is gone.
    entries = state.entries
    while entries and entries[0].at + WINDOW <= now:
        gone = entries.popleft()
        state.requests -= gone.requests
        state.tokens -= gone.tokens
    if state.blocked_until is not None and state.blocked_until <= now:
        state.blocked_until = None


def _wait(state: _Key, now: float, tokens: int) -> float | None:
    waits = []
    if state.blocked_until is not None:
        waits.append(state.blocked_until - now)
    if state.rpm is not None and state.requests >= state.rpm:
        must_leave = state.requests + 1 - state.rpm  # <= state.requests, as rpm >= 1
        for entry in state.entries:
            must_leave -= entry.requests
            if must_leave <= 0:
                waits.append(entry.at + WINDOW - now)
                break
    if state.tpm is not None:
        must_leave = state.tokens + min(tokens, state.tpm) - state.tpm  # <= state.tokens
        if must_leave > 0:
            for entry in state.entries:
                must_leave -= entry.tokens
                if must_leave <= 0:
                    waits.append(entry.at + WINDOW - now)
                    break
    return max(waits) if waits else None


def _newest(state: _Key, tokens: int) -> _Entry | None:
    for entry in reversed(state.entries):
        if entry.requests and not entry.settled and entry.tokens == tokens:
            return entry
    return None


def _low(remaining: int | None, limit: int | None) -> bool:
    if remaining is None:
        return False
    return remaining <= 0 or (limit is not None and remaining < limit * LOW_FRACTION)
