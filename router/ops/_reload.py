"""Hot reload: a new rules snapshot swapped in whole, or nothing at all.

Triggers: a change of the config file or of a file it references, once settled
(:mod:`._watch`), SIGHUP, and ``POST /admin/reload``. The whole file is parsed, validated
and compiled, and every provider it names is built, before anything changes; then the
new :class:`Runtime` replaces the old in one assignment. Requests in flight finish on
the snapshot they started with. Providers whose settings did not change keep their
upstream (and its pooled connections); the live state of targets that still exist
(latency, breakers, in-flight counts, the hedge budget, rate windows) carries over.
Upstreams of removed or changed providers are closed once the last request of the old
snapshot ends.

The new runtime comes from :func:`build_runtime`, as at start, so a reload applies what
a restart would: the circuit thresholds (existing breakers included), the hedge budget,
added, changed and removed rate limits, prices, keys and budgets, the admin key and the
log level. A file that fails changes nothing: the errors (with their key paths) are
logged and kept for ``/admin/status``. Settings read only at start
(:data:`RESTART_ONLY`) are reported as needing a restart, in the answer, the log line
and ``/admin/status``, until the daemon runs with them.
"""

from __future__ import annotations

import logging
import time
import traceback
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import trio

from adapters import provider_kinds
from rules import Config, ConfigError, compile_routes, connection_warnings, load_config

from ..upstream._tls import prepare_tls
from ._assemble import build_runtime, restart_needed
from ._secrets import protect_logs, secrets_for
from ._watch import ConfigWatcher, referenced_files

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Collection, Iterable

    from ..http._app import App
    from ..routing._runtime import Runtime
    from ..upstream._upstream import Upstream
    from ._metrics import Metrics
    from ._secret_store import RemoteSecrets

__all__ = ["ReloadResult", "Reloader"]

log = logging.getLogger("llm_router")

#: Reloads remembered for ``/admin/status`` and the status page.
RECENT = 10


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
        config: The config the daemon started with (restart-only settings come from it).
        on_event: Called with ``"reloading"``/``"ready"`` around a reload (systemd).
        on_swap: Called with each new runtime once it is in force.
        start_upstreams: Awaited with a new runtime's upstreams before it is swapped
            in, so that their background work runs before their first request.
        prepare: Awaited with a valid new config, last before the swap (the usage
            ledger opens its file); a ConfigError it raises refuses the reload.
        remote: The daemon's cache of remote secrets (``aws-sm:``, ``vault:``).
        overridden: Settings the command line gave (``server.listen``,
            ``server.log_level``): the file's value neither applies nor asks for a restart.
    """

    def __init__(
        self,
        path: str,
        app: App,
        config: Config,
        on_event: Callable[[str], None] | None = None,
        on_swap: Callable[[Runtime], None] | None = None,
        *,
        overridden: Collection[str] = (),
        metrics: Metrics | None = None,
        start_upstreams: Callable[[Iterable[Upstream]], Awaitable[None]] | None = None,
        prepare: Callable[[Config], Awaitable[None]] | None = None,
        remote: RemoteSecrets | None = None,
    ) -> None:
        self.path = Path(path)
        self.app = app
        self.metrics = metrics
        self.started = config
        self._on_event = on_event or (lambda _: None)
        self._on_swap = on_swap
        self._start_upstreams = start_upstreams
        self._prepare = prepare
        self._remote = remote
        self._overridden = frozenset(overridden)
        self._pending: list[Upstream] = []
        self._lock = trio.Lock()
        self._retired: trio.MemorySendChannel[tuple[Runtime, tuple[Upstream, ...]]]
        self._retired_rx: trio.MemoryReceiveChannel[tuple[Runtime, tuple[Upstream, ...]]]
        self._retired, self._retired_rx = trio.open_memory_channel(16)
        self.last_attempt: float | None = None
        self.last_success: float | None = None
        self.last_errors: tuple[str, ...] = ()
        self.restart_needed: tuple[str, ...] = ()
        self.counts = {"success": 0, "failure": 0, "unchanged": 0}
        #: The last reloads, newest last: when, why, the result, the errors.
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)

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
                "recent": list(self.recent),
            }
        }

    async def reload(self, reason: str = "request") -> ReloadResult:
        """Load the file again; swap the rules if it is valid and changed."""
        async with self._lock:  # one reload at a time; a burst queues up behind it
            self._on_event("reloading")
            try:
                result = await self._reload(reason)
            finally:
                self._on_event("ready")
            self.recent.append(
                {
                    "at": _iso(self.last_attempt),
                    "reason": reason,
                    "result": _result_name(result),
                    "rules": result.digest[:12],
                    "errors": list(result.errors),
                }
            )
            return result

    async def _reload(self, reason: str) -> ReloadResult:
        self.last_attempt = time.time()
        old = self.app.runtime
        try:
            config = await trio.to_thread.run_sync(_load, str(self.path))
            # Off the loop, each within a deadline; remote ones from the cache while fresh.
            secrets = await secrets_for(config, self._remote)
            table = compile_routes(config)
            tls = await prepare_tls(config, secrets)  # off the loop: files and contexts
            digests = {name: t.digest for name, t in tls.items()}
            if table.digest == old.table.digest and secrets == old.secrets and digests == old.tls:
                self._count("unchanged")
                log.info("reload (%s): no change (rules %s)", reason, old.table.short_digest)
                return ReloadResult(True, old.table.digest, restart_needed=self.restart_needed)
            built = build_runtime(config, old, table=table, secrets=secrets, tls=tls)
            if self._prepare is not None:
                await self._prepare(config)
        except ConfigError as exc:
            return self._failed(exc.errors, old, reason)
        except Exception as exc:  # a plugin's adapter, say: refused, never the daemon's end
            return self._failed((_unexpected(exc),), old, reason)
        runtime = built.runtime
        if self._start_upstreams is not None:
            await self._start_upstreams(runtime.engine.upstreams.values())
        self.app.runtime = runtime
        for warning in connection_warnings(config.providers):
            log.warning("%s", warning)
        _log_auth_change(old, runtime, reason)
        self.app.controls.configure(config)
        self._apply_server(config)
        old.users.retired = True
        if self._on_swap is not None:
            self._on_swap(runtime)
        if built.retired:
            self._pending.extend(built.retired)
            await self._retired.send((old, built.retired))
        self._count("success")
        self.last_success = time.time()
        self.last_errors = ()
        log.info(
            "reload (%s): rules %s -> %s (%d provider(s) rebuilt, %d closed when idle)%s",
            reason,
            old.table.short_digest,
            table.short_digest,
            len(built.rebuilt),
            len(built.retired),
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

    def _apply_server(self, config: Config) -> None:
        """Server settings that apply live; the others are reported."""
        needed = restart_needed(self.started, config)
        self.restart_needed = tuple(key for key in needed if key not in self._overridden)
        admin_key = config.server.admin_key
        self.app.admin_key = self.app.runtime.secrets[admin_key] if admin_key else None
        if "server.log_level" not in self._overridden:
            logging.getLogger().setLevel(config.server.log_level.upper())
            protect_logs()  # the header-printing loggers follow, never below INFO

    @property
    def upstreams(self) -> list[Upstream]:
        """Every upstream still open: those in force and those retired but not closed."""
        return [*self.app.runtime.engine.upstreams.values(), *self._pending]

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

    async def watch_file(
        self,
        *,
        quiet: float = 0.5,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Reload on changes of the config file and the files it references, once they
        have settled (:class:`ConfigWatcher`), until cancelled.

        Reports started (``nursery.start``) once the files are watched: a change made
        after that is seen.
        """
        watcher = ConfigWatcher(
            str(self.path),
            self.reload,
            lambda: referenced_files(self.app.runtime.table.config),
            quiet=quiet,
        )
        await watcher.run(task_status=task_status)


def _result_name(result: ReloadResult) -> str:
    if not result.ok:
        return "failure"
    return "success" if result.changed else "unchanged"


def _unexpected(exc: Exception) -> str:
    """An unexpected failure, by type and place only: a foreign message may hold a key."""
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"building the new rules failed: {type(exc).__name__}{where}"


def _log_auth_change(old: Runtime, new: Runtime, reason: str) -> None:
    """Say loudly when a reload changes who may call: a file saved without its keys
    switches client auth off, and that must not pass unnoticed."""
    before, after = old.keys.digests, new.keys.digests
    if before == after:
        return
    if not after:
        log.warning(
            "reload (%s): client keys disabled: every caller is let in (%d key(s) removed)",
            reason,
            len(before),
        )
    elif not before:
        log.warning("reload (%s): client keys enabled: %d key(s)", reason, len(after))
    else:
        log.warning(
            "reload (%s): client keys changed: %d key(s) added, %d removed, %d in force",
            reason,
            len(after - before),
            len(before - after),
            len(after),
        )


def _iso(wall: float | None) -> str | None:
    return None if wall is None else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def _load(path: str) -> Config:
    """The config at ``path``, with plugins' kinds (newly installed ones too)."""
    return load_config(path, kinds=provider_kinds())
