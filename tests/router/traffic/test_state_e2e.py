"""The state file as the daemon keeps it: run as a user runs it, a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[3]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


LOOPBACK = ("--listen", "127.0.0.1:0")
ENV = {**os.environ, "TEAM_KEY": "team-key-1"}


def router(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=timeout,
        check=False,
    )


def write_config(tmp_path: Path, state: Path) -> Path:
    config = tmp_path / "router.toml"
    config.write_text(
        f"""
[server]
state_file = "{state}"
access_log = false

[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]

[prices]
"sim:echo" = {{ input = 1_000_000, output = 1_000_000 }}

[keys.team]
secret = "env:TEAM_KEY"
budget = {{ usd = 1000, per = "day" }}
"""
    )
    return config


def test_a_damaged_state_file_stops_serve_and_fails_check(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(b'{"budgets": {"team": {"day": [2027, 1')  # cut short by a crash
    config = write_config(tmp_path, state)
    served = router("serve", "--config", str(config), "--listen", "127.0.0.1:0", timeout=20)
    checked = router("check", str(config))
    for result in (served, checked):
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert f"server.state_file: {state} is not valid JSON" in result.stderr
        assert "Refusing to start" in result.stderr
    state.unlink()  # no file at all: a first start
    assert router("check", str(config)).returncode == 0


def _ask(url: str) -> dict[str, Any]:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"authorization": "Bearer team-key-1", "content-type": "application/json"},
        method="POST",
    )
    with NO_PROXY.open(request, timeout=30) as response:
        answer: dict[str, Any] = json.load(response)
    return answer


def _spent_on_disk(state: Path) -> float:
    try:
        return float(json.loads(state.read_bytes())["budgets"]["team"]["day_usd"])
    except (FileNotFoundError, KeyError):
        return 0.0


def test_spend_reaches_the_disk_within_a_second_so_a_sigkill_keeps_it(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    config = write_config(tmp_path, state)
    with subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--config", str(config), *LOOPBACK],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    ) as proc:
        try:
            assert proc.stderr is not None
            url = None
            for line in proc.stderr:  # the daemon logs where it listens
                if match := re.search(r"serving on (http://\S+)", line):
                    url = match.group(1)
                    break
            assert url is not None
            _ask(url)
            charged = time.monotonic()
            with NO_PROXY.open(f"{url}/admin/status", timeout=30) as response:
                spent = json.load(response)["traffic"]["budgets"]["team"]["spent_day"]
            assert spent > 0
            # Written at once (the first change after a quiet second); a hang guard of
            # 3 s, where the old writer took up to 10.
            while _spent_on_disk(state) != spent and time.monotonic() - charged < 3:
                time.sleep(0.01)
            proc.send_signal(signal.SIGKILL)  # no chance to save at exit
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert _spent_on_disk(state) == spent
