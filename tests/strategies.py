"""Hypothesis strategies shared by the property tests.

:func:`chunkings` cuts a byte string into chunks at points hypothesis chooses (anywhere:
inside a UTF-8 character, between ``\\r`` and ``\\n``, inside a frame header), empty
chunks included. :data:`TEXT` and :func:`chat_chunks` build answers to encode.
"""

from __future__ import annotations

from itertools import pairwise

from hypothesis import strategies as st

from adapters import ChatChunk, ChunkChoice, Delta, ToolCallDelta, Usage

__all__ = ["FINISH", "TEXT", "USAGE", "chat_chunks", "chunkings", "split_at"]

#: Any text UTF-8 can carry (no lone surrogates): line ends, quotes, U+2028, emoji.
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=16)
FINISH = st.sampled_from(["stop", "length", "tool_calls", "content_filter"])
USAGE = st.builds(Usage, st.integers(0, 10**6), st.integers(0, 10**6))


def split_at(raw: bytes, cuts: list[int]) -> list[bytes]:
    """``raw`` cut at each offset in ``cuts`` (any order, repeats make empty chunks)."""
    points = [0, *sorted(cuts), len(raw)]
    return [raw[a:b] for a, b in pairwise(points)]


def chunkings(raw: bytes, max_cuts: int = 24) -> st.SearchStrategy[list[bytes]]:
    """A way of feeding ``raw``: whole, in a few chunks, or in many small ones."""
    return st.lists(st.integers(0, len(raw)), max_size=max_cuts).map(
        lambda cuts: split_at(raw, cuts)
    )


_DELTAS = st.builds(
    Delta,
    role=st.none() | st.just("assistant"),
    content=st.none() | TEXT,
    tool_calls=st.lists(
        st.builds(
            ToolCallDelta,
            index=st.integers(0, 2),
            id=st.none() | TEXT,
            name=st.none() | TEXT,
            arguments=st.none() | TEXT,
        ),
        max_size=2,
    ).map(tuple),
    refusal=st.none() | TEXT,
)


@st.composite
def chat_chunks(draw: st.DrawFn, choices: int = 2) -> ChatChunk:
    """One OpenAI-shaped chunk: content, tool-call and refusal deltas, a finish reason,
    for choice indexes below ``choices``; or a usage-only chunk (``choices=()``), the
    one place usage rides in an OpenAI stream."""
    id_, model, created = draw(TEXT), draw(TEXT), draw(st.integers(0, 2**40))
    if draw(st.integers(0, 7)) == 0:
        return ChatChunk(id_, model, created, (), draw(USAGE))
    picked = draw(st.lists(st.integers(0, choices - 1), min_size=1, max_size=2, unique=True))
    return ChatChunk(
        id_,
        model,
        created,
        tuple(ChunkChoice(i, draw(_DELTAS), draw(st.none() | FINISH)) for i in picked),
    )
