"""Ingress codecs: a client's dialect in, the same dialect out.

A codec turns a client's body into a GatewayRequest and frames answers, streams and
errors the way that client's SDK expects. Thin on purpose: the format mapping lives in
:mod:`adapters` (pure); this module only frames it for HTTP, the one place where bytes
and the client's dialect meet. The OpenAI codec serves ``/v1/chat/completions``.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING, Protocol

import orjson

from adapters import OPENAI as OPENAI_FORMAT
from adapters import (
    ChatChunk,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    InvalidRequest,
    chat_completion_id,
    chunk_to_wire,
    passes_through,
    request_from_wire,
    response_to_wire,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["OPENAI", "Ingress", "OpenAIIngress", "StreamEncoder", "parse_json"]


class StreamEncoder(Protocol):
    """Frames one response stream."""

    def feed(self, chunk: ChatChunk) -> bytes: ...

    def done(self) -> bytes:
        """The end of a complete stream."""
        ...

    def error(self, err: GatewayError) -> bytes:
        """The end of a broken stream, as an error the client's SDK raises."""
        ...


class Ingress(Protocol):
    """One client dialect."""

    def decode(self, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> GatewayRequest:
        """The request in ``body`` (``headers``: the client's, for what its format
        forwards). Raises InvalidRequest naming what is wrong."""
        ...

    def response(self, resp: GatewayResponse, req: GatewayRequest) -> bytes:
        """The answer ``resp`` to ``req`` (a format may echo the request's settings)."""
        ...

    def error(self, err: GatewayError) -> bytes: ...

    def status(self, err: GatewayError) -> int:
        """The HTTP status the client gets for ``err``."""
        ...

    def stream(self, req: GatewayRequest) -> StreamEncoder: ...


def parse_json(body: bytes) -> object:
    """Raises InvalidRequest for malformed JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(f"the request body is not valid JSON: {exc}") from exc


class OpenAIIngress:
    """OpenAI Chat Completions: JSON, or SSE ``data:`` events ended by ``[DONE]``."""

    def decode(self, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> GatewayRequest:
        return request_from_wire(parse_json(body))

    def response(self, resp: GatewayResponse, req: GatewayRequest) -> bytes:
        if resp.raw is not None and passes_through(req, OPENAI_FORMAT):
            # An OpenAI-format target's answer, as it came (system_fingerprint,
            # service_tier, logprobs, usage details, provider extras).
            raw = resp.raw if resp.raw.get("model") else {**resp.raw, "model": resp.model}
            return orjson.dumps(raw)
        wire = response_to_wire(resp)
        wire["id"], wire["created"] = identity(resp.id, resp.created)
        return orjson.dumps(wire)

    def error(self, err: GatewayError) -> bytes:
        return orjson.dumps(err.to_openai())

    def status(self, err: GatewayError) -> int:
        return err.status_hint

    def stream(self, req: GatewayRequest) -> OpenAIStreamEncoder:
        return OpenAIStreamEncoder(req.include_usage)


def identity(upstream_id: str, created: int) -> tuple[str, int]:
    """An answer's ``id`` and ``created`` as OpenAI's format has them, whatever format
    it came in: a ``chatcmpl-`` id, and the time now where the upstream gave none
    (Anthropic, Bedrock and Cohere do not): made here, where the clock is."""
    return chat_completion_id(upstream_id, secrets.token_hex(12)), created or int(time.time())


class OpenAIStreamEncoder:
    """``data: {chunk}`` per chunk; usage-only chunks only if the client asked.

    Adapters report usage whenever the provider does; OpenAI itself sends it only with
    ``stream_options.include_usage``, so clients get what they would from OpenAI.
    """

    def __init__(self, include_usage: bool) -> None:
        self._include_usage = include_usage
        #: Every chunk's id and created: the first chunk's, as OpenAI's (:func:`identity`).
        self._identity: tuple[str, int] | None = None

    def feed(self, chunk: ChatChunk) -> bytes:
        if not chunk.choices and chunk.usage is not None and not self._include_usage:
            return b""
        if chunk.raw is not None:
            if self._identity is None:  # a continuation after it goes on as it began
                self._identity = (chunk.id, chunk.created)
            return chunk.raw  # an OpenAI-format target's event, as it came
        if self._identity is None:
            self._identity = identity(chunk.id, chunk.created)
        wire = chunk_to_wire(chunk)
        wire["id"], wire["created"] = self._identity
        return b"data: " + orjson.dumps(wire) + b"\n\n"

    def done(self) -> bytes:
        return b"data: [DONE]\n\n"

    def error(self, err: GatewayError) -> bytes:
        """An error event and no ``[DONE]``: the OpenAI SDKs raise on it."""
        return b"data: " + orjson.dumps(err.to_openai()) + b"\n\n"


OPENAI = OpenAIIngress()
