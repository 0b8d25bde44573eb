"""Fix-ups for the OpenAI-compatible hosts, and what the openai adapter already covers."""

from __future__ import annotations

import re
from typing import Any

import orjson
import pytest

from adapters import (
    ChatChunk,
    ChunkChoice,
    ContextLengthExceeded,
    Delta,
    GatewayRequest,
    InvalidRequest,
    Message,
    OpenAIAdapter,
    OpenAIStreamDecoder,
    Overloaded,
    ProviderInternalError,
    RateLimitExceeded,
    StreamError,
    Timeout,
    ToolCall,
    UnsupportedCapability,
    chunk_from_wire,
    request_to_wire,
    response_from_wire,
)
from adapters._compat import COMPAT_KINDS, IDENTITY, compat_fixups, mistral_tool_call_id


def test_every_named_host_has_fixups_and_others_get_the_identity() -> None:
    assert COMPAT_KINDS == (
        "ai21",
        "deepseek",
        "fireworks",
        "groq",
        "mistral",
        "openrouter",
        "together",
        "vllm",
    )
    assert compat_fixups("openai") is IDENTITY
    assert compat_fixups("openai_compatible") is IDENTITY
    body = {"model": "m", "messages": [{"role": "developer", "content": "x"}], "seed": 1}
    assert IDENTITY.request(body) is body
    assert IDENTITY.chunk(body) is body
    assert IDENTITY.response(body) is body


@pytest.mark.parametrize("kind", COMPAT_KINDS)
def test_developer_role_becomes_system(kind: str) -> None:
    body: dict[str, Any] = {
        "model": "m",
        "messages": [{"role": "developer", "content": "rules"}, {"role": "user", "content": "x"}],
    }
    out = compat_fixups(kind).request(body)
    assert [m["role"] for m in out["messages"]] == ["system", "user"]
    assert body["messages"][0]["role"] == "developer"  # the input is not mutated


# -- Mistral ----------------------------------------------------------------------------

MISTRAL = compat_fixups("mistral")


def test_mistral_seed_is_random_seed() -> None:
    out = MISTRAL.request({"model": "m", "messages": [], "seed": 42, "temperature": 0.1})
    assert out == {"model": "m", "messages": [], "random_seed": 42, "temperature": 0.1}


def test_mistral_tool_call_ids_are_nine_alphanumerics_consistently() -> None:
    req = GatewayRequest(
        model="m",
        messages=(
            Message("user", "x"),
            Message(
                "assistant",
                None,
                tool_calls=(
                    ToolCall("call_abc123def456", "f", "{}"),
                    ToolCall("toolu_01XyZ", "g", "{}"),
                    ToolCall("Ab3dE6gH9", "h", "{}"),  # already valid: kept
                ),
            ),
            Message("tool", "1", tool_call_id="call_abc123def456"),
            Message("tool", "2", tool_call_id="toolu_01XyZ"),
            Message("tool", "3", tool_call_id="Ab3dE6gH9"),
        ),
    )
    body = request_to_wire(req, "mistral-large-latest")
    out = MISTRAL.request(body)
    call_ids = [c["id"] for c in out["messages"][1]["tool_calls"]]
    result_ids = [m["tool_call_id"] for m in out["messages"][2:]]
    assert call_ids == result_ids
    assert all(re.fullmatch(r"[A-Za-z0-9]{9}", i) for i in call_ids)
    assert call_ids[2] == "Ab3dE6gH9"
    assert len(set(call_ids)) == 3
    # Deterministic: the same request gives the same ids, so later turns still match.
    assert MISTRAL.request(body) == out
    assert call_ids[0] == mistral_tool_call_id("call_abc123def456")


def test_mistral_id_collisions_within_a_request_are_resolved() -> None:
    first = "call_x"
    clash = mistral_tool_call_id(first)  # a valid id that some client used verbatim
    body = {
        "messages": [
            {"role": "assistant", "tool_calls": [{"id": first}, {"id": clash}]},
            {"role": "tool", "tool_call_id": first},
            {"role": "tool", "tool_call_id": clash},
        ]
    }
    out = MISTRAL.request(body)
    ids = [c["id"] for c in out["messages"][0]["tool_calls"]]
    assert ids[0] != ids[1]
    assert [m["tool_call_id"] for m in out["messages"][1:]] == ids


def test_mistral_model_length_is_length() -> None:
    raw = {"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "model_length"}]}
    assert chunk_from_wire(MISTRAL.chunk(raw)).choices[0].finish_reason == "length"
    answer = {
        "id": "x",
        "choices": [{"index": 0, "message": {"content": "a"}, "finish_reason": "model_length"}],
    }
    assert response_from_wire(MISTRAL.response(answer)).choices[0].finish_reason == "length"


def test_mistral_error_finish_raises() -> None:
    raw = {"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]}
    with pytest.raises(StreamError):
        MISTRAL.chunk(raw)
    answer = {"id": "x", "choices": [{"index": 0, "message": {}, "finish_reason": "error"}]}
    with pytest.raises(ProviderInternalError):
        MISTRAL.response(answer)


def test_mistral_402_is_the_operators_problem() -> None:
    err = MISTRAL.error(402, InvalidRequest("payment required"))
    assert type(err) is ProviderInternalError


# -- Groq -------------------------------------------------------------------------------

GROQ = compat_fixups("groq")


def test_groq_drops_what_it_refuses() -> None:
    body = {
        "model": "llama-3.3-70b-versatile",
        "messages": [{"role": "user", "content": "x", "name": "alice"}],
        "logprobs": True,
        "top_logprobs": 2,
        "logit_bias": {"1": 1},
        "n": 1,
        "temperature": 0,
    }
    assert GROQ.request(body) == {
        "model": "llama-3.3-70b-versatile",
        "messages": [{"role": "user", "content": "x"}],
        "temperature": 0,
    }


def test_groq_refuses_several_choices() -> None:
    with pytest.raises(UnsupportedCapability):
        GROQ.request({"model": "m", "messages": [], "n": 3})


def test_groq_stream_usage_from_x_groq() -> None:
    raw = {
        "id": "chatcmpl-g",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "llama",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "x_groq": {
            "id": "req_1",
            "usage": {
                "prompt_tokens": 12,
                "completion_tokens": 5,
                "total_tokens": 17,
                "queue_time": 0.01,
            },
        },
    }
    chunk = chunk_from_wire(GROQ.chunk(raw))
    assert chunk.usage is not None
    assert (chunk.usage.prompt_tokens, chunk.usage.completion_tokens) == (12, 5)
    plain = {**raw, "x_groq": {"id": "req_2"}}
    assert chunk_from_wire(GROQ.chunk(plain)).usage is None


def test_groq_498_is_overloaded() -> None:
    err = GROQ.error(498, InvalidRequest("capacity_exceeded"))
    assert type(err) is Overloaded
    assert err.upstream_status == 498
    limited = RateLimitExceeded("slow", retry_after=3)
    assert GROQ.error(429, limited) is limited


# -- DeepSeek, Together, OpenRouter, vLLM -----------------------------------------------


def test_deepseek_insufficient_system_resource_is_overloaded() -> None:
    fix = compat_fixups("deepseek")
    raw = {
        "id": "x",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "insufficient_system_resource"}],
    }
    with pytest.raises(Overloaded):
        fix.chunk(raw)
    answer = {
        "id": "x",
        "choices": [
            {
                "index": 0,
                "message": {"content": "par"},
                "finish_reason": "insufficient_system_resource",
            }
        ],
    }
    with pytest.raises(Overloaded):
        fix.response(answer)
    fine = {"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
    assert fix.chunk(fine) is fine


def test_deepseek_blank_lines_before_a_non_streamed_answer() -> None:
    body = b"\n\n\n" + orjson.dumps(
        {
            "id": "x",
            "choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
        }
    )
    resp = OpenAIAdapter("https://api.deepseek.com").parse_response(200, [], body)
    assert resp.choices[0].message.content == "hi"


def test_together_403_context_length() -> None:
    fix = compat_fixups("together")
    message = (
        "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 8193. "
        "Given: 8000 `inputs` tokens and 1000 `max_new_tokens`"
    )
    err = OpenAIAdapter("https://api.together.xyz/v1").parse_error(
        403, [], orjson.dumps({"error": {"message": message, "type": "invalid_request_error"}})
    )
    fixed = fix.error(403, err)
    assert type(fixed) is ContextLengthExceeded
    assert fixed.upstream_status == 403
    other = InvalidRequest("forbidden")
    assert fix.error(403, other) is other


def test_openrouter_timeout_and_error_finish() -> None:
    fix = compat_fixups("openrouter")
    assert type(fix.error(408, ProviderInternalError("timed out"))) is Timeout
    with pytest.raises(StreamError):
        fix.chunk({"id": "x", "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}]})
    with pytest.raises(ProviderInternalError):
        fix.response(
            {"id": "x", "choices": [{"index": 0, "message": {}, "finish_reason": "error"}]}
        )


def chunk_event(delta: dict[str, Any], finish: str | None = None) -> bytes:
    obj = {
        "id": "gen-1",
        "object": "chat.completion.chunk",
        "created": 5,
        "model": "vendor/m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return b"data: " + orjson.dumps(obj) + b"\n\n"


KEEPALIVE_STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b": keep-alive\r\n\r\n"
    + chunk_event({"role": "assistant", "content": ""})
    + b": OPENROUTER PROCESSING\n\n"
    + chunk_event({"content": "hi"})
    + chunk_event({}, "stop")
    + b"data: [DONE]\n\n"
)


def test_sse_comment_keep_alives_are_ignored_at_every_split() -> None:
    expected = [
        ChatChunk("gen-1", "vendor/m", 5, (ChunkChoice(0, Delta(role="assistant", content="")),)),
        ChatChunk("gen-1", "vendor/m", 5, (ChunkChoice(0, Delta(content="hi")),)),
        ChatChunk("gen-1", "vendor/m", 5, (ChunkChoice(0, Delta(), "stop"),)),
    ]
    for i in range(len(KEEPALIVE_STREAM) + 1):
        decoder = OpenAIStreamDecoder()
        out = decoder.feed(KEEPALIVE_STREAM[:i]) + decoder.feed(KEEPALIVE_STREAM[i:])
        assert out + decoder.close() == expected, f"split at {i}"


def test_openrouter_mid_stream_error_event_raises() -> None:
    error = {
        "id": "gen-1",
        "error": {"code": 502, "message": "provider returned error"},
        "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
    }
    decoder = OpenAIStreamDecoder()
    decoder.feed(chunk_event({"role": "assistant", "content": ""}))
    with pytest.raises(StreamError, match="provider returned error"):
        decoder.feed(b"data: " + orjson.dumps(error) + b"\n\n")


def test_vllm_flat_error_body() -> None:
    body = orjson.dumps(
        {
            "object": "error",
            "message": "This model's maximum context length is 4096 tokens. However, you requested 5000 tokens.",
            "type": "BadRequestError",
            "param": None,
            "code": 400,
        }
    )
    err = OpenAIAdapter("http://127.0.0.1:8000/v1").parse_error(400, [], body)
    assert type(err) is ContextLengthExceeded
    assert compat_fixups("vllm").error(400, err) is err
