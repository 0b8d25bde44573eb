"""The daemon over loopback HTTP, with the official OpenAI SDK as its client."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import pytest

from tests.conftest import RouterFactory, openai_client

if TYPE_CHECKING:
    from tests.fakes.openai_upstream import FakeOpenAI


def config(upstream: str, *routes: str) -> str:
    # No retries: these tests are about single attempts and fallbacks (retries have
    # their own tests, on MockClock).
    return f"""
[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{upstream}"
api_key = "env:FAKE_UPSTREAM_KEY"

[providers.backup]
kind = "openai"
base_url = "{upstream}"

[routes.chat]
fallback = ["up:gpt-4o"]
""" + "\n".join(routes)


@pytest.fixture(autouse=True)
def upstream_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", "sk-upstream-secret")


async def test_non_stream_answer(start_router: RouterFactory, fake_openai: FakeOpenAI) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=[{"role": "user", "content": "hi there"}]
        )
        answer = raw.parse()
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.model == "gpt-4o-2024-08-06"  # the model that really answered
    assert answer.usage is not None
    assert answer.usage.total_tokens == 12
    assert raw.headers["x-router-route"] == "chat"
    assert raw.headers["x-router-target"] == "up:gpt-4o"
    assert raw.headers["x-router-attempts"] == "1"
    assert len(raw.headers["x-request-id"]) == 32
    sent = fake_openai.received[0]
    assert sent.path == "/v1/chat/completions"
    assert sent.body["model"] == "gpt-4o"
    assert sent.headers["authorization"] == "Bearer sk-upstream-secret"


async def test_stream_with_usage(start_router: RouterFactory, fake_openai: FakeOpenAI) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 5
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert fake_openai.received[0].body["stream_options"] == {"include_usage": True}


async def test_tools_pass_through(start_router: RouterFactory, fake_openai: FakeOpenAI) -> None:
    tools = [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="up:tool-caller",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=tools,  # type: ignore[arg-type]
            tool_choice="auto",
        )
        stream = await client.chat.completions.create(
            model="up:tool-caller",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=tools,  # type: ignore[arg-type]
            stream=True,
        )
        pieces = [
            c.choices[0].delta.tool_calls[0].function.arguments or ""
            async for c in stream
            if c.choices
            and c.choices[0].delta.tool_calls
            and c.choices[0].delta.tool_calls[0].function
        ]
    call = answer.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert call.function.arguments == '{"city":"Paris"}'  # type: ignore[union-attr]
    assert answer.choices[0].finish_reason == "tool_calls"
    assert "".join(pieces) == '{"city":"Paris"}'
    assert fake_openai.received[0].body["tools"] == tools
    assert fake_openai.received[0].body["tool_choice"] == "auto"


async def test_image_passes_through(start_router: RouterFactory, fake_openai: FakeOpenAI) -> None:
    content = [
        {"type": "text", "text": "what is this?"},
        {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "low"},
        },
    ]
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": content}],  # type: ignore[list-item]
        )
    assert answer.choices[0].message.content == "what is this? [1 image(s)]"
    assert fake_openai.received[0].body["messages"][0]["content"] == content


async def test_fallback_on_500(start_router: RouterFactory, fake_openai: FakeOpenAI) -> None:
    route = '[routes.safe]\nfallback = ["up:fail-500", "backup:gpt-4o-mini"]'
    async with start_router(config(fake_openai.url, route)) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="safe", messages=[{"role": "user", "content": "hello"}]
        )
    assert raw.parse().choices[0].message.content == "echo: hello"
    assert raw.headers["x-router-target"] == "backup:gpt-4o-mini"
    assert raw.headers["x-router-attempts"] == "2"
    assert [r.body["model"] for r in fake_openai.received] == ["fail-500", "gpt-4o-mini"]
    assert "authorization" not in fake_openai.received[1].headers  # backup has no key


async def test_stream_falls_back_before_first_chunk(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    route = '[routes.safe]\nfallback = ["up:fail-503", "backup:gpt-4o-mini"]'
    async with start_router(config(fake_openai.url, route)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="safe", messages=[{"role": "user", "content": "a b"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert text == "echo: a b"


async def test_every_target_failed_is_502_naming_attempts(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    route = '[routes.doomed]\nfallback = ["up:fail-500", "backup:fail-503"]'
    async with start_router(config(fake_openai.url, route)) as url, openai_client(url) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model="doomed", messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.status_code == 502
    error = caught.value.body
    assert isinstance(error, dict)
    assert [a["target"] for a in error["attempts"]] == ["up:fail-500", "backup:fail-503"]
    assert [a["status"] for a in error["attempts"]] == [500, 503]


async def test_upstream_errors_mapped(start_router: RouterFactory, fake_openai: FakeOpenAI) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(
                model="up:fail-400", messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(
                model="up:fail-429", messages=[{"role": "user", "content": "x"}]
            )
        with pytest.raises(openai.APIStatusError) as auth:
            await client.chat.completions.create(
                model="up:fail-401", messages=[{"role": "user", "content": "x"}]
            )
    assert "temperature" in bad.value.message
    assert limited.value.response.headers["retry-after"] == "2"
    # The upstream refused the operator's key: the operator's problem, never a 401.
    assert auth.value.status_code == 502
    assert "refused the configured credentials" in auth.value.message
    assert "sk-upstream" not in auth.value.response.text


async def test_mid_stream_break_raises_in_sdk(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="up:break-mid-stream",
            messages=[{"role": "user", "content": "one two three four"}],
            stream=True,
        )
        received: list[str] = []

        async def read_all() -> None:
            async for chunk in stream:
                if chunk.choices:
                    received.append(chunk.choices[0].delta.content or "")

        with pytest.raises(openai.APIError, match="upstream"):
            await read_all()
        # and the daemon keeps serving
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "still there?"}]
        )
    assert "".join(received) == "echo: one"
    assert answer.choices[0].message.content == "echo: still there?"


async def test_stream_without_finish_is_an_error(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="up:truncated", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
        with pytest.raises(openai.APIError, match="before the answer was complete"):
            _ = [c async for c in stream]
        done_less = await client.chat.completions.create(
            model="up:no-done", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in done_less if c.choices])
    assert text == "echo: a b c"


async def test_keys_echoed_by_an_upstream_never_reach_the_client(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    route = '[routes.doomed]\nfallback = ["up:fail-401", "backup:fail-500"]'
    async with start_router(config(fake_openai.url, route)) as url, openai_client(url) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(
                model="doomed", messages=[{"role": "user", "content": "x"}]
            )
    assert fake_openai.received[0].headers["authorization"] == "Bearer sk-upstream-secret"
    assert caught.value.status_code == 502
    assert "sk-upstream" not in caught.value.response.text
    assert "upstream-secret" not in caught.value.response.text


def test_key_like_tokens_are_scrubbed_from_upstream_messages() -> None:
    from adapters import InvalidRequest
    from router.upstream._transport import HttpxTransport
    from router.upstream._upstream import HTTPUpstream

    upstream = HTTPUpstream("p", "openai", None, HttpxTransport(), ("hunter2-token",))  # type: ignore[arg-type]
    err = upstream._scrubbed(
        InvalidRequest("bad key sk-proj-****abcd and hunter2-token, see docs", upstream_status=400)
    )
    assert err.message == "bad key [redacted] and [redacted], see docs"


async def test_httpx2_transport_serves_the_same(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = f"""
[providers.up]
kind = "openai"
base_url = "{fake_openai.url}"
pool = {{ transport = "httpx", max_connections = 4 }}

[routes.chat]
fallback = ["up:fail-500", "up:gpt-4o"]
"""
    async with start_router(toml) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "via httpx2"}]
        )
        stream = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "a b"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        broken = await client.chat.completions.create(
            model="up:break-mid-stream",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
        )
        with pytest.raises(openai.APIError, match="upstream"):
            _ = [c async for c in broken]
    assert answer.choices[0].message.content == "echo: via httpx2"
    assert text == "echo: a b"
