"""What every provider's embeddings translation shares: vectors read and checked, the
base64 form of a vector, the parameters a kind cannot take, and a request cut into
parts (a provider's per-call limit) or answers joined back and split apart (a combined
call's answer shared among the requests it served). Pure: no I/O.
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import TYPE_CHECKING, Any

import attrs

from ._errors import SerializationError, UnsupportedParameter
from ._types import EmbeddingRequest, EmbeddingResponse, Usage

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = [
    "MAX_INPUTS",
    "decode_base64",
    "encode_base64",
    "join_embeddings",
    "refuse_dimensions",
    "refuse_extra",
    "refuse_token_input",
    "request_parts",
    "share_tokens",
    "split_embeddings",
    "vector_from_wire",
    "vectors_checked",
]

#: Inputs one request may hold (OpenAI's own limit, and so the ingress's).
MAX_INPUTS = 2048


def vector_from_wire(raw: Any, where: str = "embedding") -> tuple[float, ...]:
    """An upstream's vector: a JSON array of numbers, or OpenAI's base64 string.

    Raises:
        SerializationError: anything else.
    """
    if isinstance(raw, str):
        return decode_base64(raw, where)
    if not isinstance(raw, list) or not raw:
        raise SerializationError(f"upstream sent a {where} that is not an array of numbers")
    try:
        return tuple(array("d", raw))  # checks every item is a number, at C speed
    except (TypeError, OverflowError):
        raise SerializationError(
            f"upstream sent a {where} with a value that is not a number"
        ) from None


def vectors_checked(
    vectors: Sequence[tuple[float, ...]], count: int
) -> tuple[tuple[float, ...], ...]:
    """``vectors`` if there is one per input. Raises SerializationError otherwise: a
    missing or extra vector would give some request another input's embedding."""
    if len(vectors) != count:
        raise SerializationError(f"upstream sent {len(vectors)} embedding(s) for {count} input(s)")
    return tuple(vectors)


def encode_base64(vector: Sequence[float]) -> str:
    """OpenAI's ``encoding_format: "base64"``: little-endian float32, base64."""
    packed = array("f", vector)
    if sys.byteorder == "big":
        packed.byteswap()
    return base64.b64encode(packed.tobytes()).decode("ascii")


def decode_base64(text: str, where: str = "embedding") -> tuple[float, ...]:
    """The vector of :func:`encode_base64`'s form. Raises SerializationError."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise SerializationError(f"upstream sent a {where} that is not base64") from None
    if not raw or len(raw) % 4:
        raise SerializationError(f"upstream sent a {where} that is not float32 values")
    values = array("f", raw)
    if sys.byteorder == "big":
        values.byteswap()
    return tuple(values)


# -- what a kind cannot take -------------------------------------------------------------


def refuse_token_input(req: EmbeddingRequest, kind: str) -> None:
    """Raises UnsupportedParameter for token-array input: only the OpenAI family
    takes tokens (they are its tokenizer's; no other provider could read them)."""
    if req.token_input:
        raise UnsupportedParameter(f"{kind} embeds text only, not token arrays", param="input")


def refuse_extra(req: EmbeddingRequest, kind: str, allowed: frozenset[str] = frozenset()) -> None:
    """Raises UnsupportedParameter for a parameter beyond OpenAI's own (those pass
    through to OpenAI-compatible targets only) and the kind's ``allowed`` ones.
    ``user`` is not refused: it names the end user for OpenAI's abuse monitoring and
    changes no answer."""
    unknown = sorted(name for name in req.extra if name not in allowed)
    if unknown:
        name = unknown[0]
        raise UnsupportedParameter(f"{kind} embeddings take no {name!r}", param=name)


def refuse_dimensions(
    req: EmbeddingRequest, kind: str, model: str, allowed: Sequence[int] | None
) -> None:
    """Raises UnsupportedParameter when ``dimensions`` is set and not in ``allowed``
    (None: the model takes no ``dimensions`` at all)."""
    if req.dimensions is None or (allowed is not None and req.dimensions in allowed):
        return
    if allowed is None:
        message = f"{kind} model {model!r} cannot shorten its embeddings (dimensions)"
    else:
        sizes = ", ".join(str(n) for n in allowed)
        message = f"{kind} model {model!r} takes dimensions of {sizes} only"
    raise UnsupportedParameter(message, param="dimensions")


# -- parts, joins and shares -------------------------------------------------------------


def request_parts(req: EmbeddingRequest, size: int) -> list[EmbeddingRequest]:
    """``req`` cut into requests of at most ``size`` inputs each, in order."""
    if len(req.inputs) <= size:
        return [req]
    return [
        attrs.evolve(req, inputs=req.inputs[i : i + size]) for i in range(0, len(req.inputs), size)
    ]


def join_embeddings(parts: Sequence[EmbeddingResponse]) -> EmbeddingResponse:
    """The answers of a request's parts as one answer: vectors in order, usage summed
    (unknown if any part's is), per-input tokens kept when every part has them."""
    first = parts[0]
    if len(parts) == 1:
        return first
    usages = [p.usage for p in parts]
    usage = (
        Usage(sum(u.prompt_tokens for u in usages if u is not None))
        if all(u is not None for u in usages)
        else None
    )
    per_input = [p.input_tokens for p in parts]
    input_tokens = (
        tuple(n for tokens in per_input if tokens is not None for n in tokens)
        if all(tokens is not None for tokens in per_input)
        else None
    )
    return EmbeddingResponse(
        model=first.model,
        vectors=tuple(v for p in parts for v in p.vectors),
        usage=usage,
        input_tokens=input_tokens,
    )


def share_tokens(total: int, weights: Sequence[int]) -> list[int]:
    """``total`` shared in proportion to ``weights``, in whole tokens that add up to it
    exactly (largest remainder; ties to the earlier share). Equal shares when every
    weight is zero."""
    if not weights:
        return []
    if sum(weights) <= 0:
        weights = [1] * len(weights)
    whole = sum(weights)
    shares = [total * w // whole for w in weights]
    left = total - sum(shares)
    by_remainder = sorted(range(len(weights)), key=lambda i: -(total * weights[i] % whole))
    for i in by_remainder[:left]:
        shares[i] += 1
    return shares


def split_embeddings(
    resp: EmbeddingResponse, counts: Sequence[int], weights: Sequence[int]
) -> list[EmbeddingResponse]:
    """A combined call's answer split back among the requests it served.

    Args:
        counts: Each request's number of inputs, in the order they were combined.
        weights: Each request's estimated tokens: its share of the reported usage when
            the upstream did not report tokens per input.

    Raises:
        SerializationError: the answer does not hold one vector per input.
    """
    vectors_checked(resp.vectors, sum(counts))
    per_input = resp.input_tokens
    if per_input is not None and len(per_input) != len(resp.vectors):
        per_input = None
    shares: list[int | None]
    if per_input is not None:
        shares, at = [], 0
        for n in counts:
            shares.append(sum(per_input[at : at + n]))
            at += n
    elif resp.usage is not None:
        shares = list(share_tokens(resp.usage.prompt_tokens, weights))
    else:
        shares = [None] * len(counts)
    out: list[EmbeddingResponse] = []
    at = 0
    for n, share in zip(counts, shares, strict=True):
        out.append(
            EmbeddingResponse(
                model=resp.model,
                vectors=resp.vectors[at : at + n],
                usage=Usage(share) if share is not None else None,
                input_tokens=per_input[at : at + n] if per_input is not None else None,
            )
        )
        at += n
    return out
