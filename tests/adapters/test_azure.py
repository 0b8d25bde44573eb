"""AzureAdapter: deployment URLs, api-version, api-key, content filters, its stream."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import (
    AuthenticationFailed,
    ChatChunk,
    ChunkChoice,
    ContentFiltered,
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
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from adapters._azure import AzureAdapter, make_adapter

KEY = "azure-key-0123456789abcdef"
TOKEN = "eyJ0eXAiOiJKV1QiLCJhbGciOi.entra.token"
BASE = "https://res.openai.azure.com"


def adapter(**kwargs: Any) -> AzureAdapter:
    return AzureAdapter(BASE, "2024-10-21", **{"api_key": KEY, **kwargs})


def body_of(req: GatewayRequest, model: str = "gpt-4o", **kwargs: Any) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(adapter(**kwargs).build_request(req, model).body)
    return body


# -- build_request ----------------------------------------------------------------------


def test_build_request_golden() -> None:
    req = GatewayRequest(
        model="chat",
        messages=(Message("system", "Be brief."), Message("user", "hi")),
        temperature=0.5,
        top_p=0.9,
        max_tokens=64,
        stop=("END",),
        extra={"seed": 7},
    )
    up = adapter().build_request(req, "gpt-4o")
    assert up.method == "POST"
    assert up.url == f"{BASE}/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21"
    assert sorted(up.headers) == [
        ("accept", "application/json"),
        ("api-key", KEY),
        ("content-type", "application/json"),
    ]
    assert orjson.loads(up.body) == {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "max_tokens": 64,
        "stop": ["END"],
        "seed": 7,
    }


def test_configured_deployment_wins_over_the_model() -> None:
    req = GatewayRequest(model="m", messages=(Message("user", "hi"),))
    up = adapter(deployment="prod gpt/4o").build_request(req, "gpt-4o")
    # The deployment is a path segment: quoted, slash included.
    assert up.url == (
        f"{BASE}/openai/deployments/prod%20gpt%2F4o/chat/completions?api-version=2024-10-21"
    )


def test_bearer_token_instead_of_key() -> None:
    req = GatewayRequest(model="m", messages=(Message("user", "hi"),))
    up = AzureAdapter(BASE, "2025-01-01-preview", ad_token=TOKEN).build_request(req, "d")
    assert ("authorization", f"Bearer {TOKEN}") in up.headers
    assert all(k != "api-key" for k, _ in up.headers)
    assert up.url.endswith("?api-version=2025-01-01-preview")


def test_stream_request_asks_for_usage_and_event_stream() -> None:
    req = GatewayRequest(
        model="m", messages=(Message("user", "hi"),), stream=True, include_usage=True
    )
    up = adapter().build_request(req, "d")
    assert ("accept", "text/event-stream") in up.headers
    body = orjson.loads(up.body)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}


def test_multi_turn_tools_and_images_follow_openai() -> None:
    req = GatewayRequest(
        model="m",
        messages=(
            Message(
                "user",
                (TextPart("what is this?"), ImagePart("https://img.test/a.png", "low")),
            ),
            Message("assistant", None, tool_calls=(ToolCall("call_1", "look", '{"x":1}'),)),
            Message("tool", "a cat", tool_call_id="call_1"),
        ),
        tools=(Tool("look", "Look closer", {"type": "object"}),),
        tool_choice="required",
    )
    body = body_of(req)
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this?"},
                {
                    "type": "image_url",
                    "image_url": {"url": "https://img.test/a.png", "detail": "low"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "look", "arguments": '{"x":1}'},
                }
            ],
        },
        {"role": "tool", "content": "a cat", "tool_call_id": "call_1"},
    ]
    assert body["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "look",
                "description": "Look closer",
                "parameters": {"type": "object"},
            },
        }
    ]
    assert body["tool_choice"] == "required"
    assert adapter().image_urls is True  # Azure fetches URLs itself


def test_operator_headers_override() -> None:
    req = GatewayRequest(model="m", messages=(Message("user", "hi"),))
    up = adapter(headers={"API-Key": "other", "X-Ms-Client": "r"}).build_request(req, "d")
    assert ("api-key", "other") in up.headers
    assert ("x-ms-client", "r") in up.headers
    assert ("api-key", KEY) not in up.headers


def test_make_adapter_from_settings() -> None:
    a = make_adapter(
        "az",
        {
            "base_url": BASE,
            "deployment": None,
            "api_version": "2024-06-01",
            "api_key": KEY,
            "ad_token": None,
            "headers": {},
        },
    )
    up = a.build_request(GatewayRequest(model="m", messages=(Message("user", "x"),)), "gpt-4o")
    assert up.url == f"{BASE}/openai/deployments/gpt-4o/chat/completions?api-version=2024-06-01"


def test_repr_never_shows_secrets() -> None:
    text = repr(adapter(ad_token=TOKEN))
    assert KEY not in text
    assert TOKEN not in text
    assert "res.openai.azure.com" in text


def test_probe_request() -> None:
    up = adapter().probe_request()
    assert up.method == "GET"
    assert up.url == f"{BASE}/openai/models?api-version=2024-10-21"
    assert ("api-key", KEY) in up.headers
    assert up.body == b""


# -- parse_response ---------------------------------------------------------------------

FILTERS = {
    "hate": {"filtered": False, "severity": "safe"},
    "self_harm": {"filtered": False, "severity": "safe"},
    "sexual": {"filtered": False, "severity": "safe"},
    "violence": {"filtered": False, "severity": "safe"},
}


def completion(message: dict[str, Any], finish: str) -> bytes:
    return orjson.dumps(
        {
            "id": "chatcmpl-az1",
            "object": "chat.completion",
            "created": 1700000000,
            "model": "gpt-4o-2024-08-06",
            "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTERS}],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": finish,
                    "logprobs": None,
                    "content_filter_results": FILTERS,
                }
            ],
            "usage": {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14},
            "system_fingerprint": "fp_az",
        }
    )


def test_parse_response_tolerates_filter_fields() -> None:
    resp = adapter().parse_response(
        200, [], completion({"role": "assistant", "content": "Hello"}, "stop")
    )
    assert resp.model == "gpt-4o-2024-08-06"
    assert resp.choices[0].message.content == "Hello"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == Usage(11, 3)


def test_parse_response_content_filter_finish_maps_through() -> None:
    resp = adapter().parse_response(
        200, [], completion({"role": "assistant", "content": None}, "content_filter")
    )
    assert resp.choices[0].finish_reason == "content_filter"
    assert resp.choices[0].message.content is None


@pytest.mark.parametrize("finish", ["length", "tool_calls"])
def test_parse_response_other_finishes(finish: str) -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_9", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    resp = adapter().parse_response(200, [], completion(message, finish))
    assert resp.choices[0].finish_reason == finish
    assert resp.choices[0].message.tool_calls == (ToolCall("call_9", "f", "{}"),)


@pytest.mark.parametrize("body", [b"", b"not json", b'{"choices": 3}'])
def test_parse_response_garbage(body: bytes) -> None:
    with pytest.raises(SerializationError):
        adapter().parse_response(200, [], body)


# -- parse_error ------------------------------------------------------------------------


def error_body(code: str, message: str, **more: Any) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, **more}})


def test_prompt_content_filter_400() -> None:
    body = error_body(
        "content_filter",
        "The response was filtered due to the prompt triggering Azure OpenAI's content "
        "management policy.",
        param="prompt",
        status=400,
        innererror={
            "code": "ResponsibleAIPolicyViolation",
            "content_filter_result": {
                "hate": {"filtered": False, "severity": "safe"},
                "violence": {"filtered": True, "severity": "medium"},
                "jailbreak": {"filtered": True, "detected": True},
            },
        },
    )
    err = adapter().parse_error(400, [], body)
    assert type(err) is ContentFiltered
    assert "filtered: violence, jailbreak" in err.message
    assert "content management policy" in err.message
    assert err.upstream_status == 400
    assert err.param == "prompt"


def test_inner_code_alone_is_a_content_filter() -> None:
    body = error_body("400", "blocked", innererror={"code": "ResponsibleAIPolicyViolation"})
    assert type(adapter().parse_error(400, [], body)) is ContentFiltered


def test_context_length() -> None:
    body = error_body(
        "context_length_exceeded", "This model's maximum context length is 128000 tokens."
    )
    assert type(adapter().parse_error(400, [], body)) is ContextLengthExceeded


def test_bad_key_401() -> None:
    body = error_body(
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure "
        "to provide a valid key for an active subscription.",
    )
    assert type(adapter().parse_error(401, [], body)) is AuthenticationFailed


def test_unknown_deployment_404() -> None:
    body = error_body("DeploymentNotFound", "The API deployment for this resource does not exist.")
    assert type(adapter().parse_error(404, [], body)) is NotFound


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ([("retry-after-ms", "1500"), ("retry-after", "2")], 1.5),
        ([("retry-after", "7")], 7.0),
        ([], 12.0),  # from the message, when no header says
    ],
)
def test_rate_limit_429(headers: list[tuple[str, str]], expected: float) -> None:
    body = error_body(
        "429",
        "Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
        "2024-10-21 have exceeded token rate limit of your current tier. Please retry "
        "after 12 seconds.",
    )
    err = adapter().parse_error(429, headers, body)
    assert type(err) is RateLimitExceeded
    assert err.retry_after == expected


def test_rate_limit_without_any_hint() -> None:
    err = adapter().parse_error(429, [], error_body("429", "Rate limit is exceeded."))
    assert type(err) is RateLimitExceeded
    assert err.retry_after is None


@pytest.mark.parametrize(
    ("status", "cls"),
    [(400, InvalidRequest), (500, ProviderInternalError), (503, Overloaded)],
)
def test_other_statuses(status: int, cls: type[Exception]) -> None:
    assert type(adapter().parse_error(status, [], error_body(str(status), "x"))) is cls


def test_error_body_not_json() -> None:
    err = adapter().parse_error(502, [], b"<html>Bad gateway</html>")
    assert type(err) is ProviderInternalError
    assert "502" in err.message


# -- the stream -------------------------------------------------------------------------


def sse(obj: Any) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> bytes:
    return sse(
        {
            "id": "chatcmpl-az2",
            "object": "chat.completion.chunk",
            "created": 1700000001,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "delta": delta,
                    "finish_reason": finish,
                    "content_filter_results": FILTERS if delta.get("content") else {},
                }
            ],
            **more,
        }
    )


FILTER_ONLY = sse(
    {
        "choices": [],
        "created": 0,
        "id": "",
        "model": "",
        "object": "",
        "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": FILTERS}],
    }
)
USAGE = sse(
    {
        "id": "chatcmpl-az2",
        "object": "chat.completion.chunk",
        "created": 1700000001,
        "model": "gpt-4o-2024-08-06",
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 4, "total_tokens": 13},
    }
)
STREAM = b"".join(
    [
        FILTER_ONLY,
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Bonjour"}),
        chunk({"content": " \u00e0 tous"}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_w",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
        chunk({}, "tool_calls"),
        USAGE,
        b"data: [DONE]\n\n",
    ]
)


def c(delta: Delta, finish: str | None = None) -> ChatChunk:
    return ChatChunk(
        "chatcmpl-az2", "gpt-4o-2024-08-06", 1700000001, (ChunkChoice(0, delta, finish),)
    )


EXPECTED = [
    c(Delta(role="assistant", content="")),
    c(Delta(content="Bonjour")),
    c(Delta(content=" \u00e0 tous")),
    c(Delta(tool_calls=(ToolCallDelta(0, "call_w", "get_weather", ""),))),
    c(Delta(tool_calls=(ToolCallDelta(0, arguments='{"city":'),))),
    c(Delta(tool_calls=(ToolCallDelta(0, arguments='"Paris"}'),))),
    c(Delta(), "tool_calls"),
    ChatChunk("chatcmpl-az2", "gpt-4o-2024-08-06", 1700000001, (), Usage(9, 4)),
]


def decode(*parts: bytes) -> list[ChatChunk]:
    decoder = adapter().stream_decoder()
    out: list[ChatChunk] = []
    for part in parts:
        out.extend(decoder.feed(part))
    out.extend(decoder.close())
    return out


def test_stream_skips_the_filter_only_chunk() -> None:
    assert decode(STREAM) == EXPECTED


def test_stream_split_at_every_byte_offset() -> None:
    for i in range(len(STREAM) + 1):
        assert decode(STREAM[:i], STREAM[i:]) == EXPECTED, f"split at {i}"


def test_stream_one_byte_at_a_time() -> None:
    assert decode(*(STREAM[k : k + 1] for k in range(len(STREAM)))) == EXPECTED


def test_stream_skips_annotation_only_chunks() -> None:
    # The asynchronous filter annotates text already sent, in chunks with no delta.
    annotation = sse(
        {
            "id": "chatcmpl-az2",
            "object": "chat.completion.chunk",
            "created": 1700000001,
            "model": "gpt-4o-2024-08-06",
            "choices": [
                {
                    "index": 0,
                    "finish_reason": None,
                    "content_filter_results": FILTERS,
                    "content_filter_offsets": {
                        "check_offset": 0,
                        "start_offset": 0,
                        "end_offset": 7,
                    },
                }
            ],
        }
    )
    at = STREAM.index(b"data: [DONE]")
    assert decode(STREAM[:at] + annotation + STREAM[at:]) == EXPECTED


def test_stream_content_filter_finish() -> None:
    stream = FILTER_ONLY + chunk({"role": "assistant", "content": ""}) + chunk({}, "content_filter")
    out = decode(stream + b"data: [DONE]\n\n")
    assert out[-1].choices[0].finish_reason == "content_filter"


def test_truncated_stream_raises_on_close() -> None:
    cut = STREAM.index(b'"finish_reason":"tool_calls"')
    with pytest.raises(StreamError):
        decode(STREAM[:cut])


def test_filter_only_then_nothing_is_truncated() -> None:
    with pytest.raises(StreamError):
        decode(FILTER_ONLY)


def test_in_band_error_raises() -> None:
    bad = sse({"error": {"code": "content_filter", "message": "The output was filtered."}})
    with pytest.raises(StreamError, match="filtered"):
        decode(FILTER_ONLY + chunk({"role": "assistant", "content": ""}) + bad)
