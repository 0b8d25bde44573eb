"""``response_format`` as a forced tool (Anthropic, Bedrock): the request, the answer and
the stream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import (
    ChatChunk,
    GatewayRequest,
    InvalidRequest,
    Message,
    Tool,
    UnsupportedParameter,
)
from adapters._anthropic import AnthropicAdapter
from tests.fakes.anthropic_upstream import stream_events, tool_stream

SCHEMA = {
    "type": "object",
    "properties": {"title": {"type": "string"}},
    "required": ["title"],
    "additionalProperties": False,
}
EVENT = {"type": "json_schema", "json_schema": {"name": "Event", "schema": SCHEMA, "strict": True}}
WEATHER = Tool("get_weather", parameters={"type": "object"})
HI = (Message("user", "hi"),)


def request(fmt: Any, **fields: Any) -> GatewayRequest:
    return GatewayRequest("claude", HI, extra={"response_format": fmt}, **fields)


def sent(req: GatewayRequest) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(AnthropicAdapter().build_request(req, "m").body)
    return body


def test_a_schema_becomes_the_one_forced_tool() -> None:
    body = sent(request(EVENT))
    assert body["tools"] == [
        {
            "name": "Event",
            "description": "Give your whole answer as this tool's input: a Event object.",
            "input_schema": SCHEMA,
        }
    ]
    assert body["tool_choice"] == {
        "type": "tool",
        "name": "Event",
        "disable_parallel_tool_use": True,
    }
    assert "response_format" not in body


def test_json_object_is_any_object() -> None:
    body = sent(request({"type": "json_object"}))
    assert body["tools"][0]["name"] == "json_response"
    assert body["tools"][0]["input_schema"] == {"type": "object"}
    assert body["tool_choice"]["name"] == "json_response"


def test_text_changes_nothing() -> None:
    body = sent(request({"type": "text"}))
    assert "tools" not in body
    assert "tool_choice" not in body


def test_with_the_clients_tools_some_tool_must_be_called() -> None:
    body = sent(request(EVENT, tools=(WEATHER,)))
    assert [t["name"] for t in body["tools"]] == ["get_weather", "Event"]
    assert body["tool_choice"] == {"type": "any"}
    named = {"type": "function", "function": {"name": "get_weather"}}
    body = sent(request(EVENT, tools=(WEATHER,), tool_choice=named))
    assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_a_name_clash_or_bad_name_takes_the_default() -> None:
    clash = {**EVENT, "json_schema": {**EVENT["json_schema"], "name": "get_weather"}}  # type: ignore[dict-item]
    assert sent(request(clash, tools=(WEATHER,)))["tools"][1]["name"] == "json_response"
    odd = {**EVENT, "json_schema": {**EVENT["json_schema"], "name": "an event"}}  # type: ignore[dict-item]
    assert sent(request(odd))["tools"][0]["name"] == "json_response"


def test_a_schema_that_is_not_an_object_is_refused_by_name() -> None:
    listed = {"type": "json_schema", "json_schema": {"name": "L", "schema": {"type": "array"}}}
    with pytest.raises(UnsupportedParameter) as refused:
        sent(request(listed))
    assert refused.value.param == "response_format"


@pytest.mark.parametrize("fmt", ["json", {"type": "json_schema"}, {"type": "yaml"}])
def test_a_malformed_response_format_is_a_bad_request(fmt: Any) -> None:
    with pytest.raises(InvalidRequest) as bad:
        sent(request(fmt))
    assert bad.value.param == "response_format"
    assert not isinstance(bad.value, UnsupportedParameter)


def message(content: list[dict[str, Any]], stop: str = "tool_use") -> bytes:
    return orjson.dumps(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "content": content,
            "stop_reason": stop,
            "usage": {"input_tokens": 3, "output_tokens": 4},
        }
    )


def test_the_forced_call_is_the_answers_text() -> None:
    call = {"type": "tool_use", "id": "t", "name": "Event", "input": {"title": "Tea"}}
    resp = AnthropicAdapter().response_for(request(EVENT), 200, [], message([call]))
    choice = resp.choices[0]
    assert choice.message.content == '{"title":"Tea"}'
    assert choice.message.tool_calls == ()
    assert choice.finish_reason == "stop"


def test_another_tool_call_stays_a_call() -> None:
    ours = {"type": "tool_use", "id": "t", "name": "Event", "input": {"title": "Tea"}}
    theirs = {"type": "tool_use", "id": "u", "name": "get_weather", "input": {}}
    resp = AnthropicAdapter().response_for(
        request(EVENT, tools=(WEATHER,)), 200, [], message([theirs, ours])
    )
    choice = resp.choices[0]
    assert [c.name for c in choice.message.tool_calls] == ["get_weather"]
    assert choice.finish_reason == "tool_calls"


def test_without_response_format_a_call_of_that_name_is_a_call() -> None:
    call = {"type": "tool_use", "id": "t", "name": "json_response", "input": {}}
    resp = AnthropicAdapter().response_for(GatewayRequest("claude", HI), 200, [], message([call]))
    assert resp.choices[0].message.tool_calls[0].name == "json_response"


def streamed(req: GatewayRequest, data: bytes, split: int) -> list[ChatChunk]:
    decoder = AnthropicAdapter().stream_decoder_for(req)
    return [*decoder.feed(data[:split]), *decoder.feed(data[split:]), *decoder.close()]


def forced_stream(arguments: str) -> bytes:
    """The fake's stream of a forced ``Event`` call with ``arguments``."""
    stream = tool_stream("m", "Event", orjson.loads(arguments))
    return b"".join([*stream.head, *stream.pieces, *stream.tail])


def test_a_streamed_call_streams_as_text_at_any_split() -> None:
    data = forced_stream('{"title": "Tea for two"}')
    for split in range(len(data) + 1):
        chunks = streamed(request(EVENT), data, split)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert orjson.loads(text) == {"title": "Tea for two"}
        assert not any(c.choices[0].delta.tool_calls for c in chunks if c.choices)
        finishes = [c.choices[0].finish_reason for c in chunks if c.choices]
        assert [f for f in finishes if f] == ["stop"]


def test_a_plain_stream_is_untouched() -> None:
    data = b"".join(stream_events("tool-caller", "x"))
    plain = streamed(GatewayRequest("claude", HI), data, 0)
    wrapped = streamed(request(EVENT, tools=(WEATHER,)), data, 0)
    assert wrapped == plain
