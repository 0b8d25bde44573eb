"""Prometheus metrics, on a registry of our own, served at ``GET /metrics``.

Per request the app hands its finished :class:`RequestTrace` to :meth:`Metrics.request_done`,
which turns it into counter and histogram updates; nothing else on the request path
touches a metric (the in-flight gauge aside). Label children are cached by label
values, so a request costs a few dict look-ups and locked increments, not
``labels()`` calls. Breaker state is not pushed at all: a collector reads it from the
rules in force at scrape time.

Labels never carry secrets or free text from clients: ``route`` is a route of the
config (or a configured ``provider:model`` target asked for directly), else ``"-"``;
``target`` is a ``provider:model`` that some route names, else ``"-"``. So a client
that invents model names cannot grow the number of series.

Cost is not exported: prices belong with the cost tables of a later issue.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric

    from rules import RouteTable

    from ..http._overload import Overload
    from ..routing._request import RequestTrace
    from ..routing._runtime import Runtime

__all__ = ["CONTENT_TYPE", "OUTCOMES", "RELOAD_RESULTS", "Metrics"]

CONTENT_TYPE = CONTENT_TYPE_LATEST

#: ``requests_total`` outcomes; ``internal_error`` is a bug of ours (the log has it).
OUTCOMES = (
    "ok",
    "client_error",
    "upstream_error",
    "timeout",
    "rate_limited",
    "unavailable",
    "cancelled",
    "internal_error",
)
RELOAD_RESULTS = ("success", "failure", "unchanged")

# LLM answers take seconds to minutes; prometheus-client's default buckets stop at 10 s.
_DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300)
_TTFT_BUCKETS = (0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2.5, 5, 10, 20, 30, 60)
_CIRCUIT = {"closed": 0.0, "half_open": 1.0, "open": 2.0}


class Metrics:
    """Every metric of one daemon, and the text ``GET /metrics`` answers.

    Args:
        runtime: Returns the rules snapshot in force (the app's ``runtime``), read at
            scrape time for breaker states; None exports no ``circuit_state``.
        overload: The overload state (connections, requests in flight, the loop's
            lag, refusals), read at scrape time; None exports none of it.
    """

    def __init__(
        self,
        runtime: Callable[[], Runtime] | None = None,
        overload: Callable[[], Overload] | None = None,
    ) -> None:
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "llm_router_requests",
            "Requests answered, by route, target and outcome.",
            ["route", "target", "outcome"],
            registry=registry,
        )
        self.duration = Histogram(
            "llm_router_request_duration_seconds",
            "Time from the request's arrival to its last byte sent.",
            ["route"],
            buckets=_DURATION_BUCKETS,
            registry=registry,
        )
        self.ttft = Histogram(
            "llm_router_time_to_first_token_seconds",
            "Streams: time from the request's arrival to its first content sent.",
            ["route", "target"],
            buckets=_TTFT_BUCKETS,
            registry=registry,
        )
        self.attempts = Counter(
            "llm_router_attempts",
            "Attempts on upstream targets, by result (ok, cancelled, or the failure kind).",
            ["target", "result"],
            registry=registry,
        )
        self.validation_failures = Counter(
            "llm_router_validation_failures",
            "Answers that failed their route's validation (validate, or the client's JSON "
            "Schema): retried or fallen back from.",
            ["route", "target"],
            registry=registry,
        )
        self.tokens = Counter(
            "llm_router_tokens",
            "Tokens, as the upstream's usage reported them.",
            ["target", "direction"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "llm_router_in_flight",
            "Requests being answered now.",
            ["route"],
            registry=registry,
        )
        self.hedges = Counter(
            "llm_router_hedges",
            "Hedges started, and requests a hedge won.",
            ["route", "result"],
            registry=registry,
        )
        self.retries = Counter(
            "llm_router_retries",
            "Retries of the same target after a fast failure.",
            ["target"],
            registry=registry,
        )
        self.fallbacks = Counter(
            "llm_router_fallbacks",
            "Moves to the next candidate after a failure.",
            ["route"],
            registry=registry,
        )
        self.resumes = Counter(
            "llm_router_resumes",
            "Tries to resume a broken stream on another target, by the target that took "
            "over (or broke, when none did) and outcome (resumed, failed).",
            ["route", "target", "outcome"],
            registry=registry,
        )
        self.split_arms = Counter(
            "llm_router_split_arm",
            "Requests by the split arm they took.",
            ["route", "arm"],
            registry=registry,
        )
        self.reloads = Counter(
            "llm_router_config_reloads",
            "Config reloads, by result.",
            ["result"],
            registry=registry,
        )
        for result in RELOAD_RESULTS:
            self.reloads.labels(result)  # present at 0 from the start
        self.cost = Counter(
            "llm_router_cost_usd",
            "Estimated spend in USD (shipped or configured prices), by route, target and key.",
            ["route", "target", "key"],
            registry=registry,
        )
        self.cache_lookups = Counter(
            "llm_router_cache_lookups",
            "Response-cache lookups on routes with a cache, by result (hit, miss).",
            ["route", "result"],
            registry=registry,
        )
        self._runtime = runtime
        if runtime is not None:
            registry.register(_CircuitCollector(runtime))
            registry.register(_ConcurrencyCollector(runtime))
        if overload is not None:
            registry.register(_OverloadCollector(overload))
        self._children: dict[tuple[Any, ...], Any] = {}
        self._table: RouteTable | None = None
        self._targets: frozenset[str] = frozenset()

    # -- the request path -----------------------------------------------------------------

    def route_label(self, table: RouteTable, model: str) -> str:
        """``model`` if the config names it (a route, or a target some route names), else
        ``"-"``; also refreshes the known targets when the rules changed."""
        if table is not self._table:
            self._table = table
            self._targets = frozenset(str(t) for t in table.targets())
        if model in table.routes or model in self._targets:
            return model
        return "-"

    def started(self, route: str) -> None:
        """A request for ``route`` (a label from :meth:`route_label`) is being answered."""
        self._child(self.in_flight, route).inc()

    def finished(self, route: str) -> None:
        """The request :meth:`started` for ``route`` has ended."""
        self._child(self.in_flight, route).dec()

    def request_done(self, trace: RequestTrace, seconds: float) -> None:
        """Count a finished request (``trace.outcome`` set) that took ``seconds``."""
        route = trace.known_route or "-"
        targets = self._targets
        target = trace.target if trace.target in targets else "-"
        self._child(self.requests, route, target, trace.outcome).inc()
        self._child(self.duration, route).observe(seconds)
        if trace.ttft is not None:
            self._child(self.ttft, route, target).observe(trace.ttft)
        for record in trace.log:
            name = record.target if record.target in targets else "-"
            self._child(self.attempts, name, record.result).inc()
            if record.result == "invalid_response":
                self._child(self.validation_failures, route, name).inc()
            if record.retry:
                self._child(self.retries, name).inc()
        if trace.tokens_in:
            self._child(self.tokens, target, "in").inc(trace.tokens_in)
        if trace.tokens_out:
            self._child(self.tokens, target, "out").inc(trace.tokens_out)
        if trace.hedges:
            self._child(self.hedges, route, "started").inc(trace.hedges)
            if trace.hedge_won:
                self._child(self.hedges, route, "won").inc()
        if trace.fallbacks:
            self._child(self.fallbacks, route).inc(trace.fallbacks)
        for resumed_by, outcome in trace.resumes:
            name = resumed_by if resumed_by in targets else "-"
            self._child(self.resumes, route, name, outcome).inc()
        if trace.arm is not None and route != "-":
            self._child(self.split_arms, route, trace.arm).inc()
        if trace.cost_usd:
            # Key names come from the config, never from the request: bounded labels.
            self._child(self.cost, route, target, trace.client or "-").inc(trace.cost_usd)

    def cache(self, route: str, result: str) -> None:
        """A lookup on a route's response cache: ``"hit"`` or ``"miss"``."""
        self._child(self.cache_lookups, route, result).inc()

    def _child(self, metric: Any, *labels: str) -> Any:
        key = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(*labels)
        return child

    # -- the rest -------------------------------------------------------------------------

    def reload(self, result: str) -> None:
        """Count a config reload: ``"success"``, ``"failure"`` or ``"unchanged"``.

        Raises:
            ValueError: another result.
        """
        if result not in RELOAD_RESULTS:
            raise ValueError(f"reload result must be one of {RELOAD_RESULTS}, got {result!r}")
        self.reloads.labels(result).inc()

    def render(self) -> bytes:
        """The text exposition of every metric, for ``GET /metrics``."""
        return generate_latest(self.registry)


class _CircuitCollector(Collector):
    """``llm_router_circuit_state{target}``: 0 closed, 1 half-open, 2 open, computed from
    the breakers at scrape time (so requests pay nothing for it)."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime

    def describe(self) -> list[Metric]:
        return [self._family()]

    def collect(self) -> Iterator[Metric]:
        family = self._family()
        try:
            now = trio.current_time()
        except RuntimeError:  # scraped outside trio (a test, a thread): nothing to read
            yield family
            return
        runtime = self._runtime()
        registry = runtime.engine.registry
        for target in sorted(str(t) for t in runtime.table.targets()):
            state = registry.get(target).breaker.state(now) if target in registry else "closed"
            family.add_metric([target], _CIRCUIT[state])
        yield family

    @staticmethod
    def _family() -> GaugeMetricFamily:
        return GaugeMetricFamily(
            "llm_router_circuit_state",
            "Circuit breaker per target: 0 closed, 1 half-open, 2 open.",
            labels=["target"],
        )


class _ConcurrencyCollector(Collector):
    """``llm_router_concurrency_limit{target}``: each provider's or target's bound on
    requests at once (``limits.concurrency`` / ``adaptive``: what it has learned), and
    ``llm_router_concurrency_in_flight{target}`` against it, at scrape time."""

    def __init__(self, runtime: Callable[[], Runtime]) -> None:
        self._runtime = runtime

    def describe(self) -> list[Metric]:
        return list(self._families())

    def collect(self) -> Iterator[Metric]:
        limit, in_flight = self._families()
        limits = self._runtime().engine.limits
        try:
            gates = limits.gates() if limits is not None else {}
        except RuntimeError:  # scraped outside trio (a test, a thread): nothing to read
            gates = {}
        for key, state in sorted(gates.items()):
            limit.add_metric([key], state.limit)
            in_flight.add_metric([key], state.in_flight)
        yield limit
        yield in_flight

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        return (
            GaugeMetricFamily(
                "llm_router_concurrency_limit",
                "Requests at once a provider or target may have (adaptive: as learned).",
                labels=["target"],
            ),
            GaugeMetricFamily(
                "llm_router_concurrency_in_flight",
                "Requests in flight against that bound now.",
                labels=["target"],
            ),
        )


QUEUE_DELAY_HELP = "How long the last request admitted waited in the daemon for its turn."
OVERLOADED_HELP = "1 while the daemon refuses what cannot start at once (server.overload_lag)."


class _OverloadCollector(Collector):
    """The overload limits and where the daemon stands against them, at scrape time."""

    def __init__(self, overload: Callable[[], Overload]) -> None:
        self._overload = overload

    def describe(self) -> list[Metric]:
        return []  # registered before the app exists: nothing to read yet

    def collect(self) -> Iterator[Metric]:
        state = self._overload()
        gauges = (
            ("llm_router_connections", "Client connections held now.", state.connections),
            (
                "llm_router_max_connections",
                "The cap on client connections (server.max_connections; 0: none).",
                state.max_connections,
            ),
            (
                "llm_router_requests_in_flight",
                "Chat requests in progress now, all routes.",
                state.in_flight,
            ),
            (
                "llm_router_max_in_flight",
                "The bound on chat requests in progress (server.max_in_flight; 0: none).",
                state.max_in_flight,
            ),
            (
                "llm_router_event_loop_lag_seconds",
                "How late the event loop ran a timer, sustained (the least of 200 ms).",
                state.lag,
            ),
            (
                "llm_router_concurrency_limit",
                "Requests that may be in progress at once, learned from the loop's lag.",
                state.concurrency.limit,
            ),
            (
                "llm_router_requests_queued",
                "Requests waiting for their turn under the learned concurrency limit.",
                state.queued,
            ),
            ("llm_router_queue_delay_seconds", QUEUE_DELAY_HELP, state.delay.latest),
            ("llm_router_overloaded", OVERLOADED_HELP, int(state.overloaded)),
        )
        for name, documentation, value in gauges:
            yield GaugeMetricFamily(name, documentation, value=value)
        refusals = CounterMetricFamily(
            "llm_router_overload_refusals",
            "Requests or connections refused because the daemon was saturated, by reason.",
            labels=["reason"],
        )
        for reason, count in sorted(state.refused.items()):
            refusals.add_metric([reason], count)
        yield refusals
