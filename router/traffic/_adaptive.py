"""Requests at once per provider or target: a fixed bound, or one learned by AIMD.

``limits = { concurrency = 8 }`` bounds a provider's (or, in ``model_limits``, a
model's) requests in flight. With ``adaptive = true`` the bound is learned from the
upstream, the way TCP learns its window (additive increase, multiplicative decrease):

- a 429 from the upstream halves the bound (never below 1), once per round: 429s of
  requests that started before the last decrease are the same congestion, already
  answered, and do not halve it again;
- its Retry-After (or a rate-limit header saying no requests remain, until its reset)
  holds new requests until then;
- each success grows the bound by 1/bound, so one whole bound's worth of successes adds
  one request, up to ``concurrency`` (unset: the provider's pool ``max_connections``).

The bound starts at its ceiling. A request past it is refused like one past a rate
window (``TargetLimited``): routing moves on to another target at once, and when none
can serve, the client gets a 429 whose Retry-After is the shortest wait. A stream holds
its place until its first chunk arrives (what the upstream's admission sees).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["AT_CAPACITY_WAIT", "Gate", "GateState", "Ticket"]

#: The Retry-After of a refusal while the bound is full (a place frees when an answer
#: comes back, which nobody can predict): short, so a client retries soon.
AT_CAPACITY_WAIT = 1.0


@attrs.define
class Ticket:
    """One admitted request: its gate, and the round it started in."""

    gate: Gate
    round: int


@attrs.frozen
class GateState:
    """A gate as ``/admin/status`` shows it."""

    limit: int
    ceiling: int
    in_flight: int
    adaptive: bool
    blocked_for: float  # seconds new requests are still held (a Retry-After), else 0


class Gate:
    """The bound of one provider or target (see the module doc)."""

    def __init__(self, ceiling: int, adaptive: bool, clock: Callable[[], float]) -> None:
        self.ceiling = ceiling
        self.adaptive = adaptive
        self._clock = clock
        self._limit = float(ceiling)
        self.in_flight = 0
        self._round = 0
        self._blocked_until = 0.0

    @property
    def limit(self) -> int:
        """Requests allowed at once now."""
        return max(1, int(self._limit))

    def reconfigure(self, ceiling: int, adaptive: bool) -> None:
        """A reload: the learned bound stays, within the new ceiling."""
        self.ceiling, self.adaptive = ceiling, adaptive
        self._limit = float(ceiling) if not adaptive else min(self._limit, ceiling)

    def enter(self) -> Ticket | float:
        """A ticket for one request, or the seconds to wait before asking again."""
        now = self._clock()
        if now < self._blocked_until:
            return self._blocked_until - now
        if self.in_flight >= self.limit:
            return AT_CAPACITY_WAIT
        self.in_flight += 1
        return Ticket(self, self._round)

    def leave(self, ticket: Ticket, outcome: str, retry_after: float | None = None) -> None:
        """The request ended: ``"ok"``, ``"rate_limited"`` (the upstream's 429, with its
        Retry-After if it gave one), or anything else (no word on the bound)."""
        self.in_flight -= 1
        if not self.adaptive:
            return
        if outcome == "ok":
            self._limit = min(self._limit + 1.0 / self.limit, float(self.ceiling))
        elif outcome == "rate_limited":
            if ticket.round == self._round:
                self._decrease()
            if retry_after:
                self.hold(retry_after)

    def hold(self, seconds: float) -> None:
        """Hold new requests for ``seconds`` (the upstream said to wait)."""
        if self.adaptive:
            self._blocked_until = max(self._blocked_until, self._clock() + seconds)

    def exhausted(self, reset_after: float | None) -> None:
        """The upstream's headers say no requests remain (until ``reset_after``): a
        429 foretold, answered as one."""
        if not self.adaptive or self._clock() < self._blocked_until:
            return  # answered already: the burst's other answers say the same
        self._decrease()
        self.hold(reset_after or AT_CAPACITY_WAIT)

    def _decrease(self) -> None:
        self._limit = max(1.0, float(self.limit // 2))
        self._round += 1

    def state(self) -> GateState:
        blocked = max(0.0, self._blocked_until - self._clock())
        return GateState(self.limit, self.ceiling, self.in_flight, self.adaptive, blocked)
