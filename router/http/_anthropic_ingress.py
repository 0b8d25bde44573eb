"""The Anthropic Messages ingress codec: ``POST /v1/messages``.

A client of the Anthropic SDK is routed by the same rules as any other; whatever
provider serves it, it gets an Anthropic ``message``, the Anthropic stream event
sequence, and errors in Anthropic's shape (``{"type": "error", "error": {...}}``,
``event: error`` mid-stream). The translation itself is :mod:`adapters` (pure).
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING

import orjson

from adapters import ANTHROPIC as ANTHROPIC_FORMAT
from adapters import (
    ChatChunk,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    MessagesSent,
    MessagesStreamEncoder,
    Overloaded,
    messages_request_from_wire,
    messages_response_to_wire,
    passes_through,
)
from adapters import anthropic_error_to_wire as error_to_wire

from ._openai_ingress import parse_json

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["ANTHROPIC", "AnthropicIngress"]


def _new_id() -> str:
    """An id for an answer whose upstream gave none (the adapters have no randomness)."""
    return secrets.token_hex(12)


class AnthropicIngress:
    def decode(self, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> GatewayRequest:
        return messages_request_from_wire(parse_json(body), headers)

    def response(self, resp: GatewayResponse, req: GatewayRequest) -> bytes:
        if resp.raw is not None and passes_through(req, ANTHROPIC_FORMAT):
            # An Anthropic target's message, as it came (thinking blocks, citations,
            # stop_sequence, cache usage, fields added later).
            raw = resp.raw if resp.raw.get("model") else {**resp.raw, "model": resp.model}
            return orjson.dumps(raw)
        return orjson.dumps(messages_response_to_wire(resp, _new_id()))

    def error(self, err: GatewayError) -> bytes:
        return orjson.dumps(error_to_wire(err))

    def status(self, err: GatewayError) -> int:
        """Anthropic's own 529 for an overloaded upstream: its SDKs back off on it."""
        return 529 if isinstance(err, Overloaded) else err.status_hint

    def stream(self, req: GatewayRequest) -> AnthropicStream:
        return AnthropicStream()


class AnthropicStream:
    """Anthropic's named SSE events, built from OpenAI-shaped chunks of any provider;
    an Anthropic target's own events, passed through, as they came.

    A passed-through stream that broke and was resumed elsewhere goes on from the
    unified chunks of its continuation, in the same message: after the events already
    sent, without a second ``message_start``.
    """

    def __init__(self) -> None:
        self._encoder = MessagesStreamEncoder(_new_id())
        self._sent = MessagesSent()
        self._continued = False

    def feed(self, chunk: ChatChunk) -> bytes:
        if chunk.raw is not None:
            self._sent.note(chunk.raw)
            return chunk.raw
        if self._sent.seen and not self._continued:
            self._continued = True
            stop = self._sent.close_open()
            self._encoder.resume_at(self._sent.next_block, self._sent.open == "text")
            return stop + self._encoder.feed(chunk)
        return self._encoder.feed(chunk)

    def done(self) -> bytes:
        if self._sent.seen and not self._continued:
            return b""  # the upstream's own message_stop went out
        return self._encoder.close()

    def error(self, err: GatewayError) -> bytes:
        return self._encoder.error_event(err)


ANTHROPIC = AnthropicIngress()
