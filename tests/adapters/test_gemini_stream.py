"""GeminiStreamDecoder: ``alt=sse`` events -> OpenAI-shaped chunks, in any chunking."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import (
    ChatChunk,
    ChunkChoice,
    ContentFiltered,
    Delta,
    StreamError,
    ToolCallDelta,
    Usage,
    chunk_to_wire,
)
from adapters._gemini import GeminiAdapter, GeminiStreamDecoder

ID, MODEL = "resp-7", "gemini-2.5-flash-001"


def event(
    parts: list[dict[str, Any]] | None = None,
    finish: str | None = None,
    usage: dict[str, int] | None = None,
    index: int | None = 0,
) -> dict[str, Any]:
    candidate: dict[str, Any] = {}
    if index is not None:
        candidate["index"] = index
    if parts is not None:
        candidate["content"] = {"role": "model", "parts": parts}
    if finish is not None:
        candidate["finishReason"] = finish
    out: dict[str, Any] = {"candidates": [candidate], "modelVersion": MODEL, "responseId": ID}
    if usage is not None:
        out["usageMetadata"] = usage
    return out


def sse(*events: dict[str, Any], sep: bytes = b"\r\n") -> bytes:
    return b"".join(b"data: " + orjson.dumps(e) + sep + sep for e in events)


def decode(data: bytes) -> list[ChatChunk]:
    decoder = GeminiStreamDecoder()
    return decoder.feed(data) + decoder.close()


def chunk(delta: Delta, finish: str | None = None, index: int = 0) -> ChatChunk:
    return ChatChunk(ID, MODEL, 0, (ChunkChoice(index, delta, finish),))


ROLE = chunk(Delta(role="assistant", content=""))
PROMPT_ONLY = {"promptTokenCount": 12, "totalTokenCount": 12}
FINAL_USAGE = {
    "promptTokenCount": 12,
    "candidatesTokenCount": 9,
    "thoughtsTokenCount": 4,
    "totalTokenCount": 25,
}

# A recorded-style stream: text in increments (with multi-byte UTF-8 to split inside),
# a whole function call, then the finish with the cumulative usage.
RECORDED = sse(
    event([{"text": "Bonjour"}], usage=PROMPT_ONLY),
    event([{"text": "Thinking about Paris", "thought": True}], usage=PROMPT_ONLY),
    event([{"text": " à Paris — ☀️, "}], usage=PROMPT_ONLY),
    event([{"functionCall": {"name": "get_weather", "args": {"city": "Paris", "unit": "°C"}}}]),
    event([{"text": ""}], "STOP", FINAL_USAGE),
)
EXPECTED = [
    ROLE,
    chunk(Delta(content="Bonjour")),
    chunk(Delta(content=" à Paris — ☀️, ")),
    chunk(
        Delta(
            tool_calls=(ToolCallDelta(0, "call_0", "get_weather", '{"city":"Paris","unit":"°C"}'),)
        )
    ),
    chunk(Delta(), "tool_calls"),
    ChatChunk(ID, MODEL, 0, (), Usage(prompt_tokens=12, completion_tokens=13)),
]


def test_recorded_stream() -> None:
    assert decode(RECORDED) == EXPECTED


def test_every_split_point_yields_the_same_chunks() -> None:
    for i in range(len(RECORDED) + 1):
        decoder = GeminiStreamDecoder()
        got = decoder.feed(RECORDED[:i]) + decoder.feed(RECORDED[i:]) + decoder.close()
        assert got == EXPECTED, f"split at {i}"


def test_byte_by_byte() -> None:
    decoder = GeminiStreamDecoder()
    got: list[ChatChunk] = []
    for i in range(len(RECORDED)):
        got += decoder.feed(RECORDED[i : i + 1])
    assert got + decoder.close() == EXPECTED


@pytest.mark.parametrize("sep", [b"\n", b"\r", b"\r\n"])
def test_any_line_ending(sep: bytes) -> None:
    data = sse(event([{"text": "hi"}]), event(finish="STOP"), sep=sep)
    assert decode(data) == [ROLE, chunk(Delta(content="hi")), chunk(Delta(), "stop")]


def test_the_adapter_hands_out_fresh_decoders() -> None:
    a = GeminiAdapter()
    assert a.stream_decoder() is not a.stream_decoder()
    assert decode(RECORDED) == EXPECTED  # no state shared between streams


def test_text_and_finish_in_one_event() -> None:
    data = sse(event([{"text": "All of it."}], "STOP", FINAL_USAGE))
    assert decode(data) == [
        ROLE,
        chunk(Delta(content="All of it.")),
        chunk(Delta(), "stop"),
        ChatChunk(ID, MODEL, 0, (), Usage(12, 13)),
    ]


def test_usage_is_cumulative_the_last_wins_and_comes_last() -> None:
    later = {"promptTokenCount": 12, "candidatesTokenCount": 30, "totalTokenCount": 42}
    data = sse(event([{"text": "a"}], "STOP", FINAL_USAGE), {"usageMetadata": later})
    chunks = decode(data)
    assert chunks[-1] == ChatChunk(ID, MODEL, 0, (), Usage(12, 30))
    assert sum(1 for c in chunks if c.usage is not None) == 1


def test_no_usage_no_usage_chunk() -> None:
    chunks = decode(sse(event([{"text": "a"}], "STOP")))
    assert all(c.usage is None for c in chunks)


def test_several_calls_in_one_event_and_later_events_count_on() -> None:
    data = sse(
        event([{"functionCall": {"name": "a", "args": {}}}, {"functionCall": {"name": "b"}}]),
        event([{"functionCall": {"name": "c", "args": {"x": 1}, "id": "gem-1"}}], "STOP"),
    )
    assert decode(data) == [
        ROLE,
        chunk(
            Delta(
                tool_calls=(
                    ToolCallDelta(0, "call_0", "a", "{}"),
                    ToolCallDelta(1, "call_1", "b", "{}"),
                )
            )
        ),
        chunk(Delta(tool_calls=(ToolCallDelta(2, "gem-1", "c", '{"x":1}'),))),
        chunk(Delta(), "tool_calls"),
    ]


@pytest.mark.parametrize(
    ("finish", "expected"),
    [("STOP", "stop"), ("MAX_TOKENS", "length"), ("SAFETY", "content_filter"), ("OTHER", "stop")],
)
def test_finish_reasons(finish: str, expected: str) -> None:
    data = sse(event([{"text": "partial"}]), event(None, finish))
    assert decode(data)[-1] == chunk(Delta(), expected)


def test_candidate_index_defaults_to_position() -> None:
    data = sse(event([{"text": "x"}], "STOP", index=None))
    assert decode(data) == [ROLE, chunk(Delta(content="x")), chunk(Delta(), "stop")]


def test_every_candidate_must_finish() -> None:
    both = {
        "candidates": [
            {"index": 0, "content": {"parts": [{"text": "a"}]}, "finishReason": "STOP"},
            {"index": 1, "content": {"parts": [{"text": "b"}]}},
        ],
        "modelVersion": MODEL,
        "responseId": ID,
    }
    decoder = GeminiStreamDecoder()
    chunks = decoder.feed(sse(both))
    assert [c.choices[0].index for c in chunks] == [0, 0, 0, 1, 1]
    with pytest.raises(StreamError):
        decoder.close()
    decoder = GeminiStreamDecoder()
    decoder.feed(sse(both, event(None, "STOP", index=1)))
    decoder.close()


def test_every_chunk_shares_id_model_created() -> None:
    data = sse(
        {**event([{"text": "a"}]), "createTime": "2024-05-01T12:00:00Z"},
        {**event(None, "STOP"), "responseId": "other", "modelVersion": "other"},
    )
    chunks = decode(data)
    assert {(c.id, c.model, c.created) for c in chunks} == {(ID, MODEL, 1714564800)}


def test_last_event_without_its_blank_line_still_counts() -> None:
    data = sse(event([{"text": "a"}])) + b"data: " + orjson.dumps(event(None, "STOP"))
    assert decode(data)[-1] == chunk(Delta(), "stop")


# -- failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(sse(event([{"text": "a"}]), event([{"text": "b"}])), id="no-finish"),
        pytest.param(
            sse(event([{"text": "a"}])) + b'data: {"candidates": [{"finishRea', id="cut-mid-event"
        ),
        pytest.param(b": keep-alive\r\n\r\n", id="comments-only"),
    ],
)
def test_truncated_stream_raises_on_close(data: bytes) -> None:
    decoder = GeminiStreamDecoder()
    decoder.feed(data)
    with pytest.raises(StreamError, match="before the answer was complete"):
        decoder.close()


def test_in_band_error_raises_with_its_message() -> None:
    error = {
        "error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}
    }
    decoder = GeminiStreamDecoder()
    assert decoder.feed(sse(event([{"text": "a"}]))) == [ROLE, chunk(Delta(content="a"))]
    with pytest.raises(StreamError, match="An internal error has occurred"):
        decoder.feed(sse(error))


def test_blocked_prompt_in_a_stream_is_content_filtered() -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": PROMPT_ONLY}
    with pytest.raises(ContentFiltered, match="SAFETY"):
        GeminiStreamDecoder().feed(sse(blocked))


@pytest.mark.parametrize(
    "data",
    [
        b"data: {not json}\n\n",
        b"data: [1, 2]\n\n",
        b'data: {"candidates": [{"content": {"parts": [{"functionCall": {}}]}}]}\n\n',
        b'data: {"candidates": [{"index": "x"}]}\n\n',
    ],
)
def test_malformed_events_raise(data: bytes) -> None:
    with pytest.raises(StreamError):
        GeminiStreamDecoder().feed(data)


@pytest.mark.parametrize(
    ("count", "expected"), [(2**64 - 1, 2**53), (-5, 0)], ids=["past-64-bits", "negative"]
)
def test_token_counts_out_of_range_are_bounded(count: int, expected: int) -> None:
    # 2**64 - 1 once failed to be written back as JSON (orjson takes 64-bit signed
    # integers) and ended the client's stream as a router bug; a negative count would
    # credit a budget. Found by tests/fuzz.
    usage = {"promptTokenCount": 1, "candidatesTokenCount": count}
    chunks = decode(sse(event([{"text": "a"}], "STOP", usage)))
    assert chunks[-1].usage == Usage(1, expected)
    orjson.dumps(chunk_to_wire(chunks[-1]))
