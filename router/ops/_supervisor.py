"""``serve --workers N``: the main process, which binds, starts and watches N workers.

The main process loads the config (to fail fast on a broken file and to learn where
to listen), binds the listening sockets once (:mod:`._listeners`) and starts each
worker as a fresh interpreter (``python -m router serve ... --worker SPEC``): a fork
of a process running trio would copy its threads' locks mid-state, and a fresh
process costs only its start. Workers inherit their sockets and a lifeline
(:mod:`._worker`) and serve on their own; the main process serves no request.

It is to its workers what systemd is to a daemon: their ``sd_notify`` messages come to
a datagram socket of its own, and the kernel names the sending pid (``SO_PASSCRED``),
so messages from any other process are ignored. From them it tells systemd (when
``$NOTIFY_SOCKET`` is set) ``READY=1`` once every worker is ready, ``RELOADING=1``
while any reloads, ``STOPPING=1`` when it drains, and pings systemd's watchdog while
its workers ping theirs: a worker whose event loop is stuck past ``WatchdogSec=``
is killed and replaced.

Signals: SIGHUP is forwarded to every worker (each reloads; a broken file is refused
by each, the old rules serving on). SIGTERM or SIGINT is forwarded as SIGTERM; the
workers drain, and after ``server.drain_timeout`` (plus a margin) any left are
killed; then it exits 0. A worker that exits while serving is logged and replaced,
after a pause that doubles (up to 30 s) while replacements keep dying young; one that
exits before the first start is complete fails the start (exit status 1): its error
is on stderr.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import signal
import socket
import struct
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import trio

from ._listeners import open_listeners, url_of
from ._systemd import Notifier, binds_for, listen_fds
from ._worker import RELOAD_ALL, WorkerSpec

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from rules import Config

__all__ = ["Supervisor"]

log = logging.getLogger("llm_router")

#: A replacement's pause after a worker died: doubled while workers die young.
FIRST_PAUSE = 0.5
MAX_PAUSE = 30.0
#: A worker that served this long before it died was not crash-looping.
HEALTHY_AFTER = 60.0
#: Beyond ``drain_timeout``, what workers get to exit before they are killed.
EXIT_MARGIN = 5.0
_CREDENTIALS = struct.Struct("3i")  # struct ucred: pid, uid, gid


@attrs.define
class Worker:
    """One worker slot: its sockets stay, its process is replaced."""

    index: int
    sockets: tuple[socket.socket, ...]
    process: trio.Process | None = None
    ready: bool = False
    reloading: bool = False
    status: str = ""
    last_ping: float = 0.0
    pause: float = FIRST_PAUSE


class Supervisor:
    """Runs ``count`` workers of the daemon for ``config_path``.

    Args:
        config: The config as loaded at start (listen addresses, backlog, drain).
        listen: ``--listen``, when given; ``log_level``: ``--log-level``, when given.
        overridden: Settings the command line gave (passed on to the workers).
    """

    def __init__(
        self,
        config_path: str,
        config: Config,
        count: int,
        *,
        listen: str | None = None,
        log_level: str | None = None,
        overridden: tuple[str, ...] = (),
    ) -> None:
        self.config_path = config_path
        self.config = config
        self.count = count
        self.listen = listen
        self.log_level = log_level
        self.overridden = overridden
        self.notifier = Notifier.from_env()
        self.workers: list[Worker] = []
        self.urls: list[str] = []
        self.started = False
        self.failed = False
        self.stopping = trio.Event()
        self._reloading = False
        self._nursery: trio.Nursery | None = None
        self._notify_address = ""
        self._lifeline = -1

    async def run(self) -> int:
        """Serve until SIGTERM/SIGINT; 0 after a drain, 1 when the start failed."""
        activated = listen_fds()  # the LISTEN_* variables go: no worker sees them
        binds = binds_for((self.listen,) if self.listen else self.config.server.listen, activated)
        per_worker = open_listeners(binds, self.count, self.config.server.backlog)
        self.workers = [Worker(i + 1, s) for i, s in enumerate(per_worker)]
        self.urls = [url_of(sock) for sock in per_worker[0]]
        lifeline, self._lifeline = os.pipe()  # we hold the write end only, until we exit
        receiver = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            receiver.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
            await receiver.bind(f"\0llm-router-{os.getpid()}-{os.urandom(6).hex()}")
            self._notify_address = "@" + receiver.getsockname()[1:].decode()
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as sigs:
                async with trio.open_nursery() as nursery:
                    self._nursery = nursery
                    nursery.start_soon(self._signals, sigs)
                    nursery.start_soon(self._receive, receiver)
                    nursery.start_soon(self.notifier.watchdog_loop)
                    nursery.start_soon(self._watchdog)
                    async with trio.open_nursery() as slots:
                        for worker in self.workers:
                            slots.start_soon(self._keep, worker, lifeline)
                    nursery.cancel_scope.cancel()  # every worker has exited
        finally:
            receiver.close()
            os.close(lifeline)
            os.close(self._lifeline)
            for worker in self.workers:
                for sock in worker.sockets:
                    sock.close()
        if self.failed:
            return 1
        log.info("all workers have exited")
        return 0

    async def _keep(self, worker: Worker, lifeline: int) -> None:
        """Run the worker's process, and a new one each time it exits, until stopped."""
        while not self.stopping.is_set():
            process = await self._spawn(worker, lifeline)
            born = trio.current_time()
            code = await process.wait()
            worker.process = None
            worker.ready = worker.reloading = False
            if self.stopping.is_set():
                return
            how = _exit_text(code)
            if not self.started:
                log.error(
                    "worker %d exited (%s) before it was ready: not starting", worker.index, how
                )
                self._stop(failed=True)
                return
            lived = trio.current_time() - born
            worker.pause = FIRST_PAUSE if lived >= HEALTHY_AFTER else worker.pause
            log.error(
                "worker %d (pid %d) exited (%s) after %.0f s; starting another in %.1f s",
                worker.index,
                process.pid,
                how,
                lived,
                worker.pause,
            )
            self.notifier.status(self._summary())
            with trio.move_on_after(worker.pause):
                await self.stopping.wait()
            worker.pause = min(worker.pause * 2, MAX_PAUSE)

    async def _spawn(self, worker: Worker, lifeline: int) -> trio.Process:
        fds = tuple(sock.fileno() for sock in worker.sockets)
        spec = WorkerSpec(worker.index, self.count, fds, lifeline, self.overridden)
        # -P and PYTHONPATH: the worker imports the main process's own package, never a
        # `router` folder that happens to be in the working directory.
        argv = [sys.executable, "-P", "-m", "router", "serve", "--config", self.config_path]
        if self.log_level is not None:
            argv += ["--log-level", self.log_level]
        argv += ["--worker", spec.encode()]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("WATCHDOG_", "NOTIFY_"))}
        env["NOTIFY_SOCKET"] = self._notify_address
        env["PYTHONPATH"] = os.pathsep.join(filter(None, (_PACKAGE_ROOT, env.get("PYTHONPATH"))))
        interval = self.notifier.watchdog_interval()
        if interval is not None:  # the workers ping us as often as we ping systemd
            env["WATCHDOG_USEC"] = str(int(interval * 2_000_000))
        process = await trio.lowlevel.open_process(
            argv,
            pass_fds=(*set(fds), lifeline),
            env=env,
            process_group=0,  # a Ctrl-C reaches the main process only; it forwards
        )
        worker.process = process
        worker.last_ping = trio.current_time()
        log.info("worker %d started (pid %d)", worker.index, process.pid)
        return process

    async def _receive(self, receiver: trio.socket.SocketType) -> None:
        """The workers' notify messages, each matched to its worker by the sender's pid."""
        space = socket.CMSG_SPACE(_CREDENTIALS.size)
        while True:
            data, ancillary, _, _ = await receiver.recvmsg(4096, space)
            pid = next(
                (
                    _CREDENTIALS.unpack(cdata[: _CREDENTIALS.size])[0]
                    for level, kind, cdata in ancillary
                    if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
                ),
                None,
            )
            worker = next(
                (w for w in self.workers if w.process is not None and w.process.pid == pid), None
            )
            if worker is not None:
                self._note(worker, data.decode(errors="replace").splitlines())

    def _note(self, worker: Worker, lines: list[str]) -> None:
        fields = dict(line.partition("=")[::2] for line in lines)
        worker.status = fields.get("STATUS", worker.status)
        worker.last_ping = trio.current_time()
        if fields.get("RELOADING") == "1":
            worker.reloading = True
        if fields.get("READY") == "1":
            if not worker.ready and self.started:  # a replacement
                log.info("worker %d ready again", worker.index)
                self.notifier.status(self._summary(worker))
            worker.ready, worker.reloading = True, False
        if RELOAD_ALL in lines:
            self._forward(signal.SIGHUP, but=worker)
        self._tell_systemd()

    def _tell_systemd(self) -> None:
        """The workers' state, summed up for systemd (and the start's log line)."""
        if self.stopping.is_set():
            return
        if not self.started:
            if all(w.ready for w in self.workers):
                self.started = True
                log.info(
                    "llm-router serving on %s with %d workers (%s)",
                    " ".join(self.urls),
                    self.count,
                    self._rules(),
                )
                self.notifier.ready(self._summary())
            return
        reloading = any(w.reloading for w in self.workers)
        if reloading and not self._reloading:
            self._reloading = True
            self.notifier.reloading("reloading rules")
        elif not reloading and self._reloading:
            self._reloading = False
            self.notifier.ready(self._summary())

    def _summary(self, also: Worker | None = None) -> str:
        ready = sum(w.ready or w is also for w in self.workers)
        refused = any("refused" in w.status for w in self.workers)
        return (
            f"{ready} of {self.count} workers serving on {' '.join(self.urls)}, {self._rules()}"
            + ("; last reload refused (see the log)" if refused else "")
        )

    def _rules(self) -> str:
        digests = sorted({m.group(1) for w in self.workers if (m := _RULES.search(w.status))})
        return f"rules {', '.join(digests) or '?'}"

    async def _signals(self, signals: AsyncIterator[int]) -> None:
        async for signum in signals:
            if signum == signal.SIGHUP:
                log.info("received SIGHUP: reloading every worker")
                self._forward(signal.SIGHUP)
                continue
            if self.stopping.is_set():
                continue
            log.info("received %s: draining every worker", signal.Signals(signum).name)
            self._stop(failed=False)

    def _stop(self, *, failed: bool) -> None:
        if self.stopping.is_set():
            return
        self.failed = failed
        self.stopping.set()
        drain = self.config.server.drain_timeout
        self.notifier.stopping(f"draining: up to {drain:g}s for requests in flight")
        self._forward(signal.SIGTERM)
        assert self._nursery is not None, "run() first"
        self._nursery.start_soon(self._kill_after, drain + EXIT_MARGIN)

    async def _kill_after(self, seconds: float) -> None:
        await trio.sleep(seconds)
        for worker in self.workers:
            if worker.process is not None and worker.process.returncode is None:
                log.error("worker %d did not exit in time: killing it", worker.index)
                worker.process.kill()

    async def _watchdog(self) -> None:
        """Kill a worker that stopped pinging (its loop is stuck); it is replaced."""
        interval = self.notifier.watchdog_interval()
        if interval is None:
            return
        while True:
            await trio.sleep(interval)
            now = trio.current_time()
            for worker in self.workers:
                process = worker.process
                silent = now - worker.last_ping > 2 * interval
                # Not before it is ready: a worker's start may take longer than a period.
                if process is not None and worker.ready and silent:
                    log.error(
                        "worker %d (pid %d) stopped pinging: killing it", worker.index, process.pid
                    )
                    process.kill()

    def _forward(self, signum: int, *, but: Worker | None = None) -> None:
        for worker in self.workers:
            if worker is not but and worker.process is not None:
                with contextlib.suppress(ProcessLookupError):  # it just exited
                    worker.process.send_signal(signum)


_RULES = re.compile(r"rules (\w+)")
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # the folder holding `router`


def _exit_text(code: int) -> str:
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"status {code}"
