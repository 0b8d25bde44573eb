"""A fast fake OpenAI-compatible upstream for the benchmark.

Run as ``python tests/bench/upstream.py --port 0 --delay-ms 0``: the first stdout line is
``PORT=<n>``, then it serves until killed.  It is plain asyncio (uvloop when it happens to
be installed) with a hand-rolled HTTP/1.1 keep-alive parser on ``asyncio.Protocol``, so a
single core serves many thousands of requests per second and the upstream is never what
the benchmark measures.

``POST /v1/chat/completions`` answers a fixed ``chat.completion``; with ``"stream": true``
in the body it answers 20 ``chat.completion.chunk`` SSE events then ``data: [DONE]``,
chunked.  ``POST /v1/embeddings`` answers a fixed 256-dimension vector per input (its
``input`` counted: a string is one).  ``--delay-ms`` delays each response (timers, never blocking);
``--chunk-delay-ms`` spaces the stream's events.  ``--tls CERT KEY`` serves HTTPS (ALPN
``http/1.1``) with that certificate chain and key.  ``upstream_h2.py`` serves the same
answers over HTTP/2 and reuses the pieces here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import ssl
import sys
import time
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from collections.abc import Callable

MODEL: Final = "bench-model"
CONTENT: Final = "Hello from the bench upstream."
WORDS: Final = (
    *("Hello", "from", "the", "bench", "upstream,", "streaming", "one", "word", "at"),
    *("a", "time", "so", "the", "router", "relays", "each", "small", "delta."),
)
MAX_HEAD: Final = 64 * 1024
EMBED_DIMENSIONS: Final = 256
_VECTOR: Final = json.dumps([round(0.001 * i, 3) for i in range(EMBED_DIMENSIONS)]).encode()


def _completion_body(created: int) -> bytes:
    """Return the fixed non-streaming ``chat.completion`` JSON body."""
    doc = {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": created,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": CONTENT},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 6, "total_tokens": 11},
    }
    return json.dumps(doc, separators=(",", ":")).encode()


def _event(created: int, delta: dict[str, str], finish: str | None) -> bytes:
    """Return one SSE event carrying a ``chat.completion.chunk``."""
    doc = {
        "id": "chatcmpl-bench",
        "object": "chat.completion.chunk",
        "created": created,
        "model": MODEL,
        "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return b"data: " + json.dumps(doc, separators=(",", ":")).encode() + b"\n\n"


def _chunked(data: bytes) -> bytes:
    """Frame ``data`` as one HTTP/1.1 chunk."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def sse_events(created: int) -> list[bytes]:
    """Return the stream's SSE events, unframed: 20 chunks, then ``data: [DONE]``."""
    events = [_event(created, {"role": "assistant", "content": ""}, None)]
    events += [
        _event(created, {"content": w if i == 0 else " " + w}, None) for i, w in enumerate(WORDS)
    ]
    events.append(_event(created, {}, "stop"))
    assert len(events) == 20, len(events)
    return [*events, b"data: [DONE]\n\n"]


def stream_pieces(events: list[bytes]) -> list[bytes]:
    """Return the HTTP/1.1 pieces: headers + first event, 19 more events, [DONE] + end."""
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n"
        b"transfer-encoding: chunked\r\n\r\n"
    )
    framed = [_chunked(e) for e in events]
    return [head + framed[0], *framed[1:-1], framed[-1] + b"0\r\n\r\n"]


def embeddings_response(body: bytes) -> bytes:
    """The embeddings answer to ``body``: a vector per input, as OpenAI's."""
    try:
        given = json.loads(body).get("input")
    except (ValueError, AttributeError):
        given = None
    count = len(given) if isinstance(given, list) and given and not isinstance(given[0], int) else 1
    data = b",".join(
        b'{"object":"embedding","index":%d,"embedding":%s}' % (i, _VECTOR) for i in range(count)
    )
    usage = b'{"prompt_tokens":%d,"total_tokens":%d}' % (count, count)
    doc = b'{"object":"list","model":"%s","data":[%s],"usage":%s}' % (
        MODEL.encode(),
        data,
        usage,
    )
    return _response(b"200 OK", b"application/json", doc)


def _response(status: bytes, ctype: bytes, body: bytes) -> bytes:
    """Return a complete Content-Length response."""
    return b"HTTP/1.1 %s\r\ncontent-type: %s\r\ncontent-length: %d\r\n\r\n%s" % (
        status,
        ctype,
        len(body),
        body,
    )


class Answers:
    """Precomputed response bytes, shared by every connection."""

    def __init__(self, delay_ms: float, chunk_delay_ms: float) -> None:
        created = int(time.time())
        self.delay = delay_ms / 1000.0
        self.chunk_delay = chunk_delay_ms / 1000.0
        self.completion_body = _completion_body(created)
        self.completion = _response(b"200 OK", b"application/json", self.completion_body)
        self.events = sse_events(created)
        self.pieces = stream_pieces(self.events)
        self.stream = b"".join(self.pieces)
        self.ok = _response(b"200 OK", b"text/plain", b"ok")
        models = {"object": "list", "data": [{"id": MODEL, "object": "model", "owned_by": "b"}]}
        self.models = _response(b"200 OK", b"application/json", json.dumps(models).encode())
        err = {"error": {"message": "not found", "type": "invalid_request_error"}}
        self.not_found = _response(b"404 Not Found", b"application/json", json.dumps(err).encode())
        self.bad = _response(b"400 Bad Request", b"text/plain", b"bad request")


class Request:
    """One parsed request: just what the fake needs."""

    __slots__ = ("body", "keep_alive", "method", "target")

    def __init__(self, method: bytes, target: bytes, body: bytes, keep_alive: bool) -> None:
        self.method = method
        self.target = target
        self.body = body
        self.keep_alive = keep_alive


class ParseError(Exception):
    """The peer sent something this minimal parser does not accept."""


def parse_request(buf: bytearray) -> tuple[Request, int] | None:
    """Parse one request from the start of ``buf``; return it and its length, or None."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        if len(buf) > MAX_HEAD:
            raise ParseError("head too large")
        return None
    lines = bytes(buf[:end]).split(b"\r\n")
    try:
        method, target, version = lines[0].split(b" ", 2)
    except ValueError as exc:
        raise ParseError("bad request line") from exc
    length, chunked, keep_alive = 0, False, version == b"HTTP/1.1"
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            token = value.strip().lower()
            keep_alive = token != b"close" and (keep_alive or token == b"keep-alive")
    start = end + 4
    if chunked:
        parsed = _dechunk(buf, start)
        if parsed is None:
            return None
        body, stop = parsed
        return Request(method, target, body, keep_alive), stop
    if len(buf) < start + length:
        return None
    return Request(method, target, bytes(buf[start : start + length]), keep_alive), start + length


def _dechunk(buf: bytearray, pos: int) -> tuple[bytes, int] | None:
    """Decode a chunked body starting at ``pos``; return (body, end) or None if incomplete."""
    parts: list[bytes] = []
    while True:
        eol = buf.find(b"\r\n", pos)
        if eol < 0:
            return None
        size = int(bytes(buf[pos:eol]).split(b";")[0], 16)
        pos = eol + 2
        if size == 0:
            trailer_end = buf.find(b"\r\n\r\n", pos - 2)
            if trailer_end < 0:
                return None
            return b"".join(parts), trailer_end + 4
        if len(buf) < pos + size + 2:
            return None
        parts.append(bytes(buf[pos : pos + size]))
        pos += size + 2


def is_stream(body: bytes) -> bool:
    """Tell a streaming request from its body, by substring (fast, good enough here)."""
    return b'"stream":true' in body or b'"stream": true' in body


class UpstreamProtocol(asyncio.Protocol):
    """One keep-alive connection: requests are answered in order, one at a time."""

    def __init__(self, answers: Answers) -> None:
        self.answers = answers
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.busy = False
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Keep the transport."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        """Drop pending timers."""
        if self.timer is not None:
            self.timer.cancel()
        self.transport = None

    def data_received(self, data: bytes) -> None:
        """Buffer bytes and answer every complete request."""
        self.buf += data
        self.serve_buffered()

    def serve_buffered(self) -> None:
        """Answer buffered requests until one needs a timer or the buffer runs dry."""
        while not self.busy and self.transport is not None:
            try:
                parsed = parse_request(self.buf)
            except (ParseError, ValueError):
                self.finish([self.answers.bad], False, 0.0)
                return
            if parsed is None:
                return
            request, used = parsed
            del self.buf[:used]
            self.answer(request)

    def answer(self, request: Request) -> None:
        """Pick the response for ``request`` and send it now or on timers."""
        a = self.answers
        if request.method == b"POST" and request.target.endswith(b"/chat/completions"):
            if is_stream(request.body):
                pieces = a.pieces if a.chunk_delay > 0 else [a.stream]
            else:
                pieces = [a.completion]
            due = self.loop.time() + a.delay
            if a.delay > 0:
                self.busy = True
                self.timer = self.loop.call_at(due, self.later, pieces, request.keep_alive, due)
                return
            self.finish(pieces, request.keep_alive, due)
        elif request.method == b"POST" and request.target.endswith(b"/embeddings"):
            self.finish([embeddings_response(request.body)], request.keep_alive, 0.0)
        elif request.method == b"GET" and request.target in (b"/healthz", b"/"):
            self.finish([a.ok], request.keep_alive, 0.0)
        elif request.method == b"GET" and request.target.endswith(b"/models"):
            self.finish([a.models], request.keep_alive, 0.0)
        else:
            self.finish([a.not_found], request.keep_alive, 0.0)

    def finish(self, pieces: list[bytes], keep_alive: bool, due: float) -> None:
        """Write the first piece (due at loop time ``due``); the rest ``chunk_delay`` apart.

        Deadlines are absolute, so timer lateness does not add up over a stream.
        """
        self.timer = None
        if self.transport is None:
            return
        self.transport.write(pieces[0])
        if len(pieces) > 1:
            self.busy = True
            nxt = due + self.answers.chunk_delay
            self.timer = self.loop.call_at(nxt, self.later, pieces[1:], keep_alive, nxt)
            return
        self.busy = False
        if not keep_alive:
            self.transport.close()
            self.transport = None

    def later(self, pieces: list[bytes], keep_alive: bool, due: float) -> None:
        """Timer callback: send the pieces, then serve requests that queued meanwhile."""
        self.finish(pieces, keep_alive, due)
        if not self.busy and self.buf:
            self.serve_buffered()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port (printed)")
    p.add_argument("--delay-ms", type=float, default=0.0, help="delay before each response")
    p.add_argument("--chunk-delay-ms", type=float, default=0.0, help="delay between events")
    p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"), help="serve HTTPS")
    return p.parse_args(argv)


def server_tls(cert: str, key: str, alpn: str) -> ssl.SSLContext:
    """A server TLS context with ``cert`` (a PEM chain), ``key`` and one ALPN protocol."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(cert, key)
    ctx.set_alpn_protocols([alpn])
    return ctx


async def serve(
    args: argparse.Namespace,
    protocol: Callable[[Answers], asyncio.Protocol],
    tls: ssl.SSLContext | None,
) -> None:
    """Listen, print ``PORT=<n>``, serve forever."""
    loop = asyncio.get_running_loop()
    answers = Answers(args.delay_ms, args.chunk_delay_ms)
    server = await loop.create_server(
        lambda: protocol(answers),
        args.host,
        args.port,
        backlog=4096,
        reuse_address=True,
        ssl=tls,
    )
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"PORT={port}\n")
    sys.stdout.flush()
    async with server:
        await server.serve_forever()


def run_server(
    args: argparse.Namespace,
    protocol: Callable[[Answers], asyncio.Protocol],
    tls: ssl.SSLContext | None,
) -> None:
    """Run :func:`serve` on uvloop if available, else asyncio."""
    coro = serve(args, protocol, tls)
    try:
        # Optional, not a dependency: unused-ignore covers machines that have it.
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def main(argv: list[str] | None = None) -> None:
    """Entry point: HTTP/1.1, over TLS with ``--tls``."""
    args = parse_args(argv)
    tls = server_tls(args.tls[0], args.tls[1], "http/1.1") if args.tls else None
    run_server(args, UpstreamProtocol, tls)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
