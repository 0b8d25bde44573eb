"""What the app tells the outside about each request: an :class:`Observer`.

The daemon (``router.ops``) implements it with metrics, traces and the access log; the
app only calls it, so the HTTP layer never imports the operations layer. Every method
is called on the request path and must not await or block.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import attrs

if TYPE_CHECKING:
    from rules import RouteTable

    from ..routing._request import RequestTrace

__all__ = ["NoObserver", "Observer", "RequestFacts"]


@attrs.frozen
class RequestFacts:
    """The HTTP side of one finished request."""

    method: str
    path: str
    request_id: str
    wall_ns: int  # wall clock at arrival, nanoseconds since the epoch (for spans)
    started: float  # trio time at arrival
    ended: float  # trio time after the last byte


class Observer(Protocol):
    """Told of each chat request's life; serves ``GET /metrics``."""

    def started(self, trace: RequestTrace, table: RouteTable) -> None:
        """The request's route is known (``trace.route``); it is being answered."""

    def cache_lookup(self, trace: RequestTrace) -> None:
        """A lookup in a route's response cache (``trace.cache`` is hit or miss)."""

    def ended(self, trace: RequestTrace, facts: RequestFacts) -> None:
        """The request is over (``trace.outcome`` says how), answered or not."""

    def metrics_page(self) -> tuple[bytes, str] | None:
        """The body and content type of ``GET /metrics``; None: no metrics here."""


class NoObserver:
    """Tells no one: for an app without metrics, traces or an access log."""

    def started(self, trace: RequestTrace, table: RouteTable) -> None:
        pass

    def cache_lookup(self, trace: RequestTrace) -> None:
        pass

    def ended(self, trace: RequestTrace, facts: RequestFacts) -> None:
        pass

    def metrics_page(self) -> tuple[bytes, str] | None:
        return None
