"""A lean HTTP/1.1 load generator for the benchmark (the fallback when wrk is absent).

``python tests/bench/loadgen.py --url http://127.0.0.1:PORT/v1/chat/completions -c 16 -d 5``
keeps ``-c`` keep-alive connections busy with the same POST for ``-d`` seconds (after a
``--warmup`` whose results are dropped) and prints one JSON line:
``{"tool", "requests", "errors", "duration_s", "rps", "p50_ms", "p99_ms", "ttfb_p50_ms",
"ttfb_p99_ms", "client_cpu"}``.  ``ttfb`` is the time from sending a request to the
first body bytes (for SSE: the first event); ``client_cpu`` is this process's CPU time
over wall time, so a value near 1.0 means the generator itself was the bottleneck.

Raw sockets on ``asyncio.Protocol`` (uvloop when installed), Content-Length and chunked
bodies, one request in flight per connection.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import sys
import time
import urllib.parse
from typing import Final

CHAT_BODY: Final = '{"model":"bench","messages":[{"role":"user","content":"hello"}]}'
STREAM_BODY: Final = (
    '{"model":"bench","messages":[{"role":"user","content":"hello"}],"stream":true}'
)


class Stats:
    """Per-run measurements, recorded only inside the measurement window."""

    def __init__(self, start: float, end: float) -> None:
        self.start = start
        self.end = end
        self.latencies: list[float] = []
        self.ttfbs: list[float] = []
        self.errors = 0

    def record(self, sent: float, first: float | None, done: float, ok: bool) -> None:
        """Record one response that ended inside the window (as wrk counts)."""
        if done < self.start or done > self.end:
            return
        if not ok:
            self.errors += 1
            return
        self.latencies.append(done - sent)
        if first is not None:
            self.ttfbs.append(first - sent)


class ResponseParser:
    """Incremental parser for one HTTP/1.1 response (Content-Length or chunked)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0  # where body parsing continues
        self.head_done = False
        self.status = 0
        self.length = -1  # -1: chunked
        self.close = False
        self.first_body = False  # some body bytes (a whole chunk, for chunked) seen

    def feed(self, data: bytes) -> bool:
        """Add bytes; return True when the response is complete."""
        self.buf += data
        if not self.head_done and not self._parse_head():
            return False
        if self.length >= 0:
            if len(self.buf) > self.pos:
                self.first_body = True
            return len(self.buf) >= self.pos + self.length
        return self._parse_chunks()

    def leftover(self) -> bytes:
        """Bytes past the end of the finished response (none with one request in flight)."""
        end = self.pos + self.length if self.length >= 0 else self.pos
        return bytes(self.buf[end:])

    def _parse_head(self) -> bool:
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return False
        lines = bytes(self.buf[:end]).split(b"\r\n")
        self.status = int(lines[0].split(b" ", 2)[1])
        chunked = False
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                self.length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                self.close = value.strip().lower() == b"close"
        if chunked:
            self.length = -1
        elif self.length < 0:
            self.length = 0  # no body framing we support: treat as empty
        self.head_done = True
        self.pos = end + 4
        return True

    def _parse_chunks(self) -> bool:
        buf = self.buf
        while True:
            eol = buf.find(b"\r\n", self.pos)
            if eol < 0:
                return False
            size = int(bytes(buf[self.pos : eol]).split(b";")[0], 16)
            if size == 0:
                if buf.find(b"\r\n\r\n", eol) < 0:
                    return False
                self.pos = buf.find(b"\r\n\r\n", eol) + 4
                return True
            if len(buf) < eol + 2 + size + 2:
                return False
            self.first_body = True
            self.pos = eol + 2 + size + 2


class LoadProtocol(asyncio.Protocol):
    """One keep-alive connection sending ``request`` back to back until told to stop."""

    def __init__(self, request: bytes, stats: Stats, closed: asyncio.Future[bool]) -> None:
        self.request = request
        self.stats = stats
        self.closed = closed
        self.transport: asyncio.Transport | None = None
        self.parser = ResponseParser()
        self.sent = 0.0
        self.first: float | None = None
        self.stopping = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the first request."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.send()

    def send(self) -> None:
        """Start the next request."""
        assert self.transport is not None
        self.parser = ResponseParser()
        self.first = None
        self.sent = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; on a complete response, record it and send the next."""
        had_body = self.parser.first_body
        done = self.parser.feed(data)
        now = time.perf_counter()
        if not had_body and self.parser.first_body:
            self.first = now
        if not done:
            return
        self.stats.record(self.sent, self.first, now, self.parser.status == 200)
        if self.stopping or self.parser.close or now >= self.stats.end:
            self.stop()
            return
        self.send()

    def stop(self) -> None:
        """Close the connection (a reconnect happens unless the run is over)."""
        self.stopping = True
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """Count an interrupted response as an error unless we closed on purpose."""
        if not self.stopping:
            self.stats.record(self.sent, None, time.perf_counter(), ok=False)
        if not self.closed.done():
            self.closed.set_result(True)


async def connection_loop(host: str, port: int, request: bytes, stats: Stats) -> None:
    """Keep one connection busy until the window ends, reconnecting when it closes."""
    loop = asyncio.get_running_loop()
    while time.perf_counter() < stats.end:
        closed: asyncio.Future[bool] = loop.create_future()
        try:
            transport, proto = await loop.create_connection(
                functools.partial(LoadProtocol, request, stats, closed), host, port
            )
        except OSError:
            stats.errors += 1
            await asyncio.sleep(0.01)
            continue
        remaining = stats.end - time.perf_counter()
        try:
            await asyncio.wait_for(asyncio.shield(closed), timeout=max(remaining, 0) + 0.05)
        except TimeoutError:
            proto.stop()
            transport.abort()
            return


def build_request(url: str, body: str) -> tuple[str, int, bytes]:
    """Return (host, port, request bytes) for a POST of ``body`` to ``url``."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "127.0.0.1"
    port = parts.port or 80
    path = parts.path or "/"
    data = body.encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(data)}\r\n\r\n"
    )
    return host, port, head.encode() + data


def percentile_ms(values: list[float], q: float) -> float | None:
    """Return the ``q`` quantile of ``values`` (seconds) in milliseconds, or None."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


async def run(
    url: str, body: str, connections: int, duration: float, warmup: float
) -> dict[str, str | int | float | None]:
    """Run the load and return the result dict."""
    host, port, request = build_request(url, body)
    now = time.perf_counter()
    stats = Stats(now + warmup, now + warmup + duration)
    cpu_start = time.process_time()
    loops = [connection_loop(host, port, request, stats) for _ in range(connections)]
    await asyncio.gather(*loops)
    cpu = time.process_time() - cpu_start
    return {
        "tool": "loadgen",
        "connections": connections,
        "requests": len(stats.latencies),
        "errors": stats.errors,
        "duration_s": duration,
        "rps": len(stats.latencies) / duration,
        "p50_ms": percentile_ms(stats.latencies, 0.50),
        "p99_ms": percentile_ms(stats.latencies, 0.99),
        "ttfb_p50_ms": percentile_ms(stats.ttfbs, 0.50),
        "ttfb_p99_ms": percentile_ms(stats.ttfbs, 0.99),
        "client_cpu": cpu / (warmup + duration),
    }


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("-c", "--connections", type=int, default=16)
    p.add_argument("-d", "--duration", type=float, default=5.0, help="seconds measured")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds run, not measured")
    p.add_argument("--stream", action="store_true", help='send "stream": true')
    p.add_argument("--body", help="request body (default: the bench chat request)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point: print the result as one JSON line."""
    args = parse_args(argv)
    body = args.body or (STREAM_BODY if args.stream else CHAT_BODY)
    coro = run(args.url, body, args.connections, args.duration, args.warmup)
    try:
        # Optional, not a dependency: unused-ignore covers machines that have it.
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        result = asyncio.run(coro)
    else:
        result = uvloop.run(coro)
    sys.stdout.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
