"""Bedrock's embeddings models through InvokeModel (``POST /model/{id}/invoke``): each
family has its own body, so the model id chooses it.

- Amazon Titan Text Embeddings (``amazon.titan-embed-text-v2:0``, ``-v1``): one text
  per call, ``{"inputText", "dimensions", "normalize"}``; the answer's
  ``inputTextTokenCount`` is that text's tokens. Only v2 takes ``dimensions``
  (:data:`TITAN_SIZES`); vectors are normalized, as OpenAI's are.
- Cohere Embed (``cohere.embed-english-v3``, ``cohere.embed-v4:0``, with or without a
  cross-region prefix): Cohere's own body (:mod:`._cohere_embeddings`), up to 96 texts;
  the input tokens come in the ``x-amzn-bedrock-input-token-count`` header.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from ._cohere_embeddings import COHERE_BATCH, cohere_embedding_body, cohere_embedding_response
from ._embeddings import refuse_dimensions, refuse_extra, refuse_token_input, vector_from_wire
from ._errors import SerializationError, UnsupportedCapability
from ._types import EmbeddingRequest, EmbeddingResponse, Usage

__all__ = [
    "TITAN_SIZES",
    "bedrock_embedding_batch",
    "bedrock_embedding_body",
    "bedrock_embedding_response",
]

#: The ``dimensions`` Titan Text Embeddings v2 takes.
TITAN_SIZES = (256, 512, 1024)
_TITAN = re.compile(r"(?:^|\.)amazon\.titan-embed-(?:text|g1-text)-")
_TITAN_V2 = re.compile(r"titan-embed-text-v2")
_COHERE = re.compile(r"(?:^|\.)cohere\.embed-")

Family = Literal["titan", "cohere"]


def _family(model: str) -> Family | None:
    if _TITAN.search(model):
        return "titan"
    if _COHERE.search(model):
        return "cohere"
    return None


def bedrock_embedding_batch(model: str) -> int:
    """Texts per call: one for Titan, Cohere's 96 (and 1 for an unknown model, which
    :func:`bedrock_embedding_body` refuses)."""
    return COHERE_BATCH if _family(model) == "cohere" else 1


def bedrock_embedding_body(req: EmbeddingRequest, model: str) -> dict[str, Any]:
    """The InvokeModel body for ``req`` (Titan: its one text).

    Raises:
        UnsupportedCapability: ``model`` is not an embeddings model known here.
        UnsupportedParameter: token arrays, another parameter, or ``dimensions`` the
            model cannot honour.
    """
    family = _family(model)
    if family == "cohere":
        return cohere_embedding_body(req, model, "bedrock", with_model=False)
    if family is None:
        raise UnsupportedCapability(
            f"bedrock model {model!r} is no embeddings model known here "
            "(amazon.titan-embed-text-*, cohere.embed-*)"
        )
    refuse_token_input(req, "bedrock")
    refuse_extra(req, "bedrock")
    v2 = _TITAN_V2.search(model) is not None
    refuse_dimensions(req, "bedrock", model, TITAN_SIZES if v2 else None)
    (text,) = req.texts()  # one per call: bedrock_embedding_batch
    body: dict[str, Any] = {"inputText": text}
    if v2:
        body["normalize"] = True
        if req.dimensions is not None:
            body["dimensions"] = req.dimensions
    return body


def bedrock_embedding_response(
    raw: Any, model: str, count: int, header_tokens: str | None
) -> EmbeddingResponse:
    """The answer of ``model``'s family.

    Raises:
        SerializationError: not that family's answer, or not one vector per input.
    """
    if _family(model) == "cohere":
        tokens = int(header_tokens) if header_tokens and header_tokens.isdigit() else None
        return cohere_embedding_response(raw, count, tokens)
    if not isinstance(raw, dict) or count != 1:
        raise SerializationError("not a Titan embeddings response")
    vector = vector_from_wire(raw.get("embedding"))
    tokens = raw.get("inputTextTokenCount")
    if not isinstance(tokens, int) or isinstance(tokens, bool):
        return EmbeddingResponse(model="", vectors=(vector,))
    return EmbeddingResponse(
        model="", vectors=(vector,), usage=Usage(tokens), input_tokens=(tokens,)
    )
