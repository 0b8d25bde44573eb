"""The daemon over loopback HTTP, the official OpenAI SDK as its client, the fake
Anthropic API as its upstream."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.conftest import RouterFactory, openai_client
from tests.fakes.anthropic_upstream import KEY, FakeAnthropic
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

TOOLS: Any = [
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
async def fake() -> AsyncIterator[FakeAnthropic]:
    app = FakeAnthropic()
    async with running(app) as url:
        app.url = url  # as the Anthropic SDK means it: no /v1
        yield app


@pytest.fixture(autouse=True)
def upstream_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", KEY)
    monkeypatch.setenv("ANTHROPIC_WRONG_KEY", "sk-ant-wrong")


def config(upstream: str) -> str:
    return f"""
[defaults]
retries = 0

[providers.claude]
kind = "anthropic"
base_url = "{upstream}"
api_key = "env:ANTHROPIC_TEST_KEY"
max_tokens = 321

[providers.wrong]
kind = "anthropic"
base_url = "{upstream}"
api_key = "env:ANTHROPIC_WRONG_KEY"

[routes.chat]
fallback = ["claude:claude-test"]
"""


async def test_non_stream(start_router: RouterFactory, fake: FakeAnthropic) -> None:
    async with start_router(config(fake.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="claude:claude-test",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi there"},
            ],
            temperature=0.5,
            stop=["END"],
        )
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "claude-test-20250101"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (25, 9)
    sent = fake.received[0]
    assert sent.path == "/v1/messages"
    assert sent.headers["x-api-key"] == KEY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.body == {
        "model": "claude-test",
        "max_tokens": 321,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}],
        "temperature": 0.5,
        "stop_sequences": ["END"],
    }


async def test_stream_with_usage(start_router: RouterFactory, fake: FakeAnthropic) -> None:
    async with start_router(config(fake.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="claude:claude-test",
            messages=[{"role": "user", "content": "one two three"}],
            max_tokens=50,
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (25, 9)
    assert fake.received[0].body["stream"] is True
    assert fake.received[0].body["max_tokens"] == 50


async def test_tools(start_router: RouterFactory, fake: FakeAnthropic) -> None:
    messages: Any = [{"role": "user", "content": "weather in Paris?"}]
    async with start_router(config(fake.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="claude:tool-caller",
            messages=messages,
            tools=TOOLS,
            tool_choice="required",
        )
        stream = await client.chat.completions.create(
            model="claude:tool-caller",
            messages=messages,
            tools=TOOLS,
            stream=True,
        )
        chunks = [c async for c in stream]
        # the next turn: the call and its result go back to Anthropic's shape
        assert answer.choices[0].message.tool_calls is not None
        call: Any = answer.choices[0].message.tool_calls[0]
        await client.chat.completions.create(
            model="claude:claude-test",
            messages=[
                *messages,
                answer.choices[0].message.model_dump(exclude_none=True),  # type: ignore[list-item]
                {"role": "tool", "tool_call_id": call.id, "content": "18C"},
            ],
            tools=TOOLS,
        )
    assert answer.choices[0].message.content == "Let me check."
    assert call.id == "toolu_01fake"
    assert call.function.name == "get_weather"
    assert call.function.arguments == '{"city":"Paris"}'
    assert answer.choices[0].finish_reason == "tool_calls"
    deltas: list[Any] = [
        d
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
        for d in c.choices[0].delta.tool_calls
    ]
    assert deltas[0].id == "toolu_01fake"
    assert deltas[0].function.name == "get_weather"
    assert "".join(d.function.arguments or "" for d in deltas) == '{"city": "Paris"}'
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"
    first = fake.received[0].body
    assert first["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather by city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        }
    ]
    assert first["tool_choice"] == {"type": "any"}
    assert fake.received[2].body["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "Let me check."},
                {
                    "type": "tool_use",
                    "id": "toolu_01fake",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01fake", "content": "18C"}],
        },
    ]


async def test_image_data_url(start_router: RouterFactory, fake: FakeAnthropic) -> None:
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    async with start_router(config(fake.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="claude:claude-test",
            messages=[{"role": "user", "content": content}],
        )
    assert answer.choices[0].message.content == "echo: what is this? [1 image(s)]"
    assert fake.received[0].body["messages"][0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
    }


async def test_refusal_is_a_content_filter_finish(
    start_router: RouterFactory, fake: FakeAnthropic
) -> None:
    async with start_router(config(fake.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="claude:refuser", messages=[{"role": "user", "content": "x"}]
        )
    assert answer.choices[0].finish_reason == "content_filter"


async def test_errors_mapped(start_router: RouterFactory, fake: FakeAnthropic) -> None:
    hi: Any = [{"role": "user", "content": "hi"}]
    async with start_router(config(fake.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="claude:fail-429", messages=hi)
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="claude:fail-400", messages=hi)
        with pytest.raises(openai.BadRequestError) as ctx:
            await client.chat.completions.create(model="claude:fail-ctx", messages=hi)
        with pytest.raises(openai.APIStatusError) as auth:
            await client.chat.completions.create(model="wrong:claude-test", messages=hi)
        with pytest.raises(openai.APIStatusError) as overloaded:
            await client.chat.completions.create(model="claude:fail-529", messages=hi)
    assert limited.value.response.headers["retry-after"] == "7"
    assert "temperature" in bad.value.message
    assert ctx.value.code == "context_length_exceeded"
    assert auth.value.status_code == 502
    assert "sk-ant-wrong" not in auth.value.response.text
    assert overloaded.value.status_code == 502
    assert "overloaded" in overloaded.value.response.text


async def test_break_mid_stream(start_router: RouterFactory, fake: FakeAnthropic) -> None:
    for model in ("claude:break-mid-stream", "claude:error-mid-stream"):
        async with start_router(config(fake.url)) as url, openai_client(url) as client:
            stream = await client.chat.completions.create(
                model=model, messages=[{"role": "user", "content": "one two three"}], stream=True
            )
            with pytest.raises(openai.APIError):
                async for _ in stream:
                    pass
