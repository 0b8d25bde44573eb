"""The openai adapter applies each named host's fix-ups (adapters._compat)."""

from __future__ import annotations

import orjson

from adapters import (
    ChatChunk,
    ChunkChoice,
    ContextLengthExceeded,
    Delta,
    GatewayRequest,
    HTTPAdapter,
    Message,
    Usage,
    adapter_factory,
)


def make(kind: str) -> HTTPAdapter:
    return adapter_factory(kind)(
        kind, {"kind": kind, "base_url": "https://h.test/v1", "headers": {}}
    )


def test_mistral_request_is_fixed_up() -> None:
    req = GatewayRequest(model="m", messages=(Message("developer", "x"),), extra={"seed": 3})
    body = orjson.loads(make("mistral").build_request(req, "mistral-small").body)
    assert body["random_seed"] == 3
    assert "seed" not in body
    assert body["messages"][0]["role"] == "system"


def test_openai_itself_is_untouched() -> None:
    req = GatewayRequest(model="m", messages=(Message("developer", "x"),), extra={"seed": 3})
    body = orjson.loads(make("openai").build_request(req, "gpt-4o").body)
    assert body["seed"] == 3
    assert body["messages"][0]["role"] == "developer"


def test_groq_stream_usage_becomes_a_usage_chunk() -> None:
    final = {
        "id": "g",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "llama",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
        "x_groq": {
            "id": "req",
            "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
        },
    }
    decoder = make("groq").stream_decoder()
    out = decoder.feed(b"data: " + orjson.dumps(final) + b"\n\ndata: [DONE]\n\n") + decoder.close()
    assert out == [
        ChatChunk("g", "llama", 1, (ChunkChoice(0, Delta(), "stop"),)),
        ChatChunk("g", "llama", 1, (), Usage(3, 2)),
    ]


def test_together_403_context_length() -> None:
    body = orjson.dumps(
        {"error": {"message": "`inputs` tokens + `max_new_tokens` must be <= 8193"}}
    )
    err = make("together").parse_error(403, [], body)
    assert type(err) is ContextLengthExceeded
