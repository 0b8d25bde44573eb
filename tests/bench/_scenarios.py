"""The measurements: the scenario tables (plain, TLS, HTTP/2), held streams, overload.

Each group starts its own upstream and router (``_servers.servers``) and stops them by
PID when done. A router that fails to start or dies under load is written into the
report as that row's failure; a broken harness (a load tool crashing) still raises.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from _fmt import fmt_mb
from _load import CpuWatch, LoadSpec, run_loadgen, run_wrk
from _model import FAST, SLOW, Measured, Point, Scenario, Upstream
from _procs import free_port, hwm_mb, rss_mb, spawn, stop, wait_healthy
from _report import summary_line
from _sections import HELD_SETTLE_S
from _servers import HERE, ROUTER_START_LIMIT_S, router_url, servers, short_error

if TYPE_CHECKING:
    from _load import Result
    from _model import Run
    from _servers import Context, Servers

FULL_CONCURRENCY = (1, 16, 64, 256)
HELD_CONCURRENCY = (256, 1000, 2000, 5000)
HELD_SERVER = "backlog = 4096"
#: A 503 tells the client to come back after Retry-After (1 s); held clients do.
HELD_RETRY_CAP_S = 1.0
OVERLOAD_CONCURRENCY = 1024
OVERLOAD_IN_FLIGHT = 256
OVERLOAD_TIMEOUT_S = 2.0


def base_scenarios(quick: bool) -> list[Scenario]:
    """The plain-HTTP matrix; ``quick`` keeps only the points the targets need."""
    if not quick:
        return [
            Scenario(up, stream, FULL_CONCURRENCY)
            for up in (FAST, SLOW)
            for stream in (False, True)
        ]
    return [
        Scenario(FAST, False, (1, 16, 256)),
        Scenario(FAST, True, (64,)),
        Scenario(SLOW, False, (16, 256)),
        Scenario(SLOW, True, (64,)),
    ]


def proto_scenarios(up: Upstream, quick: bool) -> list[Scenario]:
    """The TLS or HTTP/2 rows: non-stream c=16 and c=256, streams c=64 (quick: no streams)."""
    rows = [Scenario(up, False, (16, 256))]
    return rows if quick else [*rows, Scenario(up, True, (64,))]


def measure(url: str, stream: bool, concurrency: int, ctx: Context, watch: int | None) -> Result:
    """One load run against ``url``: wrk for non-stream when present, else loadgen."""
    if ctx.wrk and not stream:
        return run_wrk(
            ctx.wrk, ctx.lua, url, concurrency, ctx.duration, ctx.warmup, ctx.load_cpus, watch
        )
    ca = ctx.certs.ca if ctx.certs and url.startswith("https") else None
    spec = LoadSpec(url, concurrency, ctx.duration, ctx.warmup, stream=stream, ca=ca)
    return run_loadgen(spec, ctx.load_cpus, watch)


def bench_upstream(up: Upstream, todo: list[Scenario], ctx: Context, run: Run) -> None:
    """Start ``up`` (and a router on it), measure its scenarios, stop both.

    The HTTP/2 upstream is measured through the router only (the load tools speak
    HTTP/1.1). A router that fails is reported on each of its rows.
    """
    points = [(sc, c) for sc in todo for c in sc.concurrencies]
    try:
        with servers(up, ctx) as s:
            if s.start:
                run.starts.append(s.start)
            for n, (sc, c) in enumerate(points):
                try:
                    run.points.append(measure_point(up, sc, c, s, ctx))
                except RouterDied as exc:
                    for sc2, c2 in points[n:]:
                        run.points.append(Point(sc2, c2, None, None, str(exc)))
                    break
                print(summary_line(run.points[-1]), flush=True)
            if s.router and s.start:
                s.start.hwm_mb = hwm_mb(s.router.pid)
    except RuntimeError as exc:
        if up.name in ("fast", "slow"):
            raise  # the plain rows are the harness's own check: a failure there is fatal
        print(f"{up.name}: {exc}", flush=True)
        done = {(p.scenario, p.concurrency) for p in run.points}
        for sc, c in points:
            if (sc, c) not in done:
                run.points.append(Point(sc, c, None, None, short_error(exc)))


class RouterDied(RuntimeError):
    """The router exited under load."""


def measure_point(up: Upstream, sc: Scenario, c: int, s: Servers, ctx: Context) -> Point:
    """Direct and routed load at concurrency ``c``."""
    direct = None
    if up.proto != "h2":
        direct = measure(ctx.direct_url(up, s.upstream_port), sc.stream, c, ctx, None)
    routed = None
    if s.router:
        upstream_cpu = CpuWatch(s.upstream_pid)
        routed = measure(router_url(s.router_port), sc.stream, c, ctx, s.router.pid)
        routed["upstream_cpu"] = upstream_cpu.share()
        if s.router.poll() is not None:
            raise RouterDied(f"router exited with {s.router.returncode} under load")
    return Point(sc, c, direct, routed)


def bench_ceiling(ctx: Context, run: Run) -> None:
    """Measure the fixed-answer hypercorn app on the router's core at c=16 and c=256."""
    port = free_port()
    cmd = [ctx.python, str(HERE / "ceiling.py"), "--port", str(port)]
    proc = spawn(cmd, ctx.router_cpus, cwd=HERE.parents[1])
    try:
        wait_healthy(proc, port, time.perf_counter(), ROUTER_START_LIMIT_S)
        for c in (16, 256):
            result = measure(router_url(port), False, c, ctx, None)
            run.ceiling[c] = result["rps"]
            print(f"ceiling (fixed-answer hypercorn app) c={c}: {result['rps']:.0f} req/s")
    finally:
        stop(proc)


def bench_held(ctx: Context, run: Run, concurrencies: tuple[int, ...], procs: int) -> None:
    """Slow streams held by ``c`` clients at once, each point on a fresh router.

    No warm-up: the connection burst at the start is part of what is measured. The
    router's RSS ``HELD_SETTLE_S`` after the clients have gone is kept beside its idle
    RSS at start (after the probes): how much of the burst's memory it gives back.
    """
    for c in concurrencies:
        label = f"c={c}"
        try:
            with servers(SLOW, ctx, server=HELD_SERVER) as s:
                assert s.router is not None
                spec = LoadSpec(
                    router_url(s.router_port),
                    c,
                    run.held_duration_s,
                    stream=True,
                    retry_after_cap=HELD_RETRY_CAP_S,
                    procs=procs,
                )
                result = run_loadgen(spec, ctx.load_cpus, s.router.pid)
                time.sleep(HELD_SETTLE_S)
                alive = s.router.poll() is None
                rss = {
                    "idle_rss_mb": s.start.idle_rss_mb if s.start else None,
                    "after_rss_mb": rss_mb(s.router.pid) if alive else None,
                }
            error = None if alive else "router exited"
            run.held.append(Measured(label, c, result, error, rss))
        except RuntimeError as exc:
            run.held.append(Measured(label, c, None, short_error(exc)))
        print(held_line(run.held[-1]), flush=True)


def held_line(m: Measured) -> str:
    """One stdout line for a held-stream point."""
    r = m.result
    if r is None:
        return f"held   {m.label}: {m.error}"
    conn = r["connect_errors"] + r["read_errors"] + r["timeouts"]
    told = r["told_100ms"]
    idle, after = m.extra.get("idle_rss_mb"), m.extra.get("after_rss_mb")
    return (
        f"held   {m.label:7} {r['rps']:7.0f} streams/s, conn errors {conn}, incomplete "
        f"{r['incomplete']}, 503 {r['status_503']}, told<100ms "
        f"{'-' if told is None else f'{told:.1%}'}, client cpu {r['client_cpu'] or 0:.0%}, "
        f"RSS idle {fmt_mb(idle)} -> {fmt_mb(after)} MB after"
    )


def saturation(run: Run) -> int | None:
    """The smallest measured concurrency whose fast non-stream rate is within 5 % of the
    best: where req/s stops growing."""
    rows = [
        (p.concurrency, p.router["rps"])
        for p in run.points
        if p.router and p.scenario.upstream == FAST and not p.scenario.stream
    ]
    if not rows:
        return None
    best = max(rps for _, rps in rows)
    return min(c for c, rps in rows if rps >= 0.95 * best)


def bench_overload(ctx: Context, run: Run) -> None:
    """Non-stream load far past saturation with ``max_in_flight`` set and a short timeout.

    Clients ask again at once after a 503 (the worst case: they ignore Retry-After).
    """
    c = OVERLOAD_CONCURRENCY
    label = f"c={c}, max_in_flight={OVERLOAD_IN_FLIGHT}"
    extra: Result = {"saturation_c": saturation(run), "max_in_flight": OVERLOAD_IN_FLIGHT}
    try:
        with servers(FAST, ctx, server=f"max_in_flight = {OVERLOAD_IN_FLIGHT}") as s:
            assert s.router is not None
            spec = LoadSpec(
                router_url(s.router_port),
                c,
                ctx.duration,
                ctx.warmup,
                timeout=OVERLOAD_TIMEOUT_S,
            )
            result = run_loadgen(spec, ctx.load_cpus, s.router.pid)
        run.overload.append(Measured(label, c, result, extra=extra))
    except RuntimeError as exc:
        run.overload.append(Measured(label, c, None, short_error(exc), extra))
    m = run.overload[-1]
    if m.result is None:
        print(f"overload {label}: {m.error}", flush=True)
    else:
        r = m.result
        share = r["status_503"] / r["attempts"] if r["attempts"] else 0.0
        print(
            f"overload {label}: {r['rps']:.0f} req/s, 503 {share:.0%}, "
            f"timeouts {r['timeouts']}, conn errors {r['connect_errors'] + r['read_errors']}",
            flush=True,
        )
