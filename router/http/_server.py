"""Client connections: listening, accepting, and the limits a client can't get past.

hypercorn speaks HTTP/1.1 (h11) for us; this module owns what surrounds it, because
hypercorn's own serve loop leaves a hostile or careless client too much:

- the listen queue is ``server.backlog`` and at most ``server.max_connections`` client
  connections are held at once: past the cap a new one gets a ``503`` and is closed at
  once, instead of waiting unseen in the kernel's queue;
- a request (head and body) must arrive within ``server.read_timeout`` of its first
  byte (a header a second, forever, is a slow-loris attack; so is a body's last byte
  withheld), else ``408`` and the connection closes;
- a write to the client is not shielded from cancellation as in hypercorn: a client
  that stops reading is reached by the request's deadlines and by the drain deadline
  of SIGTERM. A write cut short leaves the HTTP framing broken, so the connection is
  closed at once.

Idle keep-alive connections close after ``server.keepalive_timeout`` (a deadline on the
read under way, :mod:`._keepalive`, not hypercorn's task per request), or as soon as the
client closes them. A client that hangs up cancels its request through the connection
(:mod:`._hangup`), and a response head goes out in one write with its first body bytes.
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs
import h11
import orjson
import trio
from hypercorn.events import Closed, RawData
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.typing import ConnectionState
from hypercorn.utils import repr_socket_addr, wrap_app

from ._hangup import HANGUP, Hangup
from ._intake import API_PATHS, Intake, accept_forever
from ._keepalive import KeepAliveClock, ServerContext
from ._overload import ARRIVED, PLACED, Overload, arrived_now

if TYPE_CHECKING:
    import socket
    from collections.abc import Awaitable

    from hypercorn.config import Config as HypercornConfig
    from hypercorn.events import Event

__all__ = ["ConnectionLimits", "serve"]

log = logging.getLogger("llm_router")

MAX_RECV = 2**16
#: A new connection holds an intake place while it waits this long for its first bytes.
FIRST_BYTES_GRACE = 0.02


def _thirty_seconds() -> float:
    return 30.0


@attrs.frozen
class ConnectionLimits:
    """What one client connection may take (``[server]`` settings, in seconds).

    Attributes:
        read_timeout: A request, head and body, must arrive within it, from its first
            byte (asked for each request: a reload changes it).
        max_connections: Client connections held at once; 0 for no cap.
    """

    read_timeout: Callable[[], float] = _thirty_seconds
    max_connections: int = 0


def _plain_answer(status: int, reason: str, message: str, *extra: bytes) -> bytes:
    """A whole HTTP/1.1 answer that closes the connection, for when no app runs."""
    body = orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}})
    head = [
        b"HTTP/1.1 %d %s" % (status, reason.encode()),
        b"content-type: application/json",
        b"content-length: %d" % len(body),
        b"connection: close",
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


REQUEST_TIMEOUT = _plain_answer(
    408, "Request Timeout", "the request did not arrive within server.read_timeout"
)


class Connection(TCPServer):
    """One client connection: hypercorn's, with a head deadline and cancellable writes."""

    def __init__(
        self,
        *args: Any,
        limits: ConnectionLimits,
        settled: Callable[[], None] | None = None,
        hangup: Hangup | None = None,
        arrived: tuple[float, float] | None = None,
    ) -> None:
        super().__init__(*args)
        # Told when the client is gone: it cancels the request under way (._hangup).
        self.hangup = hangup or Hangup()
        self.limits = limits
        self._head_started: float | None = None  # first byte of a request head
        # When the first request arrived (the accept); later ones, at their first bytes.
        self._arrived = arrived
        # Told once the first answer is sent (intake's place is free again).
        self._settled = settled
        # A response head waiting for the first body bytes, to go out with them.
        self._held_head = b""
        # The keep-alive timer is a deadline on the read under way (``idle``), not
        # hypercorn's task started afresh after every answer.
        self.idle_task = KeepAliveClock(self)  # type: ignore[assignment]
        self._idle_until = math.inf
        self._reading: trio.CancelScope | None = None

    async def protocol_send(self, event: Event) -> None:
        if not isinstance(event, RawData):
            if isinstance(event, Closed):
                self.hangup.gone()
            await super().protocol_send(event)
            return
        data = event.data
        if self._held_head:
            data, self._held_head = self._held_head + data, b""
        elif self._holds(data):
            # Our app follows every declared-length head with its body at once: the
            # head waits for it, one write (and one trip through the scheduler)
            # instead of two.
            self._held_head = data
            return
        if not data:
            # The end of a declared-length body is no bytes at all: nothing to write.
            if self._settled is not None and self._answered():
                self._settle()
            return
        async with self.send_lock:
            try:
                await self.stream.send_all(data)
                if self._settled is not None and self._answered():
                    self._settle()
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.hangup.gone()
                await self.protocol.handle(Closed())
            except BaseException:
                # Cancelled part-way (a deadline, the drain): the client may hold half
                # a message, so the connection is unusable. Closing the socket also
                # wakes the reader.
                self._abort()
                raise

    def _holds(self, data: bytes) -> bool:
        """``data`` is an HTTP/1.1 response head with a declared-length body to follow
        (not a ``100 Continue``, not HTTP/2 frames, not a stream's head: a stream's
        first events go out as soon as they come, and so does its head)."""
        if not data.startswith(b"HTTP/1.1 ") or b"\r\ntransfer-encoding: chunked" in data.lower():
            return False
        h11_connection = getattr(self.protocol.protocol, "connection", None)
        return isinstance(h11_connection, h11.Connection) and (
            h11_connection.our_state is h11.SEND_BODY
        )

    async def _close(self) -> None:
        # hypercorn's close awaits send_eof() first: cancelled there (the drain, a
        # shutdown), it would never reach the close and the descriptor would leak.
        with trio.CancelScope(shield=True):
            await super()._close()

    def _abort(self) -> None:
        socket = getattr(self.stream, "socket", None)
        if socket is not None:
            socket.close()

    async def _read_data(self) -> None:
        try:
            await self._read_requests()
        finally:
            self.hangup.gone()
            self._settle()
            self.idle(False)

    def _answered(self) -> bool:
        """The answer to the connection's first request is all sent."""
        h11_connection = getattr(self.protocol.protocol, "connection", None)
        if not isinstance(h11_connection, h11.Connection):
            return True  # HTTP/2: its streams meet the limit on requests in flight
        return h11_connection.our_state is not h11.SEND_BODY and (
            h11_connection.our_state is not h11.SEND_RESPONSE
        )

    def _settle(self) -> None:
        if self._settled is not None:
            settled, self._settled = self._settled, None
            settled()

    async def _read_requests(self) -> None:
        while True:
            data: bytes | bytearray | None = None
            with trio.CancelScope(deadline=self._read_deadline()) as reading:
                self._reading = reading  # the keep-alive clock moves its deadline
                with contextlib.suppress(trio.ClosedResourceError, trio.BrokenResourceError):
                    data = await self._receive()
            self._reading = None
            if reading.cancelled_caught:
                if self._head_started is not None and self._head_deadline() <= trio.current_time():
                    await self._refuse(REQUEST_TIMEOUT)
                    await self._close()
                break  # else idle past keepalive_timeout, or the drain: close
            if data is None:
                break
            if self._head_started is None:  # a new request may start in these bytes
                # Its task, spawned in handle(), inherits when it arrived (admission
                # measures the wait from there).
                ARRIVED.set(self._arrived or arrived_now())
                # The first request holds intake's place: admitted without a second test.
                PLACED.set(self._arrived is not None and self._settled is not None)
                self._arrived = None
            await self.protocol.handle(RawData(bytes(data)))
            if data == b"":
                break
            self._note_head(trio.current_time())
        await self.protocol.handle(Closed())
        # The client is gone: hypercorn would keep its keep-alive timer running, and with
        # it the socket (in CLOSE_WAIT) and its place under max_connections, for
        # keepalive_timeout after a client closed an idle connection.
        await self.idle_task.stop()

    def idle(self, idle: bool) -> None:
        """hypercorn says the connection is idle (no request under way) or busy: an idle
        one closes ``keep_alive_timeout`` later, or at once when the server drains."""
        idle_set = self.context.idle if isinstance(self.context, ServerContext) else None
        if not idle:
            self._idle_until = math.inf
            if idle_set is not None:
                idle_set.discard(self)
        elif self.context.terminated.is_set():
            self._idle_until = -math.inf
        else:
            self._idle_until = trio.current_time() + self.config.keep_alive_timeout
            if idle_set is not None:
                idle_set.add(self)
        if self._reading is not None:
            self._reading.deadline = self._read_deadline()

    def _read_deadline(self) -> float:
        return min(self._head_deadline(), self._idle_until)

    async def _receive(self) -> bytes | bytearray:
        if self._settled is not None:  # holding an intake place: not for an idle client
            with trio.move_on_after(FIRST_BYTES_GRACE):
                return await self.stream.receive_some(MAX_RECV)
            self._settle()
        return await self.stream.receive_some(MAX_RECV)

    def _head_deadline(self) -> float:
        if self._head_started is None:
            return math.inf
        return self._head_started + self.limits.read_timeout()

    def _note_head(self, now: float) -> None:
        """Start the request's clock at its first byte; stop it once the request (head
        and body) is whole."""
        h11_connection = getattr(self.protocol.protocol, "connection", None)
        if not isinstance(h11_connection, h11.Connection):
            return  # HTTP/2 frames its own requests
        state = h11_connection.their_state
        arriving = state is h11.SEND_BODY or (
            state is h11.IDLE and bool(h11_connection.trailing_data[0])
        )
        if not arriving:
            self._head_started = None
        elif self._head_started is None:
            self._head_started = now

    async def _refuse(self, answer: bytes) -> None:
        async with self.send_lock:
            with (
                trio.CancelScope(shield=True),
                trio.move_on_after(1),
                contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError),
            ):
                await self.stream.send_all(answer)


async def serve(
    app: Any,
    config: HypercornConfig,
    limits: ConnectionLimits,
    *,
    overload: Overload | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]],
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` on ``config.bind`` until ``shutdown_trigger`` returns, then drain.

    ``overload`` is told how many connections are held (for status and metrics).
    The drain lets requests in flight finish for up to ``config.graceful_timeout``
    and then cancels them, the ones stuck writing to a client that stopped reading
    included; idle keep-alive connections close at once.
    """
    asgi = wrap_app(app, config.wsgi_max_body_size, "asgi")
    context = ServerContext()
    sockets = config.create_sockets()
    listeners: list[tuple[trio.SocketListener, socket.socket]] = []
    binds: list[str] = []
    for sock in sockets.insecure_sockets:
        sock.listen(config.backlog)
        listeners.append((trio.SocketListener(trio.socket.from_stdlib_socket(sock)), sock))
        binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
    held = overload if overload is not None else Overload()
    held.max_connections = limits.max_connections

    async def handle(
        stream: trio.SocketStream,
        settled: Callable[[], None] | None,
        arrived: tuple[float, float] | None,
    ) -> None:
        # Counted in by intake when it started this handler.
        try:
            hangup = Hangup()
            state = ConnectionState({HANGUP: hangup})
            await Connection(
                asgi, config, context, state, stream, limits=limits, settled=settled,
                hangup=hangup, arrived=arrived,
            )  # fmt: skip
        finally:
            held.connections -= 1
            if settled is not None:  # never got as far as its first bytes
                settled()

    async with trio.open_nursery() as connections:
        try:
            async with trio.open_nursery() as accepting:
                for _, sock in listeners:
                    intake = Intake(held, API_PATHS)
                    accepting.start_soon(accept_forever, sock, intake, handle, connections)
                task_status.started(binds)
                await shutdown_trigger()
                accepting.cancel_scope.cancel()
        finally:
            for listener, _ in listeners:
                await listener.aclose()
            await context.drain()  # idle keep-alive connections close now
            connections.cancel_scope.deadline = trio.current_time() + config.graceful_timeout
