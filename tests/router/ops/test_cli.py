"""The command line, run as a user runs it: a subprocess."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).parents[3]
EXAMPLES = sorted((ROOT / "examples").glob("*.toml"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "router", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("path", [ROOT / "router.toml", *EXAMPLES], ids=lambda p: p.name)
def test_shipped_configs_check(path: Path) -> None:
    result = run("check", str(path))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert "warning" not in result.stderr
    assert "├──" in result.stdout or "└──" in result.stdout


def test_check_reports_every_error_by_key_path(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        """
[providers.sim]
kind = "simulated"

[routes.chat]
fallbak = ["sim:echo"]

[routes.fastest]
balance = "latency"
targets = ["sim:echo", "opnai:gpt-4o"]
hedge = { after = "p9x" }
"""
    )
    result = run("check", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert "routes.chat.fallbak: unknown key" in result.stderr
    assert 'routes.fastest.hedge.after: "p9x" is not a duration or percentile' in lines


def test_check_syntax_error_names_the_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[server]\nlisten = ["127.0.0.1:8080"\n')
    result = run("check", str(bad))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "line 2" in result.stderr or "line 3" in result.stderr


def test_serve_with_a_broken_config_exits_nonzero(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[routes.chat]\nfallback = []\n")
    result = run("serve", "--config", str(bad), "--listen", "127.0.0.1:0")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "routes.chat.fallback" in result.stderr


def test_serve_answers_then_drains_on_sigterm() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "router", "serve", "--listen", "127.0.0.1:0"],
        cwd=ROOT,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        answer, log = _serve_once(proc)
    assert answer["choices"][0]["message"]["content"] == "hi"
    assert "received SIGTERM: draining" in log
    # The access line, flushed at exit.
    assert '"path":"/v1/chat/completions","status":200,"route":"sim-steady:echo"' in log


def _serve_once(proc: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    """One request to the daemon in ``proc``, then SIGTERM: its answer and its log."""
    try:
        assert proc.stderr is not None
        url = None
        for line in proc.stderr:  # the daemon logs where it listens
            if match := re.search(r"serving on (http://\S+)", line):
                url = match.group(1)
                break
        assert url is not None
        body = {"model": "sim-steady:echo", "messages": [{"role": "user", "content": "hi"}]}
        request = urllib.request.Request(
            f"{url}/v1/chat/completions", data=json.dumps(body).encode(), method="POST"
        )
        no_proxy = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with no_proxy.open(request, timeout=30) as response:
            answer = json.load(response)
        status = run("status", "--url", url)
        assert status.returncode == 0, status.stderr
        assert "ready    yes" in status.stdout
        assert re.search(r"sim-steady:echo\s+closed\s+0\s+1\s+0", status.stdout), status.stdout
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        return answer, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_status_of_no_daemon_is_a_clear_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: refused
        result = run("status", "--url", f"http://127.0.0.1:{port}")
    assert result.returncode == 1
    assert "cannot reach" in result.stderr
    assert "Traceback" not in result.stderr


def test_check_warns_of_an_unreachable_timeout_and_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(
        '[providers.sim]\nkind = "simulated"\n\n'
        '[routes.chat]\nfallback = ["sim:a", "sim:b"]\ntimeout = "10s"\nfirst_token_timeout = "10s"\n'
    )
    result = run("check", str(path))
    assert result.returncode == 0, result.stderr
    assert "OK" in result.stdout
    assert result.stderr.splitlines() == [
        "warning: routes.chat: first_token_timeout (10s) is not shorter than timeout (10s): "
        "a silent target takes the whole timeout and the next target is never tried"
    ]


def test_check_warns_of_an_unverified_upstream_and_still_passes(tmp_path: Path) -> None:
    path = tmp_path / "router.toml"
    path.write_text(
        '[providers.lab]\nkind = "openai_compatible"\nbase_url = "https://lab.test/v1"\n'
        "tls = { verify = false }\n\n"
        '[routes.chat]\nfallback = ["lab:m"]\n'
    )
    result = run("check", str(path))
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == [
        "warning: providers.lab.tls.verify = false: the upstream's certificate is NOT checked;"
        " anyone on the path can read and change the traffic, keys included"
    ]
