"""OpenAIAdapter: request bytes out, answers and errors in; OpenAIStreamDecoder."""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import pytest

from adapters import (
    AllTargetsFailed,
    AuthenticationFailed,
    ChatChunk,
    ChunkChoice,
    ContentFiltered,
    ContextLengthExceeded,
    Delta,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    InvalidRequest,
    Message,
    NetworkError,
    NoHealthyTarget,
    NotFound,
    OpenAIAdapter,
    OpenAIStreamDecoder,
    Overloaded,
    ProviderInternalError,
    RateLimitExceeded,
    SerializationError,
    StreamError,
    Timeout,
    ToolCallDelta,
    UnsupportedCapability,
    Usage,
    adapter_factory,
)

KEY = "sk-test-0123456789abcdef"
REQ = GatewayRequest(
    model="fast",
    messages=(Message("system", "Be brief."), Message("user", "hi")),
    temperature=0.5,
    extra={"seed": 7},
)


def adapter(**kwargs: Any) -> OpenAIAdapter:
    return OpenAIAdapter("https://api.example.test/v1", **kwargs)


# -- build_request ----------------------------------------------------------------------


def test_build_request_golden() -> None:
    up = adapter(api_key=KEY).build_request(REQ, "gpt-4o-mini-2024-07-18")
    assert up.method == "POST"
    assert up.url == "https://api.example.test/v1/chat/completions"
    assert sorted(up.headers) == [
        ("accept", "application/json"),
        ("authorization", f"Bearer {KEY}"),
        ("content-type", "application/json"),
    ]
    assert isinstance(up.body, bytes)
    assert orjson.loads(up.body) == {
        "model": "gpt-4o-mini-2024-07-18",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi"},
        ],
        "temperature": 0.5,
        "seed": 7,
    }


@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.example.test/v1",
        "https://api.example.test/v1/",
        "https://api.example.test/v1//",
    ],
)
def test_url_trailing_slash(base_url: str) -> None:
    up = OpenAIAdapter(base_url).build_request(REQ, "m")
    assert up.url == "https://api.example.test/v1/chat/completions"


def test_stream_request_accepts_event_stream() -> None:
    req = GatewayRequest("fast", (Message("user", "hi"),), stream=True, include_usage=True)
    up = adapter(api_key=KEY).build_request(req, "gpt-4o")
    headers = dict(up.headers)
    assert len(headers) == len(up.headers)  # no header twice
    assert headers["accept"] == "text/event-stream"
    assert headers["content-type"] == "application/json"
    assert headers["authorization"] == f"Bearer {KEY}"
    body = orjson.loads(up.body)
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == "gpt-4o"


@pytest.mark.parametrize("api_key", [None, ""])
def test_no_authorization_without_key(api_key: str | None) -> None:
    for req in (REQ, GatewayRequest("x", REQ.messages, stream=True)):
        up = adapter(api_key=api_key).build_request(req, "m")
        assert "authorization" not in {k for k, _ in up.headers}


def test_extra_headers_are_lower_cased_and_sent_on_every_request() -> None:
    a = adapter(api_key=KEY, headers={"OpenAI-Organization": "org-1", "X-Trace": "Abc"})
    for req in (REQ, GatewayRequest("x", REQ.messages, stream=True)):
        headers = a.build_request(req, "m").headers
        assert all(k == k.lower() for k, _ in headers)
        assert ("openai-organization", "org-1") in headers
        assert ("x-trace", "Abc") in headers  # values keep their case


def test_repr_never_shows_the_key() -> None:
    a = adapter(api_key=KEY, name="prod-openai")
    assert KEY not in repr(a)
    assert KEY not in str(a)
    assert "prod-openai" in repr(a)
    assert "https://api.example.test/v1/chat/completions" in repr(a)


# -- parse_response ---------------------------------------------------------------------

COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4o-mini-2024-07-18",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hello!", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    "system_fingerprint": "fp_1",
}


def test_parse_response() -> None:
    headers = [("content-type", "application/json")]
    resp = adapter().parse_response(200, headers, orjson.dumps(COMPLETION))
    assert isinstance(resp, GatewayResponse)
    assert resp.model == "gpt-4o-mini-2024-07-18"
    assert resp.choices[0].message == Message("assistant", "Hello!")
    assert resp.choices[0].finish_reason == "stop"
    assert resp.usage == Usage(9, 2)
    assert resp.system_fingerprint == "fp_1"


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b'{"choices": [', b"<html>502 Bad Gateway</html>", b"[]", b'{"x": 1}'],
)
def test_parse_response_garbage(body: bytes) -> None:
    with pytest.raises(SerializationError):
        adapter().parse_response(200, [], body)


# -- parse_error ------------------------------------------------------------------------


def openai_error(message: str, type_: str, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


@pytest.mark.parametrize(
    ("status", "headers", "body", "cls", "message", "retry_after"),
    [
        pytest.param(
            400,
            [],
            openai_error("Invalid value for 'temperature'", "invalid_request_error"),
            InvalidRequest,
            "Invalid value for 'temperature'",
            None,
            id="400",
        ),
        pytest.param(
            400,
            [],
            openai_error(
                "This model's maximum context length is 128000 tokens.",
                "invalid_request_error",
                "context_length_exceeded",
            ),
            ContextLengthExceeded,
            "This model's maximum context length is 128000 tokens.",
            None,
            id="400-context-length",
        ),
        pytest.param(
            400,
            [],
            openai_error("Too long.", "invalid_request_error", "context_length_exceeded"),
            ContextLengthExceeded,
            "Too long.",
            None,
            id="400-context-length-by-code-only",
        ),
        pytest.param(
            400,
            [],
            openai_error("The response was filtered.", "invalid_request_error", "content_filter"),
            ContentFiltered,
            "The response was filtered.",
            None,
            id="400-content-filter",
        ),
        pytest.param(
            400,
            [],
            openai_error("Rejected.", "invalid_request_error", "content_policy_violation"),
            ContentFiltered,
            "Rejected.",
            None,
            id="400-content-policy",
        ),
        pytest.param(
            401,
            [],
            openai_error("Incorrect API key provided.", "invalid_request_error", "invalid_api_key"),
            AuthenticationFailed,
            "Incorrect API key provided.",
            None,
            id="401",
        ),
        pytest.param(
            403,
            [],
            openai_error("Country not supported.", "invalid_request_error"),
            AuthenticationFailed,
            "Country not supported.",
            None,
            id="403",
        ),
        pytest.param(
            404,
            [],
            openai_error(
                "The model `gpt-9` does not exist.", "invalid_request_error", "model_not_found"
            ),
            NotFound,
            "The model `gpt-9` does not exist.",
            None,
            id="404",
        ),
        pytest.param(
            429,
            [("retry-after", "7")],
            openai_error("Rate limit reached.", "requests", "rate_limit_exceeded"),
            RateLimitExceeded,
            "Rate limit reached.",
            7.0,
            id="429-retry-after",
        ),
        pytest.param(
            429,
            [("Retry-After", "20"), ("Retry-After-Ms", "1500")],
            openai_error("Rate limit reached.", "tokens", "rate_limit_exceeded"),
            RateLimitExceeded,
            "Rate limit reached.",
            1.5,
            id="429-retry-after-ms-wins",
        ),
        pytest.param(
            429,
            [("retry-after-ms", "250")],
            openai_error("Slow down.", "requests"),
            RateLimitExceeded,
            "Slow down.",
            0.25,
            id="429-retry-after-ms",
        ),
        pytest.param(
            429,
            [("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")],
            openai_error("Slow down.", "requests"),
            RateLimitExceeded,
            "Slow down.",
            None,
            id="429-http-date",
        ),
        pytest.param(
            429,
            [("retry-after-ms", "soon"), ("retry-after", "3")],
            openai_error("Slow down.", "requests"),
            RateLimitExceeded,
            "Slow down.",
            3.0,
            id="429-bad-ms-falls-back",
        ),
        pytest.param(
            429,
            [("retry-after", "-4")],
            openai_error("Slow down.", "requests"),
            RateLimitExceeded,
            "Slow down.",
            0.0,
            id="429-negative-clamped",
        ),
        pytest.param(
            500,
            [],
            openai_error("The server had an error.", "server_error"),
            ProviderInternalError,
            "The server had an error.",
            None,
            id="500",
        ),
        pytest.param(
            503,
            [("retry-after", "2")],
            openai_error("The engine is currently overloaded.", "server_error"),
            Overloaded,
            "The engine is currently overloaded.",
            2.0,
            id="503",
        ),
        pytest.param(
            529,
            [],
            orjson.dumps(
                {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
            ),
            Overloaded,
            "Overloaded",
            None,
            id="529",
        ),
        pytest.param(
            502,
            [("content-type", "text/html")],
            b"<html><body>502 Bad Gateway</body></html>",
            ProviderInternalError,
            "upstream answered HTTP 502",
            None,
            id="502-html",
        ),
        pytest.param(
            400, [], b"", InvalidRequest, "upstream answered HTTP 400", None, id="400-empty"
        ),
        pytest.param(
            500, [], b"[1, 2]", ProviderInternalError, "upstream answered HTTP 500", None, id="list"
        ),
        pytest.param(
            500,
            [],
            b'{"error": "model crashed"}',
            ProviderInternalError,
            "model crashed",
            None,
            id="error-string",
        ),
    ],
)
def test_parse_error(
    status: int,
    headers: list[tuple[str, str]],
    body: bytes,
    cls: type[GatewayError],
    message: str,
    retry_after: float | None,
) -> None:
    err = adapter(api_key=KEY).parse_error(status, headers, body)
    assert type(err) is cls
    assert err.message == message
    assert err.upstream_status == status
    assert err.retry_after == retry_after
    assert KEY not in err.message


def test_auth_failure_is_a_502_for_the_client() -> None:
    err = adapter().parse_error(401, [], openai_error("bad key", "invalid_request_error"))
    assert err.status_hint == 502
    assert err.to_openai()["error"]["code"] == "upstream_authentication_failed"


@pytest.mark.parametrize(
    ("cls", "status_hint", "retryable", "fallback_reason", "code"),
    [
        (InvalidRequest, 400, False, None, None),
        (UnsupportedCapability, 400, False, None, "unsupported_capability"),
        (NotFound, 404, False, None, "model_not_found"),
        (AuthenticationFailed, 502, False, None, "upstream_authentication_failed"),
        (RateLimitExceeded, 429, True, "rate_limited", "rate_limit_exceeded"),
        (Timeout, 504, True, "timeout", "timeout"),
        (NetworkError, 502, True, "network", "network_error"),
        (ProviderInternalError, 502, True, "server_error", "upstream_error"),
        (Overloaded, 502, True, "overloaded", "upstream_overloaded"),
        (SerializationError, 502, True, "server_error", "bad_upstream_response"),
        (StreamError, 502, True, "network", "stream_error"),
        (ContentFiltered, 400, False, None, "content_filter"),
        (ContextLengthExceeded, 400, False, "context_length", "context_length_exceeded"),
        (NoHealthyTarget, 503, False, None, "no_healthy_target"),
    ],
)
def test_error_class_flags(
    cls: type[GatewayError],
    status_hint: int,
    retryable: bool,
    fallback_reason: str | None,
    code: str | None,
) -> None:
    err = cls("boom", upstream="p:m", upstream_status=500, param="x")
    assert isinstance(err, GatewayError)
    assert err.status_hint == status_hint
    assert err.retryable is retryable
    assert err.fallback_reason == fallback_reason
    assert err.to_openai() == {
        "error": {"message": "boom", "type": cls.error_type, "param": "x", "code": code}
    }
    assert str(err) == "boom"


def test_all_targets_failed_lists_attempts() -> None:
    attempts = (
        RateLimitExceeded("slow down", upstream="openai:gpt-4o", upstream_status=429),
        Timeout("no first token in 10s", upstream="groq:llama"),
        ProviderInternalError("oops"),
    )
    err = AllTargetsFailed(attempts)
    assert err.attempts == attempts
    assert err.status_hint == 502
    assert not err.retryable
    assert err.message == (
        "every target failed: openai:gpt-4o: RateLimitExceeded: slow down; "
        "groq:llama: Timeout: no first token in 10s; ?: ProviderInternalError: oops"
    )
    assert err.to_openai() == {
        "error": {
            "message": err.message,
            "type": "upstream_error",
            "param": None,
            "code": "all_targets_failed",
            "attempts": [
                {
                    "target": "openai:gpt-4o",
                    "error": "RateLimitExceeded",
                    "status": 429,
                    "message": "slow down",
                },
                {
                    "target": "groq:llama",
                    "error": "Timeout",
                    "status": None,
                    "message": "no first token in 10s",
                },
                {
                    "target": None,
                    "error": "ProviderInternalError",
                    "status": None,
                    "message": "oops",
                },
            ],
        }
    }


# -- OpenAIStreamDecoder ----------------------------------------------------------------

HEAD = '{"id":"chatcmpl-7","object":"chat.completion.chunk","created":1700000000,"model":"gpt-4o-2024-08-06","system_fingerprint":"fp_9",'
EVENTS = [
    HEAD + '"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},'
    '"logprobs":null,"finish_reason":null}],"usage":null}',
    HEAD + '"choices":[{"index":0,"delta":{"content":"H\\u00e9"},"logprobs":null,'
    '"finish_reason":null}],"usage":null}',
    HEAD + '"choices":[{"index":0,"delta":{"content":"llo \u2603 \U0001f600\u2028"},'
    '"logprobs":null,"finish_reason":null}],"usage":null}',
    HEAD + '"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1",'
    '"type":"function","function":{"name":"get_weather","arguments":""}}]},'
    '"logprobs":null,"finish_reason":null}],"usage":null}',
    HEAD + '"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":'
    '{"arguments":"{\\"city\\":"}}]},"logprobs":null,"finish_reason":null}],"usage":null}',
    HEAD + '"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":'
    '{"arguments":" \\"Paris\\"}"}}]},"logprobs":null,"finish_reason":null}],"usage":null}',
    HEAD + '"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"tool_calls"}],'
    '"usage":null}',
    HEAD + '"choices":[],"usage":{"prompt_tokens":20,"completion_tokens":9,"total_tokens":29}}',
]


def c(*choices: ChunkChoice, usage: Usage | None = None) -> ChatChunk:
    chunk = ChatChunk("chatcmpl-7", "gpt-4o-2024-08-06", 1700000000, choices, usage)
    return attrs.evolve(chunk, system_fingerprint="fp_9")  # every chunk's, kept


EXPECTED = [
    c(ChunkChoice(0, Delta(role="assistant", content=""))),
    c(ChunkChoice(0, Delta(content="Hé"))),
    c(ChunkChoice(0, Delta(content="llo \u2603 \U0001f600\u2028"))),
    c(ChunkChoice(0, Delta(tool_calls=(ToolCallDelta(0, "call_1", "get_weather", ""),)))),
    c(ChunkChoice(0, Delta(tool_calls=(ToolCallDelta(0, arguments='{"city":'),)))),
    c(ChunkChoice(0, Delta(tool_calls=(ToolCallDelta(0, arguments=' "Paris"}'),)))),
    c(ChunkChoice(0, Delta(), "tool_calls")),
    c(usage=Usage(20, 9)),
]


def sse(events: list[str], eol: str = "\n") -> bytes:
    out = ": OPENROUTER PROCESSING" + eol + eol
    for i, data in enumerate(events):
        out += f"data: {data}{eol}{eol}"
        if i == 2:
            out += ": keep-alive" + eol + eol
    return out.encode()


def run(*chunks: bytes) -> list[ChatChunk]:
    decoder = OpenAIStreamDecoder()
    out: list[ChatChunk] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.close()


STREAMS = {
    "lf": sse([*EVENTS, "[DONE]"]),
    "crlf": sse([*EVENTS, "[DONE]"], "\r\n"),
    "cr": sse([*EVENTS, "[DONE]"], "\r"),
}


@pytest.mark.parametrize("name", STREAMS)
def test_stream_golden(name: str) -> None:
    got = run(STREAMS[name])
    assert got == EXPECTED
    assert [x.has_content for x in got] == [False, True, True, True, True, True, True, False]
    assert (
        "".join(t.arguments or "" for x in got for ch in x.choices for t in ch.delta.tool_calls)
        == '{"city": "Paris"}'
    )


@pytest.mark.parametrize("name", STREAMS)
def test_stream_split_at_every_byte_offset(name: str) -> None:
    stream = STREAMS[name]
    for i in range(len(stream) + 1):
        assert run(stream[:i], stream[i:]) == EXPECTED, i


def test_stream_one_byte_at_a_time() -> None:
    stream = STREAMS["crlf"]
    assert run(*(stream[k : k + 1] for k in range(len(stream)))) == EXPECTED


def test_chunks_come_out_as_events_complete() -> None:
    decoder = OpenAIStreamDecoder()
    first = f"data: {EVENTS[0]}\n\n".encode()
    assert decoder.feed(first[:-1]) == []
    assert decoder.feed(first[-1:]) == EXPECTED[:1]


def test_data_after_done_is_ignored() -> None:
    stream = sse([EVENTS[1], "[DONE]", EVENTS[2], "not json at all", '{"error": {"message": "x"}}'])
    assert run(stream) == [EXPECTED[1]]


def test_close_without_done_after_finish_reason_is_complete() -> None:
    assert run(sse(EVENTS[:7])) == EXPECTED[:7]
    # Even when the last event lacks its blank line.
    assert run(sse(EVENTS[:7])[:-2]) == EXPECTED[:7]


def test_done_without_blank_line_is_complete() -> None:
    assert run(sse(EVENTS[:2]) + b"data: [DONE]") == EXPECTED[:2]


@pytest.mark.parametrize(
    "stream",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b": keep-alive\n\n", id="only-comments"),
        pytest.param(sse(EVENTS[:3]), id="truncated-after-content"),
        pytest.param(sse(EVENTS[:6]), id="truncated-mid-tool-call"),
        pytest.param(sse(EVENTS[:7])[:-40], id="finish-event-cut-short"),
        pytest.param(b"data: [DON", id="done-cut-short"),
    ],
)
def test_close_without_done_or_finish_raises(stream: bytes) -> None:
    decoder = OpenAIStreamDecoder()
    decoder.feed(stream)
    with pytest.raises(StreamError):
        decoder.close()


@pytest.mark.parametrize(
    "data",
    [
        "{not json",
        '{"id": "x", "choices": [',
        "<html>",
        "[DONE] ",
        # Fields of the wrong type: once passed on as they were, to fail in the encoders.
        '{"choices": [{"index": 0, "delta": {"role": []}}]}',
        '{"choices": [{"index": 0, "delta": {"content": 5}}]}',
        '{"choices": [{"index": 0, "delta": {}, "finish_reason": ["stop"]}]}',
        '{"choices": [{"index": 0, "delta": {"tool_calls": [{"function": {"name": {}}}]}}]}',
    ],
)
def test_malformed_event_raises_stream_error(data: str) -> None:
    decoder = OpenAIStreamDecoder()
    assert decoder.feed(sse(EVENTS[:1])) == EXPECTED[:1]
    with pytest.raises(StreamError) as info:
        decoder.feed(f"data: {data}\n\n".encode())
    assert info.value.retryable


def test_in_band_error_event_raises_stream_error_with_its_message() -> None:
    error = {
        "error": {
            "message": "The server had an error while processing your request.",
            "type": "server_error",
            "param": None,
            "code": None,
        }
    }
    decoder = OpenAIStreamDecoder()
    assert decoder.feed(sse(EVENTS[:2])) == EXPECTED[:2]
    with pytest.raises(StreamError) as info:
        decoder.feed(b"data: " + orjson.dumps(error) + b"\n\n")
    assert info.value.message == "The server had an error while processing your request."
    assert isinstance(info.value.__cause__, GatewayError)


def test_in_band_error_without_message() -> None:
    decoder = OpenAIStreamDecoder()
    with pytest.raises(StreamError) as info:
        decoder.feed(b'data: {"error": {"code": "boom"}}\n\n')
    assert info.value.message == "upstream stream error"


def test_adapter_stream_decoder_is_fresh_each_time() -> None:
    a = adapter()
    d1, d2 = a.stream_decoder(), a.stream_decoder()
    assert isinstance(d1, OpenAIStreamDecoder)
    assert d1 is not d2
    d1.feed(b"data: [DONE]\n\n")
    with pytest.raises(StreamError):
        d2.close()
    assert d1.close() == []


# -- the token limit's name -------------------------------------------------------------

REASONING = (
    *("o1", "o1-mini", "o3", "o3-mini-2025-01-31", "o4-mini", "O3-PRO"),
    *("gpt-5", "gpt-5-mini", "gpt-5.1", "ft:o4-mini-2025-04-16:org::abc"),
)
NOT_REASONING = ("gpt-4o", "gpt-4.1-mini", "omni-moderation", "gpt-50x", "foo-o3", "o")


def limit_sent(kind: str, model: str, limit_name: str = "max_tokens") -> dict[str, Any]:
    settings: dict[str, Any] = {"base_url": "https://api.example.test/v1", "api_key": KEY}
    if kind == "azure":
        settings["api_version"] = "2024-10-21"
    req = GatewayRequest(
        model="r", messages=(Message("user", "hi"),), max_tokens=50, limit_name=limit_name
    )
    up = adapter_factory(kind)("p", settings).build_request(req, model)
    sent = orjson.loads(up.body)
    return {k: v for k, v in sent.items() if k in ("max_tokens", "max_completion_tokens")}


@pytest.mark.parametrize("kind", ["openai", "azure"])
@pytest.mark.parametrize("model", REASONING)
def test_openais_reasoning_models_get_max_completion_tokens(kind: str, model: str) -> None:
    # An Anthropic client's max_tokens, or an OpenAI client's older name: both renamed.
    assert limit_sent(kind, model) == {"max_completion_tokens": 50}
    assert limit_sent(kind, model, "max_completion_tokens") == {"max_completion_tokens": 50}


@pytest.mark.parametrize("kind", ["openai", "azure"])
@pytest.mark.parametrize("model", NOT_REASONING)
def test_other_openai_models_get_the_name_the_client_used(kind: str, model: str) -> None:
    assert limit_sent(kind, model) == {"max_tokens": 50}
    assert limit_sent(kind, model, "max_completion_tokens") == {"max_completion_tokens": 50}


@pytest.mark.parametrize("kind", ["openai_compatible", "vllm", "mistral", "deepseek"])
def test_compatible_hosts_keep_max_tokens_whatever_the_model(kind: str) -> None:
    # Hosts that serve a model named like OpenAI's may know only max_tokens.
    assert limit_sent(kind, "o3-mini") == {"max_tokens": 50}
    assert limit_sent(kind, "gpt-5") == {"max_tokens": 50}
