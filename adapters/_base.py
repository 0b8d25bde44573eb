"""What every provider adapter offers the transport layer, and the shared helpers.

An HTTP adapter is pure: it builds the bytes of an upstream request, and turns the
upstream's status, headers and body (or streamed bytes, through its decoder) back into
unified types or a :class:`GatewayError`. The transport layer does all the I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable
from urllib.parse import quote

import attrs
import orjson

from ._errors import (
    AuthenticationFailed,
    ContentFiltered,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    NotFound,
    Overloaded,
    ProviderInternalError,
    RateLimitExceeded,
    SerializationError,
    StreamError,
    UnsupportedCapability,
)

if TYPE_CHECKING:
    from datetime import datetime

    from ._types import (
        ChatChunk,
        EmbeddingRequest,
        EmbeddingResponse,
        GatewayRequest,
        GatewayResponse,
        UpstreamRequest,
    )

__all__ = [
    "error_object",
    "stream_event_object",
    "upstream_json",
    "with_upstream_detail",
    "AdapterBase",
    "Capabilities",
    "Embedder",
    "Headers",
    "HTTPAdapter",
    "StreamDecoder",
    "TokenCounter",
    "error_for_status",
    "header",
    "path_segment",
    "request_headers",
    "response_for",
    "retry_after",
    "stream_decoder_for",
]

Headers = Sequence[tuple[str, str]]


def path_segment(text: str) -> str:
    """``text`` percent-encoded as one URL path segment (RFC 3986).

    Everything but unreserved characters is encoded, ``/``, ``:``, ``?``, ``#`` and
    ``%`` included, and a segment that is all dots (``.``, ``..``) has them encoded too,
    so no URL parser or server reads it as a step up the path. Model names are checked
    before they get here (``rules.model_problem``); this makes sure a name can never
    leave its segment, whatever reaches an adapter.
    """
    encoded = quote(text, safe="-._~")
    if encoded.strip(".") == "":  # "", ".", "..", "...": "." is unreserved, not escaped
        return "%2E" * len(encoded)
    return encoded


class StreamDecoder(Protocol):
    """Turns a streamed body into chunks, in any chunking of the bytes.

    Both methods decode every event they were given before the one that fails, if one
    does: chunks decoded before the error are part of the answer; the error carries
    them (``GatewayError.decoded``, see :mod:`._decoded`), so that the answer is the
    same however the bytes were cut into reads.
    """

    def feed(self, data: bytes) -> list[ChatChunk]:
        """Raises StreamError (or another GatewayError the upstream sent in-band)."""
        ...

    def close(self) -> list[ChatChunk]:
        """End of body. Raises StreamError if the stream ended before it was complete."""
        ...

    @property
    def buffered(self) -> int:
        """Bytes held of an event, line or frame not yet whole: the caller bounds it
        (``server.max_response``), since an upstream may never end one. (A plugin's
        decoder without it is bounded by the bytes fed since it last gave chunks.)"""
        ...


@attrs.frozen
class Capabilities:
    """What a model can take. Routing skips a target that lacks what a request needs.

    Attributes:
        prefill: Whether a trailing assistant message is continued (its text is the
            start of the answer), so that a broken stream can be resumed where it
            broke; else the model answers anew and a resume must regenerate.
    """

    vision: bool = True
    tools: bool = True
    prefill: bool = True


@runtime_checkable
class TokenCounter(Protocol):
    """An adapter whose provider counts a request's input tokens for free (Anthropic's
    ``/v1/messages/count_tokens``)."""

    def count_tokens_request(self, body: Mapping[str, Any], model: str) -> UpstreamRequest:
        """The provider's count request for a client's body in the provider's own
        format, ``model`` put in."""
        ...

    def parse_token_count(self, body: bytes) -> int:
        """The count from a 2xx answer. Raises SerializationError."""
        ...


class HTTPAdapter(Protocol):
    """One provider's wire format.

    Attributes:
        image_urls: Whether the provider fetches ``http(s)`` image URLs itself; when
            False it needs the bytes (``data:`` URLs), which the daemon fetches only if
            the operator enabled it.
    """

    image_urls: bool

    def build_request(self, req: GatewayRequest, model: str) -> UpstreamRequest: ...

    def parse_response(self, status: int, headers: Headers, body: bytes) -> GatewayResponse:
        """A 2xx body -> GatewayResponse. Raises SerializationError."""
        ...

    def parse_error(self, status: int, headers: Headers, body: bytes) -> GatewayError: ...

    def stream_decoder(self) -> StreamDecoder: ...

    def probe_request(self) -> UpstreamRequest:
        """A cheap request that tells whether the upstream is up (a model list)."""
        ...

    def capabilities(self, model: str) -> Capabilities:
        """What ``model`` can take, as this provider knows it (config may override)."""
        ...

    def sign(self, request: UpstreamRequest, now: datetime) -> UpstreamRequest:
        """``request`` ready to send at ``now`` (UTC): SigV4 for Bedrock, else itself."""
        ...


class Embedder(Protocol):
    """An adapter's embeddings (optional: :class:`AdapterBase` has none).

    ``embedding_batch`` is how many inputs one upstream call may carry (a provider's
    limit: the upstream cuts a longer request into parts); 0 means the kind has no
    embeddings for ``model``.
    """

    def embedding_batch(self, model: str) -> int: ...

    def build_embedding_request(self, req: EmbeddingRequest, model: str) -> UpstreamRequest:
        """Raises UnsupportedParameter for a parameter the target cannot take."""
        ...

    def parse_embedding_response(
        self, req: EmbeddingRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> EmbeddingResponse:
        """A 2xx body of ``model`` -> one vector per input of ``req``. Raises
        SerializationError."""
        ...


class AdapterBase:
    """Defaults for the optional parts of :class:`HTTPAdapter` (no embeddings)."""

    image_urls: bool = True
    #: Whether ``sign`` may block (fetch credentials): then it runs in a worker thread.
    sign_may_block: bool = False

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    def sign(self, request: UpstreamRequest, now: datetime) -> UpstreamRequest:
        return request

    def response_for(
        self, req: GatewayRequest, status: int, headers: Headers, body: bytes
    ) -> GatewayResponse:
        """The 2xx answer to ``req``: :meth:`parse_response`, plus what only the request
        tells (the shape it asked for). Raises SerializationError."""
        return self.parse_response(status, headers, body)  # type: ignore[attr-defined,no-any-return]

    def stream_decoder_for(self, req: GatewayRequest) -> StreamDecoder:
        """The decoder of the stream answering ``req`` (see :meth:`response_for`)."""
        return self.stream_decoder()  # type: ignore[attr-defined,no-any-return]

    def embedding_batch(self, model: str) -> int:
        return 0  # no embeddings: the upstream refuses before building anything

    def build_embedding_request(self, req: EmbeddingRequest, model: str) -> UpstreamRequest:
        raise UnsupportedCapability("this provider has no embeddings")

    def parse_embedding_response(
        self, req: EmbeddingRequest, model: str, status: int, headers: Headers, body: bytes
    ) -> EmbeddingResponse:
        raise UnsupportedCapability("this provider has no embeddings")


def response_for(
    adapter: HTTPAdapter, req: GatewayRequest, status: int, headers: Headers, body: bytes
) -> GatewayResponse:
    """``adapter``'s answer to ``req`` (an adapter without the hook: its plain parse)."""
    hook = getattr(adapter, "response_for", None)
    if hook is None:
        return adapter.parse_response(status, headers, body)
    answer: GatewayResponse = hook(req, status, headers, body)
    return answer


def stream_decoder_for(adapter: HTTPAdapter, req: GatewayRequest) -> StreamDecoder:
    """``adapter``'s decoder for the stream answering ``req``."""
    hook = getattr(adapter, "stream_decoder_for", None)
    if hook is None:
        return adapter.stream_decoder()
    decoder: StreamDecoder = hook(req)
    return decoder


def request_headers(
    auth: Mapping[str, str],
    operator: Mapping[str, str] | None,
    stream_accept: str = "text/event-stream",
) -> tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]:
    """The fixed headers of a JSON API: ``(for plain requests, for streams)``.

    JSON in and out, then ``auth``, then the operator's extra headers, which win (lower-
    cased, so that one of ours is replaced, never sent twice). Streams differ only in
    what they accept.
    """
    merged = {"content-type": "application/json", "accept": "application/json", **auth}
    merged.update((k.lower(), v) for k, v in (operator or {}).items())
    plain = tuple(merged.items())
    return plain, tuple((k, stream_accept) if k == "accept" else (k, v) for k, v in plain)


def header(headers: Headers, name: str) -> str | None:
    """The first value of header ``name`` (lower-case) or None."""
    for key, value in headers:
        if key.lower() == name:
            return value
    return None


def retry_after(headers: Headers) -> float | None:
    """Seconds to wait, from ``retry-after-ms`` or ``retry-after`` (delta-seconds form)."""
    ms = header(headers, "retry-after-ms")
    if ms is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    seconds = header(headers, "retry-after")
    if seconds is not None:
        try:
            return max(0.0, float(seconds))
        except ValueError:
            return None  # an HTTP-date: left to the caller's default backoff
    return None


def error_for_status(
    status: int,
    message: str,
    *,
    code: str | None = None,
    headers: Headers = (),
    upstream: str | None = None,
) -> GatewayError:
    """Map an upstream HTTP error to the taxonomy, by status and the provider's code."""
    lowered = f"{code or ''} {message}".lower()
    cls: type[GatewayError] = InvalidRequest
    if status == 429:
        cls = RateLimitExceeded
    elif "context_length" in lowered or "maximum context length" in lowered:
        cls = ContextLengthExceeded
    elif "content_filter" in lowered or "content_policy" in lowered:
        cls = ContentFiltered
    elif status in (401, 403):
        cls = AuthenticationFailed
    elif status == 404:
        cls = NotFound
    elif status in (503, 529):
        cls = Overloaded
    elif status >= 500 or status in (408, 409):
        cls = ProviderInternalError
    return cls(message, upstream=upstream, upstream_status=status, retry_after=retry_after(headers))


#: Faults in the client's own request: an upstream's ``param`` and ``code`` say which
#: field and what about it, so they are passed back as the upstream gave them.
_CLIENT_FAULTS = (InvalidRequest, ContextLengthExceeded, ContentFiltered)


def with_upstream_detail(err: GatewayError, param: Any, code: Any) -> GatewayError:
    """``err`` with an OpenAI-format upstream's ``param`` and ``code``, when it is a
    fault in the client's request (never for the operator's: an upstream's
    ``invalid_api_key`` is not the client's key)."""
    if isinstance(err, _CLIENT_FAULTS):
        if isinstance(param, str) and param:
            err.param = param
        if isinstance(code, str) and code:
            err.code = code
    return err


def upstream_json(data: bytes | str, error: type[GatewayError] = SerializationError) -> Any:
    """An upstream's answer, parsed. Raises ``error`` if it is not JSON."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise error(f"upstream sent invalid JSON: {exc}") from exc


def stream_event_object(data: bytes | str) -> dict[str, Any]:
    """One stream event's JSON object. Raises StreamError for anything else."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise StreamError(f"upstream sent a malformed stream event: {exc}") from exc
    if not isinstance(raw, dict):
        raise StreamError("upstream sent a stream event that is not a JSON object")
    return raw


def error_object(body: bytes | str) -> dict[str, Any]:
    """An error answer's JSON object; empty for anything else (errors come in any shape)."""
    try:
        raw = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    return raw if isinstance(raw, dict) else {}
