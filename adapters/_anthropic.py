"""The ``anthropic`` adapter: Anthropic's Messages API (``POST {base_url}/v1/messages``).

Translation lives in :mod:`._anthropic_request` and :mod:`._anthropic_response`; this
module holds the adapter (URLs, headers, errors) and the stream decoder. Anthropic's
rate-limit headers (``anthropic-ratelimit-*-reset``) are RFC 3339 times, which cannot
become a delay without a clock; the adapter has none, so it reads ``retry-after`` (which
Anthropic sends on every 429) and leaves the reset headers to the daemon, which has one
(the kind's spec names ``parse_anthropic_headers``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ._anthropic_request import request_to_wire
from ._anthropic_response import finish_reason_from_wire as finish_reason
from ._anthropic_response import response_from_wire, stop_sequence_from_wire, usage_from_wire
from ._base import (
    AdapterBase,
    Headers,
    error_for_status,
    error_object,
    request_headers,
    retry_after,
    stream_event_object,
    upstream_json,
)
from ._configs import ANTHROPIC_URL
from ._decoded import carried, carrying
from ._errors import (
    AuthenticationFailed,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    Overloaded,
    SerializationError,
    StreamError,
    Timeout,
)
from ._passthrough import ANTHROPIC, body_for, passes_through, sse_bytes, with_client_headers
from ._sse import SSEDecoder, SSEEvent
from ._structured import JsonToolDecoder, json_tool, json_tool_answer
from ._types import (
    ChatChunk,
    ChunkChoice,
    Delta,
    GatewayRequest,
    GatewayResponse,
    ToolCallDelta,
    UpstreamRequest,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._base import StreamDecoder

__all__ = ["AnthropicAdapter", "AnthropicStreamDecoder", "error_from_wire", "make_adapter"]

# Anthropic's input_tokens leaves out cached tokens; OpenAI's prompt_tokens counts them.
_INPUT_KEYS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


class AnthropicAdapter(AdapterBase):
    """Builds ``POST {base_url}/v1/messages`` and reads its answers.

    Args:
        base_url: As the Anthropic SDK means it: without ``/v1``.
        api_key: Sent as ``x-api-key``.
        auth_token: Sent as ``Authorization: Bearer`` (when there is no key).
        anthropic_version: The ``anthropic-version`` header.
        max_tokens: Sent when the client gave no limit (Anthropic requires one).
        beta: ``anthropic-beta`` feature names.
        headers: Extra headers for every request; they override ours.
        name: The provider's name in the config, for error messages.
    """

    image_urls = True  # Anthropic fetches http(s) image URLs itself ("url" sources)
    fields = ANTHROPIC  # its column of the field tables (._fields)
    same_format = ANTHROPIC  # a Messages client's body passes through

    def __init__(
        self,
        base_url: str = ANTHROPIC_URL,
        api_key: str | None = None,
        auth_token: str | None = None,
        anthropic_version: str = "2023-06-01",
        max_tokens: int = 4096,
        beta: tuple[str, ...] = (),
        headers: Mapping[str, str] | None = None,
        name: str = "anthropic",
    ) -> None:
        self.name = name
        self.max_tokens = max_tokens
        root = base_url.rstrip("/")
        self.url = root + "/v1/messages"
        self._count_url = root + "/v1/messages/count_tokens"
        self._models_url = root + "/v1/models"
        auth = {"anthropic-version": anthropic_version}
        if api_key:
            auth["x-api-key"] = api_key
        elif auth_token:
            auth["authorization"] = f"Bearer {auth_token}"
        if beta:
            auth["anthropic-beta"] = ",".join(beta)
        self._headers, self._stream_headers = request_headers(auth, headers)

    def __repr__(self) -> str:  # never the key
        return f"AnthropicAdapter(name={self.name!r}, url={self.url!r})"

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        headers = self._stream_headers if req.stream else self._headers
        if passes_through(req, ANTHROPIC):  # a Messages client: its body (and beta) as came
            headers = with_client_headers(headers, req)
            return UpstreamRequest("POST", self.url, headers, orjson.dumps(body_for(req, model)))
        tool = json_tool(req, "anthropic")
        if tool is not None:  # response_format: answered through a forced tool
            req = tool.request(req)
        body = orjson.dumps(request_to_wire(req, model, self.max_tokens))
        return UpstreamRequest("POST", self.url, headers, body)

    def parse_response(self, status: int, headers: Headers, body: bytes) -> GatewayResponse:
        raw = upstream_json(body)
        return response_from_wire(raw)

    def response_for(
        self, req: GatewayRequest, status: int, headers: Headers, body: bytes
    ) -> GatewayResponse:
        raw = upstream_json(body)
        answer = response_from_wire(raw)
        if passes_through(req, ANTHROPIC):
            return attrs.evolve(answer, raw=raw)  # the Messages client gets it as it is
        tool = json_tool(req, "anthropic")
        return answer if tool is None else json_tool_answer(answer, tool.name)

    def stream_decoder_for(self, req: GatewayRequest) -> StreamDecoder:
        if passes_through(req, ANTHROPIC):
            return AnthropicStreamDecoder(passthrough=True)
        tool = json_tool(req, "anthropic")
        decoder = self.stream_decoder()
        return decoder if tool is None else JsonToolDecoder(decoder, tool.name)

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        kind, message = _error_fields(body)
        if message is None:
            message = f"upstream answered HTTP {status}"
        return error_from_wire(status, kind, message, headers)

    def stream_decoder(self) -> AnthropicStreamDecoder:
        return AnthropicStreamDecoder()

    def count_tokens_request(self, body: Mapping[str, Any], model: str) -> UpstreamRequest:
        """``POST {base_url}/v1/messages/count_tokens``: the client's body as it came
        (the same format), only ``model`` replaced."""
        return UpstreamRequest(
            "POST", self._count_url, self._headers, orjson.dumps({**body, "model": model})
        )

    def parse_token_count(self, body: bytes) -> int:
        raw = upstream_json(body)
        count = raw.get("input_tokens") if isinstance(raw, dict) else None
        if type(count) is not int or count < 0:
            raise SerializationError("count_tokens answer without a valid 'input_tokens'")
        return count

    def probe_request(self) -> UpstreamRequest:
        """``GET {base_url}/v1/models``: cheap, authenticated, costs no tokens."""
        headers = tuple((k, v) for k, v in self._headers if k != "content-type")
        return UpstreamRequest("GET", self._models_url, headers, b"")


def make_adapter(name: str, settings: Mapping[str, Any]) -> AnthropicAdapter:
    """The registry's factory: ``settings`` are AnthropicProvider's fields, resolved."""
    return AnthropicAdapter(
        base_url=settings.get("base_url") or ANTHROPIC_URL,
        api_key=settings.get("api_key"),
        auth_token=settings.get("auth_token"),
        anthropic_version=settings.get("anthropic_version") or "2023-06-01",
        max_tokens=int(settings.get("max_tokens") or 4096),
        beta=tuple(settings.get("beta") or ()),
        headers=dict(settings.get("headers") or {}),
        name=name,
    )


def _error_fields(body: bytes) -> tuple[str | None, str | None]:
    """``(type, message)`` of ``{"type":"error","error":{type,message}}``, or Nones."""
    error = error_object(body).get("error")
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    return (None if kind is None else str(kind)), (None if message is None else str(message))


def error_from_wire(
    status: int, kind: str | None, message: str, headers: Headers = ()
) -> GatewayError:
    """Anthropic's status and error type -> the taxonomy.

    Beyond :func:`error_for_status`: 529 / ``overloaded_error`` -> Overloaded; 400
    "prompt is too long" -> ContextLengthExceeded; 402 ``billing_error`` (the operator's
    account) -> AuthenticationFailed; 504 ``timeout_error`` -> Timeout; 413
    ``request_too_large`` -> InvalidRequest.
    """
    wait = retry_after(headers)
    cls: type[GatewayError] | None = None
    if status == 529 or kind == "overloaded_error":
        cls = Overloaded
    elif "prompt is too long" in message.lower():
        cls = ContextLengthExceeded
    elif status == 402 or kind == "billing_error":
        cls = AuthenticationFailed
    elif status == 504 or kind == "timeout_error":
        cls = Timeout
    elif status == 413:
        cls = InvalidRequest
    if cls is not None:
        return cls(message, upstream_status=status, retry_after=wait)
    return error_for_status(status, message, code=kind, headers=headers)


class AnthropicStreamDecoder:
    """Anthropic's named SSE events -> OpenAI-shaped ChatChunks.

    ``message_start`` gives the role chunk; text and ``input_json_delta`` deltas become
    content and tool-call argument chunks (tool calls numbered in order, apart from the
    block index, which counts text blocks too); ``message_stop`` gives the finish chunk
    and the usage chunk. A stream is complete only after ``message_stop``.

    With ``passthrough`` (a Messages client's request passed through), every event
    also goes out as it came: its bytes ride on the first chunk it gave (``raw``), or on
    a chunk of its own with no choices (``ping``, block starts and stops, thinking,
    events the API adds later).
    """

    def __init__(self, passthrough: bool = False) -> None:
        self._passthrough = passthrough
        self._sse = SSEDecoder()
        self._id = ""
        self._model = ""
        self._started = False
        self._done = False
        self._tools: dict[int, int] = {}  # block index -> OpenAI tool_calls index
        self._has_args: dict[int, bool] = {}  # block index -> any argument piece sent
        self._stop_reason: Any = None
        self._stop_sequence: str | None = None
        self._inputs: dict[str, int] = {}
        self._output = 0

    def feed(self, data: bytes) -> list[ChatChunk]:
        return self._chunks(self._sse.feed(data))

    @property
    def buffered(self) -> int:
        return self._sse.buffered

    def close(self) -> list[ChatChunk]:
        chunks = self._chunks(self._sse.close())
        if not self._done:
            raise carried(StreamError("upstream stream ended before message_stop"), chunks)
        return chunks

    def _chunk(self, delta: Delta, finish: str | None = None) -> ChatChunk:
        return ChatChunk(self._id, self._model, 0, (ChunkChoice(0, delta, finish),))

    def _chunks(self, events: list[SSEEvent]) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        with carrying(out):
            for event in events:
                if self._done:
                    continue
                raw = stream_event_object(event.data)
                name = event.event if event.event != "message" else str(raw.get("type"))
                try:
                    chunks = self._event(name, raw)
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    raise StreamError(f"upstream sent a bad {name} event: {exc!r}") from exc
                if self._passthrough:
                    chunks = self._with_event(chunks, sse_bytes(event.data, name), name)
                out.extend(chunks)
        return out

    def _with_event(self, chunks: list[ChatChunk], wire: bytes, name: str) -> list[ChatChunk]:
        """``chunks`` carrying the event that gave them (see the class docstring). A
        content block's event is content even without choices: a thinking block, which
        may go on for longer than the first-token time, commits the stream."""
        if not chunks:
            content = name.startswith("content_block_")
            return [ChatChunk(self._id, self._model, 0, raw=wire, raw_content=content)]
        first, *rest = chunks
        return [attrs.evolve(first, raw=wire), *(attrs.evolve(c, raw=b"") for c in rest)]

    def _event(self, name: str, raw: dict[str, Any]) -> list[ChatChunk]:
        if name == "error":
            error = raw.get("error") or {}
            kind = error.get("type")
            err = error_from_wire(
                529 if kind == "overloaded_error" else 500,
                kind,
                str(error.get("message") or "upstream stream error"),
            )
            raise StreamError(f"{kind or 'error'}: {err.message}") from err
        if name == "message_start":
            message = raw["message"]
            self._id = str(message.get("id") or "")
            self._model = str(message.get("model") or "")
            self._started = True
            self._usage(message.get("usage"))
            role = self._chunk(Delta(role="assistant", content=""))
            if self._inputs:  # the input side is known now: say so to who can use it
                role = attrs.evolve(role, start_usage=self._total())
            return [role]
        if name not in (
            "content_block_start",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ):
            return []  # ping, and events the API may add later
        if not self._started:
            raise StreamError(f"upstream sent {name} before message_start")
        if name == "content_block_start":
            block = raw["content_block"]
            index = int(raw["index"])
            if block["type"] == "tool_use":
                self._tools[index] = len(self._tools)
                self._has_args[index] = False
                call = ToolCallDelta(
                    self._tools[index], id=str(block["id"]), name=str(block["name"]), arguments=""
                )
                return [self._chunk(Delta(tool_calls=(call,)))]
            if block["type"] == "text" and block.get("text"):
                return [self._chunk(Delta(content=str(block["text"])))]
            if block["type"] == "thinking" and block.get("thinking"):
                return [self._chunk(Delta(reasoning_content=str(block["thinking"])))]
            return []
        if name == "content_block_delta":
            delta = raw["delta"]
            index = int(raw["index"])
            if delta["type"] == "text_delta" and delta["text"]:
                return [self._chunk(Delta(content=str(delta["text"])))]
            if (
                delta["type"] == "input_json_delta"
                and delta["partial_json"]
                and index in self._tools
            ):
                self._has_args[index] = True
                call = ToolCallDelta(self._tools[index], arguments=str(delta["partial_json"]))
                return [self._chunk(Delta(tool_calls=(call,)))]
            if delta["type"] == "thinking_delta" and delta.get("thinking"):
                return [self._chunk(Delta(reasoning_content=str(delta["thinking"])))]
            return []  # signature and citation deltas have no OpenAI place
        if name == "content_block_stop":
            index = int(raw["index"])
            if index in self._tools and not self._has_args[index]:
                # No arguments at all means "{}"; "" would not parse for the client.
                self._has_args[index] = True
                call = ToolCallDelta(self._tools[index], arguments="{}")
                return [self._chunk(Delta(tool_calls=(call,)))]
            return []
        if name == "message_delta":
            delta = raw.get("delta") or {}
            self._stop_reason = delta.get("stop_reason") or self._stop_reason
            self._stop_sequence = stop_sequence_from_wire(delta) or self._stop_sequence
            self._usage(raw.get("usage"))
            return []
        # message_stop
        self._done = True
        finish = ChunkChoice(0, Delta(), finish_reason(self._stop_reason), self._stop_sequence)
        return [
            ChatChunk(self._id, self._model, 0, (finish,)),
            ChatChunk(self._id, self._model, 0, (), usage=self._total()),
        ]

    def _total(self) -> Usage:
        """The usage so far, as ours counts it (cached input in the prompt, and apart)."""
        return usage_from_wire({**self._inputs, "output_tokens": self._output}) or Usage()

    def _usage(self, raw: Any) -> None:
        """Counts are cumulative; a field left out keeps its earlier value."""
        if not isinstance(raw, dict):
            return
        for key in _INPUT_KEYS:
            if raw.get(key) is not None:
                self._inputs[key] = int(raw[key])
        if raw.get("output_tokens") is not None:
            self._output = int(raw["output_tokens"])
