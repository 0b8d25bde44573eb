"""A lean keep-alive connection pool: HTTP/1.1 with h11 over trio streams.

The data path's upstream client. One pool per provider, a stack per origin. Measured against
httpx/httpx2 (``docs/benchmarks.md``), whose pools do per-request work that grows with
the number of pooled connections; this one keeps a LIFO stack of idle connections, so
taking or returning one is O(1) and the warmest connection is reused first.

- A ``trio.CapacityLimiter`` caps connections in use; excess requests wait in its fair
  queue. A connection is only opened when no idle one exists, so open connections
  never exceed the cap either.
- An idle connection that turned readable was closed (or broken) by the upstream: it is
  discarded before use, so a request is never written to a dead socket and never
  replayed after the upstream may have started it.
- Connect deadlines are cancel scopes; read deadlines belong to the caller, whose
  scopes (first token, stall, whole request) wrap the reads.
- A response not read to its end (cancellation, error) closes its connection.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import h11
import trio

from adapters import NetworkError, StreamError, UpstreamRequest

from ._connect import Dialer
from ._transport import UpstreamResponse, unsendable

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator, AsyncIterator

__all__ = ["H11Pool"]

_READ_SIZE = 65536


class _Connection:
    __slots__ = ("h11", "idle_since", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0

    def socket(self) -> trio.socket.SocketType:
        stream = self.stream
        if isinstance(stream, trio.SSLStream):
            stream = stream.transport_stream
        assert isinstance(stream, trio.SocketStream)
        return stream.socket

    def is_dead(self) -> bool:
        """An idle connection with bytes or EOF waiting has been closed by the peer."""
        return self.socket().is_readable()

    def close_now(self) -> None:
        """Close without awaiting: for idle connections and cancelled requests."""
        self.socket().close()


class _Origin:
    """Where connections go: scheme, host and port, with its stack of idle connections."""

    __slots__ = ("host", "host_header", "idle", "port", "tls")

    def __init__(self, scheme: str, host: str, port: int | None) -> None:
        self.tls = scheme == "https"
        default_port = 443 if self.tls else 80
        self.host = host
        self.port = port or default_port
        self.host_header = host if self.port == default_port else f"{host}:{self.port}"
        self.idle: list[_Connection] = []


class H11Pool:
    """Keep-alive HTTP/1.1 connections, per origin, for one provider.

    Args:
        max_connections: Cap on connections in use (and so in all).
        keepalive: Seconds an idle connection is kept.
        connect_timeout: Seconds to open a connection (TCP and TLS).
        ssl_context: For https; the system's default trust store if None.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive: float = 90.0,
        connect_timeout: float = 5.0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._origins: dict[tuple[str, str], _Origin] = {}
        self._limiter = trio.CapacityLimiter(max_connections)
        self._keepalive = keepalive
        self._dialer = Dialer(connect_timeout=connect_timeout, ssl_context=ssl_context)
        self._closed = False

    @property
    def in_use(self) -> int:
        return self._limiter.borrowed_tokens

    @property
    def idle(self) -> int:
        return sum(len(o.idle) for o in self._origins.values())

    @asynccontextmanager
    async def request(self, req: UpstreamRequest) -> AsyncIterator[UpstreamResponse]:
        """Send ``req``; yield the response with its body still to be read.

        Raises:
            NetworkError: connect failure, the request cannot be encoded (an invalid
                header value), or the connection broke before the head.
            Timeout: connecting took longer than ``connect_timeout``.
        """
        origin, path = self._route(req.url)
        # Borrowed on behalf of a token, not the task: a hedged stream is opened in an
        # attempt's task and, if it wins, closed by the request's task.
        borrower = object()
        await self._limiter.acquire_on_behalf_of(borrower)
        try:
            conn = await self._checkout(origin)
            reusable = False
            try:
                try:
                    head = self._encode(conn, req, origin.host_header, path)
                except (h11.LocalProtocolError, ValueError, TypeError) as exc:
                    # h11 quotes the header it refused: a key with a stray "\r", say.
                    raise NetworkError(unsendable(exc)) from None
                try:
                    await conn.stream.send_all(head)
                    response = await self._receive_head(conn)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    raise NetworkError(f"upstream connection failed: {exc!r}") from exc
                except h11.RemoteProtocolError as exc:
                    raise NetworkError(f"upstream broke the HTTP protocol: {exc}") from exc
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
                upstream_response = UpstreamResponse(
                    response.status_code, headers, self._body(conn)
                )
                yield upstream_response
                reusable = upstream_response.complete and self._recycle(origin, conn)
            finally:
                if not reusable:
                    conn.close_now()
        finally:
            self._limiter.release_on_behalf_of(borrower)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # HTTP/1.1 needs no task beside the request's own

    async def aclose(self) -> None:
        """Close idle connections; connections in use close when their request ends."""
        self._closed = True
        for origin in self._origins.values():
            idle, origin.idle = origin.idle, []
            for conn in idle:
                conn.close_now()
        await trio.lowlevel.checkpoint()

    # -- internals --------------------------------------------------------------------

    def _route(self, url: str) -> tuple[_Origin, str]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        origin = self._origins.get(key)
        if origin is None:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise NetworkError(f"not an http(s) URL: {parts.scheme}://{parts.netloc}")
            origin = self._origins[key] = _Origin(parts.scheme, parts.hostname, parts.port)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return origin, path

    async def _checkout(self, origin: _Origin) -> _Connection:
        now = trio.current_time()
        idle = origin.idle
        while idle:
            conn = idle.pop()
            if now - conn.idle_since > self._keepalive or conn.is_dead():
                conn.close_now()
                continue
            return conn
        return await self._connect(origin)

    async def _connect(self, origin: _Origin) -> _Connection:
        stream = await self._dialer.open(
            "https" if origin.tls else "http", origin.host, origin.port
        )
        return _Connection(stream)

    def _encode(self, conn: _Connection, req: UpstreamRequest, host: str, path: str) -> bytes:
        headers = [("host", host), ("content-length", str(len(req.body)))]
        headers += req.headers
        c = conn.h11
        return b"".join(
            (
                c.send(h11.Request(method=req.method, target=path, headers=headers)) or b"",
                c.send(h11.Data(data=req.body)) or b"",
                c.send(h11.EndOfMessage()) or b"",
            )
        )

    async def _receive_head(self, conn: _Connection) -> h11.Response:
        while True:
            event = await self._next_event(conn)
            if isinstance(event, h11.Response):
                return event
            if not isinstance(event, h11.InformationalResponse):
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__}")

    async def _next_event(self, conn: _Connection) -> object:
        c = conn.h11
        while True:
            event = c.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await conn.stream.receive_some(_READ_SIZE)
            c.receive_data(bytes(data))  # b"" marks EOF; h11 decides if that ends the body

    async def _body(self, conn: _Connection) -> AsyncGenerator[bytes]:
        """The body as it arrives: all that one read brought in, as one piece.

        h11 gives one ``Data`` event per HTTP chunk, and a streaming upstream sends one
        chunk per token; joining what is already buffered means one decode and one
        write to the client per read instead of per token (3x the streams per second,
        measured).
        """
        c = conn.h11
        try:
            while True:
                event = await self._next_event(conn)
                parts: list[bytes] = []
                while isinstance(event, h11.Data):
                    parts.append(bytes(event.data))
                    event = c.next_event()
                if parts:
                    yield b"".join(parts)
                if isinstance(event, h11.EndOfMessage):
                    return
                if isinstance(event, h11.ConnectionClosed):
                    raise StreamError("upstream closed the connection mid-body")
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            raise StreamError(f"upstream connection broke mid-body: {exc!r}") from exc
        except h11.RemoteProtocolError as exc:
            raise StreamError(f"upstream body ended early: {exc}") from exc

    def _recycle(self, origin: _Origin, conn: _Connection) -> bool:
        c = conn.h11
        if self._closed or c.our_state is not h11.DONE or c.their_state is not h11.DONE:
            return False
        c.start_next_cycle()
        conn.idle_since = trio.current_time()
        origin.idle.append(conn)
        return True
