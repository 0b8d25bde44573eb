"""One request's HTTP/2 stream: its side of the exchange, on its connection's state.

The connection's reader task fills a stream in (head, data, end, failure) and wakes it;
the request's task sends the body, waits for the head and reads the body here. Nothing
in this module touches the socket: it changes h2's state machine, synchronously, and
wakes the connection's writer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

import trio

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator

    import h2.connection

__all__ = ["H2Stream", "Link", "Unprocessed"]


class Unprocessed(Exception):
    """The server did not process the stream (it was past a GOAWAY's last stream, or
    refused with REFUSED_STREAM), so it is safe to send again on another connection."""


class Link(Protocol):
    """What a stream needs of its connection."""

    h2: h2.connection.H2Connection
    closed: bool
    #: Streams waiting for send window: woken by WINDOW_UPDATE and SETTINGS.
    blocked: set[H2Stream]

    def wake_writer(self) -> None: ...


class H2Stream:
    """What has arrived for one request, the event its task waits on, and its I/O."""

    __slots__ = (
        "chunks",
        "ended",
        "failure",
        "flow",
        "headers",
        "id",
        "link",
        "status",
        "wakeup",
    )

    def __init__(self, link: Link, stream_id: int) -> None:
        self.link = link
        self.id = stream_id
        self.status = 0  # until the response's head arrives
        self.headers: list[tuple[str, str]] = []
        self.chunks: list[bytes] = []
        self.flow = 0  # flow-controlled bytes received and not yet taken (acknowledged)
        self.ended = False
        self.failure: Exception | None = None
        self.wakeup = trio.Event()

    def wake(self) -> None:
        self.wakeup.set()

    async def wait(self) -> None:
        await self.wakeup.wait()
        self.wakeup = trio.Event()

    def fail(self, exc: Exception) -> None:
        """Record why the stream cannot go on (unless its answer is in already)."""
        if self.failure is None and not self.ended:
            self.failure = exc
            self.wake()

    async def send_body(self, body: bytes) -> None:
        """Send ``body`` as DATA frames, waiting for window as the server grants it.

        Raises:
            Unprocessed, NetworkError: the stream failed before its answer.
        """
        state = self.link.h2
        view = memoryview(body)
        sent = 0
        while sent < len(body):
            if self.failure is not None:
                raise self.failure
            h2_stream = state.streams.get(self.id)
            if h2_stream is None or h2_stream.closed:
                return  # the server answered in full and reset the rest (RFC 9113 §8.1)
            size = min(
                state.local_flow_control_window(self.id),
                state.max_outbound_frame_size,
                len(body) - sent,
            )
            if size <= 0:
                self.link.blocked.add(self)
                try:
                    await self.wait()
                finally:
                    self.link.blocked.discard(self)
                continue
            end = sent + size == len(body)
            state.send_data(self.id, bytes(view[sent : sent + size]), end_stream=end)
            sent += size
            self.link.wake_writer()

    async def receive_head(self) -> tuple[int, list[tuple[str, str]]]:
        """The response's status and headers. Raises what the stream failed with."""
        while not self.status:
            if self.failure is not None:
                raise self.failure
            await self.wait()
        return self.status, self.headers

    async def body(self) -> AsyncGenerator[bytes]:
        """The body as it arrives: all that is buffered, as one piece, acknowledged as
        it is taken (so the server may send as much again: backpressure per stream).

        Raises:
            StreamError, NetworkError: the stream or its connection broke.
        """
        while True:
            if self.chunks:
                data = b"".join(self.chunks)
                self.chunks.clear()
                self.acknowledge()
                yield data
            elif self.ended:
                return
            elif self.failure is not None:
                raise self.failure
            else:
                await self.wait()

    def acknowledge(self) -> None:
        """Give the window the taken (or abandoned) data held back to the server."""
        flow, self.flow = self.flow, 0
        if flow and not self.link.closed:
            self.link.h2.acknowledge_received_data(flow, self.id)
            self.link.wake_writer()
