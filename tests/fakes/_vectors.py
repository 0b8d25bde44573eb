"""The embeddings every fake answers with: a vector that tells its input apart.

A fake's vector of an input (a text, or a token array) is ``[length, checksum, 0.25,
0.5, 0.25, ...]``: its length in characters (or tokens), the sum of its code points (or
tokens) modulo 1000, then filler, :data:`SIZE` numbers long unless the request asked for
``dimensions``. Every number is exact in float32, so a vector survives base64 unchanged,
and the same input always gets the same vector, alone or in a combined call.
"""

from __future__ import annotations

from typing import Any

__all__ = ["SIZE", "fake_tokens", "fake_vector", "inputs_of"]

#: Numbers in a vector unless ``dimensions`` says otherwise.
SIZE = 4


def fake_vector(item: str | list[int], dimensions: int | None = None) -> list[float]:
    codes = [ord(c) for c in item] if isinstance(item, str) else list(item)
    size = dimensions or SIZE
    head = [float(len(codes)), float(sum(codes) % 1000)]
    filler = [0.25 if i % 2 == 0 else 0.5 for i in range(max(size - 2, 0))]
    return (head + filler)[:size]


def fake_tokens(item: str | list[int]) -> int:
    """An input's tokens, as fakes count them: words of a text, a token array's length."""
    return len(item.split()) if isinstance(item, str) else len(item)


def inputs_of(raw: Any) -> list[Any]:
    """OpenAI's ``input`` (one text or token array, or a list of them) as a list."""
    if isinstance(raw, str):
        return [raw]
    if raw and all(isinstance(t, int) for t in raw):
        return [raw]
    return list(raw)
