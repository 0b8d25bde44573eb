"""Keep-alive connections: closed after ``keepalive_timeout`` idle, counted from the end
of the last answer; closed at once when the daemon drains; and all without a task per
request (the timer is the deadline of the read under way, ``router/http/_keepalive.py``).
"""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import pytest
import trio

from router import run_daemon
from tests.router.http.test_connections import (
    CONFIG,
    _connect,
    _read_answer,
    _read_until_closed,
    _request,
)

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import RouterFactory


async def test_the_keepalive_timer_starts_again_after_each_answer(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock
) -> None:
    server = 'keepalive_timeout = "10s"'
    async with start_router(CONFIG.format(server=server)) as url, await _connect(url) as stream:
        for _ in range(3):  # 16 s in all on one connection, never 10 s idle
            await stream.send_all(_request())
            assert (await _read_answer(stream)).startswith(b"HTTP/1.1 200")
            await trio.sleep(8)
        await stream.send_all(_request())
        assert (await _read_answer(stream)).startswith(b"HTTP/1.1 200")
        idle_from = trio.current_time()
        with trio.fail_after(30):
            assert await _read_until_closed(stream) == b""
        assert trio.current_time() - idle_from == pytest.approx(10, abs=0.5)


async def test_a_connection_that_never_asks_is_closed_after_keepalive_timeout(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock
) -> None:
    server = 'keepalive_timeout = "7s"'
    async with start_router(CONFIG.format(server=server)) as url, await _connect(url) as stream:
        opened = trio.current_time()
        with trio.fail_after(30):
            assert await _read_until_closed(stream) == b""
        assert trio.current_time() - opened == pytest.approx(7, abs=0.5)


async def test_idle_connections_close_at_once_when_the_daemon_drains(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    config = tmp_path / "router.toml"
    config.write_text(CONFIG.format(server='keepalive_timeout = "1h"\ndrain_timeout = "30s"'))
    daemon_done = trio.Event()

    async def daemon(task_status: trio.TaskStatus[list[str]]) -> None:
        await run_daemon(str(config), "127.0.0.1:0", task_status=task_status)
        daemon_done.set()

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(daemon)
        async with await _connect(binds[0]) as answered, await _connect(binds[0]) as silent:
            await answered.send_all(_request())
            assert (await _read_answer(answered)).startswith(b"HTTP/1.1 200")
            await trio.sleep(1)
            os.kill(os.getpid(), signal.SIGTERM)
            start = trio.current_time()
            with trio.fail_after(60):
                assert await _read_until_closed(answered) == b""
                assert await _read_until_closed(silent) == b""
                await daemon_done.wait()
            assert trio.current_time() - start < 1  # not after the drain_timeout


class _Spawned(trio.abc.Instrument):
    """Names of the tasks spawned while it is installed."""

    def __init__(self) -> None:
        self.names: list[str] = []

    def task_spawned(self, task: trio.lowlevel.Task) -> None:
        self.names.append(task.name)


async def test_keepalive_requests_start_no_timer_task(start_router: RouterFactory) -> None:
    async with start_router(CONFIG.format(server="")) as url, await _connect(url) as stream:
        spawned = _Spawned()
        trio.lowlevel.add_instrument(spawned)
        try:
            for _ in range(5):
                await stream.send_all(_request())
                assert (await _read_answer(stream)).startswith(b"HTTP/1.1 200")
        finally:
            trio.lowlevel.remove_instrument(spawned)
    assert not [name for name in spawned.names if "idle" in name.lower()], spawned.names
