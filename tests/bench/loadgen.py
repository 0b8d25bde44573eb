"""A lean HTTP/1.1 load generator for the benchmark (streams, TLS, overload, bursts, probes).

``python tests/bench/loadgen.py --url http://127.0.0.1:PORT/v1/chat/completions -c 16 -d 5``
keeps ``-c`` keep-alive connections busy with the same POST for ``-d`` seconds (after a
``--warmup`` whose results are dropped) and prints one JSON line (see ``_samples.py``
for the fields and what an attempt, a told client and a cut attempt are). Other shapes:

- ``--stream`` sends ``"stream": true``; ``--mix P`` makes a share ``P`` of the requests
  streams. A 200 stream counts only if it ends with ``data: [DONE]`` (else *incomplete*).
- ``--timeout S``: an answer not whole within ``S`` is a timeout (the connection is
  dropped and a new one opened). ``--retry-after-cap S``: after a 503 the client waits
  its ``Retry-After``, at most ``S`` (0: it asks again at once).
- ``--once``: each of the ``-c`` clients opens one connection, sends one request and
  stops (a burst; ``elapsed_s`` is first start to last end).
- ``--every S``: open loop, one request on a new connection every ``S`` seconds (a
  probe, e.g. ``--method GET`` on ``/healthz``) until ``-d`` or SIGTERM; requests
  under way at SIGTERM get two seconds to finish.
- ``https://`` URLs use TLS, trusting ``--ca``; the host is connected to by address and
  named in SNI as written.
- ``--raw`` prints the raw samples instead (the harness merges several processes' worth).

Raw sockets on ``asyncio.Protocol`` (uvloop when installed), Content-Length and chunked
bodies, one request in flight per connection. ``client_cpu`` is CPU time over wall
time: near 1.0 the generator itself was the bottleneck.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import json
import random
import resource
import signal
import socket
import ssl
import sys
import time
import urllib.parse
from typing import Final

from _samples import TOLD_WITHIN_S, Samples, summarise

CHAT_BODY: Final = '{"model":"bench","messages":[{"role":"user","content":"hello"}]}'
STREAM_BODY: Final = (
    '{"model":"bench","messages":[{"role":"user","content":"hello"}],"stream":true}'
)
DONE: Final = b"data: [DONE]"
PROBE_GRACE_S: Final = 2.0


class ResponseParser:
    """Incremental parser for one HTTP/1.1 response (Content-Length or chunked)."""

    def __init__(self) -> None:
        self.buf = bytearray()
        self.pos = 0  # where body parsing continues
        self.head_done = False
        self.status = 0
        self.length = -1  # -1: chunked
        self.close = False
        self.retry_after = 0.0
        self.first_body = False  # some body bytes (a whole chunk, for chunked) seen
        self.tail = b""  # the body's last bytes, for the [DONE] check

    def feed(self, data: bytes) -> bool:
        """Add bytes; return True when the response is complete."""
        self.buf += data
        if not self.head_done and not self._parse_head():
            return False
        if self.length >= 0:
            if len(self.buf) > self.pos:
                self.first_body = True
            if len(self.buf) < self.pos + self.length:
                return False
            self.tail = bytes(self.buf[max(self.pos, self.pos + self.length - 32) :])
            return True
        return self._parse_chunks()

    def ended_with_done(self) -> bool:
        """Whether the body's last event is ``data: [DONE]``."""
        return self.tail.rstrip(b"\r\n").endswith(DONE)

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
            elif name == b"retry-after":
                with contextlib.suppress(ValueError):
                    self.retry_after = float(value)
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
            self.tail = (self.tail + bytes(buf[eol + 2 : eol + 2 + size]))[-32:]
            self.pos = eol + 2 + size + 2


class Load:
    """One run's settings, window and samples, shared by every client."""

    def __init__(self, args: argparse.Namespace, warmup: float, duration: float) -> None:
        parts = urllib.parse.urlsplit(args.url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.ssl: ssl.SSLContext | None = None
        self.server_hostname: str | None = None
        if parts.scheme == "https":
            self.ssl = ssl.create_default_context(cafile=args.ca)
            self.server_hostname = self.host
        self.addr = socket.gethostbyname(self.host)
        path = parts.path or "/"
        extra = "".join(f"{h}\r\n" for h in args.header)
        plain = args.body or CHAT_BODY
        self.plain = build_request(args.method, self.host, self.port, path, plain, extra)
        self.streamed = build_request(args.method, self.host, self.port, path, STREAM_BODY, extra)
        self.mix = 1.0 if args.stream else args.mix
        self.rng = random.Random(args.seed)
        self.timeout = args.timeout
        self.connect_timeout = args.connect_timeout
        self.retry_cap = args.retry_after_cap
        self.once = args.once or args.every > 0
        now = time.perf_counter()
        self.w_start = now + warmup
        self.end = now + warmup + duration
        self.samples = Samples()
        self.first_start: float | None = None
        self.last_end = now

    def pick(self) -> tuple[bytes, bool]:
        """The next request's bytes, and whether it is a stream."""
        if self.mix >= 1.0 or (self.mix > 0 and self.rng.random() < self.mix):
            return self.streamed, True
        return self.plain, False

    def counts(self, t: float) -> bool:
        """Whether an event at ``t`` is inside the measured window."""
        return self.w_start <= t <= self.end

    def began(self, t: float) -> None:
        """An attempt starts at ``t``."""
        if self.first_start is None:
            self.first_start = t

    def ended(self, t: float) -> None:
        """An attempt ends at ``t``."""
        self.last_end = max(self.last_end, t)

    def failure(self, kind: str, now: float, told: bool) -> None:
        """An attempt failed (``kind`` is a field of :class:`Samples`)."""
        self.ended(now)
        if self.counts(now):
            setattr(self.samples, kind, getattr(self.samples, kind) + 1)
            if not told:
                self.samples.untold += 1

    def cut(self, start: float, now: float, told: bool) -> None:
        """An attempt was still open when the run ended."""
        self.samples.cut += 1
        if not told and now - start >= TOLD_WITHIN_S and start >= self.w_start:
            self.samples.untold += 1


class Client(asyncio.Protocol):
    """One connection sending requests back to back (or one, with ``--once``)."""

    def __init__(self, load: Load, started: float, closed: asyncio.Future[None]) -> None:
        self.load = load
        self.loop = asyncio.get_running_loop()
        self.closed = closed
        self.transport: asyncio.Transport | None = None
        self.parser: ResponseParser | None = None  # set while an attempt is open
        self.start = started  # the open attempt's start (the connect, for the first)
        self.stream = False
        self.told = False
        self.answered = 0
        self.stopping = False
        self.pause = 0.0  # the 503's Retry-After (capped) when the server closed
        self.timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        """Send the first request; its attempt began with the connect."""
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.send(self.start)

    def send(self, start: float | None = None) -> None:
        """Start the next attempt, unless the run (or this client's one request) is over."""
        self.timer = None
        now = time.perf_counter()
        if self.stopping or now >= self.load.end or (self.load.once and self.answered):
            if start is not None and not self.stopping and not self.answered:
                self.load.cut(start, now, told=False)  # connected only as the run ended
            self.stop()
            return
        request, self.stream = self.load.pick()
        self.parser = ResponseParser()
        self.start = now if start is None else start
        self.told = False
        self.load.began(self.start)
        if self.load.timeout > 0:
            left = self.load.timeout - (now - self.start)
            self.timer = self.loop.call_later(max(left, 0.0), self.on_timeout)
        assert self.transport is not None
        self.transport.write(request)

    def data_received(self, data: bytes) -> None:
        """Feed the parser; note when the client is told; finish a whole answer."""
        parser = self.parser
        if parser is None:
            return
        had_body = parser.first_body
        done = parser.feed(data)
        now = time.perf_counter()
        load, s = self.load, self.load.samples
        if not self.told and parser.head_done and (parser.status != 200 or parser.first_body):
            self.told = True
            if load.counts(now):
                s.told.append(now - self.start)
        if parser.status == 200 and not had_body and parser.first_body and load.counts(now):
            s.firsts.append(now - self.start)
        if done:
            self.finish(parser, now)

    def finish(self, parser: ResponseParser, now: float) -> None:
        """Record a whole answer, then send the next request (after a 503's pause)."""
        self.parser = None
        self.answered += 1
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        load = self.load
        pause = 0.0
        if parser.status != 200 and load.counts(now):
            key = str(parser.status)
            load.samples.statuses[key] = load.samples.statuses.get(key, 0) + 1
        if parser.status == 200 and self.stream and not parser.ended_with_done():
            load.failure("incomplete", now, told=True)
        elif parser.status == 200:
            load.ended(now)
            if load.counts(now):
                load.samples.ok.append(now - self.start)
        elif parser.status == 503:
            load.ended(now)
            if load.counts(now):
                load.samples.refused.append(now - self.start)
            pause = min(parser.retry_after, load.retry_cap)
        else:
            load.failure("other_status", now, told=True)
        if parser.close or load.once or now >= load.end:
            self.pause = pause
            self.stop()
        elif pause > 0:
            self.timer = self.loop.call_later(pause, self.send)
        else:
            self.send()

    def on_timeout(self) -> None:
        """No whole answer in time: a timeout; drop the connection."""
        self.timer = None
        if self.parser is not None:
            self.parser = None
            self.load.failure("timeouts", time.perf_counter(), self.told)
        self.stop(abort=True)

    def cut(self) -> None:
        """The run is over: drop the connection, noting an attempt still open."""
        if self.parser is not None:
            self.parser = None
            self.load.cut(self.start, time.perf_counter(), self.told)
        self.stop(abort=True)

    def stop(self, abort: bool = False) -> None:
        """Close the connection on purpose."""
        self.stopping = True
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        """A connection lost under an open attempt is a read error."""
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.parser is not None:
            self.parser = None
            self.load.failure("read_errors", time.perf_counter(), self.told)
        self.stopping = True
        if not self.closed.done():
            self.closed.set_result(None)


def make_client(
    load: Load, started: float, closed: asyncio.Future[None], made: list[Client]
) -> Client:
    """The protocol factory of one connect; ``made`` tells whether it was called."""
    made.append(Client(load, started, closed))
    return made[-1]


async def client_loop(load: Load) -> None:
    """Keep one client busy until the run ends, reconnecting when its connection closes."""
    loop = asyncio.get_running_loop()
    while time.perf_counter() < load.end:
        started = time.perf_counter()
        load.began(started)
        closed: asyncio.Future[None] = loop.create_future()
        ends_first = load.end - started < load.connect_timeout
        made: list[Client] = []
        try:
            _, proto = await asyncio.wait_for(
                loop.create_connection(
                    functools.partial(make_client, load, started, closed, made),
                    load.addr,
                    load.port,
                    ssl=load.ssl,
                    server_hostname=load.server_hostname,
                ),
                timeout=min(load.connect_timeout, load.end - started),
            )
        except (OSError, TimeoutError) as exc:
            if isinstance(exc, TimeoutError) and ends_first:
                if made:  # connected as the run ended: the client did the accounting
                    made[0].cut()
                else:
                    load.cut(started, time.perf_counter(), told=False)  # still connecting
                return
            load.failure("connect_errors", time.perf_counter(), told=False)
            if load.once:
                return
            await asyncio.sleep(0.05)
            continue
        try:
            left = max(load.end - time.perf_counter(), 0.0)
            await asyncio.wait_for(asyncio.shield(closed), timeout=left + 0.001)
        except TimeoutError:
            proto.cut()
            return
        except asyncio.CancelledError:
            proto.cut()
            raise
        if load.once:
            return
        if proto.pause > 0:
            await asyncio.sleep(min(proto.pause, max(load.end - time.perf_counter(), 0.0)))


async def open_loop(load: Load, every: float) -> None:
    """One single-request client every ``every`` seconds until the end or SIGTERM."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stop.set)
    tasks: set[asyncio.Task[None]] = set()
    due = time.perf_counter()
    while not stop.is_set() and time.perf_counter() < load.end:
        tasks.add(asyncio.create_task(client_loop(load)))
        due += every
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=max(due - time.perf_counter(), 0.0))
    if tasks:
        _, pending = await asyncio.wait(tasks, timeout=PROBE_GRACE_S)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)


def build_request(
    method: str, host: str, port: int, path: str, body: str, extra: str = ""
) -> bytes:
    """Return the request bytes (a POST of ``body``, or a GET without one)."""
    head = f"{method} {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{extra}"
    if method == "GET":
        return (head + "\r\n").encode()
    data = body.encode()
    head += f"content-type: application/json\r\ncontent-length: {len(data)}\r\n\r\n"
    return head.encode() + data


async def run(args: argparse.Namespace) -> tuple[Samples, Load]:
    """Run the load; return its samples and settings."""
    wall, cpu = time.perf_counter(), time.process_time()
    load = Load(args, 0.0 if args.once or args.every else args.warmup, args.duration)
    if args.every > 0:
        await open_loop(load, args.every)
    else:
        await asyncio.gather(*(client_loop(load) for _ in range(args.connections)))
    s = load.samples
    s.cpu_s = time.process_time() - cpu
    s.wall_s = time.perf_counter() - wall
    s.elapsed_s = load.last_end - (load.first_start or load.last_end)
    return s, load


def raise_nofile() -> None:
    """Raise the soft descriptor limit to the hard one (thousands of connections)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--url", required=True)
    p.add_argument("-c", "--connections", type=int, default=16)
    p.add_argument("-d", "--duration", type=float, default=5.0, help="seconds measured")
    p.add_argument("--warmup", type=float, default=1.0, help="seconds run, not measured")
    p.add_argument("--stream", action="store_true", help='send "stream": true')
    p.add_argument("--mix", type=float, default=0.0, help="share of stream requests")
    p.add_argument("--body", help="request body (default: the bench chat request)")
    p.add_argument("--method", default="POST", choices=("POST", "GET"))
    p.add_argument(
        "--header", action="append", default=[], help="an extra request header, 'Name: value'"
    )
    p.add_argument("--ca", help="CA file to trust for https URLs")
    p.add_argument("--timeout", type=float, default=0.0, help="answer timeout (0: none)")
    p.add_argument("--connect-timeout", type=float, default=10.0, help="connect + TLS timeout")
    p.add_argument("--retry-after-cap", type=float, default=0.0, help="max wait after a 503")
    p.add_argument("--once", action="store_true", help="one request per client, then stop")
    p.add_argument("--every", type=float, default=0.0, help="open loop: a request every S")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--raw", action="store_true", help="print raw samples, not a summary")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    """Entry point: print the result as one JSON line."""
    args = parse_args(argv)
    raise_nofile()
    try:
        # Optional, not a dependency: unused-ignore covers machines that have it.
        import uvloop  # type: ignore[import-not-found, unused-ignore]
    except ImportError:
        samples, load = asyncio.run(run(args))
    else:
        samples, load = uvloop.run(run(args))
    if args.raw:
        out = samples.to_json()
    else:
        measured = samples.elapsed_s if load.once else args.duration
        out = summarise(samples, args.connections, measured)
    sys.stdout.write(json.dumps(out) + "\n")


if __name__ == "__main__":
    main()
