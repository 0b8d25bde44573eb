"""Answers and stream chunks in the OpenAI Chat Completions format <-> ours, both ways.

Used twice: by the ``openai`` adapter (an upstream's answer in: :func:`response_from_wire`,
:func:`chunk_from_wire`) and by the OpenAI ingress and the cache (our answer out:
:func:`response_to_wire`, :func:`chunk_to_wire`). Requests are :mod:`._openai_request`.
Pure functions over already-parsed JSON values; malformed input from an upstream raises
:class:`SerializationError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import SerializationError
from ._openai_request import message_to_wire, tool_call_from_wire
from ._types import (
    ChatChunk,
    Choice,
    ChunkChoice,
    Delta,
    GatewayResponse,
    Message,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "chat_completion_id",
    "chunk_from_wire",
    "chunk_to_wire",
    "response_from_wire",
    "response_to_wire",
    "usage_from_wire",
]


def chat_completion_id(upstream_id: str, fallback: str) -> str:
    """An answer's id as OpenAI's format has it, ``chatcmpl-...``: an upstream's own is
    kept, another format's is derived from it (Anthropic's ``msg_01X`` is
    ``chatcmpl-01X``), and an answer without one gets ``fallback`` (made unique by the
    caller, who has the randomness)."""
    if upstream_id.startswith("chatcmpl-"):
        return upstream_id
    return "chatcmpl-" + (upstream_id.removeprefix("msg_") or fallback)


def response_from_wire(raw: Any) -> GatewayResponse:
    """An upstream's parsed ``chat.completion`` -> GatewayResponse.

    Raises:
        SerializationError: the body is not a chat completion.
    """
    try:
        choices = tuple(
            Choice(
                index=c.get("index", i),
                message=_answer_from_wire(c["message"]),
                finish_reason=c.get("finish_reason"),
                logprobs=_logprobs(c.get("logprobs")),
            )
            for i, c in enumerate(raw["choices"])
        )
        return GatewayResponse(
            id=str(raw.get("id") or ""),
            model=str(raw.get("model") or ""),
            created=int(raw.get("created") or 0),
            choices=choices,
            usage=usage_from_wire(raw.get("usage")),
            system_fingerprint=_said(raw.get("system_fingerprint")),
            service_tier=_said(raw.get("service_tier")),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SerializationError(f"not a chat completion: {exc!r}") from exc


def response_to_wire(resp: GatewayResponse) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": resp.id,
        "object": "chat.completion",
        "created": resp.created,
        "model": resp.model,
        "choices": [
            {
                "index": c.index,
                "message": _answer_to_wire(c.message),
                "logprobs": c.logprobs,
                "finish_reason": c.finish_reason,
            }
            for c in resp.choices
        ],
    }
    if resp.usage is not None:
        out["usage"] = _usage_to_wire(resp.usage)
    _identity_to_wire(out, resp.system_fingerprint, resp.service_tier)
    return out


def _identity_to_wire(out: dict[str, Any], fingerprint: str | None, tier: str | None) -> None:
    if fingerprint is not None:
        out["system_fingerprint"] = fingerprint
    if tier is not None:
        out["service_tier"] = tier


def _answer_to_wire(m: Message) -> dict[str, Any]:
    """An answer's message: ``refusal`` always there, null when none (the schema's);
    ``reasoning_content`` where there is reasoning (DeepSeek's and vLLM's field)."""
    out = {**message_to_wire(m), "refusal": m.refusal}
    if m.reasoning_content is not None:
        out["reasoning_content"] = m.reasoning_content
    return out


def _reasoning(raw: Mapping[str, Any]) -> str | None:
    """A message's or delta's reasoning: ``reasoning_content`` (DeepSeek, vLLM's
    reasoning parsers), or ``reasoning`` (vLLM's newer name, OpenRouter's)."""
    value = _text(raw.get("reasoning_content"))
    if value is None:
        value = raw.get("reasoning")
        return value if isinstance(value, str) else None  # OpenRouter's may be an object
    return value  # type: ignore[no-any-return]


def _said(value: Any) -> str | None:
    """An informative string (``system_fingerprint``, ``service_tier``): a host's odd
    value is left out, never a reason to fail the answer."""
    return value if isinstance(value, str) else None


def _answer_from_wire(raw: Mapping[str, Any]) -> Message:
    content = raw.get("content")
    if content is not None and not isinstance(content, str):
        raise TypeError("message.content must be a string or null")
    calls = tuple(
        tool_call_from_wire(c, "tool_calls", SerializationError)
        for c in raw.get("tool_calls") or ()
    )
    return Message(
        role="assistant",
        content=content,
        tool_calls=calls,
        refusal=_text(raw.get("refusal")),
        reasoning_content=_reasoning(raw),
    )


def usage_from_wire(raw: Any) -> Usage | None:
    """OpenAI's ``usage`` object (details included); None when there is none."""
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("prompt_tokens_details")
    completion = raw.get("completion_tokens_details")
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
        cache_read_tokens=_count(prompt, "cached_tokens"),
        reasoning_tokens=_count(completion, "reasoning_tokens"),
    )


def _count(details: Any, key: str) -> int:
    """A count in a usage details object, which hosts may leave out or set to null."""
    return int(details.get(key) or 0) if isinstance(details, dict) else 0


def _usage_to_wire(u: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "completion_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
    }


# -- stream chunks ----------------------------------------------------------------------


def chunk_from_wire(raw: Any, wire: bytes | None = None) -> ChatChunk:
    """An upstream's parsed ``chat.completion.chunk`` -> ChatChunk (``wire``: its own
    event bytes, for a passthrough stream: :attr:`ChatChunk.raw`).

    Raises:
        SerializationError: the event is not a chunk.
    """
    try:
        return ChatChunk(
            id=str(raw.get("id") or ""),
            model=str(raw.get("model") or ""),
            created=int(raw.get("created") or 0),
            choices=tuple(_chunk_choice_from_wire(c) for c in raw.get("choices") or ()),
            usage=usage_from_wire(raw.get("usage")),
            system_fingerprint=_said(raw.get("system_fingerprint")),
            service_tier=_said(raw.get("service_tier")),
            raw=wire,
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SerializationError(f"not a chat completion chunk: {exc!r}") from exc


def _chunk_choice_from_wire(raw: Mapping[str, Any]) -> ChunkChoice:
    d = raw.get("delta") or {}
    calls = tuple(
        ToolCallDelta(
            index=int(c.get("index", 0)),
            id=_text(c.get("id")),
            name=_text((c.get("function") or {}).get("name")),
            arguments=_text((c.get("function") or {}).get("arguments")),
        )
        for c in d.get("tool_calls") or ()
    )
    return ChunkChoice(
        index=int(raw.get("index", 0)),
        delta=Delta(
            role=_text(d.get("role")),
            content=_text(d.get("content")),
            tool_calls=calls,
            refusal=_text(d.get("refusal")),
            reasoning_content=_reasoning(d),
        ),
        finish_reason=_text(raw.get("finish_reason")),
        logprobs=_logprobs(raw.get("logprobs")),
    )


def _logprobs(value: Any) -> Mapping[str, Any] | None:
    """A choice's ``logprobs``: an object passed on as it is, or null."""
    if value is not None and not isinstance(value, dict):
        raise TypeError(f"logprobs must be an object or null, got {type(value).__name__}")
    return value


def _text(value: Any) -> Any:
    """A string field of a chunk: a string or null, else the chunk is malformed."""
    if value is not None and not isinstance(value, str):
        raise TypeError(f"expected a string or null, got {type(value).__name__}")
    return value


def chunk_to_wire(chunk: ChatChunk) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": chunk.id,
        "object": "chat.completion.chunk",
        "created": chunk.created,
        "model": chunk.model,
        "choices": [_chunk_choice_to_wire(c) for c in chunk.choices],
    }
    if chunk.usage is not None:
        out["usage"] = _usage_to_wire(chunk.usage)
    _identity_to_wire(out, chunk.system_fingerprint, chunk.service_tier)
    return out


def _chunk_choice_to_wire(c: ChunkChoice) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    d = c.delta
    if d.role is not None:
        delta["role"] = d.role
    if d.content is not None:
        delta["content"] = d.content
    if d.refusal is not None:
        delta["refusal"] = d.refusal
    if d.reasoning_content is not None:
        delta["reasoning_content"] = d.reasoning_content
    if d.tool_calls:
        delta["tool_calls"] = [_tool_call_delta_to_wire(t) for t in d.tool_calls]
    return {
        "index": c.index,
        "delta": delta,
        "logprobs": c.logprobs,
        "finish_reason": c.finish_reason,
    }


def _tool_call_delta_to_wire(t: ToolCallDelta) -> dict[str, Any]:
    out: dict[str, Any] = {"index": t.index}
    if t.id is not None:
        out["id"] = t.id
        out["type"] = "function"
    fn: dict[str, Any] = {}
    if t.name is not None:
        fn["name"] = t.name
    if t.arguments is not None:
        fn["arguments"] = t.arguments
    if fn:
        out["function"] = fn
    return out
