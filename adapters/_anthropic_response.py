"""Answers in the Anthropic Messages format <-> the unified response, both directions.

* the ``anthropic`` adapter: :func:`response_from_wire` (its answer in), with the stop
  reason and usage mappings its stream decoder shares;
* the Anthropic ingress (``POST /v1/messages``): :func:`messages_response_to_wire` (any
  provider's answer out, in Anthropic's shape; its stream is :mod:`._messages_stream`),
  and :func:`error_to_wire` / :func:`error_event` (any failure out).

Requests are in :mod:`._anthropic_request`. Pure functions over parsed JSON values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._anthropic_request import tool_input
from ._errors import (
    ContentFiltered,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    NoHealthyTarget,
    NotFound,
    Overloaded,
    RateLimitExceeded,
    SerializationError,
    Timeout,
)
from ._types import (
    Choice,
    GatewayResponse,
    Message,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "anthropic_error_to_wire",
    "error_event",
    "error_to_wire",
    "finish_reason_from_wire",
    "message_id",
    "messages_response_to_wire",
    "messages_usage_to_wire",
    "response_from_wire",
    "sse_event",
    "stop_reason_to_wire",
    "stop_sequence_from_wire",
    "usage_from_wire",
]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a long server-tool turn paused; the client may resend
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason_from_wire(stop_reason: Any) -> str:
    """Anthropic ``stop_reason`` -> OpenAI ``finish_reason`` (unknown ones -> ``stop``)."""
    return _FINISH.get(str(stop_reason), "stop")


def stop_reason_to_wire(finish_reason: str | None) -> str:
    """OpenAI ``finish_reason`` -> Anthropic ``stop_reason`` (unknown ones -> ``end_turn``)."""
    return _STOP.get(finish_reason or "stop", "end_turn")


def stop_sequence_from_wire(raw: Mapping[str, Any]) -> str | None:
    """The stop sequence a message (or a ``message_delta``'s delta) ended at, if it did."""
    value = raw.get("stop_sequence")
    if raw.get("stop_reason") == "stop_sequence" and isinstance(value, str):
        return value
    return None


def usage_from_wire(raw: Any) -> Usage | None:
    """Anthropic usage -> ours: cached input counts as prompt, as OpenAI counts it, and
    the cache reads and writes are kept apart (``Usage``)."""
    if not isinstance(raw, dict):
        return None
    read = int(raw.get("cache_read_input_tokens") or 0)
    write = int(raw.get("cache_creation_input_tokens") or 0)
    return Usage(
        prompt_tokens=int(raw.get("input_tokens") or 0) + read + write,
        completion_tokens=int(raw.get("output_tokens") or 0),
        cache_read_tokens=read,
        cache_write_tokens=write,
    )


# -- adapter: Anthropic's answer in -----------------------------------------------------


def response_from_wire(raw: Any) -> GatewayResponse:
    """A parsed Anthropic ``message`` -> GatewayResponse.

    Raises:
        SerializationError: the body is not a message.
    """
    try:
        if raw.get("type") != "message" or not isinstance(raw["content"], list):
            raise TypeError("not a message object")
        texts: list[str] = []
        thoughts: list[str] = []
        calls: list[ToolCall] = []
        for block in raw["content"]:
            kind = block["type"]
            if kind == "text":
                texts.append(str(block["text"]))
            elif kind == "thinking":  # OpenAI-format clients read it as reasoning_content
                thoughts.append(str(block.get("thinking") or ""))
            elif kind == "tool_use":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                calls.append(
                    ToolCall(id=str(block["id"]), name=str(block["name"]), arguments=arguments)
                )
            # redacted_thinking and server-tool blocks have no OpenAI place.
        text = "".join(texts)
        reasoning = "".join(thoughts) if thoughts else None
        if raw.get("stop_reason") == "refusal":
            # What a refusing answer says is its refusal, as OpenAI's format keeps it.
            message = Message(
                role="assistant",
                tool_calls=tuple(calls),
                refusal=text or None,
                reasoning_content=reasoning,
            )
        else:
            message = Message(
                role="assistant",
                content=text if text or not calls else None,
                tool_calls=tuple(calls),
                reasoning_content=reasoning,
            )
        finish = finish_reason_from_wire(raw.get("stop_reason"))
        choice = Choice(0, message, finish, stop_sequence_from_wire(raw))
        return GatewayResponse(
            id=str(raw.get("id") or ""),
            model=str(raw.get("model") or ""),
            created=0,  # Anthropic gives no creation time
            choices=(choice,),
            usage=usage_from_wire(raw.get("usage")),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SerializationError(f"not an anthropic message: {exc!r}") from exc


# -- ingress: any provider's answer out -------------------------------------------------


def message_id(upstream_id: str, fallback: str) -> str:
    """An answer's id as Anthropic's format has it, ``msg_...``: an upstream's own is
    kept, another format's is derived from it (OpenAI's ``chatcmpl-X`` is ``msg_X``),
    and an answer without one gets ``fallback`` (made unique by the caller)."""
    if upstream_id.startswith("msg_"):
        return upstream_id
    return "msg_" + (upstream_id.removeprefix("chatcmpl-") or fallback)


def messages_response_to_wire(resp: GatewayResponse, fallback_id: str = "") -> dict[str, Any]:
    """GatewayResponse (from any provider) -> an Anthropic ``message`` object.

    ``fallback_id`` (unique, from the caller) names an answer that came without an id.
    """
    choice = resp.choices[0] if resp.choices else None
    content: list[dict[str, Any]] = []
    if choice is not None:
        text = choice.message.text() + (choice.message.refusal or "")
        if text:
            content.append({"type": "text", "text": text})
        content.extend(
            {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)}
            for c in choice.message.tool_calls
        )
    usage = messages_usage_to_wire(resp.usage or Usage())
    return {
        "id": message_id(resp.id, fallback_id),
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": _stop_reason(choice),
        "stop_sequence": choice.stop_sequence if choice else None,
        "usage": usage,
    }


def messages_usage_to_wire(usage: Usage) -> dict[str, int]:
    """Our usage -> Anthropic's: ``input_tokens`` leaves out the prompt tokens read from
    or written to the cache, which have their own counts (cache counts beyond the prompt,
    an upstream's garbage, are capped by it)."""
    read = min(usage.cache_read_tokens, usage.prompt_tokens)
    write = min(usage.cache_write_tokens, usage.prompt_tokens - read)
    return {
        "input_tokens": usage.prompt_tokens - read - write,
        "cache_creation_input_tokens": write,
        "cache_read_input_tokens": read,
        "output_tokens": usage.completion_tokens,
    }


def _stop_reason(choice: Choice | None) -> str:
    """An answer's stop reason; one that carries a refusal was a refusal, whatever the
    upstream's finish reason (OpenAI ends a structured-output refusal with ``stop``),
    and one that names its stop sequence ended at it."""
    if choice is not None and choice.message.refusal:
        return "refusal"
    if choice is not None and choice.stop_sequence is not None:
        return "stop_sequence"
    return stop_reason_to_wire(choice.finish_reason if choice else None)


def sse_event(name: str, data: Mapping[str, Any]) -> bytes:
    """One named SSE event, as Anthropic frames its streams."""
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


# -- ingress: errors out ----------------------------------------------------------------


def _error_type(err: GatewayError) -> str:
    if isinstance(err, Overloaded | NoHealthyTarget):
        return "overloaded_error"
    if isinstance(err, RateLimitExceeded):
        return "rate_limit_error"
    if isinstance(err, NotFound):
        return "not_found_error"
    if isinstance(err, Timeout):
        return "timeout_error"
    if isinstance(err, InvalidRequest | ContentFiltered | ContextLengthExceeded):
        return "invalid_request_error"
    # An upstream's refused credential is the operator's problem, not the client's:
    # api_error, like every other upstream failure (PROVIDERS.md §9.13).
    if err.status_hint == 401:
        return "authentication_error"
    if err.status_hint == 403:
        return "permission_error"
    return "api_error"


def error_to_wire(err: GatewayError) -> dict[str, Any]:
    """Any GatewayError -> Anthropic's error body ``{"type":"error","error":{type,message}}``."""
    return {"type": "error", "error": {"type": _error_type(err), "message": err.message}}


def error_event(err: GatewayError) -> bytes:
    """A mid-stream failure as Anthropic's ``event: error``."""
    return sse_event("error", error_to_wire(err))


#: The name under which :mod:`adapters` exports :func:`error_to_wire`.
anthropic_error_to_wire = error_to_wire
