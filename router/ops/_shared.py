"""``server.shared_state``: the daemon's link to the shared Redis, and its metrics.

``llm_router_shared_state_up`` is 1 while the shared state is in use and 0 while the
daemon serves on its own accounting (Redis unreachable or too slow);
``llm_router_shared_state_errors_total`` counts the Redis calls that failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..traffic.shared._link import SharedLink
from ..traffic.shared._traffic import SharedTraffic

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from prometheus_client.metrics_core import Metric

    from rules import Config, SecretRef

    from ..traffic._controls import Controls
    from ._metrics import Metrics

__all__ = ["SharedStateCollector", "share_state"]


class SharedStateCollector(Collector):
    """The link's state and failed calls, read at scrape time."""

    def __init__(self, link: SharedLink) -> None:
        self._link = link

    def describe(self) -> list[Metric]:
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily(
            "llm_router_shared_state_up",
            "1 while the shared state (Redis) is in use, 0 while serving on local accounting.",
            value=1.0 if self._link.ok else 0.0,
        )
        yield CounterMetricFamily(
            "llm_router_shared_state_errors",
            "Calls to the shared state (Redis) that failed or timed out.",
            value=self._link.errors,
        )


def share_state(
    config: Config, secrets: Mapping[SecretRef, str], controls: Controls, metrics: Metrics
) -> SharedLink | None:
    """The link to ``server.shared_state`` (None when unset), its traffic side plugged
    into ``controls`` and its metrics into ``metrics``; run ``link.run`` in the daemon's
    nursery."""
    shared = config.server.shared_state
    if shared is None:
        return None
    password = secrets[shared.password] if shared.password is not None else None
    link = SharedLink(shared, password)
    controls.shared = SharedTraffic(link, controls.budgets)
    metrics.registry.register(SharedStateCollector(link))
    return link
