"""The daemon over loopback HTTP to a fake Gemini API, with the official OpenAI SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.conftest import RouterFactory, openai_client
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

SECRET = "AIza-upstream-secret"
WRONG = "AIza-wrong-key"


@pytest.fixture
async def fake_gemini() -> AsyncIterator[FakeGemini]:
    app = FakeGemini(key=SECRET)
    async with running(app) as url:
        app.url = f"{url}/v1beta"
        yield app


@pytest.fixture(autouse=True)
def upstream_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_TEST_KEY", SECRET)
    monkeypatch.setenv("GEMINI_WRONG_KEY", WRONG)


def config(upstream: str) -> str:
    return f"""
[defaults]
retries = 0

[providers.gem]
kind = "gemini"
base_url = "{upstream}"
api_key = "env:GEMINI_TEST_KEY"

[providers.badkey]
kind = "gemini"
base_url = "{upstream}"
api_key = "env:GEMINI_WRONG_KEY"

[routes.chat]
fallback = ["gem:gemini-2.5-flash"]
"""


WEATHER: Any = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


async def test_non_stream_answer(start_router: RouterFactory, fake_gemini: FakeGemini) -> None:
    async with start_router(config(fake_gemini.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat",
            messages=[
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "hi there"},
            ],
            temperature=0.5,
            top_p=0.9,
            max_tokens=50,
            stop=["END"],
        )
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == "gemini-2.5-flash-001"  # the model that really answered
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (7, 7)  # + thoughts
    sent = fake_gemini.received[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:generateContent"
    assert sent.headers["x-goog-api-key"] == SECRET
    assert sent.query == {}  # the key never travels in the URL
    assert sent.body == {
        "contents": [{"role": "user", "parts": [{"text": "hi there"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {
            "temperature": 0.5,
            "topP": 0.9,
            "maxOutputTokens": 50,
            "stopSequences": ["END"],
        },
    }


async def test_stream_with_usage(start_router: RouterFactory, fake_gemini: FakeGemini) -> None:
    async with start_router(config(fake_gemini.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
        plain = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "a b"}], stream=True
        )
        plain_chunks = [chunk async for chunk in plain]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 7
    assert chunks[-1].usage.completion_tokens == 7
    assert all(c.usage is None for c in plain_chunks)  # not asked for, not sent
    sent = fake_gemini.received[0]
    assert sent.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
    assert sent.query == {"alt": "sse"}
    assert sent.headers["x-goog-api-key"] == SECRET


async def test_tools_calls_and_results(
    start_router: RouterFactory, fake_gemini: FakeGemini
) -> None:
    question: Any = {"role": "user", "content": "weather in Paris?"}
    async with start_router(config(fake_gemini.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="gem:tool-caller", messages=[question], tools=[WEATHER], tool_choice="auto"
        )
        stream = await client.chat.completions.create(
            model="gem:tool-caller",
            messages=[question],
            tools=[WEATHER],
            tool_choice={"type": "function", "function": {"name": "get_weather"}},
            stream=True,
        )
        deltas = [
            c.choices[0].delta.tool_calls[0]
            async for c in stream
            if c.choices and c.choices[0].delta.tool_calls
        ]
        call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
        follow_up = await client.chat.completions.create(
            model="gem:gemini-2.5-flash",
            messages=[
                question,
                {"role": "assistant", "content": None, "tool_calls": [call.model_dump()]},  # type: ignore[list-item]
                {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
            ],
            tools=[WEATHER],
        )
    assert call.id == "call_0"  # Gemini gave none: synthesised
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == '{"city":"Paris"}'  # type: ignore[union-attr]
    assert answer.choices[0].finish_reason == "tool_calls"
    assert [d.id for d in deltas] == ["call_0"]
    assert "".join(d.function.arguments or "" for d in deltas if d.function) == '{"city":"Paris"}'
    assert follow_up.choices[0].message.content == "tool said: 18C and sunny"
    first, streamed, third = (r.body for r in fake_gemini.received)
    assert first["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather by city",
                    "parametersJsonSchema": WEATHER["function"]["parameters"],
                }
            ]
        }
    ]
    assert first["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}
    assert streamed["toolConfig"] == {
        "functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}
    }
    assert third["contents"][1:] == [
        {
            "role": "model",
            "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}],
        },
        {
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "get_weather",
                        "response": {"output": "18C and sunny"},
                    }
                }
            ],
        },
    ]


async def test_image_data_url(start_router: RouterFactory, fake_gemini: FakeGemini) -> None:
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    async with start_router(config(fake_gemini.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": content}]
        )
    assert answer.choices[0].message.content == "what is this? [1 image(s)]"
    assert fake_gemini.received[0].body["contents"][0]["parts"] == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": "iVBORw0KGgo="}},
    ]


async def test_errors_mapped(start_router: RouterFactory, fake_gemini: FakeGemini) -> None:
    x: Any = [{"role": "user", "content": "x"}]
    async with start_router(config(fake_gemini.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="gem:fail-429", messages=x)
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="gem:fail-400", messages=x)
        with pytest.raises(openai.BadRequestError) as too_long:
            await client.chat.completions.create(model="gem:fail-ctx", messages=x)
        with pytest.raises(openai.BadRequestError) as blocked:
            await client.chat.completions.create(model="gem:blocked", messages=x)
        with pytest.raises(openai.APIStatusError) as bad_key:
            await client.chat.completions.create(model="badkey:gemini-2.5-flash", messages=x)
        with pytest.raises(openai.APIStatusError) as unauthenticated:
            await client.chat.completions.create(model="gem:fail-401", messages=x)
        with pytest.raises(openai.APIStatusError) as overloaded:
            await client.chat.completions.create(model="gem:fail-503", messages=x)
    assert limited.value.response.headers["retry-after"] == "7"  # from RetryInfo "7s"
    assert "temperature" in bad.value.message
    assert too_long.value.code == "context_length_exceeded"
    assert blocked.value.code == "content_filter"
    assert "SAFETY" in blocked.value.message
    # Gemini's 400 for a bad key is the operator's problem: 502, never the client's 4xx.
    assert bad_key.value.status_code == 502
    assert "refused the configured credentials" in bad_key.value.message
    assert WRONG not in bad_key.value.response.text
    assert unauthenticated.value.status_code == 502
    assert overloaded.value.status_code == 502
    assert fake_gemini.received[4].headers["x-goog-api-key"] == WRONG


async def test_content_filtered_answer(
    start_router: RouterFactory, fake_gemini: FakeGemini
) -> None:
    x: Any = [{"role": "user", "content": "x"}]
    async with start_router(config(fake_gemini.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(model="gem:unsafe", messages=x)
        stream = await client.chat.completions.create(model="gem:unsafe", messages=x, stream=True)
        chunks = [c async for c in stream if c.choices]
    assert answer.choices[0].finish_reason == "content_filter"
    assert answer.choices[0].message.content is None
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "I was about"
    assert chunks[-1].choices[0].finish_reason == "content_filter"


@pytest.mark.parametrize(
    ("model", "match"),
    [
        ("gem:break-mid-stream", "upstream"),
        ("gem:truncated", "before the answer was complete"),
        ("gem:error-mid-stream", "An internal error has occurred"),
    ],
)
async def test_broken_streams_raise_in_sdk(
    start_router: RouterFactory, fake_gemini: FakeGemini, model: str, match: str
) -> None:
    async with start_router(config(fake_gemini.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "one two three four"}], stream=True
        )
        received: list[str] = []

        async def read_all() -> None:
            async for chunk in stream:
                if chunk.choices:
                    received.append(chunk.choices[0].delta.content or "")

        with pytest.raises(openai.APIError, match=match):
            await read_all()
    assert "".join(received).startswith("echo:")


async def test_image_url_without_fetching_is_a_clear_400(
    start_router: RouterFactory, fake_gemini: FakeGemini
) -> None:
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "https://example.test/cat.png"}},
    ]
    async with start_router(config(fake_gemini.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": content}]
            )
    assert caught.value.code == "unsupported_capability"
    assert "server.fetch_images = true" in caught.value.message
    assert fake_gemini.received == []  # nothing was sent
