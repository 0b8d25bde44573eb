"""Same-format passthrough in the adapters: the client's body out, the upstream's events
and answers back as they came, at any chunking of the stream."""

from __future__ import annotations

from typing import Any

import attrs
import orjson
import pytest

from adapters import (
    GatewayRequest,
    UnsupportedParameter,
    refuse_untranslated,
    request_from_wire,
    translated,
)
from adapters._anthropic import AnthropicAdapter
from adapters._messages_request import messages_request_from_wire
from adapters._openai import OpenAIAdapter
from tests.fakes.anthropic_upstream import thought_stream
from tests.fakes.openai_upstream import FakeOpenAI

MESSAGES_BODY: dict[str, Any] = {
    "model": "think",
    "max_tokens": 2000,
    "thinking": {"type": "enabled", "budget_tokens": 1024},
    "top_k": 5,
    "messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}],
}
CHAT_BODY: dict[str, Any] = {
    "model": "chat",
    "messages": [{"role": "user", "content": "hi"}],
    "service_tier": "flex",
    "stream_options": {"include_obfuscation": False},
}


def sent(adapter: Any, req: GatewayRequest, model: str = "m") -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(adapter.build_request(req, model).body)
    return body


def test_a_messages_body_goes_to_anthropic_as_it_came() -> None:
    req = messages_request_from_wire(MESSAGES_BODY)
    assert sent(AnthropicAdapter(), req) == {**MESSAGES_BODY, "model": "m"}


def test_a_stream_asked_for_whole_is_asked_for_whole() -> None:
    req = request_from_wire({**CHAT_BODY, "stream": True})
    whole = attrs.evolve(req, stream=False)  # as the upstream's complete() asks
    body = sent(OpenAIAdapter("http://x/v1"), whole)
    assert "stream" not in body
    assert "stream_options" not in body


def test_a_chat_body_goes_to_openai_as_it_came_with_usage_asked() -> None:
    req = request_from_wire({**CHAT_BODY, "stream": True})
    body = sent(OpenAIAdapter("http://x/v1", stream_usage=True), req, "gpt-4o")
    assert body == {
        **CHAT_BODY,
        "model": "gpt-4o",
        "stream": True,
        "stream_options": {"include_obfuscation": False, "include_usage": True},
    }


def test_other_formats_are_translated() -> None:
    chat = request_from_wire(CHAT_BODY)
    assert "service_tier" not in sent(AnthropicAdapter(), chat)


def test_what_has_no_unified_form_is_refused_by_other_formats() -> None:
    req = messages_request_from_wire(MESSAGES_BODY)
    refuse_untranslated(req, "anthropic", "claude:x")  # the same format takes it
    with pytest.raises(UnsupportedParameter) as refused:
        refuse_untranslated(req, "openai", "oa:gpt-4o")
    assert refused.value.param == "messages[0].content[0]"
    with pytest.raises(UnsupportedParameter):
        translated(req)
    assert translated(request_from_wire(CHAT_BODY)).raw is None


def whole(stream: Any) -> bytes:
    return b"".join([*stream.head, *stream.pieces, *stream.tail])


def test_an_anthropic_stream_comes_back_event_for_event_at_any_split() -> None:
    data = whole(thought_stream("thinker"))
    req = messages_request_from_wire({**MESSAGES_BODY, "stream": True})
    for split in range(0, len(data) + 1, 7):
        decoder = AnthropicAdapter().stream_decoder_for(req)
        chunks = [*decoder.feed(data[:split]), *decoder.feed(data[split:]), *decoder.close()]
        assert b"".join(c.raw or b"" for c in chunks) == data
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert text == "Done"


def test_an_openai_stream_comes_back_event_for_event_but_its_done() -> None:
    fake = FakeOpenAI()
    got: Any = type("Got", (), {"body": {**CHAT_BODY, "stream_options": {"include_usage": True}}})
    data = whole(fake.stream("rich", got))
    req = request_from_wire({**CHAT_BODY, "stream": True})
    for split in range(0, len(data) + 1, 11):
        decoder = OpenAIAdapter("http://x/v1").stream_decoder_for(req)
        chunks = [*decoder.feed(data[:split]), *decoder.feed(data[split:]), *decoder.close()]
        assert b"".join(c.raw or b"" for c in chunks) == data.removesuffix(b"data: [DONE]\n\n")
        assert chunks[-1].usage is not None


def test_a_passed_through_answer_is_kept_beside_the_unified_one() -> None:
    answer = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "content": [{"type": "thinking", "thinking": "hm", "signature": "s"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    req = messages_request_from_wire(MESSAGES_BODY)
    resp = AnthropicAdapter().response_for(req, 200, [], orjson.dumps(answer))
    assert resp.raw == answer
    assert resp.usage is not None
    assert resp.usage.completion_tokens == 2
    plain = AnthropicAdapter().response_for(
        request_from_wire(CHAT_BODY), 200, [], orjson.dumps(answer)
    )
    assert plain.raw is None


def test_a_thinking_block_is_content_the_stream_commits_on() -> None:
    """Thinking may take longer than the first-token time: its events count as content
    (translated too: as reasoning)."""
    data = whole(thought_stream("thinker"))
    piped = AnthropicAdapter().stream_decoder_for(messages_request_from_wire(MESSAGES_BODY))
    chunks = piped.feed(data)
    first = next(i for i, c in enumerate(chunks) if c.has_content)
    wire = chunks[first].raw
    assert wire is not None
    assert wire.startswith(b"event: content_block_start")
    assert b'"thinking"' in wire
    plain = AnthropicAdapter().stream_decoder().feed(data)
    assert next(c.choices[0].delta for c in plain if c.has_content).reasoning_content
    assert "".join(c.choices[0].delta.content or "" for c in plain if c.choices) == "Done"
