"""Cohere's v2 Chat JSON <-> the unified types: the pure translation functions the
``cohere`` adapter and its stream decoder are built from."""

from __future__ import annotations

from typing import Any

import orjson

from ._errors import ProviderInternalError, Timeout
from ._openai_request import part_to_wire
from ._types import Message, ToolCall, Usage

__all__ = [
    "finish_reason",
    "is_vision_model",
    "message_to_wire",
    "response_format_to_wire",
    "tool_call_from_wire",
    "usage_from_wire",
]

_FINISH = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
    "ERROR_TOXIC": "content_filter",  # older API versions
    "ERROR_LIMIT": "length",  # older API versions: the context filled up
}


def finish_reason(value: Any) -> str:
    """Cohere's finish reason -> OpenAI's. Raises for ``ERROR`` and ``TIMEOUT``."""
    if value == "TIMEOUT":
        raise Timeout("Cohere reported a generation timeout (finish_reason TIMEOUT)")
    if value == "ERROR":
        raise ProviderInternalError("Cohere reported an error (finish_reason ERROR)")
    return _FINISH.get(str(value), "stop")


def is_vision_model(model: str) -> bool:
    return "vision" in model.lower()


def message_to_wire(m: Message) -> dict[str, Any]:
    role = "system" if m.role == "developer" else m.role
    out: dict[str, Any] = {"role": role}
    if m.role == "user" and isinstance(m.content, tuple) and m.has_images:
        out["content"] = [part_to_wire(p) for p in m.content]
    else:
        out["content"] = m.text()
    if m.tool_calls:
        out["tool_calls"] = [
            {
                "id": c.id,
                "type": "function",
                "function": {"name": c.name, "arguments": c.arguments or "{}"},
            }
            for c in m.tool_calls
        ]
        if not out["content"]:
            del out["content"]  # Cohere refuses an empty text next to tool calls
    if m.role == "tool":
        out["tool_call_id"] = m.tool_call_id or ""
    return out


def response_format_to_wire(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    if value.get("type") == "json_object":
        return {"type": "json_object"}
    if value.get("type") == "json_schema":
        schema = (value.get("json_schema") or {}).get("schema")
        return {"type": "json_object", **({"json_schema": schema} if schema else {})}
    return None


def tool_call_from_wire(raw: Any) -> ToolCall:
    fn = raw["function"]
    arguments = fn.get("arguments")
    if not isinstance(arguments, str):
        arguments = orjson.dumps(arguments or {}).decode()
    return ToolCall(id=str(raw.get("id") or ""), name=str(fn["name"]), arguments=arguments)


def usage_from_wire(raw: Any) -> Usage | None:
    """``tokens`` (what the model processed) first, else ``billed_units``; floats too."""
    if not isinstance(raw, dict):
        return None
    counts = raw.get("tokens") or raw.get("billed_units")
    if not isinstance(counts, dict):
        return None
    return Usage(
        prompt_tokens=int(counts.get("input_tokens") or 0),
        completion_tokens=int(counts.get("output_tokens") or 0),
    )
