"""One HTTP/2 connection to an upstream: h2's state machine and the tasks that own the socket.

Why this layout: a connection carries many requests at once, and cancelling a
``trio.SSLStream``'s ``send_all`` or ``receive_some`` part-way breaks the TLS stream for
good. So a request's task never touches the socket. One reader task and one writer task
do, in the pool's nursery; a request changes h2's state machine with synchronous calls
(which no cancellation can interrupt half-way), wakes the writer, and waits on its own
stream's event. A cancelled request (its client went away, a hedge lost) resets its own
stream (RST_STREAM CANCEL) and every other stream carries on.

- Flow control: the connection's receive window is 16 MiB, each stream's 4 MiB, and data
  is acknowledged (WINDOW_UPDATE) as the request's reader takes it, so a stream nobody
  reads holds at most its window in memory while the server waits. A request body larger
  than the server's window waits for its WINDOW_UPDATEs.
- GOAWAY: streams above its ``last_stream_id`` were not processed, and fail with
  :class:`Unprocessed` for the pool to send again elsewhere; the others finish, and the
  connection closes after the last of them.
- Liveness: when nothing has arrived for ``ping_interval`` seconds it sends a PING and
  takes no new stream until the answer; no answer within ``ping_timeout`` and it is
  closed. With no stream for ``keepalive`` seconds it says GOAWAY and closes.
"""

from __future__ import annotations

import itertools
from contextlib import suppress
from typing import TYPE_CHECKING

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
import trio
from h2.errors import ErrorCodes
from h2.settings import SettingCodes

from adapters import GatewayError, NetworkError, StreamError, Timeout

from ._h2stream import H2Stream, Unprocessed
from ._h2wire import ClientState, error_name, response_head
from ._transport import unsendable

if TYPE_CHECKING:
    from collections.abc import Callable


__all__ = ["CONNECTION_WINDOW", "STREAM_CAP", "STREAM_WINDOW", "H2Connection"]

CONNECTION_WINDOW = 16 * 1024 * 1024
STREAM_WINDOW = 4 * 1024 * 1024
#: Streams per connection when the server sets no limit (RFC 9113 leaves it unbounded).
STREAM_CAP = 1000
_MAX_HEADER_LIST = 256 * 1024
_READ_SIZE = 65536
_CLOSE_GRACE = 1.0
_LAST_STREAM_ID = 2**31 - 1
_STREAM_ID_MARGIN = 2 * STREAM_CAP + 2
_TRANSPORT_ERRORS = (trio.BrokenResourceError, trio.ClosedResourceError, OSError)


class H2Connection:
    """An HTTP/2 connection: its streams, its reader, writer and keep-alive tasks.

    The pool reserves a slot (:meth:`reserve`) before a request opens its stream and
    every reservation ends with :meth:`finish`; ``on_change`` is called whenever the
    slots a new request could take may have changed (settings, a stream ended, the
    connection went away or closed), for the pool to hand them to waiting requests.

    Args:
        stream: The connected transport (TLS with ALPN ``h2``, or plain TCP for h2c).
        on_change: Called, synchronously, when the free slots may have changed.
        handshake_timeout: Seconds to wait for the server's SETTINGS.
    """

    def __init__(
        self,
        stream: trio.abc.Stream,
        *,
        on_change: Callable[[], None],
        handshake_timeout: float,
        ping_interval: float,
        ping_timeout: float,
        keepalive: float,
    ) -> None:
        self._stream = stream
        self._on_change = on_change
        self._handshake_timeout = handshake_timeout
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._keepalive = keepalive
        config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self.h2: h2.connection.H2Connection = ClientState(config=config)
        self.h2.local_settings = h2.settings.Settings(
            client=True,
            initial_values={
                SettingCodes.ENABLE_PUSH: 0,
                SettingCodes.INITIAL_WINDOW_SIZE: STREAM_WINDOW,
                SettingCodes.MAX_HEADER_LIST_SIZE: _MAX_HEADER_LIST,
            },
        )
        # A server's setting (RFC 8441): a client has no reason to send it.
        del self.h2.local_settings[SettingCodes.ENABLE_CONNECT_PROTOCOL]
        self.h2.initiate_connection()
        self.h2.increment_flow_control_window(CONNECTION_WINDOW - 65535)
        self.streams: dict[int, H2Stream] = {}
        self.reserved = 0
        self.ready = False  # the server's SETTINGS arrived
        self.going_away = False
        self.closed = False
        self.probing = False  # a PING is out: no new stream until its answer
        self.http1 = False  # the server answered our preface in HTTP/1 (no h2c)
        #: Why the connection ended before it was ready, for the requests waiting on it.
        self.failure: NetworkError | Timeout | None = None
        self.idle_since = self._last_received = trio.current_time()
        self._scope = trio.CancelScope()
        self._ready = trio.Event()
        self._send = trio.Event()  # wakes the writer
        self._tick = trio.Event()  # wakes the keep-alive task: the connection went idle
        self._pong = trio.Event()
        self._ping_payload = b""
        self._ping_ids = itertools.count(1)
        self.blocked: set[H2Stream] = set()  # streams waiting for send window

    # -- what the pool reads ----------------------------------------------------------

    @property
    def max_streams(self) -> int:
        return min(self.h2.remote_settings.max_concurrent_streams, STREAM_CAP)

    @property
    def free(self) -> int:
        """Streams a new request may open now."""
        if not self.ready or self.closed or self.going_away or self.probing:
            return 0
        return max(0, self.max_streams - self.reserved)

    def expected(self, hint: int) -> int:
        """Streams it will soon take: it is still connecting, or waiting for a PING's answer."""
        if self.closed or self.going_away:
            return 0
        if not self.ready:
            return hint
        if self.probing:
            return max(0, self.max_streams - self.reserved)
        return 0

    # -- the connection's life ----------------------------------------------------------

    async def run(self) -> None:
        """Serve the connection until it closes. Never raises: ``failure`` says why a
        connection ended before it was ready, and open streams get their own error."""
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._read)
                    nursery.start_soon(self._write)
                    nursery.start_soon(self._watch)
        finally:
            self.close()
            with trio.CancelScope(shield=True), trio.move_on_after(_CLOSE_GRACE):
                with suppress(*_TRANSPORT_ERRORS):
                    if data := self.h2.data_to_send():  # our GOAWAY, said politely
                        await self._stream.send_all(data)
                await self._stream.aclose()  # cancelled at the grace's end: closed abruptly

    def close(self) -> None:
        """Say GOAWAY and close. Streams still open fail."""
        if not self.closed:
            with suppress(h2.exceptions.ProtocolError):
                self.h2.close_connection()
            self._die("the connection was closed")

    def _die(self, reason: str, *, timeout: bool = False) -> None:
        """Mark the connection closed, fail its open streams, and stop its tasks."""
        if self.closed:
            return
        self.closed = True
        if not self.ready:
            self.failure = Timeout(reason) if timeout else NetworkError(reason)
        incident = object()  # one loss, however many streams it ends
        for stream in self.streams.values():
            err: GatewayError = (
                StreamError(f"{reason} mid-body") if stream.status else NetworkError(reason)
            )
            err.incident = incident
            stream.fail(err)
        self._scope.cancel()
        if self.ready:  # else the pool hears it as a failed connect, when run() returns
            self._on_change()

    async def _read(self) -> None:
        try:
            while True:
                data = await self._stream.receive_some(_READ_SIZE)
                if not data:
                    self._die("the upstream closed the connection")
                    return
                self._last_received = trio.current_time()
                if not self.ready and bytes(data[:5]) == b"HTTP/":
                    self.http1 = True
                    self._die("the upstream answered HTTP/2 in HTTP/1 (no h2c)")
                    return
                for event in self.h2.receive_data(data):
                    self._on_event(event)
                self.wake_writer()
        except h2.exceptions.ProtocolError as exc:
            # Not quoted: h2's text may hold a header's value.
            self._die(f"the upstream broke the HTTP/2 protocol ({type(exc).__name__})")
        except _TRANSPORT_ERRORS as exc:
            self._die(f"upstream connection failed: {exc!r}")

    async def _write(self) -> None:
        try:
            while True:
                if data := self.h2.data_to_send():
                    await self._stream.send_all(data)
                else:
                    await self._send.wait()
                    self._send = trio.Event()
        except _TRANSPORT_ERRORS as exc:
            self._die(f"upstream connection failed: {exc!r}")

    def wake_writer(self) -> None:
        self._send.set()

    async def _watch(self) -> None:
        """The handshake's deadline, then pings and the idle deadline."""
        with trio.move_on_after(self._handshake_timeout):
            await self._ready.wait()
        if not self.ready:
            seconds = f"{self._handshake_timeout:g}"
            self._die(f"the upstream sent no HTTP/2 SETTINGS within {seconds} s", timeout=True)
            return
        while True:
            now = trio.current_time()
            close_at = self.idle_since + self._keepalive if not self.reserved else float("inf")
            ping_at = self._last_received + self._ping_interval
            if now >= close_at:
                self.close()
                return
            if now >= ping_at:
                if not await self._ping():
                    seconds = f"{self._ping_timeout:g}"
                    self._die(f"the upstream did not answer a PING within {seconds} s")
                    return
                continue
            with trio.move_on_at(min(close_at, ping_at)):
                await self._tick.wait()
            self._tick = trio.Event()

    async def _ping(self) -> bool:
        self.probing = True
        self._ping_payload = next(self._ping_ids).to_bytes(8, "big")
        self._pong = trio.Event()
        self.h2.ping(self._ping_payload)
        self.wake_writer()
        with trio.move_on_after(self._ping_timeout):
            await self._pong.wait()
        self.probing = False
        if self._pong.is_set():
            self._on_change()
            return True
        return False

    # -- events from the server -----------------------------------------------------------

    def _on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.DataReceived):
            self._data(event)
        elif isinstance(event, h2.events.ResponseReceived):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                stream.status, stream.headers = response_head(event.headers or [])
                stream.wake()
        elif isinstance(event, h2.events.StreamEnded):
            stream = self.streams.get(event.stream_id or 0)
            if stream is not None:
                stream.ended = True
                stream.wake()
        elif isinstance(event, h2.events.StreamReset):
            self._reset(event)
        elif isinstance(event, h2.events.WindowUpdated):
            stream = self.streams.get(event.stream_id or 0)
            for waiting in self.blocked if stream is None else (stream,):
                waiting.wake()
        elif isinstance(event, h2.events.RemoteSettingsChanged):
            if not self.ready:
                self.ready = True
                self._ready.set()
            if SettingCodes.INITIAL_WINDOW_SIZE in event.changed_settings:
                for waiting in self.blocked:
                    waiting.wake()
            self._on_change()
        elif isinstance(event, h2.events.PingAckReceived):
            if event.ping_data == self._ping_payload:
                self._pong.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self._goaway(event)

    def _data(self, event: h2.events.DataReceived) -> None:
        stream_id = event.stream_id or 0
        length = event.flow_controlled_length or 0
        stream = self.streams.get(stream_id)
        if stream is None:  # a stream we let go of: its bytes go back to the window
            if length:
                self.h2.acknowledge_received_data(length, stream_id)
            return
        if event.data:
            stream.chunks.append(event.data)
        stream.flow += length
        stream.wake()

    def _reset(self, event: h2.events.StreamReset) -> None:
        stream = self.streams.get(event.stream_id or 0)
        if stream is None:
            return
        code = error_name(event.error_code)
        if stream.status:
            stream.fail(StreamError(f"the upstream reset the stream mid-body ({code})"))
        elif event.error_code == ErrorCodes.REFUSED_STREAM:
            stream.fail(Unprocessed("refused"))
        else:
            stream.fail(NetworkError(f"the upstream reset the stream before answering ({code})"))

    def _goaway(self, event: h2.events.ConnectionTerminated) -> None:
        self.going_away = True
        last = event.last_stream_id or 0
        for stream in self.streams.values():
            if stream.id > last:
                stream.fail(Unprocessed("going away"))
        if not self.reserved:
            self.close()
        self._on_change()

    # -- a request's side -------------------------------------------------------------

    def reserve(self) -> None:
        """Take a slot for a request that will open a stream (or hand it back: :meth:`finish`)."""
        self.reserved += 1

    def open_stream(self, headers: list[tuple[bytes, bytes]], *, end_stream: bool) -> H2Stream:
        """Send a request's HEADERS on a new stream.

        Raises:
            Unprocessed: the connection is going away or closed; send it elsewhere.
            NetworkError: h2 refused the headers.
        """
        if self.closed or self.going_away:
            raise Unprocessed("not taking streams")
        stream_id = self.h2.get_next_available_stream_id()
        try:
            self.h2.send_headers(stream_id, headers, end_stream=end_stream)
        except h2.exceptions.TooManyStreamsError:
            self.h2.streams.pop(stream_id, None)
            raise Unprocessed("over the stream limit") from None
        except h2.exceptions.ProtocolError as exc:
            # The pool validated the headers, so this is unexpected, and h2 may have half
            # encoded them: the header compression state is no longer trusted.
            self.close()
            raise NetworkError(unsendable(exc)) from None
        stream = self.streams[stream_id] = H2Stream(self, stream_id)
        if stream_id > _LAST_STREAM_ID - _STREAM_ID_MARGIN:
            self.going_away = True  # out of stream ids soon: drain, then close
        self.wake_writer()
        return stream

    def finish(self, stream: H2Stream | None) -> None:
        """End a reservation: reset its stream if it is still open, give back the
        window its unread data holds, and free the slot. Synchronous, so a cancelled
        request can call it from ``finally``."""
        if stream is not None:
            self.streams.pop(stream.id, None)
            self.blocked.discard(stream)
            if not self.closed:
                state = self.h2.streams.get(stream.id)
                if state is not None and not state.closed:
                    with suppress(h2.exceptions.ProtocolError):
                        self.h2.reset_stream(stream.id, ErrorCodes.CANCEL)
                stream.acknowledge()
                self.wake_writer()
        self.reserved -= 1
        if not self.reserved:
            self.idle_since = trio.current_time()
            self._tick.set()
            if self.going_away:
                self.close()
        self._on_change()
