"""Soak: the daemon under minutes of mixed traffic keeps its memory flat and its descriptors.

``python tests/soak/run.py [--duration 180] [--clients 32] [--seed 1]`` (``nox -s soak``)

It starts ``python -m router serve`` on ``127.0.0.1:0`` with a config on the built-in
``simulated`` provider (fast, no errors), and keeps ``--clients`` concurrent clients busy
for ``--duration`` seconds with a random mix: plain and streamed chat requests on
keep-alive connections, ``Connection: close`` and HTTP/1.0 requests (the daemon must
close those connections), bad JSON, clients that hang up mid-body, right after their
request, or mid-stream, slow readers of streams, and requests cut inside their head.
Every second it samples the daemon's resident memory (``VmRSS`` in ``/proc/PID/status``)
and its open descriptors (the entries of ``/proc/PID/fd``).

It passes when:

- memory is flat after warm-up: the median RSS of the last quarter of the run is at
  most ``max(--rss-mb, --rss-pct % of it)`` above the median of the second quarter
  (the first quarter is warm-up: caches, pools, the allocator's arenas fill);
- descriptors come back: once the clients have closed their connections and the daemon
  is idle, its descriptors return to the baseline taken after a warm-up (within
  ``--settle`` seconds);
- every request that was meant to be answered got a whole, correct answer (200 with
  the answer's text, a ``[DONE]``-ended stream, a 400 for bad JSON), every connection
  that asked for it was closed by the daemon, and the daemon still answers ``/healthz``.

It prints a small report and exits 0 on a pass, 1 on a failed check, 2 when the daemon
could not be started or died. The daemon is stopped by its PID in a ``finally``.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import h11
import trio

ROOT = Path(__file__).resolve().parents[2]
CONFIG = """\
[server]
listen = ["127.0.0.1:0"]
access_log = false

[providers.sim]
kind = "simulated"
latency = { median = "3ms", p99 = "20ms" }
tokens_per_second = 400
seed = 1

[routes.chat]
fallback = ["sim:echo"]

[routes.story]
fallback = ["sim:storyteller"]
"""
CHAT = b'{"model": "chat", "messages": [{"role": "user", "content": "soak test"}]}'
STORY = b'{"model": "story", "stream": true, "messages": [{"role": "user", "content": "go"}]}'
#: Each kind of client and how often it comes, out of the sum.
MIX = {
    "chat": 30,
    "stream": 24,
    "close": 8,
    "http10": 4,
    "bad_json": 4,
    "cut_in_body": 5,
    "cut_after_request": 6,
    "cut_mid_stream": 10,
    "slow_reader": 5,
    "cut_in_head": 4,
}
OP_LIMIT = 30.0  # seconds any one client action may take before it counts as a hang


class Failed(Exception):
    """A request that should have been answered was not answered right."""


class Client:
    """One HTTP/1.1 client connection, spoken with h11."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.h11 = h11.Connection(h11.CLIENT)

    @classmethod
    async def open(cls, port: int) -> Client:
        return cls(await trio.open_tcp_stream("127.0.0.1", port))

    async def send(self, *events: h11.Event) -> None:
        await self.stream.send_all(b"".join(self.h11.send(e) or b"" for e in events))

    async def next_event(self, chunk: int = 65536, pause: float = 0.0) -> h11.Event:
        while True:
            event = self.h11.next_event()
            if event is not h11.NEED_DATA:
                assert not isinstance(event, type)
                return event
            if pause:
                await trio.sleep(pause)
            self.h11.receive_data(await self.stream.receive_some(chunk))

    async def response(self, chunk: int = 65536, pause: float = 0.0) -> tuple[int, bytes]:
        """The status and whole body of the next answer."""
        event = await self.next_event()
        if not isinstance(event, h11.Response):
            raise Failed(f"expected a response, got {event!r}")
        body = b""
        while not isinstance(e := await self.next_event(chunk, pause), h11.EndOfMessage):
            if not isinstance(e, h11.Data):
                raise Failed(f"unexpected event {e!r}")
            body += e.data
        return event.status_code, body

    def reusable(self) -> bool:
        """Whether another request may go on this connection (and it is readied)."""
        if self.h11.our_state is h11.DONE and self.h11.their_state is h11.DONE:
            self.h11.start_next_cycle()
            return True
        return False

    async def closed_by_server(self) -> bool:
        """Whether the daemon closes the connection (EOF) within 5 s."""
        with trio.move_on_after(5):
            try:
                return await self.stream.receive_some(1) == b""
            except trio.BrokenResourceError:
                return True
        return False

    async def aclose(self) -> None:
        await self.stream.aclose()


def post(body: bytes, *, close: bool = False, version: str = "1.1") -> h11.Request:
    headers = [("host", "localhost"), ("content-type", "application/json")]
    headers.append(("content-length", str(len(body))))
    if close:
        headers.append(("connection", "close"))
    return h11.Request(
        method="POST", target="/v1/chat/completions", headers=headers, http_version=version
    )


def check_chat(status: int, body: bytes) -> None:
    if status != 200 or b"soak test" not in body:
        raise Failed(f"chat: {status} {body[:200]!r}")


def check_stream(status: int, body: bytes) -> None:
    if status != 200 or not body.endswith(b"data: [DONE]\n\n") or b"simulated" not in body:
        raise Failed(f"stream: {status} {body[-200:]!r}")


class Soak:
    def __init__(self, port: int, rng: random.Random) -> None:
        self.port = port
        self.rng = rng
        self.done: Counter[str] = Counter()
        self.failures: Counter[str] = Counter()
        self.examples: list[str] = []

    async def client(self, stop_at: float) -> None:
        """One client: actions one after another until ``stop_at``; a keep-alive
        connection for the plain ones."""
        kept: Client | None = None
        kinds, weights = list(MIX), list(MIX.values())
        while trio.current_time() < stop_at:
            kind = self.rng.choices(kinds, weights)[0]
            try:
                with trio.fail_after(OP_LIMIT):
                    if kind in ("chat", "stream", "bad_json"):
                        kept = await self.on_kept(kept, kind)
                    else:
                        await getattr(self, kind)()
                self.done[kind] += 1
            except (Failed, trio.TooSlowError, OSError, trio.BrokenResourceError,
                    h11.ProtocolError) as exc:  # fmt: skip
                self.failures[kind] += 1
                if len(self.examples) < 10:
                    self.examples.append(f"{kind}: {exc!r}")
                if kept is not None:
                    await kept.aclose()
                    kept = None
        if kept is not None:
            await kept.aclose()

    async def on_kept(self, kept: Client | None, kind: str) -> Client | None:
        client = kept or await Client.open(self.port)
        body = {"chat": CHAT, "stream": STORY, "bad_json": b'{"model": '}[kind]
        await client.send(post(body), h11.Data(data=body), h11.EndOfMessage())
        status, answer = await client.response()
        if kind == "chat":
            check_chat(status, answer)
        elif kind == "stream":
            check_stream(status, answer)
        elif status != 400:
            raise Failed(f"bad JSON: {status}")
        if client.reusable():
            return client
        await client.aclose()
        return None

    async def close(self) -> None:
        client = await Client.open(self.port)
        try:
            body = self.rng.choice([CHAT, STORY])
            await client.send(post(body, close=True), h11.Data(data=body), h11.EndOfMessage())
            status, answer = await client.response()
            (check_chat if body is CHAT else check_stream)(status, answer)
            if not await client.closed_by_server():
                raise Failed("Connection: close, and the connection stayed open")
        finally:
            await client.aclose()

    async def http10(self) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        try:
            await stream.send_all(
                b"POST /v1/chat/completions HTTP/1.0\r\nHost: localhost\r\n"
                b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                % (len(CHAT), CHAT)
            )
            raw = b""
            with trio.move_on_after(10):
                while data := await stream.receive_some(65536):
                    raw += data
            if not raw.startswith((b"HTTP/1.0 200", b"HTTP/1.1 200")) or b"soak test" not in raw:
                raise Failed(f"HTTP/1.0: {raw[:200]!r}")
            if data:
                raise Failed("HTTP/1.0, and the connection stayed open")
        finally:
            await stream.aclose()

    async def cut_in_body(self) -> None:
        client = await Client.open(self.port)
        body = self.rng.choice([CHAT, STORY])
        await client.send(post(body), h11.Data(data=body[: self.rng.randrange(len(body))]))
        await trio.sleep(self.rng.random() * 0.05)
        await client.aclose()

    async def cut_after_request(self) -> None:
        client = await Client.open(self.port)
        body = self.rng.choice([CHAT, STORY])
        await client.send(post(body), h11.Data(data=body), h11.EndOfMessage())
        await trio.sleep(self.rng.random() * 0.02)
        await client.aclose()

    async def cut_mid_stream(self) -> None:
        client = await Client.open(self.port)
        try:
            await client.send(post(STORY), h11.Data(data=STORY), h11.EndOfMessage())
            event = await client.next_event()
            if not isinstance(event, h11.Response) or event.status_code != 200:
                raise Failed(f"stream: {event!r}")
            for _ in range(self.rng.randrange(1, 12)):
                if isinstance(await client.next_event(chunk=256), h11.EndOfMessage):
                    break
        finally:
            await client.aclose()

    async def slow_reader(self) -> None:
        client = await Client.open(self.port)
        try:
            await client.send(post(STORY), h11.Data(data=STORY), h11.EndOfMessage())
            check_stream(*await client.response(chunk=128, pause=0.01))
        finally:
            await client.aclose()

    async def cut_in_head(self) -> None:
        stream = await trio.open_tcp_stream("127.0.0.1", self.port)
        head = b"POST /v1/chat/completions HTTP/1.1\r\nHost: localhost\r\nContent-Le"
        await stream.send_all(head[: self.rng.randrange(1, len(head))])
        await trio.sleep(self.rng.random() * 0.05)
        await stream.aclose()


# -- the daemon and what it holds -----------------------------------------------------


def start_daemon(tmp: Path) -> tuple[subprocess.Popen[bytes], int, Path]:
    config = tmp / "router.toml"
    config.write_text(CONFIG)
    log = tmp / "router.log"
    cmd = [sys.executable, "-m", "router", "serve", "--config", str(config)]
    with log.open("wb") as out:
        proc = subprocess.Popen([*cmd, "--listen", "127.0.0.1:0"], cwd=ROOT, stdout=out, stderr=out)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if found := re.search(rb"serving on http://127\.0\.0\.1:(\d+)", log.read_bytes()):
            return proc, int(found[1]), log
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    stop(proc)
    raise RuntimeError(f"the daemon did not start:\n{log.read_text(errors='replace')[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


#: RSS growth allowed between the second and the last quarter: this many MB, or this
#: percentage of the second quarter's median, whichever is larger.
RSS_MB = 4.0
RSS_PCT = 5.0


def rss_quarters(samples: list[tuple[float, float, int]], load_s: float) -> tuple[float, float]:
    """Median RSS of the second and of the last quarter of a run of ``load_s`` seconds.

    ``samples`` are (seconds into the load, RSS MB, descriptors); the first quarter is
    warm-up (caches, pools and the allocator's arenas fill), so it is left out.
    """

    def median(lo: float, hi: float) -> float:
        return statistics.median(r for t, r, _ in samples if lo * load_s <= t < hi * load_s)

    return median(0.25, 0.5), median(0.75, 1.01)


def allowed_growth(q2: float, mb: float = RSS_MB, pct: float = RSS_PCT) -> float:
    """The RSS growth (MB) past the second quarter's median still counted as flat."""
    return max(mb, q2 * pct / 100)


async def healthy(port: int) -> bool:
    client = await Client.open(port)
    try:
        request = h11.Request(method="GET", target="/healthz", headers=[("host", "localhost")])
        await client.send(request, h11.EndOfMessage())
        status, _ = await client.response()
        return status == 200
    finally:
        await client.aclose()


async def settle(pid: int, baseline: int, limit: float) -> tuple[int, float]:
    """Wait for the descriptors to come back to ``baseline``: (count, seconds waited)."""
    start = trio.current_time()
    with trio.move_on_after(limit):
        while fds(pid) > baseline:  # noqa: ASYNC110 (polling another process: no event to wait on)
            await trio.sleep(0.2)
    return fds(pid), trio.current_time() - start


# -- the run --------------------------------------------------------------------------


async def soak(args: argparse.Namespace, proc: subprocess.Popen[bytes], port: int) -> bool:
    pid = proc.pid
    rng = random.Random(args.seed)
    # Baseline: after a few requests of each plain kind, every connection closed, idle.
    warm = Soak(port, rng)
    for _ in range(5):
        await warm.close()
    await trio.sleep(1)
    baseline_fds, start_rss = fds(pid), rss_mb(pid)

    runner = Soak(port, rng)
    samples: list[tuple[float, float, int]] = []  # (seconds into the load, RSS MB, fds)
    start = trio.current_time()
    stop_at = start + args.duration

    async def sample() -> None:
        while trio.current_time() < stop_at:
            samples.append((trio.current_time() - start, rss_mb(pid), fds(pid)))
            await trio.sleep(args.interval)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(sample)
        for _ in range(args.clients):
            nursery.start_soon(runner.client, stop_at)
    load_s = trio.current_time() - start
    after_fds, waited = await settle(pid, baseline_fds, args.settle)
    alive = proc.poll() is None and await healthy(port)
    idle_rss = rss_mb(pid)

    q2, q4 = rss_quarters(samples, load_s)
    growth = q4 - q2
    allowed = allowed_growth(q2, args.rss_mb, args.rss_pct)
    total = sum(runner.done.values()) + sum(runner.failures.values())
    between = total / 2  # requests between the middles of the second and last quarters
    checks = {
        "RSS flat after warm-up": growth <= allowed,
        "descriptors back to baseline": after_fds <= baseline_fds,
        "every answer whole and right": not runner.failures,
        "daemon alive and healthy": alive,
    }
    print(f"soak: {load_s:.0f} s, {args.clients} clients, {total} client actions"
          f" ({total / load_s:.0f}/s)")  # fmt: skip
    print("  mix: " + ", ".join(f"{k} {runner.done[k]}" for k in MIX))
    print(f"  RSS MB: start {start_rss:.1f}, max {max(r for _, r, _ in samples):.1f},"
          f" median Q2 {q2:.1f}, Q4 {q4:.1f} (growth {growth:+.2f}, allowed {allowed:.1f};"
          f" {growth * 1024 * 1000 / between:+.0f} KiB per 1000 actions), idle after {idle_rss:.1f}")  # fmt: skip
    print(f"  descriptors: baseline {baseline_fds}, max under load"
          f" {max(f for _, _, f in samples)}, after {after_fds} ({waited:.1f} s to settle)")  # fmt: skip
    if runner.failures:
        print("  failures: " + ", ".join(f"{k} {n}" for k, n in runner.failures.items()))
        for example in runner.examples:
            print(f"    {example}")
    for name, ok in checks.items():
        print(f"  {'pass' if ok else 'FAIL'}: {name}")
    return all(checks.values())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=180.0, help="seconds of load")
    parser.add_argument("--clients", type=int, default=32, help="concurrent clients")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--rss-mb", type=float, default=RSS_MB, help="RSS growth allowed, MB")
    parser.add_argument("--rss-pct", type=float, default=RSS_PCT, help="or this %% of the RSS")
    parser.add_argument("--settle", type=float, default=20.0, help="seconds to idle fds")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="llm-router-soak-") as tmp:
        try:
            proc, port, log = start_daemon(Path(tmp))
        except RuntimeError as exc:
            print(exc, file=sys.stderr)
            return 2
        try:
            passed = trio.run(soak, args, proc, port)
        finally:
            stop(proc)
        if proc.returncode not in (0, -signal.SIGTERM):
            print(f"the daemon exited with {proc.returncode}:", file=sys.stderr)
            print(log.read_text(errors="replace")[-2000:], file=sys.stderr)
            return 2
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
