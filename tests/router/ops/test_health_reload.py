"""Start and reload agree, over loopback: several providers with active health checks
start, and a reload into such rules is answered and then served; what a start would
refuse, a reload refuses whole while the old rules keep serving."""

from __future__ import annotations

import logging
import os
import signal
from contextlib import AsyncExitStack
from functools import partial
from typing import TYPE_CHECKING

import httpx2
import trio

from router import run_daemon
from tests.fakes.openai_upstream import FakeOpenAI, running
from tests.router.ops.test_reload import logged

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

HI = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}

TWO_PROBED = """
[server]
listen = ["127.0.0.1:0"]
access_log = false
watch = false

[providers.one]
kind = "openai"
base_url = "{one}/v1"
health = {{ interval = "{interval}", timeout = "5s" }}

[providers.two]
kind = "openai"
base_url = "{two}/v1"
health = {{ interval = "{interval}", timeout = "5s" }}

[routes.chat]
fallback = ["{target}"]
"""


async def probes_reach(fake: FakeOpenAI, count: int) -> None:
    """Until ``fake`` has had ``count`` health probes (GETs of the model list)."""
    while True:
        fake.request_seen = trio.Event()
        if [r.method for r in fake.received].count("GET") >= count:
            return
        await fake.request_seen.wait()


async def test_two_probed_providers_start_serve_and_reload(tmp_path: Path) -> None:
    fakes = [FakeOpenAI(), FakeOpenAI()]
    async with AsyncExitStack() as stack:
        one, two = [await stack.enter_async_context(running(fake)) for fake in fakes]
        path = tmp_path / "router.toml"
        path.write_text(TWO_PROBED.format(one=one, two=two, interval="1h", target="one:m"))
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(run_daemon, str(path)))
            async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:
                with trio.fail_after(10):  # a hang guard
                    answer = await client.post("/v1/chat/completions", json=HI)
                    assert answer.status_code == 200, answer.text
                    assert answer.headers["x-router-target"] == "one:m"
                    for fake in fakes:  # both probed at start (the first probe is at once)
                        await probes_reach(fake, 1)
                    # A reload into rules that probe both again (a new interval).
                    changed = TWO_PROBED.format(one=one, two=two, interval="2h", target="two:m")
                    path.write_text(changed)
                    result = await client.post("/admin/reload")
                    assert result.status_code == 200
                    assert result.json()["ok"] is True
                    assert result.json()["changed"] is True
                    for fake in fakes:  # both probe loops restarted: probed again at once
                        await probes_reach(fake, 2)
                    # The daemon still serves, on the new rules.
                    answer = await client.post("/v1/chat/completions", json=HI)
                    assert answer.status_code == 200, answer.text
                    assert answer.headers["x-router-target"] == "two:m"
                    assert (await client.get("/healthz")).status_code == 200
            nursery.cancel_scope.cancel()


async def test_a_probe_that_raises_a_foreign_error_counts_as_a_failure(tmp_path: Path) -> None:
    """A probe's unexpected exception is the provider's failure, never the daemon's end."""
    from router.routing._health import probe_once
    from rules import HealthCheck

    class Broken:
        async def probe(self) -> None:
            await trio.lowlevel.checkpoint()
            raise ValueError("Invalid header value b'Bearer sk-secret\\n'")

    error = await probe_once(Broken(), HealthCheck())  # type: ignore[arg-type]
    assert error is not None
    assert "ValueError" in error.message
    assert "sk-secret" not in error.message  # a foreign message may hold a key


async def test_a_probe_loop_that_fails_ends_alone(caplog: pytest.LogCaptureFixture) -> None:
    """Whatever escapes a provider's probe loop stops that loop, never the daemon, and
    is logged by type only."""
    from router.ops._daemon import _scoped

    async def failing() -> None:
        await trio.lowlevel.checkpoint()
        raise KeyError("sk-secret")

    with caplog.at_level(logging.ERROR, logger="llm_router"):
        await _scoped(trio.CancelScope(), failing, "up")
    assert caplog.messages == ["health probes of provider up stopped: KeyError"]


SIM = """
[server]
listen = ["127.0.0.1:0"]
access_log = false
watch = false
{server}

[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]
"""


async def test_a_reload_that_start_would_refuse_changes_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An admin key that cannot be read stops a start; a reload into it is refused
    whole (it used to swap the rules in and then fail with a 500)."""
    monkeypatch.delenv("LLM_ROUTER_UNSET_ADMIN_KEY", raising=False)
    path = tmp_path / "router.toml"
    path.write_text(SIM.format(server=""))
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, str(path)))
        async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:
            before = (await client.get("/admin/status")).json()["rules"]
            path.write_text(SIM.format(server='admin_key = "env:LLM_ROUTER_UNSET_ADMIN_KEY"'))
            result = await client.post("/admin/reload")
            assert result.status_code == 422
            assert result.json()["ok"] is False
            assert any("env:LLM_ROUTER_UNSET_ADMIN_KEY" in e for e in result.json()["errors"])
            assert (await client.get("/admin/status")).json()["rules"] == before
            answer = await client.post("/v1/chat/completions", json=HI)
            assert answer.status_code == 200
        nursery.cancel_scope.cancel()


async def test_an_unexpected_failure_of_a_reload_by_signal_is_a_refusal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A build that raises something unforeseen (a plugin's adapter, say) is refused
    like an invalid file; it used to end the daemon when the reload came by SIGHUP."""
    from router.ops import _reload

    path = tmp_path / "router.toml"
    path.write_text(SIM.format(server=""))

    def broken(*args: object, **kwargs: object) -> object:
        raise ValueError("Invalid header value b'Bearer sk-secret\\n'")

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, str(path)))
        async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:
            monkeypatch.setattr(_reload, "build_runtime", broken)
            path.write_text(SIM.format(server='log_level = "warning"'))
            with logged("reload (SIGHUP) refused") as refused:
                os.kill(os.getpid(), signal.SIGHUP)
                with trio.fail_after(10):  # a hang guard
                    await refused.wait()
            assert "building the new rules failed: ValueError at" in caplog.text
            assert "sk-secret" not in caplog.text
            status = (await client.get("/admin/status")).json()["reload"]
            assert status["counts"]["failure"] == 1
            answer = await client.post("/v1/chat/completions", json=HI)
            assert answer.status_code == 200
        nursery.cancel_scope.cancel()
