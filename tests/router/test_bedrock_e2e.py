"""The daemon over loopback HTTP to a fake Bedrock Runtime, the OpenAI SDK as client.

The fake checks every SigV4 signature with botocore, so each test here also proves the
daemon signs what it sends, model id encoding included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import orjson
import pytest

from tests.conftest import RouterFactory, openai_client
from tests.fakes.bedrock_upstream import FakeBedrock
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEY_ID = "AKIDFAKEEXAMPLE"
SECRET = "fake-secret-key/with+chars"
TOKEN = "FQoGZXIvYXdzEFAKETOKEN"
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather by city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
]


@pytest.fixture(autouse=True)
def aws_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_AWS_KEY_ID", KEY_ID)
    monkeypatch.setenv("FAKE_AWS_SECRET", SECRET)
    monkeypatch.setenv("FAKE_AWS_TOKEN", TOKEN)


@pytest.fixture
async def fake_bedrock() -> AsyncIterator[FakeBedrock]:
    app = FakeBedrock(region="us-west-2", access_key=KEY_ID, secret_key=SECRET, session_token=TOKEN)
    async with running(app) as url:
        app.url = url
        yield app


def config(upstream: str, secret: str = "env:FAKE_AWS_SECRET") -> str:
    return f"""
[defaults]
retries = 0

[providers.aws]
kind = "bedrock"
region = "us-west-2"
base_url = "{upstream}"
aws_access_key_id = "env:FAKE_AWS_KEY_ID"
aws_secret_access_key = "{secret}"
aws_session_token = "env:FAKE_AWS_TOKEN"

[routes.chat]
fallback = ["aws:{MODEL}"]
"""


async def test_non_stream_answer(start_router: RouterFactory, fake_bedrock: FakeBedrock) -> None:
    async with start_router(config(fake_bedrock.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat",
            messages=[
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "hi there"},
            ],
            temperature=0.3,
            max_tokens=64,
            stop=["END"],
        )
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.model == "anthropic.claude-3-haiku-20240307-v1:0"  # Converse names none: ours
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (7, 5)
    sent = fake_bedrock.received[0]
    assert sent.path == "/model/anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    assert sent.headers["authorization"].startswith(f"AWS4-HMAC-SHA256 Credential={KEY_ID}/")
    assert "/us-west-2/bedrock/aws4_request" in sent.headers["authorization"]
    assert sent.headers["x-amz-security-token"] == TOKEN
    assert sent.body == {
        "messages": [{"role": "user", "content": [{"text": "hi there"}]}],
        "system": [{"text": "Be terse."}],
        "inferenceConfig": {"maxTokens": 64, "temperature": 0.3, "stopSequences": ["END"]},
    }


async def test_stream_with_usage(start_router: RouterFactory, fake_bedrock: FakeBedrock) -> None:
    async with start_router(config(fake_bedrock.url)) as url, openai_client(url) as client:
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
    assert chunks[-1].usage.total_tokens == 12
    assert fake_bedrock.received[0].path.endswith("/converse-stream")


async def test_tools(start_router: RouterFactory, fake_bedrock: FakeBedrock) -> None:
    async with start_router(config(fake_bedrock.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="aws:tool-caller",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=TOOLS,
            tool_choice="required",
        )
        stream = await client.chat.completions.create(
            model="aws:tool-caller",
            messages=[{"role": "user", "content": "weather in Paris?"}],
            tools=TOOLS,
            stream=True,
        )
        deltas = [
            c.choices[0].delta.tool_calls[0]
            async for c in stream
            if c.choices and c.choices[0].delta.tool_calls
        ]
    calls = answer.choices[0].message.tool_calls
    assert calls
    call: Any = calls[0]
    assert call.id == "tooluse_fake1"
    assert call.function.name == "get_weather"
    assert orjson.loads(call.function.arguments) == {"city": "Paris"}
    assert answer.choices[0].finish_reason == "tool_calls"
    assert deltas[0].id == "tooluse_fake1"
    assert deltas[0].function is not None
    assert deltas[0].function.name == "get_weather"
    assert "".join(d.function.arguments or "" for d in deltas if d.function) == '{"city":"Paris"}'
    tool_config = fake_bedrock.received[0].body["toolConfig"]
    assert tool_config["toolChoice"] == {"any": {}}
    assert (
        tool_config["tools"][0]["toolSpec"]["inputSchema"]["json"]
        == TOOLS[0]["function"]["parameters"]
    )


async def test_tool_result_round_trip(
    start_router: RouterFactory, fake_bedrock: FakeBedrock
) -> None:
    call: Any = {
        "id": "call_abc",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
    }
    async with start_router(config(fake_bedrock.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat",
            messages=[
                {"role": "user", "content": "weather in Paris?"},
                {"role": "assistant", "content": None, "tool_calls": [call]},
                {"role": "tool", "tool_call_id": "call_abc", "content": "18C and sunny"},
            ],
            tools=TOOLS,
        )
    assert answer.choices[0].message.content == "echo: weather in Paris?"
    messages = fake_bedrock.received[0].body["messages"]
    assert messages[1]["content"][0]["toolUse"] == {
        "toolUseId": "call_abc",
        "name": "get_weather",
        "input": {"city": "Paris"},
    }
    assert messages[2]["content"][0]["toolResult"] == {
        "toolUseId": "call_abc",
        "content": [{"text": "18C and sunny"}],
        "status": "success",
    }


async def test_image_data_url(start_router: RouterFactory, fake_bedrock: FakeBedrock) -> None:
    content: Any = [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    async with start_router(config(fake_bedrock.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": content}],
        )
    assert answer.choices[0].message.content == "echo: what is this? [1 image(s)]"
    sent = fake_bedrock.received[0].body["messages"][0]["content"]
    assert sent[1] == {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}


async def test_image_url_is_refused_without_fetching(
    start_router: RouterFactory, fake_bedrock: FakeBedrock
) -> None:
    content: Any = [{"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]
    async with start_router(config(fake_bedrock.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.BadRequestError) as info:
            await client.chat.completions.create(
                model="chat",
                messages=[{"role": "user", "content": content}],
            )
    assert "fetch_images" in str(info.value)
    assert fake_bedrock.received == []


async def test_errors_mapped(start_router: RouterFactory, fake_bedrock: FakeBedrock) -> None:
    hi: Any = [{"role": "user", "content": "hi"}]
    async with start_router(config(fake_bedrock.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="aws:fail-429", messages=hi)
        with pytest.raises(openai.BadRequestError) as bad:
            await client.chat.completions.create(model="aws:fail-ctx", messages=hi)
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="aws:fail-400", messages=hi)
        with pytest.raises(openai.InternalServerError) as denied:
            await client.chat.completions.create(model="aws:fail-403", messages=hi)
        answer = await client.chat.completions.create(model="aws:guarded", messages=hi)
    assert bad.value.code == "context_length_exceeded"
    assert denied.value.status_code == 502
    assert answer.choices[0].finish_reason == "content_filter"


async def test_bad_signature_is_an_upstream_auth_failure(
    start_router: RouterFactory, fake_bedrock: FakeBedrock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WRONG_AWS_SECRET", "not-the-secret")
    hi: Any = [{"role": "user", "content": "hi"}]
    toml = config(fake_bedrock.url, secret="env:WRONG_AWS_SECRET")
    async with start_router(toml) as url, openai_client(url) as client:
        with pytest.raises(openai.InternalServerError) as info:
            await client.chat.completions.create(model="chat", messages=hi)
    assert info.value.status_code == 502
    assert "not-the-secret" not in str(info.value)
    assert info.value.code == "upstream_authentication_failed"
    assert len(fake_bedrock.received) == 1  # it did reach the fake, which refused it


async def test_mid_stream_break_raises(
    start_router: RouterFactory, fake_bedrock: FakeBedrock
) -> None:
    hi: Any = [{"role": "user", "content": "one two three four"}]
    async with start_router(config(fake_bedrock.url)) as url, openai_client(url) as client:
        for model in ("aws:break-mid-stream", "aws:stream-exception"):
            stream = await client.chat.completions.create(model=model, messages=hi, stream=True)
            with pytest.raises(openai.APIError):
                async for _ in stream:
                    pass


async def test_bedrock_api_key_is_a_bearer(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_BEDROCK_KEY", "brk-secret-key")
    app = FakeBedrock(region="us-west-2", api_key="brk-secret-key")
    toml = f"""
[defaults]
retries = 0

[providers.aws]
kind = "bedrock"
region = "us-west-2"
api_key = "env:FAKE_BEDROCK_KEY"

[routes.chat]
fallback = ["aws:{MODEL}"]
"""
    async with running(app) as upstream:
        toml = toml.replace(
            'region = "us-west-2"', f'region = "us-west-2"\nbase_url = "{upstream}"'
        )
        async with start_router(toml) as url, openai_client(url) as client:
            answer = await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "hi"}]
            )
    assert answer.choices[0].message.content == "echo: hi"
    assert app.received[0].headers["authorization"] == "Bearer brk-secret-key"
    assert "x-amz-date" not in app.received[0].headers
