"""The ``shared`` group: what ``server.shared_state`` (Redis) costs a request.

Three set-ups behind the fast upstream, non-stream, at c=16 and c=256: one router on
its own accounting, one router with shared state, and two routers on one Redis (each
loaded at half the concurrency at once, their rates added). Every router has a
provider ``limits`` window (too large to refuse anything), so each request takes from
a window and corrects it afterwards: locally, or through Redis (one script round trip
and one queued write). A ``redis-server`` runs on the load CPU; without one the group
reports that it was skipped.

The set-ups are interleaved: every router is started once and warmed, then each round
loads every set-up at each concurrency in turn (the order reversed every other round,
so a drift of the machine's load falls on all of them alike), for three rounds. The
table gives each set-up's median over the rounds, and the router's CPU time per
request (user + system from ``/proc``, per request answered): on a quiet machine the
router is the bottleneck, so its CPU per request decides the throughput, and it moves
less with the machine's other load than a rate does.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from typing import TYPE_CHECKING

from _model import FAST, Measured
from _procs import free_port, spawn, stop
from _servers import router_url, short_error, start_router, start_upstream

if TYPE_CHECKING:
    from _load import Result
    from _model import Run
    from _servers import Context

CONCURRENCY = (16, 256)
ROUNDS = 3
LIMITS = "limits = { rpm = 100_000_000, tpm = 100_000_000_000 }"
SETUPS = ("local", "shared state", "two routers, one Redis")


def start_redis(ctx: Context) -> tuple[subprocess.Popen[bytes], int]:
    """A throwaway redis-server on a free port, on the load CPU."""
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("redis-server is not installed")
    port = free_port()
    cmd = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    cmd += ["--appendonly", "no", "--dir", str(ctx.tmp)]
    proc = spawn(cmd, ctx.load_cpus, stdout=subprocess.DEVNULL)
    time.sleep(0.5)  # it listens within milliseconds; the routers retry anyway
    return proc, port


def bench_shared(ctx: Context, run: Run, rounds: int = ROUNDS) -> None:
    """Measure the three set-ups, interleaved; a failure becomes an error row."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upstream, uport = start_upstream(FAST, ctx)
        procs.append(upstream)
        redis, rport = start_redis(ctx)
        procs.append(redis)
        shared = f'shared_state = {{ url = "redis://127.0.0.1:{rport}/0", timeout = "50ms" }}'
        routers: dict[str, list[tuple[str, int]]] = {}
        for label, server, count in zip(SETUPS, ("", shared, shared), (1, 1, 2), strict=True):
            started = [
                start_router(FAST, uport, ctx, server=server, provider=LIMITS)[:2]
                for _ in range(count)
            ]
            procs += [p for p, _ in started]
            routers[label] = [(router_url(port), p.pid) for p, port in started]
        for n in range(rounds):
            order = SETUPS if n % 2 == 0 else SETUPS[::-1]
            for c in CONCURRENCY:
                for label in order:
                    result = _load(routers[label], c, ctx)
                    result["load1"] = os.getloadavg()[0]
                    run.shared.append(Measured(label, c, result, extra={"round": n}))
                    print(f"shared round {n + 1} {label:24} c={c:3}: {result['rps']:7.0f} req/s, "
                          f"p50 {result['p50_ms']:.2f} ms, {cpu_us(result):.0f} µs CPU a request",
                          flush=True)  # fmt: skip
    except RuntimeError as exc:
        run.shared.append(Measured("shared state", 0, None, short_error(exc)))
        print(f"shared: {exc}", flush=True)
    finally:
        for proc in procs:
            stop(proc)


def _load(routers: list[tuple[str, int]], concurrency: int, ctx: Context) -> Result:
    """Load every router at once with ``concurrency / len(routers)`` each; rates,
    requests and routers' CPU added, the worst p50 and p99 kept."""
    from _scenarios import measure  # here: _scenarios imports the report, which imports us

    if len(routers) == 1:
        return measure(routers[0][0], False, concurrency, ctx, routers[0][1])
    results: list[Result] = []

    def one(url: str, pid: int) -> None:
        results.append(measure(url, False, concurrency // len(routers), ctx, pid))

    threads = [threading.Thread(target=one, args=router) for router in routers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if len(results) != len(routers):
        raise RuntimeError("a load run of the two routers failed")
    total = dict(results[0])
    total["rps"] = sum(r["rps"] for r in results)
    total["requests"] = sum(r["requests"] for r in results)
    total["router_cpu"] = sum(r["router_cpu"] or 0.0 for r in results)
    total["p50_ms"] = max(r["p50_ms"] for r in results)
    total["p99_ms"] = max(r["p99_ms"] for r in results)
    return total


def cpu_us(result: Result) -> float:
    """The routers' CPU time per request answered, in µs (0: not measured)."""
    cpu, rps = result.get("router_cpu"), result["rps"]
    return cpu / rps * 1e6 if cpu and rps else 0.0
