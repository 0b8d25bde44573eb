"""The background work of open upstreams, in the daemon's nursery.

An HTTP/2 connection needs a reader and a writer task of its own (a request's task
can be cancelled at any time; the shared connection must not be); those tasks live in
the nursery of their upstream's :meth:`~router.upstream.Upstream.run`, which runs
here from before the upstream serves its first request until it is closed.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Iterable

    from ..upstream._upstream import Upstream

__all__ = ["UpstreamTasks"]

log = logging.getLogger("llm_router")


class UpstreamTasks:
    """Runs each upstream's ``run()`` once, for as long as it lasts."""

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._running: set[Upstream] = set()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            await trio.sleep_forever()

    async def start(self, upstreams: Iterable[Upstream]) -> None:
        """Start the background work of each upstream not started yet; return once
        each is ready to serve."""
        assert self._nursery is not None, "run() first"
        for upstream in upstreams:
            if upstream in self._running:
                continue
            self._running.add(upstream)
            try:
                await self._nursery.start(self._one, upstream)
            except RuntimeError:  # its run() failed before it was ready: logged above
                continue

    async def _one(self, upstream: Upstream, task_status: trio.TaskStatus[None]) -> None:
        try:
            await upstream.run(task_status=task_status)
        except Exception as exc:  # its requests fail on their own; the daemon serves on
            # By type only: a foreign exception's message may hold a header value.
            log.error(
                "background work of provider %s stopped: %s", upstream.name, type(exc).__name__
            )
        finally:
            self._running.discard(upstream)
