"""``GET /v1/models`` and ``GET /v1/models/{id}``: what a client may ask for.

Route names, every target the routes reach and every model a provider lists, in
OpenAI's shape; a request with an ``anthropic-version`` header (the Anthropic SDKs
send one) gets Anthropic's shape instead, so both SDKs' ``models.list()`` and
``models.retrieve()`` parse the answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from adapters import NotFound
from rules import Leaf

if TYPE_CHECKING:
    from rules import RouteTable

__all__ = ["model_list", "model_one"]

OWNER = "llm-router"
#: Anthropic's model objects carry a creation date; ours are defined by the config.
_EPOCH = "1970-01-01T00:00:00Z"


def model_list(table: RouteTable, anthropic: bool) -> dict[str, Any]:
    ids = [*table.route_names(), *(str(t) for t in table.listed())]
    if anthropic:
        data = [_anthropic(i) for i in ids]
        return {
            "data": data,
            "has_more": False,
            "first_id": ids[0] if ids else None,
            "last_id": ids[-1] if ids else None,
        }
    return {"object": "list", "data": [_openai(i, _owner(table, i)) for i in ids]}


def model_one(table: RouteTable, model: str, anthropic: bool) -> tuple[int, dict[str, Any]]:
    """The model object for ``model``, or a 404 in the client's error shape."""
    if table.lookup(model) is None:
        err = NotFound(
            f"model {model!r} is not a route or a provider:model target; GET /v1/models lists them",
            param="model",
        )
        if anthropic:
            return 404, {
                "type": "error",
                "error": {"type": "not_found_error", "message": err.message},
            }
        return 404, err.to_openai()
    if anthropic:
        return 200, _anthropic(model)
    return 200, _openai(model, _owner(table, model))


def _owner(table: RouteTable, model: str) -> str:
    """A route is the gateway's own; a target belongs to its provider."""
    if model in table.routes:
        return OWNER
    node = table.lookup(model)
    return node.target.provider if isinstance(node, Leaf) else OWNER


def _openai(model: str, owner: str) -> dict[str, Any]:
    return {"id": model, "object": "model", "created": 0, "owned_by": owner}


def _anthropic(model: str) -> dict[str, Any]:
    return {"type": "model", "id": model, "display_name": model, "created_at": _EPOCH}
