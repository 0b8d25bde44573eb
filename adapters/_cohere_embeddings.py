"""Cohere's embeddings, natively (``POST /v2/embed``) and on Bedrock (``cohere.embed-*``
through InvokeModel): the same body and answer, with small differences.

The body is ``{"texts": [...], "input_type": ...}`` with at most :data:`COHERE_BATCH`
texts. ``input_type`` (required by Embed v3 and later) is ``search_document`` unless the
client sends Cohere's own ``input_type``; ``dimensions`` is ``output_dimension``, which
only Embed v4 and later take, and only in the sizes of :data:`V4_SIZES`. Answers hold
the vectors as an array (Bedrock's Embed v3 default) or by type (``{"float": [...]}``).
Text only: token arrays and other parameters are refused (``unsupported_parameter``).
"""

from __future__ import annotations

import re
from typing import Any

from ._embeddings import (
    refuse_dimensions,
    refuse_extra,
    refuse_token_input,
    vector_from_wire,
    vectors_checked,
)
from ._errors import InvalidRequest, SerializationError
from ._types import EmbeddingRequest, EmbeddingResponse, Usage

__all__ = ["COHERE_BATCH", "V4_SIZES", "cohere_embedding_body", "cohere_embedding_response"]

#: Texts one embed call may hold.
COHERE_BATCH = 96
#: The ``output_dimension`` values Embed v4 takes.
V4_SIZES = (256, 512, 1024, 1536)
_INPUT_TYPES = frozenset({"search_document", "search_query", "classification", "clustering"})
# Cohere's own parameters a client may send (the OpenAI format has no name for them).
_OWN = frozenset({"input_type"})
_VERSION = re.compile(r"embed-v(\d+)")


def cohere_embedding_body(
    req: EmbeddingRequest, model: str, kind: str, *, with_model: bool
) -> dict[str, Any]:
    """The embed body for ``req`` (with ``"model"`` natively; Bedrock's URL names it).

    Raises:
        UnsupportedParameter: token arrays, another parameter, or ``dimensions`` that
            ``model`` cannot honour.
        InvalidRequest: an ``input_type`` Cohere does not know.
    """
    refuse_token_input(req, kind)
    input_type = req.extra.get("input_type", "search_document")
    if input_type not in _INPUT_TYPES:
        kinds = ", ".join(sorted(_INPUT_TYPES))
        raise InvalidRequest(f"'input_type' must be one of {kinds}", param="input_type")
    refuse_extra(req, kind, _OWN)
    version = _VERSION.search(model)
    v4 = version is not None and int(version.group(1)) >= 4
    refuse_dimensions(req, kind, model, V4_SIZES if v4 else None)
    body: dict[str, Any] = {"model": model} if with_model else {}
    body.update(texts=list(req.texts()), input_type=input_type, embedding_types=["float"])
    if req.dimensions is not None:
        body["output_dimension"] = req.dimensions
    return body


def cohere_embedding_response(raw: Any, count: int, tokens: int | None) -> EmbeddingResponse:
    """An embed answer's float vectors; ``tokens`` are the billed input tokens when the
    caller has them from elsewhere (Bedrock's header), else read from ``meta``.

    Raises:
        SerializationError: no float vectors, or not one per input.
    """
    embeddings = raw.get("embeddings") if isinstance(raw, dict) else None
    if isinstance(embeddings, dict):
        embeddings = embeddings.get("float")
    if not isinstance(embeddings, list):
        raise SerializationError("not a Cohere embed response: no float embeddings")
    vectors = vectors_checked([vector_from_wire(v) for v in embeddings], count)
    if tokens is None:
        billed = (raw.get("meta") or {}).get("billed_units") or {}
        value = billed.get("input_tokens") if isinstance(billed, dict) else None
        tokens = int(value) if isinstance(value, int | float) else None
    return EmbeddingResponse(
        model="", vectors=vectors, usage=Usage(tokens) if tokens is not None else None
    )
