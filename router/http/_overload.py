"""Overload control: refuse new work fast instead of letting everyone wait.

Two signals, as in Envoy's overload manager: requests in progress against
``server.max_in_flight``, and the event loop's lag (how late a timer fires) against
``server.overload_lag``. Past either, a new chat request gets 503 with ``Retry-After``
before its body is read; requests already in flight, streams included, keep going.
The connection cap (``server.max_connections``) is the third limit; it lives with the
connections (:mod:`._server`), and :class:`Overload` only reports it.
"""

from __future__ import annotations

import collections
import time

import attrs
import trio

from adapters import GatewayError

__all__ = ["Overload", "Overloaded"]

#: How often the lag probe wakes; its lateness is the loop's lag.
PROBE_INTERVAL = 0.05
#: Probes in a row that must all be late (200 ms of saturation, not one slow moment).
SUSTAINED = 4


class Overloaded(GatewayError):
    """The daemon is saturated: come back in a second."""

    status_hint = 503
    code = "overloaded"


@attrs.define
class Overload:
    """Requests in flight and the loop's lag, against their limits.

    Attributes:
        max_in_flight: Requests (chat, embeddings) in progress at once (0: no bound).
        lag_limit: Lag of the event loop past which new requests are refused, seconds.
        in_flight: Requests (chat, embeddings) in progress now.
        lag: The event loop's sustained lag (the least of the last few probes), seconds.
        refused: Requests refused so far, by reason (``in_flight``, ``lag``, and
            ``connections`` refused by the server past its cap).
    """

    max_in_flight: int = 0
    lag_limit: float = 0.1
    in_flight: int = 0
    lag: float = 0.0
    refused: dict[str, int] = attrs.field(
        factory=lambda: {"in_flight": 0, "lag": 0, "connections": 0}
    )
    #: Client connections held now and their cap, reported by the server.
    connections: int = 0
    max_connections: int = 0

    def admit(self) -> None:
        """Count a new request in, or refuse it.

        Raises:
            Overloaded: past ``max_in_flight``, or the loop lags past ``lag_limit``.
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
        self.in_flight += 1

    def done(self) -> None:
        """A request admitted by :meth:`admit` has ended."""
        self.in_flight -= 1

    async def watch_lag(self) -> None:
        """Measure the loop's lag forever: a timer's lateness, every 50 ms.

        ``lag`` is the smallest of the last :data:`SUSTAINED` lateness readings: a
        saturated loop is late on every probe, while one slow moment (a collection, a
        big JSON body) is late once and must not refuse the requests after it.
        Lateness is read on the wall clock, so a test's virtual clock (which jumps,
        and wakes the timer early in wall time) never reads as lag.
        """
        recent = collections.deque([0.0] * SUSTAINED, maxlen=SUSTAINED)
        while True:
            due = time.perf_counter() + PROBE_INTERVAL
            await trio.sleep(PROBE_INTERVAL)
            recent.append(max(0.0, time.perf_counter() - due))
            self.lag = min(recent)

    def snapshot(self) -> dict[str, object]:
        """For ``/admin/status``."""
        return {
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight or None,
            "loop_lag_ms": round(self.lag * 1000, 1),
            "overload_lag_ms": round(self.lag_limit * 1000, 1),
            "connections": self.connections,
            "max_connections": self.max_connections or None,
            "refused": dict(self.refused),
        }
