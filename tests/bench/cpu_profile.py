"""The router's CPU per request, and where it goes: a profiling harness.

Run as ``python tests/bench/cpu_profile.py`` (``--profile`` to sample the router with
py-spy too; ``--help`` for the rest). It starts the fast fake upstream and a router on
it (``python -m router serve``, pinned apart as the benchmark pins them), drives the
non-stream point (c=16) and the stream point (20 chunks, c=64) with ``loadgen.py``, and
prints for each:

- the router's CPU time per answered request, in microseconds: its user + system time
  from ``/proc/PID/stat`` over the measured run divided by the requests answered. On a
  shared, loaded machine this moves far less than requests per second, which measure
  the router's share of a core as much as its work;
- with ``--profile``, the share of the router's samples in each part of the stack:
  our code (``router``, ``adapters``, ``rules``), trio, h11, hypercorn, socket calls
  (trio's socket wrappers and the epoll wait: the system calls), JSON, metrics, the
  rest. A sample is counted where it ran (its innermost Python frame), so a share is
  self time, as the issue's profile counts it.

The profile's own overhead (py-spy samples from outside, at ``--rate`` Hz) is small
but not nil: CPU per request is measured in a separate run without it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _model import Upstream  # noqa: E402
from _procs import cpu_plan, cpu_seconds  # noqa: E402
from _servers import Context, router_url, servers  # noqa: E402
from loadgen import STREAM_BODY  # noqa: E402

#: Where a sample's innermost frame lies: by its file (socket calls first), then by the
#: top-level package of its path (py-spy prints paths from the package on).
SOCKET_CALLS = ("trio/_socket.py", "trio/_core/_io_epoll.py", "trio/_highlevel_socket.py")
PACKAGES = {
    "trio": "trio",
    "outcome": "trio",
    "h11": "h11",
    "hypercorn": "hypercorn",
    "router": "router (ours)",
    "adapters": "router (ours)",
    "rules": "router (ours)",
    "json": "JSON",
    "prometheus_client": "metrics",
    "opentelemetry": "metrics",
    "attr": "attrs/cattrs",
    "cattrs": "attrs/cattrs",
}
#: Frames of worker threads (the config watcher, the ledger), left out of the shares:
#: they wait in native code with the GIL released, which py-spy cannot tell from work.
THREADS = ("_thread_cache.py",)


def part_of(frame: str) -> str:
    """The part of the stack a py-spy frame (``name (path:line)``) belongs to."""
    path = frame.rpartition(" (")[2].rstrip(")").rpartition(":")[0]
    if path.startswith(SOCKET_CALLS):
        return "socket calls"
    if path.startswith("<attrs generated"):
        return "attrs/cattrs"
    top = path.split("/", 1)[0]
    return PACKAGES.get(top, "stdlib" if top.endswith(".py") or "<frozen" in path else "other")


def _samples(raw: Path) -> list[tuple[str, int]]:
    """(stack, samples) of the event-loop thread."""
    found = []
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit() and not any(t in stack for t in THREADS):
            found.append((stack, int(n)))
    return found


def shares(raw: Path) -> dict[str, float]:
    """Self-time shares per part from py-spy's ``--format raw`` (collapsed) output."""
    counts: Counter[str] = Counter()
    for stack, n in _samples(raw):
        counts[part_of(stack.rsplit(";", 1)[-1])] += n
    total = sum(counts.values()) or 1
    return {part: round(100 * n / total, 1) for part, n in counts.most_common()}


def top_frames(raw: Path, limit: int) -> list[tuple[str, float]]:
    """The innermost frames with the most samples, as shares of all."""
    counts: Counter[str] = Counter()
    for stack, n in _samples(raw):
        counts[stack.rsplit(";", 1)[-1]] += n
    total = sum(counts.values()) or 1
    return [(f, round(100 * n / total, 1)) for f, n in counts.most_common(limit)]


def inclusive(raw: Path, needle: str) -> float:
    """The share of samples with a frame containing ``needle`` anywhere in the stack."""
    hit = total = 0
    for stack, n in _samples(raw):
        total += n
        if needle in stack:
            hit += n
    return round(100 * hit / (total or 1), 1)


def loadgen(
    url: str, c: int, duration: float, stream: bool, cpus: set[int] | None
) -> dict[str, Any]:
    """One loadgen run (no warm-up of its own); its summary."""
    cmd = [sys.executable, str(HERE / "loadgen.py"), "--url", url, "-c", str(c)]
    cmd += ["-d", str(duration), "--warmup", "0"]
    if stream:
        cmd += ["--body", STREAM_BODY]
    pre = (lambda: os.sched_setaffinity(0, cpus)) if cpus else None
    out = subprocess.run(cmd, capture_output=True, check=True, preexec_fn=pre)
    summary: dict[str, Any] = json.loads(out.stdout.decode().strip().splitlines()[-1])
    return summary


def measure(
    pid: int, url: str, c: int, stream: bool, ctx: Context, args: argparse.Namespace
) -> dict[str, Any]:
    """Warm up, then one measured run: req/s and the router's CPU µs per request."""
    loadgen(url, c, args.warmup, stream, ctx.load_cpus)
    before = cpu_seconds(pid) or 0.0
    result = loadgen(url, c, args.duration, stream, ctx.load_cpus)
    used = (cpu_seconds(pid) or 0.0) - before
    n = result["requests"]
    row: dict[str, Any] = {
        "point": f"{'streams' if stream else 'non-stream'} c={c}",
        "requests": n,
        "req_s": round(n / args.duration),
        "cpu_us_per_request": round(1e6 * used / n) if n else None,
        "router_cpu_share": round(used / args.duration, 2),
        "errors": result.get("errors"),
    }
    if args.profile:
        raw = ctx.tmp / f"profile-{'stream' if stream else 'plain'}-{c}.txt"
        spy = [args.py_spy, "record", "--format", "raw", "-o", str(raw), "--pid", str(pid)]
        spy += ["--rate", str(args.rate), "--duration", str(int(args.duration)), "--nonblocking"]
        if args.native:
            spy.append("--native")
        sampler = subprocess.Popen(spy, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        time.sleep(0.3)  # py-spy attaches
        loadgen(url, c, args.duration, stream, ctx.load_cpus)
        _, err = sampler.communicate(timeout=args.duration + 30)
        if raw.exists():
            row["shares_pct"] = shares(raw)
            row["top_frames"] = top_frames(raw, args.top)
            for needle in args.inclusive:
                row[f"incl {needle}"] = inclusive(raw, needle)
            if args.keep:
                shutil.copy(raw, Path(args.keep) / raw.name)
        else:
            row["profile_error"] = err.decode(errors="replace")[-500:]
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("-d", "--duration", type=float, default=5.0)
    p.add_argument("--warmup", type=float, default=1.0)
    p.add_argument("--only", default="plain,stream", help="plain, stream, or both")
    p.add_argument("--profile", action="store_true", help="also sample with py-spy")
    p.add_argument("--native", action="store_true", help="py-spy --native")
    p.add_argument("--rate", type=int, default=250)
    p.add_argument("--top", type=int, default=25)
    p.add_argument("--inclusive", nargs="*", default=[], help="frames to report inclusively")
    p.add_argument("--keep", help="directory to keep the raw profiles in")
    p.add_argument(
        "--py-spy", default=shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    )
    p.add_argument("--repeat", type=int, default=1, help="measured runs per point")
    args = p.parse_args()
    plan = cpu_plan()
    with tempfile.TemporaryDirectory(prefix="cpu-profile-") as tmp:
        ctx = Context(
            tmp=Path(tmp), python=sys.executable, router_cpus=plan[0] if plan else None,
            load_cpus=plan[1] if plan else None, wrk=None, lua=Path(tmp) / "unused.lua",
            duration=args.duration, warmup=args.warmup, direct_only=False,
        )  # fmt: skip
        with servers(Upstream("fast", 0, 0), ctx) as running:
            assert running.router is not None
            pid, url = running.router.pid, router_url(running.router_port)
            load = os.getloadavg()
            print(json.dumps({"pid": pid, "loadavg": [round(x, 2) for x in load]}))
            for point in args.only.split(","):
                stream = point == "stream"
                c = 64 if stream else 16
                for _ in range(args.repeat):
                    print(json.dumps(measure(pid, url, c, stream, ctx, args)), flush=True)


if __name__ == "__main__":
    main()
