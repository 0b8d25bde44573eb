"""The ingress stream encoders by property: what a client is sent decodes back.

The OpenAI encoder's ``data:`` events, read by our own OpenAI stream decoder in any
chunking, give back exactly the chunks encoded (usage-only chunks only when the client
asked for usage); an error event is raised with its message. The Anthropic encoder's
named events, for any interleaving of text and tool-call deltas, keep Anthropic's block
order (each block started, fed and stopped before the next) and, read by our Anthropic
stream decoder, give back the text, and every tool call with its id, name and arguments.
"""

from __future__ import annotations

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
)
from adapters._anthropic import AnthropicStreamDecoder
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
    assert decode_openai(data.draw(chunkings(raw))) == sent


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
    assert merged_calls(out) == tool_calls(chunks)
    assert out[0].id == (chunks[0].id if chunks else "")


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
