"""Each upstream's background work runs once, from before its first request until it closes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from router.ops._upstream_tasks import UpstreamTasks

if TYPE_CHECKING:
    from router.upstream._upstream import Upstream


class Background:
    """An upstream's ``run``: ready at once, then busy until closed (or broken)."""

    def __init__(self, name: str, *, broken: bool = False, ready: bool = True) -> None:
        self.name = name
        self.broken = broken
        self.ready = ready
        self.runs = 0
        self.running = False
        self.closed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.runs += 1
        if self.broken and not self.ready:
            raise RuntimeError("secret-looking text sk-abcdefgh12345678")
        task_status.started()
        self.running = True
        try:
            if self.broken:
                raise ValueError("broke later")
            await self.closed.wait()
        finally:
            self.running = False


async def test_each_upstream_runs_once_and_is_ready_when_start_returns() -> None:
    tasks = UpstreamTasks()
    a, b = Background("a"), Background("b")
    async with trio.open_nursery() as nursery:
        await nursery.start(tasks.run)
        await tasks.start([_as_upstream(a), _as_upstream(b)])
        assert a.running
        assert b.running
        await tasks.start([_as_upstream(a)])  # a reload that kept it: not run again
        assert a.runs == 1
        a.closed.set()
        await trio.testing.wait_all_tasks_blocked()
        assert not a.running
        await tasks.start([_as_upstream(a)])  # closed and used anew: runs again
        assert a.runs == 2
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("ready", [True, False], ids=["after-ready", "before-ready"])
async def test_a_failing_run_is_logged_by_type_and_the_daemon_goes_on(
    ready: bool, caplog: pytest.LogCaptureFixture
) -> None:
    tasks = UpstreamTasks()
    broken, fine = Background("broken", broken=True, ready=ready), Background("fine")
    async with trio.open_nursery() as nursery:
        await nursery.start(tasks.run)
        with caplog.at_level(logging.ERROR, logger="llm_router"):
            await tasks.start([_as_upstream(broken), _as_upstream(fine)])
            await trio.testing.wait_all_tasks_blocked()
        assert fine.running
        nursery.cancel_scope.cancel()
    text = caplog.text
    assert "background work of provider broken stopped" in text
    assert "sk-abcdefgh" not in text


def _as_upstream(background: Background) -> Upstream:
    return background  # type: ignore[return-value]  # only name and run() are used
