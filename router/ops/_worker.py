"""One worker of ``serve --workers N``: what differs from a daemon that runs alone.

The main process (:mod:`._supervisor`) binds the listening sockets and starts each
worker as ``python -m router serve ... --worker SPEC``, where ``SPEC`` (`WorkerSpec`)
names the worker's index, the inherited descriptors of its sockets and its lifeline.
A worker is otherwise the whole daemon: its own rules, reloads, file watcher, limits,
budgets, cache and metrics. What it does differently:

- it serves on the inherited sockets (``fd://N``), never binding an address itself;
- its ``sd_notify`` messages go to the main process (``NOTIFY_SOCKET`` points there),
  which tells systemd once every worker is ready, reloading or stopping;
- it drains and exits when the main process is gone: the lifeline is the read end of a
  pipe whose only write end the main process holds, so it reads end-of-file when the
  main process exits in any way, SIGKILL included, and no worker is left orphaned;
- a repeated SIGTERM or SIGINT does not cut its drain short: under systemd's default
  ``KillMode=control-group`` every process of the unit gets SIGTERM, and the main
  process forwards one more;
- ``POST /admin/reload`` reloads this worker and asks the main process to send SIGHUP
  to the others, so every worker loads the file;
- ``/admin/status`` says which worker answered.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

import attrs
import cattrs
import orjson
import trio

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._systemd import Notifier

__all__ = ["RELOAD_ALL", "WorkerSpec", "reload_everywhere", "watch_lifeline"]

log = logging.getLogger("llm_router")

#: The notify message a worker sends to have the main process reload the others.
RELOAD_ALL = "X_LLM_ROUTER_RELOAD_ALL=1"


@attrs.frozen
class WorkerSpec:
    """What the main process tells a worker it starts.

    Attributes:
        index: 1 to ``count``; a replacement keeps the index of the worker it replaces.
        count: How many workers the main process runs.
        fds: The inherited listening sockets, one per address.
        lifeline: The read end of the main process's lifeline pipe.
        overridden: Settings the main process's command line gave
            (``server.listen``, ``server.log_level``, ``server.workers``): a change of
            them in the file is not reported as needing a restart.
    """

    index: int
    count: int
    fds: tuple[int, ...]
    lifeline: int
    overridden: tuple[str, ...] = ()

    def encode(self) -> str:
        return orjson.dumps(attrs.asdict(self)).decode()

    @classmethod
    def decode(cls, text: str) -> WorkerSpec:
        return cattrs.structure(orjson.loads(text), cls)

    def status(self) -> dict[str, Any]:
        """The ``worker`` part of ``/admin/status``: which process answered."""
        return {
            "worker": {
                "index": self.index,
                "of": self.count,
                "pid": os.getpid(),
                "main_pid": os.getppid(),
            }
        }


async def watch_lifeline(fd: int, stop: trio.Event) -> None:
    """Set ``stop`` (drain, then exit) once the main process is gone."""
    stream = trio.lowlevel.FdStream(fd)
    try:
        while await stream.receive_some(64):
            pass  # the main process never writes: end-of-file is the only news
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    if not stop.is_set():
        log.warning("the main process is gone: draining")
        stop.set()


def reload_everywhere(
    reload: Callable[[], Awaitable[Any]], notifier: Notifier
) -> Callable[[], Awaitable[Any]]:
    """``POST /admin/reload`` in a worker: reload here, then ask for the others.

    The answer is this worker's result; the others load the same file.
    """

    async def reload_all() -> Any:
        result = await reload()
        notifier.send(RELOAD_ALL)
        return result

    return reload_all
