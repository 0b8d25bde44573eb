"""Where a held stream's first byte waits: the router's scheduler passes under held streams.

``python tests/bench/passes.py`` (``--help`` for the rest) runs the benchmark's held-stream
point (the 50 ms upstream, 20 events 5 ms apart, clients that wait Retry-After after a
503; ``[server] backlog = 4096``) at each ``-c``, pinned as the benchmark pins, with the
router started under ``_passes.py``, and prints per point the clients' figures (streams/s,
first byte p50/p99, the share told within 100 ms) beside the router's scheduler passes:
how many, the share of its busy time in passes of each length, and the task steps in
them. trio runs one step of every runnable task per pass, so a pass of 50 ms with 250
steps means every stream in progress waits 50 ms for each of its next steps.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _load import LoadSpec, run_loadgen  # noqa: E402
from _model import SLOW  # noqa: E402
from _procs import cpu_plan  # noqa: E402
from _scenarios import HELD_RETRY_CAP_S, HELD_SERVER  # noqa: E402
from _servers import Context, router_url, servers  # noqa: E402
from loadgen import raise_nofile  # noqa: E402


def point(ctx: Context, c: int, duration: float, server: str) -> dict[str, object]:
    """One held-stream point on a fresh router; the clients' figures and its passes."""
    out = ctx.tmp / f"passes-{c}.json"
    os.environ["LLM_ROUTER_PASSES_OUT"] = str(out)  # the router inherits it
    with servers(SLOW, ctx, server=server) as running:
        assert running.router is not None
        spec = LoadSpec(
            router_url(running.router_port), c, duration, stream=True,
            retry_after_cap=HELD_RETRY_CAP_S,
        )  # fmt: skip
        result = run_loadgen(spec, ctx.load_cpus, running.router.pid)
    passes = json.loads(out.read_text()) if out.exists() else {"error": "no summary written"}
    return {
        "c": c,
        "streams_s": round(result["rps"]),
        "first_byte_p50_ms": result["ttfb_p50_ms"],
        "first_byte_p99_ms": result["ttfb_p99_ms"],
        "told_100ms": result["told_100ms"],
        "status_503": result["status_503"],
        "router_cpu": result["router_cpu"],
        "passes": passes,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-c", default="256,2000", help="concurrencies, comma-separated")
    p.add_argument("-d", "--duration", type=float, default=8.0)
    p.add_argument("--server", default=HELD_SERVER, help="the [server] table's extra lines")
    args = p.parse_args()
    raise_nofile()
    plan = cpu_plan()
    if plan:
        os.sched_setaffinity(0, plan[1])
    with tempfile.TemporaryDirectory(prefix="passes-") as tmp:
        ctx = Context(
            tmp=Path(tmp), python=sys.executable, router_cpus=plan[0] if plan else None,
            load_cpus=plan[1] if plan else None, wrk=None, lua=Path(tmp) / "unused.lua",
            duration=args.duration, warmup=0.0, direct_only=False,
            router_module=(str(HERE / "_passes.py"),),
        )  # fmt: skip
        for c in (int(x) for x in args.c.split(",")):
            print(json.dumps(point(ctx, c, args.duration, args.server)), flush=True)


if __name__ == "__main__":
    main()
