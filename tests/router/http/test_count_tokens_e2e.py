"""``POST /v1/messages/count_tokens`` with the anthropic SDK: counted by Anthropic
targets, estimated for routes without one."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import anthropic
import httpx2
import pytest

from tests.fakes.anthropic_upstream import FakeAnthropic, fake_count
from tests.router.http.test_messages_ingress_e2e import HI, WEATHER, anthropic_client

if TYPE_CHECKING:
    from anthropic.types import MessageParam

    from tests.conftest import RouterFactory


def config(anthropic_url: str) -> str:
    return f"""
[providers.sim]
kind = "simulated"

[providers.claude]
kind = "anthropic"
base_url = "{anthropic_url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[routes.claude]
fallback = ["claude:claude-sonnet-4-5"]

[routes.mixed]
fallback = ["sim:echo", "claude:fail-500", "claude:claude-haiku-4-5"]

[routes.local]
fallback = ["sim:echo"]
"""


async def test_an_anthropic_target_counts_the_body_as_the_client_sent_it(
    start_router: RouterFactory, fake_anthropic: FakeAnthropic
) -> None:
    async with start_router(config(fake_anthropic.url)) as url, anthropic_client(url) as client:
        counted = await client.messages.count_tokens(
            model="claude", messages=HI, tools=WEATHER, system="be brief"
        )
    sent = fake_anthropic.received[-1]
    assert sent.path == "/v1/messages/count_tokens"
    assert sent.body["model"] == "claude-sonnet-4-5"  # only the model is replaced
    assert sent.body["system"] == "be brief"
    assert sent.body["tools"] == WEATHER
    assert counted.input_tokens == fake_count(sent.body)


async def test_targets_are_tried_in_the_routes_order_past_a_failing_one(
    start_router: RouterFactory, fake_anthropic: FakeAnthropic
) -> None:
    async with start_router(config(fake_anthropic.url)) as url, anthropic_client(url) as client:
        raw = await client.messages.with_raw_response.count_tokens(model="mixed", messages=HI)
    counted = await raw.parse()
    assert [r.body["model"] for r in fake_anthropic.received] == [
        "fail-500",
        "claude-haiku-4-5",
    ]
    assert counted.input_tokens == fake_count(fake_anthropic.received[-1].body)
    assert "x-router-estimated" not in raw.headers


async def test_a_route_without_an_anthropic_target_gets_an_estimate_that_says_so(
    start_router: RouterFactory, fake_anthropic: FakeAnthropic
) -> None:
    long: list[MessageParam] = [{"role": "user", "content": "word " * 400}]
    async with start_router(config(fake_anthropic.url)) as url, anthropic_client(url) as client:
        raw = await client.messages.with_raw_response.count_tokens(
            model="local", messages=long, tools=WEATHER
        )
        short = await client.messages.count_tokens(model="local", messages=HI)
    counted = await raw.parse()
    assert raw.headers["x-router-estimated"] == "true"
    # 2,000 characters of text at ~4 a token, and the tool's JSON on top.
    assert 500 < counted.input_tokens < 500 + len(json.dumps(WEATHER)) // 2
    assert 0 < short.input_tokens < 10
    assert not fake_anthropic.received


async def test_errors_come_in_anthropics_shape(
    start_router: RouterFactory, fake_anthropic: FakeAnthropic
) -> None:
    async with start_router(config(fake_anthropic.url)) as url, anthropic_client(url) as client:
        with pytest.raises(anthropic.NotFoundError) as unknown:
            await client.messages.count_tokens(model="nowhere", messages=HI)
        with pytest.raises(anthropic.BadRequestError) as empty:
            await client.messages.count_tokens(model="claude", messages=[])
        async with httpx2.AsyncClient(base_url=url) as http:
            wrong_method = await http.get("/v1/messages/count_tokens")
    assert unknown.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
    assert "messages" in str(empty.value)
    assert wrong_method.status_code == 405
    assert wrong_method.json()["type"] == "error"
