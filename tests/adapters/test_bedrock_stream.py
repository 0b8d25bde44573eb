"""BedrockStreamDecoder: ConverseStream event-stream frames in any chunking."""

from __future__ import annotations

import pytest

from adapters import ChatChunk, ChunkChoice, Delta, StreamError, ToolCallDelta, Usage
from adapters._bedrock import BedrockStreamDecoder, make_adapter
from tests.fakes.bedrock_upstream import event_frame, exception_frame, frame

MODEL = "anthropic.claude-3-haiku-20240307-v1:0"
ID = "chatcmpl-bedrock"
USAGE = {"inputTokens": 30, "outputTokens": 8, "totalTokens": 38}

# A recorded-shape stream: text (no contentBlockStart), then a tool call, padding keys.
RECORDED = b"".join(
    [
        event_frame("messageStart", {"p": "abcdefghijkl", "role": "assistant"}),
        event_frame(
            "contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": "Let me"}, "p": "ab"}
        ),
        event_frame("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": " check. ☀"}}),
        event_frame("contentBlockStop", {"contentBlockIndex": 0}),
        event_frame(
            "contentBlockStart",
            {
                "contentBlockIndex": 1,
                "start": {"toolUse": {"toolUseId": "tooluse_X1", "name": "get_weather"}},
            },
        ),
        event_frame(
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"toolUse": {"input": '{"city"'}}},
        ),
        event_frame(
            "contentBlockDelta",
            {"contentBlockIndex": 1, "delta": {"toolUse": {"input": ':"Paris"}'}}},
        ),
        event_frame("contentBlockStop", {"contentBlockIndex": 1}),
        event_frame("messageStop", {"stopReason": "tool_use"}),
        event_frame("metadata", {"usage": USAGE, "metrics": {"latencyMs": 412}}),
    ]
)


def chunk(delta: Delta, finish: str | None = None) -> ChatChunk:
    return ChatChunk(ID, MODEL, 0, (ChunkChoice(0, delta, finish),))


EXPECTED = [
    chunk(Delta(role="assistant", content="")),
    chunk(Delta(content="Let me")),
    chunk(Delta(content=" check. ☀")),
    chunk(Delta(tool_calls=(ToolCallDelta(0, id="tooluse_X1", name="get_weather"),))),
    chunk(Delta(tool_calls=(ToolCallDelta(0, arguments='{"city"'),))),
    chunk(Delta(tool_calls=(ToolCallDelta(0, arguments=':"Paris"}'),))),
    chunk(Delta(), "tool_calls"),
    ChatChunk(ID, MODEL, 0, (), Usage(30, 8)),
]


def decode(pieces: list[bytes]) -> list[ChatChunk]:
    decoder = BedrockStreamDecoder(MODEL)
    out: list[ChatChunk] = []
    for piece in pieces:
        out.extend(decoder.feed(piece))
    out.extend(decoder.close())
    return out


def test_whole_stream() -> None:
    assert decode([RECORDED]) == EXPECTED


def test_adapter_makes_the_decoder() -> None:
    decoder = make_adapter("aws", {"region": "us-east-1", "api_key": "k"}).stream_decoder(MODEL)
    assert decoder.feed(RECORDED) == EXPECTED
    assert decoder.close() == []


def test_every_split_point_gives_the_same_chunks() -> None:
    for cut in range(len(RECORDED) + 1):
        assert decode([RECORDED[:cut], RECORDED[cut:]]) == EXPECTED, cut


def test_byte_by_byte() -> None:
    assert decode([RECORDED[i : i + 1] for i in range(len(RECORDED))]) == EXPECTED


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("max_tokens", "length"),
        ("stop_sequence", "stop"),
        ("guardrail_intervened", "content_filter"),
        ("content_filtered", "content_filter"),
    ],
)
def test_stream_stop_reasons(stop: str, finish: str) -> None:
    body = event_frame("messageStart", {"role": "assistant"}) + event_frame(
        "messageStop", {"stopReason": stop}
    )
    assert decode([body])[-1].choices[0].finish_reason == finish


def test_truncated_before_message_stop() -> None:
    cut = RECORDED.index(event_frame("messageStop", {"stopReason": "tool_use"}))
    decoder = BedrockStreamDecoder(MODEL)
    decoder.feed(RECORDED[:cut])
    with pytest.raises(StreamError, match="before the answer was complete"):
        decoder.close()


def test_truncated_inside_a_frame() -> None:
    decoder = BedrockStreamDecoder(MODEL)
    decoder.feed(RECORDED[:-5])  # messageStop arrived, metadata cut short
    with pytest.raises(StreamError, match="inside an event-stream frame"):
        decoder.close()


def test_stream_ending_after_message_stop_without_metadata_is_complete() -> None:
    cut = RECORDED.index(event_frame("metadata", {"usage": USAGE, "metrics": {"latencyMs": 412}}))
    assert decode([RECORDED[:cut]]) == EXPECTED[:-1]


@pytest.mark.parametrize(
    "kind", ["throttlingException", "modelStreamErrorException", "internalServerException"]
)
def test_exception_frame_is_a_stream_error(kind: str) -> None:
    decoder = BedrockStreamDecoder(MODEL)
    first = decoder.feed(event_frame("messageStart", {"role": "assistant"}))
    assert first == [chunk(Delta(role="assistant", content=""))]
    with pytest.raises(StreamError, match=f"{kind}: The model stream broke"):
        decoder.feed(exception_frame(kind, "The model stream broke."))


def test_error_frame_is_a_stream_error() -> None:
    headers = {":message-type": "error", ":error-code": "InternalFailure", ":error-message": "boom"}
    with pytest.raises(StreamError, match="InternalFailure: boom"):
        BedrockStreamDecoder().feed(frame(headers, b""))


def test_bad_crc_is_a_stream_error() -> None:
    bad = bytearray(event_frame("messageStart", {"role": "assistant"}))
    bad[-1] ^= 0xFF
    with pytest.raises(StreamError, match="malformed event-stream frame"):
        BedrockStreamDecoder().feed(bytes(bad))


def test_bad_json_payload_is_a_stream_error() -> None:
    headers = {":message-type": "event", ":event-type": "contentBlockDelta"}
    with pytest.raises(StreamError, match="malformed stream event"):
        BedrockStreamDecoder().feed(frame(headers, b"{nope"))


def test_tool_input_for_an_unopened_block_is_a_stream_error() -> None:
    delta = {"contentBlockIndex": 3, "delta": {"toolUse": {"input": "{}"}}}
    with pytest.raises(StreamError, match="never opened"):
        BedrockStreamDecoder().feed(event_frame("contentBlockDelta", delta))


def test_reasoning_deltas_are_left_out() -> None:
    body = b"".join(
        [
            event_frame("messageStart", {"role": "assistant"}),
            event_frame(
                "contentBlockDelta",
                {"contentBlockIndex": 0, "delta": {"reasoningContent": {"text": "hmm"}}},
            ),
            event_frame("contentBlockDelta", {"contentBlockIndex": 1, "delta": {"text": "Hi"}}),
            event_frame("messageStop", {"stopReason": "end_turn"}),
            event_frame(
                "metadata",
                {"usage": {"inputTokens": 3, "outputTokens": 1, "cacheReadInputTokens": 2}},
            ),
        ]
    )
    assert decode([body]) == [
        chunk(Delta(role="assistant", content="")),
        chunk(Delta(content="Hi")),
        chunk(Delta(), "stop"),
        ChatChunk(ID, MODEL, 0, (), Usage(5, 1)),
    ]
