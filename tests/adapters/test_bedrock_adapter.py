"""BedrockAdapter: Converse request bytes out, answers and errors in, one rule per test."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import (
    AuthenticationFailed,
    ContentFiltered,
    ContextLengthExceeded,
    GatewayError,
    GatewayRequest,
    ImagePart,
    InvalidRequest,
    Message,
    NotFound,
    Overloaded,
    ProviderInternalError,
    RateLimitExceeded,
    SerializationError,
    TextPart,
    Timeout,
    Tool,
    ToolCall,
    UnsupportedCapability,
    Usage,
)
from adapters._bedrock import BedrockAdapter, make_adapter

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
KEY = "bedrock-api-key-0123456789"
SETTINGS: dict[str, Any] = {
    "region": "us-east-1",
    "base_url": None,
    "aws_access_key_id": "AKIDEXAMPLE",
    "aws_secret_access_key": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
    "aws_session_token": None,
    "api_key": None,
    "headers": {},
}
WEATHER = Tool(
    "get_weather",
    "Weather by city",
    {"type": "object", "properties": {"city": {"type": "string"}}},
)


def adapter(**overrides: Any) -> BedrockAdapter:
    return make_adapter("aws", {**SETTINGS, **overrides})


def wire(req: GatewayRequest) -> dict[str, Any]:
    result: dict[str, Any] = orjson.loads(adapter().build_request(req, MODEL).body)
    return result


def user(text: str) -> Message:
    return Message("user", text)


# -- URL and headers --------------------------------------------------------------------


def test_converse_url_encodes_the_model_id_as_one_label() -> None:
    up = adapter().build_request(GatewayRequest("x", (user("hi"),)), MODEL)
    assert up.method == "POST"
    assert up.url == (
        "https://bedrock-runtime.us-east-1.amazonaws.com/model/"
        "anthropic.claude-3-haiku-20240307-v1%3A0/converse"
    )
    assert dict(up.headers) == {"content-type": "application/json", "accept": "application/json"}


def test_stream_url_and_arn_model_ids() -> None:
    arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x"
    up = adapter(base_url="http://127.0.0.1:9/").build_request(
        GatewayRequest("x", (user("hi"),), stream=True), arn
    )
    assert up.url == (
        "http://127.0.0.1:9/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3A"
        "inference-profile%2Fus.anthropic.claude-x/converse-stream"
    )
    assert ("accept", "application/vnd.amazon.eventstream") in up.headers


def test_api_key_is_a_bearer_and_operator_headers_win() -> None:
    a = adapter(api_key=KEY, headers={"X-Trace": "Abc", "Accept": "*/*"})
    headers = a.build_request(GatewayRequest("x", (user("hi"),)), MODEL).headers
    assert ("authorization", f"Bearer {KEY}") in headers
    assert ("x-trace", "Abc") in headers
    assert dict(headers)["accept"] == "*/*"


def test_repr_never_shows_a_key_or_secret() -> None:
    for a in (adapter(), adapter(api_key=KEY)):
        text = repr(a)
        assert KEY not in text
        assert SETTINGS["aws_secret_access_key"] not in text
        assert "AKIDEXAMPLE" not in text
        assert "aws" in text


def test_probe_is_an_authenticated_get_on_the_runtime_endpoint() -> None:
    probe = adapter(api_key=KEY).probe_request()
    assert probe.method == "GET"
    assert probe.url == "https://bedrock-runtime.us-east-1.amazonaws.com/async-invoke?maxResults=1"
    assert probe.body == b""
    assert ("authorization", f"Bearer {KEY}") in probe.headers
    assert "content-type" not in dict(probe.headers)


def test_capabilities_and_image_urls() -> None:
    a = adapter()
    assert a.image_urls is False
    assert a.capabilities(MODEL).vision
    assert a.capabilities(MODEL).tools


# -- request translation ----------------------------------------------------------------


def test_text_golden() -> None:
    assert wire(GatewayRequest("x", (user("hi"),))) == {
        "messages": [{"role": "user", "content": [{"text": "hi"}]}]
    }


def test_system_and_developer_go_to_the_system_field() -> None:
    req = GatewayRequest(
        "x", (Message("system", "Be terse."), Message("developer", "No emoji."), user("hi"))
    )
    body = wire(req)
    assert body["system"] == [{"text": "Be terse."}, {"text": "No emoji."}]
    assert body["messages"] == [{"role": "user", "content": [{"text": "hi"}]}]


def test_multi_turn_merges_same_role_and_starts_with_user() -> None:
    req = GatewayRequest(
        "x",
        (
            Message("assistant", "Hello!"),
            user("one"),
            user("two"),
            Message("assistant", ""),  # empty turns say nothing and are dropped
            Message("assistant", "ok"),
        ),
    )
    assert wire(req)["messages"] == [
        {"role": "user", "content": [{"text": "(conversation start)"}]},
        {"role": "assistant", "content": [{"text": "Hello!"}]},
        {"role": "user", "content": [{"text": "one"}, {"text": "two"}]},
        {"role": "assistant", "content": [{"text": "ok"}]},
    ]


def test_sampling_parameters_and_stop_sequences() -> None:
    req = GatewayRequest(
        "x", (user("hi"),), temperature=1.5, top_p=0.9, max_tokens=256, stop=("END", "")
    )
    assert wire(req)["inferenceConfig"] == {
        "maxTokens": 256,
        "temperature": 1.0,  # OpenAI's 0-2, clamped to Converse's 0-1
        "topP": 0.9,
        "stopSequences": ["END"],
    }


def test_response_format_is_a_forced_tool_and_the_rest_is_dropped() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    extra = {
        "seed": 7,
        "user": "u1",
        "response_format": {"type": "json_schema", "json_schema": {"name": "A", "schema": schema}},
    }
    body = wire(GatewayRequest("x", (user("hi"),), extra=extra))
    assert set(body) == {"messages", "toolConfig"}
    assert body["toolConfig"]["toolChoice"] == {"tool": {"name": "A"}}
    (spec,) = body["toolConfig"]["tools"]
    assert spec["toolSpec"]["name"] == "A"
    assert spec["toolSpec"]["inputSchema"] == {"json": schema}
    loose = wire(
        GatewayRequest("x", (user("hi"),), extra={"response_format": {"type": "json_object"}})
    )
    (spec,) = loose["toolConfig"]["tools"]
    assert spec["toolSpec"]["inputSchema"] == {"json": {"type": "object"}}
    assert loose["toolConfig"]["toolChoice"] == {"tool": {"name": "json_response"}}


def test_the_forced_call_comes_back_as_json_text() -> None:
    req = GatewayRequest("x", (user("hi"),), extra={"response_format": {"type": "json_object"}})
    call = {"toolUse": {"toolUseId": "t1", "name": "json_response", "input": {"a": 1}}}
    resp = adapter().response_for(req, 200, [], answer("tool_use", [call]))
    assert resp.choices[0].message.content == '{"a":1}'
    assert resp.choices[0].message.tool_calls == ()
    assert resp.choices[0].finish_reason == "stop"


def test_n_above_one_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="'n' must be 1"):
        wire(GatewayRequest("x", (user("hi"),), extra={"n": 2}))


def test_tool_definitions_and_auto_choice() -> None:
    bare = Tool("now")
    body = wire(GatewayRequest("x", (user("hi"),), tools=(WEATHER, bare), tool_choice="auto"))
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "description": "Weather by city",
                    "inputSchema": {"json": dict(WEATHER.parameters or {})},
                }
            },
            {
                "toolSpec": {
                    "name": "now",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            },
        ],
        "toolChoice": {"auto": {}},
    }


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        (None, None),
        ("auto", {"auto": {}}),
        ("required", {"any": {}}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"tool": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice(choice: Any, expected: Any) -> None:
    body = wire(GatewayRequest("x", (user("hi"),), tools=(WEATHER,), tool_choice=choice))
    assert body["toolConfig"].get("toolChoice") == expected


def test_tool_choice_none_sends_no_tools() -> None:
    body = wire(GatewayRequest("x", (user("hi"),), tools=(WEATHER,), tool_choice="none"))
    assert "toolConfig" not in body


def test_tool_calls_and_results_in_history() -> None:
    calls = (
        ToolCall("call_1", "get_weather", '{"city":"Paris"}'),
        ToolCall("call|2", "get_weather", "not json"),
    )
    req = GatewayRequest(
        "x",
        (
            user("weather?"),
            Message("assistant", None, tool_calls=calls),
            Message("tool", '{"temp": 18}', tool_call_id="call_1"),
            Message("tool", "rainy", tool_call_id="call|2"),
            user("thanks"),
        ),
        tools=(WEATHER,),
    )
    messages = wire(req)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": [
            {"toolUse": {"toolUseId": "call_1", "name": "get_weather", "input": {"city": "Paris"}}},
            {
                "toolUse": {
                    "toolUseId": "call_2",
                    "name": "get_weather",
                    "input": {"_raw": "not json"},
                }
            },
        ],
    }
    assert messages[2] == {
        "role": "user",
        "content": [
            {
                "toolResult": {
                    "toolUseId": "call_1",
                    "content": [{"json": {"temp": 18}}],
                    "status": "success",
                }
            },
            {
                "toolResult": {
                    "toolUseId": "call_2",
                    "content": [{"text": "rainy"}],
                    "status": "success",
                }
            },
            {"text": "thanks"},
        ],
    }
    assert len(messages) == 3


def test_tool_history_without_tools_still_gets_a_tool_config() -> None:
    req = GatewayRequest(
        "x",
        (
            user("weather?"),
            Message("assistant", "", tool_calls=(ToolCall("c1", "get_weather", "{}"),)),
            Message("tool", "18C", tool_call_id="c1"),
        ),
        tool_choice="none",
    )
    body = wire(req)
    assert body["toolConfig"] == {
        "tools": [
            {
                "toolSpec": {
                    "name": "get_weather",
                    "inputSchema": {"json": {"type": "object", "properties": {}}},
                }
            }
        ]
    }
    assert body["messages"][1]["content"] == [
        {"toolUse": {"toolUseId": "c1", "name": "get_weather", "input": {}}}
    ]


def test_data_url_image_becomes_bytes() -> None:
    content = (
        TextPart("what is this?"),
        ImagePart("data:image/png;base64,iVBORw0KGgo="),
        ImagePart("data:image/JPG;base64,/9j/4AAQ"),
        TextPart(""),
    )
    assert wire(GatewayRequest("x", (Message("user", content),)))["messages"][0]["content"] == [
        {"text": "what is this?"},
        {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}},
        {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}},
    ]


def test_http_image_url_is_unsupported() -> None:
    req = GatewayRequest("x", (Message("user", (ImagePart("https://example.com/cat.png"),)),))
    with pytest.raises(UnsupportedCapability, match=r"server\.fetch_images = true"):
        wire(req)


@pytest.mark.parametrize(
    "url", ["data:image/tiff;base64,AAAA", "data:image/png;base64,@@@", "data:text/plain,hi"]
)
def test_bad_image_data_urls(url: str) -> None:
    with pytest.raises(InvalidRequest):
        wire(GatewayRequest("x", (Message("user", (ImagePart(url),)),)))


# -- responses --------------------------------------------------------------------------


def answer(stop: str, content: list[Any], usage: Any = None) -> bytes:
    return orjson.dumps(
        {
            "output": {"message": {"role": "assistant", "content": content}},
            "stopReason": stop,
            "usage": usage or {"inputTokens": 30, "outputTokens": 8, "totalTokens": 38},
            "metrics": {"latencyMs": 412},
        }
    )


def test_parse_text_response() -> None:
    headers = [("x-amzn-requestid", "req-1")]
    resp = adapter().parse_response(
        200, headers, answer("end_turn", [{"text": "It is 18C."}]), MODEL
    )
    assert resp.id == "chatcmpl-req-1"
    assert resp.model == MODEL
    assert resp.choices[0].message.content == "It is 18C."
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == Usage(30, 8)


def test_parse_tool_use_response() -> None:
    content = [
        {"text": "Checking."},
        {
            "toolUse": {
                "toolUseId": "tooluse_abc",
                "name": "get_weather",
                "input": {"city": "Paris"},
            }
        },
    ]
    resp = adapter().parse_response(200, [], answer("tool_use", content))
    message = resp.choices[0].message
    assert message.content == "Checking."
    assert message.tool_calls == (ToolCall("tooluse_abc", "get_weather", '{"city":"Paris"}'),)
    assert resp.choices[0].finish_reason == "tool_calls"


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
        ("malformed_model_output", "stop"),
        ("malformed_tool_use", "stop"),
    ],
)
def test_stop_reasons(stop: str, finish: str) -> None:
    resp = adapter().parse_response(200, [], answer(stop, [{"text": "x"}]))
    assert resp.choices[0].finish_reason == finish


def test_usage_counts_cache_tokens_as_prompt() -> None:
    usage = {
        "inputTokens": 10,
        "outputTokens": 4,
        "totalTokens": 44,
        "cacheReadInputTokens": 20,
        "cacheWriteInputTokens": 10,
    }
    resp = adapter().parse_response(200, [], answer("end_turn", [{"text": "x"}], usage))
    assert resp.usage == Usage(prompt_tokens=40, completion_tokens=4)


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"output": {}}', b'{"output": {"message": {"content": 3}}}']
)
def test_garbage_is_a_serialization_error(body: bytes) -> None:
    with pytest.raises(SerializationError):
        adapter().parse_response(200, [], body)


# -- errors -----------------------------------------------------------------------------


def error(status: int, kind: str | None, message: str, **headers: str) -> Any:
    pairs = [(k.replace("_", "-"), v) for k, v in headers.items()]
    if kind is not None:
        pairs.append(
            ("x-amzn-errortype", f"{kind}:http://internal.amazon.com/coral/com.amazon.bedrock/")
        )
    return adapter().parse_error(status, pairs, orjson.dumps({"message": message}))


@pytest.mark.parametrize(
    ("status", "kind", "message", "cls"),
    [
        (400, "ValidationException", "Malformed input request", InvalidRequest),
        (
            400,
            "ValidationException",
            "Input is too long for requested model.",
            ContextLengthExceeded,
        ),
        (
            400,
            "ValidationException",
            "The model returned the following errors: prompt is too long: 210000 tokens > 200000 maximum",
            ContextLengthExceeded,
        ),
        (400, "ValidationException", "Output blocked by content filtering policy", ContentFiltered),
        (403, "AccessDeniedException", "You don't have access to the model", AuthenticationFailed),
        (
            403,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
            AuthenticationFailed,
        ),
        (
            403,
            "InvalidSignatureException",
            "The request signature we calculated does not match",
            AuthenticationFailed,
        ),
        (
            403,
            "ExpiredTokenException",
            "The security token included in the request is expired",
            AuthenticationFailed,
        ),
        (404, "ResourceNotFoundException", "The provided model identifier is invalid.", NotFound),
        (408, "ModelTimeoutException", "Model has timed out", Timeout),
        (424, "ModelErrorException", "The model returned an error", ProviderInternalError),
        (429, "ThrottlingException", "Too many requests", RateLimitExceeded),
        (429, "ModelNotReadyException", "Model is not ready", Overloaded),
        (500, "InternalServerException", "Internal error", ProviderInternalError),
        (503, "ServiceUnavailableException", "Too many connections", Overloaded),
        (502, None, "Bad gateway", ProviderInternalError),
    ],
)
def test_error_mapping(
    status: int, kind: str | None, message: str, cls: type[GatewayError]
) -> None:
    err = error(status, kind, message)
    assert type(err) is cls
    assert err.upstream_status == status
    assert err.message == message


def test_error_type_from_the_body_and_capital_message() -> None:
    body = orjson.dumps(
        {"__type": "com.amazon.coral.service#UnrecognizedClientException", "Message": "bad token"}
    )
    err = adapter().parse_error(403, [], body)
    assert isinstance(err, AuthenticationFailed)
    assert err.message == "bad token"


def test_throttling_reads_retry_after_when_present() -> None:
    assert error(429, "ThrottlingException", "slow down", retry_after="3").retry_after == 3.0
    assert error(429, "ThrottlingException", "slow down", retry_after_ms="250").retry_after == 0.25
    assert error(429, "ThrottlingException", "slow down").retry_after is None  # Bedrock sends none


def test_error_without_a_body() -> None:
    err = adapter().parse_error(503, [("x-amzn-errortype", "ServiceUnavailableException")], b"")
    assert isinstance(err, Overloaded)
    assert "503" in err.message
