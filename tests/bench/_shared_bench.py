"""The ``shared`` group: what ``server.shared_state`` (Redis) costs a request.

Three set-ups behind the fast upstream, non-stream, at c=16 and c=256: one router on
its own accounting, one router with shared state, and two routers on one Redis (each
loaded at half the concurrency at once, their rates added). Every router has a
provider ``limits`` window (too large to refuse anything), so each request takes from
a window and corrects it afterwards: locally, or through Redis (one script round trip
and one queued write). A ``redis-server`` runs on the load CPU; without one the group
reports that it was skipped.
"""

from __future__ import annotations

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
LIMITS = "limits = { rpm = 100_000_000, tpm = 100_000_000_000 }"


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


def bench_shared(ctx: Context, run: Run) -> None:
    """Measure the three set-ups; each failure becomes that row's error."""
    procs: list[subprocess.Popen[bytes]] = []
    try:
        upstream, uport = start_upstream(FAST, ctx)
        procs.append(upstream)
        redis, rport = start_redis(ctx)
        procs.append(redis)
        shared = f'shared_state = {{ url = "redis://127.0.0.1:{rport}/0", timeout = "50ms" }}'
        for label, server, routers in (
            ("local", "", 1),
            ("shared state", shared, 1),
            ("two routers, one Redis", shared, 2),
        ):
            started = [
                start_router(FAST, uport, ctx, server=server, provider=LIMITS)[:2]
                for _ in range(routers)
            ]
            procs += [p for p, _ in started]
            for c in CONCURRENCY:
                result = _load([(router_url(port), p.pid) for p, port in started], c, ctx)
                run.shared.append(Measured(label, c, result))
                print(f"shared {label:24} c={c:3}: {result['rps']:7.0f} req/s, "
                      f"p50 {result['p50_ms']:.2f} ms, {_cpu_us(result)} µs CPU a request",
                      flush=True)  # fmt: skip
            for proc, _ in started:
                stop(proc)
    except RuntimeError as exc:
        run.shared.append(Measured("shared state", 0, None, short_error(exc)))
        print(f"shared: {exc}", flush=True)
    finally:
        for proc in procs:
            stop(proc)


def _load(routers: list[tuple[str, int]], concurrency: int, ctx: Context) -> Result:
    """Load every router at once with ``concurrency / len(routers)`` each; rates and
    routers' CPU added, the worst p50 and p99 kept."""
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
    total["router_cpu"] = sum(r["router_cpu"] or 0.0 for r in results)
    total["p50_ms"] = max(r["p50_ms"] for r in results)
    total["p99_ms"] = max(r["p99_ms"] for r in results)
    return total


def _cpu_us(result: Result) -> str:
    """The routers' CPU time per request answered, in µs."""
    cpu, rps = result.get("router_cpu"), result["rps"]
    return f"{cpu / rps * 1e6:.0f}" if cpu and rps else "-"


def shared_section(run: Run) -> str:
    """The shared-state table (the Markdown the report and docs/benchmarks.md show)."""
    if "shared" not in run.groups or not run.shared:
        return ""
    text = "## Shared state (Redis)\n\n" + __doc__.split("\n\n", 1)[1].replace("\n", " ")
    text += "\n\n| set-up | c | req/s | vs local | p50 ms | added p50 ms | p99 ms | router CPU µs/req |\n"
    text += "|---|---:|---:|---:|---:|---:|---:|---:|\n"
    local = {m.concurrency: m.result for m in run.shared if m.label == "local" and m.result}
    for m in run.shared:
        r = m.result
        if r is None:
            text += f"| {m.label} | - | failed: {m.error} | | | | | |\n"
            continue
        base = local.get(m.concurrency)
        share = f"{r['rps'] / base['rps']:.0%}" if base and base["rps"] else "-"
        added = f"{r['p50_ms'] - base['p50_ms']:+.2f}" if base else "-"
        text += (
            f"| {m.label} | {m.concurrency} | {r['rps']:.0f} | {share} | {r['p50_ms']:.2f} "
            f"| {added} | {r['p99_ms']:.2f} | {_cpu_us(r)} |\n"
        )
    return text
