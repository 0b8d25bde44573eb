"""The ``ollama`` adapter: Ollama's native ``POST /api/chat`` with NDJSON streaming.

(For Ollama's OpenAI-compatible ``/v1``, use ``kind = "openai_compatible"``.)

Differences from OpenAI handled here:

* images are raw base64 strings in the message's ``images`` (no URLs at all);
* sampling parameters and the token limit (``num_predict``) go in ``options``;
* tool-call arguments are JSON **objects** both ways, tool results name their function
  (``tool_name``), and older servers give calls no ids: ids are synthesised from the
  call's position (``call_0``, ``call_1``... per answer), deterministic, never random;
* there is no ``tool_calls`` finish reason: ``stop`` after a call means ``tool_calls``;
* a stream is NDJSON (one ChatResponse per line), complete only at its ``done: true``
  line, which carries ``done_reason`` and the token counts; an ``{"error": ...}`` line
  reports a failure with HTTP status 200 already sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._base import (
    AdapterBase,
    Headers,
    error_for_status,
    error_object,
    request_headers,
    upstream_json,
)
from ._configs import OLLAMA_URL
from ._decoded import carried, carrying
from ._embeddings import (
    MAX_INPUTS,
    refuse_extra,
    refuse_token_input,
    vector_from_wire,
    vectors_checked,
)
from ._errors import GatewayError, SerializationError, StreamError
from ._ollama_wire import (
    created_from_wire,
    finish_reason,
    format_to_wire,
    messages_to_wire,
    response_id,
    tool_call_from_wire,
    tool_to_wire,
    usage_from_wire,
)
from ._sse import LineBuffer
from ._types import (
    ChatChunk,
    Choice,
    ChunkChoice,
    Delta,
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayRequest,
    GatewayResponse,
    Message,
    ToolCallDelta,
    UpstreamRequest,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["OllamaAdapter", "OllamaStreamDecoder", "make_adapter"]

# OpenAI parameters (from ``GatewayRequest.extra``) that Ollama takes in ``options``.
_OPTIONS = ("seed", "presence_penalty", "frequency_penalty")


class OllamaAdapter(AdapterBase):
    """Builds ``POST {base_url}/api/chat``.

    Args:
        base_url: The server, ``http://127.0.0.1:11434`` (no ``/api``).
        api_key: Sent as ``Authorization: Bearer`` (ollama.com); None locally.
        headers: Extra headers for every request (they override ours).
        name: The provider's name in the config.
    """

    fields = "ollama"  # its column of the field tables (._fields)

    image_urls = False  # Ollama takes image bytes only

    def __init__(
        self,
        base_url: str = OLLAMA_URL,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "ollama",
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers, self._stream_headers = request_headers(auth, headers, "application/x-ndjson")

    def __repr__(self) -> str:  # never the key
        return f"OllamaAdapter(name={self.name!r}, base_url={self.base_url!r})"

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        """Raises UnsupportedCapability for an ``http(s)`` image URL."""
        body: dict[str, Any] = {
            "model": model,
            "messages": messages_to_wire(req.messages),
            "stream": req.stream,  # Ollama streams unless told not to
        }
        options: dict[str, Any] = {}
        if req.temperature is not None:
            options["temperature"] = req.temperature
        if req.top_p is not None:
            options["top_p"] = req.top_p
        if req.max_tokens is not None:
            options["num_predict"] = req.max_tokens
        if req.stop:
            options["stop"] = list(req.stop)
        for key in _OPTIONS:
            if req.extra.get(key) is not None:
                options[key] = req.extra[key]
        if options:
            body["options"] = options
        # Ollama has no tool_choice; "none" is honoured by not offering the tools, "auto"
        # is its way; the others (forcing a call) are refused before (``._fields``).
        if req.tools and req.tool_choice != "none":
            body["tools"] = [tool_to_wire(t.name, t.description, t.parameters) for t in req.tools]
        fmt = format_to_wire(req.extra.get("response_format"))
        if fmt is not None:
            body["format"] = fmt
        headers = self._stream_headers if req.stream else self._headers
        return UpstreamRequest("POST", f"{self.base_url}/api/chat", headers, orjson.dumps(body))

    def parse_response(self, status: int, headers: Headers, body: bytes) -> GatewayResponse:
        raw = upstream_json(body)
        if isinstance(raw, dict) and raw.get("error"):
            raise SerializationError(f"Ollama answered with an error: {raw['error']}")
        if not isinstance(raw, dict) or not isinstance(raw.get("message"), dict):
            raise SerializationError("not an Ollama chat response: no 'message' object")
        try:
            message = raw["message"]
            content = message.get("content") or ""
            calls = tuple(
                tool_call_from_wire(c, i) for i, c in enumerate(message.get("tool_calls") or ())
            )
            created = created_from_wire(raw.get("created_at"))
            return GatewayResponse(
                id=response_id(created),
                model=str(raw.get("model") or ""),
                created=created,
                choices=(
                    Choice(
                        index=0,
                        message=Message(
                            role="assistant",
                            content=content if content or not calls else None,
                            tool_calls=calls,
                        ),
                        finish_reason=finish_reason(raw.get("done_reason"), bool(calls)),
                    ),
                ),
                usage=usage_from_wire(raw),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SerializationError(f"not an Ollama chat response: {exc!r}") from exc

    def embedding_batch(self, model: str) -> int:
        return MAX_INPUTS

    def build_embedding_request(self, req: EmbeddingRequest, model: str) -> UpstreamRequest:
        """``POST {base_url}/api/embed`` with the texts; ``dimensions`` passes through
        (the model decides whether it can). Raises UnsupportedParameter."""
        refuse_token_input(req, "ollama")
        refuse_extra(req, "ollama")
        body: dict[str, Any] = {"model": model, "input": list(req.texts())}
        if req.dimensions is not None:
            body["dimensions"] = req.dimensions
        url = f"{self.base_url}/api/embed"
        return UpstreamRequest("POST", url, self._headers, orjson.dumps(body))

    def parse_embedding_response(
        self, req: EmbeddingRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> EmbeddingResponse:
        """``{"model", "embeddings": [[...]], "prompt_eval_count"}``."""
        raw = upstream_json(body)
        embeddings = raw.get("embeddings") if isinstance(raw, dict) else None
        if not isinstance(embeddings, list):
            raise SerializationError("not an Ollama embed response: no 'embeddings' array")
        vectors = vectors_checked([vector_from_wire(v) for v in embeddings], len(req.inputs))
        count = raw.get("prompt_eval_count")
        return EmbeddingResponse(
            model=str(raw.get("model") or ""),
            vectors=vectors,
            usage=Usage(count) if isinstance(count, int) and not isinstance(count, bool) else None,
        )

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        raw = error_object(body).get("error")
        message = str(raw) if raw else f"upstream answered HTTP {status}"
        return error_for_status(status, message, headers=headers)

    def stream_decoder(self) -> OllamaStreamDecoder:
        return OllamaStreamDecoder()

    def probe_request(self) -> UpstreamRequest:
        """``GET {base_url}/api/tags``: the local model list."""
        headers = tuple((k, v) for k, v in self._headers if k != "content-type")
        return UpstreamRequest("GET", f"{self.base_url}/api/tags", headers, b"")


class OllamaStreamDecoder:
    """NDJSON ChatResponse lines -> ChatChunks, in any chunking of the bytes."""

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._id = ""
        self._model = ""
        self._created = 0
        self._started = False
        self._done = False
        self._calls = 0

    def feed(self, data: bytes) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        with carrying(out):
            for line in self._lines.feed(data):
                out.extend(self._line(line))
        return out

    @property
    def buffered(self) -> int:
        return self._lines.buffered

    def close(self) -> list[ChatChunk]:
        """Raises StreamError unless the ``done: true`` line arrived."""
        out = self._line(self._lines.rest())
        if not self._done:
            raise carried(StreamError("Ollama's stream ended before its done line"), out)
        return out

    def _chunk(self, delta: Delta | None = None, finish: str | None = None) -> ChatChunk:
        choice = ChunkChoice(0, delta or Delta(), finish)
        return ChatChunk(self._id, self._model, self._created, (choice,))

    def _line(self, line: bytes) -> list[ChatChunk]:
        if not line.strip() or self._done:
            return []
        raw = upstream_json(line, StreamError)
        if not isinstance(raw, dict):
            raise StreamError("Ollama sent a stream line that is not an object")
        if raw.get("error"):
            raise StreamError(f"Ollama reported an error mid-stream: {raw['error']}")
        out: list[ChatChunk] = []
        if not self._started:
            self._started = True
            self._model = str(raw.get("model") or "")
            self._created = created_from_wire(raw.get("created_at"))
            self._id = response_id(self._created)
            out.append(self._chunk(Delta(role="assistant", content="")))
        message = raw.get("message")
        if isinstance(message, dict):
            if message.get("content"):
                out.append(self._chunk(Delta(content=str(message["content"]))))
            for call in message.get("tool_calls") or ():
                try:
                    parsed = tool_call_from_wire(call, self._calls)
                except (KeyError, TypeError, AttributeError) as exc:
                    raise StreamError(f"Ollama sent a malformed tool call: {exc!r}") from exc
                delta = ToolCallDelta(self._calls, parsed.id, parsed.name, parsed.arguments)
                out.append(self._chunk(Delta(tool_calls=(delta,))))
                self._calls += 1
        if raw.get("done"):
            self._done = True
            out.append(self._chunk(finish=finish_reason(raw.get("done_reason"), self._calls > 0)))
            try:
                usage = usage_from_wire(raw)
            except (TypeError, ValueError) as exc:
                raise StreamError(f"Ollama sent malformed token counts: {exc!r}") from exc
            if usage is not None:
                out.append(ChatChunk(self._id, self._model, self._created, (), usage))
        return out


def make_adapter(name: str, settings: Mapping[str, Any]) -> OllamaAdapter:
    """The registry's factory: ``settings`` are :class:`OllamaProvider`'s fields."""
    return OllamaAdapter(
        base_url=settings.get("base_url") or OLLAMA_URL,
        api_key=settings.get("api_key"),
        headers=dict(settings.get("headers") or {}),
        name=name,
    )
