"""The main process of ``serve --workers``, piece by piece in this process: what it tells
systemd as its workers report, the signals it forwards to real processes, the watchdog
that kills a silent worker, the drain that kills a worker left after it, and the
replacement of a worker that exits (its pause doubling) or that fails the start.

(The whole, with real workers, is in ``test_workers_e2e.py``.)
"""

from __future__ import annotations

import signal
import socket
import subprocess
import uuid
from typing import TYPE_CHECKING

import pytest
import trio

from adapters import provider_kinds
from router.ops import _supervisor
from router.ops._supervisor import FIRST_PAUSE, Supervisor, Worker, _exit_text
from router.ops._worker import RELOAD_ALL
from rules import load_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Iterator
    from pathlib import Path

    from trio.testing import MockClock

CONFIG = (
    '[server]\ndrain_timeout = 7\n\n[providers.sim]\nkind = "simulated"\n\n'
    '[routes.chat]\nfallback = ["sim:echo"]\n'
)
URL = "http://127.0.0.1:8080"


@pytest.fixture
def systemd(monkeypatch: pytest.MonkeyPatch) -> Iterator[socket.socket]:
    """A NOTIFY_SOCKET the supervisor under test reports to, read without blocking."""
    name = f"@llm-router-test-{uuid.uuid4().hex}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    sock.bind("\0" + name[1:])
    monkeypatch.setenv("NOTIFY_SOCKET", name)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    with sock:
        yield sock


def received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


def supervisor(tmp_path: Path, count: int = 2) -> Supervisor:
    path = tmp_path / "router.toml"
    path.write_text(CONFIG)
    sup = Supervisor(str(path), load_config(str(path), kinds=provider_kinds()), count)
    sup.workers = [Worker(i + 1, ()) for i in range(count)]
    sup.urls = [URL]
    return sup


async def sleeper(*setup: str) -> trio.Process:
    """A real process that waits (for a signal) for up to a minute.

    Returned once its shell has run ``setup`` (a trap set after a signal came is a race).
    """
    script = f"{' '.join(setup)} echo ready; exec sleep 60"
    process = await trio.lowlevel.open_process(
        ["sh", "-c", script], stdout=subprocess.PIPE, preexec_fn=_default_signals
    )
    assert process.stdout is not None
    assert await process.stdout.receive_some(16) == b"ready\n"
    await process.stdout.aclose()
    return process


def _default_signals() -> None:
    """In the child: SIGHUP and SIGTERM as a shell expects them, even when the tests
    run under ``nohup`` (a signal ignored on entry cannot be trapped or reset by sh)."""
    for signum in (signal.SIGHUP, signal.SIGTERM):
        signal.signal(signum, signal.SIG_DFL)


async def test_systemd_hears_ready_once_every_worker_is_then_each_reload(
    tmp_path: Path, systemd: socket.socket
) -> None:
    sup = supervisor(tmp_path)
    one, two = sup.workers
    sup._note(one, ["READY=1", "STATUS=serving, rules abc123"])
    assert not sup.started
    assert received(systemd) == []  # one of two is not a start
    sup._note(two, ["READY=1", "STATUS=serving, rules abc123"])
    assert sup.started
    assert received(systemd) == [f"READY=1\nSTATUS=2 of 2 workers serving on {URL}, rules abc123"]
    sup._note(one, ["RELOADING=1"])
    sup._note(two, ["RELOADING=1"])  # already reloading: said once
    (reloading,) = received(systemd)
    assert reloading.startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert reloading.endswith("\nSTATUS=reloading rules")
    sup._note(one, ["READY=1", "STATUS=serving, rules def456"])
    assert received(systemd) == []  # the other still reloads
    sup._note(two, ["READY=1", "STATUS=reload refused: routes.chat: unknown key, rules abc123"])
    assert received(systemd) == [
        f"READY=1\nSTATUS=2 of 2 workers serving on {URL}, rules abc123, def456;"
        " last reload refused (see the log)"
    ]


async def test_a_replacement_ready_again_is_counted_before_it_is_marked(
    tmp_path: Path, systemd: socket.socket
) -> None:
    sup = supervisor(tmp_path)
    one = sup.workers[0]
    for worker in sup.workers:
        sup._note(worker, ["READY=1", "STATUS=serving, rules abc123"])
    received(systemd)
    one.ready = False  # it exited; its replacement reports
    sup._note(one, ["READY=1"])
    assert received(systemd) == [
        f"STATUS=2 of 2 workers serving on {URL}, rules abc123"
    ]  # and no second READY=1: nothing was reloading
    assert one.ready
    assert one.status == "serving, rules abc123"  # a message without STATUS keeps it


async def test_once_stopping_nothing_more_is_said(tmp_path: Path, systemd: socket.socket) -> None:
    sup = supervisor(tmp_path, count=1)
    sup.stopping.set()
    sup._note(sup.workers[0], ["READY=1"])
    assert received(systemd) == []
    assert not sup.started


def test_how_a_worker_exited_is_said_in_words() -> None:
    assert _exit_text(3) == "status 3"
    assert _exit_text(-signal.SIGKILL) == "killed by SIGKILL"
    assert _exit_text(-99) == "killed by signal 99"


async def test_a_reload_asked_by_one_worker_reaches_every_other(tmp_path: Path) -> None:
    sup = supervisor(tmp_path)
    one, two = sup.workers
    one.process, two.process = await sleeper(), await sleeper()
    try:
        sup._note(one, [RELOAD_ALL])
        assert await two.process.wait() == -signal.SIGHUP
        assert one.process.returncode is None  # it reloaded itself
        sup._forward(signal.SIGHUP)  # a process that has exited is skipped quietly
    finally:
        one.process.kill()
        await one.process.wait()


async def test_signals_reload_every_worker_or_drain_once(
    tmp_path: Path, systemd: socket.socket, autojump_clock: MockClock
) -> None:
    sup = supervisor(tmp_path)
    one, two = sup.workers
    one.process = await sleeper()
    two.process = await sleeper("trap '' TERM HUP;")  # it will not drain: killed after the margin

    async def signals() -> AsyncIterator[int]:
        for signum in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            yield signum

    async with trio.open_nursery() as nursery:
        sup._nursery = nursery
        await sup._signals(signals())
        start = trio.current_time()  # the drain began
        assert sup.stopping.is_set()
        assert not sup.failed
        # Checked before any wait: the virtual clock may reach the kill during one.
        assert two.process.poll() is None  # it ignored both
        assert await one.process.wait() == -signal.SIGHUP  # the reload came first
        assert await two.process.wait() == -signal.SIGKILL
    assert trio.current_time() - start == 7 + _supervisor.EXIT_MARGIN
    assert received(systemd) == ["STOPPING=1\nSTATUS=draining: up to 7s for requests in flight"]


async def test_the_watchdog_kills_a_ready_worker_that_stopped_pinging(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    systemd: socket.socket,
    autojump_clock: MockClock,
) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")  # a ping every second
    sup = supervisor(tmp_path)
    assert sup.notifier.watchdog_interval() == 1.0
    silent, starting = sup.workers
    silent.process, starting.process = await sleeper(), await sleeper()
    silent.ready = True  # ready, then silent; the other never got ready: left alone
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sup._watchdog)
            await trio.sleep(2.5)
            assert silent.process.poll() is None  # two periods of silence are allowed
            assert await silent.process.wait() == -signal.SIGKILL
            nursery.cancel_scope.cancel()
        assert trio.current_time() >= 3.0  # the first check past two periods of silence
        assert starting.process.poll() is None
    finally:
        starting.process.kill()
        await starting.process.wait()


async def test_without_a_watchdog_there_is_nothing_to_watch(tmp_path: Path) -> None:
    sup = supervisor(tmp_path)
    await sup._watchdog()  # returns at once


async def exits_with(code: int, sup: Supervisor, spawned: list[float]) -> None:
    """``sup._spawn``'s stand-in: a real process exiting with ``code`` at once."""

    async def spawn(worker: Worker, lifeline: int) -> trio.Process:
        spawned.append(trio.current_time())
        if len(spawned) == 4:
            sup.stopping.set()  # the fourth lives until the stop
            process = await sleeper()
            process.kill()
        else:
            process = await trio.lowlevel.open_process(["sh", "-c", f"exit {code}"])
        worker.process = process
        return process

    sup._spawn = spawn  # type: ignore[method-assign]


async def test_a_worker_that_dies_is_replaced_after_a_doubling_pause(
    tmp_path: Path, systemd: socket.socket, autojump_clock: MockClock
) -> None:
    sup = supervisor(tmp_path, count=1)
    sup.started = True
    (worker,) = sup.workers
    worker.ready = True
    spawned: list[float] = []
    await exits_with(3, sup, spawned)
    await sup._keep(worker, -1)
    pause = FIRST_PAUSE
    assert spawned == [0.0, pause, pause * 3, pause * 7]
    assert (worker.process, worker.ready) == (None, False)
    assert received(systemd) == [f"STATUS=0 of 1 workers serving on {URL}, rules ?"] * 3


async def test_a_worker_that_exits_before_the_start_fails_it(
    tmp_path: Path, systemd: socket.socket
) -> None:
    sup = supervisor(tmp_path, count=1)
    spawned: list[float] = []
    await exits_with(1, sup, spawned)
    async with trio.open_nursery() as nursery:
        sup._nursery = nursery
        await sup._keep(sup.workers[0], -1)
        assert len(spawned) == 1  # not replaced
        assert sup.failed
        assert sup.stopping.is_set()
        nursery.cancel_scope.cancel()  # the kill timer: nothing is left to kill
    assert received(systemd) == ["STOPPING=1\nSTATUS=draining: up to 7s for requests in flight"]
