"""Client keys over loopback, with the official SDKs as clients."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

import anthropic
import httpx2
import openai
import pytest

from tests.conftest import RouterFactory, openai_client

if TYPE_CHECKING:
    from anthropic.types import MessageParam
    from openai.types.chat import ChatCompletionMessageParam

TEAM_KEY = "team-a-key-0123456789"
CONFIG = f"""
[server]
api_keys = ["env:ROUTER_KEY"]

[providers.sim]
kind = "simulated"
latency = {{ median = "1ms", p99 = "2ms" }}

[routes.chat]
fallback = ["sim:echo"]

[routes.internal]
fallback = ["sim:echo"]

[keys.team-a]
sha256 = "{hashlib.sha256(TEAM_KEY.encode()).hexdigest()}"
routes = ["chat"]
"""
HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
HI_ANTHROPIC: list[MessageParam] = [{"role": "user", "content": "hi"}]


@pytest.fixture(autouse=True)
def router_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_KEY", "server-key-abcdef")


async def test_keys_are_required_and_checked(start_router: RouterFactory) -> None:
    async with start_router(CONFIG) as url:
        async with openai_client(url) as anonymous:  # sends "unused" as its key
            with pytest.raises(openai.AuthenticationError) as wrong:
                await anonymous.chat.completions.create(model="chat", messages=HI)
        client = openai.AsyncOpenAI(
            base_url=f"{url}/v1", api_key="server-key-abcdef", max_retries=0
        )
        answer = await client.chat.completions.create(model="internal", messages=HI)
        await client.close()
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
            missing = await raw.post("/v1/chat/completions", json={"model": "chat", "messages": HI})
            health = await raw.get("/healthz")
            metrics = await raw.get("/metrics")
    assert wrong.value.status_code == 401
    assert "not valid" in wrong.value.message
    assert answer.choices[0].message.content == "hi"
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert (health.status_code, metrics.status_code) == (200, 200)  # no key needed there


async def test_a_key_is_held_to_its_routes(start_router: RouterFactory) -> None:
    async with start_router(CONFIG) as url:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=TEAM_KEY, max_retries=0)
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=HI)
        with pytest.raises(openai.PermissionDeniedError, match="may not use 'internal'"):
            await client.chat.completions.create(model="internal", messages=HI)
        await client.close()
    assert raw.http_response.status_code == 200


async def test_anthropic_clients_send_x_api_key(start_router: RouterFactory) -> None:
    async with start_router(CONFIG) as url:
        good = anthropic.AsyncAnthropic(base_url=url, api_key=TEAM_KEY, max_retries=0)
        message = await good.messages.create(model="chat", max_tokens=10, messages=HI_ANTHROPIC)
        await good.close()
        bad = anthropic.AsyncAnthropic(base_url=url, api_key="nope", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as refused:
            await bad.messages.create(model="chat", max_tokens=10, messages=HI_ANTHROPIC)
        await bad.close()
    assert isinstance(block := message.content[0], anthropic.types.TextBlock)
    assert block.text == "hi"
    assert isinstance(body := refused.value.body, dict)
    assert body["error"]["type"] == "authentication_error"
