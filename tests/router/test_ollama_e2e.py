"""The daemon to a fake Ollama (native API), with the official OpenAI SDK as client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import pytest

from tests.conftest import RouterFactory, openai_client
from tests.fakes.ollama_upstream import FakeOllama
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

KEY = "ollama-cloud-secret"
B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
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
async def fake_ollama() -> AsyncIterator[FakeOllama]:
    app = FakeOllama(api_key=KEY)
    async with running(app) as url:
        app.url = url
        yield app


@pytest.fixture(autouse=True)
def ollama_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OLLAMA_TEST_KEY", KEY)
    monkeypatch.setenv("OLLAMA_WRONG_KEY", "wrong-key")


def config(upstream: str) -> str:
    return f"""
[defaults]
retries = 0

[providers.ol]
kind = "ollama"
base_url = "{upstream}"
api_key = "env:OLLAMA_TEST_KEY"

[providers.wrong]
kind = "ollama"
base_url = "{upstream}"
api_key = "env:OLLAMA_WRONG_KEY"

[routes.chat]
fallback = ["ol:llama3.2"]
"""


async def test_non_stream(start_router: RouterFactory, fake_ollama: FakeOllama) -> None:
    async with start_router(config(fake_ollama.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi"},
            ],
            temperature=0.2,
            max_tokens=50,
            stop=["END"],
        )
    assert answer.choices[0].message.content == "echo: hi"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "llama3.2:latest"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (26, 2)
    sent = fake_ollama.received[0]
    assert sent.path == "/api/chat"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "stream": False,
        "options": {"temperature": 0.2, "num_predict": 50, "stop": ["END"]},
    }


async def test_stream_with_usage(start_router: RouterFactory, fake_ollama: FakeOllama) -> None:
    async with start_router(config(fake_ollama.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        long = await client.chat.completions.create(
            model="ol:long", messages=[{"role": "user", "content": "x"}], stream=True
        )
        long_chunks = [chunk async for chunk in long]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (26, 4)
    assert fake_ollama.received[0].body["stream"] is True
    assert [c.choices[0].finish_reason for c in long_chunks if c.choices][-1] == "length"
    assert all(c.usage is None for c in long_chunks)  # not asked for


async def test_tools(start_router: RouterFactory, fake_ollama: FakeOllama) -> None:
    messages = [{"role": "user", "content": "weather in Paris?"}]
    async with start_router(config(fake_ollama.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="ol:tool-caller", messages=messages, tools=TOOLS
        )
        stream = await client.chat.completions.create(
            model="ol:tool-caller", messages=messages, tools=TOOLS, stream=True
        )
        chunks = [chunk async for chunk in stream]
        calls = answer.choices[0].message.tool_calls
        assert calls is not None
        # The next turn: the tool result goes back under the function's name.
        follow_up = await client.chat.completions.create(
            model="ol:llama3.2",
            messages=[
                *messages,
                answer.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
                {"role": "tool", "tool_call_id": calls[0].id, "content": "18C"},
                {"role": "user", "content": "thanks"},
            ],
            tools=TOOLS,
        )
    assert calls[0].id == "call_0"  # synthesised: Ollama gave none
    assert calls[0].function.name == "get_weather"
    assert calls[0].function.arguments == '{"city":"Paris"}'
    assert answer.choices[0].finish_reason == "tool_calls"
    streamed = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or ()]
    assert len(streamed) == 1
    assert streamed[0].function is not None
    assert streamed[0].function.arguments == '{"city":"Paris"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    assert follow_up.choices[0].message.content == "echo: thanks"
    sent = fake_ollama.received[-1].body["messages"]
    assert sent[1]["tool_calls"] == [
        {"id": "call_0", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}
    ]
    assert sent[2] == {
        "role": "tool",
        "content": "18C",
        "tool_call_id": "call_0",
        "tool_name": "get_weather",
    }
    assert fake_ollama.received[0].body["tools"] == TOOLS


async def test_image(start_router: RouterFactory, fake_ollama: FakeOllama) -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{B64}"}},
    ]
    async with start_router(config(fake_ollama.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": content}]
        )
        with pytest.raises(openai.BadRequestError) as by_url:
            await client.chat.completions.create(
                model="chat",
                messages=[
                    {
                        "role": "user",
                        "content": [
                            {"type": "image_url", "image_url": {"url": "https://img.test/a.png"}}
                        ],
                    }
                ],
            )
    assert answer.choices[0].message.content == "echo: what is this? [1 image(s)]"
    assert fake_ollama.received[0].body["messages"][0]["images"] == [B64]
    assert "fetch_images" in by_url.value.message
    assert len(fake_ollama.received) == 1  # the URL never went upstream


async def test_errors_mapped(start_router: RouterFactory, fake_ollama: FakeOllama) -> None:
    x = [{"role": "user", "content": "x"}]
    async with start_router(config(fake_ollama.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.NotFoundError) as missing:
            await client.chat.completions.create(model="ol:fail-404", messages=x)
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="ol:fail-400", messages=x)
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="ol:fail-429", messages=x)
        with pytest.raises(openai.APIStatusError) as crashed:
            await client.chat.completions.create(model="ol:fail-500", messages=x)
        with pytest.raises(openai.APIStatusError) as auth:
            await client.chat.completions.create(model="wrong:llama3.2", messages=x)
    assert "not found" in missing.value.message
    assert crashed.value.status_code == 502
    assert auth.value.status_code == 502
    assert "wrong-key" not in auth.value.response.text


async def test_stream_failures_raise(start_router: RouterFactory, fake_ollama: FakeOllama) -> None:
    words = [{"role": "user", "content": "one two three four"}]
    async with start_router(config(fake_ollama.url)) as url, openai_client(url) as client:
        for model in ("ol:break-mid-stream", "ol:error-mid-stream", "ol:no-done"):
            stream = await client.chat.completions.create(model=model, messages=words, stream=True)
            with pytest.raises(openai.APIError):
                _ = [chunk async for chunk in stream]
