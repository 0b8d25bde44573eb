"""The daemon under a pretend systemd: notify messages on a test NOTIFY_SOCKET, and
socket activation with an inherited listening socket on fd 3."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx2

ROOT = Path(__file__).parents[3]
CONFIG = """
[server]
listen = ["{listen}"]
access_log = false

[providers.sim]
kind = "simulated"
latency = {{ median = "1ms", p99 = "2ms" }}

[routes.chat]
fallback = ["sim:echo"]
"""
HI = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def receive(sock: socket.socket, prefix: str) -> str:
    """The next notify datagram that starts with ``prefix`` (others skipped)."""
    while True:
        message = sock.recv(4096).decode()
        if message.startswith(prefix):
            return message


def test_notify_ready_reloading_stopping(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text(CONFIG.format(listen="127.0.0.1:0"))
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(tmp_path / "notify.sock"))
    notify.settimeout(30)  # a hang guard
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify.sock")}
    with (
        notify,
        subprocess.Popen(
            [sys.executable, "-m", "router", "serve", "--config", str(config)],
            cwd=ROOT,
            env=env,
            stderr=subprocess.DEVNULL,
        ) as proc,
    ):
        try:
            ready = receive(notify, "READY=1")
            assert "STATUS=serving on http://127.0.0.1:" in ready
            proc.send_signal(signal.SIGHUP)
            reloading = receive(notify, "RELOADING=1")
            usec = int(reloading.split("MONOTONIC_USEC=")[1].split("\n")[0])
            now = time_monotonic_usec()
            assert 0 <= now - usec < 30_000_000
            assert receive(notify, "READY=1").startswith("READY=1\nSTATUS=serving, rules")
            proc.send_signal(signal.SIGTERM)
            assert "draining" in receive(notify, "STOPPING=1")
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()


def time_monotonic_usec() -> int:
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000


# Puts the listening socket on fd 3 and execs the daemon with LISTEN_PID set to its own
# pid, as systemd does (exec keeps the pid).
ACTIVATE = textwrap.dedent(
    """
    import os, sys
    fd = int(sys.argv[1])
    os.dup2(fd, 3)
    os.environ["LISTEN_PID"] = str(os.getpid())
    os.environ["LISTEN_FDS"] = "1"
    os.execv(sys.executable, [sys.executable, "-m", "router", "serve", "--config", sys.argv[2]])
    """
)


def test_socket_activation_serves_on_the_inherited_socket(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text(CONFIG.format(listen="fd:3"))
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    port = listener.getsockname()[1]
    with (
        listener,
        subprocess.Popen(
            [sys.executable, "-c", ACTIVATE, str(listener.fileno()), str(config)],
            cwd=ROOT,
            pass_fds=(listener.fileno(),),
            stderr=subprocess.PIPE,
            text=True,
        ) as proc,
    ):
        try:
            assert proc.stderr is not None
            for line in proc.stderr:
                if "serving on" in line:
                    break
            # The daemon never bound a port of its own: it answers on ours.
            response = httpx2.post(
                f"http://127.0.0.1:{port}/v1/chat/completions", json=HI, trust_env=False
            )
            assert response.status_code == 200
            assert response.json()["choices"][0]["message"]["content"] == "hi"
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
