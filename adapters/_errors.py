"""The gateway's error taxonomy.

Every failure that can reach a client is one of these classes, whichever provider or
layer raised it. Each class says whose fault it is, whether another attempt can fix it,
and which HTTP status and OpenAI-style error body the client gets::

    GatewayError
    ├── InvalidRequest            the client's request is wrong (400)
    │   └── UnsupportedCapability no target can do what it asks (400)
    │       └── UnsupportedParameter  a field a target (or the gateway) does not take (400, names it)
    ├── NotFound                  unknown model or route (404)
    ├── AuthenticationFailed      a credential was refused (upstream: 502 to the client)
    ├── RateLimitExceeded         429, with Retry-After when known
    ├── Timeout                   a deadline passed (504)
    ├── NetworkError              connect/reset/EOF before an answer (502)
    ├── ProviderInternalError     upstream 5xx (502)
    │   └── Overloaded            503/529: the upstream sheds load (502)
    ├── SerializationError        an upstream answer we cannot parse (502)
    ├── StreamError               a stream broke or went bad midway (502)
    ├── ContentFiltered           a provider's content policy refused (400, not retried)
    ├── ContextLengthExceeded     the prompt is too long for this target (400; another may fit)
    ├── NoHealthyTarget           nothing can take the request now (503)
    └── AllTargetsFailed          every attempt failed (502, names each attempt)

Errors raised by upstreams carry ``upstream`` (the ``provider:model`` target) and
``upstream_status``; the message never contains a credential. An error a stream decoder
raises also carries ``decoded``: the chunks it decoded before the error in the same
``feed`` or ``close``, which are part of the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from ._types import ChatChunk

__all__ = [
    "AllTargetsFailed",
    "AuthenticationFailed",
    "ContentFiltered",
    "ContextLengthExceeded",
    "GatewayError",
    "InvalidRequest",
    "NetworkError",
    "NoHealthyTarget",
    "NotFound",
    "Overloaded",
    "ProviderInternalError",
    "RateLimitExceeded",
    "SerializationError",
    "StreamError",
    "Timeout",
    "UnsupportedCapability",
    "UnsupportedParameter",
]


class GatewayError(Exception):
    """Base of every error the gateway reports.

    Attributes:
        message: Human-readable, safe to show to the client.
        upstream: The ``provider:model`` target that failed, if any.
        upstream_status: The upstream's HTTP status, if it answered.
        retry_after: Seconds the upstream asked us to wait, if it said.
        decoded: A stream decoder's error: the chunks it decoded before the error in
            the same ``feed`` or ``close`` (events that came in the same read as the bad
            one). They are part of the answer; the caller passes them on first.
        incident: Failures of one event share it: every stream of an HTTP/2
            connection that died fails with the same one, and a circuit breaker counts
            them as one failure (one connection lost, not a hundred upstream faults).
    """

    status_hint: ClassVar[int] = 500
    error_type: ClassVar[str] = "server_error"
    #: The OpenAI-style ``code``: the class's, or an upstream's own for a fault in the
    #: client's request (``invalid_value``, ``unsupported_parameter``), passed back.
    code: str | None = None
    #: Whether trying again (the same target later, or another one) can succeed.
    retryable: ClassVar[bool] = False
    #: The name used in a route's ``on = [...]`` list, if this failure can fall back.
    fallback_reason: ClassVar[str | None] = None
    decoded: tuple[ChatChunk, ...] = ()
    incident: object | None = None

    def __init__(
        self,
        message: str,
        *,
        upstream: str | None = None,
        upstream_status: int | None = None,
        retry_after: float | None = None,
        param: str | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.upstream = upstream
        self.upstream_status = upstream_status
        self.retry_after = retry_after
        self.param = param
        if code is not None:
            self.code = code

    def to_openai(self) -> dict[str, Any]:
        """The OpenAI-style error body: ``{"error": {message, type, param, code}}``."""
        return {
            "error": {
                "message": self.message,
                "type": self.error_type,
                "param": self.param,
                "code": self.code,
            }
        }


class InvalidRequest(GatewayError):
    """The client sent something no target can accept. The client's fault."""

    status_hint = 400
    error_type = "invalid_request_error"


class UnsupportedCapability(InvalidRequest):
    """The request needs a capability (tools, vision) that no candidate target has."""

    code = "unsupported_capability"


class UnsupportedParameter(UnsupportedCapability):
    """A request field a target cannot take, or the gateway does not serve, refused
    rather than dropped (``param`` names it: OpenAI's own code for a parameter a model
    does not take).

    Raised before anything is sent, so routing moves on to a target that takes it.
    """

    code = "unsupported_parameter"


class NotFound(GatewayError):
    """Unknown model or route (client side), or a model the upstream does not know."""

    status_hint = 404
    error_type = "invalid_request_error"
    code = "model_not_found"


class AuthenticationFailed(GatewayError):
    """A credential was refused. Upstream, it is the operator's problem: 502, not 401."""

    status_hint = 502
    error_type = "upstream_error"
    code = "upstream_authentication_failed"


class RateLimitExceeded(GatewayError):
    """429 from an upstream or from our own limits. Retryable after ``retry_after``."""

    status_hint = 429
    error_type = "rate_limit_error"
    code = "rate_limit_exceeded"
    retryable = True
    fallback_reason = "rate_limited"


class Timeout(GatewayError):
    """A deadline passed: connect, first token, stall, or the whole request."""

    status_hint = 504
    error_type = "timeout_error"
    code = "timeout"
    retryable = True
    fallback_reason = "timeout"


class NetworkError(GatewayError):
    """Connect failure, reset or EOF before an answer. The network's or upstream's fault."""

    status_hint = 502
    error_type = "upstream_error"
    code = "network_error"
    retryable = True
    fallback_reason = "network"


class ProviderInternalError(GatewayError):
    """The upstream answered 5xx or said it is overloaded."""

    status_hint = 502
    error_type = "upstream_error"
    code = "upstream_error"
    retryable = True
    fallback_reason = "server_error"


class Overloaded(ProviderInternalError):
    """The upstream says it is overloaded (503, Anthropic's 529)."""

    code = "upstream_overloaded"
    fallback_reason = "overloaded"


class SerializationError(GatewayError):
    """The upstream's answer could not be parsed. Its fault; another target may do."""

    status_hint = 502
    error_type = "upstream_error"
    code = "bad_upstream_response"
    retryable = True
    fallback_reason = "server_error"


class StreamError(GatewayError):
    """A stream broke, stalled or turned malformed part way through."""

    status_hint = 502
    error_type = "upstream_error"
    code = "stream_error"
    retryable = True
    fallback_reason = "network"


class ContentFiltered(GatewayError):
    """A provider's content policy refused the request; its reason is passed on."""

    status_hint = 400
    error_type = "invalid_request_error"
    code = "content_filter"


class ContextLengthExceeded(GatewayError):
    """The prompt does not fit this target's context window; a larger one may take it."""

    status_hint = 400
    error_type = "invalid_request_error"
    code = "context_length_exceeded"
    fallback_reason = "context_length"


class NoHealthyTarget(GatewayError):
    """Nothing can take the request right now (every target open or unavailable)."""

    status_hint = 503
    error_type = "service_unavailable"
    code = "no_healthy_target"


class AllTargetsFailed(GatewayError):
    """Every attempt of a request failed. The body names each attempt and its error."""

    status_hint = 502
    error_type = "upstream_error"
    code = "all_targets_failed"

    def __init__(self, attempts: tuple[GatewayError, ...]) -> None:
        parts = [f"{e.upstream or '?'}: {type(e).__name__}: {e.message}" for e in attempts]
        super().__init__("every target failed: " + "; ".join(parts))
        self.attempts = attempts

    def to_openai(self) -> dict[str, Any]:
        body = super().to_openai()
        body["error"]["attempts"] = [
            {
                "target": e.upstream,
                "error": type(e).__name__,
                "status": e.upstream_status,
                "message": e.message,
            }
            for e in self.attempts
        ]
        return body
