"""The daemon's lifecycle: load the rules, open upstreams, serve, drain, close.

Everything runs in one top nursery: hypercorn's server, the signal watcher, health
probes, the config watcher, the status page's sampler and the memory housekeeping.
SIGTERM or SIGINT stops accepting, lets requests in flight finish for up to
``server.drain_timeout``, then closes every upstream pool.
"""

from __future__ import annotations

import gc
import logging
import resource
import signal
import time
from functools import partial
from typing import TYPE_CHECKING, Any

import trio
from hypercorn.config import Config as HypercornConfig

from adapters import provider_kinds
from rules import Config, RouteTable, connection_warnings, load_config

from ..http._app import App
from ..http._server import ConnectionLimits, serve
from ..routing._health import health_loop
from ..traffic._state import StateFile
from ..upstream._tls import prepare_tls
from ._accesslog import AccessLog
from ._assemble import build_runtime
from ._ledger import Ledger
from ._logsafe import install as one_line_logs
from ._memory import MemoryKeeper, trimmer
from ._metrics import Metrics
from ._observability import Observability
from ._reload import Reloader
from ._secret_store import RemoteSecrets, SecretsCollector
from ._secrets import close_log_scope, protect_logs, secrets_for
from ._shared import share_state, shared_tls
from ._state_metrics import StateCollector
from ._systemd import Notifier, binds_for, listen_fds
from ._tracing import setup_tracing
from ._upstream_tasks import UpstreamTasks
from ._usage_daemon import recover_spend, usage_status
from ._worker import WorkerSpec, reload_everywhere, watch_lifeline

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from rules import SecretRef

    from ..routing._runtime import Runtime

__all__ = ["connection_limits", "hypercorn_config", "run_daemon"]

log = logging.getLogger("llm_router")


def hypercorn_config(
    config: Config, listen: str | None = None, activated: Sequence[int] = ()
) -> HypercornConfig:
    """hypercorn's settings, from ours; users never set hypercorn's keys directly.

    Args:
        activated: Sockets systemd passed (socket activation); they win over addresses.
    """
    hc = HypercornConfig()
    hc.bind = binds_for((listen,) if listen else config.server.listen, list(activated))
    hc.graceful_timeout = config.server.drain_timeout
    hc.keep_alive_timeout = config.server.keepalive_timeout
    hc.backlog = config.server.backlog
    hc.accesslog = None  # our own access log carries route, target and request id
    hc.errorlog = logging.getLogger("hypercorn.error")
    return hc


def connection_limits(config: Config, app: App) -> ConnectionLimits:
    """What one client connection may take; the connection cap defaults to half the
    descriptor limit, so upstream connections and files always find a descriptor."""
    cap = config.server.max_connections
    if cap is None:
        soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        cap = max(1, soft // 2) if soft != resource.RLIM_INFINITY else 0
    return ConnectionLimits(read_timeout=lambda: app.runtime.read_timeout, max_connections=cap)


async def run_daemon(
    config_path: str,
    listen: str | None = None,
    *,
    log_level: str | None = None,
    worker: WorkerSpec | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve until SIGTERM/SIGINT (or cancellation). Reports the bound URLs on start.

    ``log_level`` (the command line's) wins over ``server.log_level``. ``worker``: this
    process is one of ``serve --workers N`` (:mod:`._worker`).

    SIGHUP, a change of the config file and ``POST /admin/reload`` reload the rules.

    Raises:
        ConfigError: the config is invalid or a secret cannot be resolved;
            StateFileError (one) when ``server.state_file`` cannot be read or parsed;
            UsageDbError (one) when ``server.usage_db`` cannot be opened or created.
    """
    one_line_logs()  # upstream text in a log record cannot start a line of its own
    config = load_config(config_path, kinds=provider_kinds())  # plugins load first
    if log_level is None:
        logging.getLogger().setLevel(config.server.log_level.upper())
    protect_logs()  # before any secret is used: no record shows one from here on
    remote = RemoteSecrets()  # aws-sm: and vault: values, cached and refreshed
    secrets = await secrets_for(config, remote)
    # TLS contexts: built in a worker thread, never on the loop (~40 ms each).
    tls = await prepare_tls(config, secrets)
    redis_tls = await trio.to_thread.run_sync(shared_tls, config, secrets)
    runtime = build_runtime(config, secrets=secrets, tls=tls).runtime
    for warning in connection_warnings(config.providers):
        log.warning("%s", warning)
    _tune_gc()
    access_log = AccessLog() if config.server.access_log else None
    admin_key = secrets[config.server.admin_key] if config.server.admin_key else None
    tracing = setup_tracing(config.telemetry)
    # Breaker states of the rules in force, and the overload state, read at scrape time.
    metrics = Metrics(lambda: app.runtime, lambda: app.overload)
    ledger = Ledger(config.server.usage_db)  # kept across reloads; records once a path is set
    metrics.registry.register(ledger.collector())
    metrics.registry.register(SecretsCollector(remote))
    app = App(
        runtime,
        observer=Observability(metrics, access_log, tracing, ledger),
        admin_key=admin_key,
    )
    app.status_read = lambda: usage_status(ledger, time.time())
    sharing = share_state(config, secrets, app.controls, runtime.engine, metrics, redis_tls)
    health = HealthChecks()
    upstream_tasks = UpstreamTasks()
    notifier = Notifier.from_env()
    activated = listen_fds()  # once, before anything could start a child process

    def on_reload_event(event: str) -> None:
        if event == "reloading":
            notifier.reloading("reloading rules")
            return
        state = f"serving, rules {app.runtime.table.short_digest}"
        if reloader.last_errors:
            state += f"; last reload refused ({len(reloader.last_errors)} error(s), see the log)"
        notifier.ready(state)

    reloader = Reloader(
        config_path,
        app,
        config,
        on_event=on_reload_event,
        on_swap=health.reconcile,
        overridden=[
            *(["server.listen"] if listen else []),
            *(["server.log_level"] if log_level is not None else []),
            *(worker.overridden if worker is not None else ()),
        ],
        metrics=metrics,
        start_upstreams=upstream_tasks.start,
        prepare=lambda new: ledger.switch(new.server.usage_db),
        remote=remote,
    )
    app.reload = reloader.reload
    metrics.registry.register(StateCollector(lambda: app.runtime, app.controls.budgets))
    # A full collection once a burst of connections is over, or when one is due.
    memory = MemoryKeeper(lambda: app.overload.connections, trim=trimmer())
    extra = [reloader.status, remote.status]
    if worker is not None:
        app.reload = reload_everywhere(reloader.reload, notifier)
        extra.append(worker.status)
    app.status_extra = lambda: {
        **{key: value for part in extra for key, value in part().items()},
        "memory": memory.status(),
    }
    stop = trio.Event()
    state = None
    try:
        if config.server.state_file is not None:
            # Before any task starts: a damaged file stops the start (StateFileError).
            state = StateFile(config.server.state_file, app.controls.budgets)
            await trio.to_thread.run_sync(state.load)
        if ledger.path is not None:
            await ledger.open()  # a file that cannot be used stops the start (UsageDbError)
            if sharing is None:  # shared spend lives in Redis, for every daemon
                # The ledger has every answer up to a SIGKILL; the state file may be older.
                await recover_spend(ledger.path, app.controls.budgets)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_signals, stop, reloader, nursery, notifier, config, worker)
            if worker is not None:
                nursery.start_soon(watch_lifeline, worker.lifeline, stop)
            if sharing is not None:  # one try before serving: the first requests share
                await nursery.start(sharing.run)
            nursery.start_soon(reloader.close_retired)
            await nursery.start(remote.run, partial(_in_force, app), reloader.reload)
            nursery.start_soon(app.overload.watch_lag)
            nursery.start_soon(app.timeline.run, app.gauges)  # the status page's samples
            nursery.start_soon(memory.run)
            # In the outer nursery: the watchdog keeps pinging while hypercorn drains.
            nursery.start_soon(notifier.watchdog_loop)
            if config.server.watch:
                await nursery.start(reloader.watch_file)  # a save from now on is seen
            await nursery.start(upstream_tasks.run)
            await upstream_tasks.start(runtime.engine.upstreams.values())
            if runtime.engine.batcher is not None:  # kept across reloads: started once
                await nursery.start(runtime.engine.batcher.run)
            await nursery.start(health.run)
            health.reconcile(runtime)
            if access_log is not None:
                nursery.start_soon(access_log.run)
            # Started always: a reload may give it a file. It writes its last rows once
            # hypercorn has drained (this nursery is cancelled after the server's).
            await nursery.start(ledger.run)
            if state is not None:
                nursery.start_soon(state.run)
            asgi: Any = app  # hypercorn's typed scopes vs our plain dicts
            async with trio.open_nursery() as server_nursery:
                hc = hypercorn_config(config, listen, activated)
                if worker is not None:  # the main process's sockets, whatever the file says
                    hc.bind = [f"fd://{fd}" for fd in worker.fds]
                limits = connection_limits(config, app)
                binds = await server_nursery.start(
                    partial(
                        serve,
                        asgi,
                        hc,
                        limits,
                        overload=app.overload,
                        shutdown_trigger=partial(_stopped, stop, app),
                    )
                )
                digest = runtime.table.short_digest
                log.info("llm-router serving on %s (rules %s)", " ".join(binds), digest)
                notifier.ready(f"serving on {' '.join(binds)}, rules {digest}")
                task_status.started(binds)
            # hypercorn returned: requests in flight have finished (or drain_timeout passed).
            notifier.status("drained; closing upstream connections")
            nursery.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True), trio.move_on_after(5):
            for upstream in reloader.upstreams:
                await upstream.aclose()
            await tracing.aclose()  # flush the spans still buffered
        close_log_scope()


class HealthChecks:
    """The health-probe loops of the providers in force, restarted on each reload.

    Each loop runs in a cancel scope of its own (a scope can be entered once only: one
    shared by several loops made the second provider's loop crash the daemon), and
    :func:`health_loop` turns whatever a probe raises into the provider's failure, so
    no probe can end the daemon, at start or after a reload that was answered ok.
    """

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._scopes: list[trio.CancelScope] = []

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    def reconcile(self, runtime: Runtime) -> None:
        """Stop the running probes; start one per provider with ``health`` set."""
        for scope in self._scopes:
            scope.cancel()
        self._scopes = []
        assert self._nursery is not None, "run() first"
        engine, table = runtime.engine, runtime.table
        for name, provider in table.config.providers.items():
            if provider.health is not None:
                loop = partial(
                    health_loop,
                    engine.upstreams[name],
                    provider.health,
                    engine.registry,
                    partial(_targets_of, table, name),
                )
                scope = trio.CancelScope()
                self._scopes.append(scope)
                self._nursery.start_soon(_scoped, scope, loop, name, name=f"health of {name}")


async def _scoped(scope: trio.CancelScope, fn: Callable[[], Awaitable[None]], name: str) -> None:
    with scope:
        try:
            await fn()
        except Exception as exc:  # the probes of one provider end; the daemon serves on
            # By type only: a foreign exception's message may hold a header value.
            log.error("health probes of provider %s stopped: %s", name, type(exc).__name__)


def _targets_of(table: RouteTable, provider: str) -> list[str]:
    return [str(t) for t in table.targets() if t.provider == provider]


def _in_force(app: App) -> tuple[Config, Mapping[SecretRef, str]]:
    """The config in force and its secrets' values (for the remote secrets' refresh)."""
    return app.runtime.table.config, app.runtime.secrets


def _tune_gc() -> None:
    """Fewer, later cyclic collections: +8% throughput at 256 concurrent (measured).

    Every request allocates many short-lived trio objects; at high concurrency the
    default gen-0 threshold (700) runs a collection every few requests, each walking
    all live request state. What exists at start (modules, the rules) is frozen out of
    collections for good. Serving frees most of what it allocates by reference
    counting, so at this threshold hardly any collection runs: the full collections
    are the memory housekeeping's (:mod:`._memory`), once a burst is over or when due.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 100)


async def _stopped(stop: trio.Event, app: App) -> None:
    """The server's shutdown trigger: once stopping, open status pages end their event
    streams, so that they hold no drain open (requests in flight still finish)."""
    await stop.wait()
    app.timeline.close()


async def _signals(
    stop: trio.Event,
    reloader: Reloader,
    nursery: trio.Nursery,
    notifier: Notifier,
    config: Config,
    worker: WorkerSpec | None = None,
) -> None:
    """SIGTERM/SIGINT: drain and stop. SIGHUP: reload, as nginx and systemd expect.

    Alone, a second SIGINT (Ctrl-C) ends the drain at once. A worker ignores repeats:
    it may get SIGTERM from systemd and from the main process, which itself bounds
    the drain.
    """
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
        async for signum in signals:
            if signum == signal.SIGHUP:
                nursery.start_soon(reloader.reload, "SIGHUP")
                continue
            if stop.is_set():  # a worker: already draining
                continue
            log.info("received %s: draining", signal.Signals(signum).name)
            drain = config.server.drain_timeout
            notifier.stopping(f"draining: up to {drain:g}s for requests in flight")
            stop.set()
            if worker is None:
                return
