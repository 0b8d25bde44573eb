"""OpenAI's own Responses answers, as read for a passed-through ``/v1/responses``: the
whole answer's text, refusal, tool calls, finish and usage; the stream's events as
chunks (each carrying its bytes), its failures as StreamError with OpenAI's message;
and the end written for a passed-through stream that broke."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import InvalidRequest, SerializationError, StreamError, Usage
from adapters._responses_upstream import (
    ResponsesEventDecoder,
    passed_stream_failure,
    responses_answer_from_wire,
)
from adapters._sse import SSEDecoder


def test_a_whole_answer_gives_text_refusal_calls_finish_and_usage() -> None:
    raw = {
        "id": "resp_1",
        "object": "response",
        "created_at": 1_700_000_000,
        "model": "gpt-4o",
        "status": "completed",
        "service_tier": "default",
        "output": [
            "not an item",
            {"type": "reasoning", "summary": []},
            {
                "type": "message",
                "content": [
                    {"type": "output_text", "text": "Hel"},
                    {"type": "output_text", "text": "lo"},
                    {"type": "refusal", "refusal": "no"},
                    "junk",
                ],
            },
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": '{"a":1}'},
        ],
        "usage": {
            "input_tokens": 9,
            "output_tokens": 4,
            "input_tokens_details": {"cached_tokens": 2},
            "output_tokens_details": {"reasoning_tokens": 1},
        },
    }
    resp = responses_answer_from_wire(raw)
    (choice,) = resp.choices
    assert (choice.message.content, choice.message.refusal) == ("Hello", "no")
    assert [(c.id, c.name, c.arguments) for c in choice.message.tool_calls] == [
        ("c1", "f", '{"a":1}')
    ]
    assert choice.finish_reason == "tool_calls"
    assert resp.usage == Usage(9, 4, cache_read_tokens=2, reasoning_tokens=1)
    assert (resp.created, resp.service_tier, resp.raw) == (1_700_000_000, "default", raw)


@pytest.mark.parametrize(
    ("details", "finish"),
    [
        ({"reason": "content_filter"}, "content_filter"),
        ({"reason": "max_output_tokens"}, "length"),
        (None, "length"),
    ],
)
def test_an_incomplete_answer_says_why_it_ended(details: Any, finish: str) -> None:
    raw = {"status": "incomplete", "incomplete_details": details, "output": [], "usage": "n/a"}
    resp = responses_answer_from_wire(raw)
    assert resp.choices[0].finish_reason == finish
    assert resp.choices[0].message.content == ""  # no text, no calls: an empty answer
    assert resp.usage is None
    assert resp.created == 0


def test_an_answer_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(SerializationError, match="not an object"):
        responses_answer_from_wire(["response"])


def sse(kind: str, **event: Any) -> bytes:
    return f"event: {kind}\ndata: {orjson.dumps({'type': kind, **event}).decode()}\n\n".encode()


def test_the_stream_gives_a_chunk_per_event_with_its_bytes() -> None:
    created = {"id": "resp_2", "model": "gpt-4o", "created_at": 17, "status": "in_progress"}
    call = {"type": "function_call", "call_id": "c9", "name": "lookup", "arguments": ""}
    done = {**created, "status": "completed", "usage": {"input_tokens": 3, "output_tokens": 2}}
    events = [
        sse("response.created", response=created),
        sse("response.output_text.delta", delta="Hi"),
        sse("response.refusal.delta", delta="nope"),
        sse("response.output_item.added", output_index=1, item={"type": "message"}),
        sse("response.output_item.added", output_index=2, item=call),
        sse("response.function_call_arguments.delta", output_index=2, delta='{"q"'),
        sse("response.completed", response=done),
    ]
    decoder = ResponsesEventDecoder()
    wire = b"".join(events)
    chunks = decoder.feed(wire[:50])
    assert decoder.buffered > 0
    chunks += decoder.feed(wire[50:])
    chunks += decoder.close()
    assert len(chunks) == len(events)
    assert b"".join(c.raw for c in chunks if isinstance(c.raw, bytes)) == wire
    assert all((c.id, c.model, c.created) == ("resp_2", "gpt-4o", 17) for c in chunks[1:])
    assert chunks[0].choices == ()
    assert chunks[1].choices[0].delta.content == "Hi"
    assert chunks[2].choices[0].delta.refusal == "nope"
    assert chunks[3].choices == ()  # a message item: no tool call
    (start,) = chunks[4].choices[0].delta.tool_calls
    assert (start.index, start.id, start.name) == (0, "c9", "lookup")
    (args,) = chunks[5].choices[0].delta.tool_calls
    assert (args.index, args.arguments) == (0, '{"q"')
    assert chunks[6].choices[0].finish_reason == "tool_calls"
    assert chunks[6].usage == Usage(3, 2)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"data: {oops\n\n", "malformed stream event"),
        (b"data: [1, 2]\n\n", "not an object"),
        (sse("error", message="rate limited"), "upstream stream failed: rate limited$"),
        (sse("error", error={"message": "overloaded"}), "upstream stream failed: overloaded$"),
        (
            sse("response.failed", response={"error": {"message": "server_error"}}),
            "upstream stream failed: server_error$",
        ),
        (sse("response.failed", response={}), "^upstream stream failed$"),
    ],
)
def test_a_failing_stream_raises_with_openais_words(data: bytes, message: str) -> None:
    with pytest.raises(StreamError, match=message):
        ResponsesEventDecoder().feed(data)


def test_a_stream_that_ends_before_its_last_event_raises() -> None:
    decoder = ResponsesEventDecoder()
    decoder.feed(sse("response.output_text.delta", delta="cut"))
    with pytest.raises(StreamError, match="ended before the answer was complete"):
        decoder.close()


def test_a_broken_passed_stream_ends_with_response_failed_then_error() -> None:
    decoder = ResponsesEventDecoder()
    (chunk,) = decoder.feed(
        sse("response.created", response={"id": "resp_3", "model": "m", "created_at": 5})
    )
    err = InvalidRequest("bad things", param="input", code="invalid_value")
    events = SSEDecoder().feed(passed_stream_failure(chunk, err))
    assert [e.event for e in events] == ["response.failed", "error"]
    failed, error = (orjson.loads(e.data) for e in events)
    assert failed["response"]["id"] == "resp_3"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"]["message"] == "bad things"
    assert (error["code"], error["param"], error["message"]) == (
        "invalid_value",
        "input",
        "bad things",
    )
    assert error["error"]["type"] == err.error_type
