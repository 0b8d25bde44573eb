"""Same-format passthrough through the daemon, with the official SDKs: an Anthropic
Messages client routed to an Anthropic target, and an OpenAI Chat client routed to an
OpenAI target, get every request field to the upstream and every answer field back;
what only a same-format target can take moves routing on from the others."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import anthropic
import orjson
import pytest

from tests.conftest import openai_client
from tests.fakes._base import STORY
from tests.fakes.anthropic_upstream import KEY, THOUGHT, FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI, running
from tests.router.http.test_messages_ingress_e2e import anthropic_client

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from anthropic.types import DocumentBlockParam, MessageParam
    from openai.types.chat import ChatCompletionMessageParam

    from tests.conftest import RouterFactory


@pytest.fixture
async def toml(
    monkeypatch: pytest.MonkeyPatch, fake_openai: FakeOpenAI
) -> AsyncIterator[tuple[str, FakeAnthropic, FakeOpenAI]]:
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", KEY)
    claude = FakeAnthropic()
    async with running(claude) as url:
        yield (
            f"""
[defaults]
retries = 0

[providers.claude]
kind = "anthropic"
base_url = "{url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[providers.oa]
kind = "openai"
base_url = "{fake_openai.url}"

[routes.think]
fallback = ["claude:thinker"]

[routes.docs]
fallback = ["oa:gpt-4o", "claude:claude-sonnet"]

[routes.docs-openai]
fallback = ["oa:gpt-4o"]

[routes.resumed]
fallback = ["claude:story-break-5", "claude:story"]

[routes.cached]
fallback = ["claude:thinker"]
cache = {{ ttl = "1m" }}
""",
            claude,
            fake_openai,
        )


#: Anthropic request fields the unified request has no place for, and one the API might
#: add one day: they must reach an Anthropic target as sent.
ANTHROPIC_FIELDS: dict[str, Any] = {
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "top_k": 5,
    "metadata": {"user_id": "u-42"},
    "stop_sequences": ["END"],
    "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
    "future_option": {"on": True},
}
DOCUMENT: DocumentBlockParam = {
    "type": "document",
    "source": {"type": "text", "media_type": "text/plain", "data": "The sky is green."},
}
ASK: list[MessageParam] = [
    {"role": "user", "content": [{"type": "text", "text": "What colour?"}, DOCUMENT]}
]


async def test_an_anthropic_client_reaches_anthropic_as_it_sent(
    start_router: RouterFactory, toml: tuple[str, FakeAnthropic, FakeOpenAI]
) -> None:
    config, claude, _ = toml
    async with start_router(config) as url, anthropic_client(url) as client:
        message = await client.messages.create(
            model="think",
            max_tokens=2000,
            messages=ASK,
            extra_body=ANTHROPIC_FIELDS,
        )
        async with client.messages.stream(
            model="think",
            max_tokens=2000,
            messages=ASK,
            extra_body=ANTHROPIC_FIELDS,
        ) as stream:
            events = [event async for event in stream]
            streamed = await stream.get_final_message()
    plain, piped = claude.received
    for sent in (plain.body, piped.body):
        assert sent["model"] == "thinker"  # only the model is the target's own
        assert sent["messages"] == ASK
        for key, value in ANTHROPIC_FIELDS.items():
            assert sent[key] == value
    assert piped.body["stream"] is True
    for answer in (message, streamed):
        assert answer.content[0].type == "thinking"
        assert answer.content[0].thinking == THOUGHT["thinking"]
        assert answer.content[0].signature == THOUGHT["signature"]
        assert answer.content[1].type == "text"
        assert answer.content[1].text == "Done"
        assert answer.stop_reason == "stop_sequence"
        assert answer.stop_sequence == "END"
        assert answer.usage.cache_creation_input_tokens == 4
        assert answer.usage.cache_read_input_tokens == 5
    assert message.model_extra == {"future_field": {"kept": True}}
    assert "future_event" in [e.type for e in events]  # new kinds of events too


async def test_what_only_anthropic_takes_moves_routing_on(
    start_router: RouterFactory, toml: tuple[str, FakeAnthropic, FakeOpenAI]
) -> None:
    config, claude, oa = toml
    async with start_router(config) as url, anthropic_client(url) as client:
        answered = await client.messages.with_raw_response.create(
            model="docs",
            max_tokens=100,
            messages=ASK,
        )
        with pytest.raises(anthropic.BadRequestError) as refused:
            await client.messages.create(
                model="docs-openai",
                max_tokens=100,
                messages=ASK,
            )
    assert answered.headers["x-router-target"] == "claude:claude-sonnet"
    assert claude.received[0].body["messages"] == ASK
    assert oa.received == []  # refused before anything was sent
    assert "messages[0].content[1]" in str(refused.value)


async def test_an_openai_client_reaches_openai_as_it_sent(
    start_router: RouterFactory, toml: tuple[str, FakeAnthropic, FakeOpenAI]
) -> None:
    config, _, oa = toml
    novel = {"future_param": {"x": 1}, "service_tier": "priority", "logprobs": True}
    ask: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]
    async with start_router(config) as url, openai_client(url) as client:
        completion = await client.chat.completions.create(
            model="oa:rich",
            messages=ask,
            extra_body=novel,
        )
        chunks = [
            chunk
            async for chunk in await client.chat.completions.create(
                model="oa:rich",
                messages=ask,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=novel,
            )
        ]
    plain, piped = oa.received
    assert plain.body == {"model": "rich", "messages": ask, **novel}
    assert piped.body == {
        "model": "rich",
        "messages": ask,
        "stream": True,
        "stream_options": {"include_usage": True},
        **novel,
    }
    assert completion.system_fingerprint == "fp_rich"
    assert completion.service_tier == "priority"
    assert completion.model_extra == {"x_host": {"region": "eu-1"}}
    assert completion.usage is not None
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 3
    assert all(c.service_tier == "priority" for c in chunks)
    assert all(c.model_extra == {"x_host": {"region": "eu-1"}} for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == (
        "echo: hi there"
    )
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens_details is not None
    assert usage.completion_tokens_details.reasoning_tokens == 2


async def test_a_passed_through_stream_that_breaks_is_resumed_in_the_same_message(
    start_router: RouterFactory, toml: tuple[str, FakeAnthropic, FakeOpenAI]
) -> None:
    config, claude, _ = toml
    async with (
        start_router(config) as url,
        anthropic_client(url) as client,
        client.messages.stream(
            model="resumed", max_tokens=500, messages=[{"role": "user", "content": "a story"}]
        ) as stream,
    ):
        events = [event async for event in stream]
        final = await stream.get_final_message()
    assert [e.type for e in events].count("message_start") == 1
    assert len(final.content) == 1
    assert final.content[0].type == "text"
    assert final.content[0].text == STORY
    assert final.stop_reason == "end_turn"
    # the continuation was asked with the delivered text as a prefill
    assert claude.received[-1].body["messages"][-1]["role"] == "assistant"


async def test_a_cached_answer_is_the_upstreams_own(
    start_router: RouterFactory, toml: tuple[str, FakeAnthropic, FakeOpenAI]
) -> None:
    config, claude, _ = toml
    hi: list[MessageParam] = [{"role": "user", "content": "hi"}]
    async with start_router(config) as url, anthropic_client(url) as client:
        first = await client.messages.with_raw_response.create(
            model="cached", max_tokens=10, messages=hi, extra_body={"top_k": 3}
        )
        again = await client.messages.with_raw_response.create(
            model="cached", max_tokens=10, messages=hi, extra_body={"top_k": 3}
        )
        other = await client.messages.with_raw_response.create(
            model="cached", max_tokens=10, messages=hi, extra_body={"top_k": 4}
        )
    assert again.headers["x-router-cache"] == "hit"
    assert orjson.loads(await again.read()) == orjson.loads(await first.read())
    assert (await again.parse()).content[0].type == "thinking"
    # top_k changes the answer: another key
    assert other.headers["x-router-cache"] == "miss"
    assert len(claude.received) == 2
