"""Overload control: refuse new work fast instead of letting everyone wait.

Two limits, as in Envoy's overload manager: requests in progress against
``server.max_in_flight``, and how far behind the daemon is against
``server.overload_lag``. Past ``max_in_flight`` a new request gets 503 with
``Retry-After`` before its body is read. Below it, a concurrency limit learned from the
loop's lag (:mod:`._admission`) paces requests: past it a new one waits its turn, first
come first served, for up to a quarter of ``overload_lag``; then it goes anyway (the limit
paces, it never starves anyone).

*Behind* is measured two ways. The loop's own lag (a timer's lateness, sustained) sees a
loop stalled by long steps; the wait requests see (accept, or first bytes, to
admission; :class:`~._admission.QueueDelay`) sees a loop that runs hundreds of short
steps per pass, which the timer misses. When requests have waited more than ten times
``overload_lag`` on average over a window (a standing queue of a second at the default:
no burst that drains, no steady crowd of clients being served, waits that long), the
daemon is overloaded: a new connection
that cannot start at once gets 503 at once from intake (:mod:`._intake`) instead of a
place in the queue, and the learned limit shrinks, so that the requests admitted are
served promptly. Requests on kept-alive connections are paced, not refused, for it. A
loop that lags past ``overload_lag`` refuses every new request. Requests already in
flight, streams included, keep going.
The connection cap (``server.max_connections``) is the fourth limit; it lives with the
connections (:mod:`._server`), and :class:`Overload` only reports it.
"""

from __future__ import annotations

import collections
import contextvars
import time

import attrs
import trio

from adapters import GatewayError

from ._admission import PROBE_INTERVAL, ConcurrencyLimit, LagProbe, QueueDelay

#: The longest wait for a turn, and the mean wait over a window that is overload, as
#: shares of ``overload_lag``. Measured on one core (docs/benchmarks.md): at half of it,
#: 256 clients of a daemon serving 1,000 requests a second (Little's law: a quarter of a
#: second each) and a cold start of 500 clients read as overload, and 38% and 73% of
#: them were told 503 for nothing; at ten times it, both are served, none refused.
PACE = 0.25
DELAY_TARGET = 10.0

__all__ = ["ARRIVED", "PLACED", "Overload", "Overloaded", "arrived_now"]

#: When the request now starting arrived, on trio's clock and on the wall clock
#: (``time.perf_counter``): its connection's accept, or its first bytes on a kept-alive
#: connection. Set by the connection before the request's task is spawned (the task
#: inherits it); None outside a served connection.
ARRIVED: contextvars.ContextVar[tuple[float, float] | None] = contextvars.ContextVar(
    "llm_router_arrived", default=None
)


#: The request now starting is its connection's first, started by intake within the
#: learned limit (:mod:`._intake`): it holds a place already, and is admitted at once.
#: Refusing it here would come too late: intake refuses before the handler's cost.
PLACED: contextvars.ContextVar[bool] = contextvars.ContextVar("llm_router_placed", default=False)


def arrived_now() -> tuple[float, float]:
    """Now, as :data:`ARRIVED` holds it."""
    return trio.current_time(), time.perf_counter()


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
        delay: The wait requests see before they are admitted, and its verdict.
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
    delay: QueueDelay = attrs.field(
        default=attrs.Factory(
            lambda self: QueueDelay(self.lag_limit * DELAY_TARGET, self.lag_limit), takes_self=True
        )
    )
    _waiting: collections.deque[trio.Event] = attrs.field(factory=collections.deque)
    _held_back: bool = False

    @property
    def lag(self) -> float:
        """The loop's sustained lag, seconds."""
        return self.probe.sustained

    @property
    def behind(self) -> bool:
        """The loop lags past ``lag_limit``, sustained: every new request is refused."""
        return self.lag > self.lag_limit

    @property
    def overloaded(self) -> bool:
        """Behind, or requests have waited past ten times ``lag_limit`` on average over
        a window: a new request that cannot start at once is refused."""
        return self.behind or self.delay.overloaded

    @property
    def pace(self) -> float:
        """The longest a request waits for its turn under the learned limit (a quarter
        of ``lag_limit``: below the wait that counts as overload, so that pacing alone
        never reads as overload)."""
        return self.lag_limit * PACE

    @property
    def queued(self) -> int:
        """Requests waiting for their turn now."""
        return len(self._waiting)

    async def admit(self) -> None:
        """Count a new request in once its turn comes, or refuse it.

        No checkpoint when the request may start at once (a place free, or one held
        since intake started its connection: :data:`PLACED`). Its wait (from
        :data:`ARRIVED`) is recorded when it is admitted.

        A request here is a kept-alive connection's (a new connection's first one is
        refused or placed by intake): overloaded by waiting, it is paced, not refused.
        Its client is mid-session, and refusing it closes a connection that a client
        asking again at once would reopen straight into intake, each refusal costing a
        connection, a parse and a 503 while serving no one sooner.

        Raises:
            Overloaded: past ``max_in_flight``, or with the loop lagging past
                ``lag_limit`` (when it comes, or after waiting :attr:`pace` for a turn).
        """
        if self.max_in_flight and self.in_flight >= self.max_in_flight:
            self.refused["in_flight"] += 1
            raise Overloaded(
                f"the router is at server.max_in_flight ({self.max_in_flight} requests);"
                " retry shortly",
                retry_after=1.0,
            )
        free = PLACED.get() or (not self._waiting and self.in_flight < self.concurrency.limit)
        if self.behind:
            raise self._refuse()
        if free:
            self.in_flight += 1
            self._admitted()
            return
        self._held_back = True
        turn = trio.Event()
        self._waiting.append(turn)
        try:
            with trio.move_on_after(self.pace):
                await turn.wait()
        except BaseException:  # cancelled while waiting (the client left)
            self._leave(turn)
            raise
        if not turn.is_set():
            # Overdue: the limit paces, it never starves, unless the loop lags.
            self._waiting.remove(turn)
            if self.behind:
                raise self._refuse()
            self.in_flight += 1
        self._admitted()

    def _refuse(self) -> Overloaded:
        self.refused["lag"] += 1
        return Overloaded(
            f"the router is saturated (event loop {self.lag * 1000:.0f} ms late); retry shortly",
            retry_after=1.0,
        )

    def _admitted(self) -> None:
        """Record the wait of the request just admitted. It counts only as long as both
        clocks saw it: a test's virtual clock jumps ahead while nothing waits, and the
        wall clock of a loaded machine runs on while the virtual one stands."""
        arrived = ARRIVED.get()
        if arrived is not None:
            now, wall = arrived_now()
            self.delay.record(min(now - arrived[0], wall - arrived[1]), now)

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
        # Overloaded by the wait requests see: shrink as on a late pass.
        late = self.concurrency.target * 2 if self.delay.overloaded else self.probe.latest
        self.concurrency.observe(late, held_back=self._held_back or bool(self._waiting))
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
            self.delay.expire(trio.current_time())
            self.observe(min(wall_late, trio.current_time() - due))

    def snapshot(self) -> dict[str, object]:
        """For ``/admin/status``."""
        return {
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight or None,
            "concurrency_limit": self.concurrency.limit,
            "queued": self.queued,
            "loop_lag_ms": round(self.lag * 1000, 1),
            "queue_delay_ms": round(self.delay.latest * 1000, 1),
            "overloaded": self.overloaded,
            "overload_lag_ms": round(self.lag_limit * 1000, 1),
            "connections": self.connections,
            "max_connections": self.max_connections or None,
            "refused": dict(self.refused),
        }
