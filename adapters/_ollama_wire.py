"""Ollama's native ``/api/chat`` JSON <-> the unified types: the pure translation
functions the ``ollama`` adapter and its stream decoder are built from."""

from __future__ import annotations

import re
from datetime import datetime
from typing import TYPE_CHECKING, Any

import orjson

from ._errors import InvalidRequest, UnsupportedCapability
from ._types import ImagePart, Message, ToolCall, Usage

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "created_from_wire",
    "finish_reason",
    "format_to_wire",
    "messages_to_wire",
    "response_id",
    "tool_call_from_wire",
    "tool_to_wire",
    "usage_from_wire",
]

_DATA_URL = re.compile(r"data:[^;,]*(?:;[^;,]*)*;base64,(.*)", re.S)
# Go writes RFC 3339 with up to nine fractional digits; Python reads at most six.
_FRACTION = re.compile(r"(\.\d{6})\d+")


# -- requests ---------------------------------------------------------------------------


def messages_to_wire(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool-call id -> function name, latest turn wins
    for m in messages:
        role = "system" if m.role == "developer" else m.role
        wire: dict[str, Any] = {"role": role, "content": m.text()}
        images = [image_bytes(p) for p in m.content or () if isinstance(p, ImagePart)]
        if images:
            wire["images"] = images
        if m.tool_calls:
            wire["tool_calls"] = [tool_call_to_wire(c) for c in m.tool_calls]
            names.update((c.id, c.name) for c in m.tool_calls)
        if m.role == "tool" and m.tool_call_id is not None:
            wire["tool_call_id"] = m.tool_call_id
            if m.tool_call_id in names:
                wire["tool_name"] = names[m.tool_call_id]
        out.append(wire)
    return out


def image_bytes(part: ImagePart) -> str:
    found = _DATA_URL.fullmatch(part.url)
    if found:
        return found.group(1)
    if part.url.startswith(("http://", "https://")):
        raise UnsupportedCapability(
            "ollama takes images as bytes, not URLs; send a data: URL, or let the daemon "
            "fetch image URLs by setting server.fetch_images = true"
        )
    raise InvalidRequest("an image must be an http(s) URL or a base64 data: URL")


def tool_call_to_wire(call: ToolCall) -> dict[str, Any]:
    try:
        arguments = orjson.loads(call.arguments) if call.arguments else {}
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"tool call {call.id!r} has arguments that are not JSON, which Ollama needs"
        ) from exc
    fn = {"name": call.name, "arguments": arguments}
    return {"id": call.id, "function": fn} if call.id else {"function": fn}


def tool_to_wire(name: str, description: str | None, parameters: Any) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": name}
    if description is not None:
        fn["description"] = description
    fn["parameters"] = parameters if parameters is not None else {"type": "object"}
    return {"type": "function", "function": fn}


def format_to_wire(response_format: Any) -> str | dict[str, Any] | None:
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return "json"
    if response_format.get("type") == "json_schema":
        schema = (response_format.get("json_schema") or {}).get("schema")
        return dict(schema) if isinstance(schema, dict) else "json"
    return None


# -- responses --------------------------------------------------------------------------


def tool_call_from_wire(raw: Any, index: int) -> ToolCall:
    fn = raw["function"]
    arguments = fn.get("arguments")
    text = arguments if isinstance(arguments, str) else orjson.dumps(arguments or {}).decode()
    return ToolCall(id=str(raw.get("id") or f"call_{index}"), name=str(fn["name"]), arguments=text)


def finish_reason(done_reason: Any, called: bool) -> str:
    if done_reason == "length":
        return "length"
    # "stop", "load", "unload", or none: Ollama has no tool_calls reason of its own.
    return "tool_calls" if called else "stop"


def usage_from_wire(raw: Mapping[str, Any]) -> Usage | None:
    # Ollama omits a count that is zero (a cached prompt), so one alone is still usage.
    if "prompt_eval_count" not in raw and "eval_count" not in raw:
        return None
    return Usage(
        prompt_tokens=int(raw.get("prompt_eval_count") or 0),
        completion_tokens=int(raw.get("eval_count") or 0),
    )


def created_from_wire(value: Any) -> int:
    """``created_at`` (RFC 3339, nanoseconds) as Unix seconds; 0 if absent or odd."""
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(_FRACTION.sub(r"\1", value)).timestamp())
    except ValueError:
        return 0


def response_id(created: int) -> str:
    # Ollama names no answer; the id only has to be the same across one stream.
    return f"chatcmpl-ollama-{created}"
