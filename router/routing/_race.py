"""The race policy of one fallback or balance node, as a pure state machine.

A node tries its candidates in order. The first starts at once. Each failure that the
node may move on from starts the next candidate at once (a fallback): two failures in
the same instant start two. When the node hedges, ``delay`` without an answer starts
the next candidate too (a hedge), if the node has hedges left and the budget grants
one. The first answer wins; a failure the node must not move on from (a bad request)
ends the race with that failure; when every candidate has failed, the race ends with
all their failures combined.

The policy does no I/O and reads no clock: :class:`Race` is fed events
(:meth:`~Race.start`, :meth:`~Race.failed`, :meth:`~Race.answered`,
:meth:`~Race.timer_fired`, each with the time it happened) and returns the commands
to carry out (:class:`Start`, :class:`SetTimer`, :class:`Won`, :class:`Lost`). The trio
loop in :mod:`router.routing._racer` runs the attempts and the timer; tests replay
transcripts of events without one. The shape follows trio's happy eyeballs
(``trio/_highlevel_open_tcp_stream.py``), where every attempt reports its own failure.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import attrs

from adapters import GatewayError

from ._failures import combine, falls_back

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["Command", "Lost", "Race", "SetTimer", "Start", "Won"]


@attrs.frozen
class Start:
    """Start candidate ``index``; ``hedge`` if the timer (not a failure) started it."""

    index: int
    hedge: bool = False


@attrs.frozen
class SetTimer:
    """Call :meth:`Race.timer_fired` at ``at`` (trio time); None: no timer."""

    at: float | None


@attrs.frozen
class Won:
    """Candidate ``index`` gave the answer: cancel the others."""

    index: int


@attrs.frozen
class Lost:
    """The race is over without an answer: cancel what runs, report ``error``."""

    error: GatewayError


Command = Start | SetTimer | Won | Lost


class Race:
    """The policy of one race among ``size`` candidates.

    Args:
        size: How many candidates there are (at least one).
        on: The failure reasons that move on to the next candidate.
        delay: Seconds without an answer before a hedge starts.
        max_hedges: Hedges this race may start (0: a plain fallback, one at a time).
        permit: Asks the hedge budget for one hedge; called only when one is due.
    """

    def __init__(
        self,
        size: int,
        on: frozenset[str],
        *,
        delay: float = math.inf,
        max_hedges: int = 0,
        permit: Callable[[], bool] = lambda: False,
    ) -> None:
        if size < 1:
            raise ValueError("a race needs at least one candidate")
        self.size = size
        self.on = on
        self.delay = delay
        self.max_hedges = max_hedges
        self._permit = permit
        self._next = 0  # the next candidate to start
        self._running: set[int] = set()
        self._hedged: set[int] = set()  # candidates a hedge started
        self._errors: list[GatewayError] = []
        self.hedges = 0  # hedges started
        self.fallbacks = 0  # candidates started by a failure
        self.winner: int | None = None
        self.done = False

    @property
    def concurrent(self) -> bool:
        """Whether two candidates may ever run at once (only hedges make that happen)."""
        return self.max_hedges > 0 and self.size > 1

    @property
    def won_by_hedge(self) -> bool:
        """The winner was started by a hedge."""
        return self.winner is not None and self.winner in self._hedged

    @property
    def errors(self) -> Sequence[GatewayError]:
        """The failures so far, in the order they came."""
        return tuple(self._errors)

    # -- events -------------------------------------------------------------------------

    def start(self, now: float) -> list[Command]:
        """The race begins: the first candidate starts."""
        return [self._start(hedge=False), self._timer(now)]

    def failed(self, index: int, error: GatewayError, now: float) -> list[Command]:
        """Candidate ``index`` failed with ``error``."""
        self._running.discard(index)
        if self.done:
            return []
        self._errors.append(error)
        if not falls_back(error, self.on):
            return self._end(Lost(error))
        if self._next < self.size:
            self.fallbacks += 1
            return [self._start(hedge=False), self._timer(now)]
        if not self._running:
            return self._end(Lost(combine(self._errors)))
        return [SetTimer(None)]  # nothing left to start: wait for those still running

    def answered(self, index: int, now: float) -> list[Command]:
        """Candidate ``index`` answered. The first answer wins; a later one is ignored
        (whoever holds it releases it)."""
        self._running.discard(index)
        if self.done:
            return []
        self.winner = index
        return self._end(Won(index))

    def timer_fired(self, now: float) -> list[Command]:
        """The hedge delay passed with no answer and no failure."""
        if self.done or self._next >= self.size or self.hedges >= self.max_hedges:
            return [SetTimer(None)]
        if not self._permit():
            self.max_hedges = self.hedges  # the budget said no: no more hedges, only fallbacks
            return [SetTimer(None)]
        self.hedges += 1
        return [self._start(hedge=True), self._timer(now)]

    # -- helpers ------------------------------------------------------------------------

    def _start(self, hedge: bool) -> Start:
        index = self._next
        self._next += 1
        self._running.add(index)
        if hedge:
            self._hedged.add(index)
        return Start(index, hedge)

    def _timer(self, now: float) -> SetTimer:
        """The hedge timer, counted from ``now``: set while a hedge may still start."""
        if self._next < self.size and self.hedges < self.max_hedges:
            return SetTimer(now + self.delay)
        return SetTimer(None)

    def _end(self, command: Won | Lost) -> list[Command]:
        self.done = True
        return [SetTimer(None), command]
