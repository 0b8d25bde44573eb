"""The usage ledger across restarts, run as a user runs the daemon (a subprocess): a
SIGKILL loses no spend that reached the ledger, so an exhausted budget stays exhausted
without any state file; SIGTERM writes the last rows before the daemon exits."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).parents[3]
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
LOOPBACK = ("--listen", "127.0.0.1:0")
ENV = {**os.environ, "TEAM_KEY": "team-key-1"}


def write_config(tmp_path: Path, db: Path) -> Path:
    config = tmp_path / "router.toml"
    config.write_text(
        f"""
[server]
usage_db = "{db}"
access_log = false

[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]

[prices]
"sim:echo" = {{ input = 1_000_000, output = 1_000_000 }}

[keys.team]
secret = "env:TEAM_KEY"
budget = {{ usd = 1, per = "day" }}
"""
    )
    return config


@contextmanager
def daemon(config: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The daemon serving ``config`` on a free loopback port, and its URL."""
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
            assert url is not None, "the daemon did not start"
            yield proc, url
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


def ask(url: str) -> tuple[int, dict[str, Any]]:
    body = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
    request = urllib.request.Request(
        f"{url}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"authorization": "Bearer team-key-1", "content-type": "application/json"},
        method="POST",
    )
    try:
        with NO_PROXY.open(request, timeout=30) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        return exc.code, json.load(exc)


def spent_today(url: str) -> float:
    with NO_PROXY.open(f"{url}/admin/status", timeout=30) as response:
        return float(json.load(response)["traffic"]["budgets"]["team"]["spent_day"])


def charged_rows(db: Path) -> list[float]:
    """The costs of the answered requests the ledger holds."""
    try:
        connection = sqlite3.connect(f"{db.as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return []
    try:
        found = connection.execute("SELECT cost_usd FROM requests WHERE status = 200")
        return [cost for (cost,) in found]
    except sqlite3.Error:  # not created yet
        return []
    finally:
        connection.close()


def test_a_sigkill_keeps_an_exhausted_budget_exhausted(tmp_path: Path) -> None:
    db = tmp_path / "usage.db"
    config = write_config(tmp_path, db)
    with daemon(config) as (proc, url):
        status, _ = ask(url)
        assert status == 200
        status, refused = ask(url)
        assert status == 429  # one answer spent the $1 budget
        assert refused["error"]["code"] == "budget_exhausted"
        spent = spent_today(url)
        assert spent > 1
        started = time.monotonic()
        while charged_rows(db) != [spent] and time.monotonic() - started < 10:
            time.sleep(0.02)  # a hang guard: the row is written within a second
        proc.send_signal(signal.SIGKILL)  # no chance to write anything at exit
        proc.wait(timeout=30)
    assert charged_rows(db) == [spent]
    assert not (tmp_path / "state.json").exists()  # no state file: the ledger alone
    with daemon(config) as (proc, url):
        assert spent_today(url) == spent
        status, refused = ask(url)
        assert status == 429
        assert refused["error"]["code"] == "budget_exhausted"
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)


def test_sigterm_writes_the_last_rows_before_the_daemon_exits(tmp_path: Path) -> None:
    db = tmp_path / "usage.db"
    config = write_config(tmp_path, db)
    with daemon(config) as (proc, url):
        assert ask(url)[0] == 200
        for _ in range(3):
            assert ask(url)[0] == 429
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    connection = sqlite3.connect(db)
    try:
        statuses = [s for (s,) in connection.execute("SELECT status FROM requests ORDER BY id")]
    finally:
        connection.close()
    assert statuses == [200, 429, 429, 429]


def test_serve_refuses_a_usage_db_it_cannot_create(tmp_path: Path) -> None:
    db = tmp_path / "missing" / "usage.db"
    config = write_config(tmp_path, db)
    served = subprocess.run(
        [sys.executable, "-m", "router", "serve", "--config", str(config), *LOOPBACK],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=ENV,
        timeout=60,
        check=False,
    )
    assert served.returncode == 1
    assert "Traceback" not in served.stderr
    assert f"server.usage_db: {db} cannot be created: its folder" in served.stderr
