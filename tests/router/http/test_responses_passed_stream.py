"""A passed-through Responses stream at the ingress: OpenAI's events go out as they
came, and what cannot go on in them (a failure, a continuation in the unified form)
ends the stream failed, for OpenAI's response id, exactly once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from adapters import (
    ChatChunk,
    ChunkChoice,
    Delta,
    ProviderInternalError,
    responses_request_from_wire,
)
from adapters._responses_upstream import ResponsesEventDecoder
from router.http._responses_ingress import ResponsesStream

if TYPE_CHECKING:
    from collections.abc import Mapping

CREATED = {
    "type": "response.created",
    "response": {"id": "resp_up", "created_at": 5, "model": "gpt-4o", "output": []},
}
DELTA = {"type": "response.output_text.delta", "item_id": "m", "output_index": 0, "delta": "hi"}
COMPLETED = {
    "type": "response.completed",
    "response": {
        "id": "resp_up",
        "status": "completed",
        "usage": {"input_tokens": 4, "output_tokens": 2},
    },
}


def event(data: Mapping[str, Any]) -> bytes:
    return b"event: " + str(data["type"]).encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def chunks() -> list[ChatChunk]:
    decoder = ResponsesEventDecoder()
    out = decoder.feed(event(CREATED) + event(DELTA) + event(COMPLETED))
    return out + decoder.close()


def test_decoder_reads_text_usage_and_finish() -> None:
    got = chunks()
    assert [c.raw for c in got] == [event(CREATED), event(DELTA), event(COMPLETED)]
    assert got[1].choices[0].delta.content == "hi"
    assert got[2].usage is not None
    assert (got[2].usage.prompt_tokens, got[2].usage.completion_tokens) == (4, 2)
    assert got[2].choices[0].finish_reason == "stop"
    assert {c.id for c in got} == {"resp_up"}


def test_passed_events_go_out_as_they_came_and_end_with_openais() -> None:
    stream = ResponsesStream(responses_request_from_wire({"model": "m", "input": "x"}))
    sent = b"".join(stream.feed(c) for c in chunks()) + stream.done()
    assert sent == event(CREATED) + event(DELTA) + event(COMPLETED)


def test_a_failure_after_passed_events_names_openais_response_once() -> None:
    stream = ResponsesStream(responses_request_from_wire({"model": "m", "input": "x"}))
    created, delta, _ = chunks()
    stream.feed(created)
    stream.feed(delta)
    continued = ChatChunk("other", "claude", 0, (ChunkChoice(0, Delta(content=" more")),))
    failed = stream.feed(continued)
    assert failed.startswith(b"event: response.failed\n")
    assert b'"id":"resp_up"' in failed
    assert b"event: error\n" in failed
    assert stream.feed(continued) == b""
    assert stream.error(ProviderInternalError("late")) == b""
    assert stream.done() == b""
