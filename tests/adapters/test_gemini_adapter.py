"""GeminiAdapter: requests out (one golden test per translation rule), answers and errors in."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest

from adapters import (
    AuthenticationFailed,
    ContentFiltered,
    ContextLengthExceeded,
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
from adapters._base import Capabilities
from adapters._gemini import GeminiAdapter, make_adapter
from adapters._registry import adapter_factory

KEY = "AIzaSy-test-0123456789abcdef"
BASE = "https://generativelanguage.example.test/v1beta"


def adapter(**kwargs: Any) -> GeminiAdapter:
    return GeminiAdapter(BASE, **kwargs)


def body_of(*messages: Message, **kwargs: Any) -> dict[str, Any]:
    req = GatewayRequest("route", messages, **kwargs)
    result: dict[str, Any] = orjson.loads(adapter(api_key=KEY).build_request(req, "m").body)
    return result


# -- build_request: URL, headers --------------------------------------------------------


def test_build_request_golden() -> None:
    req = GatewayRequest("fast", (Message("system", "Be brief."), Message("user", "hi")))
    up = adapter(api_key=KEY).build_request(req, "gemini-2.5-flash")
    assert up.method == "POST"
    assert up.url == f"{BASE}/models/gemini-2.5-flash:generateContent"
    assert sorted(up.headers) == [("content-type", "application/json"), ("x-goog-api-key", KEY)]
    assert orjson.loads(up.body) == {
        "contents": [{"role": "user", "parts": [{"text": "hi"}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
    }


def test_stream_url_asks_for_sse_and_the_key_never_enters_the_url() -> None:
    req = GatewayRequest("fast", (Message("user", "hi"),), stream=True, include_usage=True)
    up = adapter(api_key=KEY).build_request(req, "gemini-2.5-flash")
    assert up.url == f"{BASE}/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    assert KEY not in up.url
    assert "stream" not in orjson.loads(up.body)  # the method says it, not the body


@pytest.mark.parametrize(
    ("model", "path"),
    [
        ("gemini-2.5-pro", "models/gemini-2.5-pro"),
        ("models/gemini-2.5-pro", "models/gemini-2.5-pro"),
        ("tunedModels/my-model-7", "tunedModels/my-model-7"),
        ("odd:id", "models/odd%3Aid"),
    ],
)
def test_model_path(model: str, path: str) -> None:
    up = adapter().build_request(GatewayRequest("x", (Message("user", "hi"),)), model)
    assert up.url == f"{BASE}/{path}:generateContent"


def test_trailing_slash_and_default_base_url() -> None:
    req = GatewayRequest("x", (Message("user", "hi"),))
    assert (
        GeminiAdapter(BASE + "/").build_request(req, "m").url == f"{BASE}/models/m:generateContent"
    )
    assert GeminiAdapter().build_request(req, "m").url == (
        "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent"
    )


@pytest.mark.parametrize("api_key", [None, ""])
def test_no_key_header_without_key(api_key: str | None) -> None:
    up = adapter(api_key=api_key).build_request(GatewayRequest("x", (Message("user", "a"),)), "m")
    assert "x-goog-api-key" not in dict(up.headers)


def test_operator_headers_override_and_are_lower_cased() -> None:
    a = adapter(api_key=KEY, headers={"X-Goog-Api-Key": "other", "X-Trace": "Abc"})
    headers = a.build_request(GatewayRequest("x", (Message("user", "a"),)), "m").headers
    assert dict(headers) == {
        "content-type": "application/json",
        "x-goog-api-key": "other",
        "x-trace": "Abc",
    }
    assert len(dict(headers)) == len(headers)


def test_repr_never_shows_the_key() -> None:
    a = adapter(api_key=KEY, name="prod-gemini")
    assert KEY not in repr(a)
    assert KEY not in str(a)
    assert "prod-gemini" in repr(a)


def test_probe_request_lists_models_with_the_key_header() -> None:
    up = adapter(api_key=KEY, headers={"X-Trace": "1"}).probe_request()
    assert (up.method, up.url, up.body) == ("GET", f"{BASE}/models", b"")
    assert dict(up.headers) == {"x-goog-api-key": KEY, "x-trace": "1"}


def test_factory_from_settings_and_registry() -> None:
    settings = {"base_url": BASE, "api_key": KEY, "headers": {"X-A": "b"}, "models": ()}
    a = make_adapter("g", settings)
    assert a.name == "g"
    assert a.base_url == BASE
    assert ("x-goog-api-key", KEY) in a.probe_request().headers
    assert ("x-a", "b") in a.probe_request().headers
    assert isinstance(adapter_factory("gemini")("g2", settings), GeminiAdapter)


def test_capabilities() -> None:
    assert adapter().capabilities("gemini-2.5-flash") == Capabilities(vision=True, tools=True)
    assert adapter().capabilities("gemma-3-27b-it") == Capabilities(vision=True, tools=False)
    assert adapter().image_urls is False


# -- build_request: messages ------------------------------------------------------------


def test_multi_turn_roles_are_user_and_model() -> None:
    body = body_of(Message("user", "hi"), Message("assistant", "hello"), Message("user", "more"))
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {"role": "model", "parts": [{"text": "hello"}]},
        {"role": "user", "parts": [{"text": "more"}]},
    ]


def test_every_system_and_developer_message_goes_to_system_instruction() -> None:
    body = body_of(
        Message("system", "One."),
        Message("user", "hi"),
        Message("developer", (TextPart("Two."), TextPart("Three."))),
        Message("user", "again"),
    )
    assert body["systemInstruction"] == {
        "parts": [{"text": "One."}, {"text": "Two."}, {"text": "Three."}]
    }
    # the user turns around the hoisted message merge: Gemini wants alternation
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}, {"text": "again"}]}]


def test_adjacent_same_role_messages_merge() -> None:
    body = body_of(
        Message("user", "a"),
        Message("user", "b"),
        Message("assistant", "c"),
        Message("assistant", "d"),
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "a"}, {"text": "b"}]},
        {"role": "model", "parts": [{"text": "c"}, {"text": "d"}]},
    ]


def test_history_starting_with_the_assistant_gets_a_user_turn_first() -> None:
    body = body_of(
        Message("system", "s"), Message("assistant", "How can I help?"), Message("user", "x")
    )
    assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
    assert body["contents"][0]["parts"] == [{"text": "Continue."}]


def test_empty_text_is_dropped() -> None:
    body = body_of(
        Message("user", "hi"),
        Message("assistant", ""),
        Message("assistant", None),
        Message("user", (TextPart(""), TextPart("x"))),
    )
    assert body["contents"] == [{"role": "user", "parts": [{"text": "hi"}, {"text": "x"}]}]


def test_only_system_messages_is_invalid() -> None:
    with pytest.raises(InvalidRequest, match="at least one user"):
        body_of(Message("system", "s"))


# -- build_request: sampling ------------------------------------------------------------


def test_generation_config() -> None:
    body = body_of(
        Message("user", "hi"), temperature=0.3, top_p=0.9, max_tokens=100, stop=("END", "STOP")
    )
    assert body["generationConfig"] == {
        "temperature": 0.3,
        "topP": 0.9,
        "maxOutputTokens": 100,
        "stopSequences": ["END", "STOP"],
    }


def test_no_generation_config_when_nothing_is_set() -> None:
    assert "generationConfig" not in body_of(Message("user", "hi"))


def test_extra_mapped_or_dropped() -> None:
    extra = {
        "n": 2,
        "seed": 7,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "user": "u-1",
        "logit_bias": {"1": 2},
        "parallel_tool_calls": False,
        "response_format": {"type": "json_object"},
    }
    body = body_of(Message("user", "hi"), extra=extra)
    assert body["generationConfig"] == {
        "candidateCount": 2,
        "seed": 7,
        "presencePenalty": 0.5,
        "frequencyPenalty": 0.25,
        "responseMimeType": "application/json",
    }
    assert set(body) == {"contents", "generationConfig"}


def test_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "x", "schema": schema}}
    body = body_of(Message("user", "hi"), extra={"response_format": fmt})
    assert body["generationConfig"] == {
        "responseMimeType": "application/json",
        "responseJsonSchema": schema,
    }


# -- build_request: tools ---------------------------------------------------------------

WEATHER = Tool(
    "get_weather",
    "Weather by city",
    {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    strict=True,
)


def test_tool_definitions() -> None:
    body = body_of(Message("user", "hi"), tools=(WEATHER, Tool("now")))
    assert body["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Weather by city",
                    "parametersJsonSchema": WEATHER.parameters,
                },
                {"name": "now"},
            ]
        }
    ]
    assert "toolConfig" not in body


@pytest.mark.parametrize(
    ("choice", "config"),
    [
        ("auto", {"mode": "AUTO"}),
        ("required", {"mode": "ANY"}),
        ("none", {"mode": "NONE"}),
        (
            {"type": "function", "function": {"name": "get_weather"}},
            {"mode": "ANY", "allowedFunctionNames": ["get_weather"]},
        ),
    ],
)
def test_tool_choice(choice: Any, config: dict[str, Any]) -> None:
    body = body_of(Message("user", "hi"), tools=(WEATHER,), tool_choice=choice)
    assert body["toolConfig"] == {"functionCallingConfig": config}


def test_bad_tool_choice() -> None:
    with pytest.raises(InvalidRequest, match="tool_choice"):
        body_of(Message("user", "hi"), tools=(WEATHER,), tool_choice="sometimes")


def test_tool_calls_and_results_by_name() -> None:
    body = body_of(
        Message("user", "weather and time in Paris?"),
        Message(
            "assistant",
            None,
            tool_calls=(
                ToolCall("call_0", "get_weather", '{"city":"Paris"}'),
                ToolCall("call_1", "get_time", ""),
            ),
        ),
        Message("tool", "18C", tool_call_id="call_0"),
        Message("tool", "noon", tool_call_id="call_1"),
        Message("user", "thanks"),
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "weather and time in Paris?"}]},
        {
            "role": "model",
            "parts": [
                {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                {"functionCall": {"name": "get_time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "get_weather", "response": {"output": "18C"}}},
                {"functionResponse": {"name": "get_time", "response": {"output": "noon"}}},
                {"text": "thanks"},
            ],
        },
    ]


def test_assistant_text_and_call_in_one_turn() -> None:
    body = body_of(
        Message("user", "x"),
        Message("assistant", "Let me check.", tool_calls=(ToolCall("a", "f", "{}"),)),
    )
    assert body["contents"][1]["parts"] == [
        {"text": "Let me check."},
        {"functionCall": {"name": "f", "args": {}}},
    ]


def test_reused_tool_call_ids_resolve_to_the_latest_call() -> None:
    # Our synthesised ids restart at call_0 in every answer.
    body = body_of(
        Message("user", "x"),
        Message("assistant", None, tool_calls=(ToolCall("call_0", "first", "{}"),)),
        Message("tool", "1", tool_call_id="call_0"),
        Message("assistant", None, tool_calls=(ToolCall("call_0", "second", "{}"),)),
        Message("tool", "2", tool_call_id="call_0"),
    )
    names = [c["parts"][0]["functionResponse"]["name"] for c in body["contents"][2::2]]
    assert names == ["first", "second"]


def test_tool_result_for_an_unknown_call() -> None:
    with pytest.raises(InvalidRequest, match="call_9"):
        body_of(Message("user", "x"), Message("tool", "1", tool_call_id="call_9"))


def test_tool_result_falls_back_to_its_name() -> None:
    body = body_of(Message("user", "x"), Message("tool", "1", name="f", tool_call_id="zz"))
    assert body["contents"][0]["parts"][1] == {
        "functionResponse": {"name": "f", "response": {"output": "1"}}
    }


@pytest.mark.parametrize("arguments", ["not json", "[1, 2]", '"text"'])
def test_arguments_must_be_a_json_object(arguments: str) -> None:
    with pytest.raises(InvalidRequest, match="JSON object"):
        body_of(
            Message("user", "x"),
            Message("assistant", None, tool_calls=(ToolCall("a", "f", arguments),)),
        )


# -- build_request: images --------------------------------------------------------------

PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n fake").decode()


def test_data_url_image_is_inline_data() -> None:
    content = (TextPart("what is this?"), ImagePart(f"data:image/png;base64,{PNG}", "low"))
    body = body_of(Message("user", content))
    assert body["contents"][0]["parts"] == [
        {"text": "what is this?"},
        {"inlineData": {"mimeType": "image/png", "data": PNG}},
    ]


def test_percent_encoded_data_url_is_base64_encoded() -> None:
    body = body_of(Message("user", (ImagePart("data:image/svg+xml,%3Csvg%2F%3E"),)))
    part = body["contents"][0]["parts"][0]["inlineData"]
    assert part["mimeType"] == "image/svg+xml"
    assert base64.b64decode(part["data"]) == b"<svg/>"


@pytest.mark.parametrize("url", ["https://example.test/cat.png", "http://example.test/cat.png"])
def test_http_image_url_is_unsupported(url: str) -> None:
    with pytest.raises(UnsupportedCapability, match=r"server\.fetch_images = true") as caught:
        body_of(Message("user", (TextPart("x"), ImagePart(url))))
    assert "Gemini" in caught.value.message


@pytest.mark.parametrize(
    "url", ["data:image/png;base64,@@@", "data:;base64,AAAA", "data:image/png", "ftp://x/y.png"]
)
def test_malformed_image_url(url: str) -> None:
    with pytest.raises(InvalidRequest):
        body_of(Message("user", (ImagePart(url),)))


# -- parse_response ---------------------------------------------------------------------


def response(
    parts: list[dict[str, Any]] | None, finish: str | None = "STOP", **extra: Any
) -> bytes:
    candidate: dict[str, Any] = {"index": 0}
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish is not None:
        candidate["finishReason"] = finish
    return orjson.dumps(
        {
            "candidates": [candidate],
            "usageMetadata": {
                "promptTokenCount": 20,
                "candidatesTokenCount": 6,
                "totalTokenCount": 26,
            },
            "modelVersion": "gemini-2.5-flash-001",
            "responseId": "resp-1",
            **extra,
        }
    )


def test_parse_response_text() -> None:
    resp = adapter().parse_response(200, [], response([{"text": "It is "}, {"text": "18C."}]))
    assert resp.id == "resp-1"
    assert resp.model == "gemini-2.5-flash-001"
    assert resp.created == 0
    assert resp.choices[0].message == Message("assistant", "It is 18C.")
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == Usage(20, 6)


def test_parse_response_tool_calls_get_synthesised_ids() -> None:
    parts: list[dict[str, Any]] = [
        {"text": "Checking."},
        {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
        {"functionCall": {"name": "get_time", "args": {}}},
        {"functionCall": {"name": "get_date", "id": "g-123"}},
    ]
    resp = adapter().parse_response(200, [], response(parts))
    message = resp.choices[0].message
    assert message.content == "Checking."
    assert message.tool_calls == (
        ToolCall("call_0", "get_weather", '{"city":"Paris"}'),
        ToolCall("call_1", "get_time", "{}"),
        ToolCall("g-123", "get_date", "{}"),  # Gemini's own id when it sends one
    )
    assert resp.choices[0].finish_reason == "tool_calls"


def test_parse_response_thoughts_are_not_content() -> None:
    parts: list[dict[str, Any]] = [{"text": "Let me think...", "thought": True}, {"text": "42"}]
    assert adapter().parse_response(200, [], response(parts)).choices[0].message.content == "42"


@pytest.mark.parametrize(
    ("finish", "expected"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("IMAGE_PROHIBITED_CONTENT", "content_filter"),
        ("IMAGE_RECITATION", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "stop"),
        ("UNEXPECTED_TOOL_CALL", "stop"),
        ("TOO_MANY_TOOL_CALLS", "stop"),
        ("LANGUAGE", "stop"),
        ("OTHER", "stop"),
        ("NO_IMAGE", "stop"),
        ("IMAGE_OTHER", "stop"),
        ("FINISH_REASON_UNSPECIFIED", "stop"),
        (None, "stop"),
    ],
)
def test_finish_reason_mapping(finish: str | None, expected: str) -> None:
    resp = adapter().parse_response(200, [], response([{"text": "x"}], finish))
    assert resp.choices[0].finish_reason == expected


def test_output_blocked_has_no_content() -> None:
    resp = adapter().parse_response(200, [], response(None, "SAFETY"))
    assert resp.choices[0].message.content is None
    assert resp.choices[0].finish_reason == "content_filter"


def test_blocked_prompt_is_content_filtered() -> None:
    body = orjson.dumps(
        {
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT", "blockReasonMessage": "No."},
            "usageMetadata": {"promptTokenCount": 5},
        }
    )
    with pytest.raises(ContentFiltered, match=r"PROHIBITED_CONTENT.*No\.") as caught:
        adapter().parse_response(200, [], body)
    assert caught.value.status_hint == 400


def test_usage_counts_thoughts_and_tool_prompts() -> None:
    usage = {
        "promptTokenCount": 20,
        "toolUsePromptTokenCount": 3,
        "candidatesTokenCount": 6,
        "thoughtsTokenCount": 10,
        "cachedContentTokenCount": 4,
        "totalTokenCount": 39,
    }
    body = orjson.loads(response([{"text": "x"}]))
    body["usageMetadata"] = usage
    resp = adapter().parse_response(200, [], orjson.dumps(body))
    assert resp.usage == Usage(prompt_tokens=23, completion_tokens=16)
    assert resp.usage.total_tokens == 39


def test_several_candidates() -> None:
    body = {
        "candidates": [
            {"content": {"parts": [{"text": "a"}]}, "finishReason": "STOP", "index": 0},
            {
                "content": {"parts": [{"functionCall": {"name": "f"}}]},
                "finishReason": "STOP",
                "index": 1,
            },
        ]
    }
    resp = adapter().parse_response(200, [], orjson.dumps(body))
    assert [c.index for c in resp.choices] == [0, 1]
    assert [c.finish_reason for c in resp.choices] == ["stop", "tool_calls"]
    assert resp.choices[1].message.tool_calls == (ToolCall("call_0", "f", "{}"),)
    assert resp.usage is None
    assert resp.model == ""  # not in the body: the router knows what it asked for


def test_create_time_when_given() -> None:
    body = response([{"text": "x"}], createTime="2024-05-01T12:00:00.123456789Z")
    assert adapter().parse_response(200, [], body).created == 1714564800


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"[]",
        b'{"x": 1}',
        b'{"candidates": []}',
        b'{"candidates": [{"content": {"parts": [{"functionCall": {}}]}}]}',
        b"<html>502</html>",
    ],
)
def test_parse_response_garbage(body: bytes) -> None:
    with pytest.raises(SerializationError):
        adapter().parse_response(200, [], body)


# -- parse_error ------------------------------------------------------------------------


def google_error(code: int, status: str, message: str, *details: dict[str, Any]) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        error["details"] = list(details)
    return orjson.dumps({"error": error})


KEY_INVALID = google_error(
    400,
    "INVALID_ARGUMENT",
    "API key not valid. Please pass a valid API key.",
    {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    },
)
RETRY = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "30s"}
QUOTA = {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": [{}]}


@pytest.mark.parametrize(
    ("status", "headers", "body", "cls", "retry_after"),
    [
        pytest.param(
            400,
            [],
            google_error(400, "INVALID_ARGUMENT", "Invalid value at 'contents'"),
            InvalidRequest,
            None,
            id="400",
        ),
        pytest.param(400, [], KEY_INVALID, AuthenticationFailed, None, id="400-api-key-invalid"),
        pytest.param(
            400,
            [],
            google_error(400, "INVALID_ARGUMENT", "API key expired. Please renew the API key."),
            AuthenticationFailed,
            None,
            id="400-api-key-expired-by-message",
        ),
        pytest.param(
            400,
            [],
            google_error(
                400,
                "INVALID_ARGUMENT",
                "The input token count (1048577) exceeds the maximum number of tokens "
                "allowed (1048576).",
            ),
            ContextLengthExceeded,
            None,
            id="400-context-length",
        ),
        pytest.param(
            400,
            [],
            google_error(400, "FAILED_PRECONDITION", "User location is not supported."),
            InvalidRequest,
            None,
            id="400-failed-precondition",
        ),
        pytest.param(
            401,
            [],
            google_error(401, "UNAUTHENTICATED", "Request had invalid authentication credentials."),
            AuthenticationFailed,
            None,
            id="401",
        ),
        pytest.param(
            403,
            [],
            google_error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
            AuthenticationFailed,
            None,
            id="403",
        ),
        pytest.param(
            404,
            [],
            google_error(404, "NOT_FOUND", "models/gemini-9 is not found for API version v1beta"),
            NotFound,
            None,
            id="404",
        ),
        pytest.param(
            429,
            [],
            google_error(
                429, "RESOURCE_EXHAUSTED", "You exceeded your current quota.", QUOTA, RETRY
            ),
            RateLimitExceeded,
            30.0,
            id="429-retry-info",
        ),
        pytest.param(
            429,
            [],
            google_error(
                429,
                "RESOURCE_EXHAUSTED",
                "Quota.",
                {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"},
            ),
            RateLimitExceeded,
            1.5,
            id="429-fractional-delay",
        ),
        pytest.param(
            429,
            [],
            google_error(429, "RESOURCE_EXHAUSTED", "Quota exceeded for this API key.", RETRY),
            RateLimitExceeded,
            30.0,
            id="429-mentioning-the-key-is-still-a-rate-limit",
        ),
        pytest.param(
            429,
            [("retry-after", "4")],
            google_error(429, "RESOURCE_EXHAUSTED", "Quota."),
            RateLimitExceeded,
            4.0,
            id="429-retry-after-header",
        ),
        pytest.param(
            429,
            [("retry-after", "4")],
            google_error(429, "RESOURCE_EXHAUSTED", "Quota.", RETRY),
            RateLimitExceeded,
            30.0,
            id="429-body-beats-header",
        ),
        pytest.param(
            500,
            [],
            google_error(500, "INTERNAL", "An internal error has occurred."),
            ProviderInternalError,
            None,
            id="500",
        ),
        pytest.param(
            503,
            [],
            google_error(503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
            Overloaded,
            None,
            id="503-overloaded",
        ),
        pytest.param(
            504,
            [],
            google_error(504, "DEADLINE_EXCEEDED", "Deadline expired."),
            Timeout,
            None,
            id="504",
        ),
        pytest.param(
            502, [], b"<html>Bad Gateway</html>", ProviderInternalError, None, id="502-html"
        ),
        pytest.param(
            400,
            [],
            b'[{"error": {"code": 400, "message": "API key not valid.", "status": "INVALID_ARGUMENT"}}]',
            AuthenticationFailed,
            None,
            id="array-wrapped",
        ),
    ],
)
def test_parse_error(
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    cls: type[Exception],
    retry_after: float | None,
) -> None:
    err = adapter().parse_error(status, headers, body)
    assert type(err) is cls
    assert err.upstream_status == status
    assert err.retry_after == retry_after
    raw = orjson.loads(body) if body.startswith((b"{", b"[")) else None
    if isinstance(raw, dict):
        assert err.message == raw["error"]["message"]
    elif raw is None:
        assert err.message == f"upstream answered HTTP {status}"
