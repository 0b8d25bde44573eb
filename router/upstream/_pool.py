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
- Connections open through the pool's :class:`~._connect.Dialer` (proxy tunnel, TLS,
  session resumption); a plain http origin behind a forwarding proxy gets its
  requests in absolute form (``POST http://host/path``) on connections to the proxy,
  still pooled per origin.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import h11
import trio

from adapters import NetworkError, StreamError, UpstreamRequest

from ._connect import Dialer, tls_problem
from ._proxy import proxy_authorization
from ._transport import UpstreamResponse, unsendable

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncGenerator, AsyncIterator

    from ._proxy import ProxyRoutes
    from ._tls import ClientTLS

__all__ = ["H11Pool"]

_READ_SIZE = 65536


class _Connection:
    __slots__ = ("answered", "h11", "idle_since", "stream")

    def __init__(self, stream: trio.abc.Stream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)
        self.idle_since = 0.0
        self.answered = False  # a whole response has been read on it

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
    """Where connections go: scheme, host and port, with its stack of idle connections.

    ``forward`` is set for a plain http origin reached through a forwarding proxy: the
    request target is then the absolute URL, and ``proxy_headers`` go with it.
    """

    __slots__ = ("forward", "host", "host_header", "idle", "port", "proxy_headers", "scheme")

    def __init__(self, scheme: str, host: str, port: int | None, dialer: Dialer) -> None:
        self.scheme = scheme
        default_port = 443 if scheme == "https" else 80
        self.host = host
        self.port = port or default_port
        authority = f"[{host}]" if ":" in host else host
        self.host_header = authority if self.port == default_port else f"{authority}:{self.port}"
        self.idle: list[_Connection] = []
        proxy = dialer.forwarding_proxy(scheme, host, self.port)
        self.forward = f"{scheme}://{self.host_header}" if proxy is not None else ""
        auth = proxy_authorization(proxy) if proxy is not None else None
        self.proxy_headers = [("proxy-authorization", auth)] if auth else []


class H11Pool:
    """Keep-alive HTTP/1.1 connections, per origin, for one provider.

    Args:
        max_connections: Cap on connections in use (and so in all).
        keepalive: Seconds an idle connection is kept.
        connect_timeout: Seconds to open a connection (TCP, proxy tunnel and TLS).
        tls: The provider's TLS contexts; the system's trust store (shared) if None.
        ssl_context: A context to use as it is instead (tests).
        proxy: The provider's proxies (None: direct connections).
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive: float = 90.0,
        connect_timeout: float = 5.0,
        tls: ClientTLS | None = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy: ProxyRoutes | None = None,
    ) -> None:
        self._origins: dict[tuple[str, str], _Origin] = {}
        self._limiter = trio.CapacityLimiter(max_connections)
        self._keepalive = keepalive
        self._dialer = Dialer(
            connect_timeout=connect_timeout, tls=tls, ssl_context=ssl_context, proxy=proxy
        )
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
                    head = self._encode(conn, req, origin, path)
                except (h11.LocalProtocolError, ValueError, TypeError) as exc:
                    # h11 quotes the header it refused: a key with a stray "\r", say.
                    raise NetworkError(unsendable(exc)) from None
                try:
                    await conn.stream.send_all(head)
                    response = await self._receive_head(conn)
                except (trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
                    # TLS 1.3 checks a client certificate after the handshake: a refusal
                    # arrives here, on the first read.
                    problem = tls_problem(exc)
                    if problem is not None:
                        raise NetworkError(f"upstream TLS failed: {problem}") from exc
                    raise NetworkError(f"upstream connection failed: {exc!r}") from exc
                except h11.RemoteProtocolError as exc:
                    raise NetworkError(f"upstream broke the HTTP protocol: {exc}") from exc
                headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers]
                upstream_response = UpstreamResponse(
                    response.status_code, headers, self._body(conn)
                )
                yield upstream_response
                if upstream_response.complete and not conn.answered:
                    conn.answered = True  # TLS 1.3's session tickets have come by now
                    self._dialer.keep_session(conn.stream, origin.host, origin.port)
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
            origin = self._origins[key] = _Origin(
                parts.scheme, parts.hostname, parts.port, self._dialer
            )
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
        stream = await self._dialer.open(origin.scheme, origin.host, origin.port)
        return _Connection(stream)

    def _encode(self, conn: _Connection, req: UpstreamRequest, origin: _Origin, path: str) -> bytes:
        headers = [("host", origin.host_header), ("content-length", str(len(req.body)))]
        headers += origin.proxy_headers
        headers += req.headers
        target = origin.forward + path  # absolute form through a forwarding proxy
        c = conn.h11
        return b"".join(
            (
                c.send(h11.Request(method=req.method, target=target, headers=headers)) or b"",
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
