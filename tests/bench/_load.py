"""Running one load: wrk (non-stream, when installed) or our loadgen; one result shape.

A result is a dict with ``tool, connections, requests, errors, duration_s, rps, p50_ms,
p99_ms, ttfb_p50_ms, ttfb_p99_ms, client_cpu`` (the last three None for wrk) plus
``rss_peak_mb``, the watched process's peak VmRSS during the run (None if not watched).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from _procs import spawn, wait_sampling
from loadgen import CHAT_BODY

Result = dict[str, Any]

HERE = Path(__file__).resolve().parent
LOADGEN = HERE / "loadgen.py"
UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}


def find_wrk() -> str | None:
    """Return the path of ``wrk``, or None."""
    return shutil.which("wrk")


def write_lua(tmp: Path) -> Path:
    """Write the wrk script that POSTs the bench chat request; return its path."""
    path = tmp / "post.lua"
    path.write_text(
        'wrk.method = "POST"\n'
        f"wrk.body = '{CHAT_BODY}'\n"
        'wrk.headers["Content-Type"] = "application/json"\n'
    )
    return path


def parse_wrk(text: str, connections: int, duration: float) -> Result:
    """Parse ``wrk --latency`` output into a result."""
    pct = dict(re.findall(r"^\s+(50|99)(?:\.0+)?%\s+([\d.]+\w+)\s*$", text, re.M))
    total = re.search(r"^\s+(\d+) requests in ([\d.]+)(\w+)", text, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    if not (total and rps and "50" in pct and "99" in pct):
        raise RuntimeError(f"cannot parse wrk output:\n{text}")
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    errors = int(non2xx.group(1)) if non2xx else 0
    errors += sum(int(g) for g in sock.groups()) if sock else 0
    return {
        "tool": "wrk",
        "connections": connections,
        "requests": int(total.group(1)),
        "errors": errors,
        "duration_s": duration,
        "rps": float(rps.group(1)),
        "p50_ms": to_ms(pct["50"]),
        "p99_ms": to_ms(pct["99"]),
        "ttfb_p50_ms": None,
        "ttfb_p99_ms": None,
        "client_cpu": None,
    }


def to_ms(value: str) -> float:
    """Convert a wrk duration like ``273.00us`` or ``1.20s`` to milliseconds."""
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m|h)", value)
    if not m:
        raise ValueError(f"unknown wrk time {value!r}")
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def wrk_cmd(wrk: str, lua: Path, url: str, connections: int, seconds: float) -> list[str]:
    """Return the wrk command line (one thread: it shares one pinned core)."""
    return [
        wrk,
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        "--latency",
        "--timeout",
        "10s",
        "-s",
        str(lua),
        url,
    ]


def run_wrk(
    wrk: str,
    lua: Path,
    url: str,
    connections: int,
    duration: float,
    warmup: float,
    cpus: set[int] | None,
    watch_pid: int | None,
) -> Result:
    """Warm up, then measure with wrk while sampling ``watch_pid``'s RSS."""
    if warmup > 0:
        warm = spawn(wrk_cmd(wrk, lua, url, connections, warmup), cpus)
        peak_warm = wait_sampling(warm, watch_pid)
    else:
        peak_warm = None
    proc = spawn(wrk_cmd(wrk, lua, url, connections, duration), cpus)
    peak = wait_sampling(proc, watch_pid)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{out}")
    result = parse_wrk(out, connections, duration)
    result["rss_peak_mb"] = _max(peak, peak_warm)
    return result


def run_loadgen(
    url: str,
    connections: int,
    duration: float,
    warmup: float,
    stream: bool,
    cpus: set[int] | None,
    watch_pid: int | None,
) -> Result:
    """Measure with loadgen.py (it warms up itself) while sampling ``watch_pid``'s RSS."""
    cmd = [sys.executable, str(LOADGEN), "--url", url, "-c", str(connections)]
    cmd += ["-d", str(duration), "--warmup", str(warmup)]
    if stream:
        cmd.append("--stream")
    proc = spawn(cmd, cpus)
    peak = wait_sampling(proc, watch_pid)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"loadgen exited with {proc.returncode}:\n{out}")
    result: Result = json.loads(out.strip().splitlines()[-1])
    result["rss_peak_mb"] = peak
    return result


def _max(a: float | None, b: float | None) -> float | None:
    """Max of two optional numbers."""
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None
