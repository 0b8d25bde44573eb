"""One connection to Redis, pipelined: any number of commands in flight, replies in order.

Why not ``coredis`` (measured under trio, coredis 6.9, on this project's 2-core test
machine): it works under trio (anyio), cancellation included, but one call costs
~300-550 µs of CPU (a reader and a writer task, memory streams and several scheduler
passes per command), against ~25 µs for this connection at 16 concurrent callers, whose
writes are coalesced into one ``send`` and whose replies are parsed in one pass. A
request of this daemon costs ~500-600 µs of CPU in all, so coredis alone would have
taken a third to a half of the throughput, far past the 15% that shared state may cost.
(``limits``' coredis storage does not run on coredis 6 at all: it never enters the
client's context manager; see ``_traffic`` for why its windows would not do anyway.)

Callers append their command and wait on their own event; one writer task sends what
has queued since it last ran, one reader task hands each reply to the oldest waiter.
A caller that gives up (its timeout, a cancelled request) leaves its slot in the
queue, so the reply that still arrives is matched and dropped, and the replies stay in
step. When the connection ends, every waiter gets `ConnectionLost`.
"""

from __future__ import annotations

import ssl
from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from ._resp import Parser, ReplyError, encode

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rules import RedisURL

__all__ = ["Connection", "ConnectionLost", "open_connection"]


class ConnectionLost(Exception):
    """The connection to Redis ended (or never came up); the message says how."""


class _Waiter:
    __slots__ = ("done", "reply")

    def __init__(self) -> None:
        self.done = trio.Event()
        self.reply: Any = None


class Connection:
    """A Redis connection over ``stream``; :meth:`run` must run while it is used."""

    def __init__(self, stream: trio.abc.Stream, on_lost: Callable[[str], None]) -> None:
        self._stream = stream
        self._on_lost = on_lost
        self._out: list[bytes] = []
        self._waiters: deque[_Waiter] = deque()
        self._wake = trio.Event()
        self.lost: str | None = None  # why it ended, once it has

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Send and receive until the connection ends (returns) or is cancelled."""
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._write, nursery.cancel_scope)
                task_status.started()
                await self._read()
                nursery.cancel_scope.cancel()
        finally:
            self._end(self.lost or "closed")
            self._on_lost(self.lost or "closed")
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(self._stream)

    async def call(self, *args: bytes | str | int | float) -> Any:
        """One command's reply (a ReplyError is returned, not raised).

        Raises:
            ConnectionLost: the connection ended before the reply came.
        """
        return (await self.pipeline([args]))[0]

    async def pipeline(self, commands: Sequence[Sequence[bytes | str | int | float]]) -> list[Any]:
        """Several commands sent together; their replies, in order.

        Raises:
            ConnectionLost: the connection ended before the replies came.
        """
        if self.lost is not None:
            raise ConnectionLost(self.lost)
        waiters = []
        for command in commands:
            self._out.append(encode(*command))
            waiter = _Waiter()
            self._waiters.append(waiter)
            waiters.append(waiter)
        self._wake.set()
        for waiter in waiters:
            await waiter.done.wait()
        replies = [w.reply for w in waiters]
        for reply in replies:
            if isinstance(reply, ConnectionLost):
                raise reply
        return replies

    async def _write(self, scope: trio.CancelScope) -> None:
        while True:
            await self._wake.wait()
            self._wake = trio.Event()
            data, self._out = b"".join(self._out), []
            try:
                await self._stream.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.lost = f"write failed: {type(exc).__name__}"
                scope.cancel()
                return

    async def _read(self) -> None:
        parser = Parser()
        while True:
            try:
                data = await self._stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                self.lost = f"read failed: {type(exc).__name__}"
                return
            if not data:
                self.lost = "closed by the server"
                return
            try:
                replies = parser.feed(bytes(data))
            except ValueError:
                self.lost = "the server sent something that is not RESP"
                return
            for reply in replies:
                if not self._waiters:
                    self.lost = "a reply nobody asked for"
                    return
                waiter = self._waiters.popleft()
                waiter.reply = reply
                waiter.done.set()

    def _end(self, why: str) -> None:
        self.lost = why
        while self._waiters:
            waiter = self._waiters.popleft()
            waiter.reply = ConnectionLost(why)
            waiter.done.set()


async def open_connection(
    url: RedisURL,
    password: str | None,
    nursery: trio.Nursery,
    within: float,
    on_lost: Callable[[str], None],
) -> Connection:
    """Connect, authenticate and select the database, within ``within`` seconds; the
    connection runs in ``nursery`` (cancel it, or lose the connection, to end it), and
    ``on_lost`` hears why it ended.

    Raises:
        ConnectionLost: cannot connect, or Redis refused ``AUTH`` / ``SELECT`` (the
            message never holds the password).
    """
    with trio.move_on_after(within) as scope:
        try:
            stream = await _open_stream(url)
        except OSError as exc:
            raise ConnectionLost(f"cannot connect ({exc.strerror or exc})") from None
        conn = Connection(stream, on_lost)
        await nursery.start(conn.run)
        setup: list[tuple[bytes | str | int, ...]] = []
        if password is not None:
            setup.append(("AUTH", url.username, password) if url.username else ("AUTH", password))
        if url.db:
            setup.append(("SELECT", url.db))
        setup.append(("PING",))
        for reply in await conn.pipeline(setup):
            if isinstance(reply, ReplyError):
                conn.lost = "refused"
                await trio.aclose_forcefully(stream)
                # Redis's own words (WRONGPASS, NOAUTH): they never echo the password.
                raise ConnectionLost(f"refused: {str(reply)[:120]}")
        return conn
    assert scope.cancelled_caught
    raise ConnectionLost(f"no answer within {within:g}s")


async def _open_stream(url: RedisURL) -> trio.abc.Stream:
    if url.scheme == "unix":
        return await trio.open_unix_socket(url.host)
    if url.scheme == "rediss":
        return await trio.open_ssl_over_tcp_stream(
            url.host, url.port, ssl_context=ssl.create_default_context(), https_compatible=False
        )
    return await trio.open_tcp_stream(url.host, url.port)  # trio sets TCP_NODELAY
