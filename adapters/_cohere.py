"""The ``cohere`` adapter: Cohere's v2 Chat API (``POST /v2/chat``).

Differences from OpenAI handled here:

* top-p is ``p``, stop sequences ``stop_sequences``; ``tool_choice`` is upper-case
  (``REQUIRED`` / ``NONE``; "auto" is the default and is not sent). A named function
  has no Cohere form: it is emulated by offering only that tool, ``REQUIRED``;
* answers hold ``message.content`` as text blocks, ``finish_reason`` in Cohere's enum
  (``COMPLETE``, ``STOP_SEQUENCE``, ``MAX_TOKENS``, ``TOOL_CALL``, ``ERROR``,
  ``TIMEOUT``), and usage as ``tokens`` (what the model saw) and ``billed_units``;
* the answer names no model: the parsed answer's ``model`` is left empty;
* the stream is a sequence of typed events (``message-start`` ... ``message-end``),
  sent as SSE ``data:`` lines (with ``event:`` names) or, as some proxies relay them,
  one JSON object per line; both are read. It is complete only at ``message-end``.
* images: only the vision models (``*-vision-*``) take them, as ``image_url`` parts
  with an https or ``data:`` URL.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._base import (
    AdapterBase,
    Capabilities,
    Headers,
    error_for_status,
    error_object,
    request_headers,
    stream_event_object,
    upstream_json,
)
from ._cohere_embeddings import (
    COHERE_BATCH,
    cohere_embedding_body,
    cohere_embedding_response,
)
from ._cohere_wire import (
    finish_reason,
    is_vision_model,
    message_to_wire,
    response_format_to_wire,
    tool_call_from_wire,
    usage_from_wire,
)
from ._configs import COHERE_URL
from ._decoded import carried, carrying
from ._errors import (
    ContextLengthExceeded,
    GatewayError,
    ProviderInternalError,
    SerializationError,
    StreamError,
    Timeout,
    UnsupportedCapability,
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
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["CohereAdapter", "CohereStreamDecoder", "make_adapter"]

_EXTRA = ("seed", "frequency_penalty", "presence_penalty")


class CohereAdapter(AdapterBase):
    """Builds ``POST {base_url}/v2/chat``.

    Args:
        base_url: ``https://api.cohere.com`` (no version path).
        api_key: Sent as ``Authorization: Bearer``.
        headers: Extra headers for every request (they override ours).
        name: The provider's name in the config.
    """

    fields = "cohere"  # its column of the field tables (._fields)

    def __init__(
        self,
        base_url: str = COHERE_URL,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "cohere",
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        auth = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._headers, self._stream_headers = request_headers(auth, headers)

    def __repr__(self) -> str:  # never the key
        return f"CohereAdapter(name={self.name!r}, base_url={self.base_url!r})"

    def capabilities(self, model: str) -> Capabilities:
        # Cohere documents no continuation of a trailing assistant message: the model
        # answers anew, so a resume regenerates unless the operator says otherwise.
        return Capabilities(vision=is_vision_model(model), tools=True, prefill=False)

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        """Raises UnsupportedCapability for images sent to a text-only model."""
        if req.needs_vision and not is_vision_model(model):
            raise UnsupportedCapability(
                f"cohere model {model!r} takes no images; use a vision model (command-a-vision-...)"
            )
        body: dict[str, Any] = {
            "model": model,
            "messages": [message_to_wire(m) for m in req.messages],
            "stream": req.stream,
        }
        if req.max_tokens is not None:
            body["max_tokens"] = req.max_tokens
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["p"] = req.top_p
        if req.stop:
            body["stop_sequences"] = list(req.stop)
        for key in _EXTRA:
            if req.extra.get(key) is not None:
                body[key] = req.extra[key]
        fmt = response_format_to_wire(req.extra.get("response_format"))
        if fmt is not None:
            body["response_format"] = fmt
        tools = list(req.tools)
        choice = req.tool_choice
        if isinstance(choice, dict):  # {"type": "function", "function": {"name": ...}}
            wanted = (choice.get("function") or {}).get("name")
            tools = [t for t in tools if t.name == wanted]
            choice = "required"
        if tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        **({"description": t.description} if t.description else {}),
                        "parameters": t.parameters or {"type": "object", "properties": {}},
                    },
                }
                for t in tools
            ]
            if choice in ("required", "none"):
                body["tool_choice"] = str(choice).upper()
        headers = self._stream_headers if req.stream else self._headers
        return UpstreamRequest("POST", f"{self.base_url}/v2/chat", headers, orjson.dumps(body))

    def parse_response(self, status: int, headers: Headers, body: bytes) -> GatewayResponse:
        """Raises SerializationError; ProviderInternalError / Timeout for ERROR / TIMEOUT."""
        raw = upstream_json(body)
        try:
            message = raw["message"]
            text = "".join(
                block.get("text") or ""
                for block in message.get("content") or ()
                if block.get("type") == "text"
            )
            calls = tuple(tool_call_from_wire(c) for c in message.get("tool_calls") or ())
            finish = finish_reason(raw.get("finish_reason"))
            return GatewayResponse(
                id=str(raw.get("id") or ""),
                model="",  # Cohere's answer does not say; the router knows the target
                created=0,
                choices=(
                    Choice(
                        index=0,
                        message=Message(
                            "assistant", text if text or not calls else None, tool_calls=calls
                        ),
                        finish_reason=finish,
                    ),
                ),
                usage=usage_from_wire(raw.get("usage")),
            )
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise SerializationError(f"not a Cohere chat response: {exc!r}") from exc

    def embedding_batch(self, model: str) -> int:
        return COHERE_BATCH

    def build_embedding_request(self, req: EmbeddingRequest, model: str) -> UpstreamRequest:
        """``POST {base_url}/v2/embed``; see :mod:`._cohere_embeddings`."""
        body = cohere_embedding_body(req, model, "cohere", with_model=True)
        return UpstreamRequest(
            "POST", f"{self.base_url}/v2/embed", self._headers, orjson.dumps(body)
        )

    def parse_embedding_response(
        self, req: EmbeddingRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> EmbeddingResponse:
        return cohere_embedding_response(upstream_json(body), len(req.inputs), None)

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        raw = error_object(body).get("message")
        message = str(raw) if raw else f"upstream answered HTTP {status}"
        lowered = message.lower()
        if status == 400 and ("too many tokens" in lowered or "context length" in lowered):
            return ContextLengthExceeded(message, upstream_status=status)
        if status == 504:
            return Timeout(message, upstream_status=status)
        if status == 499:  # Cohere's "client closed request": the attempt went nowhere
            return ProviderInternalError(message, upstream_status=status)
        return error_for_status(status, message, headers=headers)

    def stream_decoder(self) -> CohereStreamDecoder:
        return CohereStreamDecoder()

    def probe_request(self) -> UpstreamRequest:
        """``GET {base_url}/v1/models``: the model list (Cohere keeps it under v1)."""
        headers = tuple((k, v) for k, v in self._headers if k != "content-type")
        return UpstreamRequest("GET", f"{self.base_url}/v1/models", headers, b"")


class CohereStreamDecoder:
    """Cohere's v2 stream events -> ChatChunks, in any chunking of the bytes."""

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._id = ""
        self._started = False
        self._ended = False
        self._calls = 0

    def feed(self, data: bytes) -> list[ChatChunk]:
        # Every line end is a split point; the empty lines this makes of "\r\n" (and of
        # SSE's blank separators) carry nothing.
        out: list[ChatChunk] = []
        with carrying(out):
            for line in self._lines.feed(data.replace(b"\r", b"\n")):
                out.extend(self._line(line))
        return out

    @property
    def buffered(self) -> int:
        return self._lines.buffered

    def close(self) -> list[ChatChunk]:
        """Raises StreamError unless ``message-end`` arrived."""
        out = self._line(self._lines.rest())
        if not self._ended:
            raise carried(StreamError("Cohere's stream ended before message-end"), out)
        return out

    def _chunk(self, delta: Delta | None = None, finish: str | None = None) -> ChatChunk:
        return ChatChunk(self._id, "", 0, (ChunkChoice(0, delta or Delta(), finish),))

    def _line(self, line: bytes) -> list[ChatChunk]:
        line = line.strip()
        if line.startswith(b"data:"):
            payload = line[5:].strip()
        elif line.startswith(b"{"):
            payload = line
        else:  # "event:" names (the JSON repeats them), "id:", comments, blank lines
            return []
        if not payload or self._ended:
            return []
        event = stream_event_object(payload)
        try:
            return self._event(event)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise StreamError(f"Cohere sent a malformed stream event: {exc!r}") from exc

    def _event(self, event: dict[str, Any]) -> list[ChatChunk]:
        kind = event.get("type")
        delta = event.get("delta") or {}
        message = delta.get("message") or {}
        out: list[ChatChunk] = []
        if not self._started:
            self._started = True
            self._id = str(event.get("id") or "")
            out.append(self._chunk(Delta(role="assistant", content="")))
        if kind == "content-delta":
            text = (message.get("content") or {}).get("text")
            if text:
                out.append(self._chunk(Delta(content=str(text))))
        elif kind == "tool-call-start":
            call = message["tool_calls"]
            fn = call.get("function") or {}
            start = ToolCallDelta(
                self._calls,
                str(call.get("id") or ""),
                str(fn["name"]),
                str(fn.get("arguments") or ""),
            )
            self._calls += 1
            out.append(self._chunk(Delta(tool_calls=(start,))))
        elif kind == "tool-call-delta":
            piece = ((message.get("tool_calls") or {}).get("function") or {}).get("arguments")
            if piece and self._calls:
                more = ToolCallDelta(self._calls - 1, arguments=str(piece))
                out.append(self._chunk(Delta(tool_calls=(more,))))
        elif kind == "message-end":
            if delta.get("error"):
                raise StreamError(f"Cohere reported an error mid-stream: {delta['error']}")
            try:
                finish = finish_reason(delta.get("finish_reason"))
            except GatewayError as exc:
                raise StreamError(exc.message) from exc
            self._ended = True
            out.append(self._chunk(finish=finish))
            usage = usage_from_wire(delta.get("usage"))
            if usage is not None:
                out.append(ChatChunk(self._id, "", 0, (), usage))
        elif kind == "error" or event.get("error"):
            raise StreamError(f"Cohere reported an error mid-stream: {event.get('error') or event}")
        # message-start, content-start/-end, tool-plan-delta, tool-call-end and the
        # citation events carry nothing an OpenAI client reads.
        return out


def make_adapter(name: str, settings: Mapping[str, Any]) -> CohereAdapter:
    """The registry's factory: ``settings`` are :class:`CohereProvider`'s fields."""
    return CohereAdapter(
        base_url=settings.get("base_url") or COHERE_URL,
        api_key=settings.get("api_key"),
        headers=dict(settings.get("headers") or {}),
        name=name,
    )
