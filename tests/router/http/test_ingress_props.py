"""The ingress stream encoders by property: what a client is sent decodes back.

The OpenAI encoder's ``data:`` events, read by our own OpenAI stream decoder in any
chunking, give back exactly the chunks encoded (usage-only chunks only when the client
asked for usage), each named with the first's id and time as OpenAI names answers; an
error event is raised with its message. The Anthropic encoder's
named events, for any interleaving of text and tool-call deltas, keep Anthropic's block
order (each block started, fed and stopped before the next) and, read by our Anthropic
stream decoder, give back the text, and every tool call with its id, name and arguments
(JSON-object arguments exactly; others exactly, or up to a whole JSON object when more
came after it). An answer whose blocks come one after another goes out as it comes.
"""

from __future__ import annotations

from itertools import pairwise

import attrs
import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import (
    ChatChunk,
    ChunkChoice,
    Delta,
    GatewayError,
    OpenAIStreamDecoder,
    SSEDecoder,
    StreamError,
    ToolCall,
    ToolCallDelta,
    chat_completion_id,
)
from adapters._anthropic import AnthropicStreamDecoder
from adapters._anthropic_response import message_id
from router.http._anthropic_ingress import AnthropicStream
from router.http._openai_ingress import OpenAIStreamEncoder
from tests.strategies import TEXT, chat_chunks, chunkings


def decode_openai(chunks: list[bytes]) -> list[ChatChunk]:
    decoder = OpenAIStreamDecoder()
    out: list[ChatChunk] = []
    for chunk in chunks:
        out += decoder.feed(chunk)
    return out + decoder.close()


@given(st.data(), st.lists(chat_chunks(choices=3), max_size=6), st.booleans())
def test_openai_events_decode_to_the_chunks_encoded(
    data: st.DataObject, chunks: list[ChatChunk], include_usage: bool
) -> None:
    encoder = OpenAIStreamEncoder(include_usage)
    raw = b"".join(encoder.feed(c) for c in chunks) + encoder.done()
    sent = [c for c in chunks if c.choices or include_usage]
    got = decode_openai(data.draw(chunkings(raw)))
    assert len(got) == len(sent)
    if sent:  # every chunk named as the first: its id as OpenAI's, its time (or now)
        first = got[0]
        assert all((c.id, c.created) == (first.id, first.created) for c in got)
        assert first.id == chat_completion_id(sent[0].id, first.id.removeprefix("chatcmpl-"))
        assert first.created == (sent[0].created or first.created) != 0
    assert [
        attrs.evolve(g, id=s.id, created=s.created) for g, s in zip(got, sent, strict=True)
    ] == sent


@given(st.data(), st.lists(chat_chunks(), max_size=3), TEXT.filter(str.strip))
def test_an_openai_error_event_is_raised_with_its_message(
    data: st.DataObject, chunks: list[ChatChunk], message: str
) -> None:
    encoder = OpenAIStreamEncoder(include_usage=True)
    raw = b"".join(encoder.feed(c) for c in chunks)
    raw += encoder.error(GatewayError(message)) + encoder.done()
    decoder = OpenAIStreamDecoder()
    pieces = data.draw(chunkings(raw))
    with pytest.raises(StreamError) as caught:  # noqa: PT012 (raised by one of the feeds)
        for piece in pieces:
            decoder.feed(piece)
    assert caught.value.message == message


def tool_calls(chunks: list[ChatChunk]) -> list[ToolCall]:
    """The calls an Anthropic client is told of: in order of their first delta, each
    with the first delta's id (or one made up) and name, and all argument pieces."""
    calls: dict[int, ToolCall] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for d in choice.delta.tool_calls:
                if d.index not in calls:
                    calls[d.index] = ToolCall(d.id or f"toolu_{d.index}", d.name or "", "")
                call = calls[d.index]
                calls[d.index] = ToolCall(call.id, call.name, call.arguments + (d.arguments or ""))
    # A call without arguments reaches the client as "{}", which parses.
    return [ToolCall(c.id, c.name, c.arguments or "{}") for c in calls.values()]


def merged_calls(chunks: list[ChatChunk]) -> list[ToolCall]:
    """Tool-call deltas of a decoded stream, merged by their index."""
    calls: dict[int, ToolCall] = {}
    for chunk in chunks:
        for choice in chunk.choices:
            for d in choice.delta.tool_calls:
                call = calls.get(d.index, ToolCall(d.id or "", d.name or "", ""))
                calls[d.index] = ToolCall(call.id, call.name, call.arguments + (d.arguments or ""))
    return [calls[i] for i in sorted(calls)]


def well_formed(raw: bytes) -> None:
    """Anthropic's content blocks come one after another: each opens at the next index,
    takes deltas only while it is the open one, and stops before the next opens."""
    open_, opened = None, 0
    for event in SSEDecoder().feed(raw):
        body = orjson.loads(event.data)
        if event.event == "content_block_start":
            assert open_ is None, f"block {body['index']} started inside block {open_}"
            assert body["index"] == opened, "blocks start at 0 and count up by one"
            open_, opened = body["index"], opened + 1
        elif event.event == "content_block_delta":
            assert body["index"] == open_, f"a delta for block {body['index']}, not the open one"
        elif event.event == "content_block_stop":
            assert body["index"] == open_, f"a stop for block {body['index']}, not the open one"
            open_ = None
        elif event.event in ("message_delta", "message_stop"):
            assert open_ is None, f"{event.event} inside block {open_}"


@given(st.data(), st.lists(chat_chunks(choices=1), max_size=6))
def test_anthropic_events_decode_to_the_text_and_tool_calls_encoded(
    data: st.DataObject, chunks: list[ChatChunk]
) -> None:
    encoder = AnthropicStream()
    raw = b"".join(encoder.feed(c) for c in chunks) + encoder.done()
    well_formed(raw)
    decoder = AnthropicStreamDecoder()
    out: list[ChatChunk] = []
    for chunk in data.draw(chunkings(raw)):
        out += decoder.feed(chunk)
    out += decoder.close()

    def text(chunks: list[ChatChunk]) -> str:
        return "".join(
            (c.delta.content or "") + (c.delta.refusal or "") for ch in chunks for c in ch.choices
        )

    assert text(out) == text(chunks)
    got, sent = merged_calls(out), tool_calls(chunks)
    assert [(c.id, c.name) for c in got] == [(c.id, c.name) for c in sent]
    for g, s in zip(got, sent, strict=True):
        # Whole; or, when more came after a whole JSON object (whitespace, or text that
        # makes the arguments invalid anyway), up to that object.
        assert g.arguments == s.arguments or (
            is_object(g.arguments) and s.arguments.startswith(g.arguments)
        )
    assert out[0].id.startswith("msg_")
    if chunks and chunks[0].id:
        assert out[0].id == message_id(chunks[0].id, "")


def is_object(text: str) -> bool:
    try:
        return isinstance(orjson.loads(text), dict)
    except orjson.JSONDecodeError:
        return False


ARGUMENTS = st.dictionaries(
    TEXT, st.integers(-(2**63), 2**63 - 1) | TEXT | st.booleans(), max_size=3
)


@st.composite
def answers(draw: st.DrawFn) -> tuple[list[tuple[str | int, str]], bool]:
    """The pieces of an answer: text pieces and calls with JSON-object arguments, as
    (``"text"`` or the call's index, piece); one block after another, or interleaved."""
    blocks: list[list[tuple[str | int, str]]] = []
    for i, arguments in enumerate(draw(st.lists(ARGUMENTS, max_size=3))):
        if draw(st.booleans()):
            blocks.append([("text", t) for t in draw(st.lists(TEXT.filter(bool), min_size=1))])
        raw = orjson.dumps(arguments).decode()
        cuts = sorted(draw(st.lists(st.integers(0, len(raw)), max_size=4)))
        blocks.append([(i, raw[a:b]) for a, b in pairwise([0, *cuts, len(raw)])])
    if draw(st.booleans()):
        return [piece for block in blocks for piece in block], True
    pieces: list[tuple[str | int, str]] = []
    while blocks:
        block = blocks[draw(st.integers(0, len(blocks) - 1))]
        pieces.append(block.pop(0))
        blocks = [b for b in blocks if b]
    return pieces, False


@given(answers())
def test_calls_with_json_arguments_arrive_exactly_and_in_order_live(
    answer: tuple[list[tuple[str | int, str]], bool],
) -> None:
    pieces, one_after_another = answer
    chunks, seen = [], set()
    for key, piece in pieces:
        if key == "text":
            delta = Delta(content=piece)
        else:
            assert isinstance(key, int)
            first = key not in seen
            seen.add(key)
            call = ToolCallDelta(
                key, f"call_{key}" if first else None, f"f{key}" if first else None, piece
            )
            delta = Delta(tool_calls=(call,))
        chunks.append(ChatChunk("msg", "m", 0, (ChunkChoice(0, delta),)))
    encoder = AnthropicStream()
    sent = [encoder.feed(c) for c in chunks]
    raw = b"".join(sent) + encoder.done()
    well_formed(raw)
    decoder = AnthropicStreamDecoder()
    out = decoder.feed(raw) + decoder.close()
    assert merged_calls(out) == tool_calls(chunks)
    assert "".join(c.delta.content or "" for ch in out for c in ch.choices) == "".join(
        p for k, p in pieces if k == "text"
    )
    if one_after_another:  # nothing held: each piece goes out as it comes
        for (_, piece), out_bytes in zip(pieces, sent, strict=True):
            assert orjson.dumps(piece)[1:-1] in out_bytes


def test_arguments_of_an_earlier_call_never_go_to_a_stopped_block() -> None:
    # Found by the property above: call 0 starts, call 1 starts (which stopped call 0's
    # block), then call 0's arguments arrive.
    def calls(*deltas: ToolCallDelta) -> ChatChunk:
        return ChatChunk("msg", "m", 0, (ChunkChoice(0, Delta(tool_calls=deltas)),))

    encoder = AnthropicStream()
    raw = encoder.feed(calls(ToolCallDelta(0, "a", "f"), ToolCallDelta(1, "b", "g")))
    raw += encoder.feed(calls(ToolCallDelta(0, arguments='{"x": 1}'))) + encoder.done()
    well_formed(raw)
    decoder = AnthropicStreamDecoder()
    assert merged_calls(decoder.feed(raw) + decoder.close()) == [
        ToolCall("a", "f", '{"x": 1}'),
        ToolCall("b", "g", "{}"),
    ]
