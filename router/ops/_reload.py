"""Hot reload: a new rules snapshot swapped in whole, or nothing at all.

Triggers: a change of the config file (watchfiles on its directory, so editors that
save by writing a new file and renaming it over the old one are seen; bursts are
debounced), SIGHUP, and ``POST /admin/reload``. The whole file is parsed, validated
and compiled, and every provider it names is built, before anything changes; then the
new :class:`Runtime` replaces the old in one assignment. Requests in flight finish on
the snapshot they started with. Providers whose settings did not change keep their
upstream (and its pooled connections); the live state of targets that still exist
(latency, breakers, in-flight counts, the hedge budget) carries over. Upstreams of
removed or changed providers are closed once the last request of the old snapshot ends.

A file that fails changes nothing: the errors (with their key paths) are logged and kept
for ``/admin/status``. Settings that cannot change while serving (the listen address,
the drain timeout) are reported as needing a restart.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import aclosing
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from adapters import provider_kinds
from rules import Config, ConfigError, ProviderConfig, compile_routes, load_config

from ..routing._engine import Engine
from ..routing._runtime import Runtime
from ..traffic._cost import PriceTable
from ..traffic._keys import KeyRing
from ..traffic._targetlimits import observe_headers
from ..upstream._providers import build_upstream

if TYPE_CHECKING:
    from collections.abc import Callable

    from rules import RouteTable

    from ..http._app import App
    from ..routing._stats import TargetRegistry
    from ..upstream._upstream import Upstream
    from ._metrics import Metrics

__all__ = ["ReloadResult", "Reloader"]

log = logging.getLogger("llm_router")

# Settings applied at start only.
_RESTART_ONLY = ("server.listen", "server.drain_timeout", "server.state_file", "telemetry")


@attrs.frozen
class ReloadResult:
    """What one reload did."""

    ok: bool
    digest: str  # the rules in force afterwards
    changed: bool = False
    errors: tuple[str, ...] = ()
    restart_needed: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": self.ok, "rules": self.digest, "changed": self.changed}
        if self.errors:
            body["errors"] = list(self.errors)
        if self.restart_needed:
            body["restart_needed"] = list(self.restart_needed)
        return body


class Reloader:
    """Builds and swaps rules snapshots for one App.

    Args:
        path: The config file.
        app: Its ``runtime`` is replaced on success.
        config: The config in force at start.
        upstreams: Provider name -> upstream, as built at start (this object keeps it up
            to date; the daemon closes what it holds at exit).
        on_event: Called with ``"reloading"``/``"ready"`` around a reload (systemd).
    """

    def __init__(
        self,
        path: str,
        app: App,
        config: Config,
        upstreams: dict[str, Upstream],
        on_event: Callable[[str], None] | None = None,
        on_swap: Callable[[Config, dict[str, Upstream], TargetRegistry, RouteTable], None]
        | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self.path = Path(path)
        resolved = self.path.resolve()
        self._watched = (str(resolved.parent), resolved.name)
        self.app = app
        self.metrics = metrics
        self.config = config
        self.upstreams = upstreams
        self._built_with = {name: _build_key(p, config) for name, p in config.providers.items()}
        self._on_event = on_event or (lambda _: None)
        self._on_swap = on_swap
        self._pending: list[Upstream] = []
        self._lock = trio.Lock()
        self._retired: trio.MemorySendChannel[tuple[Runtime, list[Upstream]]]
        self._retired_rx: trio.MemoryReceiveChannel[tuple[Runtime, list[Upstream]]]
        self._retired, self._retired_rx = trio.open_memory_channel(16)
        self.last_attempt: float | None = None
        self.last_success: float | None = None
        self.last_errors: tuple[str, ...] = ()
        self.restart_needed: tuple[str, ...] = ()
        self.counts = {"success": 0, "failure": 0, "unchanged": 0}

    def status(self) -> dict[str, Any]:
        """The ``reload`` part of ``/admin/status``."""
        return {
            "reload": {
                "last_attempt": _iso(self.last_attempt),
                "last_success": _iso(self.last_success),
                "last_errors": list(self.last_errors),
                "restart_needed": list(self.restart_needed),
                "counts": dict(self.counts),
                "retired_upstreams_open": len(self._pending),
            }
        }

    async def reload(self, reason: str = "request") -> ReloadResult:
        """Load the file again; swap the rules if it is valid and changed."""
        async with self._lock:  # one reload at a time; a burst queues up behind it
            self._on_event("reloading")
            try:
                return await self._reload(reason)
            finally:
                self._on_event("ready")

    async def _reload(self, reason: str) -> ReloadResult:
        self.last_attempt = time.time()
        old = self.app.runtime
        try:
            config = await trio.to_thread.run_sync(_load, str(self.path))
            table = compile_routes(config)
        except ConfigError as exc:
            return self._failed(exc.errors, old, reason)
        if table.digest == old.table.digest:
            self._count("unchanged")
            log.info("reload (%s): no change (rules %s)", reason, old.table.short_digest)
            return ReloadResult(True, old.table.digest, restart_needed=self.restart_needed)
        try:
            keys = KeyRing.from_config(config)
            upstreams, fresh = self._upstreams_for(config)
        except ConfigError as exc:
            return self._failed(exc.errors, old, reason)
        engine = old.engine
        if engine.limits is not None:
            engine.limits.configure(config)
            observe_headers(upstreams, engine.limits)
        engine = Engine(
            upstreams,
            config.defaults,
            registry=engine.registry,
            budget=engine.budget,
            limits=engine.limits,
            prices=PriceTable(config.prices),
        )
        engine.registry.retain([str(t) for t in table.targets()] + list(table.route_names()))
        self.app.runtime = Runtime(table, engine, keys=keys)
        self.app.controls.configure(config)
        self._apply_server(config)
        retired = [u for name, u in self.upstreams.items() if upstreams.get(name) is not u]
        self.upstreams.clear()
        self.upstreams.update(upstreams)
        self._built_with = {name: _build_key(p, config) for name, p in config.providers.items()}
        self.config = config
        old.users.retired = True
        if self._on_swap is not None:
            self._on_swap(config, upstreams, engine.registry, table)
        if retired:
            self._pending.extend(retired)
            await self._retired.send((old, retired))
        self._count("success")
        self.last_success = time.time()
        self.last_errors = ()
        log.info(
            "reload (%s): rules %s -> %s (%d provider(s) rebuilt, %d closed when idle)%s",
            reason,
            old.table.short_digest,
            table.short_digest,
            len(fresh),
            len(retired),
            f"; restart needed for {', '.join(self.restart_needed)}" if self.restart_needed else "",
        )
        return ReloadResult(True, table.digest, True, restart_needed=self.restart_needed)

    def _count(self, result: str) -> None:
        self.counts[result] += 1
        if self.metrics is not None:
            self.metrics.reload(result)

    def _failed(self, errors: tuple[str, ...], old: Runtime, reason: str) -> ReloadResult:
        self._count("failure")
        self.last_errors = errors
        log.error(
            "reload (%s) refused, rules %s stay in force:\n  %s",
            reason,
            old.table.short_digest,
            "\n  ".join(errors),
        )
        return ReloadResult(False, old.table.digest, errors=errors)

    def _upstreams_for(self, config: Config) -> tuple[dict[str, Upstream], list[str]]:
        """Every provider's upstream: the running one if its settings are unchanged."""
        upstreams: dict[str, Upstream] = {}
        fresh: list[str] = []
        errors: list[str] = []
        for name, provider in config.providers.items():
            current = self.upstreams.get(name)
            if current is not None and self._built_with.get(name) == _build_key(provider, config):
                upstreams[name] = current
                continue
            try:
                upstreams[name] = build_upstream(name, provider, config)
                fresh.append(name)
            except ConfigError as exc:
                errors.extend(exc.errors)
        if errors:
            raise ConfigError(tuple(errors))
        return upstreams, fresh

    def _apply_server(self, config: Config) -> None:
        """Server settings that apply live; the others are reported."""
        self.restart_needed = tuple(
            key for key in _RESTART_ONLY if _lookup(self.config, key) != _lookup(config, key)
        )
        admin_key = config.server.admin_key
        self.app.admin_key = admin_key.resolve() if admin_key is not None else None

    async def close_retired(self) -> None:
        """Close the upstreams of replaced snapshots once their last request ends."""
        async with self._retired_rx:
            async for runtime, upstreams in self._retired_rx:
                await runtime.users.wait_idle()
                for upstream in upstreams:
                    self._pending.remove(upstream)
                    with trio.CancelScope(shield=True), trio.move_on_after(5):
                        await upstream.aclose()
                log.info("closed %d retired upstream(s)", len(upstreams))

    def pending_retired(self) -> list[Upstream]:
        """Retired upstreams not closed yet (their old snapshot still had requests)."""
        return list(self._pending)

    async def watch_file(self, debounce_ms: int = 300) -> None:
        """Reload on changes of the config file, until cancelled."""
        from watchfiles import awatch  # only daemons that watch pay for the import

        folder, name = self._watched
        # The watch thread returns every rust_timeout ms: a cancelled watcher (shutdown)
        # waits for that thread, so keep it short (the default is 5 s).
        watcher = awatch(folder, debounce=debounce_ms, recursive=False, rust_timeout=200)
        async with aclosing(watcher) as batches:
            async for changes in batches:
                # Editors that save by rename show up as an added file of the same name.
                if any(os.path.basename(p) == name for _, p in changes):
                    await self.reload("file changed")


def _lookup(config: Config, dotted: str) -> object:
    value: object = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value


def _build_key(provider: ProviderConfig, config: Config) -> tuple[object, ...]:
    """What an upstream is built from: a change of any of it needs a new upstream."""
    return (provider, config.defaults.connect_timeout, config.server.fetch_images)


def _iso(wall: float | None) -> str | None:
    return None if wall is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def _load(path: str) -> Config:
    """The config at ``path``, with plugins' kinds (newly installed ones too)."""
    return load_config(path, kinds=provider_kinds())
