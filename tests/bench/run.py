"""Benchmark llm-router against a fast fake upstream; write docs/benchmarks.md.

``python tests/bench/run.py [--quick] [--direct-only] [--out docs/benchmarks.md]``

For each fake upstream (fast: 0 ms; slow: 50 ms, streams +5 ms between events) it starts
the upstream (pinned with the load generator to the second CPU) and a router configured
to use it (pinned to the first CPU), then loads both directly and through the router,
non-stream and streaming, at several concurrencies.  It prints a summary, writes the
Markdown report (keeping the hand-written ``## Notes`` section) and exits 0 even when
targets fail; it exits 1 only when something broke (the router did not start, a load
tool crashed, ...).  Every process it starts is stopped by PID in a ``finally``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from _load import find_wrk, run_loadgen, run_wrk, write_lua
from _model import Point, Result, RouterStart, Run, Scenario, Upstream
from _procs import (
    cpu_plan,
    free_port,
    hwm_mb,
    post,
    read_port_line,
    rss_mb,
    spawn,
    stop,
    wait_healthy,
)
from _report import extract_notes, render, summary, summary_line
from loadgen import CHAT_BODY, STREAM_BODY

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
UPSTREAM_PY = HERE / "upstream.py"
FAST = Upstream("fast", 0.0, 0.0)
SLOW = Upstream("slow", 50.0, 5.0)
FULL_CONCURRENCY = (1, 16, 64, 256)
ROUTER_START_LIMIT_S = 30.0
CONFIG = """\
[server]
listen = ["127.0.0.1:0"]

[providers.up]
kind = "openai"
base_url = "http://127.0.0.1:{port}/v1"
api_key = "env:BENCH_KEY"

[routes.bench]
fallback = ["up:bench-model"]
"""


@dataclass(frozen=True)
class Context:
    """What every measurement needs."""

    tmp: Path
    python: str
    router_cpus: set[int] | None
    load_cpus: set[int] | None
    wrk: str | None
    lua: Path
    duration: float
    warmup: float
    direct_only: bool


def scenarios(quick: bool) -> list[Scenario]:
    """The scenario matrix; ``quick`` keeps only the points the targets need."""
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


def start_upstream(up: Upstream, ctx: Context) -> tuple[subprocess.Popen[bytes], int]:
    """Spawn the fake upstream on the load CPU; return it and its port."""
    cmd = [sys.executable, str(UPSTREAM_PY), "--port", "0", "--delay-ms", str(up.delay_ms)]
    cmd += ["--chunk-delay-ms", str(up.chunk_delay_ms)]
    proc = spawn(cmd, ctx.load_cpus)
    try:
        return proc, read_port_line(proc)
    except BaseException:
        stop(proc)
        raise


def start_router(
    up: Upstream, upstream_port: int, ctx: Context
) -> tuple[subprocess.Popen[bytes], int, RouterStart]:
    """Spawn the router on the router CPU; return it, its port and its start measurement."""
    config = ctx.tmp / f"router-{up.name}.toml"
    config.write_text(CONFIG.format(port=upstream_port))
    port = free_port()
    cmd = [ctx.python, "-m", "router", "serve", "--config", str(config)]
    cmd += ["--listen", f"127.0.0.1:{port}"]
    env = {**os.environ, "BENCH_KEY": "sk-bench"}
    log = (ctx.tmp / f"router-{up.name}.log").open("wb")
    started = time.perf_counter()
    proc = spawn(cmd, ctx.router_cpus, env=env, cwd=ROOT, stdout=log, stderr=log)
    log.close()
    try:
        start_s = wait_healthy(proc, port, started, ROUTER_START_LIMIT_S)
        probe_router(port)
    except BaseException as exc:
        stop(proc)
        tail = (ctx.tmp / f"router-{up.name}.log").read_text(errors="replace")[-3000:]
        raise RuntimeError(f"{exc}\n--- router log (tail) ---\n{tail}") from exc
    return proc, port, RouterStart(up.name, start_s, rss_mb(proc.pid))


def probe_router(port: int) -> None:
    """Check the router answers one plain and one streaming request correctly."""
    status, body = post(port, CHAT_BODY)
    if status != 200 or b"Hello from the bench upstream." not in body:
        raise RuntimeError(f"router non-stream probe: {status} {body[:500]!r}")
    status, body = post(port, STREAM_BODY)
    if status != 200 or b"[DONE]" not in body or body.count(b"data:") < 20:
        raise RuntimeError(f"router stream probe: {status} {body[:500]!r}")


def measure(port: int, stream: bool, concurrency: int, ctx: Context, watch: int | None) -> Result:
    """One load run against ``port``: wrk for non-stream when present, else loadgen."""
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    if ctx.wrk and not stream:
        return run_wrk(
            ctx.wrk, ctx.lua, url, concurrency, ctx.duration, ctx.warmup, ctx.load_cpus, watch
        )
    return run_loadgen(url, concurrency, ctx.duration, ctx.warmup, stream, ctx.load_cpus, watch)


def bench_upstream(up: Upstream, todo: list[Scenario], ctx: Context, run: Run) -> None:
    """Start ``up`` (and a router on it), measure its scenarios, stop both."""
    upstream: subprocess.Popen[bytes] | None = None
    router: subprocess.Popen[bytes] | None = None
    try:
        upstream, uport = start_upstream(up, ctx)
        rport, start = 0, None
        if not ctx.direct_only:
            router, rport, start = start_router(up, uport, ctx)
            run.starts.append(start)
        for sc in todo:
            for c in sc.concurrencies:
                direct = measure(uport, sc.stream, c, ctx, None)
                routed = measure(rport, sc.stream, c, ctx, router.pid) if router else None
                if router and router.poll() is not None:
                    raise RuntimeError(f"router exited with {router.returncode} under load")
                point = Point(sc, c, direct, routed)
                run.points.append(point)
                print(summary_line(point), flush=True)
        if router and start:
            start.hwm_mb = hwm_mb(router.pid)
    finally:
        stop(router)
        stop(upstream)


def bench_ceiling(ctx: Context, run: Run) -> None:
    """Measure the fixed-answer hypercorn app on the router's core at c=16 and c=256."""
    port = free_port()
    cmd = [ctx.python, str(HERE / "ceiling.py"), "--port", str(port)]
    proc = spawn(cmd, ctx.router_cpus, cwd=ROOT)
    try:
        wait_healthy(proc, port, time.perf_counter(), ROUTER_START_LIMIT_S)
        for c in (16, 256):
            result = measure(port, False, c, ctx, None)
            run.ceiling[c] = result["rps"]
            print(f"ceiling (fixed-answer hypercorn app) c={c}: {result['rps']:.0f} req/s")
    finally:
        stop(proc)


def git_describe() -> str:
    """Short commit plus ``-dirty`` when the tree has changes."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip()
    except OSError:
        return "unknown"
    return (head or "no commit") + ("-dirty" if dirty else "")


def cpu_model() -> str:
    """CPU model name from /proc/cpuinfo."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def lib_versions(python: str) -> tuple[str, str]:
    """Return (Python version, "trio x / hypercorn y / h11 z / httpx2 w") of the router's Python."""
    code = (
        "import importlib.metadata as m, platform\n"
        "def v(n):\n"
        "    try: return m.version(n)\n"
        "    except m.PackageNotFoundError: return 'absent'\n"
        "print(platform.python_version())\n"
        "print(' / '.join(v(n) for n in ('trio', 'hypercorn', 'h11', 'httpx2')))\n"
    )
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=True)
    py, libs = out.stdout.strip().splitlines()
    return py, libs


def wrk_version(wrk: str | None) -> str:
    """First line of ``wrk -v`` (it exits non-zero), or a note that it is absent."""
    if not wrk:
        return "wrk absent"
    out = subprocess.run([wrk, "-v"], capture_output=True, text=True)
    return (out.stdout or out.stderr).splitlines()[0].split(" Copyright")[0].strip()


def machine_meta(ctx: Context) -> dict[str, str]:
    """The report's machine and method facts."""
    py, libs = lib_versions(ctx.python)
    if ctx.router_cpus and ctx.load_cpus:
        pinning = (
            f"router on CPU {sorted(ctx.router_cpus)}, upstream + load generator + this "
            f"script on CPU {sorted(ctx.load_cpus)} (`os.sched_setaffinity`)"
        )
    else:
        pinning = "none (fewer than 2 CPUs available): everything shares the CPUs"
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "git": git_describe(),
        "nproc": str(os.cpu_count()),
        "cpu": cpu_model(),
        "kernel": platform.release(),
        "python": py,
        "libs": libs,
        "tools": f"{wrk_version(ctx.wrk)}; tests/bench/loadgen.py",
        "pinning": pinning,
        "nonstream_tool": "`wrk -t1 --latency` with a Lua script for the POST body"
        if ctx.wrk
        else "`tests/bench/loadgen.py` (wrk not installed)",
    }


def write_report(run: Run, out: Path) -> None:
    """Write the report, keeping the existing ``## Notes`` section."""
    notes = extract_notes(out.read_text()) if out.exists() else None
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render(run, notes))


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="2 s per point, fewer points")
    p.add_argument("--direct-only", action="store_true", help="no router: check the harness")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--json", type=Path, help="also dump raw results as JSON here")
    p.add_argument("--duration", type=float, help="seconds measured per point")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per point")
    p.add_argument("--no-wrk", action="store_true", help="use loadgen.py even if wrk exists")
    p.add_argument("--python", default=sys.executable, help="interpreter for the router")
    return p.parse_args(argv)


def execute(args: argparse.Namespace, tmp: Path) -> Run:
    """Run every scenario; return the measurements."""
    plan = cpu_plan()
    router_cpus, load_cpus = plan if plan else (None, None)
    if load_cpus:
        os.sched_setaffinity(0, load_cpus)  # keep this script off the router's core
    ctx = Context(
        tmp=tmp,
        python=args.python,
        router_cpus=router_cpus,
        load_cpus=load_cpus,
        wrk=None if args.no_wrk else find_wrk(),
        lua=write_lua(tmp),
        duration=args.duration or (2.0 if args.quick else 5.0),
        warmup=args.warmup if args.warmup is not None else (0.5 if args.quick else 1.0),
        direct_only=args.direct_only,
    )
    run = Run(machine_meta(ctx), ctx.duration, ctx.warmup, args.direct_only, args.quick)
    todo = scenarios(args.quick)
    if not args.direct_only:
        bench_ceiling(ctx, run)
    for up in (FAST, SLOW):
        bench_upstream(up, [sc for sc in todo if sc.upstream == up], ctx, run)
    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point; 0 when the measurement ran (targets may still fail), 1 on a crash."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="llm-router-bench-") as tmp:
        try:
            run = execute(args, Path(tmp))
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    write_report(run, args.out)
    if args.json:
        args.json.write_text(json.dumps([asdict(p) for p in run.points], indent=2))
    print(summary(run))
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
