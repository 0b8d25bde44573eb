"""``server.shared_state``: the daemon's link to the shared Redis, the hedge budget's
sync over it, and its metrics.

``llm_router_shared_state_up`` is 1 while the shared state is in use and 0 while the
daemon serves on its own accounting (Redis unreachable or too slow);
``llm_router_shared_state_errors_total`` counts the Redis calls that failed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ..routing._hedge_share import HedgeShare
from ..traffic.shared._link import SharedLink
from ..traffic.shared._traffic import SharedTraffic
from ..traffic.shared._windows import SharedWindows
from ..upstream._tls import client_tls

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from prometheus_client.metrics_core import Metric

    from rules import Config, SecretRef

    from ..routing._engine import Engine
    from ..traffic._controls import Controls
    from ..upstream._tls import ClientTLS
    from ._metrics import Metrics

__all__ = ["SharedStateCollector", "Sharing", "share_state", "shared_tls"]


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


class Sharing:
    """The link and the hedge budget's sync: :meth:`run` them in the daemon's nursery."""

    def __init__(self, link: SharedLink, hedge: HedgeShare) -> None:
        self.link = link
        self.hedge = hedge

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Reports started once the link made its first attempt (up or not)."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self.link.run)
            nursery.start_soon(self.hedge.run)
            task_status.started()


def shared_tls(config: Config, secrets: Mapping[SecretRef, str]) -> ClientTLS | None:
    """``shared_state.tls`` built (blocking: reads its files; run it off the loop); None
    without one (a ``rediss://`` URL then trusts the system's CAs).

    Raises:
        ConfigError: a file cannot be read or holds no certificate, or the key does not
            match the certificate; each names its setting, never the key.
    """
    shared = config.server.shared_state
    if shared is None or shared.tls is None:
        return None
    key = secrets.get(shared.tls.key_file) if shared.tls.key_file is not None else None
    return client_tls("shared_state", shared.tls, key, where="server.shared_state.tls")


def share_state(
    config: Config,
    secrets: Mapping[SecretRef, str],
    controls: Controls,
    engine: Engine,
    metrics: Metrics,
    tls: ClientTLS | None = None,
) -> Sharing | None:
    """The link to ``server.shared_state`` (None when unset), plugged into ``controls``
    and into the ``engine``'s target limits and hedge budget (both kept across
    reloads), its metrics into ``metrics``. ``tls``: :func:`shared_tls`'s."""
    shared = config.server.shared_state
    if shared is None:
        return None
    password = secrets[shared.password] if shared.password is not None else None
    link = SharedLink(shared, password, tls=tls)
    controls.shared = SharedTraffic(link, controls.budgets)
    if engine.limits is not None:
        engine.limits.shared = SharedWindows(link)
    metrics.registry.register(SharedStateCollector(link))
    return Sharing(link, HedgeShare(engine.budget, link))
