"""What the response cache holds besides chat answers: embeddings, their key and size.

Embeddings are deterministic, so a route's cache serves them like chat answers. The
key (:func:`embedding_cache_key`) holds what can change the vectors: the route, the
client (unless the route's cache is shared), the inputs in order, ``dimensions`` and
any other parameter a client sent. Not in it: ``encoding_format`` (the cache keeps the
vectors and writes either format from them, so a float and a base64 request share one
entry) and ``user`` (an end-user tag for the provider's abuse monitoring).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from adapters import (
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayResponse,
    embedding_response_to_wire,
    response_to_wire,
)

__all__ = ["Cached", "answer_size", "embedding_cache_key", "plain_json"]

#: What one cache entry holds: a chat answer or an embeddings answer.
Cached = GatewayResponse | EmbeddingResponse

# Bumped whenever the key's layout changes, so that old and new keys never meet.
_KEY_VERSION = 1


def embedding_cache_key(route: str, req: EmbeddingRequest, client: str | None) -> bytes:
    """The 32-byte SHA-256 key of ``req`` on ``route``, for ``client``: over canonical
    JSON (sorted keys) of what can change the vectors (see the module's doc)."""
    doc = {
        "v": _KEY_VERSION,
        "kind": "embeddings",
        "route": route,
        "client": client,
        "inputs": req.inputs,
        "dimensions": req.dimensions,
        "extra": req.extra,
    }
    canonical = orjson.dumps(doc, default=plain_json, option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(canonical).digest()


def answer_size(resp: Cached) -> int:
    """An answer's size for the cache's bound: the length of its OpenAI JSON, and of
    the upstream's own when it is kept as it came (passthrough)."""
    if isinstance(resp, EmbeddingResponse):
        return len(orjson.dumps(embedding_response_to_wire(resp)))
    raw = len(orjson.dumps(resp.raw)) if resp.raw is not None else 0
    return len(orjson.dumps(response_to_wire(resp))) + raw


def plain_json(value: Any) -> Any:
    """orjson's ``default`` for cache keys: orjson serialises dict, list and tuple
    itself; other mappings (a MappingProxy in a tool schema, say) become dicts."""
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"cannot key a {type(value).__name__}")
