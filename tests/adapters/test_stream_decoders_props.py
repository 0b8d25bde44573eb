"""Every provider's stream decoder by property: any chunking decodes like the whole.

Each case builds a valid stream in its provider's wire format (SSE for OpenAI,
Anthropic, Gemini, Cohere, TGI and Replicate, NDJSON for Ollama, AWS event-stream frames with their CRCs
for Bedrock) from hypothesis-chosen text, tool calls and usage, and remembers the text
it holds. Then, for a prefix of that stream (most often all of it) fed in chunks cut at
hypothesis-chosen points, the decoder gives exactly what it gives for the prefix in one
piece: the same chunks, and the same StreamError if one ended it. So does a stream with
a bad event put in anywhere: the chunks before it are the same however the bytes came
(those an error carries included). A whole stream decodes to its text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import (
    ChatChunk,
    ChunkChoice,
    Delta,
    MessagesStreamEncoder,
    OpenAIStreamDecoder,
    StreamError,
)
from adapters._anthropic import AnthropicStreamDecoder
from adapters._bedrock import BedrockStreamDecoder
from adapters._cohere import CohereStreamDecoder
from adapters._gemini import GeminiStreamDecoder
from adapters._ollama import OllamaStreamDecoder
from adapters._openai_response import chunk_to_wire
from adapters._replicate import ReplicateStreamDecoder
from adapters._tgi import TGIStreamDecoder
from tests.fakes._base import frame
from tests.fakes.bedrock_upstream import event_frame
from tests.strategies import FINISH, TEXT, USAGE, chat_chunks, chunkings

if TYPE_CHECKING:
    from collections.abc import Callable

    from adapters import StreamDecoder

# A stream's bytes and the text its answer holds.
Stream = tuple[bytes, str]

TEXTS = st.lists(TEXT, max_size=4)
ARGS = st.dictionaries(st.text(max_size=3), TEXT, max_size=2)


@st.composite
def openai_streams(draw: st.DrawFn) -> Stream:
    chunks = draw(st.lists(chat_chunks(), max_size=4))
    chunks.append(ChatChunk("c-1", "gpt-x", 1, (ChunkChoice(0, Delta(), draw(FINISH)),)))
    events = [b"data: " + orjson.dumps(chunk_to_wire(c)) + b"\n\n" for c in chunks]
    text = "".join(c.delta.content or "" for ch in chunks for c in ch.choices)
    return b"".join(events) + b"data: [DONE]\n\n", text


@st.composite
def anthropic_streams(draw: st.DrawFn) -> Stream:
    # Anthropic's events as our own Messages encoder writes them for its clients.
    chunks = draw(st.lists(chat_chunks(choices=1), max_size=4))
    encoder = MessagesStreamEncoder()
    raw = b"".join(encoder.feed(c) for c in chunks) + encoder.close()
    text = "".join(
        (c.delta.content or "") + (c.delta.refusal or "") for ch in chunks for c in ch.choices
    )
    return raw, text


@st.composite
def gemini_streams(draw: st.DrawFn) -> Stream:
    texts = draw(TEXTS)
    events: list[dict[str, Any]] = []
    for i, text in enumerate([*texts, ""]):
        parts: list[dict[str, Any]] = [{"text": text}]
        if draw(st.integers(0, 4)) == 0:
            parts.append({"functionCall": {"name": draw(TEXT), "args": draw(ARGS)}})
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
        if i == len(texts):
            candidate["finishReason"] = draw(st.sampled_from(["STOP", "MAX_TOKENS", "SAFETY"]))
        event: dict[str, Any] = {
            "candidates": [candidate],
            "modelVersion": "gemini-x",
            "responseId": "r-1",
        }
        if draw(st.booleans()):
            usage = draw(USAGE)
            event["usageMetadata"] = {
                "promptTokenCount": usage.prompt_tokens,
                "candidatesTokenCount": usage.completion_tokens,
            }
        events.append(event)
    return b"".join(b"data: " + orjson.dumps(e) + b"\r\n\r\n" for e in events), "".join(texts)


@st.composite
def cohere_streams(draw: st.DrawFn) -> Stream:
    texts = draw(TEXTS)
    usage = draw(USAGE)
    events: list[dict[str, Any]] = [
        {"id": "c-1", "type": "message-start", "delta": {"message": {"role": "assistant"}}},
        {"type": "content-start", "index": 0, "delta": {"message": {"content": {"text": ""}}}},
        *(
            {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": t}}}}
            for t in texts
        ),
        {"type": "content-end", "index": 0},
    ]
    if draw(st.booleans()):
        fn = {"name": draw(TEXT), "arguments": ""}
        call = {"id": draw(TEXT), "type": "function", "function": fn}
        events.append(
            {"type": "tool-call-start", "index": 0, "delta": {"message": {"tool_calls": call}}}
        )
        for piece in draw(TEXTS):
            more = {"function": {"arguments": piece}}
            events.append(
                {"type": "tool-call-delta", "index": 0, "delta": {"message": {"tool_calls": more}}}
            )
        events.append({"type": "tool-call-end", "index": 0})
    tokens = {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens}
    finish = draw(st.sampled_from(["COMPLETE", "MAX_TOKENS", "TOOL_CALL"]))
    events.append(
        {"type": "message-end", "delta": {"finish_reason": finish, "usage": {"tokens": tokens}}}
    )
    raw = b"".join(
        b"event: " + e["type"].encode() + b"\ndata: " + orjson.dumps(e) + b"\n\n" for e in events
    )
    return raw, "".join(texts)


@st.composite
def ollama_streams(draw: st.DrawFn) -> Stream:
    texts = draw(TEXTS)
    usage = draw(USAGE)
    head = {"model": "llama3", "created_at": "2024-05-01T10:00:00.123456789Z"}
    lines = [{**head, "message": {"role": "assistant", "content": t}, "done": False} for t in texts]
    done = {
        **head,
        "message": {"role": "assistant", "content": ""},
        "done": True,
        "done_reason": draw(st.sampled_from(["stop", "length"])),
        "prompt_eval_count": usage.prompt_tokens,
        "eval_count": usage.completion_tokens,
    }
    return b"".join(orjson.dumps(line) + b"\n" for line in [*lines, done]), "".join(texts)


@st.composite
def bedrock_streams(draw: st.DrawFn) -> Stream:
    texts = draw(TEXTS)
    usage = draw(USAGE)

    def padded(payload: dict[str, Any]) -> dict[str, Any]:
        # Bedrock pads events with a random "p" to hide the lengths of the texts.
        return {**payload, "p": draw(st.text("abcdefghijklmnopqrstuvwxyzABCDEFGH", max_size=20))}

    frames = [event_frame("messageStart", padded({"role": "assistant"}))]
    for t in texts:
        delta = {"contentBlockIndex": 0, "delta": {"text": t}}
        frames.append(event_frame("contentBlockDelta", padded(delta)))
    frames.append(event_frame("contentBlockStop", padded({"contentBlockIndex": 0})))
    if draw(st.booleans()):
        use = {"toolUseId": draw(TEXT), "name": draw(TEXT)}
        frames.append(
            event_frame("contentBlockStart", {"contentBlockIndex": 1, "start": {"toolUse": use}})
        )
        for piece in draw(TEXTS):
            delta = {"contentBlockIndex": 1, "delta": {"toolUse": {"input": piece}}}
            frames.append(event_frame("contentBlockDelta", padded(delta)))
        frames.append(event_frame("contentBlockStop", {"contentBlockIndex": 1}))
    stop = draw(st.sampled_from(["end_turn", "max_tokens", "tool_use"]))
    frames.append(event_frame("messageStop", padded({"stopReason": stop})))
    tokens = {
        "inputTokens": usage.prompt_tokens,
        "outputTokens": usage.completion_tokens,
        "totalTokens": usage.total_tokens,
    }
    frames.append(event_frame("metadata", padded({"usage": tokens, "metrics": {"latencyMs": 9}})))
    return b"".join(frames), "".join(texts)


@st.composite
def tgi_streams(draw: st.DrawFn) -> Stream:
    texts, usage = draw(TEXTS), draw(USAGE)
    events: list[dict[str, Any]] = [
        {"index": i, "token": {"id": i, "text": t, "special": False}, "details": None}
        for i, t in enumerate(texts)
    ]
    details = {
        "finish_reason": draw(st.sampled_from(["length", "eos_token", "stop_sequence"])),
        "generated_tokens": usage.completion_tokens,
        "input_length": usage.prompt_tokens,
    }
    end: dict[str, Any] = {
        "token": {"id": 2, "text": "</s>", "special": True},
        "generated_text": "x",
    }
    events.append({**end, "details": details})
    return b"".join(b"data:" + orjson.dumps(e) + b"\n\n" for e in events), "".join(texts)


@st.composite
def replicate_streams(draw: st.DrawFn) -> Stream:
    # The data is the text itself: a line break in it is a new data line (CR and CRLF
    # become LF: SSE reads each as a line end).
    texts = [t.replace("\r\n", "\n").replace("\r", "\n") for t in draw(TEXTS)]
    events = [
        b"event: output\n" + b"".join(b"data: " + line.encode() + b"\n" for line in t.split("\n"))
        for t in texts
    ]
    body = b"".join(e + b"\n" for e in events) + b"event: done\ndata: {}\n\n"
    return body, "".join(texts)


CASES: dict[str, tuple[Callable[[], StreamDecoder], st.SearchStrategy[Stream]]] = {
    "openai": (OpenAIStreamDecoder, openai_streams()),
    "anthropic": (AnthropicStreamDecoder, anthropic_streams()),
    "gemini": (GeminiStreamDecoder, gemini_streams()),
    "cohere": (CohereStreamDecoder, cohere_streams()),
    "ollama": (OllamaStreamDecoder, ollama_streams()),
    "bedrock": (BedrockStreamDecoder, bedrock_streams()),
    "tgi": (TGIStreamDecoder, tgi_streams()),
    "replicate": (ReplicateStreamDecoder, replicate_streams()),
}


#: A bad event in each kind's framing (Replicate's events are plain text: its error).
GARBAGE = {
    **{kind: b'data: {"unfinished\n\n' for kind in CASES},
    "ollama": b'{"message": {"content": "unfin\n',
    "bedrock": frame({":event-type": "contentBlockDelta", ":message-type": "event"}, b"{"),
    "replicate": b'event: error\ndata: {"detail": "boom"}\n\n',
}


def decode(decoder: StreamDecoder, chunks: list[bytes]) -> tuple[list[ChatChunk], str | None]:
    """The chunks of a stream fed in ``chunks`` (with those the error that ended it
    carried), and that StreamError, if one did."""
    out: list[ChatChunk] = []
    try:
        for chunk in chunks:
            out += decoder.feed(chunk)
        out += decoder.close()
    except StreamError as exc:
        return [*out, *exc.decoded], f"StreamError: {exc}"
    return out, None


def text_of(chunks: list[ChatChunk]) -> str:
    return "".join(c.delta.content or "" for ch in chunks for c in ch.choices)


@pytest.mark.parametrize("kind", CASES)
@given(data=st.data())
def test_any_chunking_of_any_prefix_decodes_like_the_whole(kind: str, data: st.DataObject) -> None:
    new_decoder, streams = CASES[kind]
    raw, _ = data.draw(streams)
    prefix = raw[: data.draw(st.just(len(raw)) | st.integers(0, len(raw)))]
    chunks = data.draw(chunkings(prefix))
    assert decode(new_decoder(), chunks) == decode(new_decoder(), [prefix])


@pytest.mark.parametrize("kind", CASES)
@given(data=st.data())
def test_any_chunking_of_a_broken_stream_decodes_like_the_whole(
    kind: str, data: st.DataObject
) -> None:
    new_decoder, streams = CASES[kind]
    raw, _ = data.draw(streams)
    at = data.draw(st.integers(0, len(raw)))
    broken = raw[:at] + GARBAGE[kind] + raw[at:]
    chunks = data.draw(chunkings(broken))
    assert decode(new_decoder(), chunks) == decode(new_decoder(), [broken])


@pytest.mark.parametrize("kind", CASES)
@given(data=st.data())
def test_a_whole_stream_decodes_to_its_text_and_finishes(kind: str, data: st.DataObject) -> None:
    new_decoder, streams = CASES[kind]
    raw, text = data.draw(streams)
    chunks, error = decode(new_decoder(), data.draw(chunkings(raw)))
    assert error is None, error
    assert text_of(chunks) == text
    assert [c.finish_reason for ch in chunks for c in ch.choices if c.finish_reason]
