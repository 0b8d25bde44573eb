"""Any provider's answer -> the OpenAI Responses ``response`` object and event stream.

What the encoders produce is read by the official ``openai`` SDK (over an httpx2
MockTransport): the SDK's own parser and stream accumulator are the judges.
"""

from __future__ import annotations

from typing import Any

import httpx2
import openai
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types.responses import Response, ResponseFunctionToolCall, ResponseOutputMessage

from adapters import (
    ChatChunk,
    Choice,
    ChunkChoice,
    Delta,
    GatewayRequest,
    GatewayResponse,
    Message,
    Overloaded,
    RateLimitExceeded,
    ResponsesStreamEncoder,
    StreamError,
    ToolCall,
    ToolCallDelta,
    Usage,
    responses_request_from_wire,
    responses_response_to_wire,
)

RID = "resp_abc"
WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "parameters": {},
    "strict": None,
}


def request(**fields: Any) -> GatewayRequest:
    return responses_request_from_wire({"model": "chat", "input": "hi", **fields})


def answer(message: Message, finish: str | None = "stop", usage: Usage | None = None) -> Any:
    return GatewayResponse("chatcmpl-1", "gpt-4o", 1, (Choice(0, message, finish),), usage)


class sdk:
    """The official SDK, answered by ``body`` through an httpx2 MockTransport."""

    def __init__(self, body: bytes, content_type: str = "text/event-stream") -> None:
        def handler(request: httpx2.Request) -> httpx2.Response:
            return httpx2.Response(200, headers={"content-type": content_type}, content=body)

        self.client = openai.OpenAI(
            api_key="k",
            base_url="http://test/v1",
            max_retries=0,
            http_client=httpx2.Client(transport=httpx2.MockTransport(handler)),
        )

    def __enter__(self) -> openai.OpenAI:
        return self.client

    def __exit__(self, *exc: object) -> None:
        self.client.close()


def parsed(wire: dict[str, Any]) -> Response:
    with sdk(orjson.dumps(wire), "application/json") as client:
        return client.responses.create(model="chat", input="hi")


def streamed(data: bytes) -> tuple[list[Any], Response]:
    """Every event the SDK's stream helper yields, and its final response."""
    with sdk(data) as client, client.responses.stream(model="chat", input="hi") as stream:
        events = list(stream)
        return events, stream.get_final_response()


# -- the response object ----------------------------------------------------------------


def test_response_golden() -> None:
    req = request(instructions="Be brief.", tools=[WEATHER], metadata={"k": "v"})
    calls = (ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)
    resp = answer(Message("assistant", "Checking.", tool_calls=calls), "tool_calls", Usage(7, 5))
    wire = responses_response_to_wire(resp, req, RID, 1700000000)
    assert wire == {
        "id": RID,
        "object": "response",
        "created_at": 1700000000,
        "status": "completed",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": "gpt-4o",
        "output": [
            {
                "type": "message",
                "id": "msg_abc_0",
                "status": "completed",
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "Checking.", "annotations": [], "logprobs": []}
                ],
            },
            {
                "type": "function_call",
                "id": "fc_abc_1",
                "call_id": "call_1",
                "name": "get_weather",
                "arguments": '{"city":"Paris"}',
                "status": "completed",
            },
        ],
        "previous_response_id": None,
        "store": False,
        "truncation": "disabled",
        "usage": {
            "input_tokens": 7,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": 5,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": 12,
        },
        "instructions": "Be brief.",
        "max_output_tokens": None,
        "parallel_tool_calls": True,
        "reasoning": {"effort": None, "summary": None},
        "temperature": None,
        "text": {"format": {"type": "text"}},
        "tool_choice": "auto",
        "tools": [{**WEATHER, "description": None}],
        "top_p": None,
        "metadata": {"k": "v"},
    }


def test_response_is_read_by_the_sdk() -> None:
    calls = (ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)
    resp = answer(Message("assistant", "Checking.", tool_calls=calls), "tool_calls", Usage(7, 5))
    response = parsed(responses_response_to_wire(resp, request(tools=[WEATHER]), RID, 1))
    assert response.output_text == "Checking."
    message, call = response.output
    assert isinstance(message, ResponseOutputMessage)
    assert isinstance(call, ResponseFunctionToolCall)
    assert (call.call_id, call.name, call.arguments) == (
        "call_1",
        "get_weather",
        '{"city":"Paris"}',
    )
    assert response.usage is not None
    assert response.usage.input_tokens_details.cached_tokens == 0
    assert response.usage.total_tokens == 12
    assert response.tools[0].type == "function"


@pytest.mark.parametrize(
    ("finish", "status", "reason"),
    [
        ("stop", "completed", None),
        (None, "completed", None),
        ("tool_calls", "completed", None),
        ("length", "incomplete", "max_output_tokens"),
        ("content_filter", "incomplete", "content_filter"),
    ],
)
def test_response_status(finish: str | None, status: str, reason: str | None) -> None:
    wire = responses_response_to_wire(answer(Message("assistant", "x"), finish), request(), RID, 1)
    assert wire["status"] == status
    assert wire["output"][0]["status"] == status
    details = wire["incomplete_details"]
    assert details == (None if reason is None else {"reason": reason})
    assert parsed(wire).status == status


def test_response_without_text_or_usage() -> None:
    wire = responses_response_to_wire(
        answer(Message("assistant", None), "content_filter"), request(), RID, 1
    )
    assert wire["output"] == []
    assert wire["usage"] is None
    empty = GatewayResponse("x", "", 0, ())
    assert responses_response_to_wire(empty, request(), RID, 1)["model"] == "chat"


def test_a_refusal_is_a_refusal_part() -> None:
    message = Message("assistant", None, refusal="I can't help with that.")
    response = parsed(responses_response_to_wire(answer(message), request(), RID, 1))
    [item] = response.output
    assert isinstance(item, ResponseOutputMessage)
    [part] = item.content
    assert part.type == "refusal"
    assert part.refusal == "I can't help with that."


def test_output_items_go_back_in_as_the_same_turn() -> None:
    """A client replays ``output`` as input: the next request holds the same turn."""
    calls = (ToolCall("call_1", "get_weather", '{"city":"Paris"}'),)
    message = Message("assistant", "Checking.", tool_calls=calls)
    response = parsed(responses_response_to_wire(answer(message), request(), RID, 1))
    replayed = [item.model_dump(exclude_none=True) for item in response.output]
    req = request(input=[{"role": "user", "content": "hi"}, *replayed])
    assert req.messages[-1] == message


# -- the event stream -------------------------------------------------------------------


def chunk(delta: Delta, finish: str | None = None, index: int = 0) -> ChatChunk:
    return ChatChunk("chatcmpl-1", "gpt-4o", 1, (ChunkChoice(index, delta, finish),))


def args(index: int, piece: str) -> Delta:
    return Delta(tool_calls=(ToolCallDelta(index, arguments=piece),))


def chunks() -> list[ChatChunk]:
    return [
        chunk(Delta(role="assistant", content="")),
        chunk(Delta(content="Let me")),
        chunk(Delta(content=" check.")),
        chunk(Delta(tool_calls=(ToolCallDelta(0, id="call_1", name="get_weather"),))),
        chunk(args(0, '{"city"')),
        chunk(args(0, ':"Paris"}')),
        chunk(Delta(tool_calls=(ToolCallDelta(1, id="call_2", name="now", arguments="{}"),))),
        chunk(Delta(), "tool_calls"),
        ChatChunk("chatcmpl-1", "gpt-4o", 1, (), usage=Usage(11, 22)),
    ]


def encode(items: list[ChatChunk], req: GatewayRequest | None = None) -> bytes:
    encoder = ResponsesStreamEncoder(req or request(), RID, 1)
    return b"".join(encoder.feed(c) for c in items) + encoder.close()


def events_of(data: bytes) -> list[dict[str, Any]]:
    """The events' data, checking each frame's ``event:`` name is its ``type``."""
    out = []
    for frame in data.split(b"\n\n"):
        if frame:
            name, payload = frame.split(b"\n")
            event = orjson.loads(payload.removeprefix(b"data: "))
            assert name == b"event: " + event["type"].encode()
            out.append(event)
    return out


def test_event_sequence() -> None:
    events = events_of(encode(chunks()))
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    assert [(e["type"], e.get("output_index")) for e in events] == [
        ("response.created", None),
        ("response.in_progress", None),
        ("response.output_item.added", 0),
        ("response.content_part.added", 0),
        ("response.output_text.delta", 0),
        ("response.output_text.delta", 0),
        ("response.output_item.added", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.function_call_arguments.delta", 1),
        ("response.output_item.added", 2),
        ("response.function_call_arguments.delta", 2),
        ("response.output_text.done", 0),
        ("response.content_part.done", 0),
        ("response.output_item.done", 0),
        ("response.function_call_arguments.done", 1),
        ("response.output_item.done", 1),
        ("response.function_call_arguments.done", 2),
        ("response.output_item.done", 2),
        ("response.completed", None),
    ]
    final = events[-1]["response"]
    assert final["status"] == "completed"
    assert final["usage"]["output_tokens"] == 22
    assert [item["id"] for item in final["output"]] == ["msg_abc_0", "fc_abc_1", "fc_abc_2"]


def test_stream_read_by_the_sdk() -> None:
    events, final = streamed(encode(chunks()))
    assert final.id == RID
    assert final.model == "gpt-4o"
    assert final.output_text == "Let me check."
    message, weather, now = final.output
    assert isinstance(message, ResponseOutputMessage)
    assert isinstance(weather, ResponseFunctionToolCall)
    assert isinstance(now, ResponseFunctionToolCall)
    assert (weather.call_id, weather.arguments) == ("call_1", '{"city":"Paris"}')
    assert (now.name, now.arguments) == ("now", "{}")
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert deltas[-1].snapshot == "Let me check."  # the SDK's own accumulation


def test_interleaved_calls_and_late_text_stream_live() -> None:
    """Items are addressed by index: nothing is held back, whatever the order."""
    data = encode(
        [
            chunk(Delta(tool_calls=(ToolCallDelta(0, id="a", name="f", arguments='{"x"'),))),
            chunk(Delta(tool_calls=(ToolCallDelta(1, id="b", name="g", arguments='{"y"'),))),
            chunk(args(0, ":1}")),
            chunk(Delta(content="Done.")),
            chunk(args(1, ":2}"), "tool_calls"),
        ]
    )
    _, final = streamed(data)
    assert [item.type for item in final.output] == ["function_call", "function_call", "message"]
    first, second, _ = final.output
    assert isinstance(first, ResponseFunctionToolCall)
    assert isinstance(second, ResponseFunctionToolCall)
    assert (first.arguments, second.arguments) == ('{"x":1}', '{"y":2}')
    assert final.output_text == "Done."


def test_a_call_without_an_id_gets_one_that_never_changes() -> None:
    data = encode(
        [
            chunk(Delta(tool_calls=(ToolCallDelta(0, arguments="{"),))),
            chunk(Delta(tool_calls=(ToolCallDelta(0, id="late", name="f", arguments="}"),))),
        ]
    )
    _, final = streamed(data)
    (call,) = final.output
    assert isinstance(call, ResponseFunctionToolCall)
    assert call.call_id == "call_abc_0"
    assert call.name == "f"  # a name that comes late is kept
    assert call.arguments == "{}"


def test_refusal_is_its_own_content_part() -> None:
    data = encode(
        [chunk(Delta(content="I")), chunk(Delta(refusal="can't")), chunk(Delta(), "stop")]
    )
    kinds = [e["type"] for e in events_of(data)]
    assert kinds[4:9] == [
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.content_part.added",
        "response.refusal.delta",
    ]
    assert "response.refusal.done" in kinds
    _, final = streamed(data)
    message = final.output[0]
    assert isinstance(message, ResponseOutputMessage)
    assert [part.type for part in message.content] == ["output_text", "refusal"]


def test_a_cut_by_the_token_limit_ends_incomplete() -> None:
    events = events_of(encode([chunk(Delta(content="Once upon"), "length")]))
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    done = next(e for e in events if e["type"] == "response.output_item.done")
    assert done["item"]["status"] == "incomplete"


def test_no_chunks_still_make_a_whole_stream() -> None:
    events, final = streamed(encode([], request(instructions="x")))
    assert [e.type for e in events] == [
        "response.created",
        "response.in_progress",
        "response.completed",
    ]
    assert final.output == []
    assert final.model == "chat"
    assert final.instructions == "x"


def test_other_choices_and_input_after_the_end_are_ignored() -> None:
    encoder = ResponsesStreamEncoder(request(), RID, 1)
    data = encoder.feed(chunk(Delta(content="other"), index=1)) + encoder.close()
    assert b"other" not in data
    assert encoder.feed(chunk(Delta(content="late"))) == b""
    assert encoder.close() == b""
    assert encoder.error_event(StreamError("late")) == b""


def test_a_broken_stream_fails_then_raises_in_the_sdk() -> None:
    encoder = ResponsesStreamEncoder(request(), RID, 1)
    data = b"".join(encoder.feed(c) for c in chunks()[:5])
    data += encoder.error_event(Overloaded("upstream overloaded", upstream="oa:x"))
    assert encoder.close() == b""  # nothing after the error
    failed, error = events_of(data)[-2:]
    assert failed["type"] == "response.failed"
    assert failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "server_error", "message": "upstream overloaded"}
    assert [item["status"] for item in failed["response"]["output"]] == ["incomplete"] * 2
    assert error == {
        "type": "error",
        "sequence_number": failed["sequence_number"] + 1,
        "code": "upstream_overloaded",
        "message": "upstream overloaded",
        "param": None,
        "error": {
            "type": "upstream_error",
            "code": "upstream_overloaded",
            "message": "upstream overloaded",
            "param": None,
        },
    }
    seen: list[str] = []
    with pytest.raises(openai.APIError, match="upstream overloaded"):
        read_events(data, seen)
    assert seen[-1] == "response.failed"  # yielded before the SDK raises


def read_events(data: bytes, seen: list[str]) -> None:
    with sdk(data) as client, client.responses.stream(model="chat", input="hi") as stream:
        seen.extend(event.type for event in stream)


def test_a_rate_limit_says_so_in_the_failed_response() -> None:
    encoder = ResponsesStreamEncoder(request(), RID, 1)
    events = events_of(encoder.error_event(RateLimitExceeded("slow down")))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.failed",
        "error",
    ]
    assert events[2]["response"]["error"]["code"] == "rate_limit_exceeded"


@given(
    texts=st.lists(st.text(min_size=1, max_size=5), max_size=6),
    pieces=st.lists(st.tuples(st.integers(0, 2), st.text(max_size=4)), max_size=8),
    order=st.randoms(use_true_random=False),
)
def test_any_interleaving_adds_up_in_the_sdk(
    texts: list[str], pieces: list[tuple[int, str]], order: Any
) -> None:
    """Text pieces and up to three calls' argument pieces, interleaved any way: the
    SDK's accumulated response holds exactly what was sent, each item whole."""
    streams: list[list[Delta]] = [[Delta(content=t) for t in texts]]
    streams += [[args(i, p) for j, p in pieces if j == i] for i in range(3)]
    deltas: list[Delta] = []
    while any(streams):  # a merge: each stream's own order kept
        deltas.append(order.choice([s for s in streams if s]).pop(0))
    _, final = streamed(encode([chunk(d) for d in deltas]))
    assert final.output_text == "".join(texts)
    calls = {item.call_id: item.arguments for item in final.output if item.type == "function_call"}
    expected: dict[int, str] = {}
    for i, p in pieces:
        expected[i] = expected.get(i, "") + p
    assert sorted(calls.values()) == sorted(expected.values())
