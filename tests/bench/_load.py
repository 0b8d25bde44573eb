"""Running one load: wrk (non-stream, when installed) or our loadgen; one result shape.

A result is a dict with ``tool, connections, requests, errors, duration_s, rps, p50_ms,
p99_ms, ttfb_p50_ms, ttfb_p99_ms, client_cpu`` (the last three None for wrk; loadgen adds
the fields of ``_samples.summarise``) plus ``rss_peak_mb``, the watched process's peak
VmRSS during the run, and ``router_cpu``, its CPU time over the run's wall time (both
None if not watched).
"""

from __future__ import annotations

import json
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from _procs import cpu_seconds, spawn, stop, wait_sampling
from _samples import Samples, merge, summarise
from loadgen import CHAT_BODY

if TYPE_CHECKING:
    import subprocess
    from collections.abc import Callable

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
    """Warm up, then measure with wrk while sampling ``watch_pid``'s RSS and CPU."""
    if warmup > 0:
        warm = spawn(wrk_cmd(wrk, lua, url, connections, warmup), cpus)
        peak_warm = wait_sampling(warm, watch_pid)
    else:
        peak_warm = None
    cpu = CpuWatch(watch_pid)
    proc = spawn(wrk_cmd(wrk, lua, url, connections, duration), cpus)
    peak = wait_sampling(proc, watch_pid)
    out = proc.stdout.read().decode() if proc.stdout else ""
    if proc.returncode != 0:
        raise RuntimeError(f"wrk exited with {proc.returncode}:\n{out}")
    result = parse_wrk(out, connections, duration)
    result["rss_peak_mb"] = _max(peak, peak_warm)
    result["router_cpu"] = cpu.share()
    return result


class CpuWatch:
    """A process's CPU time over wall time, from now to :meth:`share`."""

    def __init__(self, pid: int | None) -> None:
        self.pid = pid
        self.cpu = cpu_seconds(pid) if pid is not None else None
        self.wall = time.perf_counter()

    def share(self) -> float | None:
        """CPU seconds per wall second since construction (1.0: one core busy)."""
        if self.pid is None or self.cpu is None:
            return None
        now = cpu_seconds(self.pid)
        wall = time.perf_counter() - self.wall
        return None if now is None or wall <= 0 else (now - self.cpu) / wall


@dataclass(frozen=True)
class LoadSpec:
    """One loadgen run: its flags (see ``loadgen.py``) and how many processes share it."""

    url: str
    connections: int
    duration: float
    warmup: float = 0.0
    stream: bool = False
    mix: float = 0.0  # share of streams, when not all are
    ca: Path | None = None
    timeout: float = 0.0
    retry_after_cap: float = 0.0
    once: bool = False
    every: float = 0.0  # open loop: one request on a new connection every this many s
    method: str = "POST"
    procs: int = 1
    body: str | None = None  # the request body (default: loadgen's chat request)

    def argv(self, connections: int, seed: int) -> list[str]:
        """The command line of one of the processes, with ``connections`` clients."""
        cmd = [sys.executable, str(LOADGEN), "--url", self.url, "-c", str(connections)]
        cmd += ["-d", str(self.duration), "--warmup", str(self.warmup), "--raw"]
        cmd += ["--seed", str(seed), "--timeout", str(self.timeout)]
        cmd += ["--retry-after-cap", str(self.retry_after_cap), "--mix", str(self.mix)]
        if self.stream:
            cmd.append("--stream")
        if self.ca:
            cmd += ["--ca", str(self.ca)]
        if self.once:
            cmd.append("--once")
        if self.every:
            cmd += ["--every", str(self.every), "--method", self.method]
        if self.body is not None:
            cmd += ["--body", self.body]
        return cmd


def run_loadgen(
    spec: LoadSpec,
    cpus: set[int] | None,
    watch_pid: int | None,
    on_tick: Callable[[float], None] | None = None,
) -> Result:
    """Run ``spec`` (in ``spec.procs`` processes, merged) while watching ``watch_pid``.

    ``on_tick`` is called every 20 ms with the seconds since the start (for sampling).
    """
    cpu = CpuWatch(watch_pid)
    running = spawn_loadgen(spec, cpus)
    try:
        peak = wait_sampling(running.procs, watch_pid, on_tick)
    finally:
        running.stop()
    result = running.collect()
    result["rss_peak_mb"] = peak
    result["router_cpu"] = cpu.share()
    return result


@dataclass
class Running:
    """Load processes under way; each writes its samples to its own temporary file
    (a pipe could fill up and block a process with many samples at its exit)."""

    spec: LoadSpec
    procs: list[subprocess.Popen[bytes]]
    outs: list[IO[bytes]]

    def terminate(self) -> None:
        """Ask open-loop (``--every``) processes to finish: they report, then exit."""
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)

    def stop(self) -> None:
        """Make sure none is left running (by PID)."""
        for proc in self.procs:
            stop(proc)

    def collect(self) -> Result:
        """Wait for the processes, merge their raw samples and summarise them."""
        parts: list[Samples] = []
        for proc, out in zip(self.procs, self.outs, strict=True):
            code = proc.wait()
            out.seek(0)
            text = out.read().decode()
            out.close()
            if code != 0 or not text.strip():
                raise RuntimeError(f"loadgen exited with {code}:\n{text[-2000:]}")
            parts.append(Samples.from_json(json.loads(text.strip().splitlines()[-1])))
        samples = merge(parts)
        spec = self.spec
        measured = samples.elapsed_s if spec.once or spec.every else spec.duration
        return summarise(samples, spec.connections, measured)


def spawn_loadgen(spec: LoadSpec, cpus: set[int] | None) -> Running:
    """Start the ``spec.procs`` processes of ``spec``, the connections shared out."""
    shares = [spec.connections // spec.procs] * spec.procs
    shares[0] += spec.connections - sum(shares)
    running = Running(spec, [], [])
    for seed, n in enumerate(shares, 1):
        if n > 0:
            out = tempfile.TemporaryFile()  # noqa: SIM115 (closed by collect)
            running.outs.append(out)
            running.procs.append(spawn(spec.argv(n, seed), cpus, stdout=out))
    return running


def _max(a: float | None, b: float | None) -> float | None:
    """Max of two optional numbers."""
    values = [v for v in (a, b) if v is not None]
    return max(values) if values else None
