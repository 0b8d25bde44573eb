"""HTTP/2 to upstreams: requests multiplexed over a few connections per origin.

``pool.http2 = true`` on a provider. One :class:`H2Pool` per provider; per origin a list
of :class:`~router.upstream._h2conn.H2Connection`, each carrying as many streams at once
as its server's SETTINGS_MAX_CONCURRENT_STREAMS allows (and follows changes to it).

- A request past every connection's limit opens another connection (up to
  ``max_connections`` for the pool), or waits, first come first served, for a stream
  to end. It never fails for want of a stream: no 502 of our own.
- Streams the server did not process (past a GOAWAY's last stream, or refused with
  REFUSED_STREAM) are sent again, on another connection, without the caller knowing.
- The connections' tasks live in the nursery of :meth:`H2Pool.run`, which must be running
  before the first request: a request's task never reads or writes the socket, so a
  cancelled request cannot break a connection others share.
- https origins negotiate ``h2`` by ALPN; one that picks HTTP/1.1 (or no ALPN) is served
  by an internal :class:`~router.upstream._pool.H11Pool` from then on. Plain http origins
  get HTTP/2 with prior knowledge (h2c, RFC 9113 §3.3); a server that answers the preface
  in HTTP/1 falls back the same way.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import trio

from adapters import NetworkError, Timeout, UpstreamRequest

from ._connect import Dialer
from ._h2conn import H2Connection
from ._h2origin import Origin, Waiter
from ._h2stream import Unprocessed
from ._h2wire import request_headers
from ._pool import H11Pool
from ._transport import UpstreamResponse

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator

    from ._proxy import ProxyRoutes
    from ._tls import ClientTLS

__all__ = ["H2Pool"]

_ALPN = ("h2", "http/1.1")
#: Times a request is sent again after the server did not process it, before giving up.
_MAX_REPLAYS = 10
#: Seconds after a failed connect before another one is tried while others serve.
_CONNECT_BACKOFF = 1.0


class H2Pool:
    """HTTP/2 connections, per origin, for one provider (see the module's docstring).

    Args:
        max_connections: Cap on connections, open or opening, over all origins.
        keepalive: Seconds a connection without streams is kept.
        connect_timeout: Seconds to connect (TCP and TLS), and again for the server's
            HTTP/2 SETTINGS.
        tls: The provider's TLS contexts (the one offering ALPN ``h2, http/1.1`` is
            its own); the system's trust store if None.
        ssl_context: A context to use as it is instead (tests): the pool sets ALPN
            ``h2, http/1.1`` on it, so give it a context of its own.
        proxy: The provider's proxies: https origins go through a CONNECT tunnel; a
            plain http origin behind a forwarding proxy is served over HTTP/1.1.
        ping_interval: Seconds without a frame from the server before a PING.
        ping_timeout: Seconds to wait for the PING's answer before closing.
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
        ping_interval: float = 30.0,
        ping_timeout: float = 10.0,
    ) -> None:
        self._max_connections = max_connections
        self._keepalive = keepalive
        self._connect_timeout = connect_timeout
        self._tls = tls
        self._ssl_context = ssl_context
        self._proxy = proxy
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        if ssl_context is not None:
            ssl_context.set_alpn_protocols(list(_ALPN))
        self._dialer = Dialer(
            connect_timeout=connect_timeout, tls=tls, ssl_context=ssl_context, proxy=proxy
        )
        self._origins: dict[tuple[str, str], Origin] = {}
        self._count = 0  # connections open or opening
        self._h11: H11Pool | None = None
        self._nursery: trio.Nursery | None = None
        self._closed = False
        self._stop = trio.Event()
        self._stopped = trio.Event()

    @property
    def connections(self) -> int:
        """Connections open or being opened (HTTP/1.1 fallbacks aside)."""
        return self._count

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Host the connections' tasks until cancelled or :meth:`aclose`. Start it with
        ``await nursery.start(pool.run)`` before the first request."""
        if self._nursery is not None or self._closed:
            raise RuntimeError("H2Pool.run() runs once per pool")
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                task_status.started()
                try:
                    await self._stop.wait()
                finally:
                    # Before the connections' tasks end, so that none starts another.
                    self._closed = True
                    self._fail_waiters()
                    nursery.cancel_scope.cancel()
        finally:
            self._nursery = None
            self._stopped.set()

    async def aclose(self) -> None:
        """Close every connection (streams still open fail) and end :meth:`run`."""
        running = self._nursery is not None
        self._closed = True
        self._fail_waiters()
        for origin in self._origins.values():
            for conn in origin.conns:
                conn.close()
        if self._h11 is not None:
            await self._h11.aclose()
        self._stop.set()
        if running:
            await self._stopped.wait()
        await trio.lowlevel.checkpoint()

    @asynccontextmanager
    async def request(self, req: UpstreamRequest) -> AsyncIterator[UpstreamResponse]:
        """Send ``req`` on a stream; yield the response with its body still to be read.

        Raises:
            RuntimeError: :meth:`run` is not running.
            NetworkError: connect failure, the request cannot be encoded (an invalid
                header value), or the stream or connection failed before the head.
            Timeout: connecting (or the server's SETTINGS) took past ``connect_timeout``.
        """
        if self._nursery is None or self._closed:
            raise RuntimeError("H2Pool.run() is not running: start it in a nursery first")
        origin, path = self._route(req.url)
        headers = request_headers(req, origin.scheme, origin.authority, path)
        for _ in range(_MAX_REPLAYS):
            if origin.http1:
                async with self._http1().request(req) as response:
                    yield response
                return
            conn = await self._acquire(origin)
            if conn is None:
                continue  # the origin turned out to speak HTTP/1.1 only
            stream = None
            try:
                stream = conn.open_stream(headers, end_stream=not req.body)
                if req.body:
                    await stream.send_body(req.body)
                status, response_headers = await stream.receive_head()
            except Unprocessed:
                conn.finish(stream)
                continue
            except BaseException:
                conn.finish(stream)
                raise
            try:
                yield UpstreamResponse(status, response_headers, stream.body())
            finally:
                conn.finish(stream)
            return
        raise NetworkError(
            f"the upstream did not take the request in {_MAX_REPLAYS} tries"
            " (GOAWAY or REFUSED_STREAM each time)"
        )

    # -- connections for requests ----------------------------------------------------------

    async def _acquire(self, origin: Origin) -> H2Connection | None:
        """A connection with a slot reserved, or None if the origin fell back to HTTP/1.1.

        Raises:
            NetworkError, Timeout: no connection could be opened.
        """
        if not origin.waiters and (conn := origin.free_connection()) is not None:
            conn.reserve()
            return conn
        waiter = Waiter()
        origin.waiters.append(waiter)
        self._dispatch(origin)
        try:
            await waiter.event.wait()
        except BaseException:
            if waiter.conn is not None:  # handed a slot as it was being cancelled
                waiter.conn.finish(None)
            elif waiter in origin.waiters:
                origin.waiters.remove(waiter)
            raise
        if waiter.failure is not None:
            failure = waiter.failure
            raise type(failure)(failure.message) from failure
        return waiter.conn

    def _dispatch(self, origin: Origin) -> None:
        """Hand free streams to waiting requests in order; open connections for the rest."""
        waiters = origin.waiters
        while waiters and (conn := origin.free_connection()) is not None:
            waiter = waiters.popleft()
            conn.reserve()
            waiter.conn = conn
            waiter.event.set()
        if not waiters:
            return
        if self._closed:
            self._fail_waiters()
            return
        if origin.http1:
            while waiters:
                waiters.popleft().event.set()  # no connection: they go to HTTP/1.1
            return
        for conn in origin.conns:
            if conn.ready and not conn.closed:
                origin.hint = max(1, conn.max_streams)
        expected = origin.dialing * origin.hint + sum(c.expected(origin.hint) for c in origin.conns)
        if trio.current_time() < origin.retry_at and (origin.dialing or origin.alive()):
            return  # a connect just failed: what is open (or opening) serves the queue
        while len(waiters) > expected and self._count < self._max_connections:
            self._start(origin)
            expected += origin.hint

    def _dispatch_all(self) -> None:
        for origin in self._origins.values():
            if origin.waiters:
                self._dispatch(origin)

    def _fail_waiters(self) -> None:
        for origin in self._origins.values():
            while origin.waiters:
                waiter = origin.waiters.popleft()
                waiter.failure = NetworkError("the upstream connection pool is closed")
                waiter.event.set()

    def _start(self, origin: Origin) -> None:
        assert self._nursery is not None
        origin.dialing += 1
        self._count += 1
        self._nursery.start_soon(self._connection, origin)

    async def _connection(self, origin: Origin) -> None:
        """Open a connection and serve it until it closes: a task in :meth:`run`'s nursery."""
        try:
            stream = await self._dial(origin)
        except BaseException as exc:
            origin.dialing -= 1
            self._count -= 1
            if isinstance(exc, (NetworkError, Timeout)):
                self._connect_failed(origin, exc)
                return
            raise
        origin.dialing -= 1
        if stream is None:
            self._count -= 1
            origin.http1 = True
            self._dispatch(origin)
            return
        # The TLS session, for the next connection to resume: TLS 1.3 sends its ticket
        # after the handshake, so it is looked for as frames arrive, until kept.
        session_kept = False

        def changed() -> None:
            nonlocal session_kept
            if not session_kept:
                session_kept = self._dialer.keep_session(
                    stream, origin.host, origin.port, alpn=_ALPN
                )
            self._dispatch(origin)

        conn = H2Connection(
            stream,
            on_change=changed,
            handshake_timeout=self._connect_timeout,
            ping_interval=self._ping_interval,
            ping_timeout=self._ping_timeout,
            keepalive=self._keepalive,
        )
        origin.conns.append(conn)
        try:
            await conn.run()
        finally:
            origin.conns.remove(conn)
            self._count -= 1
            if conn.http1:
                origin.http1 = True
            if conn.failure is not None and not conn.http1:
                self._connect_failed(origin, conn.failure)
            self._dispatch_all()

    async def _dial(self, origin: Origin) -> trio.abc.Stream | None:
        """A connected stream that speaks HTTP/2, or None if TLS chose another protocol."""
        alpn = _ALPN if origin.scheme == "https" else None
        stream = await self._dialer.open(origin.scheme, origin.host, origin.port, alpn=alpn)
        if isinstance(stream, trio.SSLStream) and stream.selected_alpn_protocol() != "h2":
            await trio.aclose_forcefully(stream)
            return None
        return stream

    def _connect_failed(self, origin: Origin, exc: NetworkError | Timeout) -> None:
        """Waiters get the error, unless a connection (open or opening) will serve them."""
        origin.retry_at = trio.current_time() + _CONNECT_BACKOFF
        if origin.dialing or origin.alive():
            self._dispatch(origin)
            return
        while origin.waiters:
            waiter = origin.waiters.popleft()
            waiter.failure = exc
            waiter.event.set()

    def _http1(self) -> H11Pool:
        if self._h11 is None:
            self._h11 = H11Pool(
                max_connections=self._max_connections,
                keepalive=self._keepalive,
                connect_timeout=self._connect_timeout,
                tls=self._tls,
                ssl_context=self._ssl_context,
                proxy=self._proxy,
            )
        return self._h11

    def _route(self, url: str) -> tuple[Origin, str]:
        parts = urlsplit(url)
        key = (parts.scheme, parts.netloc)
        origin = self._origins.get(key)
        if origin is None:
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise NetworkError(f"not an http(s) URL: {parts.scheme}://{parts.netloc}")
            origin = self._origins[key] = Origin(parts.scheme, parts.hostname, parts.port)
            # A forwarding proxy speaks HTTP/1.1: a plain http origin behind one is
            # served by the HTTP/1.1 pool (https ones tunnel through and speak h2).
            if self._dialer.forwarding_proxy(origin.scheme, origin.host, origin.port):
                origin.http1 = True
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        return origin, path
