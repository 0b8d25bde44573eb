"""Every provider's stream decoder against malformed upstream streams.

An upstream may send anything: random bytes, a valid stream with bytes flipped,
cut short, repeated or dropped, or well-framed events whose JSON has the wrong shape
(a field of the wrong type, a key missing, an extra key). Whatever it sends, in any
chunking, a decoder's ``feed()`` and ``close()`` either give chunks or raise a
:class:`~adapters.GatewayError` (a StreamError, or the error the upstream sent in-band):
never a KeyError, TypeError, UnicodeDecodeError or any other exception, which would end
the client's stream as a router bug. The chunks given are well-typed (the attrs field
types hold) and both ingress encoders frame them.

The valid streams are those of ``tests/adapters/test_stream_decoders_props.py``.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import ChatChunk, GatewayError
from router.http._anthropic_ingress import AnthropicStream
from router.http._openai_ingress import OpenAIStreamEncoder
from tests.adapters.test_stream_decoders_props import CASES
from tests.fakes._base import frame
from tests.fuzz._mutate import mutated_json
from tests.strategies import chunkings

if TYPE_CHECKING:
    from collections.abc import Callable

    from adapters import StreamDecoder


def decode(new_decoder: Callable[[], StreamDecoder], chunks: list[bytes]) -> list[ChatChunk]:
    """Feed ``chunks`` and close; a GatewayError ends the stream as the router ends it
    (after the chunks it carries)."""
    decoder = new_decoder()
    out: list[ChatChunk] = []
    try:
        for chunk in chunks:
            out += decoder.feed(chunk)
        out += decoder.close()
    except GatewayError as exc:
        out += exc.decoded
    return out


def check_chunks(chunks: list[ChatChunk]) -> None:
    """Well-typed chunks that both client formats can frame."""
    for chunk in chunks:
        assert isinstance(chunk, ChatChunk)
        assert isinstance(chunk.id, str)
        assert isinstance(chunk.model, str)
        assert isinstance(chunk.created, int)
        if chunk.usage is not None:
            assert isinstance(chunk.usage.prompt_tokens, int)
            assert isinstance(chunk.usage.completion_tokens, int)
        for choice in chunk.choices:
            assert isinstance(choice.index, int)
            assert choice.finish_reason is None or isinstance(choice.finish_reason, str)
            d = choice.delta
            for text in (d.role, d.content, d.refusal):
                assert text is None or isinstance(text, str)
            for call in d.tool_calls:
                assert isinstance(call.index, int)
                for field in (call.id, call.name, call.arguments):
                    assert field is None or isinstance(field, str)
    openai = OpenAIStreamEncoder(include_usage=True)
    anthropic = AnthropicStream()
    for chunk in chunks:
        raw = openai.feed(chunk)
        if raw:
            orjson.loads(raw.removeprefix(b"data: "))
        anthropic.feed(chunk)
    anthropic.done()


# -- byte-level damage ----------------------------------------------------------------


@st.composite
def damaged(draw: st.DrawFn, raw: bytes) -> bytes:
    """``raw`` with one to three kinds of damage: flipped bytes, a cut, a repeat, a hole,
    inserted garbage."""
    for _ in range(draw(st.integers(1, 3))):
        n = len(raw)
        a = draw(st.integers(0, n))
        b = draw(st.integers(a, n))
        how = draw(st.sampled_from(["flip", "truncate", "repeat", "drop", "insert"]))
        if how == "flip" and n:
            i = draw(st.integers(0, n - 1))
            raw = raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1 :]
        elif how == "truncate":
            raw = raw[:a]
        elif how == "repeat":
            raw = raw[:b] + raw[a:b] + raw[b:]
        elif how == "drop":
            raw = raw[:a] + raw[b:]
        else:
            raw = raw[:a] + draw(st.binary(min_size=1, max_size=8)) + raw[a:]
    return raw


# -- well-framed events with JSON of the wrong shape ----------------------------------


def _mutate_lines(draw: st.DrawFn, raw: bytes, prefix: bytes) -> bytes:
    """SSE ``data:`` lines or NDJSON lines: some of their JSON objects mutated."""
    lines = raw.split(b"\n")
    chosen = draw(st.sets(st.integers(0, max(len(lines) - 1, 0)), min_size=1, max_size=3))
    for i in sorted(chosen):
        line = lines[i]
        end = b"\r" if line.endswith(b"\r") else b""
        body = line.removesuffix(b"\r")
        if not body.startswith(prefix):
            continue
        try:
            value = orjson.loads(body[len(prefix) :])
        except orjson.JSONDecodeError:
            continue  # [DONE]
        lines[i] = prefix + orjson.dumps(draw(mutated_json(value))) + end
    return b"\n".join(lines)


def _frames(raw: bytes) -> list[tuple[dict[str, str], bytes]]:
    """AWS event-stream frames (string headers only, as the fake writes them)."""
    out = []
    while raw:
        total, head_len = struct.unpack(">II", raw[:8])
        head, payload = raw[12 : 12 + head_len], raw[12 + head_len : total - 4]
        headers: dict[str, str] = {}
        while head:
            name_len = head[0]
            name = head[1 : 1 + name_len].decode()
            (value_len,) = struct.unpack(">H", head[2 + name_len : 4 + name_len])
            headers[name] = head[4 + name_len : 4 + name_len + value_len].decode()
            head = head[4 + name_len + value_len :]
        out.append((headers, payload))
        raw = raw[total:]
    return out


@st.composite
def wrong_shapes(draw: st.DrawFn, kind: str, raw: bytes) -> bytes:
    """``raw`` with the JSON of up to three events mutated, the framing kept valid."""
    if kind == "ollama":
        return _mutate_lines(draw, raw, b"")
    if kind != "bedrock":
        return _mutate_lines(draw, raw, b"data: ")
    frames = _frames(raw)
    chosen = draw(st.sets(st.integers(0, len(frames) - 1), min_size=1, max_size=3))
    out = b""
    for i, (headers, payload) in enumerate(frames):
        if i in chosen:
            payload = orjson.dumps(draw(mutated_json(orjson.loads(payload))))
        out += frame(headers, payload)
    return out


# -- the properties -------------------------------------------------------------------


@pytest.mark.parametrize("kind", CASES)
@given(data=st.data())
def test_arbitrary_bytes(kind: str, data: st.DataObject) -> None:
    new_decoder, _ = CASES[kind]
    raw = data.draw(st.binary(max_size=200))
    check_chunks(decode(new_decoder, data.draw(chunkings(raw, max_cuts=6))))


@pytest.mark.parametrize("kind", CASES)
@given(data=st.data())
def test_damaged_valid_streams(kind: str, data: st.DataObject) -> None:
    new_decoder, streams = CASES[kind]
    raw, _ = data.draw(streams)
    raw = data.draw(damaged(raw))
    check_chunks(decode(new_decoder, data.draw(chunkings(raw, max_cuts=6))))


@pytest.mark.parametrize("kind", CASES)
@given(data=st.data())
def test_wrong_json_shapes_in_valid_framing(kind: str, data: st.DataObject) -> None:
    new_decoder, streams = CASES[kind]
    raw, _ = data.draw(streams)
    raw = data.draw(wrong_shapes(kind, raw))
    check_chunks(decode(new_decoder, data.draw(chunkings(raw, max_cuts=6))))
