"""Every stream decoder says how many bytes it holds of an event, line or frame not yet
whole, so that the daemon can bound it (``server.max_response``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adapters import OpenAIStreamDecoder
from adapters._anthropic import AnthropicStreamDecoder
from adapters._bedrock import BedrockStreamDecoder
from adapters._cohere import CohereStreamDecoder
from adapters._gemini import GeminiStreamDecoder
from adapters._ollama import OllamaStreamDecoder
from tests.fakes._base import frame
from tests.fakes.bedrock_upstream import event_frame

if TYPE_CHECKING:
    from collections.abc import Callable

    from adapters import StreamDecoder

SSE = (b'data: {"a": 1}\n\n', b'data: {"text": "')
DECODERS: dict[str, tuple[Callable[[], StreamDecoder], tuple[bytes, bytes]]] = {
    "openai": (OpenAIStreamDecoder, (b"data: [DONE]\n\n", SSE[1])),
    "anthropic": (AnthropicStreamDecoder, (b"event: ping\ndata: {}\n\n", SSE[1])),
    "gemini": (GeminiStreamDecoder, (b": keep-alive\n\n", SSE[1])),
    "cohere": (CohereStreamDecoder, (b"\n", b'data: {"type": "content-delta", "text": "')),
    "ollama": (OllamaStreamDecoder, (b"\n", b'{"message": {"content": "')),
    "bedrock": (
        BedrockStreamDecoder,
        (
            event_frame("messageStart", {"role": "assistant"}),
            frame({":event-type": "contentBlockDelta"}, b"x" * 100_000)[:50_000],
        ),
    ),
}


@pytest.mark.parametrize("name", DECODERS)
def test_an_unfinished_event_is_counted_until_it_ends(name: str) -> None:
    make, (whole, opening) = DECODERS[name]
    decoder = make()
    assert decoder.buffered == 0
    decoder.feed(whole)
    assert decoder.buffered == 0  # whole events are not held
    decoder.feed(opening)
    for _ in range(10):
        before = decoder.buffered
        decoder.feed(b"a" * 1000)
        assert decoder.buffered == before + 1000
    assert decoder.buffered >= 10_000 + len(opening) - 1
