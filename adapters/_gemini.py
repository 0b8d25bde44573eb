"""The ``gemini`` adapter: Google's Gemini API (``generateContent``, ``v1beta``).

The key travels in the ``x-goog-api-key`` header, never in the URL (Gemini also accepts
``?key=``, but URLs end up in logs). Quirks handled here, per PROVIDERS.md §3:

- a bad key is a **400** ``INVALID_ARGUMENT`` with ``ErrorInfo.reason = API_KEY_INVALID``,
  not a 401; it maps to :class:`AuthenticationFailed`;
- the retry hint of a 429 is in the body (``google.rpc.RetryInfo.retryDelay``, ``"30s"``);
- a blocked prompt is a 200 without candidates (``promptFeedback.blockReason``);
- the SSE stream (``alt=sse``) has no terminator: it is complete when every candidate
  carried a ``finishReason``, and function calls arrive whole, each in one event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._base import (
    AdapterBase,
    Capabilities,
    Headers,
    error_for_status,
    path_segment,
    retry_after,
    stream_event_object,
    upstream_json,
)
from ._configs import GEMINI_URL
from ._decoded import carried, carrying
from ._errors import (
    AuthenticationFailed,
    ContextLengthExceeded,
    GatewayError,
    NotFound,
    Overloaded,
    ProviderInternalError,
    RateLimitExceeded,
    StreamError,
    Timeout,
)
from ._gemini_embeddings import (
    GEMINI_BATCH,
    embedding_body,
    embedding_method,
    embedding_response,
)
from ._gemini_wire import (
    answer_parts,
    created_from_wire,
    finish_reason,
    prompt_blocked,
    request_to_wire,
    response_from_wire,
    usage_from_wire,
)
from ._sse import SSEDecoder
from ._types import (
    ChatChunk,
    ChunkChoice,
    Delta,
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayRequest,
    GatewayResponse,
    ToolCallDelta,
    UpstreamRequest,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._sse import SSEEvent

__all__ = ["DEFAULT_BASE_URL", "GeminiAdapter", "GeminiStreamDecoder", "make_adapter"]

DEFAULT_BASE_URL = GEMINI_URL


class GeminiAdapter(AdapterBase):
    """Builds ``POST {base_url}/models/{model}:generateContent`` and reads its answers.

    Args:
        base_url: Up to and including the API version (``.../v1beta``).
        api_key: Sent as ``x-goog-api-key``.
        headers: Extra headers for every request; they override ours.
        name: The provider's name in the config, for reprs.
    """

    fields = "gemini"  # its column of the field tables (._fields)

    #: Gemini's ``fileData`` takes only Files-API/GCS URIs: web images must be bytes.
    image_urls = False

    def __init__(
        self,
        base_url: str = DEFAULT_BASE_URL,
        api_key: str | None = None,
        headers: Mapping[str, str] | None = None,
        name: str = "gemini",
    ) -> None:
        self.name = name
        self.base_url = base_url.rstrip("/")
        merged = {"content-type": "application/json"}
        if api_key:
            merged["x-goog-api-key"] = api_key
        merged.update((k.lower(), v) for k, v in (headers or {}).items())  # the operator's win
        self._headers = tuple(merged.items())

    def __repr__(self) -> str:  # never the key
        return f"GeminiAdapter(name={self.name!r}, base_url={self.base_url!r})"

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest:
        """Raises InvalidRequest or UnsupportedCapability for what Gemini cannot take."""
        body = orjson.dumps(request_to_wire(req, model))
        if req.stream:
            url = f"{self.base_url}/{_model_path(model)}:streamGenerateContent?alt=sse"
        else:
            url = f"{self.base_url}/{_model_path(model)}:generateContent"
        return UpstreamRequest("POST", url, self._headers, body)

    def parse_response(self, status: int, headers: Headers, body: bytes) -> GatewayResponse:
        """Raises SerializationError, or ContentFiltered when the prompt was blocked."""
        raw = upstream_json(body)
        return response_from_wire(raw)

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError:
        return gemini_error(status, headers, body)

    def stream_decoder(self) -> GeminiStreamDecoder:
        return GeminiStreamDecoder()

    def probe_request(self) -> UpstreamRequest:
        """``GET {base_url}/models``: authenticated, costs no tokens."""
        headers = tuple((k, v) for k, v in self._headers if k != "content-type")
        return UpstreamRequest("GET", f"{self.base_url}/models", headers, b"")

    def embedding_batch(self, model: str) -> int:
        return GEMINI_BATCH

    def build_embedding_request(self, req: EmbeddingRequest, model: str) -> UpstreamRequest:
        """``embedContent`` (one input) or ``batchEmbedContents``; see
        :mod:`._gemini_embeddings`. Raises UnsupportedParameter."""
        collection, name = _model_resource(model)
        body = orjson.dumps(embedding_body(req, f"{collection}/{name}"))
        url = f"{self.base_url}/{collection}/{path_segment(name)}:{embedding_method(req)}"
        return UpstreamRequest("POST", url, self._headers, body)

    def parse_embedding_response(
        self, req: EmbeddingRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> EmbeddingResponse:
        return embedding_response(upstream_json(body), len(req.inputs))

    def capabilities(self, model: str) -> Capabilities:
        # Gemma models served by the Gemini API refuse function declarations
        # ("Function calling is not enabled for models/gemma-3-27b-it").
        if model.removeprefix("models/").startswith("gemma-"):
            return Capabilities(vision=True, tools=False)
        # A trailing ``model`` turn is continued (the answer starts with its text).
        return Capabilities()


def _model_path(model: str) -> str:
    """``models/{id}`` (or ``tunedModels/{id}``), the id one escaped path segment: a
    ``:`` must not reach the ``:method`` suffix, nor a ``/`` or ``..`` another path."""
    collection, name = _model_resource(model)
    return f"{collection}/{path_segment(name)}"


def _model_resource(model: str) -> tuple[str, str]:
    """``(collection, id)`` of a model: ``models`` unless it names ``tunedModels``."""
    collection, slash, name = model.partition("/")
    if not slash or collection not in ("models", "tunedModels"):
        return "models", model
    return collection, name


# -- errors -----------------------------------------------------------------------------


def gemini_error(status: int, headers: Headers, body: bytes) -> GatewayError:
    """A Gemini error body (``{"error": {code, message, status, details}}``) -> taxonomy."""
    message, code, reasons, delay = _error_fields(body)
    if message is None:
        message = f"upstream answered HTTP {status}"
    wait = delay if delay is not None else retry_after(headers)
    lowered = message.lower()
    cls: type[GatewayError] | None = None
    if (
        any(r.startswith("API_KEY_") for r in reasons)  # _INVALID, _EXPIRED, ...
        or code in ("UNAUTHENTICATED", "PERMISSION_DENIED")
        or status in (401, 403)
        or (status == 400 and "api key" in lowered)  # "API key not valid", "... expired"
    ):
        cls = AuthenticationFailed  # Gemini answers a bad key with 400, not 401
    elif "input token count" in lowered or "exceeds the maximum number of tokens" in lowered:
        cls = ContextLengthExceeded
    elif status == 429 or code == "RESOURCE_EXHAUSTED":
        cls = RateLimitExceeded
    elif status == 404 or code == "NOT_FOUND":
        cls = NotFound
    elif status == 503 or code == "UNAVAILABLE":
        cls = Overloaded
    elif status == 504 or code == "DEADLINE_EXCEEDED":
        cls = Timeout
    elif status >= 500:
        cls = ProviderInternalError
    if cls is None:
        err = error_for_status(status, message, code=code, headers=headers)
        err.retry_after = wait
        return err
    return cls(message, upstream_status=status, retry_after=wait)


def _error_fields(body: bytes | str) -> tuple[str | None, str | None, set[str], float | None]:
    """``(message, status, ErrorInfo reasons, RetryInfo delay)``, tolerating anything."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, None, set(), None
    if isinstance(raw, list) and len(raw) == 1:  # the non-SSE stream wraps errors in [...]
        raw = raw[0]
    error = raw.get("error") if isinstance(raw, dict) else None
    if not isinstance(error, dict):
        return None, None, set(), None
    message = error.get("message")
    code = error.get("status")
    reasons: set[str] = set()
    delay: float | None = None
    for detail in error.get("details") or ():
        if not isinstance(detail, dict):
            continue
        if isinstance(detail.get("reason"), str):
            reasons.add(detail["reason"])
        if isinstance(detail.get("retryDelay"), str):
            delay = _duration(detail["retryDelay"])
    return (
        str(message) if message is not None else None,
        str(code) if code is not None else None,
        reasons,
        delay,
    )


def _duration(value: str) -> float | None:
    """A protobuf JSON Duration (``"30s"``, ``"1.5s"``) in seconds."""
    if not value.endswith("s"):
        return None
    try:
        return max(0.0, float(value[:-1]))
    except ValueError:
        return None


# -- streams ----------------------------------------------------------------------------


class GeminiStreamDecoder:
    """SSE ``data:`` events, each a whole ``GenerateContentResponse`` (``alt=sse``).

    Text parts are increments; a ``functionCall`` part is a whole call, sent on as one
    tool-call delta with id, name and all its arguments. ``usageMetadata`` is cumulative:
    the last one seen becomes the usage chunk, emitted at the end. The stream has no
    terminator, so :meth:`close` raises :class:`StreamError` unless every candidate
    reported a ``finishReason``.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._id = ""
        self._model = ""
        self._created = 0
        self._seen_event = False
        self._calls: dict[int, int] = {}  # candidate index -> tool calls so far
        self._finished: set[int] = set()
        self._counter = [0]  # ids synthesised across the whole answer
        self._usage: Usage | None = None

    def feed(self, data: bytes) -> list[ChatChunk]:
        return self._chunks(self._sse.feed(data))

    @property
    def buffered(self) -> int:
        return self._sse.buffered

    def close(self) -> list[ChatChunk]:
        incomplete = "upstream stream ended before the answer was complete"
        try:
            chunks = self._chunks(self._sse.close())  # a last event without its blank line
        except StreamError as exc:
            raise carried(StreamError(f"{incomplete} ({exc.message})"), exc.decoded) from exc
        if not self._finished or set(self._calls) - self._finished:
            raise carried(StreamError(incomplete), chunks)
        if self._usage is not None:
            chunks.append(ChatChunk(self._id, self._model, self._created, usage=self._usage))
        return chunks

    def _chunks(self, events: list[SSEEvent]) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        with carrying(out):
            for event in events:
                raw = stream_event_object(event.data)
                if raw.get("error") is not None:
                    message, code, _, _ = _error_fields(event.data)
                    raise StreamError(f"upstream stream error: {message or code or 'unknown'}")
                blocked = prompt_blocked(raw)
                if blocked is not None:
                    raise blocked
                try:
                    out.extend(self._event(raw))
                except (KeyError, TypeError, AttributeError, ValueError) as exc:
                    raise StreamError(f"upstream sent an unexpected stream event: {exc!r}") from exc
        return out

    def _event(self, raw: dict[str, Any]) -> list[ChatChunk]:
        if not self._seen_event:
            self._seen_event = True
            self._id = str(raw.get("responseId") or "")
            self._model = str(raw.get("modelVersion") or "")
            self._created = created_from_wire(raw)
        usage = usage_from_wire(raw.get("usageMetadata"))
        if usage is not None:
            self._usage = usage  # cumulative: the last one wins
        out: list[ChatChunk] = []
        for position, candidate in enumerate(raw.get("candidates") or ()):
            index = int(candidate.get("index", position))
            if index not in self._calls:
                self._calls[index] = 0
                out.append(self._chunk(index, Delta(role="assistant", content="")))
            parts = (candidate.get("content") or {}).get("parts") or ()
            text, calls = answer_parts(parts, self._counter)
            deltas = tuple(
                ToolCallDelta(self._calls[index] + k, c.id, c.name, c.arguments)
                for k, c in enumerate(calls)
            )
            self._calls[index] += len(calls)
            if text or deltas:
                out.append(self._chunk(index, Delta(content=text or None, tool_calls=deltas)))
            reason = finish_reason(candidate.get("finishReason"), self._calls[index] > 0)
            if reason is not None and index not in self._finished:
                self._finished.add(index)
                out.append(self._chunk(index, Delta(), reason))
        return out

    def _chunk(self, index: int, delta: Delta, finish: str | None = None) -> ChatChunk:
        choice = ChunkChoice(index=index, delta=delta, finish_reason=finish)
        return ChatChunk(self._id, self._model, self._created, choices=(choice,))


def make_adapter(name: str, settings: Mapping[str, Any]) -> GeminiAdapter:
    """The registry's factory: ``settings`` are ``GeminiProvider``'s fields, resolved."""
    return GeminiAdapter(
        base_url=settings.get("base_url") or DEFAULT_BASE_URL,
        api_key=settings.get("api_key"),
        headers=settings.get("headers"),
        name=name,
    )
