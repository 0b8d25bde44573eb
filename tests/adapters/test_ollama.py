"""OllamaAdapter: native /api/chat requests, answers, errors, and its NDJSON stream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import (
    AuthenticationFailed,
    ChatChunk,
    ChunkChoice,
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
    Tool,
    ToolCall,
    ToolCallDelta,
    UnsupportedCapability,
    Usage,
)
from adapters._ollama import OllamaAdapter, make_adapter

KEY = "ollama-cloud-key-0123456789"
BASE = "http://127.0.0.1:11434"
PNG = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk"
CREATED = "2026-11-26T05:00:00.123456789Z"
CREATED_S = 1795669200


def adapter(**kwargs: Any) -> OllamaAdapter:
    return OllamaAdapter(BASE, **kwargs)


def body_of(req: GatewayRequest, model: str = "llama3.2") -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(adapter().build_request(req, model).body)
    return body


# -- build_request ----------------------------------------------------------------------


def test_build_request_golden() -> None:
    req = GatewayRequest(
        model="chat",
        messages=(Message("system", "Be brief."), Message("user", "hi")),
        temperature=0.2,
        top_p=0.9,
        max_tokens=256,
        stop=("END", "STOP"),
        extra={"seed": 1, "frequency_penalty": 0.5, "logit_bias": {"1": 2}, "user": "u"},
    )
    up = adapter().build_request(req, "llama3.2")
    assert up.method == "POST"
    assert up.url == f"{BASE}/api/chat"
    assert sorted(up.headers) == [
        ("accept", "application/json"),
        ("content-type", "application/json"),
    ]
    assert orjson.loads(up.body) == {
        "model": "llama3.2",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "stream": False,  # Ollama streams by default: say so
        "options": {
            "temperature": 0.2,
            "top_p": 0.9,
            "num_predict": 256,
            "stop": ["END", "STOP"],
            "seed": 1,
            "frequency_penalty": 0.5,
        },
    }


def test_stream_request() -> None:
    req = GatewayRequest(model="m", messages=(Message("user", "hi"),), stream=True)
    up = adapter().build_request(req, "llama3.2")
    assert orjson.loads(up.body)["stream"] is True
    assert ("accept", "application/x-ndjson") in up.headers
    assert "options" not in orjson.loads(up.body)


def test_api_key_is_a_bearer_token() -> None:
    req = GatewayRequest(model="m", messages=(Message("user", "hi"),))
    up = adapter(api_key=KEY).build_request(req, "m")
    assert ("authorization", f"Bearer {KEY}") in up.headers


def test_developer_role_is_system() -> None:
    req = GatewayRequest(model="m", messages=(Message("developer", "rules"), Message("user", "x")))
    assert body_of(req)["messages"][0] == {"role": "system", "content": "rules"}


def test_multi_turn_with_tools() -> None:
    req = GatewayRequest(
        model="m",
        messages=(
            Message("user", "weather in Tokyo?"),
            Message(
                "assistant",
                "",
                tool_calls=(ToolCall("call_7", "get_weather", '{"city":"Tokyo"}'),),
            ),
            Message("tool", "18C", tool_call_id="call_7"),
            Message("assistant", "It is 18C."),
            Message("user", "thanks"),
        ),
        tools=(
            Tool(
                "get_weather",
                "Weather by city",
                {"type": "object", "properties": {"city": {"type": "string"}}},
            ),
            Tool("now"),
        ),
        tool_choice="auto",
    )
    body = body_of(req)
    assert body["messages"] == [
        {"role": "user", "content": "weather in Tokyo?"},
        {
            "role": "assistant",
            "content": "",
            "tool_calls": [
                {
                    "id": "call_7",
                    "function": {"name": "get_weather", "arguments": {"city": "Tokyo"}},
                }
            ],
        },
        {"role": "tool", "content": "18C", "tool_call_id": "call_7", "tool_name": "get_weather"},
        {"role": "assistant", "content": "It is 18C."},
        {"role": "user", "content": "thanks"},
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
        {"type": "function", "function": {"name": "now", "parameters": {"type": "object"}}},
    ]
    assert "tool_choice" not in body


def test_tool_result_names_the_latest_call_with_that_id() -> None:
    # Synthesised ids repeat across turns (call_0 each time): the nearest call wins.
    req = GatewayRequest(
        model="m",
        messages=(
            Message("assistant", None, tool_calls=(ToolCall("call_0", "first", "{}"),)),
            Message("tool", "a", tool_call_id="call_0"),
            Message("assistant", None, tool_calls=(ToolCall("call_0", "second", "{}"),)),
            Message("tool", "b", tool_call_id="call_0"),
        ),
    )
    names = [m.get("tool_name") for m in body_of(req)["messages"]]
    assert names == [None, "first", None, "second"]


def test_tool_choice_none_withholds_the_tools() -> None:
    req = GatewayRequest(
        model="m", messages=(Message("user", "x"),), tools=(Tool("f"),), tool_choice="none"
    )
    assert "tools" not in body_of(req)


def test_tool_call_arguments_must_be_json() -> None:
    req = GatewayRequest(
        model="m",
        messages=(Message("assistant", None, tool_calls=(ToolCall("c", "f", "{not json"),)),),
    )
    with pytest.raises(InvalidRequest, match="not JSON"):
        body_of(req)


def test_images_from_data_urls_are_raw_base64() -> None:
    req = GatewayRequest(
        model="m",
        messages=(
            Message(
                "user",
                (
                    TextPart("what is "),
                    ImagePart(f"data:image/png;base64,{PNG}"),
                    TextPart("this?"),
                    ImagePart(f"data:image/jpeg;base64,{PNG}", "high"),
                ),
            ),
        ),
    )
    assert body_of(req)["messages"] == [
        {"role": "user", "content": "what is this?", "images": [PNG, PNG]}
    ]


def test_image_urls_are_unsupported() -> None:
    assert adapter().image_urls is False
    req = GatewayRequest(
        model="m", messages=(Message("user", (ImagePart("https://img.test/cat.png"),)),)
    )
    with pytest.raises(UnsupportedCapability) as info:
        body_of(req)
    assert "ollama" in info.value.message
    assert "server.fetch_images = true" in info.value.message


@pytest.mark.parametrize(
    ("response_format", "expected"),
    [
        ({"type": "json_object"}, "json"),
        (
            {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
            {"type": "object"},
        ),
        ({"type": "text"}, None),
    ],
)
def test_response_format(response_format: dict[str, Any], expected: Any) -> None:
    req = GatewayRequest(
        model="m", messages=(Message("user", "x"),), extra={"response_format": response_format}
    )
    assert body_of(req).get("format") == expected


def test_operator_headers_override() -> None:
    req = GatewayRequest(model="m", messages=(Message("user", "x"),))
    up = adapter(api_key=KEY, headers={"Authorization": "Bearer other"}).build_request(req, "m")
    assert ("authorization", "Bearer other") in up.headers
    assert ("authorization", f"Bearer {KEY}") not in up.headers


def test_make_adapter_and_repr() -> None:
    a = make_adapter("local", {"base_url": "http://gpu:11434", "api_key": KEY, "headers": {}})
    assert a.probe_request().url == "http://gpu:11434/api/tags"
    assert KEY not in repr(a)
    assert "gpu:11434" in repr(a)


def test_probe_request() -> None:
    up = adapter(api_key=KEY).probe_request()
    assert (up.method, up.url, up.body) == ("GET", f"{BASE}/api/tags", b"")
    assert ("authorization", f"Bearer {KEY}") in up.headers


def test_capabilities_default_to_yes() -> None:
    caps = adapter().capabilities("llava")
    assert caps.vision
    assert caps.tools


# -- parse_response ---------------------------------------------------------------------


def answer(message: dict[str, Any], done_reason: str | None = "stop", **more: Any) -> bytes:
    return orjson.dumps(
        {
            "model": "llama3.2:latest",
            "created_at": CREATED,
            "message": {"role": "assistant", **message},
            "done": True,
            "done_reason": done_reason,
            "total_duration": 5_000_000_000,
            "prompt_eval_count": 26,
            "eval_count": 12,
            **more,
        }
    )


def test_parse_response_text() -> None:
    resp = adapter().parse_response(200, [], answer({"content": "Hello!"}))
    assert resp.model == "llama3.2:latest"
    assert resp.created == CREATED_S
    assert resp.id == f"chatcmpl-ollama-{CREATED_S}"
    assert resp.choices[0].message.content == "Hello!"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == Usage(26, 12)


def test_parse_response_tool_calls_get_ids_and_json_text() -> None:
    calls = [
        {"function": {"name": "get_weather", "arguments": {"city": "Tokyo"}}},
        {"id": "call_x", "function": {"name": "now", "arguments": {}}},
    ]
    resp = adapter().parse_response(200, [], answer({"content": "", "tool_calls": calls}))
    choice = resp.choices[0]
    assert choice.finish_reason == "tool_calls"  # Ollama says "stop"
    assert choice.message.content is None
    assert choice.message.tool_calls == (
        ToolCall("call_0", "get_weather", '{"city":"Tokyo"}'),
        ToolCall("call_x", "now", "{}"),
    )


@pytest.mark.parametrize(
    ("done_reason", "finish"),
    [("stop", "stop"), ("length", "length"), ("load", "stop"), ("unload", "stop"), (None, "stop")],
)
def test_finish_reasons(done_reason: str | None, finish: str) -> None:
    resp = adapter().parse_response(200, [], answer({"content": "x"}, done_reason))
    assert resp.choices[0].finish_reason == finish


def test_usage_counts_may_be_missing() -> None:
    raw = orjson.loads(answer({"content": "x"}))
    del raw["prompt_eval_count"]  # a fully cached prompt: Ollama omits the zero
    resp = adapter().parse_response(200, [], orjson.dumps(raw))
    assert resp.usage == Usage(0, 12)
    del raw["eval_count"]
    assert adapter().parse_response(200, [], orjson.dumps(raw)).usage is None


@pytest.mark.parametrize(
    "body", [b"", b"nope", b"[]", b'{"model": "x"}', b'{"error": "model crashed"}']
)
def test_parse_response_garbage(body: bytes) -> None:
    with pytest.raises(SerializationError):
        adapter().parse_response(200, [], body)


# -- parse_error ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (400, "invalid options", InvalidRequest),
        (401, "unauthorized", AuthenticationFailed),
        (404, "model 'llama9' not found, try pulling it first", NotFound),
        (429, "too many requests", RateLimitExceeded),
        (500, "llama runner process has terminated", ProviderInternalError),
        (502, "cloud model unreachable", ProviderInternalError),
        (503, "server busy", Overloaded),
    ],
)
def test_parse_error(status: int, message: str, cls: type[Exception]) -> None:
    err = adapter().parse_error(status, [], orjson.dumps({"error": message}))
    assert type(err) is cls
    assert err.message == message
    assert err.upstream_status == status


def test_rate_limit_retry_after() -> None:
    err = adapter().parse_error(429, [("retry-after", "3")], b'{"error":"slow down"}')
    assert err.retry_after == 3.0


def test_parse_error_not_json() -> None:
    err = adapter().parse_error(500, [], b"Internal Server Error")
    assert type(err) is ProviderInternalError
    assert "500" in err.message


# -- the stream -------------------------------------------------------------------------


def line(message: dict[str, Any], done: bool = False, **more: Any) -> bytes:
    obj = {
        "model": "llama3.2:latest",
        "created_at": CREATED if not done else "2026-11-26T05:00:02Z",
        "message": {"role": "assistant", **message},
        "done": done,
        **more,
    }
    return orjson.dumps(obj) + b"\n"


DONE = line(
    {"content": ""},
    done=True,
    done_reason="stop",
    total_duration=4_935_886_791,
    load_duration=534_986_708,
    prompt_eval_count=26,
    prompt_eval_duration=107_345_000,
    eval_count=237,
    eval_duration=4_289_432_000,
)
STREAM = b"".join(
    [
        line({"content": "Das"}),
        line({"content": " Wetter \u00fcber"}),
        line(
            {
                "content": "",
                "tool_calls": [
                    {"function": {"name": "get_weather", "arguments": {"city": "K\u00f6ln"}}}
                ],
            }
        ),
        line({"content": "", "tool_calls": [{"function": {"name": "now", "arguments": {}}}]}),
        DONE,
    ]
)
ID = f"chatcmpl-ollama-{CREATED_S}"


def c(delta: Delta, finish: str | None = None) -> ChatChunk:
    return ChatChunk(ID, "llama3.2:latest", CREATED_S, (ChunkChoice(0, delta, finish),))


EXPECTED = [
    c(Delta(role="assistant", content="")),
    c(Delta(content="Das")),
    c(Delta(content=" Wetter \u00fcber")),
    c(Delta(tool_calls=(ToolCallDelta(0, "call_0", "get_weather", '{"city":"K\u00f6ln"}'),))),
    c(Delta(tool_calls=(ToolCallDelta(1, "call_1", "now", "{}"),))),
    c(Delta(), "tool_calls"),
    ChatChunk(ID, "llama3.2:latest", CREATED_S, (), Usage(26, 237)),
]


def decode(*parts: bytes) -> list[ChatChunk]:
    decoder = adapter().stream_decoder()
    out: list[ChatChunk] = []
    for part in parts:
        out.extend(decoder.feed(part))
    out.extend(decoder.close())
    return out


def test_stream_in_one_feed() -> None:
    assert decode(STREAM) == EXPECTED


def test_stream_split_at_every_byte_offset() -> None:
    for i in range(len(STREAM) + 1):
        assert decode(STREAM[:i], STREAM[i:]) == EXPECTED, f"split at {i}"


def test_stream_one_byte_at_a_time() -> None:
    assert decode(*(STREAM[k : k + 1] for k in range(len(STREAM)))) == EXPECTED


def test_stream_without_final_newline_and_with_crlf() -> None:
    assert decode(STREAM.replace(b"\n", b"\r\n")[:-2]) == EXPECTED


def test_stream_length_finish() -> None:
    out = decode(line({"content": "a"}) + line({"content": ""}, done=True, done_reason="length"))
    assert out[-1].choices[0].finish_reason == "length"  # no usage chunk: no counts


def test_stream_without_done_line_raises_on_close() -> None:
    with pytest.raises(StreamError, match="done"):
        decode(STREAM[: STREAM.index(DONE)])


def test_stream_cut_inside_the_done_line_raises() -> None:
    with pytest.raises(StreamError):
        decode(STREAM[:-10])


def test_in_band_error_raises() -> None:
    with pytest.raises(StreamError, match="out of memory"):
        decode(line({"content": "a"}) + b'{"error":"out of memory"}\n')


def test_malformed_line_raises() -> None:
    with pytest.raises(StreamError):
        decode(line({"content": "a"}) + b"{garbage\n")


def test_lines_after_done_are_ignored() -> None:
    assert decode(STREAM + line({"content": "late"})) == EXPECTED


@pytest.mark.parametrize("count", [[None], ":", {"n": 1}])
def test_malformed_token_counts_raise_stream_error(count: object) -> None:
    # Once a TypeError or ValueError out of the decoder: found by tests/fuzz.
    with pytest.raises(StreamError, match="token counts"):
        decode(line({"content": "a"}) + line({"content": ""}, done=True, eval_count=count))
