"""The OpenAI Responses ingress: the official openai SDK on /v1/responses, served by an
OpenAI chat upstream and by Anthropic, so the translation is exercised both ways."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.conftest import openai_client

if TYPE_CHECKING:
    from collections.abc import AsyncIterable

    from openai.types.responses import (
        FunctionToolParam,
        ResponseInputParam,
        ResponseStreamEvent,
    )

    from tests.conftest import RouterFactory
    from tests.fakes._base import Received
    from tests.fakes.anthropic_upstream import FakeAnthropic
    from tests.fakes.openai_upstream import FakeOpenAI

WEATHER: list[FunctionToolParam] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        "strict": None,
    }
]
#: The two upstreams, by the route that reaches each.
UPSTREAMS = ["oa", "claude"]


@pytest.fixture
def toml(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> str:
    return f"""
[defaults]
retries = 0

[providers.oa]
kind = "openai_compatible"  # OpenAI's own API takes /v1/responses as it is
base_url = "{fake_openai.url}"

[providers.claude]
kind = "anthropic"
base_url = "{fake_anthropic.url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[routes.chat]
fallback = ["oa:gpt-4o"]

[routes.cached]
fallback = ["oa:gpt-4o"]
cache = {{ ttl = "10m" }}
"""


def sent(upstream: str, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> Received:
    """The last request the upstream behind ``upstream`` got."""
    fake = fake_openai if upstream == "oa" else fake_anthropic
    return fake.received[-1]


async def test_text_with_instructions_from_openai(
    start_router: RouterFactory, fake_openai: FakeOpenAI, toml: str
) -> None:
    async with start_router(toml) as url, openai_client(url) as client:
        raw = await client.responses.with_raw_response.create(
            model="chat",
            input="hi there",
            instructions="Be brief.",
            max_output_tokens=100,
            temperature=0.5,
            metadata={"ticket": "42"},
        )
        response = raw.parse()
    assert response.object == "response"
    assert response.id.startswith("resp_")
    assert response.status == "completed"
    assert response.output_text == "echo: hi there"
    assert response.model == "gpt-4o-2024-08-06"  # the model that really answered
    assert response.instructions == "Be brief."
    assert response.metadata == {"ticket": "42"}
    assert response.max_output_tokens == 100
    assert response.usage is not None
    usage = response.usage
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (7, 5, 12)
    assert usage.input_tokens_details.cached_tokens == 3
    assert usage.output_tokens_details.reasoning_tokens == 2
    assert raw.headers["x-router-target"] == "oa:gpt-4o"
    body = fake_openai.received[-1].body
    assert body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi there"},
    ]
    assert body["max_completion_tokens"] == 100
    assert body["temperature"] == 0.5
    assert "metadata" not in body  # echoed to the client, never sent on


async def test_text_from_anthropic(
    start_router: RouterFactory, fake_anthropic: FakeAnthropic, toml: str
) -> None:
    message: ResponseInputParam = [
        {"role": "user", "content": [{"type": "input_text", "text": "hi there"}]}
    ]
    async with start_router(toml) as url, openai_client(url) as client:
        response = await client.responses.create(
            model="claude:claude-test", input=message, instructions="Be brief."
        )
    assert response.output_text == "echo: hi there"
    assert response.status == "completed"
    assert response.model == "claude-test-20250101"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == (25, 9)
    assert response.usage.input_tokens_details.cached_tokens == 5  # Anthropic's cache reads
    body = fake_anthropic.received[-1].body
    assert body["system"] == "Be brief."
    assert body["messages"] == [{"role": "user", "content": [{"type": "text", "text": "hi there"}]}]


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_function_call_round_trip(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    toml: str,
    upstream: str,
) -> None:
    question: ResponseInputParam = [{"role": "user", "content": "weather in Paris?"}]
    async with start_router(toml) as url, openai_client(url) as client:
        first = await client.responses.create(
            model=f"{upstream}:tool-caller", input=question, tools=WEATHER
        )
        calls = [item for item in first.output if item.type == "function_call"]
        assert len(calls) == 1
        call = calls[0]
        assert call.name == "get_weather"
        assert call.arguments.replace(" ", "") == '{"city":"Paris"}'
        assert first.status == "completed"
        assert first.tools[0].type == "function"
        replayed: Any = first.output  # as the SDK docs show: output items go back as they are
        answer: ResponseInputParam = [
            *question,
            *replayed,
            {"type": "function_call_output", "call_id": call.call_id, "output": "sunny"},
        ]
        second = await client.responses.create(
            model=f"{upstream}:gpt-4o", input=answer, tools=WEATHER
        )
    assert second.output_text.startswith("echo: ")
    body = sent(upstream, fake_openai, fake_anthropic).body
    if upstream == "oa":
        assistant, tool = body["messages"][1:]
        assert assistant["tool_calls"][0]["id"] == call.call_id
        assert assistant["tool_calls"][0]["function"]["name"] == "get_weather"
        assert tool == {"role": "tool", "content": "sunny", "tool_call_id": call.call_id}
        assert body["tools"][0]["function"]["name"] == "get_weather"
    else:
        assistant, results = body["messages"][1:]
        use = next(b for b in assistant["content"] if b["type"] == "tool_use")
        assert use["id"] == call.call_id
        assert use["input"] == {"city": "Paris"}
        assert results["content"][0]["type"] == "tool_result"
        assert results["content"][0]["tool_use_id"] == call.call_id
        assert body["tools"][0]["name"] == "get_weather"


async def test_json_schema_format_reaches_the_upstream(
    start_router: RouterFactory, fake_openai: FakeOpenAI, toml: str
) -> None:
    # The answer is checked against the schema too: the fake's json model answers
    # {"echo": "<input>"}, which matches.
    schema = {
        "type": "object",
        "properties": {"echo": {"type": "string"}},
        "required": ["echo"],
        "additionalProperties": False,
    }
    async with start_router(toml) as url, openai_client(url) as client:
        response = await client.responses.create(
            model="oa:gpt-json",
            input="Paris",
            text={
                "format": {"type": "json_schema", "name": "place", "schema": schema, "strict": True}
            },
            reasoning={"effort": "low"},
        )
    assert response.text is not None
    assert response.text.format is not None
    assert response.text.format.type == "json_schema"
    assert response.reasoning is not None
    assert response.reasoning.effort == "low"
    assert response.output_text == '{"echo":"Paris"}'
    body = fake_openai.received[-1].body
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }
    assert body["reasoning_effort"] == "low"


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_stream_deltas_add_up_to_the_final_text(
    start_router: RouterFactory, toml: str, upstream: str
) -> None:
    async with (
        start_router(toml) as url,
        openai_client(url) as client,
        client.responses.stream(model=f"{upstream}:gpt-4o", input="one two three") as stream,
    ):
        events = [event async for event in stream]
        final = await stream.get_final_response()
    deltas = [e.delta for e in events if e.type == "response.output_text.delta"]
    assert len(deltas) > 1
    assert "".join(deltas) == "echo: one two three"
    assert final.output_text == "echo: one two three"
    assert final.status == "completed"
    assert final.usage is not None
    assert final.usage.output_tokens > 0
    assert [e.sequence_number for e in events] == list(range(len(events)))
    kinds = [e.type for e in events if e.type != "response.output_text.delta"]
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_streamed_function_call(
    start_router: RouterFactory, toml: str, upstream: str
) -> None:
    async with (
        start_router(toml) as url,
        openai_client(url) as client,
        client.responses.stream(
            model=f"{upstream}:tool-caller", input="weather in Paris?", tools=WEATHER
        ) as stream,
    ):
        events = [event async for event in stream]
        final = await stream.get_final_response()
    call = next(item for item in final.output if item.type == "function_call")
    assert call.name == "get_weather"
    assert call.arguments.replace(" ", "") == '{"city":"Paris"}'
    pieces = [e.delta for e in events if e.type == "response.function_call_arguments.delta"]
    assert "".join(pieces) == call.arguments
    assert "response.function_call_arguments.done" in [e.type for e in events]


async def test_max_tokens_make_an_incomplete_response(
    start_router: RouterFactory, toml: str
) -> None:
    async with start_router(toml) as url, openai_client(url) as client:
        response = await client.responses.create(model="oa:long", input="hi")
        stream = await client.responses.create(model="oa:long", input="hi", stream=True)
        events = [event async for event in stream]
    assert response.status == "incomplete"
    assert response.incomplete_details is not None
    assert response.incomplete_details.reason == "max_output_tokens"
    assert events[-1].type == "response.incomplete"
    assert events[-1].response.incomplete_details is not None
    assert events[-1].response.incomplete_details.reason == "max_output_tokens"


async def test_cached_answers_are_replayed_as_responses(
    start_router: RouterFactory, fake_openai: FakeOpenAI, toml: str
) -> None:
    async with start_router(toml) as url, openai_client(url) as client:
        first = await client.responses.create(model="cached", input="hi", metadata={"n": "1"})
        raw = await client.responses.with_raw_response.create(
            model="cached", input="hi", metadata={"n": "2"}
        )
        again = raw.parse()
        async with client.responses.stream(model="cached", input="hi") as stream:
            streamed = await stream.get_final_response()
    assert raw.headers["x-router-cache"] == "hit"
    assert len(fake_openai.received) == 1
    assert first.output_text == again.output_text == streamed.output_text == "echo: hi"
    assert again.metadata == {"n": "2"}  # the settings are this request's own
    assert len({first.id, again.id, streamed.id}) == 3


def error_body(error: openai.APIStatusError) -> dict[str, Any]:
    assert isinstance(error.body, dict)
    return error.body


async def test_stateful_and_unknown_fields_are_refused_by_name(
    start_router: RouterFactory, fake_openai: FakeOpenAI, toml: str
) -> None:
    async with start_router(toml) as url, openai_client(url) as client:
        with pytest.raises(openai.BadRequestError) as stateful:
            await client.responses.create(
                model="chat", input="hi", previous_response_id="resp_earlier"
            )
        with pytest.raises(openai.BadRequestError) as unknown:
            await client.responses.create(model="chat", input="hi", extra_body={"frobnicate": 1})
        with pytest.raises(openai.BadRequestError) as builtin:
            await client.responses.create(model="chat", input="hi", tools=[{"type": "web_search"}])
    assert stateful.value.param == "previous_response_id"
    assert stateful.value.code == "unsupported_parameter"
    assert "state" in stateful.value.message
    assert unknown.value.param == "frobnicate"
    assert unknown.value.code == "unsupported_parameter"
    assert builtin.value.param == "tools[0].type"
    assert error_body(builtin.value)["type"] == "invalid_request_error"
    assert fake_openai.received == []  # refused before any upstream call


async def collect(stream: AsyncIterable[ResponseStreamEvent], seen: list[str]) -> None:
    async for event in stream:
        seen.append(event.type)


async def test_a_broken_stream_ends_failed_not_completed(
    start_router: RouterFactory, toml: str
) -> None:
    seen: list[str] = []
    async with start_router(toml) as url, openai_client(url) as client:
        stream = await client.responses.create(
            model="oa:break-mid-stream", input="one two three four", stream=True
        )
        with pytest.raises(openai.APIError, match="upstream"):
            await collect(stream, seen)
    assert "response.output_text.delta" in seen
    assert seen[-1] == "response.failed"
    assert "response.completed" not in seen


async def test_a_broken_stream_fails_the_sdk_stream_helper(
    start_router: RouterFactory, toml: str
) -> None:
    async with start_router(toml) as url, openai_client(url) as client:
        with pytest.raises(openai.APIError):
            async with client.responses.stream(
                model="claude:break-mid-stream", input="one two three four"
            ) as stream:
                await stream.get_final_response()
