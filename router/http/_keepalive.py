"""Keep-alive for hypercorn's connections without a task per request.

hypercorn closes a connection left idle for ``keep_alive_timeout`` with a task: started
(``nursery.start``) after each answer, under a lock, with a cancel scope on a timer, and
cancelled again when the next request arrives. That is several trips through the
scheduler and a deadline per request, on every keep-alive connection. Here the timer is
the deadline of the read the connection has under way anyway: :class:`KeepAliveClock`
stands in for hypercorn's idle task and moves that deadline, and :class:`ServerContext`
knows the idle connections, which close at once when the server drains.
"""

from __future__ import annotations

from typing import Protocol

from hypercorn.trio.worker_context import WorkerContext

__all__ = ["Idles", "KeepAliveClock", "ServerContext"]


class Idles(Protocol):
    """A connection told when it turns idle (no request under way) or busy."""

    def idle(self, idle: bool) -> None: ...


class ServerContext(WorkerContext):
    """hypercorn's worker context, and the connections idle at the moment."""

    def __init__(self) -> None:
        super().__init__(None)
        self.idle: set[Idles] = set()

    async def drain(self) -> None:
        """No more requests: idle connections close now, busy ones after their answer
        (hypercorn closes instead of keeping alive once ``terminated`` is set)."""
        await self.terminated.set()
        for connection in list(self.idle):
            connection.idle(True)


class KeepAliveClock:
    """In place of hypercorn's ``TCPServer.idle_task``: ``restart`` (the connection is
    idle) and ``stop`` (a request arrived, or the connection ends) tell the connection,
    which sets its read deadline."""

    __slots__ = ("_connection",)

    def __init__(self, connection: Idles) -> None:
        self._connection = connection

    async def restart(self, task_group: object, action: object) -> None:
        self._connection.idle(True)

    async def stop(self) -> None:
        self._connection.idle(False)
