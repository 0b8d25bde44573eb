"""An instance of a JSON schema, for fakes that honour structured output.

A real model fills a schema with meaning; a fake fills it with the simplest values that
validate: the first of an ``enum``, ``const``, the first branch of ``anyOf``/``oneOf``,
each required (or listed) property, one item per array, ``$ref`` to ``$defs`` followed.
Enough for the schemas that Pydantic, ``openai``'s ``parse()`` and instructor send.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["instance"]

_SCALARS: dict[str, Any] = {
    "string": "text",
    "integer": 1,
    "number": 1.5,
    "boolean": True,
    "null": None,
}


def instance(schema: Mapping[str, Any], root: Mapping[str, Any] | None = None) -> Any:
    """A value that ``schema`` accepts (``root`` holds the ``$defs`` it may refer to)."""
    root = schema if root is None else root
    if "$ref" in schema:
        ref = str(schema["$ref"])
        target: Any = root
        for part in ref.removeprefix("#/").split("/"):
            if part:
                target = target[part]
        return instance(target, root)
    if "const" in schema:
        return schema["const"]
    if "enum" in schema:
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            return instance(schema[key][0], root)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind == "object":
        properties = schema.get("properties") or {}
        return {name: instance(sub, root) for name, sub in properties.items()}
    if kind == "array":
        items = schema.get("items")
        return [instance(items, root)] if isinstance(items, Mapping) else []
    return _SCALARS.get(kind)
