"""The shared-state path's own CPU per request, in one process, against a real Redis.

What a request costs the router when ``server.shared_state`` is set, without HTTP
around it: ``window`` is what a request on a target with provider ``limits`` does (take
from the shared windows: one script round trip; correct the estimate: one queued
write); ``admit`` is what a request of a key with a budget and a window does (the
admission script; its hold given back and its cost charged: queued writes). Callers run
``--concurrency`` at once, as requests do; ``none`` is the callers' own cost without
Redis (their tasks, the wait for the upstream), to subtract. The figure is this process's CPU time
(user + system) per request; Redis runs in its own process and is not counted.

    python tests/bench/shared_cpu.py [--requests N] [--concurrency C ...] [--profile]

``--profile`` prints the functions that cost most (cProfile) for the last set-up run.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from router.traffic._budgets import Budgets
from router.traffic.shared._link import SharedLink
from router.traffic.shared._traffic import SharedTraffic
from router.traffic.shared._windows import SharedWindows
from rules import Budget, RedisURL, SharedState

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

BIG = 100_000_000
#: Seconds between a request's admission and its answer (the upstream's time), so
#: the callers' calls spread over time as a daemon's requests do.
UPSTREAM_S = 0.002


async def _window(link: SharedLink, n: int, concurrency: int) -> None:
    windows = SharedWindows(link)
    spec = [("up", BIG, BIG, 50), ("up:bench-model", None, BIG, 50)]

    async def one(count: int) -> None:
        for _ in range(count):
            taken, _, _ = await windows.take(spec)
            assert taken is not None, "Redis did not answer"
            await trio.sleep(UPSTREAM_S)  # the upstream's answer comes later
            windows.settle(taken, [40, 40])

    await _spread(one, n, concurrency)


async def _admit(link: SharedLink, n: int, concurrency: int) -> None:
    budgets = Budgets()
    traffic = SharedTraffic(link, budgets)
    budget = Budget(1e9, "day")

    async def one(count: int) -> None:
        for _ in range(count):
            admitted = await traffic.admit("bench", (BIG, BIG), 50, budget, 0.01, 60.0, None)
            assert admitted is not None, "Redis did not answer"
            assert admitted.hold is not None
            await trio.sleep(UPSTREAM_S)
            admitted.hold.settle(0.002)

    await _spread(one, n, concurrency)


async def _spread(one: Callable[[int], Awaitable[None]], n: int, concurrency: int) -> None:
    async with trio.open_nursery() as nursery:
        for i in range(concurrency):
            nursery.start_soon(one, n // concurrency + (i < n % concurrency))


async def _none(link: SharedLink, n: int, concurrency: int) -> None:
    """The callers' own cost (their tasks, the wait for the upstream): subtract it."""

    async def one(count: int) -> None:
        for _ in range(count):
            await trio.sleep(UPSTREAM_S)

    await _spread(one, n, concurrency)


SETUPS = {"window": _window, "admit": _admit, "none": _none}


async def measure(
    url: str, setup: str, n: int, concurrency: int, prof: cProfile.Profile | None
) -> float:
    """CPU µs per request of ``setup`` (the link's own start not counted)."""
    link = SharedLink(SharedState(RedisURL.parse(url), timeout=60.0), None)
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        assert link.ok, link.reason
        await SETUPS[setup](link, min(n, 200), concurrency)  # warm: scripts, first calls
        await trio.sleep(0.05)  # the queued writes of the warm-up are sent
        if prof is not None:
            prof.enable()
        start = time.process_time()
        await SETUPS[setup](link, n, concurrency)
        # The writes queued last are part of the cost: they are sent within a moment,
        # and a call's reply comes after every reply to what was sent before it.
        await trio.sleep(0.05)
        assert await link.pipeline([("PING",)]) is not None
        used = time.process_time() - start
        if prof is not None:
            prof.disable()
        nursery.cancel_scope.cancel()
    return used / n * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 16, 64])
    parser.add_argument(
        "--setup", choices=sorted(SETUPS), nargs="+", default=["none", "window", "admit"]
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per point; the median is shown")
    parser.add_argument("--profile", action="store_true")
    args = parser.parse_args()
    server = shutil.which("redis-server")
    if server is None:
        print("redis-server is not installed", file=sys.stderr)
        return 1
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [
            server,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]
        proc = subprocess.Popen([*cmd, "--dir", tmp], stdout=subprocess.DEVNULL)
        try:
            time.sleep(0.3)
            url = f"redis://127.0.0.1:{port}/0"
            prof = cProfile.Profile(time.process_time) if args.profile else None
            for setup in args.setup:
                for c in args.concurrency:
                    runs = sorted(
                        trio.run(measure, url, setup, args.requests, c, None)
                        for _ in range(args.repeat)
                    )
                    print(f"{setup:6} c={c:3}: {runs[len(runs) // 2]:6.1f} µs CPU a request "
                          f"(runs {', '.join(f'{r:.1f}' for r in runs)})", flush=True)  # fmt: skip
            if prof is not None:
                trio.run(measure, url, args.setup[-1], args.requests, args.concurrency[-1], prof)
                pstats.Stats(prof).sort_stats("tottime").print_stats(30)
        finally:
            proc.kill()
            proc.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
