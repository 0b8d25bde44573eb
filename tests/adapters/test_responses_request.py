"""A client's OpenAI Responses request -> GatewayRequest: what is translated, what is
refused (and named), and that nothing else slips through."""

from __future__ import annotations

from typing import Any

import pytest

from adapters import (
    OPENAI,
    RESPONSES,
    GatewayRequest,
    ImagePart,
    InvalidRequest,
    Message,
    TextPart,
    Tool,
    ToolCall,
    UnsupportedParameter,
    refuse_untranslated,
    responses_request_from_wire,
)

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather by city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": True,
}


STATEFUL = {"previous_response_id", "conversation", "background", "prompt", "context_management"}


def decode(**fields: Any) -> GatewayRequest:
    return responses_request_from_wire({"model": "chat", "input": "hi", **fields})


def test_request_golden() -> None:
    req = decode(
        instructions="Be brief.",
        input="What is the weather in Paris?",
        tools=[WEATHER],
        tool_choice={"type": "function", "name": "get_weather"},
        parallel_tool_calls=False,
        max_output_tokens=300,
        temperature=0.2,
        top_p=0.9,
        metadata={"ticket": "42"},
        reasoning={"effort": "low", "summary": "auto"},
        text={"format": {"type": "json_object"}, "verbosity": "low"},
        user="u-1",
        store=True,
        stream=True,
    )
    assert req.model == "chat"
    assert req.messages == (
        Message("system", "Be brief."),
        Message("user", "What is the weather in Paris?"),
    )
    assert req.stream is True
    assert req.include_usage is True
    assert (req.temperature, req.top_p) == (0.2, 0.9)
    assert (req.max_tokens, req.limit_name) == (300, "max_completion_tokens")
    assert req.tools == (
        Tool("get_weather", "Weather by city", WEATHER["parameters"], strict=True),
    )
    assert req.tool_choice == {"type": "function", "function": {"name": "get_weather"}}
    assert req.extra == {
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
        "verbosity": "low",
        "reasoning_effort": "low",
        "user": "u-1",
    }
    assert req.echo == {
        "instructions": "Be brief.",
        "max_output_tokens": 300,
        "tools": [WEATHER],
        "tool_choice": {"type": "function", "name": "get_weather"},
        "parallel_tool_calls": False,
        "text": {"format": {"type": "json_object"}, "verbosity": "low"},
        "reasoning": {"effort": "low", "summary": "auto"},
        "metadata": {"ticket": "42"},
        "user": "u-1",
        "temperature": 0.2,
        "top_p": 0.9,
    }


def test_a_bare_request_has_the_defaults() -> None:
    req = decode()
    assert req.messages == (Message("user", "hi"),)
    assert req.stream is False
    assert req.max_tokens is None
    assert req.tools == ()
    assert req.tool_choice is None
    assert req.extra == {}  # parallel_tool_calls only goes out with tools


def test_null_fields_count_as_not_given() -> None:
    nulls = ("previous_response_id", "conversation", "instructions", "tools", "text", "include")
    assert decode(**dict.fromkeys(nulls)) == decode()


def test_json_schema_format_becomes_the_chat_one() -> None:
    schema = {"type": "object", "properties": {}, "additionalProperties": False}
    fmt = {"type": "json_schema", "name": "x", "schema": schema, "strict": True}
    req = decode(text={"format": fmt})
    assert req.extra["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "x", "schema": schema, "strict": True},
    }
    assert req.echo["text"] == {"format": fmt}
    assert "response_format" not in decode(text={"format": {"type": "text"}}).extra


def test_message_items_and_their_parts() -> None:
    req = decode(
        input=[
            {"role": "developer", "content": "Answer in French."},
            {
                "type": "message",
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "https://x.test/a.png", "detail": "low"},
                    {"type": "input_image", "image_url": "data:image/png;base64,AAAA"},
                ],
            },
            {
                "type": "message",
                "role": "assistant",
                "id": "msg_1",
                "status": "completed",
                "content": [
                    {"type": "output_text", "text": "Un chat.", "annotations": []},
                    {"type": "refusal", "refusal": " Rien de plus."},
                ],
            },
        ]
    )
    assert req.messages == (
        Message("developer", "Answer in French."),
        Message(
            "user",
            (
                TextPart("What is this?"),
                ImagePart("https://x.test/a.png", "low"),
                ImagePart("data:image/png;base64,AAAA"),
            ),
        ),
        Message("assistant", "Un chat. Rien de plus."),
    )


def test_function_calls_join_their_turn_and_outputs_become_tool_messages() -> None:
    def call(n: int) -> dict[str, Any]:
        args = '{"city":"Paris"}'
        return {"type": "function_call", "call_id": f"c{n}", "name": "f", "arguments": args}

    req = decode(
        input=[
            {"role": "user", "content": "weather?"},
            {"role": "assistant", "content": "Checking."},
            {"type": "reasoning", "id": "rs_1", "summary": []},  # left out
            call(1),
            call(2),
            {"type": "function_call_output", "call_id": "c1", "output": "sunny"},
            {
                "type": "function_call_output",
                "call_id": "c2",
                "output": [{"type": "input_text", "text": "warm"}],
            },
            call(3),  # a turn of calls alone
        ]
    )
    calls = tuple(ToolCall(f"c{n}", "f", '{"city":"Paris"}') for n in (1, 2, 3))
    assert req.messages == (
        Message("user", "weather?"),
        Message("assistant", "Checking.", tool_calls=calls[:2]),
        Message("tool", "sunny", tool_call_id="c1"),
        Message("tool", "warm", tool_call_id="c2"),
        Message("assistant", None, tool_calls=calls[2:]),
    )


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"conversation": "conv_1"}, "conversation"),
        ({"background": True}, "background"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt"),
        ({"context_management": [{"type": "compaction"}]}, "context_management"),
        ({"frobnicate": 1}, "frobnicate"),
        ({"top_logprobs": 2}, "top_logprobs"),
        ({"max_tool_calls": 3}, "max_tool_calls"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"include": "reasoning.encrypted_content"}, "include"),
        ({"include": [["x"]]}, "include"),
        ({"truncation": "auto"}, "truncation"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type"),
        ({"tools": [WEATHER, {"type": "file_search"}]}, "tools[1].type"),
        ({"tools": [{**WEATHER, "defer_loading": True}]}, "tools[0].defer_loading"),
        ({"tool_choice": {"type": "allowed_tools", "tools": []}}, "tool_choice"),
        ({"text": {"format": {"type": "text"}, "shape": 1}}, "text.shape"),
        ({"reasoning": {"effort": "low", "mode": "pro"}}, "reasoning.mode"),
        ({"input": [{"type": "item_reference", "id": "msg_1"}]}, "input[0].type"),
        ({"input": [{"type": "web_search_call", "id": "ws_1"}]}, "input[0].type"),
        ({"input": [{"type": ["message"]}]}, "input[0].type"),  # unhashable: still named
        (
            {"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]},
            "input[0].content[0].type",
        ),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "file_id": "f"}]}]},
            "input[0].content[0].file_id",
        ),
        (
            {
                "input": [
                    {
                        "type": "function_call_output",
                        "call_id": "c",
                        "output": [{"type": "input_image", "image_url": "https://x.test/a"}],
                    }
                ]
            },
            "input[0].output[0]",
        ),
    ],
)
def test_what_is_not_served_is_refused_by_name(fields: dict[str, Any], param: str) -> None:
    """What needs stored state is refused as the body is read; what has no unified form
    by every target but OpenAI's own API, which takes the body as it is."""
    with pytest.raises(UnsupportedParameter) as info:
        refuse_untranslated(decode(**fields), OPENAI, "gpt")
    assert info.value.param == param
    if param not in STATEFUL:
        req = decode(**fields)
        assert req.raw is not None
        assert req.raw.body == {"model": "chat", "input": "hi", **fields}
        refuse_untranslated(req, (OPENAI, RESPONSES), "openai")  # passes through
    assert info.value.status_hint == 400
    assert info.value.to_openai()["error"]["code"] == "unsupported_parameter"


def test_stateless_settings_are_accepted() -> None:
    assert decode(background=False, store=False, truncation="disabled", include=[]) == decode()
    assert decode(store=True, stream_options={"include_obfuscation": False}) == decode()
    assert decode(include=["reasoning.encrypted_content"]) == decode()  # none to give


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"input": None}, "input"),
        ({"input": []}, "input"),
        ({"input": 3}, "input"),
        ({"input": ["hi"]}, "input[0]"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": ["user"], "content": "x"}]}, "input[0].role"),
        ({"input": [{"role": "user", "content": 3}]}, "input[0].content"),
        (
            {"input": [{"role": "user", "content": [{"type": "output_text", "text": "x"}]}]},
            "input[0].content[0]",
        ),
        (
            {"input": [{"role": "assistant", "content": [{"type": "input_text", "text": "x"}]}]},
            "input[0].content[0]",
        ),
        ({"input": [{"type": "function_call", "call_id": "c", "name": "f"}]}, "input[0].arguments"),
        ({"input": [{"type": "function_call_output", "output": "x"}]}, "input[0].call_id"),
        ({"instructions": 3}, "instructions"),
        ({"stream": "yes"}, "stream"),
        ({"store": "no"}, "store"),
        ({"max_output_tokens": 0}, "max_output_tokens"),
        ({"max_output_tokens": True}, "max_output_tokens"),
        ({"temperature": "hot"}, "temperature"),
        ({"metadata": {"n": 1}}, "metadata"),
        ({"parallel_tool_calls": "no"}, "parallel_tool_calls"),
        ({"tools": {}}, "tools"),
        ({"tools": [{"type": "function"}]}, "tools[0].name"),
        ({"tool_choice": {"type": "function"}}, "tool_choice.name"),
        ({"text": {"format": {"type": "yaml"}}}, "text.format.type"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name"),
        ({"text": {"format": {"type": "json_schema", "name": "x"}}}, "text.format.schema"),
        ({"text": {"verbosity": "loud"}}, "text.verbosity"),
        ({"reasoning": {"effort": "extreme"}}, "reasoning.effort"),
        ({"reasoning": {"summary": {"auto": 1}}}, "reasoning.summary"),
        ({"user": 7}, "user"),
    ],
)
def test_invalid_requests_name_the_param(fields: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        decode(**fields)
    assert info.value.param == param
    assert not isinstance(info.value, UnsupportedParameter)


def test_body_must_be_an_object_with_a_model() -> None:
    with pytest.raises(InvalidRequest):
        responses_request_from_wire([])
    with pytest.raises(InvalidRequest) as info:
        responses_request_from_wire({"input": "hi"})
    assert info.value.param == "model"
