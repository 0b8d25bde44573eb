"""The daemon as a process: SIGTERM drains a stream in flight, then exits 0."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx2

ROOT = Path(__file__).parents[3]
CONFIG = """
[server]
listen = ["127.0.0.1:0"]
drain_timeout = "20s"

[providers.slowly]
kind = "simulated"
latency = { median = "10ms", p99 = "10ms" }
tokens_per_second = 10

[routes.chat]
fallback = ["slowly:echo"]
"""


def test_sigterm_lets_a_stream_in_flight_finish(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    config.write_text(CONFIG)
    with subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--config", str(config)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stderr is not None
            url = None
            for line in proc.stderr:
                if match := re.search(r"serving on (http://\S+)", line):
                    url = match.group(1)
                    break
            assert url is not None
            words = "one two three four five six seven eight"
            body = {
                "model": "chat",
                "stream": True,
                "messages": [{"role": "user", "content": words}],
            }
            events: list[str] = []
            with (
                httpx2.Client(base_url=url, trust_env=False, timeout=30) as client,
                client.stream("POST", "/v1/chat/completions", json=body) as response,
            ):
                for line in response.iter_lines():
                    if line.startswith("data: "):
                        events.append(line[6:])
                        if len(events) == 1:  # the stream has begun: now stop the daemon
                            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0
            log = proc.stderr.read()
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert events[-1] == "[DONE]"  # finished, not cut
    text = "".join(
        json.loads(e)["choices"][0]["delta"].get("content") or ""
        for e in events[:-1]
        if '"choices":[{' in e
    )
    assert text == words
    assert "received SIGTERM: draining" in log


def test_sigterm_ends_an_open_status_page_stream_and_does_not_wait_for_it(
    tmp_path: Path,
) -> None:
    """An open ``/admin/events`` stream ends cleanly at SIGTERM; the drain, ten minutes
    here, would otherwise wait for it."""
    config = tmp_path / "router.toml"
    config.write_text(CONFIG.replace('drain_timeout = "20s"', 'drain_timeout = "10m"'))
    with subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--config", str(config)],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            assert proc.stderr is not None
            url = None
            for line in proc.stderr:
                if match := re.search(r"serving on (http://\S+)", line):
                    url = match.group(1)
                    break
            assert url is not None
            kinds = []
            with (
                httpx2.Client(base_url=url, trust_env=False, timeout=60) as client,
                client.stream("GET", "/admin/events") as response,
            ):
                for line in response.iter_lines():  # ends without error: the last chunk came
                    if line.startswith("event: "):
                        kinds.append(line[7:])
                        if len(kinds) == 1:
                            proc.send_signal(signal.SIGTERM)
                        # A sample a second: this many means the stream outlived the stop.
                        assert len(kinds) < 30, "the event stream went on after SIGTERM"
            assert proc.wait(timeout=60) == 0  # not after the ten minutes of drain
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert kinds[0] == "hello"
