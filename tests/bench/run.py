"""Benchmark llm-router against fast fake upstreams; write docs/benchmarks.md.

``python tests/bench/run.py [--quick] [--only GROUPS] [--direct-only] [--out docs/benchmarks.md]``

The router runs pinned to the first CPU; the fake upstreams, the load generators and
this script share the second. Scenario groups (``--only``, comma-separated; all but
``soak`` by default):

- ``base``: the fixed-answer ceiling, then plain HTTP upstreams (fast: 0 ms; slow:
  50 ms, streams +5 ms between events) loaded directly and through the router,
  non-stream and streaming, at several concurrencies.
- ``tls``, ``h2``: the fast upstream over HTTPS and over HTTP/2 (TLS, ALPN h2), the
  router's provider pointing at it: non-stream c=16 and c=256, streams c=64.
- ``held``: slow streams held by 256 to 5,000 clients at once (a fresh router each).
- ``overload``: non-stream far past saturation with ``server.max_in_flight`` set.
- ``cold``: a freshly started router, 500 new clients at once, ``/healthz`` probed.
- ``embed``: ``POST /v1/embeddings`` at c=16, with and without the route's ``batch``.
- ``workers``: non-stream c=64 through ``serve --workers 1`` and ``--workers 2``.
- ``shared``: one router without shared state, one with (a local ``redis-server``), two
  on one Redis: non-stream c=16 and c=256, interleaved over three rounds, medians and
  the router's CPU per request (see ``_shared_bench``).
- ``hooks``: c=16 without and with a ``pii`` and a ``regex`` content hook: short and
  1 KiB-prompt requests, and streams (the hooks' cost per request).
- ``simulate``: the shipped ``router.toml`` served by the real daemon under ~30 s of
  light mixed traffic, against ``llm-router simulate`` on the same traffic shape
  (see ``_simulate_bench``).
- ``soak`` (only when asked, or ``all``): ``--soak-duration`` seconds of mixed load, the
  router's RSS and descriptors sampled every 10 s.

It prints a summary, writes the Markdown report (keeping the hand-written ``## Notes``
section) and exits 0 when everything ran (targets may still be missed), 1 when something
broke: the harness itself (then no report), or a router failing rows (reported).
Every process it starts is stopped by PID in a ``finally``.
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
from dataclasses import asdict
from pathlib import Path

from _cold import bench_cold
from _embed import bench_embed
from _hooks import bench_hooks
from _load import find_wrk, write_lua
from _model import FAST, FAST_H2, FAST_TLS, SLOW, Run
from _procs import cpu_plan
from _report import extract_notes, failures, render, summary
from _scenarios import (
    HELD_CONCURRENCY,
    base_scenarios,
    bench_ceiling,
    bench_held,
    bench_overload,
    bench_upstream,
    proto_scenarios,
)
from _servers import Context
from _shared_bench import bench_shared
from _simulate_bench import bench_simulate
from _soak import bench_soak
from _tls import write_certs
from _workers import bench_workers
from loadgen import raise_nofile

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
GROUPS = (
    "base",
    "tls",
    "h2",
    "held",
    "overload",
    "cold",
    "embed",
    "workers",
    "shared",
    "hooks",
    "simulate",
    "soak",
)
DEFAULT_GROUPS = tuple(g for g in GROUPS if g != "soak")


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
    p.add_argument(
        "--only",
        type=groups_arg,
        default=DEFAULT_GROUPS,
        help=f"comma-separated groups of {', '.join(GROUPS)}, or all "
        f"(default: {','.join(DEFAULT_GROUPS)})",
    )
    p.add_argument("--direct-only", action="store_true", help="no router: check the harness")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "benchmarks.md")
    p.add_argument("--json", type=Path, help="also dump raw results as JSON here")
    p.add_argument("--duration", type=float, help="seconds measured per point")
    p.add_argument("--warmup", type=float, help="seconds of warm-up per point")
    p.add_argument(
        "--held-duration", type=float, help="seconds per held-stream point (default 10; quick 2)"
    )
    p.add_argument(
        "--held-c",
        type=lambda text: tuple(int(c) for c in text.split(",")),
        help="held-stream concurrencies (default 256,1000,2000,5000; quick 256,1000)",
    )
    p.add_argument("--held-procs", type=int, default=1, help="load processes per held-stream point")
    p.add_argument("--soak-duration", type=float, default=600.0, help="seconds of soak load")
    p.add_argument("--no-wrk", action="store_true", help="use loadgen.py even if wrk exists")
    p.add_argument("--python", default=sys.executable, help="interpreter for the router")
    return p.parse_args(argv)


def groups_arg(text: str) -> tuple[str, ...]:
    """``--only``: names from :data:`GROUPS`, or ``all``."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if names == ("all",):
        return GROUPS
    unknown = [n for n in names if n not in GROUPS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown group(s) {unknown}; choose from {GROUPS}")
    return tuple(g for g in GROUPS if g in names)


def execute(args: argparse.Namespace, tmp: Path) -> Run:
    """Run every scenario group asked for; return the measurements."""
    raise_nofile()  # inherited: the held streams need thousands of descriptors, both sides
    plan = cpu_plan()
    router_cpus, load_cpus = plan if plan else (None, None)
    if load_cpus:
        os.sched_setaffinity(0, load_cpus)  # keep this script off the router's core
    groups: tuple[str, ...] = args.only
    tls = any(g in groups for g in ("tls", "h2", "cold"))
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
        certs=write_certs(tmp) if tls else None,
    )
    run = Run(machine_meta(ctx), ctx.duration, ctx.warmup, args.direct_only, args.quick)
    run.groups = groups
    run.held_duration_s = args.held_duration or (ctx.duration if args.quick else 10.0)
    if "base" in groups:
        if not args.direct_only:
            bench_ceiling(ctx, run)
        todo = base_scenarios(args.quick)
        for up in (FAST, SLOW):
            bench_upstream(up, [sc for sc in todo if sc.upstream == up], ctx, run)
    for name, up in (("tls", FAST_TLS), ("h2", FAST_H2)):
        if name in groups and not (args.direct_only and up.proto == "h2"):  # no direct h2 load
            bench_upstream(up, proto_scenarios(up, args.quick), ctx, run)
    if args.direct_only:
        return run  # the groups below measure the router only
    if "held" in groups:
        held = args.held_c or (HELD_CONCURRENCY[:2] if args.quick else HELD_CONCURRENCY)
        bench_held(ctx, run, held, args.held_procs)
    if "overload" in groups:
        bench_overload(ctx, run)
    if "cold" in groups:
        bench_cold(ctx, run)
    if "embed" in groups:
        bench_embed(ctx, run)
    if "workers" in groups:
        bench_workers(ctx, run)
    if "shared" in groups:
        bench_shared(ctx, run)
    if "hooks" in groups:
        bench_hooks(ctx, run)
    if "simulate" in groups:
        bench_simulate(ctx, run)
    if "soak" in groups:
        bench_soak(ctx, run, args.soak_duration)
    return run


def main(argv: list[str] | None = None) -> int:
    """Entry point: 0 when everything ran (targets may still be missed), 1 otherwise."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="llm-router-bench-") as tmp:
        try:
            run = execute(args, Path(tmp))
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            print(f"benchmark failed: {exc}", file=sys.stderr)
            return 1
    write_report(run, args.out)
    if args.json:
        args.json.write_text(json.dumps(asdict(run), indent=2, default=str))
    print(summary(run))
    print(f"report: {args.out}")
    failed = failures(run)
    if failed:
        print(f"{len(failed)} measurement(s) failed (see the report):", file=sys.stderr)
        for line in failed:
            print(f"  {line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
