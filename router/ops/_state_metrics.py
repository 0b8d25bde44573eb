"""Gauges for alerting, computed at scrape time: route availability and budgets.

- ``llm_router_route_targets{route}`` and ``llm_router_route_available_targets{route}``:
  the targets a route can reach, and how many of them are not behind an open circuit
  (health probes feed the same breakers). A route with none available fails every
  request: the alert ``LLMRouterRouteUnavailable`` fires on ``== 0``.
- ``llm_router_budget_limit_usd{key,period}`` and ``llm_router_budget_spent_usd{key,period}``:
  each client key's budget and what it spent in the current period (a UTC day or
  month), for ``LLMRouterBudgetNearlyExhausted``.

Nothing here runs per request: the values come from the breakers and the budgets when
``/metrics`` is read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.core import Metric

    from rules import RouteTable

    from ..routing._runtime import Runtime
    from ..traffic._budgets import Budgets

__all__ = ["StateCollector"]


class StateCollector(Collector):
    """Route availability and budget gauges, read from the runtime in force."""

    def __init__(self, runtime: Callable[[], Runtime], budgets: Budgets) -> None:
        self._runtime = runtime
        self._budgets = budgets

    def describe(self) -> list[Metric]:
        return []  # registered before the app exists: nothing to read yet

    def collect(self) -> Iterator[Metric]:
        yield from self._routes()
        yield from self._budget()

    def _routes(self) -> Iterator[Metric]:
        total = GaugeMetricFamily(
            "llm_router_route_targets",
            "Targets a route can reach (its own and those of the routes it names).",
            labels=["route"],
        )
        available = GaugeMetricFamily(
            "llm_router_route_available_targets",
            "Targets of a route not behind an open circuit breaker; 0: the route fails.",
            labels=["route"],
        )
        try:
            now = trio.current_time()
        except RuntimeError:  # scraped outside trio: nothing to read
            yield total
            yield available
            return
        runtime = self._runtime()
        registry = runtime.engine.registry
        for route in runtime.table.route_names():
            targets = _targets_of(runtime.table, route)
            up = sum(
                t not in registry or registry.get(t).breaker.state(now) != "open" for t in targets
            )
            total.add_metric([route], len(targets))
            available.add_metric([route], up)
        yield total
        yield available

    def _budget(self) -> Iterator[Metric]:
        limit = GaugeMetricFamily(
            "llm_router_budget_limit_usd",
            "A client key's budget for its period (day or month, UTC).",
            labels=["key", "period"],
        )
        spent = GaugeMetricFamily(
            "llm_router_budget_spent_usd",
            "What a client key with a budget spent in the current period.",
            labels=["key", "period"],
        )
        for key, state in self._budgets.snapshot().items():
            if state.budget is None:
                continue
            period = state.budget.per
            limit.add_metric([key, period], state.budget.usd)
            used = state.spent_day if period == "day" else state.spent_month
            spent.add_metric([key, period], used)
        yield limit
        yield spent


def _targets_of(table: RouteTable, route: str) -> list[str]:
    """Every target ``route`` can reach, once each."""
    from rules import Leaf

    found: set[str] = set()
    seen: set[int] = set()
    stack = [table.routes[route]]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, Leaf):
            found.add(str(node.target))
        else:
            stack.extend(node.children)
    return sorted(found)
