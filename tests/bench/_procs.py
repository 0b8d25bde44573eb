"""Process helpers for the benchmark: spawning pinned, readiness, RSS, killing by PID."""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence


def cpu_plan() -> tuple[set[int], set[int]] | None:
    """Return (router CPUs, upstream + load CPUs), or None when pinning is impossible."""
    try:
        cpus = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    if len(cpus) < 2:
        return None
    return {cpus[0]}, {cpus[1]}


def _pin(cpus: set[int] | None) -> Callable[[], None] | None:
    """Return a ``preexec_fn`` pinning the child to ``cpus`` (before it starts threads)."""
    if not cpus:
        return None

    def pin() -> None:
        os.sched_setaffinity(0, cpus)

    return pin


def spawn(
    cmd: Sequence[str],
    cpus: set[int] | None,
    *,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    stdout: int | IO[bytes] = subprocess.PIPE,
    stderr: int | IO[bytes] = subprocess.DEVNULL,
) -> subprocess.Popen[bytes]:
    """Start ``cmd`` pinned to ``cpus``."""
    return subprocess.Popen(
        list(cmd), env=env, cwd=cwd, stdout=stdout, stderr=stderr, preexec_fn=_pin(cpus)
    )


def stop(proc: subprocess.Popen[bytes] | None) -> None:
    """Terminate ``proc`` (by its PID), then kill it if it lingers; reap it."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


def read_port_line(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> int:
    """Read ``PORT=<n>`` from the first line of ``proc``'s stdout."""
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"pid {proc.pid} printed no PORT= line within {timeout} s")
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("PORT="):
        raise RuntimeError(f"pid {proc.pid}: expected PORT=<n>, got {line!r}")
    return int(line.removeprefix("PORT="))


def free_port() -> int:
    """Pick a free loopback port (bind 0, read it back, close)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def get_status(port: int, path: str, timeout: float = 1.0) -> int | None:
    """Return the status of ``GET path``, or None if the connection fails."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request("GET", path)
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def wait_healthy(proc: subprocess.Popen[bytes], port: int, started: float, limit: float) -> float:
    """Poll ``/healthz`` until 200; return seconds since ``started`` (a perf_counter value)."""
    while time.perf_counter() - started < limit:
        if proc.poll() is not None:
            raise RuntimeError(f"router exited with code {proc.returncode} before /healthz")
        if get_status(port, "/healthz", timeout=0.5) == 200:
            return time.perf_counter() - started
        time.sleep(0.005)
    raise RuntimeError(f"router gave no 200 on /healthz within {limit} s")


def post(port: int, body: str, timeout: float = 10.0) -> tuple[int, bytes]:
    """POST ``body`` to the chat endpoint; return (status, whole body)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        headers = {"content-type": "application/json"}
        conn.request("POST", "/v1/chat/completions", body=body.encode(), headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def rss_mb(pid: int) -> float | None:
    """Return the current VmRSS of ``pid`` in MB (MiB), or None if it is gone."""
    return _status_kb(pid, "VmRSS")


def hwm_mb(pid: int) -> float | None:
    """Return the peak resident set (VmHWM) of ``pid`` in MB, or None if it is gone."""
    return _status_kb(pid, "VmHWM")


def _status_kb(pid: int, field: str) -> float | None:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024.0
    return None


def cpu_seconds(pid: int) -> float | None:
    """Return the CPU time (user + system) ``pid`` has used, or None if it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text.rsplit(")", 1)[1].split()  # after "pid (comm)": state is field 3
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_sampling(
    procs: subprocess.Popen[bytes] | Sequence[subprocess.Popen[bytes]],
    watch_pid: int | None,
    on_tick: Callable[[float], None] | None = None,
) -> float | None:
    """Wait for ``procs`` to exit, sampling ``watch_pid``'s RSS every 20 ms; return the peak.

    ``on_tick`` (if given) is called on every sample with the seconds since the start.
    """
    group = [procs] if isinstance(procs, subprocess.Popen) else list(procs)
    peak: float | None = None
    started = time.perf_counter()
    while any(p.poll() is None for p in group):
        if watch_pid is not None:
            now = rss_mb(watch_pid)
            if now is not None and (peak is None or now > peak):
                peak = now
        if on_tick is not None:
            on_tick(time.perf_counter() - started)
        time.sleep(0.02)
    return peak
