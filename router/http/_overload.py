"""Overload control: refuse new work fast instead of letting everyone wait.

Two limits, as in Envoy's overload manager: requests in progress against
``server.max_in_flight``, and the event loop's sustained lag against
``server.overload_lag``. Past either, a new request gets 503 with ``Retry-After``
before its body is read. Below them, a concurrency limit learned from the loop's lag
(:mod:`._admission`) paces requests: past it a new one waits its turn, first come
first served, for up to ``overload_lag``; then it goes anyway (the limit paces, it
never starves anyone), unless the loop lags by then. Requests already in flight,
streams included, keep going.
The connection cap (``server.max_connections``) is the fourth limit; it lives with the
connections (:mod:`._server`), and :class:`Overload` only reports it.
"""

from __future__ import annotations

import collections
import time

import attrs
import trio

from adapters import GatewayError

from ._admission import PROBE_INTERVAL, ConcurrencyLimit, LagProbe

__all__ = ["Overload", "Overloaded"]


class Overloaded(GatewayError):
    """The daemon is saturated: come back in a second."""

    status_hint = 503
    code = "overloaded"


@attrs.define
class Overload:
    """Requests in flight and the loop's lag, against their limits.

    Attributes:
        max_in_flight: Requests (chat, embeddings) in progress at once (0: no bound).
        lag_limit: Sustained lag of the event loop past which new requests are refused,
            seconds; also the longest a request waits for its turn under the learned
            limit before it goes anyway.
        in_flight: Requests (chat, embeddings) in progress now.
        refused: Requests refused so far, by reason (``in_flight``, ``lag``, and
            ``connections`` refused by the server past its cap).
        probe: The loop's lag, latest and sustained.
        concurrency: The limit learned from the lag.
    """

    max_in_flight: int = 0
    lag_limit: float = 0.1
    in_flight: int = 0
    refused: dict[str, int] = attrs.field(
        factory=lambda: {"in_flight": 0, "lag": 0, "connections": 0}
    )
    #: Client connections held now and their cap, reported by the server.
    connections: int = 0
    max_connections: int = 0
    probe: LagProbe = attrs.field(factory=LagProbe)
    concurrency: ConcurrencyLimit = attrs.field(factory=ConcurrencyLimit)
    _waiting: collections.deque[trio.Event] = attrs.field(factory=collections.deque)
    _held_back: bool = False

    @property
    def lag(self) -> float:
        """The loop's sustained lag, seconds."""
        return self.probe.sustained

    @property
    def queued(self) -> int:
        """Requests waiting for their turn now."""
        return len(self._waiting)

    async def admit(self) -> None:
        """Count a new request in once its turn comes, or refuse it.

        No checkpoint when the request may start at once.

        Raises:
            Overloaded: past ``max_in_flight``, or with the loop lagging past
                ``lag_limit`` (when it comes, or after waiting ``lag_limit`` for a turn).
        """
        if self.max_in_flight and self.in_flight >= self.max_in_flight:
            self.refused["in_flight"] += 1
            raise Overloaded(
                f"the router is at server.max_in_flight ({self.max_in_flight} requests);"
                " retry shortly",
                retry_after=1.0,
            )
        if self.lag > self.lag_limit:
            self.refused["lag"] += 1
            raise Overloaded(
                f"the router is saturated (event loop {self.lag * 1000:.0f} ms late);"
                " retry shortly",
                retry_after=1.0,
            )
        if not self._waiting and self.in_flight < self.concurrency.limit:
            self.in_flight += 1
            return
        self._held_back = True
        turn = trio.Event()
        self._waiting.append(turn)
        try:
            with trio.move_on_after(self.lag_limit):
                await turn.wait()
        except BaseException:  # cancelled while waiting (the client left)
            self._leave(turn)
            raise
        if turn.is_set():
            return  # counted in by _let_in
        # Overdue: the limit paces, it never starves. Refused only if the loop lags.
        self._waiting.remove(turn)
        if self.lag > self.lag_limit:
            self.refused["lag"] += 1
            raise Overloaded(
                f"the router is saturated (event loop {self.lag * 1000:.0f} ms late);"
                " retry shortly",
                retry_after=1.0,
            )
        self.in_flight += 1

    def hold_back(self) -> None:
        """Note that the learned limit kept something waiting (intake's connections)."""
        self._held_back = True

    def done(self) -> None:
        """A request admitted by :meth:`admit` has ended."""
        self.in_flight -= 1
        self._let_in()

    def _leave(self, turn: trio.Event) -> None:
        if turn.is_set():
            self.done()  # its turn came as it was cancelled: give the place on
        else:
            self._waiting.remove(turn)

    def _let_in(self) -> None:
        while self._waiting and self.in_flight < self.concurrency.limit:
            self.in_flight += 1
            self._waiting.popleft().set()

    def observe(self, lateness: float) -> None:
        """One reading of the lag probe: the limit adapts, and waiting requests may go."""
        self.probe.record(lateness)
        self.concurrency.observe(
            self.probe.latest, held_back=self._held_back or bool(self._waiting)
        )
        self._held_back = False
        self._let_in()

    async def watch_lag(self) -> None:
        """Measure the loop's lag forever: a timer's lateness, every 10 ms.

        Lateness counts only when both clocks agree: the wall clock (a test's virtual
        clock jumps ahead without the loop being late) and trio's clock (autojumped
        virtual time wakes the timer on time even when the wall clock ran on).
        """
        while True:
            wall_due = time.perf_counter() + PROBE_INTERVAL
            due = trio.current_time() + PROBE_INTERVAL
            await trio.sleep(PROBE_INTERVAL)
            wall_late = time.perf_counter() - wall_due
            self.observe(min(wall_late, trio.current_time() - due))

    def snapshot(self) -> dict[str, object]:
        """For ``/admin/status``."""
        return {
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight or None,
            "concurrency_limit": self.concurrency.limit,
            "queued": self.queued,
            "loop_lag_ms": round(self.lag * 1000, 1),
            "overload_lag_ms": round(self.lag_limit * 1000, 1),
            "connections": self.connections,
            "max_connections": self.max_connections or None,
            "refused": dict(self.refused),
        }
