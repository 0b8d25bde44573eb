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

Callers append their commands and wait on one event for all their replies; one writer
task sends what has queued since it last ran, one reader task hands each reply to the
oldest waiter. A caller that gives up (its timeout, a cancelled request) leaves its
slot in the queue, so the reply that still arrives is matched and dropped, and the
replies stay in step. When the connection ends, every waiter gets `ConnectionLost`.

Commands whose replies nobody waits for (the writes sent after an answer) are *posted*:
queued with a callback for their replies, and sent with the next flush, whoever makes
it: most often a request's own call, so they cost no ``send`` of their own.
"""

from __future__ import annotations

import ssl
from collections import deque
from typing import TYPE_CHECKING, Any

import trio

from adapters import NetworkError

from ...upstream._tls import SYSTEM
from ._resp import Parser, ReplyError, encode

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rules import RedisURL

    from ...upstream._tls import ClientTLS

__all__ = ["Connection", "ConnectionLost", "open_connection"]


class ConnectionLost(Exception):
    """The connection to Redis ended (or never came up); the message says how."""


class _Waiter:
    """Who waits for the next ``count`` replies: a caller (``done``) or a callback."""

    __slots__ = ("callback", "count", "done", "replies")

    def __init__(
        self, count: int, done: trio.Event | None, callback: Callable[[Replies], None] | None
    ) -> None:
        self.count = count
        self.done = done
        self.callback = callback
        self.replies: list[Any] = []

    def finish(self, replies: Replies) -> None:
        if self.done is not None:
            self.replies = replies  # type: ignore[assignment]  # ConnectionLost: see pipeline
            self.done.set()
        elif self.callback is not None:
            self.callback(replies)


#: The replies to a batch of commands, in order; or why they never came.
Replies = list[Any] | ConnectionLost


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
        """Several commands sent together (with whatever was posted); their replies, in
        order.

        Raises:
            ConnectionLost: the connection ended before the replies came.
        """
        if self.lost is not None:
            raise ConnectionLost(self.lost)
        if not commands:
            return []
        waiter = _Waiter(len(commands), trio.Event(), None)
        self._queue(commands, waiter)
        self._wake.set()
        await waiter.done.wait()  # type: ignore[union-attr]  # set just above
        replies: Replies = waiter.replies
        if isinstance(replies, ConnectionLost):
            raise replies
        return replies

    def post(
        self,
        commands: Sequence[Sequence[bytes | str | int | float]],
        callback: Callable[[Replies], None],
    ) -> None:
        """Queue ``commands`` for the next flush (see the module's doc); ``callback``
        gets their replies, or `ConnectionLost` (called at once if it is lost already)."""
        if self.lost is not None:
            callback(ConnectionLost(self.lost))
        elif commands:
            self._queue(commands, _Waiter(len(commands), None, callback))

    def flush(self) -> None:
        """Send what is queued now, if a call has not already."""
        if self._out:
            self._wake.set()

    def _queue(
        self, commands: Sequence[Sequence[bytes | str | int | float]], waiter: _Waiter
    ) -> None:
        out = self._out
        for command in commands:
            out.append(encode(*command))
        self._waiters.append(waiter)

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
        waiters = self._waiters
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
                if not waiters:
                    self.lost = "a reply nobody asked for"
                    return
                waiter = waiters[0]
                waiter.replies.append(reply)
                if len(waiter.replies) == waiter.count:
                    waiters.popleft()
                    waiter.finish(waiter.replies)

    def _end(self, why: str) -> None:
        self.lost = why
        self._out = []
        while self._waiters:
            self._waiters.popleft().finish(ConnectionLost(why))


async def open_connection(
    url: RedisURL,
    password: str | None,
    nursery: trio.Nursery,
    within: float,
    on_lost: Callable[[str], None],
    tls: ClientTLS | None = None,
) -> Connection:
    """Connect, authenticate and select the database, within ``within`` seconds; the
    connection runs in ``nursery`` (cancel it, or lose the connection, to end it), and
    ``on_lost`` hears why it ended. ``tls``: whom a ``rediss://`` connection trusts
    (None: the system's CAs).

    Raises:
        ConnectionLost: cannot connect, or Redis refused ``AUTH`` / ``SELECT`` (the
            message never holds the password).
    """
    with trio.move_on_after(within) as scope:
        try:
            stream = await _open_stream(url, tls)
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


async def _open_stream(url: RedisURL, tls: ClientTLS | None) -> trio.abc.Stream:
    if url.scheme == "unix":
        return await trio.open_unix_socket(url.host)
    if url.scheme == "rediss":
        try:
            context = await (tls or SYSTEM).context()  # built off the loop, once
        except NetworkError as exc:
            raise ConnectionLost(str(exc)) from None
        stream = await trio.open_ssl_over_tcp_stream(
            url.host, url.port, ssl_context=context, https_compatible=False
        )
        try:  # now, so that a refused certificate is said as such, not as a lost write
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            await trio.aclose_forcefully(stream)
            raise ConnectionLost(f"TLS handshake failed: {_tls_failure(exc)}") from None
        return stream
    return await trio.open_tcp_stream(url.host, url.port)  # trio sets TCP_NODELAY


def _tls_failure(exc: trio.BrokenResourceError) -> str:
    """What went wrong in a handshake, in OpenSSL's words (no secret is in them)."""
    cause = exc.__cause__
    if isinstance(cause, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {cause.verify_message}"
    if isinstance(cause, ssl.SSLError):
        return cause.reason or str(cause)
    return str(cause or exc) or type(cause or exc).__name__
