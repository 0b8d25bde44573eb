"""AnthropicAdapter: request bytes out, answers and errors in; AnthropicStreamDecoder."""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import pytest

from adapters import (
    AuthenticationFailed,
    ChatChunk,
    ChunkChoice,
    ContextLengthExceeded,
    Delta,
    GatewayRequest,
    ImagePart,
    InvalidRequest,
    Message,
    NotFound,
    Overloaded,
    ProviderInternalError,
    RateLimitExceeded,
    SerializationError,
    StreamError,
    TextPart,
    Timeout,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
    adapter_factory,
)
from adapters._anthropic import AnthropicAdapter, AnthropicStreamDecoder, make_adapter
from tests.fakes.anthropic_upstream import REFUSAL, event, stream_events

KEY = "sk-ant-test-0123456789abcdef"
USER = Message("user", "hi")


def adapter(**kwargs: Any) -> AnthropicAdapter:
    return AnthropicAdapter("https://api.example.test", **kwargs)


def body(req: GatewayRequest, **kwargs: Any) -> dict[str, Any]:
    up = adapter(**kwargs).build_request(req, "claude-test")
    result: dict[str, Any] = orjson.loads(up.body)
    return result


def req(*messages: Message, **kwargs: Any) -> GatewayRequest:
    return GatewayRequest(model="route", messages=messages or (USER,), **kwargs)


# -- build_request ----------------------------------------------------------------------


def test_build_request_golden() -> None:
    up = adapter(api_key=KEY).build_request(
        req(Message("system", "Be brief."), USER, temperature=0.5), "claude-test"
    )
    assert up.method == "POST"
    assert up.url == "https://api.example.test/v1/messages"
    assert sorted(up.headers) == [
        ("accept", "application/json"),
        ("anthropic-version", "2023-06-01"),
        ("content-type", "application/json"),
        ("x-api-key", KEY),
    ]
    assert orjson.loads(up.body) == {
        "model": "claude-test",
        "max_tokens": 4096,
        "system": "Be brief.",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
        "temperature": 0.5,
    }


def test_headers_bearer_beta_version_and_operator_override() -> None:
    a = adapter(
        auth_token="tok",
        anthropic_version="2024-01-01",
        beta=("a-1", "b-2"),
        headers={"Anthropic-Version": "2099-01-01", "X-Team": "t"},
    )
    headers = dict(a.build_request(req(stream=True), "m").headers)
    assert headers["authorization"] == "Bearer tok"
    assert "x-api-key" not in headers
    assert headers["anthropic-beta"] == "a-1,b-2"
    assert headers["anthropic-version"] == "2099-01-01"  # the operator's win
    assert headers["x-team"] == "t"
    assert headers["accept"] == "text/event-stream"


def test_api_key_wins_over_auth_token() -> None:
    headers = dict(adapter(api_key=KEY, auth_token="tok").build_request(req(), "m").headers)
    assert headers["x-api-key"] == KEY
    assert "authorization" not in headers


def test_base_url_trailing_slash() -> None:
    a = AnthropicAdapter("https://api.example.test/")
    assert a.build_request(req(), "m").url == "https://api.example.test/v1/messages"


def test_every_system_and_developer_message_hoisted_in_order() -> None:
    sent = body(
        req(
            Message("system", "One."),
            Message("developer", (TextPart("Two."),)),
            USER,
            Message("system", "Three."),
        )
    )
    assert sent["system"] == "One.\n\nTwo.\n\nThree."
    assert [m["role"] for m in sent["messages"]] == ["user"]


def test_no_system_field_without_system_messages() -> None:
    assert "system" not in body(req())


def test_multi_turn_merges_consecutive_same_role() -> None:
    sent = body(
        req(
            Message("user", "a"),
            Message("user", "b"),
            Message("assistant", "c"),
            Message("user", "d"),
        )
    )
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "c"}]},
        {"role": "user", "content": [{"type": "text", "text": "d"}]},
    ]


def test_leading_assistant_gets_a_user_turn_and_prefill_is_trimmed() -> None:
    sent = body(req(Message("assistant", "hello"), USER, Message("assistant", "Sure:  ")))
    assert sent["messages"][0] == {"role": "user", "content": [{"type": "text", "text": "."}]}
    assert sent["messages"][-1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": "Sure:"}],
    }


def test_empty_text_and_empty_turns_dropped() -> None:
    sent = body(req(USER, Message("assistant", ""), Message("user", (TextPart(""), TextPart("x")))))
    assert sent["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "text", "text": "x"}]}
    ]


def test_sampling_limits_and_stop() -> None:
    sent = body(req(temperature=1.7, top_p=0.9, max_tokens=100, stop=("END", "STOP")))
    assert sent["temperature"] == 1.0  # clamped to Anthropic's 0..1
    assert sent["top_p"] == 0.9
    assert sent["max_tokens"] == 100
    assert sent["stop_sequences"] == ["END", "STOP"]


def test_default_max_tokens_configurable() -> None:
    assert body(req(), max_tokens=123)["max_tokens"] == 123


def test_stream_flag() -> None:
    assert body(req(stream=True, include_usage=True))["stream"] is True
    assert "stream" not in body(req())


def test_extra_user_mapped_others_dropped_and_n_rejected() -> None:
    sent = body(req(extra={"user": "u-1", "seed": 7, "response_format": {"type": "json_object"}}))
    assert sent["metadata"] == {"user_id": "u-1"}
    assert "seed" not in sent
    assert "response_format" not in sent
    with pytest.raises(InvalidRequest) as info:
        body(req(extra={"n": 2}))
    assert info.value.param == "n"


WEATHER = Tool(
    name="get_weather",
    description="Weather by city",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}},
)


def test_tool_definitions() -> None:
    sent = body(req(tools=(WEATHER, Tool(name="now"), Tool(name="s", parameters={}, strict=True))))
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "description": "Weather by city",
            "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
        {"name": "now", "input_schema": {"type": "object"}},
        {"name": "s", "input_schema": {"type": "object"}, "strict": True},
    ]
    assert "tool_choice" not in sent  # auto is Anthropic's default


def test_tool_schema_must_be_object() -> None:
    with pytest.raises(InvalidRequest) as info:
        body(req(tools=(Tool(name="x", parameters={"type": "string"}),)))
    assert info.value.param == "tools[0]"


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", None),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"type": "tool", "name": "get_weather"},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    assert body(req(tools=(WEATHER,), tool_choice=choice)).get("tool_choice") == expected


def test_tool_choice_invalid_and_parallel_calls() -> None:
    with pytest.raises(InvalidRequest) as info:
        body(req(tools=(WEATHER,), tool_choice="sometimes"))
    assert info.value.param == "tool_choice"
    sent = body(req(tools=(WEATHER,), extra={"parallel_tool_calls": False}))
    assert sent["tool_choice"] == {"type": "auto", "disable_parallel_tool_use": True}
    assert "tool_choice" not in body(req(tool_choice="required"))  # no tools, no choice


def test_tool_calls_and_results() -> None:
    sent = body(
        req(
            USER,
            Message(
                "assistant",
                "",
                tool_calls=(
                    ToolCall("call_1", "get_weather", '{"city":"Paris"}'),
                    ToolCall("call_2", "now", ""),
                    ToolCall("call_3", "bad", "{not json"),
                ),
            ),
            Message("tool", "18C", tool_call_id="call_1"),
            Message("tool", (TextPart("12:00"),), tool_call_id="call_2"),
            Message("tool", None, tool_call_id="call_3"),
            Message("user", "thanks"),
        )
    )
    assert sent["messages"][1:] == [
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"city": "Paris"},
                },
                {"type": "tool_use", "id": "call_2", "name": "now", "input": {}},
                {"type": "tool_use", "id": "call_3", "name": "bad", "input": {"_raw": "{not json"}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_2", "content": "12:00"},
                {"type": "tool_result", "tool_use_id": "call_3"},
                {"type": "text", "text": "thanks"},
            ],
        },
    ]


def test_tool_results_go_before_user_text_in_a_merged_turn() -> None:
    sent = body(
        req(
            Message("assistant", None, tool_calls=(ToolCall("c", "f", "{}"),)),
            Message("user", "first"),
            Message("tool", "r", tool_call_id="c"),
        )
    )
    assert [b["type"] for b in sent["messages"][-1]["content"]] == ["tool_result", "text"]


def test_tool_result_needs_its_call_id() -> None:
    with pytest.raises(InvalidRequest) as info:
        body(req(Message("tool", "x")))
    assert info.value.param == "messages[0].tool_call_id"


def test_images_data_url_and_http_url() -> None:
    content = (
        TextPart("what is this?"),
        ImagePart("data:image/png;base64,iVBORw0KGgo=", "low"),
        ImagePart("https://example.test/cat.jpg"),
    )
    sent = body(req(Message("user", content)))
    assert sent["messages"][0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.test/cat.jpg"}},
    ]
    assert AnthropicAdapter.image_urls is True


def test_image_tool_result_keeps_blocks() -> None:
    image = ImagePart("data:image/jpeg;base64,/9j/")
    sent = body(req(Message("tool", (TextPart("see"), image), tool_call_id="c")))
    result = sent["messages"][0]["content"][0]
    assert result["content"][1]["source"]["media_type"] == "image/jpeg"


@pytest.mark.parametrize(
    "url", ["data:image/bmp;base64,AAAA", "data:image/png,raw", "ftp://example.test/x.png"]
)
def test_bad_images_rejected(url: str) -> None:
    with pytest.raises(InvalidRequest) as info:
        body(req(Message("user", (ImagePart(url),))))
    assert info.value.param == "messages[0].content[0]"


# -- parse_response ---------------------------------------------------------------------


def message(**overrides: Any) -> bytes:
    raw = {
        "id": "msg_01",
        "type": "message",
        "role": "assistant",
        "model": "claude-test-20250101",
        "content": [{"type": "text", "text": "Hello!"}],
        "stop_reason": "end_turn",
        "stop_sequence": None,
        "usage": {"input_tokens": 10, "output_tokens": 3},
    }
    raw.update(overrides)
    return orjson.dumps(raw)


def test_parse_response_text() -> None:
    resp = adapter().parse_response(200, (), message())
    assert resp.id == "msg_01"
    assert resp.model == "claude-test-20250101"
    assert resp.created == 0
    assert resp.choices[0].message == Message("assistant", "Hello!")
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == Usage(10, 3)


def test_parse_response_tool_use_and_thinking_skipped() -> None:
    content = [
        {"type": "thinking", "thinking": "hmm", "signature": "sig"},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    resp = adapter().parse_response(200, (), message(content=content, stop_reason="tool_use"))
    msg = resp.choices[0].message
    assert msg.content is None
    assert msg.tool_calls == (ToolCall("toolu_1", "get_weather", '{"city":"Paris"}'),)
    assert resp.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("stop_reason", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        ("something_new", "stop"),
    ],
)
def test_stop_reason_mapping(stop_reason: str, finish: str) -> None:
    resp = adapter().parse_response(200, (), message(stop_reason=stop_reason))
    assert resp.choices[0].finish_reason == finish


def test_usage_counts_cached_input_as_prompt() -> None:
    usage = {
        "input_tokens": 10,
        "output_tokens": 4,
        "cache_creation_input_tokens": 100,
        "cache_read_input_tokens": 1000,
    }
    assert adapter().parse_response(200, (), message(usage=usage)).usage == Usage(
        1110, 4, cache_read_tokens=1000, cache_write_tokens=100
    )


@pytest.mark.parametrize(
    "raw", [b"not json", b"[]", b'{"type": "message"}', b'{"type": "error", "content": []}']
)
def test_parse_response_garbage(raw: bytes) -> None:
    with pytest.raises(SerializationError):
        adapter().parse_response(200, (), raw)


# -- parse_error ------------------------------------------------------------------------


def error_body(kind: str, msg: str) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": kind, "message": msg}, "request_id": "r"}
    )


@pytest.mark.parametrize(
    ("status", "kind", "cls"),
    [
        (400, "invalid_request_error", InvalidRequest),
        (401, "authentication_error", AuthenticationFailed),
        (402, "billing_error", AuthenticationFailed),
        (403, "permission_error", AuthenticationFailed),
        (404, "not_found_error", NotFound),
        (413, "request_too_large", InvalidRequest),
        (429, "rate_limit_error", RateLimitExceeded),
        (500, "api_error", ProviderInternalError),
        (504, "timeout_error", Timeout),
        (529, "overloaded_error", Overloaded),
        (503, "api_error", Overloaded),
    ],
)
def test_error_mapping(status: int, kind: str, cls: type[Exception]) -> None:
    err = adapter().parse_error(status, (), error_body(kind, "boom"))
    assert type(err) is cls
    assert err.message == "boom"
    assert err.upstream_status == status


def test_overloaded_type_on_another_status() -> None:
    assert isinstance(
        adapter().parse_error(500, (), error_body("overloaded_error", "x")), Overloaded
    )


def test_context_length() -> None:
    msg = "prompt is too long: 250000 tokens > 200000 maximum"
    err = adapter().parse_error(400, (), error_body("invalid_request_error", msg))
    assert isinstance(err, ContextLengthExceeded)
    assert err.message == msg


def test_rate_limit_reads_retry_after_not_rfc3339_resets() -> None:
    headers = [
        ("retry-after", "7"),
        ("anthropic-ratelimit-requests-reset", "2025-01-01T00:00:07Z"),
    ]
    err = adapter().parse_error(429, headers, error_body("rate_limit_error", "slow down"))
    assert isinstance(err, RateLimitExceeded)
    assert err.retry_after == 7.0
    only_reset = adapter().parse_error(429, headers[1:], error_body("rate_limit_error", "x"))
    assert only_reset.retry_after is None


def test_overloaded_keeps_retry_after() -> None:
    err = adapter().parse_error(529, [("retry-after", "3")], error_body("overloaded_error", "x"))
    assert err.retry_after == 3.0


@pytest.mark.parametrize("raw", [b"<html>Bad gateway</html>", b"", b'{"error": "x"}'])
def test_error_with_unparseable_body(raw: bytes) -> None:
    err = adapter().parse_error(502, (), raw)
    assert isinstance(err, ProviderInternalError)
    assert err.message == "upstream answered HTTP 502"


# -- probe, repr, factory ---------------------------------------------------------------


def test_probe_request() -> None:
    probe = adapter(api_key=KEY).probe_request()
    assert probe.method == "GET"
    assert probe.url == "https://api.example.test/v1/models"
    assert ("x-api-key", KEY) in probe.headers
    assert ("anthropic-version", "2023-06-01") in probe.headers
    assert probe.body == b""


def test_repr_never_shows_secrets() -> None:
    text = repr(adapter(api_key=KEY, auth_token="tok-secret"))
    assert KEY not in text
    assert "tok-secret" not in text
    assert "api.example.test" in text


def test_factory_from_settings() -> None:
    settings = {
        "kind": "anthropic",
        "base_url": "https://proxy.test",
        "api_key": KEY,
        "auth_token": None,
        "anthropic_version": "2023-06-01",
        "max_tokens": 222,
        "beta": ("x",),
        "headers": {"X-A": "1"},
        "models": (),
    }
    a = make_adapter("claude", settings)
    up = a.build_request(req(), "m")
    assert up.url == "https://proxy.test/v1/messages"
    assert orjson.loads(up.body)["max_tokens"] == 222
    assert ("anthropic-beta", "x") in up.headers
    assert ("x-a", "1") in up.headers
    assert a.name == "claude"
    assert adapter_factory("anthropic") is make_adapter
    assert a.capabilities("claude-test").vision


# -- stream decoder ---------------------------------------------------------------------

RECORDED = b"".join(stream_events("tool-caller", ""))


def decode(data: bytes, cuts: list[int]) -> list[ChatChunk]:
    decoder = AnthropicStreamDecoder()
    out: list[ChatChunk] = []
    last = 0
    for cut in [*cuts, len(data)]:
        out += decoder.feed(data[last:cut])
        last = cut
    return out + decoder.close()


def chunk(delta: Delta, finish: str | None = None) -> ChatChunk:
    return ChatChunk("msg_01fake", "tool-caller-20250101", 0, (ChunkChoice(0, delta, finish),))


def call(args: str) -> Delta:
    return Delta(tool_calls=(ToolCallDelta(0, arguments=args),))


EXPECTED = [
    attrs.evolve(
        chunk(Delta(role="assistant", content="")),
        start_usage=Usage(25, 1, cache_read_tokens=5),  # message_start's, up front
    ),
    chunk(Delta(content="Let")),
    chunk(Delta(content=" me")),
    chunk(Delta(content=" check.")),
    chunk(
        Delta(tool_calls=(ToolCallDelta(0, id="toolu_01fake", name="get_weather", arguments=""),))
    ),
    chunk(call('{"city"')),
    chunk(call(': "Par')),
    chunk(call('is"}')),
    chunk(Delta(), "tool_calls"),
    ChatChunk("msg_01fake", "tool-caller-20250101", 0, (), usage=Usage(25, 9, cache_read_tokens=5)),
]


def test_stream_golden() -> None:
    assert decode(RECORDED, []) == EXPECTED


def test_stream_every_split_point() -> None:
    for cut in range(len(RECORDED) + 1):
        assert decode(RECORDED, [cut]) == EXPECTED, cut


def test_stream_byte_by_byte_with_crlf() -> None:
    data = RECORDED.replace(b"\n", b"\r\n")
    assert decode(data, list(range(1, len(data)))) == EXPECTED


def test_stream_text_answer_and_stop_reasons() -> None:
    for model, finish in [("x", "stop"), ("long", "length"), ("refuser", "content_filter")]:
        chunks = decode(b"".join(stream_events(model, "a b")), [])
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == (REFUSAL if model == "refuser" else "a b")
        assert chunks[-2].choices[0].finish_reason == finish
        assert {(c.id, c.model, c.created) for c in chunks} == {
            ("msg_01fake", f"{model}-20250101", 0)
        }


def test_stream_tool_without_arguments_gets_empty_object() -> None:
    data = b"".join(
        [
            event(
                "message_start",
                {"message": {"id": "m", "model": "c", "usage": {"input_tokens": 1}}},
            ),
            event(
                "content_block_start",
                {
                    "index": 0,
                    "content_block": {"type": "tool_use", "id": "t", "name": "now", "input": {}},
                },
            ),
            event(
                "content_block_delta",
                {"index": 0, "delta": {"type": "input_json_delta", "partial_json": ""}},
            ),
            event("content_block_stop", {"index": 0}),
            event(
                "message_delta",
                {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 2}},
            ),
            event("message_stop", {}),
        ]
    )
    chunks = decode(data, [])
    pieces = [
        c.choices[0].delta.tool_calls[0].arguments
        for c in chunks
        if c.choices and c.choices[0].delta.tool_calls
    ]
    assert pieces == ["", "{}"]
    assert chunks[-1].usage == Usage(1, 2)


def test_stream_usage_cumulative_fields_kept() -> None:
    start = {
        "id": "m",
        "model": "c",
        "usage": {"input_tokens": 5, "cache_read_input_tokens": 100, "output_tokens": 1},
    }
    data = b"".join(
        [
            event("message_start", {"message": start}),
            event(
                "message_delta",
                {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
            ),
            event("message_delta", {"delta": {}, "usage": {"input_tokens": 6, "output_tokens": 8}}),
            event("message_stop", {}),
        ]
    )
    chunks = decode(data, [])
    assert chunks[-1].usage == Usage(106, 8, cache_read_tokens=100)
    assert chunks[-2].choices[0].finish_reason == "stop"


def test_stream_thinking_is_reasoning_and_unknown_events_ignored() -> None:
    data = b"".join(
        [
            event("message_start", {"message": {"id": "m", "model": "c"}}),
            event(
                "content_block_start",
                {"index": 0, "content_block": {"type": "thinking", "thinking": ""}},
            ),
            event(
                "content_block_delta",
                {"index": 0, "delta": {"type": "thinking_delta", "thinking": "hmm"}},
            ),
            event(
                "content_block_delta",
                {"index": 0, "delta": {"type": "signature_delta", "signature": "s"}},
            ),
            event("content_block_stop", {"index": 0}),
            event("brand_new_event", {"x": 1}),
            b": a comment\n\n",
            event(
                "message_delta",
                {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 3}},
            ),
            event("message_stop", {}),
            event("content_block_start", {"index": 9}),  # after the end: ignored
        ]
    )
    chunks = decode(data, [])
    assert [c.choices[0].delta for c in chunks if c.choices] == [
        Delta(role="assistant", content=""),
        Delta(reasoning_content="hmm"),  # OpenAI-format clients read it so
        Delta(),
    ]


@pytest.mark.parametrize("keep", [0, 3, 8, 14])
def test_truncated_stream_raises_on_close(keep: int) -> None:
    events = stream_events("tool-caller", "")
    decoder = AnthropicStreamDecoder()
    decoder.feed(b"".join(events[:keep]))
    with pytest.raises(StreamError):
        decoder.close()


def test_stream_ended_after_message_delta_is_truncated() -> None:
    events = stream_events("x", "a")
    decoder = AnthropicStreamDecoder()
    decoder.feed(b"".join(events[:-1]))  # no message_stop
    with pytest.raises(StreamError):
        decoder.close()


def test_in_band_error_event() -> None:
    decoder = AnthropicStreamDecoder()
    decoder.feed(b"".join(stream_events("x", "a b")[:3]))
    error = {"error": {"type": "overloaded_error", "message": "Overloaded"}}
    with pytest.raises(StreamError) as info:
        decoder.feed(event("error", error))
    assert "overloaded_error" in info.value.message
    assert "Overloaded" in info.value.message
    assert isinstance(info.value.__cause__, Overloaded)


@pytest.mark.parametrize(
    "data",
    [
        b"event: message_start\ndata: {nope}\n\n",
        b"event: message_start\ndata: [1]\n\n",
        b"event: message_start\ndata: {}\n\n",
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "x"}}),
    ],
)
def test_malformed_stream(data: bytes) -> None:
    with pytest.raises(StreamError):
        AnthropicStreamDecoder().feed(data)
