"""OpenAI's embeddings format (``POST /v1/embeddings``) <-> the unified types, both ways.

Used by the ingress (:func:`embedding_request_from_wire`, a client's JSON in, and
:func:`embedding_response_to_wire`, its answer out) and by the OpenAI-family adapters
(:func:`embedding_request_to_wire` and :func:`embedding_response_from_wire`, an
upstream's). Pure functions over parsed JSON; a client's malformed request raises
:class:`InvalidRequest` naming the parameter, an upstream's malformed answer
:class:`SerializationError`.

``input`` is a string, an array of strings, an array of tokens (integers) or an array
of token arrays: a single input becomes a request of one. Vectors go back as arrays of
floats, or with ``encoding_format: "base64"`` (the official SDKs' default) as
little-endian float32 in base64, which the SDKs decode.
"""

from __future__ import annotations

from typing import Any, Literal

from ._embeddings import MAX_INPUTS, encode_base64, vector_from_wire, vectors_checked
from ._errors import InvalidRequest, SerializationError
from ._openai_request import client_body
from ._types import EmbeddingInput, EmbeddingRequest, EmbeddingResponse, Usage

__all__ = [
    "embedding_request_from_wire",
    "embedding_request_to_wire",
    "embedding_response_from_wire",
    "embedding_response_to_wire",
]

_MODELLED = frozenset({"model", "input", "encoding_format", "dimensions", "user"})
_INPUT_SHAPES = "a string, an array of strings, an array of tokens or an array of token arrays"


def embedding_request_from_wire(body: Any) -> EmbeddingRequest:
    """A client's parsed JSON body -> EmbeddingRequest.

    Raises:
        InvalidRequest: naming the offending parameter.
    """
    body, model = client_body(body)
    if "input" not in body or body["input"] is None:
        raise InvalidRequest("'input' is required", param="input")
    inputs = _inputs(body["input"])
    encoding = body.get("encoding_format")
    if encoding is None:
        encoding = "float"
    if encoding not in ("float", "base64"):
        raise InvalidRequest(
            '\'encoding_format\' must be "float" or "base64"', param="encoding_format"
        )
    dimensions = body.get("dimensions")
    if dimensions is not None and (
        isinstance(dimensions, bool) or not isinstance(dimensions, int) or dimensions < 1
    ):
        raise InvalidRequest("'dimensions' must be a positive integer", param="dimensions")
    user = body.get("user")
    if user is not None and not isinstance(user, str):
        raise InvalidRequest("'user' must be a string", param="user")
    extra = {k: v for k, v in body.items() if k not in _MODELLED and v is not None}
    format_: Literal["float", "base64"] = encoding
    return EmbeddingRequest(model, inputs, dimensions, format_, user, extra)


def _inputs(raw: Any) -> tuple[EmbeddingInput, ...]:
    if isinstance(raw, str):
        if not raw:
            raise InvalidRequest("'input' must not be an empty string", param="input")
        return (raw,)
    if not isinstance(raw, list):
        raise InvalidRequest(f"'input' must be {_INPUT_SHAPES}", param="input")
    if not raw:
        raise InvalidRequest("'input' must not be an empty array", param="input")
    if len(raw) > MAX_INPUTS:
        raise InvalidRequest(
            f"'input' holds {len(raw)} inputs; at most {MAX_INPUTS} are allowed", param="input"
        )
    if all(isinstance(item, str) for item in raw):
        if not all(raw):
            raise InvalidRequest("'input' must not hold an empty string", param="input")
        return tuple(raw)
    if all(_is_token(item) for item in raw):
        return (tuple(raw),)
    if all(isinstance(item, list) for item in raw):
        arrays = []
        for item in raw:
            if not item or not all(_is_token(t) for t in item):
                raise InvalidRequest(
                    "each token array in 'input' must be a non-empty array of "
                    "non-negative integers",
                    param="input",
                )
            arrays.append(tuple(item))
        return tuple(arrays)
    raise InvalidRequest(f"'input' must be {_INPUT_SHAPES}, not a mix", param="input")


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def embedding_request_to_wire(req: EmbeddingRequest, model: str) -> dict[str, Any]:
    """The OpenAI body for ``req`` at ``model``: floats asked for (every compatible host
    writes them; base64 is not universal), ``extra`` passed through."""
    body: dict[str, Any] = {
        **req.extra,
        "model": model,
        "input": [i if isinstance(i, str) else list(i) for i in req.inputs],
        "encoding_format": "float",
    }
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    if req.user is not None:
        body["user"] = req.user
    return body


def embedding_response_from_wire(raw: Any, count: int) -> EmbeddingResponse:
    """An upstream's ``{"object": "list", "data": [...]}`` for ``count`` inputs, its
    vectors in input order (by each item's ``index``).

    Raises:
        SerializationError: not that shape, or not one vector per input.
    """
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, list):
        raise SerializationError("not an OpenAI embeddings response: no 'data' array")
    by_index: dict[int, tuple[float, ...]] = {}
    for position, item in enumerate(data):
        if not isinstance(item, dict):
            raise SerializationError("not an OpenAI embeddings response: an item is no object")
        index = item.get("index", position)
        if isinstance(index, bool) or not isinstance(index, int) or index in by_index:
            raise SerializationError("upstream sent embeddings with bad or repeated indexes")
        by_index[index] = vector_from_wire(item.get("embedding"))
    if sorted(by_index) != list(range(len(by_index))):
        raise SerializationError("upstream sent embeddings with indexes that skip")
    vectors = vectors_checked([by_index[i] for i in range(len(by_index))], count)
    usage = raw.get("usage")
    tokens = None
    if isinstance(usage, dict):
        tokens = usage.get("prompt_tokens", usage.get("total_tokens"))
    return EmbeddingResponse(
        model=str(raw.get("model") or ""),
        vectors=vectors,
        usage=Usage(tokens) if isinstance(tokens, int) and not isinstance(tokens, bool) else None,
    )


def embedding_response_to_wire(
    resp: EmbeddingResponse, encoding_format: Literal["float", "base64"] = "float"
) -> dict[str, Any]:
    """The client's answer: OpenAI's ``list`` of ``embedding`` objects with usage."""
    packed = encoding_format == "base64"
    tokens = resp.usage.prompt_tokens if resp.usage is not None else 0
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": encode_base64(vector) if packed else vector,
            }
            for i, vector in enumerate(resp.vectors)
        ],
        "model": resp.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
