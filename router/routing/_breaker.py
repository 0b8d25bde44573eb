"""A per-target circuit breaker, as a pure state machine over the ``now`` it is given.

States::

    closed --N failures in a row--> open --open_for passes--> half_open
      ^                              ^                           |
      |                              +------any failure----------+
      +----------------M successes in a row (one probe at a time)+

The breaker reads no clock: every method that depends on time takes ``now`` (monotonic
seconds, e.g. ``trio.current_time()``), so a test replays a transcript of calls and
asserts each transition at an exact time. "open" becoming "half_open" is not an event
but a function of ``now``: :meth:`CircuitBreaker.state` reports it the moment
``now >= opened_at + open_for``, with no timer task to run.
"""

from __future__ import annotations

from typing import Literal

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Opens after ``failures`` consecutive failures and lets probes through later.

    While open, :meth:`allow` refuses every attempt, so during an outage the target sees
    probes, not traffic. Once ``open_for`` seconds have passed it is half-open: one probe
    at a time is allowed; a failure reopens it for a fresh ``open_for``, and ``successes``
    probe successes in a row close it.

    Verdicts that arrive while the breaker is open are ignored: they come from attempts
    admitted before it opened, and letting their failures extend the window would keep a
    recovered target shut for as long as stragglers trickle in.

    Args:
        failures: Consecutive failures that open a closed breaker (at least 1).
        successes: Consecutive half-open successes that close it (at least 1).
        open_for: Seconds an opened breaker refuses attempts before probing (> 0).

    Raises:
        ValueError: a count below 1 or a non-positive ``open_for``.
    """

    def __init__(self, failures: int, successes: int, open_for: float) -> None:
        self.failures = self.successes = 0
        self.open_for = 0.0
        self.configure(failures, successes, open_for)
        self._opened_at: float | None = None
        self._consecutive_failures = 0
        self._consecutive_successes = 0  # counted while half-open only
        self._incident: object | None = None  # the last failure's, if it had one
        self._probe_in_flight = False

    def configure(self, failures: int, successes: int, open_for: float) -> None:
        """New thresholds (a reload): the state so far stays, the next verdict meets them.

        An open breaker opened at ``opened_at`` turns half-open at ``opened_at +
        open_for`` with the new ``open_for``; failures counted so far count toward the
        new ``failures`` on the next failure (lowering it does not open the breaker by
        itself: only a verdict moves it).

        Raises:
            ValueError: as the constructor.
        """
        if failures < 1 or successes < 1:
            raise ValueError(
                f"failures and successes must be at least 1, got {failures}, {successes}"
            )
        if not open_for > 0:
            raise ValueError(f"open_for must be positive, got {open_for:g}")
        self.failures = failures
        self.successes = successes
        self.open_for = open_for

    @property
    def opened_at(self) -> float | None:
        """When the breaker last opened (or reopened); None while closed."""
        return self._opened_at

    @property
    def consecutive_failures(self) -> int:
        """Failures in a row since the last success (reset when the breaker closes)."""
        return self._consecutive_failures

    @property
    def consecutive_successes(self) -> int:
        """Half-open successes in a row so far (0 outside half-open)."""
        return self._consecutive_successes

    @property
    def probe_in_flight(self) -> bool:
        """Whether a half-open probe has been allowed and has not ended yet."""
        return self._probe_in_flight

    def state(self, now: float) -> BreakerState:
        """The state at ``now``: open turns half-open exactly at ``opened_at + open_for``."""
        if self._opened_at is None:
            return "closed"
        if now < self._opened_at + self.open_for:
            return "open"
        return "half_open"

    def allow(self, now: float) -> bool:
        """Whether an attempt may start at ``now``; a True in half-open takes the probe.

        The caller must end every allowed half-open attempt with :meth:`record_success`,
        :meth:`record_failure` or :meth:`release_probe`, or no further probe is allowed.
        """
        state = self.state(now)
        if state == "closed":
            return True
        if state == "open" or self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self, now: float) -> None:
        """An attempt on the target succeeded at ``now``."""
        state = self.state(now)
        if state == "closed":
            self._consecutive_failures = 0
        elif state == "half_open":
            self._probe_in_flight = False
            self._consecutive_successes += 1
            if self._consecutive_successes >= self.successes:
                self._close()

    def record_failure(self, now: float, incident: object | None = None) -> None:
        """An attempt on the target failed at ``now``. Failures of one ``incident``
        (the streams of one lost HTTP/2 connection) count once."""
        if incident is not None:
            if incident is self._incident:
                return
            self._incident = incident
        state = self.state(now)
        if state == "closed":
            self._consecutive_failures += 1
            if self._consecutive_failures >= self.failures:
                self._open(now)
        elif state == "half_open":
            self._consecutive_failures += 1
            self._open(now)  # a fresh window from now, not from the first opening

    def release_probe(self) -> None:
        """The probe ended without a verdict (cancelled, e.g. a hedge loser): free its slot."""
        self._probe_in_flight = False

    def snapshot(self, now: float) -> dict[str, object]:
        """The breaker for ``/admin/status``: plain JSON-ready values."""
        state = self.state(now)
        until: float | None = None
        if state == "open" and self._opened_at is not None:
            until = self._opened_at + self.open_for - now
        return {
            "state": state,
            "consecutive_failures": self._consecutive_failures,
            "consecutive_successes": self._consecutive_successes,
            "seconds_until_half_open": until,
            "probe_in_flight": self._probe_in_flight,
        }

    def _open(self, now: float) -> None:
        self._opened_at = now
        self._consecutive_successes = 0
        self._probe_in_flight = False

    def _close(self) -> None:
        self._opened_at = None
        self._consecutive_failures = 0
        self._consecutive_successes = 0
        self._probe_in_flight = False
