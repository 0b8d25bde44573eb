"""The benchmark's fake upstream over HTTP/2 (TLS, ALPN ``h2``), for the router's h2 pool.

``python tests/bench/upstream_h2.py --port 0 --tls CERT KEY`` prints ``PORT=<n>`` and
serves until killed: the same answers as ``upstream.py`` (the fixed ``chat.completion``,
or 20 SSE chunks and ``data: [DONE]`` for ``"stream": true``; ``--delay-ms`` and
``--chunk-delay-ms`` alike), one process, many streams per connection. Like real
providers it allows 100 concurrent streams per connection (``SETTINGS_MAX_CONCURRENT_STREAMS``)
and honours the client's flow-control windows, so a pool that opens more streams than
that has to queue or open connections.

The framing is the ``h2`` library (sans-I/O, already installed with hypercorn) on an
``asyncio.Protocol``; answers are precomputed, so the per-request work is h2's.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Final

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings
from upstream import Answers, is_stream, parse_args, run_server, server_tls

MAX_STREAMS: Final = 100
JSON_HEAD: Final = [(b":status", b"200"), (b"content-type", b"application/json")]
SSE_HEAD: Final = [
    (b":status", b"200"),
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
]
NOT_FOUND: Final = [(b":status", b"404"), (b"content-length", b"0")]


class Outbound:
    """A stream's body bytes waiting for flow-control window, and whether it ends."""

    __slots__ = ("data", "end")

    def __init__(self) -> None:
        self.data = bytearray()
        self.end = False


class H2Upstream(asyncio.Protocol):
    """One HTTP/2 connection: requests on many streams, answered from :class:`Answers`."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.loop = asyncio.get_running_loop()
        config = h2.config.H2Configuration(
            client_side=False,
            header_encoding=None,
            validate_inbound_headers=False,
            normalize_inbound_headers=False,
            validate_outbound_headers=False,
            normalize_outbound_headers=False,
        )
        self.conn = h2.connection.H2Connection(config=config)
        self.transport: asyncio.Transport | None = None
        self.requests: dict[int, tuple[bytes, bytes, bytearray]] = {}  # method, path, body
        self.outbound: dict[int, Outbound] = {}
        self.timers: dict[int, asyncio.TimerHandle] = {}

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Check ALPN chose h2, then send our SETTINGS."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        if ssl_object is not None and ssl_object.selected_alpn_protocol() != "h2":
            transport.close()
            return
        self.conn.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.MAX_CONCURRENT_STREAMS: MAX_STREAMS},
        )
        self.conn.initiate_connection()
        self.flush_wire()

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop timers: the streams they would answer are gone."""
        for timer in self.timers.values():
            timer.cancel()
        self.timers.clear()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Feed h2 and act on its events; write what it has to send once."""
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError:
            self.flush_wire()
            if self.transport is not None:
                self.transport.close()
            return
        for event in events:
            try:
                self.on_event(event)
            except h2.exceptions.StreamClosedError as exc:
                # The client reset the stream in the bytes just read (it gave up on the
                # request): that stream is over, the connection goes on, as a real
                # server's does. Uncaught, asyncio would abort the whole connection.
                self.forget(exc.stream_id)
        self.flush_wire()

    def on_event(self, event: h2.events.Event) -> None:
        """One h2 event."""
        if isinstance(event, h2.events.RequestReceived):
            head = dict(event.headers or [])
            self.requests[event.stream_id] = (
                bytes(head.get(b":method", b"")),
                bytes(head.get(b":path", b"")),
                bytearray(),
            )
        elif isinstance(event, h2.events.DataReceived):
            if event.stream_id in self.requests:
                self.requests[event.stream_id][2].extend(event.data or b"")
            self.conn.acknowledge_received_data(event.flow_controlled_length or 0, event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self.answer(event.stream_id)
        elif isinstance(event, h2.events.WindowUpdated):
            ids = list(self.outbound) if not event.stream_id else [event.stream_id]
            for sid in ids:
                self.flush_stream(sid)
        elif isinstance(event, h2.events.StreamReset):
            self.forget(event.stream_id)
        elif isinstance(event, h2.events.ConnectionTerminated) and self.transport is not None:
            self.transport.close()

    def answer(self, sid: int) -> None:
        """Answer the request on stream ``sid``, at once or after ``--delay-ms``."""
        method, path, body = self.requests.pop(sid, (b"", b"", bytearray()))
        a = self.answers
        if method != b"POST" or not path.endswith(b"/chat/completions"):
            self.send(sid, NOT_FOUND, [b""], 0.0)
            return
        if is_stream(bytes(body)):
            events = a.events if a.chunk_delay > 0 else [b"".join(a.events)]
            head = SSE_HEAD
        else:
            events = [a.completion_body]
            head = [*JSON_HEAD, (b"content-length", b"%d" % len(a.completion_body))]
        due = self.loop.time() + a.delay
        if a.delay > 0:
            self.timers[sid] = self.loop.call_at(due, self.later, sid, head, events, due)
        else:
            self.send(sid, head, events, due)

    def later(
        self, sid: int, head: list[tuple[bytes, bytes]] | None, events: list[bytes], due: float
    ) -> None:
        """Timer callback: send the delayed answer."""
        self.send(sid, head, events, due)
        self.flush_wire()

    def send(
        self, sid: int, head: list[tuple[bytes, bytes]] | None, events: list[bytes], due: float
    ) -> None:
        """Send ``head`` (if any) and the first event; the rest ``chunk_delay`` apart."""
        self.timers.pop(sid, None)
        if self.transport is None:
            return
        try:
            if head is not None:
                self.conn.send_headers(sid, head)
        except h2.exceptions.ProtocolError:
            # The client reset the stream meanwhile (h2 then says closed, or, once it
            # has forgotten the stream, "stream id too low"): nothing to answer.
            self.forget(sid)
            return
        out = self.outbound.setdefault(sid, Outbound())
        out.data += events[0]
        if len(events) > 1:
            nxt = due + self.answers.chunk_delay
            self.timers[sid] = self.loop.call_at(nxt, self.later, sid, None, events[1:], nxt)
        else:
            out.end = True
        self.flush_stream(sid)

    def flush_stream(self, sid: int) -> None:
        """Send what the flow-control windows allow of stream ``sid``'s waiting bytes."""
        out = self.outbound.get(sid)
        if out is None:
            return
        try:
            while out.data:
                window = self.conn.local_flow_control_window(sid)
                size = min(len(out.data), window, self.conn.max_outbound_frame_size)
                if size <= 0:
                    return
                last = out.end and size == len(out.data)
                self.conn.send_data(sid, bytes(out.data[:size]), end_stream=last)
                del out.data[:size]
                if last:
                    self.forget(sid)
                    return
            if out.end:
                self.conn.end_stream(sid)
                self.forget(sid)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self.forget(sid)

    def forget(self, sid: int) -> None:
        """Drop everything held for stream ``sid``."""
        self.outbound.pop(sid, None)
        self.requests.pop(sid, None)
        timer = self.timers.pop(sid, None)
        if timer is not None:
            timer.cancel()

    def flush_wire(self) -> None:
        """Write the frames h2 has queued."""
        data = self.conn.data_to_send()
        if data and self.transport is not None:
            self.transport.write(data)


def main(argv: list[str] | None = None) -> None:
    """Entry point: ``--tls CERT KEY`` is required (h2 is negotiated by ALPN)."""
    args = parse_args(argv)
    if not args.tls:
        raise SystemExit("upstream_h2.py needs --tls CERT KEY (HTTP/2 is chosen by ALPN)")
    run_server(args, H2Upstream, server_tls(args.tls[0], args.tls[1], "h2"))


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
