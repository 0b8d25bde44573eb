"""A scriptable HTTP/2 server (h2 over any trio stream), to test the HTTP/2 pool against.

It serves whatever stream it is handed: TCP (h2c), TLS with ALPN ``h2``, or one end of a
memory stream pair (for tests on the mock clock). Each request, once its body is in, is
given to the test's handler with a :class:`Reply` to answer with: a head, data (within
the client's flow-control window), the end, or a reset. The server counts connections,
the streams open on each at once, and the client's resets, and can be told to say
GOAWAY after N streams, to change its SETTINGS, to stop answering (a dead peer), or to
close a connection.

Like the pool it tests, a connection has one reader and one writer task; handlers only
change h2's state and wake the writer, so cancelling a handler (the client reset its
stream) never breaks the connection.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence

import attrs
import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trio
from h2.connection import ConnectionState
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

__all__ = ["H2Upstream", "Handler", "Reply", "Request", "ServerConnection", "answer"]


@attrs.define
class Request:
    """One request as it arrived: ``headers`` hold the pseudo-headers too."""

    connection: int
    stream_id: int
    headers: dict[str, str]
    body: bytes = b""


class Reply:
    """How a handler answers its request."""

    def __init__(self, conn: ServerConnection, stream_id: int) -> None:
        self.conn = conn
        self.stream_id = stream_id
        self.sent = 0  # body bytes handed to h2 so far

    async def head(
        self, status: int = 200, headers: Sequence[tuple[str, str]] = (), *, end: bool = False
    ) -> None:
        fields = [(":status", str(status)), *headers]
        self.conn.h2.send_headers(self.stream_id, fields, end_stream=end)
        await self.conn.flush()

    async def data(self, data: bytes, *, end: bool = False) -> None:
        """Send ``data``, as fast as the client's window lets it."""
        h2c = self.conn.h2
        while data:
            window = min(h2c.local_flow_control_window(self.stream_id), h2c.max_outbound_frame_size)
            if window <= 0:
                await self.conn.window_opened()
                continue
            piece, data = data[:window], data[window:]
            h2c.send_data(self.stream_id, piece, end_stream=end and not data)
            self.sent += len(piece)
            await self.conn.flush()
            if end and not data:
                return
        if end:  # nothing (left) to send: the end on its own
            await self.end()

    async def end(self) -> None:
        self.conn.h2.end_stream(self.stream_id)
        await self.conn.flush()

    async def reset(self, code: ErrorCodes = ErrorCodes.INTERNAL_ERROR) -> None:
        self.conn.h2.reset_stream(self.stream_id, code)
        await self.conn.flush()


Handler = Callable[[Request, Reply], Awaitable[None]]


def answer(body: bytes = b"hello", status: int = 200) -> Handler:
    """A handler that answers every request with ``status`` and ``body``."""

    async def respond(request: Request, reply: Reply) -> None:
        await reply.head(status, [("content-type", "application/json")])
        await reply.data(body, end=True)

    return respond


class ServerConnection:
    """One client connection: its h2 state, its reader and writer, and its handlers."""

    def __init__(self, server: H2Upstream, index: int, stream: trio.abc.Stream) -> None:
        self.server = server
        self.index = index
        self.stream = stream
        config = h2.config.H2Configuration(client_side=False, header_encoding="utf-8")
        self.h2 = h2.connection.H2Connection(config=config)
        self.h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                SettingCodes.MAX_CONCURRENT_STREAMS: server.max_concurrent_streams,
                SettingCodes.INITIAL_WINDOW_SIZE: server.initial_window,
            },
        )
        self.active = 0  # requests received and not yet answered
        self.processed: list[int] = []  # stream ids handed to the handler
        self.goaway_sent = trio.Event()
        self.frozen = False  # reads and drops everything: a peer that went silent
        self.closed_at: float | None = None  # when the client's EOF arrived
        self._send = trio.Event()
        self._raw: list[bytes] = []
        self._window = trio.Event()
        self._requests: dict[int, Request] = {}
        self._scopes: dict[int, trio.CancelScope] = {}
        self._nursery: trio.Nursery | None = None

    async def flush(self) -> None:
        self._send.set()
        await trio.lowlevel.checkpoint()

    async def window_opened(self) -> None:
        await self._window.wait()

    async def update_settings(self, **settings: int) -> None:
        """Send new SETTINGS, e.g. ``max_concurrent_streams=2`` (applied when acked)."""
        codes = {getattr(SettingCodes, name.upper()): value for name, value in settings.items()}
        self.h2.update_settings(codes)
        await self.flush()

    async def goaway(self, last_stream_id: int, code: ErrorCodes = ErrorCodes.NO_ERROR) -> None:
        self.h2.close_connection(error_code=code, last_stream_id=last_stream_id)
        # h2 then refuses every frame, even for the streams a GOAWAY lets finish.
        self.h2.state_machine.state = ConnectionState.SERVER_OPEN
        self.goaway_sent.set()
        await self.flush()

    async def close(self) -> None:
        await self.stream.aclose()

    async def send_raw(self, data: bytes) -> None:
        """Bytes for the wire as they are: a broken frame, say."""
        self._raw.append(data)
        await self.flush()

    async def serve(self) -> None:
        self.h2.initiate_connection()
        self._send.set()
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                nursery.start_soon(self._write)
                await self._read()
                nursery.cancel_scope.cancel()
        except* (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the client went, or a test closed the connection

    async def _write(self) -> None:
        while True:
            if data := self.h2.data_to_send() + b"".join(self._raw):
                self._raw.clear()
                await self.stream.send_all(data)
            else:
                await self._send.wait()
                self._send = trio.Event()

    async def _read(self) -> None:
        while True:
            data = await self.stream.receive_some(65536)
            if not data:
                self.closed_at = trio.current_time()
                return
            if self.frozen:
                continue
            try:
                events = self.h2.receive_data(data)
            except h2.exceptions.ProtocolError:
                self.server.protocol_errors += 1
                self._send.set()
                return
            for event in events:
                self._on_event(event)
            self._send.set()

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            stream_id = event.stream_id or 0
            headers = dict(event.headers or [])
            request = Request(self.index, stream_id, {str(k): str(v) for k, v in headers.items()})
            self._requests[stream_id] = request
            self.active += 1
            # h2's own count: what it checks against the limit (and refuses past it).
            self.server.peak = max(self.server.peak, self.h2.open_inbound_streams)
        elif isinstance(event, h2.events.DataReceived):
            stream_id = event.stream_id or 0
            self._requests[stream_id].body += event.data or b""
            self.h2.acknowledge_received_data(event.flow_controlled_length or 0, stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._start(self._requests[event.stream_id or 0])
        elif isinstance(event, h2.events.StreamReset):
            stream_id = event.stream_id or 0
            self.server.resets.append((self.index, stream_id, event.error_code))
            self.server.reset.set()
            if scope := self._scopes.get(stream_id):
                scope.cancel()
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            self._window.set()
            self._window = trio.Event()
        elif isinstance(event, h2.events.PingReceived):
            self.server.pings += 1

    def _start(self, request: Request) -> None:
        goaway_after = self.server.goaway_after
        if goaway_after is not None and len(self.processed) >= goaway_after:
            self.server.unprocessed.append(request)
            self.active -= 1
            if not self.goaway_sent.is_set():
                assert self._nursery is not None
                self._nursery.start_soon(self.goaway, self.processed[-1] if self.processed else 0)
            return
        self.processed.append(request.stream_id)
        self.server.requests.append(request)
        assert self._nursery is not None
        self._nursery.start_soon(self._handle, request)

    async def _handle(self, request: Request) -> None:
        with trio.CancelScope() as scope:
            self._scopes[request.stream_id] = scope
            await self.server.handler(request, Reply(self, request.stream_id))
        del self._scopes[request.stream_id]
        self.active -= 1


class H2Upstream:
    """Serves HTTP/2 on each stream given to :meth:`handle`.

    Args:
        handler: Answers each request.
        max_concurrent_streams: Its SETTINGS_MAX_CONCURRENT_STREAMS (h2 refuses the
            connection, as a protocol error, if a client opens more).
        goaway_after: Say GOAWAY on a connection once this many streams were handled:
            later streams are not processed (:attr:`unprocessed`); the handled ones
            finish, and the client is left to close the connection.
        initial_window: Its SETTINGS_INITIAL_WINDOW_SIZE, for request bodies.
    """

    def __init__(
        self,
        handler: Handler | None = None,
        *,
        max_concurrent_streams: int = 100,
        goaway_after: int | None = None,
        initial_window: int = 65535,
    ) -> None:
        self.handler = handler or answer()
        self.max_concurrent_streams = max_concurrent_streams
        self.goaway_after = goaway_after
        self.initial_window = initial_window
        self.connections: list[ServerConnection] = []
        self.requests: list[Request] = []
        self.unprocessed: list[Request] = []
        self.resets: list[tuple[int, int, ErrorCodes | int | None]] = []
        self.reset = trio.Event()  # set at the client's first RST_STREAM
        self.peak = 0  # the most streams open at once on one connection
        self.pings = 0
        self.protocol_errors = 0

    async def handle(self, stream: trio.abc.Stream) -> None:
        conn = ServerConnection(self, len(self.connections), stream)
        self.connections.append(conn)
        await conn.serve()
