"""Two daemons on one Redis: one key's rpm and budget held exactly across both, a cache
hit on one for an answer the other cached, and a Redis outage that fails no request."""

from __future__ import annotations

import socket
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pytest
import trio

from router import run_daemon

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from openai.types.chat import ChatCompletionMessageParam

    from tests.fakes.openai_upstream import FakeOpenAI

    from .conftest import RedisServer

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]
COST = 12  # the fake's usage, 7 + 5 tokens, at a dollar a token


def config(
    upstream: str, redis: str, *, rpm: int = 1000, budget: float = 1000.0, model_rpm: int = 1000
) -> str:
    return f"""
[server]
# Generous bounds: the test machine may be loaded, and a slow answer is not the point.
shared_state = {{ url = "{redis}", timeout = "2s" }}
overload_lag = "30s"

[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{upstream}"
model_limits = {{ dollar = {{ rpm = {model_rpm} }} }}

[routes.chat]
fallback = ["up:dollar"]

[routes.cached]
fallback = ["up:dollar"]
cache = {{ ttl = "10m" }}

[prices]
"up:dollar" = {{ input = 1_000_000, output = 1_000_000 }}

[keys.team]
secret = "env:TEAM_KEY"
limits = {{ rpm = {rpm} }}
budget = {{ usd = {budget}, per = "day" }}
"""


@pytest.fixture(autouse=True)
def team_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "team-key-1")


@asynccontextmanager
async def two_daemons(tmp_path: Path, toml: str) -> AsyncIterator[list[str]]:
    """Two daemons of the same config, each with its own state, on one Redis."""
    urls = []
    async with trio.open_nursery() as nursery:
        for name in ("a", "b"):
            path = tmp_path / f"{name}.toml"
            path.write_text(toml)
            binds = await nursery.start(partial(run_daemon, str(path), "127.0.0.1:0"))
            urls.append(binds[0])
        try:
            yield urls
        finally:
            nursery.cancel_scope.cancel()


async def ask(url: str, route: str = "chat") -> tuple[int, dict[str, str]]:
    """One request with the SDK: its status and headers (429s are answers here)."""
    client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="team-key-1", max_retries=0)
    try:
        raw = await client.chat.completions.with_raw_response.create(
            model=route, messages=HI, max_tokens=1
        )
        return 200, dict(raw.headers)
    except openai.RateLimitError as exc:
        return 429, {**dict(exc.response.headers), "code": str(exc.code)}
    finally:
        await client.close()


async def status(url: str) -> dict[str, Any]:
    async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
        report: dict[str, Any] = (await raw.get("/admin/status")).json()
    return report


async def test_two_daemons_hold_one_keys_rpm_exactly(
    tmp_path: Path, fake_openai: FakeOpenAI, redis_server: RedisServer
) -> None:
    async with two_daemons(tmp_path, config(fake_openai.url, redis_server.url, rpm=5)) as urls:
        answers = [await ask(urls[i % 2]) for i in range(8)]
    assert [status for status, _ in answers] == [200] * 5 + [429] * 3
    assert {h["code"] for _, h in answers[5:]} == {"key_rate_limited"}
    assert all(0 < float(h["retry-after"]) <= 60 for _, h in answers[5:])


async def test_two_daemons_hold_one_models_rpm_exactly(
    tmp_path: Path, fake_openai: FakeOpenAI, redis_server: RedisServer
) -> None:
    toml = config(fake_openai.url, redis_server.url, model_rpm=3)
    async with two_daemons(tmp_path, toml) as urls:
        answers = [await ask(urls[i % 2]) for i in range(6)]
    assert [status for status, _ in answers] == [200] * 3 + [429] * 3
    assert len(fake_openai.received) == 3
    assert all(0 < float(h["retry-after"]) <= 60 for _, h in answers[3:])


async def test_two_daemons_hold_one_budget_exactly(
    tmp_path: Path, fake_openai: FakeOpenAI, redis_server: RedisServer
) -> None:
    toml = config(fake_openai.url, redis_server.url, budget=3 * COST)
    async with two_daemons(tmp_path, toml) as urls:
        answers = [await ask(urls[i % 2]) for i in range(6)]
        spent = [(await status(url))["traffic"]["budgets"]["team"]["spent_day"] for url in urls]
    assert [status for status, _ in answers] == [200] * 3 + [429] * 3
    assert {h["code"] for _, h in answers[3:]} == {"budget_exhausted"}
    assert len(fake_openai.received) == 3
    assert spent == [3 * COST, 3 * COST]  # each daemon sees what both spent


async def test_an_answer_cached_by_one_daemon_is_a_hit_on_the_other(
    tmp_path: Path, fake_openai: FakeOpenAI, redis_server: RedisServer
) -> None:
    async with two_daemons(tmp_path, config(fake_openai.url, redis_server.url)) as urls:
        first = await ask(urls[0], "cached")
        second = await ask(urls[1], "cached")
    assert first[1]["x-router-cache"] == "miss"
    assert second[1]["x-router-cache"] == "hit"
    assert len(fake_openai.received) == 1


async def wait_for_state(url: str, state: str) -> dict[str, Any]:
    with trio.fail_after(15):
        # The link reconnects on its own, in real time, in another daemon's task.
        while (report := await status(url))["shared_state"]["state"] != state:  # noqa: ASYNC110
            await trio.sleep(0.05)
    shared: dict[str, Any] = report["shared_state"]
    return shared


async def test_a_redis_outage_fails_no_request_and_is_shown(
    tmp_path: Path, fake_openai: FakeOpenAI, redis_server: RedisServer
) -> None:
    async with two_daemons(tmp_path, config(fake_openai.url, redis_server.url)) as urls:
        before = [await ask(url) for url in urls]
        assert (await status(urls[0]))["shared_state"]["state"] == "ok"
        redis_server.stop()
        during = [await ask(url) for url in urls * 3]
        down = await wait_for_state(urls[0], "degraded")
        await redis_server.start()
        up = await wait_for_state(urls[0], "ok")
        after = [await ask(url) for url in urls]
        metrics = await _metrics(urls[0])
    assert [s for s, _ in before + during + after] == [200] * 10
    assert down["url"] == redis_server.url.replace("/0", "/0")
    assert down["reason"]
    assert up["reason"] is None
    assert "llm_router_shared_state_up 1.0" in metrics
    assert "llm_router_shared_state_errors_total" in metrics


async def _metrics(url: str) -> str:
    async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
        return (await raw.get("/metrics")).text


async def test_a_daemon_starts_and_serves_without_redis_and_never_shows_its_password(
    tmp_path: Path,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("REDIS_PW", "s3cret-redis-password")
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    toml = config(fake_openai.url, closed).replace(
        'timeout = "2s"', 'timeout = "2s", password = "env:REDIS_PW"'
    )
    async with two_daemons(tmp_path, toml) as urls:
        answers = [await ask(url) for url in urls]
        report = await status(urls[0])
    assert [s for s, _ in answers] == [200, 200]
    assert report["shared_state"]["state"] == "degraded"
    assert report["shared_state"]["url"] == closed
    assert "s3cret" not in str(report)
    assert "s3cret" not in caplog.text
    assert "unreachable" in caplog.text
