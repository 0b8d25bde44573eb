"""The OpenAI ingress codec: a client's bytes in, JSON or SSE bytes out.

Thin on purpose: the format mapping lives in :mod:`adapters` (pure), this module only
frames it for HTTP, the one place where bytes and the client's dialect meet.
"""

from __future__ import annotations

import orjson

from adapters import (
    ChatChunk,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    InvalidRequest,
    chunk_to_wire,
    request_from_wire,
    response_to_wire,
)

__all__ = [
    "DONE",
    "decode_request",
    "encode_chunk",
    "encode_error",
    "encode_response",
    "encode_stream_error",
]

DONE = b"data: [DONE]\n\n"


def decode_request(body: bytes) -> GatewayRequest:
    """Raises InvalidRequest for malformed JSON or a body that is not a chat request."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc
    return request_from_wire(raw)


def encode_response(resp: GatewayResponse) -> bytes:
    return orjson.dumps(response_to_wire(resp))


def encode_chunk(chunk: ChatChunk) -> bytes:
    return b"data: " + orjson.dumps(chunk_to_wire(chunk)) + b"\n\n"


def encode_error(err: GatewayError) -> bytes:
    return orjson.dumps(err.to_openai())


def encode_stream_error(err: GatewayError) -> bytes:
    """The event that ends a broken stream; the OpenAI SDKs raise on it."""
    return b"data: " + encode_error(err) + b"\n\n"
