"""A stream decoder's error carries the chunks it decoded before it in the same read.

Good events and a bad one often arrive in one read (TCP coalesces them). The good
events' chunks are part of the answer, as they are when the bad event comes in a later
read: the error that the bad event raises carries them (``GatewayError.decoded``), for
the daemon to pass on before the error. Each case feeds two good events ("Hello",
" world") and a bad one as one ``bytes``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import pytest

from adapters import ChatChunk, GatewayError, OpenAIStreamDecoder, StreamError, TextStreamDecoder
from adapters._anthropic import AnthropicStreamDecoder
from adapters._azure import AzureStreamDecoder
from adapters._bedrock import BedrockStreamDecoder
from adapters._cohere import CohereStreamDecoder
from adapters._gemini import GeminiStreamDecoder
from adapters._ollama import OllamaStreamDecoder
from adapters._replicate import ReplicateStreamDecoder
from adapters._responses_upstream import ResponsesEventDecoder
from adapters._runpod_output import RunPodStreamDecoder
from adapters._structured import JsonToolDecoder
from adapters._tgi import TGIStreamDecoder
from tests.fakes._base import event_frame, exception_frame, frame

if TYPE_CHECKING:
    from collections.abc import Callable

    from adapters import StreamDecoder

WORDS = ("Hello", " world")
BAD_SSE = b'data: {"unfinished\n\n'


def sse(data: Any, event: str | None = None) -> bytes:
    named = f"event: {event}\n".encode() if event else b""
    return named + b"data: " + orjson.dumps(data) + b"\n\n"


def openai_chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": finish}
    return sse(
        {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [choice],
        }
    )


def openai(words: tuple[str, ...]) -> bytes:
    return b"".join(openai_chunk({"content": w}) for w in words)


def anthropic(words: tuple[str, ...]) -> bytes:
    events: list[dict[str, Any]] = [
        {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
    ]
    events += [
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": w}}
        for w in words
    ]
    return b"".join(sse(e, e["type"]) for e in events)


def gemini(words: tuple[str, ...]) -> bytes:
    return b"".join(
        sse({"candidates": [{"content": {"role": "model", "parts": [{"text": w}]}, "index": 0}]})
        for w in words
    )


def bedrock(words: tuple[str, ...]) -> bytes:
    deltas = [
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": w}})
        for w in words
    ]
    return b"".join([event_frame("messageStart", {"role": "assistant"}), *deltas])


def cohere(words: tuple[str, ...]) -> bytes:
    return b"".join(
        sse({"type": "content-delta", "delta": {"message": {"content": {"text": w}}}})
        for w in words
    )


def ollama(words: tuple[str, ...]) -> bytes:
    return b"".join(
        orjson.dumps({"model": "llama3", "message": {"role": "assistant", "content": w}}) + b"\n"
        for w in words
    )


def responses(words: tuple[str, ...]) -> bytes:
    events = [{"type": "response.output_text.delta", "delta": w} for w in words]
    return b"".join(sse(e, e["type"]) for e in events)


def text_completions(words: tuple[str, ...]) -> bytes:
    return b"".join(sse({"id": "t1", "choices": [{"index": 0, "text": w}]}) for w in words)


def tgi(words: tuple[str, ...]) -> bytes:
    return b"".join(sse({"token": {"id": 1, "text": w, "special": False}}) for w in words)


def replicate(words: tuple[str, ...]) -> bytes:
    return b"".join(b"event: output\ndata: " + w.encode() + b"\n\n" for w in words)


# Each kind: its decoder and its good events; then the bad events that end it, malformed
# ones and the upstream's own in-band errors.
CASES: dict[str, tuple[Callable[[], StreamDecoder], Callable[[tuple[str, ...]], bytes]]] = {
    "openai": (OpenAIStreamDecoder, openai),
    "azure": (AzureStreamDecoder, openai),
    "anthropic": (AnthropicStreamDecoder, anthropic),
    "gemini": (GeminiStreamDecoder, gemini),
    "bedrock": (BedrockStreamDecoder, bedrock),
    "cohere": (CohereStreamDecoder, cohere),
    "ollama": (OllamaStreamDecoder, ollama),
    "responses": (ResponsesEventDecoder, responses),
    "text_completions": (TextStreamDecoder, text_completions),
    "tgi": (TGIStreamDecoder, tgi),
    "replicate": (ReplicateStreamDecoder, replicate),
}
MALFORMED = "malformed"
IN_BAND = "in-band error"
BAD: dict[str, dict[str, bytes]] = {
    "openai": {
        MALFORMED: BAD_SSE,
        IN_BAND: sse({"error": {"message": "overloaded", "type": "server_error"}}),
    },
    "azure": {MALFORMED: BAD_SSE},
    "anthropic": {
        MALFORMED: BAD_SSE,
        IN_BAND: sse(
            {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}, "error"
        ),
    },
    "gemini": {MALFORMED: BAD_SSE, IN_BAND: sse({"error": {"code": 500, "message": "internal"}})},
    "bedrock": {
        MALFORMED: frame({":event-type": "contentBlockDelta", ":message-type": "event"}, b"{"),
        IN_BAND: exception_frame("throttlingException", "slow down"),
    },
    "cohere": {MALFORMED: BAD_SSE, IN_BAND: sse({"type": "error", "error": "boom"})},
    "ollama": {
        MALFORMED: b'{"message": {"content": "unfin\n',
        IN_BAND: b'{"error": "model unloaded"}\n',
    },
    "responses": {MALFORMED: BAD_SSE, IN_BAND: sse({"type": "error", "message": "boom"}, "error")},
    "text_completions": {MALFORMED: BAD_SSE, IN_BAND: sse({"error": {"message": "boom"}})},
    "tgi": {MALFORMED: BAD_SSE, IN_BAND: sse({"error": "boom"})},
    "replicate": {IN_BAND: b'event: error\ndata: {"detail": "boom"}\n\n'},
}
BROKEN = [
    pytest.param(kind, bad, id=f"{kind}-{name}")
    for kind in CASES
    for name, bad in BAD[kind].items()
]


def text_of(chunks: tuple[ChatChunk, ...] | list[ChatChunk]) -> str:
    return "".join(c.delta.content or "" for chunk in chunks for c in chunk.choices)


@pytest.mark.parametrize(("kind", "bad"), BROKEN)
def test_the_error_carries_the_chunks_decoded_before_it_in_the_same_read(
    kind: str, bad: bytes
) -> None:
    new_decoder, events = CASES[kind]
    with pytest.raises(GatewayError) as caught:
        new_decoder().feed(events(WORDS) + bad)
    assert text_of(caught.value.decoded) == "Hello world"


@pytest.mark.parametrize(("kind", "bad"), BROKEN)
def test_the_answer_is_the_same_whether_the_bad_event_came_apart_or_with_the_rest(
    kind: str, bad: bytes
) -> None:
    new_decoder, events = CASES[kind]
    apart = new_decoder()
    given = apart.feed(events(WORDS))
    with pytest.raises(GatewayError) as later:
        apart.feed(bad)
    with pytest.raises(GatewayError) as together:
        new_decoder().feed(events(WORDS) + bad)
    assert [*given, *later.value.decoded] == list(together.value.decoded)
    assert str(later.value) == str(together.value)


@pytest.mark.parametrize("kind", CASES)
def test_an_error_in_a_later_read_carries_only_that_reads_chunks(kind: str) -> None:
    new_decoder, events = CASES[kind]
    decoder = new_decoder()
    assert text_of(decoder.feed(events(WORDS[:1]))) == "Hello"
    with pytest.raises(GatewayError) as caught:
        decoder.feed(events(WORDS[1:]) + next(iter(BAD[kind].values())))
    assert text_of(caught.value.decoded) == " world"


@pytest.mark.parametrize("kind", [k for k in CASES if k not in ("bedrock", "ollama")])
def test_a_stream_cut_short_carries_the_last_event_close_decoded(kind: str) -> None:
    # The last event without its blank line is decoded at close, then the stream is
    # found incomplete: that event's chunks are still the answer's.
    new_decoder, events = CASES[kind]
    decoder = new_decoder()
    raw = events(WORDS)
    assert text_of(decoder.feed(raw[:-2])) == "Hello"
    with pytest.raises(StreamError) as caught:
        decoder.close()
    assert text_of(caught.value.decoded) == " world"


def test_ollama_cut_short_carries_its_last_line() -> None:
    decoder = OllamaStreamDecoder()
    assert text_of(decoder.feed(ollama(WORDS)[:-1])) == "Hello"  # no final newline
    with pytest.raises(StreamError, match="done line") as caught:
        decoder.close()
    assert text_of(caught.value.decoded) == " world"


def test_azure_drops_filter_only_chunks_from_what_an_error_carries() -> None:
    filtered = sse(
        {
            "id": "",
            "object": "",
            "created": 0,
            "model": "",
            "choices": [],
            "prompt_filter_results": [],
        }
    )
    with pytest.raises(StreamError) as caught:
        AzureStreamDecoder().feed(filtered + openai(WORDS) + BAD_SSE)
    assert [text_of([c]) for c in caught.value.decoded] == list(WORDS)


def test_a_json_tool_decoder_turns_what_an_error_carries_into_text() -> None:
    # Structured output through a forced tool: the inner decoder's tool-call chunks that
    # an error carries are turned into text like the ones it returns.
    call = {"index": 0, "id": "call_1", "function": {"name": "answer", "arguments": ""}}
    pieces = [{"index": 0, "function": {"arguments": p}} for p in ('{"a"', ": 1}")]
    raw = b"".join(openai_chunk({"tool_calls": [c]}) for c in [call, *pieces])
    with pytest.raises(StreamError) as caught:
        JsonToolDecoder(OpenAIStreamDecoder(), "answer").feed(raw + BAD_SSE)
    carried = caught.value.decoded
    assert text_of(carried) == '{"a": 1}'
    assert not any(c.delta.tool_calls for chunk in carried for c in chunk.choices)


def runpod_event(status: str, *outputs: Any, **more: Any) -> bytes:
    return orjson.dumps({"status": status, "stream": [{"output": o} for o in outputs], **more})


def test_a_runpod_job_that_fails_carries_the_parts_it_sent_with_the_failure() -> None:
    with pytest.raises(StreamError, match="worker crashed") as caught:
        RunPodStreamDecoder().feed(runpod_event("FAILED", *WORDS, error="worker crashed"))
    assert text_of(caught.value.decoded) == "Hello world"


def test_a_runpod_job_of_openai_events_carries_them_before_a_bad_part() -> None:
    parts = [openai(WORDS[:1]).decode(), (openai(WORDS[1:]) + BAD_SSE).decode()]
    with pytest.raises(StreamError) as caught:
        RunPodStreamDecoder().feed(runpod_event("IN_PROGRESS", *parts))
    assert text_of(caught.value.decoded) == "Hello world"
