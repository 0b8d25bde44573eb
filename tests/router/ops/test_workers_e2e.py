"""``serve --workers 2`` as a process: both workers serve, a killed worker is replaced,
SIGHUP reaches both, systemd hears the main process only, and nothing outlives it."""

from __future__ import annotations

import os
import re
import signal
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).parents[3]
CONFIG = """
[server]
listen = ["127.0.0.1:0"]
access_log = false
watch = false
{extra}

[providers.sim]
kind = "simulated"
latency = {{ median = "1ms", p99 = "2ms" }}

[routes.{route}]
fallback = ["sim:echo"]
"""
LIMIT = 60.0  # seconds: a hang guard on a loaded machine, never a pace
WATCHDOG = 10.0  # WatchdogSec=: long enough for a worker on a loaded machine
CREDENTIALS = struct.Struct("3i")


def until(check: Callable[[], Any], what: str, limit: float = LIMIT) -> Any:
    """Poll ``check`` until it returns something true; fail after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        if result := check():
            return result
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


class Daemon:
    """The main process; its stderr (and its workers') goes to a file, read as it grows."""

    def __init__(self, config: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.log_path = config.with_suffix(".log")
        with self.log_path.open("w") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "router", "serve", "--config", str(config), *args],
                cwd=ROOT,
                env=env,
                stderr=log,
            )

    def wait_line(self, pattern: str) -> re.Match[str]:
        regex = re.compile(pattern)
        found: re.Match[str] = until(lambda: regex.search(self.log), pattern)
        return found

    @property
    def log(self) -> str:
        return self.log_path.read_text()

    def worker_pids(self) -> set[int]:
        return {int(m) for m in re.findall(r"worker \d started \(pid (\d+)\)", self.log)}

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for pid in self.worker_pids():  # never leave a worker behind, whatever failed
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return Path(f"/proc/{pid}").exists() and "Z" not in _state(pid)


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def status(url: str) -> dict[str, Any]:
    """``/admin/status`` on a new connection: the kernel picks the worker."""
    response = httpx2.get(f"{url}/admin/status", trust_env=False, timeout=LIMIT)
    assert response.status_code == 200
    body: dict[str, Any] = response.json()
    return body


def seen_workers(
    url: str, check: Callable[[dict[str, Any]], bool], count: int = 2
) -> dict[int, dict[str, Any]]:
    """Statuses by worker pid, polled until ``count`` workers answered with ``check`` true."""
    seen: dict[int, dict[str, Any]] = {}

    def poll() -> bool:
        state = status(url)
        if check(state):
            seen[state["worker"]["pid"]] = state
        return len(seen) >= count

    until(poll, f"{count} workers to answer as expected")
    return seen


class Notifications:
    """A pretend systemd's NOTIFY_SOCKET that records who sent each message."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.sock.settimeout(LIMIT)  # a hang guard
        self.seen: list[tuple[int, str]] = []

    def next(self, prefix: str) -> tuple[int, str]:
        """The next message starting with ``prefix`` (others skipped), and its sender."""
        while True:
            data, ancillary, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(CREDENTIALS.size))
            pid = next(
                CREDENTIALS.unpack(cdata[: CREDENTIALS.size])[0]
                for level, kind, cdata in ancillary
                if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
            )
            self.seen.append((pid, data.decode()))
            if data.decode().startswith(prefix):
                return pid, data.decode()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Daemon, Path, Notifications]]:
    config = tmp_path / "router.toml"
    config.write_text(CONFIG.format(extra="", route="chat"))
    notify = Notifications(tmp_path / "notify.sock")
    env = {
        **os.environ,
        "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
        "WATCHDOG_USEC": str(int(WATCHDOG * 1_000_000)),
    }
    running = Daemon(config, "--workers", "2", env=env)
    try:
        yield running, config, notify
    finally:
        running.stop()
        notify.sock.close()


def ask(url: str, model: str = "chat") -> str:
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=LIMIT)
    with client:
        answer = client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "one two"}]
        )
    return answer.choices[0].message.content or ""


def test_two_workers_serve_survive_a_kill_reload_and_stop(
    daemon: tuple[Daemon, Path, Notifications],
) -> None:
    running, config, notify = daemon
    main = running.proc.pid
    url = running.wait_line(r"serving on (http://\S+) with 2 workers").group(1)
    sender, ready = notify.next("READY=1")
    assert sender == main  # systemd hears the main process, never a worker
    assert "2 of 2 workers serving on " + url in ready
    assert (main, "WATCHDOG=1") in notify.seen  # pinged from the start
    assert ask(url) == "one two"

    # Both workers serve, each answering for itself.
    first = seen_workers(url, lambda s: True)
    assert {s["worker"]["index"] for s in first.values()} == {1, 2}
    assert {s["worker"]["main_pid"] for s in first.values()} == {main}

    # A worker killed outright is replaced (same index, new pid); requests keep working.
    victim = next(pid for pid, s in first.items() if s["worker"]["index"] == 1)
    os.kill(victim, signal.SIGKILL)
    running.wait_line(rf"worker 1 \(pid {victim}\) exited \(killed by SIGKILL\)")
    until(lambda: running.worker_pids() - set(first), "a new worker to start")
    again = seen_workers(url, lambda s: bool(ask(url)) and s["worker"]["pid"] != victim)
    assert {s["worker"]["index"] for s in again.values()} == {1, 2}
    assert victim not in again

    # A worker whose loop stops (SIGSTOP) stops pinging: it is killed and replaced.
    stuck = next(pid for pid, s in again.items() if s["worker"]["index"] == 2)
    os.kill(stuck, signal.SIGSTOP)
    running.wait_line(rf"worker 2 \(pid {stuck}\) stopped pinging: killing it")
    until(lambda: running.worker_pids() - set(first) - set(again), "a new worker 2")
    again = seen_workers(url, lambda s: bool(ask(url)) and s["worker"]["pid"] != stuck)

    # SIGHUP to the main process reloads every worker: the new route is everywhere.
    config.write_text(CONFIG.format(extra="", route="renamed"))
    running.proc.send_signal(signal.SIGHUP)
    sender, _ = notify.next("RELOADING=1")
    assert sender == main
    seen_workers(url, lambda s: "renamed" in s["rules"]["routes"])
    assert ask(url, "renamed") == "one two"

    # POST /admin/reload reaches one worker, which has the main process reload the other.
    config.write_text(CONFIG.format(extra="", route="third"))
    answer = httpx2.post(f"{url}/admin/reload", trust_env=False, timeout=LIMIT)
    assert answer.json()["changed"] is True
    seen_workers(url, lambda s: s["rules"]["routes"] == ["third"])

    # A broken edit is refused by every worker; the rules in force keep serving.
    config.write_text(CONFIG.format(extra="max_body = -1", route="broken"))
    running.proc.send_signal(signal.SIGHUP)
    refused = seen_workers(url, lambda s: bool(s["reload"]["last_errors"]))
    assert all(s["rules"]["routes"] == ["third"] for s in refused.values())
    assert ask(url, "third") == "one two"

    # SIGTERM: every worker drains and exits, then the main process, with status 0.
    workers = set(again)
    running.proc.send_signal(signal.SIGTERM)
    sender, _ = notify.next("STOPPING=1")
    assert {pid for pid, _ in notify.seen} == {main}
    assert running.proc.wait(timeout=LIMIT) == 0
    assert not any(alive(pid) for pid in workers | running.worker_pids())
    assert "all workers have exited" in running.log


def test_workers_exit_when_the_main_process_is_killed(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text(CONFIG.format(extra="workers = 2", route="chat"))  # from the file
    running = Daemon(config)
    try:
        url = running.wait_line(r"serving on (http://\S+) with 2 workers").group(1)
        assert ask(url) == "one two"
        workers = running.worker_pids()
        assert len(workers) == 2
        running.proc.kill()  # no chance to stop anything: the lifeline does it
        running.proc.wait()
        until(lambda: not any(alive(pid) for pid in workers), "the workers to exit")
        assert "the main process is gone: draining" in running.log
    finally:
        running.stop()


def test_a_worker_that_cannot_start_fails_the_start(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text(
        CONFIG.format(extra='api_keys = ["env:LLM_ROUTER_TEST_UNSET_KEY"]', route="chat")
    )
    env = {k: v for k, v in os.environ.items() if k != "LLM_ROUTER_TEST_UNSET_KEY"}
    running = Daemon(config, "--workers", "2", env=env)
    try:
        assert running.proc.wait(timeout=LIMIT) == 1
        until(lambda: not any(alive(pid) for pid in running.worker_pids()), "the workers' end")
        assert "LLM_ROUTER_TEST_UNSET_KEY" in running.log  # the worker's own error
        assert re.search(r"worker \d exited \(status 1\) before it was ready", running.log)
    finally:
        running.stop()


# As systemd does: the listening socket on fd 3, LISTEN_PID the daemon's own pid (exec
# keeps it).
ACTIVATE = """
import os, sys
os.dup2(int(sys.argv[1]), 3)
os.environ["LISTEN_PID"] = str(os.getpid())
os.environ["LISTEN_FDS"] = "1"
os.execv(sys.executable, [sys.executable, "-m", "router", "serve", *sys.argv[2:]])
"""


def test_socket_activated_workers_share_the_inherited_socket(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text(CONFIG.format(extra="", route="chat").replace("127.0.0.1:0", "fd:3"))
    log = tmp_path / "router.log"
    with socket.socket() as listener, log.open("w") as stderr:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        serve = ["--config", str(config), "--workers", "2"]
        proc = subprocess.Popen(
            [sys.executable, "-c", ACTIVATE, str(listener.fileno()), *serve],
            cwd=ROOT,
            pass_fds=(listener.fileno(),),
            stderr=stderr,
        )
        try:
            until(lambda: "with 2 workers" in log.read_text(), "the workers to be ready")
            # The daemon bound nothing of its own: both workers answer on our socket.
            seen = seen_workers(url, lambda s: True)
            assert {s["worker"]["index"] for s in seen.values()} == {1, 2}
            assert ask(url) == "one two"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=LIMIT) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
            for pid in re.findall(r"worker \d started \(pid (\d+)\)", log.read_text()):
                if alive(int(pid)):
                    os.kill(int(pid), signal.SIGKILL)
