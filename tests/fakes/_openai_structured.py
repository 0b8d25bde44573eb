"""What the OpenAI fake answers when a request asks for structured output.

Client libraries get structured output from OpenAI in two ways: a ``response_format``
(``json_schema``, or ``json_object``), answered as JSON content, or a forced tool call
(``tool_choice`` naming a function, or ``"required"``), answered as that call alone. A
model obliged to do either fills the schema; the fake fills it with the simplest values
that validate (:func:`tests.fakes.schema.instance`), so a client's parsing can be tested.
"""

from __future__ import annotations

import json
from typing import Any

from tests.fakes.schema import instance

__all__ = ["forced_call", "json_content"]


def forced_call(body: dict[str, Any]) -> tuple[str, str, str] | None:
    """``(name, arguments, finish)`` of the call a forced ``tool_choice`` makes,
    arguments as the JSON text OpenAI sends; ``"required"`` picks the first tool, as any
    would do, and finishes ``tool_calls``; a named function finishes ``stop``, as
    OpenAI's do."""
    choice = body.get("tool_choice")
    tools = [t["function"] for t in body.get("tools") or () if t.get("type") == "function"]
    finish = "stop"
    if choice == "required" and tools:
        tool, finish = tools[0], "tool_calls"
    elif isinstance(choice, dict) and choice.get("type") == "function":
        name = choice["function"]["name"]
        tool = next(t for t in tools if t["name"] == name)
    else:
        return None
    schema = tool.get("parameters") or {"type": "object", "properties": {}}
    return tool["name"], json.dumps(instance(schema)), finish


def json_content(body: dict[str, Any]) -> str | None:
    """The content a ``response_format`` asks for: JSON its schema accepts, ``{}`` for
    ``json_object``; None for text."""
    wanted = body.get("response_format") or {}
    if wanted.get("type") == "json_schema":
        return json.dumps(instance(wanted["json_schema"].get("schema") or {}))
    if wanted.get("type") == "json_object":
        return "{}"
    return None
