"""The Anthropic Messages ingress: the official anthropic SDK on /v1/messages, routed by
the same rules to an OpenAI-compatible upstream and to Anthropic itself."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import anthropic
import pytest

from tests.conftest import anthropic_client as checked_client
from tests.fakes.anthropic_upstream import KEY, FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anthropic.types import MessageParam, ToolParam

    from tests.conftest import RouterFactory

HI: list[MessageParam] = [{"role": "user", "content": "hi there"}]
WEATHER: list[ToolParam] = [
    {
        "name": "get_weather",
        "description": "Weather by city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
]


@asynccontextmanager
async def anthropic_client(url: str) -> AsyncIterator[anthropic.AsyncAnthropic]:
    client = checked_client(url)
    try:
        yield client
    finally:
        await client.close()


def config(openai_url: str, anthropic_url: str = "http://127.0.0.1:9") -> str:
    return f"""
[defaults]
retries = 0

[providers.oa]
kind = "openai"
base_url = "{openai_url}"

[providers.claude]
kind = "anthropic"
base_url = "{anthropic_url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[routes.chat]
fallback = ["oa:gpt-4o"]

[routes.safe]
fallback = ["oa:fail-500", "oa:gpt-4o-mini"]

[routes.claude]
fallback = ["claude:claude-3-5-haiku-latest"]
"""


async def test_messages_to_an_openai_upstream(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, anthropic_client(url) as client:
        raw = await client.messages.with_raw_response.create(
            model="safe",
            max_tokens=100,
            system="Be brief.",
            messages=HI,
        )
        message = await raw.parse()
    assert message.type == "message"
    assert message.content[0].type == "text"
    assert message.content[0].text == "echo: hi there"
    assert message.stop_reason == "end_turn"
    assert message.model == "gpt-4o-mini-2024-08-06"  # the model that really answered
    # 7 prompt tokens of which 3 read from OpenAI's cache: Anthropic counts them apart.
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens) == (4, 5)
    assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (3, 0)
    assert raw.headers["x-router-target"] == "oa:gpt-4o-mini"
    sent = fake_openai.received[-1].body
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert sent["max_tokens"] == 100


async def test_message_stream_from_an_openai_upstream(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with (
        start_router(config(fake_openai.url)) as url,
        anthropic_client(url) as client,
        client.messages.stream(
            model="chat", max_tokens=100, messages=[{"role": "user", "content": "one two three"}]
        ) as stream,
    ):
        text = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert text == "echo: one two three"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5


async def test_tool_use_through_the_ingress(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, anthropic_client(url) as client:
        message = await client.messages.create(
            model="oa:tool-caller",
            max_tokens=100,
            tools=WEATHER,
            messages=HI,
        )
        async with client.messages.stream(
            model="oa:tool-caller",
            max_tokens=100,
            tools=WEATHER,
            messages=HI,
        ) as stream:
            streamed = await stream.get_final_message()
    for answer in (message, streamed):
        call = next(block for block in answer.content if block.type == "tool_use")
        assert call.name == "get_weather"
        assert call.input == {"city": "Paris"}
        assert answer.stop_reason == "tool_use"
    assert fake_openai.received[0].body["tools"][0]["function"]["name"] == "get_weather"


async def test_messages_to_anthropic(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    toml = config(fake_openai.url, fake_anthropic.url)
    async with start_router(toml) as url, anthropic_client(url) as client:
        message = await client.messages.create(model="claude", max_tokens=50, messages=HI)
        async with client.messages.stream(model="claude", max_tokens=50, messages=HI) as stream:
            text = "".join([t async for t in stream.text_stream])
    assert isinstance(block := message.content[0], anthropic.types.TextBlock)
    assert block.text == "echo: hi there"
    assert text == "echo: hi there"
    assert fake_anthropic.received[0].headers["x-api-key"] == KEY


async def test_errors_in_anthropic_shape(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, anthropic_client(url) as client:
        with pytest.raises(anthropic.NotFoundError) as missing:
            await client.messages.create(model="nope", max_tokens=10, messages=HI)
        with pytest.raises(anthropic.BadRequestError) as bad:
            await client.messages.create(model="chat", max_tokens=10, messages=[])
        with pytest.raises(anthropic.APIStatusError) as failed:
            await client.messages.create(model="oa:fail-500", max_tokens=10, messages=HI)
    assert body_of(missing.value)["type"] == "error"
    assert body_of(missing.value)["error"]["type"] == "not_found_error"
    assert body_of(bad.value)["error"]["type"] == "invalid_request_error"
    assert failed.value.status_code == 502
    assert body_of(failed.value)["error"]["type"] == "api_error"


def body_of(error: anthropic.APIStatusError) -> dict[str, Any]:
    """The error's JSON body (the SDK types it ``object``: it may not be JSON)."""
    assert isinstance(error.body, dict)
    return error.body


async def test_a_broken_stream_raises_in_the_sdk(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, anthropic_client(url) as client:
        with pytest.raises(anthropic.APIError, match="upstream"):
            async with client.messages.stream(
                model="oa:break-mid-stream",
                max_tokens=50,
                messages=[{"role": "user", "content": "one two three four"}],
            ) as stream:
                _ = [t async for t in stream.text_stream]


async def test_request_id_as_the_anthropic_sdk_reads_it(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, anthropic_client(url) as client:
        message = await client.messages.create(model="chat", max_tokens=10, messages=HI)
        raw = await client.messages.with_raw_response.create(
            model="chat", max_tokens=10, messages=HI
        )
        with pytest.raises(anthropic.NotFoundError) as missing:
            await client.messages.create(model="nope", max_tokens=10, messages=HI)
    assert message._request_id  # the SDK reads ``request-id``
    assert raw.headers["request-id"] == raw.headers["x-request-id"]
    assert missing.value.request_id
    assert missing.value.request_id == missing.value.response.headers["x-request-id"]


async def test_an_openai_reasoning_model_gets_max_completion_tokens(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, anthropic_client(url) as client:
        message = await client.messages.create(model="oa:o3-mini", max_tokens=100, messages=HI)
        async with client.messages.stream(
            model="oa:gpt-5-mini", max_tokens=100, messages=HI
        ) as stream:
            streamed = await stream.get_final_message()
    assert message.content[0].type == streamed.content[0].type == "text"
    for got in fake_openai.received:
        assert got.body["max_completion_tokens"] == 100
        assert "max_tokens" not in got.body


async def test_a_refusal_is_anthropics_refusal(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, anthropic_client(url) as client:
        message = await client.messages.create(model="oa:refuses", max_tokens=10, messages=HI)
        async with client.messages.stream(model="oa:refuses", max_tokens=10, messages=HI) as stream:
            streamed = await stream.get_final_message()
    for answer in (message, streamed):
        assert answer.stop_reason == "refusal"
        assert isinstance(block := answer.content[0], anthropic.types.TextBlock)
        assert block.text == FakeOpenAI.REFUSAL


async def test_a_stop_sequence_comes_back_as_anthropic_said_it(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    toml = config(fake_openai.url, fake_anthropic.url)
    async with start_router(toml) as url, anthropic_client(url) as client:
        create: Any = {"max_tokens": 50, "messages": HI, "stop_sequences": ["STOP", "END"]}
        message = await client.messages.create(model="claude:stopper", **create)
        async with client.messages.stream(model="claude:stopper", **create) as stream:
            streamed = await stream.get_final_message()
        plain = await client.messages.create(model="claude", max_tokens=50, messages=HI)
    for answer in (message, streamed):
        assert (answer.stop_reason, answer.stop_sequence) == ("stop_sequence", "STOP")
    assert (plain.stop_reason, plain.stop_sequence) == ("end_turn", None)
    assert fake_anthropic.received[0].body["stop_sequences"] == ["STOP", "END"]


async def test_cache_usage_comes_back_from_anthropic(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    toml = config(fake_openai.url, fake_anthropic.url)
    async with start_router(toml) as url, anthropic_client(url) as client:
        message = await client.messages.create(model="claude", max_tokens=50, messages=HI)
        events = await client.messages.create(
            model="claude", max_tokens=50, messages=HI, stream=True
        )
        start, *rest = [e async for e in events]
        async with client.messages.stream(model="claude", max_tokens=50, messages=HI) as stream:
            streamed = await stream.get_final_message()
    # The fake's usage: 20 input tokens, 5 more read from the cache, none written.
    for usage in (message.usage, streamed.usage):
        assert (usage.input_tokens, usage.output_tokens) == (20, 9)
        assert (usage.cache_read_input_tokens, usage.cache_creation_input_tokens) == (5, 0)
    assert start.type == "message_start"
    begun = start.message.usage
    assert (begun.input_tokens, begun.cache_read_input_tokens) == (20, 5)  # known up front
    assert rest[-1].type == "message_stop"
