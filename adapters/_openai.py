"""The ``openai`` adapter: OpenAI and every host that speaks its Chat Completions API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ._base import (
    AdapterBase,
    Capabilities,
    Headers,
    error_for_status,
    error_object,
    header,
    request_headers,
    upstream_json,
    with_upstream_detail,
)
from ._compat import IDENTITY, Fixups
from ._decoded import carried, carrying
from ._embeddings import MAX_INPUTS, refuse_dimensions
from ._errors import GatewayError, SerializationError, StreamError, UnsupportedCapability
from ._openai_embeddings import embedding_request_to_wire, embedding_response_from_wire
from ._openai_request import for_reasoning_model, request_to_wire
from ._openai_response import chunk_from_wire, response_from_wire
from ._passthrough import OPENAI, RESPONSES, SameFormat, body_for, passes_through, sse_bytes
from ._responses_upstream import ResponsesEventDecoder, responses_answer_from_wire
from ._sse import SSEDecoder
from ._text_completions import TextRequest, text_body
from ._types import (
    ChatChunk,
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayRequest,
    GatewayResponse,
    UpstreamRequest,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["OpenAIAdapter", "OpenAIStreamDecoder", "openai_embedding_body"]


class OpenAIAdapter(AdapterBase):
    """Builds ``POST {base_url}/chat/completions`` and reads its answers.

    Args:
        base_url: What the OpenAI SDK calls its base URL, ``/v1`` included.
        api_key: Sent as ``Authorization: Bearer``; None for keyless local hosts.
        headers: Extra headers for every request (``OpenAI-Organization``, ...).
        name: The provider's name in the config, for error messages.
        fixups: The host's known deviations (``adapters._compat``); none for OpenAI.
        prefill: Whether the host continues a trailing assistant message. OpenAI's
            Chat Completions answers it anew, so OpenAI and unknown hosts say no; the
            hosts known to continue it (with their fix-ups) say yes.
        openai_limits: The host is OpenAI itself: its reasoning models (o-series,
            gpt-5) get the token limit as ``max_completion_tokens``, the only name they
            take; compatible hosts get the name the client used.
        text_completions: The host serves the legacy ``/completions`` API (some
            compatible hosts, Groq and Mistral among them, serve chat only).
    """

    fields = OPENAI  # its column of the field tables (._fields)
    #: An OpenAI Chat client's body passes through; OpenAI's own API also takes a
    #: Responses client's (``/responses``), which no compatible host is known to serve.
    same_format: SameFormat = OPENAI

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "openai",
        fixups: Fixups = IDENTITY,
        stream_usage: bool = False,
        prefill: bool = False,
        openai_limits: bool = False,
        text_completions: bool = True,
    ) -> None:
        self.name = name
        # OpenAI's own API: its reasoning models get max_completion_tokens.
        self._openai_limits = openai_limits
        if openai_limits:
            self.same_format = (OPENAI, RESPONSES)
        self._prefill = prefill
        self._fixups = fixups
        # Ask for usage on every stream (the client still gets it only if it asked):
        # without it a streamed answer has no cost and budgets would miss it.
        self._stream_usage = stream_usage
        self.url = base_url.rstrip("/") + "/chat/completions"
        self._models_url = base_url.rstrip("/") + "/models"
        self._embeddings_url = base_url.rstrip("/") + "/embeddings"
        self._completions_url = base_url.rstrip("/") + "/completions"
        self._responses_url = base_url.rstrip("/") + "/responses"
        self._text_completions = text_completions
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers, self._stream_headers = request_headers(auth, headers)

    def __repr__(self) -> str:  # never the key
        return f"OpenAIAdapter(name={self.name!r}, url={self.url!r})"

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        # An OpenAI Chat client's body passes through as it came (the host's fix-ups
        # still apply); any other client's request is translated.
        if self._passes_responses(req):
            return self._responses_request(req, model)
        wire = body_for(req, model) if passes_through(req, OPENAI) else request_to_wire(req, model)
        if self._openai_limits:
            wire = for_reasoning_model(wire, model)
        if req.stream and self._stream_usage:
            options = wire.get("stream_options")
            options = dict(options) if isinstance(options, dict) else {}
            wire["stream_options"] = {**options, "include_usage": True}
        body = orjson.dumps(self._fixups.request(wire))
        headers = self._stream_headers if req.stream else self._headers
        return UpstreamRequest("POST", self.url, headers, body)

    def _passes_responses(self, req: GatewayRequest) -> bool:
        """Whether ``req`` is a Responses client's body that goes to ``/responses``."""
        return self._openai_limits and passes_through(req, RESPONSES)

    def _responses_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        """A Responses client's body for OpenAI's ``/responses``, as it came but for
        ``model`` and ``store``: nothing is kept on OpenAI's servers on the client's
        behalf, as this gateway keeps no state (what would continue a stored response
        is refused before routing)."""
        wire = {**body_for(req, model), "store": False}
        headers = self._stream_headers if req.stream else self._headers
        return UpstreamRequest("POST", self._responses_url, headers, orjson.dumps(wire))

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(prefill=self._prefill)

    def parse_response(self, status: int, headers: Headers, body: bytes) -> GatewayResponse:
        raw = upstream_json(body)
        if isinstance(raw, dict):
            raw = self._fixups.response(raw)
        return response_from_wire(raw)

    def response_for(
        self, req: GatewayRequest, status: int, headers: Headers, body: bytes
    ) -> GatewayResponse:
        raw = upstream_json(body)
        if self._passes_responses(req):
            return responses_answer_from_wire(raw)
        if isinstance(raw, dict):
            raw = self._fixups.response(raw)
        answer = response_from_wire(raw)
        # An OpenAI Chat client gets the answer as the host gave it (fix-ups applied).
        return attrs.evolve(answer, raw=raw) if passes_through(req, OPENAI) else answer

    def stream_decoder_for(
        self, req: GatewayRequest
    ) -> OpenAIStreamDecoder | ResponsesEventDecoder:
        if self._passes_responses(req):
            return ResponsesEventDecoder()
        return OpenAIStreamDecoder(self._fixups, passthrough=passes_through(req, OPENAI))

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        message, code = _error_fields(body)
        if message is None:
            message = f"upstream answered HTTP {status}"
        err = error_for_status(status, message, code=code, headers=headers)
        detail = _error_detail(body)
        err = with_upstream_detail(err, detail.get("param"), detail.get("code"))
        return self._fixups.error(status, err)

    def stream_decoder(self) -> OpenAIStreamDecoder:
        return OpenAIStreamDecoder(self._fixups)

    def embedding_batch(self, model: str) -> int:
        return MAX_INPUTS

    def build_embedding_request(self, req: EmbeddingRequest, model: str) -> UpstreamRequest:
        """``POST {base_url}/embeddings``: the client's request as it came (token
        arrays and other parameters included). Raises UnsupportedParameter."""
        body = orjson.dumps(openai_embedding_body(req, model))
        return UpstreamRequest("POST", self._embeddings_url, self._headers, body)

    def parse_embedding_response(
        self, req: EmbeddingRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> EmbeddingResponse:
        return embedding_response_from_wire(upstream_json(body), len(req.inputs))

    def text_completion_request(self, req: TextRequest, model: str) -> UpstreamRequest:
        """``POST {base_url}/completions``: the client's body, ``model`` replaced (and
        the stream's usage asked for where the host takes it). Raises
        UnsupportedCapability on a host without the legacy API."""
        if not self._text_completions:
            raise UnsupportedCapability(
                f"provider {self.name!r} has no text completions (/v1/completions)"
            )
        body = orjson.dumps(text_body(req, model, stream_usage=self._stream_usage))
        headers = self._stream_headers if req.stream else self._headers
        return UpstreamRequest("POST", self._completions_url, headers, body)

    def probe_request(self) -> UpstreamRequest:
        """``GET {base_url}/models``: cheap, authenticated, costs no tokens."""
        headers = tuple((k, v) for k, v in self._headers if k != "content-type")
        return UpstreamRequest("GET", self._models_url, headers, b"")


def openai_embedding_body(req: EmbeddingRequest, model: str) -> dict[str, Any]:
    """The OpenAI embeddings body for ``model``. Raises UnsupportedParameter for
    ``dimensions`` on ``text-embedding-ada-002``, which cannot shorten its vectors."""
    if model.startswith("text-embedding-ada"):
        refuse_dimensions(req, "openai", model, None)
    return embedding_request_to_wire(req, model)


def _error_object(body: bytes) -> Any:
    """The ``error`` of an OpenAI error body (vLLM's flat body is its own, AI21's
    ``detail`` its message), as sent."""
    raw = error_object(body)
    error = raw.get("error")
    if error is None and raw.get("object") == "error":  # vLLM and other compatible hosts
        error = raw
    if error is None and raw.get("detail"):  # AI21's (FastAPI's) {"detail": ...}
        detail = raw["detail"]
        error = detail if isinstance(detail, str) else orjson.dumps(detail).decode()
    return error


def _error_detail(body: bytes) -> dict[str, Any]:
    """The ``error`` object of an OpenAI error body, or ``{}``."""
    error = _error_object(body)
    return error if isinstance(error, dict) else {}


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """``(message, code)`` of an OpenAI error body, tolerating anything else."""
    error = _error_object(body)
    if isinstance(error, str):
        return error, None
    if not isinstance(error, dict):
        return None, None
    message = error.get("message")
    code = error.get("code") or error.get("type")
    return (
        str(message) if message is not None else None,
        str(code) if code is not None else None,
    )


def is_event_stream(headers: Headers) -> bool:
    value = header(headers, "content-type") or ""
    return value.startswith("text/event-stream")


class OpenAIStreamDecoder:
    """SSE ``data:`` events of ``chat.completion.chunk`` JSON, ended by ``[DONE]``.

    A stream is complete when ``[DONE]`` arrived, or, for hosts that omit it, when the
    body ended cleanly after a chunk with a ``finish_reason``. Anything else is a
    truncated answer and :meth:`close` raises :class:`StreamError`.
    """

    def __init__(self, fixups: Fixups = IDENTITY, passthrough: bool = False) -> None:
        self._fixups = fixups
        #: An OpenAI Chat client's request passed through: each chunk also carries its
        #: event as it came (after the host's fix-ups), for that client.
        self._passthrough = passthrough
        self._sse = SSEDecoder()
        self._done = False
        self._finished = False
        #: The fields OpenAI's schema requires of every chunk, as the stream gave them.
        self._identity: dict[str, Any] = dict(_NO_IDENTITY)

    def feed(self, data: bytes) -> list[ChatChunk]:
        return self._chunks(self._sse.feed(data))

    @property
    def buffered(self) -> int:
        return self._sse.buffered

    def close(self) -> list[ChatChunk]:
        chunks = self._chunks(self._sse.close())
        if not (self._done or self._finished):
            incomplete = "upstream stream ended before the answer was complete"
            raise carried(StreamError(incomplete), chunks)
        return chunks

    def _chunks(self, events: list[Any]) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        with carrying(out):
            for event in events:
                data = event.data
                if self._done:
                    continue  # nothing after [DONE] is part of the answer
                if data == "[DONE]":
                    self._done = True
                    continue
                try:
                    raw = orjson.loads(data)
                except orjson.JSONDecodeError as exc:
                    raise StreamError(f"upstream sent a malformed stream event: {exc}") from exc
                if isinstance(raw, dict) and raw.get("error") is not None:
                    message, code = _error_fields(data.encode())
                    err = error_for_status(500, message or "upstream stream error", code=code)
                    raise StreamError(err.message) from err
                if isinstance(raw, dict):
                    fixed = self._identified(self._fixups.chunk(raw))
                    if fixed is not raw:
                        data = orjson.dumps(fixed).decode() if self._passthrough else data
                        raw = fixed
                wire = sse_bytes(data) if self._passthrough else None
                try:
                    chunk = chunk_from_wire(raw, wire)
                except SerializationError as exc:
                    raise StreamError(exc.message) from exc
                if any(c.finish_reason for c in chunk.choices):
                    self._finished = True
                if chunk.choices and chunk.usage is not None:
                    # Usage riding on a content chunk (Groq's x_groq.usage on the finish
                    # chunk) goes out as OpenAI's own usage-only chunk after it.
                    out.append(attrs.evolve(chunk, usage=None))
                    chunk = attrs.evolve(chunk, choices=(), raw=b"" if wire is not None else None)
                out.append(chunk)
        return out

    def _identified(self, raw: dict[str, Any]) -> dict[str, Any]:
        """The chunk with every field OpenAI's schema requires (``id``, ``object``,
        ``created``, ``model``): a host that leaves some off a chunk (AI21's last one)
        gets them from the chunks before it, so a client's strict parser takes it."""
        if all(name in raw for name in _NO_IDENTITY):
            self._identity = {name: raw[name] for name in _NO_IDENTITY}
            return raw
        return {**self._identity, **raw}


#: A chunk's required fields, before the stream gave any.
_NO_IDENTITY: dict[str, Any] = {
    "id": "",
    "object": "chat.completion.chunk",
    "created": 0,
    "model": "",
}
