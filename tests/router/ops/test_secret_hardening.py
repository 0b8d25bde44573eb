"""Secrets a careless config or a misbehaving upstream could leak, over loopback HTTP.

- A key with a stray character (a CRLF env file, a trailing space) is refused at load:
  by ``serve``, ``check`` and a reload, naming the reference and never the value.
- A transport exception quoting a header (a key) reaches neither the client's error,
  nor ``/admin/status``, nor the log, on either transport.
- An upstream's echo of part of a key (prefix, suffix, middle) is redacted.
- Every log record is scrubbed of the daemon's secrets; dependencies that print
  headers at DEBUG stay quiet.
"""

from __future__ import annotations

import logging
import subprocess
import sys
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import hpack
import httpx2
import openai
import pytest
import trio

from adapters import provider_kinds
from router import App, run_daemon
from router.ops._assemble import build_runtime
from rules import ConfigError, SecretRef, load_config
from tests.conftest import RouterFactory, openai_client
from tests.fakes._base import Received, Reply, running
from tests.fakes.openai_upstream import FakeOpenAI

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

KEY = "sk-LEAKY-0123456789abcdefXYZ"
CANARY = "LEAKY"
HI: Any = [{"role": "user", "content": "hi"}]

CONFIG = """
[server]
access_log = false
{server}

[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{url}"
api_key = "{ref}"
{provider}

[routes.chat]
fallback = ["up:gpt-4o"]
"""


def config(url: str, ref: str = "env:LEAKY_KEY", server: str = "", provider: str = "") -> str:
    return CONFIG.format(url=url, ref=ref, server=server, provider=provider)


def pieces(text: str, secret: str = KEY) -> list[str]:
    """The pieces of 8 characters of ``secret`` found in ``text``."""
    return [secret[i : i + 8] for i in range(len(secret) - 7) if secret[i : i + 8] in text]


# --- refused at load ------------------------------------------------------------------------


@pytest.mark.parametrize("value", [KEY + "\r", KEY + " ", KEY + "\n", "x" + KEY[:5] + "\t" + KEY])
async def test_a_key_with_a_stray_character_stops_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LEAKY_KEY", value)
    path = tmp_path / "router.toml"
    path.write_text(config("http://127.0.0.1:9/v1"))
    async with trio.open_nursery() as nursery:
        with pytest.raises(ConfigError) as info:
            await nursery.start(partial(run_daemon, str(path), "127.0.0.1:0"))
        nursery.cancel_scope.cancel()
    message = str(info.value)
    assert message.startswith("providers.up.api_key: secret env:LEAKY_KEY: the value has")
    assert not pieces(message)


@pytest.mark.parametrize("content", [KEY + "\r\n", KEY + " \n", KEY + "\n\n"])
def test_check_refuses_a_key_file_with_a_stray_character(tmp_path: Path, content: str) -> None:
    (tmp_path / "up.key").write_bytes(content.encode())
    (tmp_path / "router.toml").write_text(config("http://127.0.0.1:9/v1", ref="file:up.key"))
    result = run_cli("check", str(tmp_path / "router.toml"))
    assert result.returncode == 1
    assert result.stderr.startswith("providers.up.api_key: secret file:up.key: the value has")
    assert not pieces(result.stdout + result.stderr)


def test_check_accepts_one_trailing_newline_and_warns_of_a_world_readable_file(
    tmp_path: Path,
) -> None:
    """A secret this machine cannot read (another's environment) is no error of check's."""
    (tmp_path / "up.key").write_text(KEY + "\n")
    (tmp_path / "up.key").chmod(0o644)
    server = 'api_keys = ["env:SOMEWHERE_ELSE"]'
    (tmp_path / "router.toml").write_text(config("http://x/v1", "file:up.key", server))
    result = run_cli("check", str(tmp_path / "router.toml"))
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "up.key"
    assert result.stderr.splitlines() == [
        f"warning: providers.up.api_key: secret file:up.key: {key_file} is readable by every"
        f" user (chmod o-r {key_file})",
    ]
    assert not pieces(result.stdout + result.stderr)


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"}
    command = [sys.executable, "-m", "router", *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)


async def test_a_reload_into_a_key_with_a_stray_character_is_refused(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> None:
    key_file = tmp_path / "up.key"
    key_file.write_text(KEY + "\n")
    path = tmp_path / "router.toml"
    path.write_text(config(fake_openai.url, "file:up.key", "watch = false"))
    async with daemon(path) as client:
        key_file.write_text(KEY + "\r\n")
        answer = (await client.post("/admin/reload")).json()
        assert answer["ok"] is False
        assert answer["errors"][0].startswith("providers.up.api_key: secret file:up.key: the")
        assert not pieces(str(answer))
        response = await client.post("/v1/chat/completions", json={"model": "chat", "messages": HI})
        assert response.status_code == 200  # the rules in force stay
    assert fake_openai.received[-1].headers["authorization"] == f"Bearer {KEY}"


@asynccontextmanager
async def daemon(path: Path) -> AsyncIterator[httpx2.AsyncClient]:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, str(path)))
        async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:
            yield client
        nursery.cancel_scope.cancel()


# --- a transport exception quoting the key --------------------------------------------------


@pytest.mark.parametrize("transport", ["h11", "httpx"])
async def test_a_transport_exception_quoting_the_key_goes_nowhere(
    tmp_path: Path,
    fake_openai: FakeOpenAI,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    transport: str,
) -> None:
    """A key that got past the load checks (the check itself is bypassed here)."""
    caplog.set_level(logging.DEBUG)
    pool = f'pool = {{ transport = "{transport}" }}'
    path = tmp_path / "router.toml"
    path.write_text(config(fake_openai.url, provider=pool))
    loaded = load_config(path, kinds=provider_kinds())
    # h11 refuses it as a header value.
    monkeypatch.setattr(SecretRef, "resolve", lambda *_, **__: KEY + "\r")
    app: Any = App(build_runtime(loaded).runtime)
    seen = []
    async with running(app) as url, openai_client(url) as client:
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as caught:
                await client.chat.completions.create(model="chat", messages=HI, stream=stream)
            assert caught.value.status_code == 502
            seen.append(caught.value.response.text)
        async with httpx2.AsyncClient(trust_env=False) as http:
            status = (await http.get(f"{url}/admin/status")).text
    assert "NetworkError" in status  # the failure is there, only not its text
    assert "could not be sent" in seen[0]
    assert not fake_openai.received  # nothing was sent
    for text in (*seen, status, caplog.text):
        assert not pieces(text), text


# --- partial echoes -------------------------------------------------------------------------


class PartialEcho(FakeOpenAI):
    """Echoes pieces of the key it got, as providers that mask it in part do."""

    def failure(self, code: str, got: Received) -> Reply:
        key = got.headers.get("authorization", "").removeprefix("Bearer ")
        reply = super().failure(code, got)
        message = f"bad key {key[:10]}****{key[-9:]}, found near {key[7:19]}"
        reply.body["error"]["message"] = message
        return reply


async def test_an_echo_of_part_of_the_key_is_redacted(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LEAKY_KEY", "LEAKYplain-0123456789-abcdefghij")  # not key-shaped
    secret = "LEAKYplain-0123456789-abcdefghij"
    async with running(PartialEcho()) as base:
        seen = await partial_echoes(start_router, f"{base}/v1")
    for text in seen:
        assert "bad key [redacted]****[redacted], found near [redacted]" in text
        assert not pieces(text, secret), text


async def partial_echoes(start_router: RouterFactory, upstream: str) -> list[str]:
    seen = []
    async with start_router(config(upstream)) as url, openai_client(url) as client:
        for model in ("up:fail-400", "up:fail-500"):
            for stream in (False, True):
                with pytest.raises(openai.APIStatusError) as caught:
                    await client.chat.completions.create(model=model, messages=HI, stream=stream)
                seen.append(caught.value.response.text)
    return seen


# --- logs -------------------------------------------------------------------------------------


async def test_every_log_record_is_scrubbed_while_the_daemon_runs(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Whoever logs (a catch-all, a dependency), whatever the record holds."""
    monkeypatch.setenv("LEAKY_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    async with start_router(config(fake_openai.url)):
        try:
            raise RuntimeError(f"header value {KEY[3:17]!r} refused")
        except RuntimeError:
            logging.getLogger("hypercorn.error").exception("Error in ASGI Framework")
        logging.getLogger("llm_router").warning("echo: %s", KEY[-12:])
    assert "Error in ASGI Framework" in caplog.text
    assert "RuntimeError: header value '[redacted]' refused" in caplog.text
    assert "echo: [redacted]" in caplog.text
    assert not pieces(caplog.text)


async def test_at_debug_no_dependency_prints_headers(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("LEAKY_KEY", KEY)
    caplog.set_level(logging.DEBUG)
    pool = 'pool = { transport = "httpx" }'
    toml = config(fake_openai.url, server='log_level = "debug"', provider=pool)
    async with start_router(toml) as url, openai_client(url) as client:
        await client.chat.completions.create(model="chat", messages=HI)
        # HTTP/2's header compression logs each header it encodes, at DEBUG.
        hpack.Encoder().encode([(b"authorization", f"Bearer {KEY}".encode())])
    assert fake_openai.received[-1].headers["authorization"] == f"Bearer {KEY}"
    assert logging.getLogger().isEnabledFor(logging.DEBUG)
    chatty = ("hpack", "h2", "h11", "httpcore2", "httpx2", "hypercorn")
    below_info = [
        r for r in caplog.records if r.levelno < logging.INFO and r.name.split(".")[0] in chatty
    ]
    assert below_info == []
    assert not pieces(caplog.text)
