"""Gemini's embeddings (``models/{m}:embedContent`` and ``:batchEmbedContents``) <->
the unified types.

One input goes to ``embedContent``, several to ``batchEmbedContents`` (at most
:data:`GEMINI_BATCH` requests per call, each naming the model again). ``dimensions`` is
``outputDimensionality``, which every model since 2024 takes (``embedding-001`` does
not). Gemini reports no token counts for embeddings: the router estimates them. Text
only: token arrays and other parameters are refused (``unsupported_parameter``).
"""

from __future__ import annotations

from typing import Any

from ._embeddings import (
    refuse_dimensions,
    refuse_extra,
    refuse_token_input,
    vector_from_wire,
    vectors_checked,
)
from ._errors import SerializationError
from ._types import EmbeddingRequest, EmbeddingResponse

__all__ = ["GEMINI_BATCH", "embedding_body", "embedding_method", "embedding_response"]

#: Requests one ``batchEmbedContents`` call may hold.
GEMINI_BATCH = 100
# Models that cannot shorten their vectors (Gemini's first embedding model).
_FIXED_SIZE = ("embedding-001",)


def embedding_method(req: EmbeddingRequest) -> str:
    """The method for ``req``: one input or several."""
    return "embedContent" if len(req.inputs) == 1 else "batchEmbedContents"


def embedding_body(req: EmbeddingRequest, resource: str) -> dict[str, Any]:
    """The body for ``req`` at ``resource`` (``models/{id}``, as Gemini names it).

    Raises:
        UnsupportedParameter: token arrays, a parameter Gemini has no name for, or
            ``dimensions`` for a model that cannot honour it.
    """
    refuse_token_input(req, "gemini")
    refuse_extra(req, "gemini")
    name = resource.rpartition("/")[2]
    if name in _FIXED_SIZE:
        refuse_dimensions(req, "gemini", name, None)
    requests = []
    for text in req.texts():
        one: dict[str, Any] = {"content": {"parts": [{"text": text}]}}
        if req.dimensions is not None:
            one["outputDimensionality"] = req.dimensions
        requests.append(one)
    if len(requests) == 1:
        return requests[0]
    return {"requests": [{"model": resource, **one} for one in requests]}


def embedding_response(raw: Any, count: int) -> EmbeddingResponse:
    """``{"embedding": {"values"}}`` or ``{"embeddings": [{"values"}, ...]}``.

    Raises:
        SerializationError: neither, or not one vector per input.
    """
    if not isinstance(raw, dict):
        raise SerializationError("not a Gemini embeddings response")
    if isinstance(raw.get("embedding"), dict):
        items = [raw["embedding"]]
    elif isinstance(raw.get("embeddings"), list):
        items = raw["embeddings"]
    else:
        raise SerializationError("not a Gemini embeddings response: no 'embedding(s)'")
    vectors = [
        vector_from_wire(item.get("values") if isinstance(item, dict) else None, "embedding")
        for item in items
    ]
    return EmbeddingResponse(model="", vectors=vectors_checked(vectors, count))
