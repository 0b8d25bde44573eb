"""The daemon to a fake Cohere v2 Chat API, with the official OpenAI SDK as client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import pytest

from tests.conftest import RouterFactory, openai_client
from tests.fakes.cohere_upstream import FakeCohere
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

KEY = "cohere-upstream-secret"
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
async def fake_cohere() -> AsyncIterator[FakeCohere]:
    app = FakeCohere(api_key=KEY)
    async with running(app) as url:
        app.url = url
        yield app


@pytest.fixture(autouse=True)
def cohere_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COHERE_TEST_KEY", KEY)
    monkeypatch.setenv("COHERE_WRONG_KEY", "wrong-cohere-key")


def config(upstream: str) -> str:
    return f"""
[defaults]
retries = 0

[providers.co]
kind = "cohere"
base_url = "{upstream}"
api_key = "env:COHERE_TEST_KEY"

[providers.wrong]
kind = "cohere"
base_url = "{upstream}"
api_key = "env:COHERE_WRONG_KEY"

[routes.chat]
fallback = ["co:command-a-03-2025"]
"""


async def test_non_stream(start_router: RouterFactory, fake_cohere: FakeCohere) -> None:
    async with start_router(config(fake_cohere.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ],
            temperature=0.3,
            top_p=0.9,
            max_tokens=40,
            stop=["END"],
        )
    assert answer.choices[0].message.content == "echo: hi"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "command-a-03-2025"  # Cohere names none: the target's id
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (71, 4)
    sent = fake_cohere.received[0]
    assert sent.path == "/v2/chat"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "model": "command-a-03-2025",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "stream": False,
        "max_tokens": 40,
        "temperature": 0.3,
        "p": 0.9,
        "stop_sequences": ["END"],
    }


async def test_stream_with_usage(start_router: RouterFactory, fake_cohere: FakeCohere) -> None:
    async with start_router(config(fake_cohere.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        long = await client.chat.completions.create(
            model="co:long", messages=[{"role": "user", "content": "x"}]
        )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (71, 4)
    assert fake_cohere.received[0].body["stream"] is True
    assert long.choices[0].finish_reason == "length"


async def test_tools(start_router: RouterFactory, fake_cohere: FakeCohere) -> None:
    messages = [{"role": "user", "content": "weather in Paris?"}]
    async with start_router(config(fake_cohere.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="co:tool-caller", messages=messages, tools=TOOLS, tool_choice="required"
        )
        stream = await client.chat.completions.create(
            model="co:tool-caller", messages=messages, tools=TOOLS, stream=True
        )
        chunks = [chunk async for chunk in stream]
    calls = answer.choices[0].message.tool_calls
    assert calls is not None
    assert (calls[0].id, calls[0].function.name) == ("get_weather_k1", "get_weather")
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
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert fake_cohere.received[0].body["tools"] == TOOLS
    assert fake_cohere.received[0].body["tool_choice"] == "REQUIRED"


async def test_image(start_router: RouterFactory, fake_cohere: FakeCohere) -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": PNG}},
    ]
    async with start_router(config(fake_cohere.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="co:command-a-vision-07-2025", messages=[{"role": "user", "content": content}]
        )
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": content}]
            )
    assert answer.choices[0].message.content == "echo: what is this? [1 image(s)]"
    assert fake_cohere.received[0].body["messages"][0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": PNG},
    }
    assert len(fake_cohere.received) == 1  # a text model never got the image


async def test_errors_mapped(start_router: RouterFactory, fake_cohere: FakeCohere) -> None:
    x = [{"role": "user", "content": "x"}]
    async with start_router(config(fake_cohere.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="co:fail-429", messages=x)
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="co:fail-400", messages=x)
        with pytest.raises(openai.BadRequestError) as too_long:
            await client.chat.completions.create(model="co:fail-ctx", messages=x)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="co:fail-404", messages=x)
        with pytest.raises(openai.APIStatusError) as auth:
            await client.chat.completions.create(model="wrong:command-a-03-2025", messages=x)
    assert "temperature" in bad.value.message
    assert too_long.value.code == "context_length_exceeded"
    assert auth.value.status_code == 502
    assert "wrong-cohere-key" not in auth.value.response.text


async def test_stream_failures_raise(start_router: RouterFactory, fake_cohere: FakeCohere) -> None:
    words = [{"role": "user", "content": "one two three four"}]
    async with start_router(config(fake_cohere.url)) as url, openai_client(url) as client:
        for model in ("co:break-mid-stream", "co:error-mid-stream"):
            stream = await client.chat.completions.create(model=model, messages=words, stream=True)
            with pytest.raises(openai.APIError):
                _ = [chunk async for chunk in stream]
