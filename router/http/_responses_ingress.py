"""The OpenAI Responses ingress codec: ``POST /v1/responses``, served by any chat target.

Stateless: each request carries its whole conversation, nothing is stored, and what
would need stored state is refused (:mod:`adapters` says what and why, and does the
translation). A client of the OpenAI SDK gets a ``response`` object, the Responses
event stream, and errors in OpenAI's shape. The response's id and creation time are
made here, the one place with a clock and randomness.

A request whose target is OpenAI's own API passes through: the client's body goes to
OpenAI's ``/v1/responses`` (``model`` replaced, ``store`` off), and its answer, the
``response`` object or each event of its stream, comes back as OpenAI sent it.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

import orjson

from adapters import RESPONSES as RESPONSES_FORMAT
from adapters import (
    ChatChunk,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    ResponsesStreamEncoder,
    StreamError,
    passed_stream_failure,
    passes_through,
    responses_request_from_wire,
    responses_response_to_wire,
)

from ._openai_ingress import parse_json

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["RESPONSES", "ResponsesIngress"]


def _new_id() -> tuple[str, int]:
    """A fresh ``resp_`` id and the time now (Unix seconds)."""
    return "resp_" + secrets.token_hex(24), int(time.time())


class ResponsesIngress:
    def decode(self, body: bytes, headers: Sequence[tuple[bytes, bytes]] = ()) -> GatewayRequest:
        return responses_request_from_wire(parse_json(body))

    def response(self, resp: GatewayResponse, req: GatewayRequest) -> bytes:
        if resp.raw is not None and passes_through(req, RESPONSES_FORMAT):
            return orjson.dumps(resp.raw)  # OpenAI's own answer, as it came
        response_id, created_at = _new_id()
        return orjson.dumps(responses_response_to_wire(resp, req, response_id, created_at))

    def error(self, err: GatewayError) -> bytes:
        return orjson.dumps(err.to_openai())

    def status(self, err: GatewayError) -> int:
        return err.status_hint

    def stream(self, req: GatewayRequest) -> ResponsesStream:
        return ResponsesStream(req)


class ResponsesStream:
    """The Responses API's named events, built from OpenAI-shaped chunks of any provider."""

    def __init__(self, req: GatewayRequest) -> None:
        self._encoder = ResponsesStreamEncoder(req, *_new_id())

        #: An event of OpenAI's own went out (this one): the stream is OpenAI's.
        self._passed: ChatChunk | None = None

        #: The stream has ended (failed): nothing more goes out.
        self._ended = False

    def feed(self, chunk: ChatChunk) -> bytes:
        if self._ended:
            return b""
        if chunk.raw is not None:
            self._passed = self._passed or chunk
            return chunk.raw
        if self._passed is not None:
            # A continuation in the unified form (a resumed stream) cannot go on in
            # OpenAI's own events: the stream fails rather than restart the response.
            return self.error(StreamError("the upstream stream broke and cannot be resumed"))
        return self._encoder.feed(chunk)

    def done(self) -> bytes:
        if self._ended or self._passed is not None:
            return b""  # OpenAI's own events ended it
        return self._encoder.close()

    def error(self, err: GatewayError) -> bytes:
        if self._ended:
            return b""
        if self._passed is not None:
            self._ended = True
            return passed_stream_failure(self._passed, err)
        return self._encoder.error_event(err)


RESPONSES = ResponsesIngress()
