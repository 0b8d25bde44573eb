"""Remote secrets (``aws-sm:``, ``vault:``): cached, refreshed, reported.

A remote value is fetched when a config that names it is loaded, then kept for
``[secrets] ttl``. :meth:`RemoteSecrets.run`, in the daemon's nursery, fetches each
value again when its time is up; when one changed, it asks for a reload, which builds
the providers anew with the new value (exactly as a rotated ``file:`` secret does).
A refresh that fails keeps the value in force, is logged once (until it succeeds
again), counted in ``llm_router_secret_refreshes_total{result="failure"}``, shown by
``llm_router_secrets_stale`` and in ``/admin/status``, and is tried again sooner
(:data:`RETRY`) than a healthy value.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from rules import ConfigError, find_secrets

from ._secret_fetch import AwsSigner, fetch_remote, vault_token_ref

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Iterator, Mapping

    from prometheus_client.core import Metric

    from rules import AwsSecretsConfig, Config, SecretRef, SecretsConfig

__all__ = ["RemoteSecrets", "SecretsCollector"]

log = logging.getLogger("llm_router")

#: Seconds before a failed refresh is tried again (or the ttl, if shorter).
RETRY = 30.0


@attrs.define
class _Entry:
    value: str = attrs.field(repr=False)
    due: float  # trio time the value is fetched again
    failing: str | None = None  # why the last refresh failed, while it does
    failing_since: float | None = None  # wall time


class RemoteSecrets:
    """The remote secrets of one daemon: their values, when each is due, what failed."""

    def __init__(self) -> None:
        self._entries: dict[SecretRef, _Entry] = {}
        self._signers: dict[AwsSecretsConfig, AwsSigner] = {}
        self._wake: trio.Event | None = None
        self.counts = {"success": 0, "failure": 0}

    async def get(self, ref: SecretRef, settings: SecretsConfig, vault_token: str | None) -> str:
        """The value of ``ref``: the cached one while it is fresh, else fetched.

        Raises:
            ConfigError: it was never fetched and cannot be now.
        """
        entry = self._entries.get(ref)
        if entry is not None and trio.current_time() < entry.due:
            return entry.value
        return await self._fetch(ref, settings, vault_token)

    async def _fetch(self, ref: SecretRef, settings: SecretsConfig, vault_token: str | None) -> str:
        entry = self._entries.get(ref)
        signer = self._signers.setdefault(settings.aws, AwsSigner(settings.aws))
        try:
            value = await fetch_remote(ref, settings, vault_token=vault_token, aws=signer)
        except ConfigError as exc:
            self.counts["failure"] += 1
            if entry is None:
                raise
            reason = "; ".join(exc.errors)
            if entry.failing is None:  # once per streak of failures
                log.warning("secret %s: refresh failed, the value in use stays: %s", ref, reason)
                entry.failing_since = time.time()
            entry.failing = reason
            entry.due = trio.current_time() + min(settings.ttl, RETRY)
            return entry.value
        self.counts["success"] += 1
        if entry is not None and entry.failing is not None:
            log.info("secret %s: refreshed again", ref)
        self._entries[ref] = _Entry(value, trio.current_time() + settings.ttl)
        if entry is None and self._wake is not None:
            self._wake.set()  # a new secret: the refresh loop recomputes its next time
        return value

    async def refresh(self, config: Config, values: Mapping[SecretRef, str]) -> bool:
        """Fetch each remote secret of ``config`` that is due; forget those it no longer
        names. True when a value changed.

        Args:
            config: The config in force.
            values: Its secrets' values (the Vault token among them).
        """
        named = {ref for _, ref in find_secrets(config) if ref.remote}
        for ref in [ref for ref in self._entries if ref not in named]:
            del self._entries[ref]
        token_ref = vault_token_ref(config.secrets)
        token = values.get(token_ref) if token_ref is not None else None
        changed = False
        now = trio.current_time()
        for ref, entry in list(self._entries.items()):
            if entry.due <= now:
                value = await self._fetch(ref, config.secrets, token)
                changed = changed or value != entry.value
        return changed

    def next_due(self) -> float:
        """When the next value is due (infinity: none held)."""
        return min((entry.due for entry in self._entries.values()), default=math.inf)

    async def run(
        self,
        current: Callable[[], tuple[Config, Mapping[SecretRef, str]]],
        changed: Callable[[str], Awaitable[Any]],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Refresh the values as they fall due, until cancelled; ``changed`` is awaited
        (a reload) when one changed.

        Args:
            current: The config in force and its secrets' values.
            changed: Called with a reason when a refreshed value differs.
        """
        task_status.started()
        while True:
            self._wake = trio.Event()
            with trio.move_on_at(self.next_due()):
                await self._wake.wait()
                continue  # a new secret: its due time may be the next
            config, values = current()
            if await self.refresh(config, values):
                await changed("a remote secret changed")

    def status(self) -> dict[str, Any]:
        """The ``secrets`` part of ``/admin/status`` (references only, never values)."""
        return {
            "secrets": {
                "remote": sorted(str(ref) for ref in self._entries),
                "stale": [
                    {
                        "secret": str(ref),
                        "since": _iso(entry.failing_since),
                        "error": entry.failing,
                    }
                    for ref, entry in sorted(self._entries.items(), key=lambda i: str(i[0]))
                    if entry.failing is not None
                ],
                "refreshes": dict(self.counts),
            }
        }

    @property
    def stale(self) -> int:
        """How many values in use could not be refreshed last time."""
        return sum(entry.failing is not None for entry in self._entries.values())


class SecretsCollector(Collector):
    """``llm_router_secret_refreshes_total{result}`` and ``llm_router_secrets_stale``."""

    def __init__(self, store: RemoteSecrets) -> None:
        self._store = store

    def describe(self) -> list[Metric]:
        return list(self.collect())

    def collect(self) -> Iterator[Metric]:
        fetches = CounterMetricFamily(
            "llm_router_secret_refreshes",
            "Fetches of remote secrets (aws-sm:, vault:), by result (success, failure).",
            labels=["result"],
        )
        for result, count in sorted(self._store.counts.items()):
            fetches.add_metric([result], count)
        yield fetches
        yield GaugeMetricFamily(
            "llm_router_secrets_stale",
            "Remote secrets whose last refresh failed: the previous value stays in use.",
            value=self._store.stale,
        )


def _iso(wall: float | None) -> str | None:
    return None if wall is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
