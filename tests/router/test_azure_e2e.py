"""The daemon to a fake Azure OpenAI resource, with the official OpenAI SDK as client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import pytest

from tests.conftest import RouterFactory, openai_client
from tests.fakes.azure_upstream import FakeAzure
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

KEY = "azure-upstream-secret"
PNG = "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture
async def fake_azure() -> AsyncIterator[FakeAzure]:
    app = FakeAzure(api_key=KEY)
    async with running(app) as url:
        app.url = url
        yield app


@pytest.fixture(autouse=True)
def azure_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_TEST_KEY", KEY)
    monkeypatch.setenv("AZURE_WRONG_KEY", "not-the-key")


def config(upstream: str) -> str:
    return f"""
[defaults]
retries = 0

[providers.az]
kind = "azure"
base_url = "{upstream}"
api_version = "2024-10-21"
api_key = "env:AZURE_TEST_KEY"

[providers.prod]
kind = "azure"
base_url = "{upstream}"
deployment = "gpt-4o-prod"
api_key = "env:AZURE_TEST_KEY"

[providers.wrong]
kind = "azure"
base_url = "{upstream}"
api_key = "env:AZURE_WRONG_KEY"

[routes.chat]
fallback = ["az:gpt-4o"]
"""


async def test_non_stream(start_router: RouterFactory, fake_azure: FakeAzure) -> None:
    async with start_router(config(fake_azure.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ],
            temperature=0.5,
            max_tokens=20,
        )
        pinned = await client.chat.completions.create(
            model="prod:anything", messages=[{"role": "user", "content": "x"}]
        )
    assert answer.choices[0].message.content == "echo: hi"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "gpt-4o-2024-08-06"
    assert answer.usage is not None
    assert answer.usage.total_tokens == 13
    assert pinned.choices[0].message.content == "echo: x"
    sent = fake_azure.received[0]
    assert sent.path == "/openai/deployments/gpt-4o/chat/completions"
    assert sent.query == {"api-version": "2024-10-21"}
    assert sent.headers["api-key"] == KEY
    assert "authorization" not in sent.headers
    assert sent.body == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.5,
        "max_tokens": 20,
    }
    assert fake_azure.received[1].path == "/openai/deployments/gpt-4o-prod/chat/completions"


async def test_stream_with_usage(start_router: RouterFactory, fake_azure: FakeAzure) -> None:
    async with start_router(config(fake_azure.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 4
    # The filter-only chunk never reached the client: every chunk has the answer's id.
    assert {c.id for c in chunks} == {chunks[0].id}
    assert fake_azure.received[0].body["stream_options"] == {"include_usage": True}


async def test_tools(start_router: RouterFactory, fake_azure: FakeAzure) -> None:
    messages = [{"role": "user", "content": "weather in Paris?"}]
    async with start_router(config(fake_azure.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="az:tool-caller", messages=messages, tools=TOOLS, tool_choice="auto"
        )
        stream = await client.chat.completions.create(
            model="az:tool-caller", messages=messages, tools=TOOLS, stream=True
        )
        chunks = [chunk async for chunk in stream]
    calls = answer.choices[0].message.tool_calls
    assert calls is not None
    assert calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == '{"city":"Paris"}'
    assert answer.choices[0].finish_reason == "tool_calls"
    pieces = [
        tc.function.arguments or ""
        for c in chunks
        if c.choices
        for tc in c.choices[0].delta.tool_calls or ()
        if tc.function is not None
    ]
    assert "".join(pieces) == '{"city":"Paris"}'
    assert fake_azure.received[0].body["tools"] == TOOLS
    assert fake_azure.received[0].body["tool_choice"] == "auto"


async def test_image(start_router: RouterFactory, fake_azure: FakeAzure) -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": PNG}},
    ]
    async with start_router(config(fake_azure.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": content}]
        )
    assert answer.choices[0].message.content == "what is this? [1 image(s)]"
    assert fake_azure.received[0].body["messages"][0]["content"][1]["image_url"]["url"] == PNG


async def test_errors_mapped(start_router: RouterFactory, fake_azure: FakeAzure) -> None:
    x = [{"role": "user", "content": "x"}]
    async with start_router(config(fake_azure.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="az:fail-429", messages=x)
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="az:fail-400", messages=x)
        with pytest.raises(openai.BadRequestError) as filtered:
            await client.chat.completions.create(model="az:filtered", messages=x)
        with pytest.raises(openai.BadRequestError) as too_long:
            await client.chat.completions.create(model="az:fail-ctx", messages=x)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="az:fail-404", messages=x)
        with pytest.raises(openai.APIStatusError) as auth:
            await client.chat.completions.create(model="wrong:gpt-4o", messages=x)
        output_filtered = await client.chat.completions.create(
            model="az:filtered-output", messages=x
        )
    assert limited.value.response.headers["retry-after"] == "2"
    assert "temperature" in bad.value.message
    assert filtered.value.code == "content_filter"
    assert "violence" in filtered.value.message
    assert too_long.value.code == "context_length_exceeded"
    assert auth.value.status_code == 502  # the operator's key, not the client's
    assert "not-the-key" not in auth.value.response.text
    assert output_filtered.choices[0].finish_reason == "content_filter"


async def test_mid_stream_break_raises(start_router: RouterFactory, fake_azure: FakeAzure) -> None:
    async with start_router(config(fake_azure.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="az:break-mid-stream",
            messages=[{"role": "user", "content": "one two three four"}],
            stream=True,
        )
        with pytest.raises(openai.APIError, match="upstream"):
            _ = [chunk async for chunk in stream]
