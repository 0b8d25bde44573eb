"""One finished request as a usage-ledger row (pure: the values of
:data:`~._usage_db.COLUMNS`, in order)."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..http._observer import RequestFacts
    from ..routing._request import RequestTrace

__all__ = ["endpoint_of", "usage_row"]

#: Long enough for any route or model name; a client's invented one is cut here.
_TEXT = 200


def usage_row(trace: RequestTrace, facts: RequestFacts, now: float) -> tuple[object, ...]:
    """The row of a request that ended at ``now`` (wall clock, seconds since the epoch).

    Tokens are what the request was charged for (the upstream's count, else counted
    from the text); without a charge (a cache hit, a failure), what the upstream said.
    """
    usage = trace.usage
    if usage is not None:
        tokens_in: int | None = usage.prompt_tokens
        tokens_out: int | None = usage.completion_tokens
        cached: int | None = usage.cache_read_tokens
        reasoning: int | None = usage.reasoning_tokens
    else:
        tokens_in, tokens_out, cached, reasoning = trace.tokens_in, trace.tokens_out, None, None
    status = trace.status or 499  # nginx's "the client closed the request" before an answer
    # The target that answered; a failed request's last try is only among those tried.
    target = trace.target if 200 <= status < 400 else None
    model = target.partition(":")[2] if target else None
    tried = ",".join(dict.fromkeys(record.target for record in trace.log)) or None
    ttft = trace.ttft
    return (
        now,
        facts.request_id,
        endpoint_of(facts.path),
        trace.client,
        trace.route[:_TEXT] or None,
        target,
        tried,
        model or trace.response_model,
        status,
        trace.outcome or None,
        trace.error,
        tokens_in,
        tokens_out,
        cached,
        reasoning,
        trace.cost_usd,
        round((facts.ended - facts.started) * 1000, 3),
        None if ttft is None else round(ttft * 1000, 3),
        trace.attempts,
        sum(1 for _, outcome in trace.resumes if outcome == "resumed"),
        trace.cache,
    )


def endpoint_of(path: str) -> str:
    """``/v1/chat/completions`` is ``chat``; ``/v1/messages`` ``messages``; and so on."""
    name = path.removeprefix("/v1/").strip("/")
    if name == "chat/completions":
        return "chat"
    return name.replace("/", "_")[:_TEXT] or "-"
