"""CohereAdapter: v2 chat requests, answers, errors, and its typed event stream."""

from __future__ import annotations

from typing import Any

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
    UnsupportedCapability,
    Usage,
)
from adapters._cohere import CohereAdapter, make_adapter

KEY = "co-key-0123456789abcdef"
BASE = "https://api.cohere.com"
MODEL = "command-a-03-2025"
VISION = "command-a-vision-07-2025"


def adapter(**kwargs: Any) -> CohereAdapter:
    return CohereAdapter(BASE, **{"api_key": KEY, **kwargs})


def body_of(req: GatewayRequest, model: str = MODEL) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(adapter().build_request(req, model).body)
    return body


# -- build_request ----------------------------------------------------------------------


def test_build_request_golden() -> None:
    req = GatewayRequest(
        model="chat",
        messages=(Message("system", "Be brief."), Message("user", "hi")),
        temperature=0.3,
        top_p=0.8,
        max_tokens=100,
        stop=("END",),
        extra={"seed": 5, "presence_penalty": 0.1, "logit_bias": {"1": 1}, "user": "u"},
    )
    up = adapter().build_request(req, MODEL)
    assert (up.method, up.url) == ("POST", f"{BASE}/v2/chat")
    assert sorted(up.headers) == [
        ("accept", "application/json"),
        ("authorization", f"Bearer {KEY}"),
        ("content-type", "application/json"),
    ]
    assert orjson.loads(up.body) == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "stream": False,
        "max_tokens": 100,
        "temperature": 0.3,
        "p": 0.8,
        "stop_sequences": ["END"],
        "seed": 5,
        "presence_penalty": 0.1,
    }


def test_stream_request() -> None:
    req = GatewayRequest(model="m", messages=(Message("user", "hi"),), stream=True)
    up = adapter().build_request(req, MODEL)
    assert orjson.loads(up.body)["stream"] is True
    assert ("accept", "text/event-stream") in up.headers


def test_multi_turn_tool_calls_and_results() -> None:
    req = GatewayRequest(
        model="m",
        messages=(
            Message("developer", "Use tools."),
            Message("user", "weather?"),
            Message(
                "assistant",
                None,
                tool_calls=(ToolCall("get_weather_1x", "get_weather", '{"city":"Paris"}'),),
            ),
            Message("tool", "18C", tool_call_id="get_weather_1x"),
            Message("assistant", "It is 18C."),
        ),
        tools=(
            Tool(
                "get_weather",
                "Weather by city",
                {"type": "object", "properties": {"city": {"type": "string"}}},
            ),
            Tool("now"),
        ),
    )
    body = body_of(req)
    assert body["messages"] == [
        {"role": "system", "content": "Use tools."},
        {"role": "user", "content": "weather?"},
        {
            "role": "assistant",
            "tool_calls": [
                {
                    "id": "get_weather_1x",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "content": "18C", "tool_call_id": "get_weather_1x"},
        {"role": "assistant", "content": "It is 18C."},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Weather by city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        },
        {
            "type": "function",
            "function": {"name": "now", "parameters": {"type": "object", "properties": {}}},
        },
    ]
    assert "tool_choice" not in body


@pytest.mark.parametrize(
    ("choice", "expected", "names"),
    [
        ("auto", None, ["a", "b"]),
        ("required", "REQUIRED", ["a", "b"]),
        ("none", "NONE", ["a", "b"]),
        ({"type": "function", "function": {"name": "b"}}, "REQUIRED", ["b"]),
    ],
)
def test_tool_choice(choice: Any, expected: str | None, names: list[str]) -> None:
    req = GatewayRequest(
        model="m",
        messages=(Message("user", "x"),),
        tools=(Tool("a"), Tool("b")),
        tool_choice=choice,
    )
    body = body_of(req)
    assert body.get("tool_choice") == expected
    assert [t["function"]["name"] for t in body["tools"]] == names


def test_images_for_a_vision_model() -> None:
    req = GatewayRequest(
        model="m",
        messages=(
            Message(
                "user",
                (
                    TextPart("what is this?"),
                    ImagePart("data:image/png;base64,AAAA"),
                    ImagePart("https://img.test/cat.png", "low"),
                ),
            ),
        ),
    )
    assert body_of(req, VISION)["messages"][0]["content"] == [
        {"type": "text", "text": "what is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
        {"type": "image_url", "image_url": {"url": "https://img.test/cat.png", "detail": "low"}},
    ]


def test_images_for_a_text_model_are_unsupported() -> None:
    req = GatewayRequest(
        model="m", messages=(Message("user", (ImagePart("data:image/png;base64,AA"),)),)
    )
    with pytest.raises(UnsupportedCapability, match="takes no images"):
        body_of(req, MODEL)


def test_capabilities_per_model() -> None:
    assert adapter().capabilities(MODEL).vision is False
    assert adapter().capabilities(MODEL).tools is True
    assert adapter().capabilities(VISION).vision is True
    assert adapter().capabilities("c4ai-aya-vision-32b").vision is True


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "json_object"}, {"type": "json_object"}),
        (
            {"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "object"}}},
            {"type": "json_object", "json_schema": {"type": "object"}},
        ),
        ({"type": "text"}, None),
    ],
)
def test_response_format(response_format: Any, expected: Any) -> None:
    req = GatewayRequest(
        model="m", messages=(Message("user", "x"),), extra={"response_format": response_format}
    )
    assert body_of(req).get("response_format") == expected


def test_make_adapter_repr_and_probe() -> None:
    a = make_adapter(
        "co", {"base_url": BASE, "api_key": KEY, "headers": {"X-Client-Name": "router"}}
    )
    assert KEY not in repr(a)
    up = a.probe_request()
    assert (up.method, up.url, up.body) == ("GET", f"{BASE}/v1/models", b"")
    assert ("authorization", f"Bearer {KEY}") in up.headers
    assert ("x-client-name", "router") in up.headers


# -- parse_response ---------------------------------------------------------------------


def answer(message: dict[str, Any], finish: str = "COMPLETE", usage: Any = None) -> bytes:
    return orjson.dumps(
        {
            "id": "c14c80c3-18eb-4519-9460-6c92edd8cfb4",
            "finish_reason": finish,
            "message": {"role": "assistant", **message},
            "usage": usage
            if usage is not None
            else {
                "billed_units": {"input_tokens": 5.0, "output_tokens": 3.0},
                "tokens": {"input_tokens": 71.0, "output_tokens": 3.0},
            },
        }
    )


def test_parse_response_text() -> None:
    body = answer({"content": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "!"}]})
    resp = adapter().parse_response(200, [], body)
    assert resp.id == "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
    assert resp.model == ""  # Cohere does not say; the router fills in the target's id
    assert resp.choices[0].message.content == "Hello!"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == Usage(71, 3)  # tokens, not billed units


def test_parse_response_billed_units_when_no_tokens() -> None:
    body = answer({"content": []}, usage={"billed_units": {"input_tokens": 5, "output_tokens": 2}})
    assert adapter().parse_response(200, [], body).usage == Usage(5, 2)


def test_parse_response_tool_calls() -> None:
    message = {
        "tool_plan": "I will look up the weather.",
        "tool_calls": [
            {
                "id": "get_weather_k1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
        ],
    }
    resp = adapter().parse_response(200, [], answer(message, "TOOL_CALL"))
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    assert choice.message.tool_calls == (
        ToolCall("get_weather_k1", "get_weather", '{"city":"Paris"}'),
    )


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("COMPLETE", "stop"),
        ("STOP_SEQUENCE", "stop"),
        ("MAX_TOKENS", "length"),
        ("TOOL_CALL", "tool_calls"),
        ("ERROR_TOXIC", "content_filter"),
        ("ERROR_LIMIT", "length"),
        ("SOMETHING_NEW", "stop"),
    ],
)
def test_finish_reasons(finish: str, expected: str) -> None:
    body = answer({"content": [{"type": "text", "text": "x"}]}, finish)
    assert adapter().parse_response(200, [], body).choices[0].finish_reason == expected


@pytest.mark.parametrize(
    ("finish", "cls"), [("ERROR", ProviderInternalError), ("TIMEOUT", Timeout)]
)
def test_error_finishes_raise(finish: str, cls: type[Exception]) -> None:
    with pytest.raises(cls):
        adapter().parse_response(200, [], answer({"content": []}, finish))


@pytest.mark.parametrize("body", [b"", b"nope", b"[]", b'{"id": "x"}'])
def test_parse_response_garbage(body: bytes) -> None:
    with pytest.raises(SerializationError):
        adapter().parse_response(200, [], body)


# -- parse_error ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (400, "invalid request: message must be at least 1 token long", InvalidRequest),
        (
            400,
            "too many tokens: total number of tokens in the prompt cannot exceed 128000 - received 140000",
            ContextLengthExceeded,
        ),
        (401, "invalid api token", AuthenticationFailed),
        (403, "forbidden", AuthenticationFailed),
        (404, "model 'command-z' not found", NotFound),
        (422, "invalid parameter p", InvalidRequest),
        (
            429,
            "You are using a Trial key, which is limited to 10 API calls / minute.",
            RateLimitExceeded,
        ),
        (499, "client closed request", ProviderInternalError),
        (500, "internal server error", ProviderInternalError),
        (503, "service unavailable", Overloaded),
        (504, "gateway timeout", Timeout),
    ],
)
def test_parse_error(status: int, message: str, cls: type[Exception]) -> None:
    err = adapter().parse_error(status, [], orjson.dumps({"id": "e1", "message": message}))
    assert type(err) is cls
    assert err.message == message
    assert err.upstream_status == status


def test_rate_limit_retry_after() -> None:
    err = adapter().parse_error(429, [("retry-after", "6")], b'{"message":"slow"}')
    assert type(err) is RateLimitExceeded
    assert err.retry_after == 6.0


def test_parse_error_not_json() -> None:
    assert "502" in adapter().parse_error(502, [], b"<html>").message


# -- the stream -------------------------------------------------------------------------


def ev(obj: dict[str, Any]) -> bytes:
    return b"event: " + str(obj["type"]).encode() + b"\ndata: " + orjson.dumps(obj) + b"\n\n"


ID = "29f14a5a-11de-4cae-9800-25e4747408ea"
EVENTS: list[dict[str, Any]] = [
    {
        "id": ID,
        "type": "message-start",
        "delta": {
            "message": {
                "role": "assistant",
                "content": [],
                "tool_plan": "",
                "tool_calls": [],
                "citations": [],
            }
        },
    },
    {"type": "tool-plan-delta", "delta": {"message": {"tool_plan": "I will check."}}},
    {
        "type": "tool-call-start",
        "index": 0,
        "delta": {
            "message": {
                "tool_calls": {
                    "id": "get_weather_a1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            }
        },
    },
    {
        "type": "tool-call-delta",
        "index": 0,
        "delta": {"message": {"tool_calls": {"function": {"arguments": '{"city'}}}},
    },
    {
        "type": "tool-call-delta",
        "index": 0,
        "delta": {"message": {"tool_calls": {"function": {"arguments": '":"K\u00f6ln"}'}}}},
    },
    {"type": "tool-call-end", "index": 0},
    {
        "type": "tool-call-start",
        "index": 1,
        "delta": {
            "message": {
                "tool_calls": {
                    "id": "now_b2",
                    "type": "function",
                    "function": {"name": "now", "arguments": "{}"},
                }
            }
        },
    },
    {"type": "tool-call-end", "index": 1},
    {
        "type": "message-end",
        "delta": {
            "finish_reason": "TOOL_CALL",
            "usage": {
                "billed_units": {"input_tokens": 30, "output_tokens": 12},
                "tokens": {"input_tokens": 900, "output_tokens": 40},
            },
        },
    },
]
TEXT_EVENTS: list[dict[str, Any]] = [
    {"id": ID, "type": "message-start", "delta": {"message": {"role": "assistant"}}},
    {
        "type": "content-start",
        "index": 0,
        "delta": {"message": {"content": {"type": "text", "text": ""}}},
    },
    {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Bon"}}}},
    {
        "type": "content-delta",
        "index": 0,
        "delta": {"message": {"content": {"text": "jour \u00e0 vous"}}},
    },
    {"type": "content-end", "index": 0},
    {
        "type": "message-end",
        "delta": {
            "finish_reason": "MAX_TOKENS",
            "usage": {"billed_units": {"input_tokens": 3.0, "output_tokens": 4.0}},
        },
    },
]
STREAM = b"".join(ev(e) for e in EVENTS)
TEXT_STREAM = b"".join(ev(e) for e in TEXT_EVENTS)


def c(delta: Delta, finish: str | None = None) -> ChatChunk:
    return ChatChunk(ID, "", 0, (ChunkChoice(0, delta, finish),))


EXPECTED = [
    c(Delta(role="assistant", content="")),
    c(Delta(tool_calls=(ToolCallDelta(0, "get_weather_a1", "get_weather", ""),))),
    c(Delta(tool_calls=(ToolCallDelta(0, arguments='{"city'),))),
    c(Delta(tool_calls=(ToolCallDelta(0, arguments='":"K\u00f6ln"}'),))),
    c(Delta(tool_calls=(ToolCallDelta(1, "now_b2", "now", "{}"),))),
    c(Delta(), "tool_calls"),
    ChatChunk(ID, "", 0, (), Usage(900, 40)),
]
TEXT_EXPECTED = [
    c(Delta(role="assistant", content="")),
    c(Delta(content="Bon")),
    c(Delta(content="jour \u00e0 vous")),
    c(Delta(), "length"),
    ChatChunk(ID, "", 0, (), Usage(3, 4)),
]


def decode(*parts: bytes) -> list[ChatChunk]:
    decoder = adapter().stream_decoder()
    out: list[ChatChunk] = []
    for part in parts:
        out.extend(decoder.feed(part))
    out.extend(decoder.close())
    return out


def test_stream_text() -> None:
    assert decode(TEXT_STREAM) == TEXT_EXPECTED


def test_stream_tool_calls() -> None:
    assert decode(STREAM) == EXPECTED


def test_stream_split_at_every_byte_offset() -> None:
    for i in range(len(STREAM) + 1):
        assert decode(STREAM[:i], STREAM[i:]) == EXPECTED, f"split at {i}"
    for i in range(len(TEXT_STREAM) + 1):
        assert decode(TEXT_STREAM[:i], TEXT_STREAM[i:]) == TEXT_EXPECTED, f"split at {i}"


def test_stream_one_byte_at_a_time() -> None:
    assert decode(*(STREAM[k : k + 1] for k in range(len(STREAM)))) == EXPECTED


def test_stream_with_crlf_every_split() -> None:
    crlf = TEXT_STREAM.replace(b"\n", b"\r\n")
    for i in range(len(crlf) + 1):
        assert decode(crlf[:i], crlf[i:]) == TEXT_EXPECTED, f"split at {i}"


def test_stream_as_json_lines() -> None:
    # Some relays pass Cohere's events on as bare JSON lines, without SSE framing.
    lines = b"".join(orjson.dumps(e) + b"\n" for e in TEXT_EVENTS)
    assert decode(lines) == TEXT_EXPECTED


def test_truncated_stream_raises_on_close() -> None:
    with pytest.raises(StreamError, match="message-end"):
        decode(STREAM[: STREAM.index(b"event: message-end")])


@pytest.mark.parametrize("finish", ["ERROR", "TIMEOUT"])
def test_error_finish_in_stream_raises(finish: str) -> None:
    end = ev({"type": "message-end", "delta": {"finish_reason": finish}})
    with pytest.raises(StreamError):
        decode(ev(TEXT_EVENTS[0]) + end)


def test_in_band_error_raises() -> None:
    end = ev(
        {"type": "message-end", "delta": {"finish_reason": "ERROR", "error": "model overloaded"}}
    )
    with pytest.raises(StreamError, match="model overloaded"):
        decode(ev(TEXT_EVENTS[0]) + end)


def test_malformed_event_raises() -> None:
    with pytest.raises(StreamError):
        decode(ev(TEXT_EVENTS[0]) + b"data: {nope\n\n")


def test_tool_call_arguments_of_another_type_are_text() -> None:
    # Once passed on as a list, to fail in the ingress encoders: found by tests/fuzz.
    start = {
        "type": "tool-call-start",
        "index": 0,
        "delta": {
            "message": {"tool_calls": {"id": "c1", "function": {"name": "f", "arguments": [1]}}}
        },
    }
    end = {"type": "message-end", "delta": {"finish_reason": "TOOL_CALL"}}
    chunks = decode(ev(TEXT_EVENTS[0]) + ev(start) + ev(end))
    calls = [d for ch in chunks for c in ch.choices for d in c.delta.tool_calls]
    assert calls == [ToolCallDelta(0, "c1", "f", "[1]")]
