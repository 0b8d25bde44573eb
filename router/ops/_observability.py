"""The daemon's :class:`~router.http._observer.Observer`: each request's end goes to
Prometheus metrics, OpenTelemetry spans (when exported), the JSON access log and the
usage ledger."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ._metrics import CONTENT_TYPE, Metrics
from ._usage_row import usage_row

if TYPE_CHECKING:
    from rules import RouteTable

    from ..http._observer import RequestFacts
    from ..routing._request import RequestTrace
    from ._accesslog import AccessLog
    from ._ledger import Ledger
    from ._tracing import Tracing

__all__ = ["Observability"]


class Observability:
    """Metrics always; spans when tracing exports them; access lines when logging them.

    Args:
        metrics: The daemon's metrics (served at ``GET /metrics``).
        access_log: One JSON line per request, or None.
        tracing: From :func:`~router.ops._tracing.setup_tracing`; when it is off (or
            absent) a request pays one attribute check for it.
        ledger: The usage ledger (``server.usage_db``): one row per request.
    """

    def __init__(
        self,
        metrics: Metrics | None = None,
        access_log: AccessLog | None = None,
        tracing: Tracing | None = None,
        ledger: Ledger | None = None,
    ) -> None:
        self.metrics = metrics or Metrics()
        self.access_log = access_log
        self.tracing = tracing
        self._tracing = tracing if tracing is not None and tracing.enabled else None
        self.ledger = ledger

    def started(self, trace: RequestTrace, table: RouteTable) -> None:
        trace.known_route = self.metrics.route_label(table, trace.route)
        self.metrics.started(trace.known_route)

    def cache_lookup(self, trace: RequestTrace) -> None:
        if trace.cache is not None:
            self.metrics.cache(trace.known_route, trace.cache)

    def ended(self, trace: RequestTrace, facts: RequestFacts) -> None:
        metrics = self.metrics
        if trace.known_route:
            metrics.finished(trace.known_route)
        metrics.request_done(trace, facts.ended - facts.started)
        if self._tracing is not None:
            self._tracing.record(trace, facts.request_id, facts.wall_ns, facts.started, facts.ended)
        if self.access_log is not None:
            millis = (facts.ended - facts.started) * 1000
            self.access_log.record(trace, facts.method, facts.path, facts.request_id, millis)
        ledger = self.ledger
        if ledger is not None and ledger.enabled:
            ledger.record(usage_row(trace, facts, time.time()))

    def metrics_page(self) -> tuple[bytes, str]:
        return self.metrics.render(), CONTENT_TYPE
