"""What a request's end means: the error the client gets, and the outcome that the
metrics, the access log and spans record (pure: no I/O)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters import AllTargetsFailed, GatewayError, NoHealthyTarget, RateLimitExceeded, Timeout

from ._overload import Overloaded

if TYPE_CHECKING:
    from adapters import ChatChunk, Usage

    from ..routing._request import RequestTrace

__all__ = ["client_error", "failed", "note_chunks", "outcome_of"]


def failed(trace: RequestTrace, err: GatewayError) -> None:
    """Note the failure the client gets, by class name and metrics outcome."""
    trace.error = type(err).__name__
    trace.outcome = outcome_of(err)


def outcome_of(err: GatewayError) -> str:
    """The ``requests_total`` outcome of a request that failed with ``err``."""
    if isinstance(err, RateLimitExceeded):
        return "rate_limited"
    if isinstance(err, Timeout):
        return "timeout"
    if isinstance(err, NoHealthyTarget | Overloaded):
        return "unavailable"
    if err.status_hint < 500:
        return "client_error"
    return "upstream_error"


def note_chunks(trace: RequestTrace, batch: list[ChatChunk]) -> Usage | None:
    """Usage and finish reasons, from the chunks of a stream as they pass; the last
    usage among them, whole (what the stream is charged)."""
    usage = None
    for chunk in batch:
        if chunk.usage is not None:
            usage = chunk.usage
            trace.tokens_in = chunk.usage.prompt_tokens
            trace.tokens_out = chunk.usage.completion_tokens
        for choice in chunk.choices:
            if choice.finish_reason:
                trace.finish_reasons = (*trace.finish_reasons, choice.finish_reason)
    return usage


def client_error(exc: GatewayError) -> GatewayError:
    """The error the client gets: all-rate-limited is a 429 with the shortest wait."""
    if isinstance(exc, AllTargetsFailed) and all(
        isinstance(a, RateLimitExceeded) for a in exc.attempts
    ):
        waits = [a.retry_after for a in exc.attempts if a.retry_after is not None]
        return RateLimitExceeded(exc.message, retry_after=min(waits) if waits else None)
    return exc
