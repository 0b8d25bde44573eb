"""Answers to streams and back, for the response cache: :func:`replay` turns a stored
answer into the chunks of a stream, :func:`assemble` a finished stream's chunks into
the answer they add up to. Pure: no clock, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from adapters._types import (
    ChatChunk,
    Choice,
    ChunkChoice,
    Delta,
    GatewayResponse,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["REPLAY_WORDS", "assemble", "replay"]

#: Words per content chunk when :func:`replay` streams a cached answer.
REPLAY_WORDS = 20

# -- streams ----------------------------------------------------------------------------

# Split before every run of non-space that follows a space: each piece is one word with
# the whitespace after it (the first also with any before it), so they join back exactly.
_WORD = re.compile(r"(?<=\s)(?=\S)")


def replay(resp: GatewayResponse) -> list[ChatChunk]:
    """A cached answer as the chunks of a stream, with the answer's id, model and created.

    For each choice, in order: a role chunk (``role="assistant"`` and nothing else; the
    first one has the answer's input usage as its ``start_usage``);
    the content, if the message has any, in chunks of :data:`REPLAY_WORDS` words split
    at whitespace (an empty string is one empty chunk, so it survives a round trip);
    its reasoning (``reasoning_content``), if it has any, in one chunk before the content;
    its refusal, if it has one, in one chunk;
    each tool call as two deltas, its id and name with ``arguments=""`` and then its
    arguments (left out when empty); and a finish chunk with no delta and the answer's
    ``finish_reason`` (``"stop"`` if it had none, so the stream still ends), its
    ``stop_sequence`` and its ``logprobs`` whole (a client's SDK adds them up across
    chunks, so one chunk holding them all adds up the same). Then, if
    the answer has usage, one usage-only chunk (``choices=()``); a caller whose client
    did not ask for ``include_usage`` leaves it out.

    Every chunk carries the answer's ``system_fingerprint`` and ``service_tier``.
    """

    def chunk(
        index: int, delta: Delta, finish: str | None = None, usage: Usage | None = None
    ) -> ChatChunk:
        choices = () if index < 0 else (ChunkChoice(index, delta, finish),)
        return said(ChatChunk(resp.id, resp.model, resp.created, choices, usage))

    def said(c: ChatChunk) -> ChatChunk:
        return attrs.evolve(
            c, system_fingerprint=resp.system_fingerprint, service_tier=resp.service_tier
        )

    out: list[ChatChunk] = []
    for c in resp.choices:
        m = c.message
        out.append(chunk(c.index, Delta(role="assistant")))
        if len(out) == 1 and resp.usage is not None:  # the input side, up front
            start = attrs.evolve(resp.usage, completion_tokens=0, reasoning_tokens=0)
            out[0] = attrs.evolve(out[0], start_usage=start)
        if m.reasoning_content is not None:
            out.append(chunk(c.index, Delta(reasoning_content=m.reasoning_content)))
        text = m.text() if m.content is not None else None
        if text is not None:
            words = _WORD.split(text)
            for i in range(0, len(words), REPLAY_WORDS):
                out.append(chunk(c.index, Delta(content="".join(words[i : i + REPLAY_WORDS]))))
        if m.refusal is not None:
            out.append(chunk(c.index, Delta(refusal=m.refusal)))
        for i, call in enumerate(m.tool_calls):
            first = ToolCallDelta(i, id=call.id, name=call.name, arguments="")
            out.append(chunk(c.index, Delta(tool_calls=(first,))))
            if call.arguments:
                rest = ToolCallDelta(i, arguments=call.arguments)
                out.append(chunk(c.index, Delta(tool_calls=(rest,))))
        finish = ChunkChoice(
            c.index, Delta(), c.finish_reason or "stop", c.stop_sequence, c.logprobs
        )
        out.append(said(ChatChunk(resp.id, resp.model, resp.created, (finish,))))
    if resp.usage is not None:
        out.append(chunk(-1, Delta(), usage=resp.usage))
    return out


@attrs.define
class _CallParts:
    id: str | None = None
    name: str | None = None
    arguments: list[str] = attrs.field(factory=list)


@attrs.define
class _ChoiceParts:
    content: list[str] | None = None
    refusal: list[str] | None = None
    reasoning: list[str] | None = None
    calls: dict[int, _CallParts] = attrs.field(factory=dict)
    finish_reason: str | None = None
    stop_sequence: str | None = None
    logprobs: Mapping[str, Any] | None = None


def assemble(chunks: Iterable[ChatChunk]) -> GatewayResponse | None:
    """The complete answer a finished stream's chunks add up to, for the cache.

    The id, model and created come from the first chunk. Per choice index: the content
    deltas concatenated (``None`` if there were none), the refusal and reasoning deltas
    likewise,
    tool-call deltas merged by their index (the first id and name given win, since they
    arrive whole; the arguments concatenated), the ``logprobs`` lists concatenated, the
    last ``finish_reason`` with its ``stop_sequence``; and the last usage seen.

    Returns ``None`` (do not cache) when there were no choices, or when any choice has no
    ``finish_reason`` (the stream did not finish).
    """
    first: ChatChunk | None = None
    usage: Usage | None = None
    parts: dict[int, _ChoiceParts] = {}
    for ch in chunks:
        if first is None:
            first = ch
        if ch.usage is not None:
            usage = ch.usage
        for c in ch.choices:
            p = parts.setdefault(c.index, _ChoiceParts())
            d = c.delta
            if d.refusal is not None:
                if p.refusal is None:
                    p.refusal = []
                p.refusal.append(d.refusal)
            if d.content is not None:
                if p.content is None:
                    p.content = []
                p.content.append(d.content)
            if d.reasoning_content is not None:
                if p.reasoning is None:
                    p.reasoning = []
                p.reasoning.append(d.reasoning_content)
            for t in d.tool_calls:
                call = p.calls.setdefault(t.index, _CallParts())
                if call.id is None and t.id:
                    call.id = t.id
                if call.name is None and t.name is not None:
                    call.name = t.name
                if t.arguments is not None:
                    call.arguments.append(t.arguments)
            if c.logprobs is not None:
                p.logprobs = _more_logprobs(p.logprobs, c.logprobs)
            if c.finish_reason is not None:
                p.finish_reason = c.finish_reason
                p.stop_sequence = c.stop_sequence
    if first is None or not parts or any(p.finish_reason is None for p in parts.values()):
        return None
    choices = tuple(
        Choice(
            index=i,
            message=Message(
                role="assistant",
                content=None if p.content is None else "".join(p.content),
                refusal=None if p.refusal is None else "".join(p.refusal),
                reasoning_content=None if p.reasoning is None else "".join(p.reasoning),
                tool_calls=tuple(
                    ToolCall(call.id or "", call.name or "", "".join(call.arguments))
                    for _, call in sorted(p.calls.items())
                ),
            ),
            finish_reason=p.finish_reason,
            stop_sequence=p.stop_sequence,
            logprobs=p.logprobs,
        )
        for i, p in sorted(parts.items())
    )
    return GatewayResponse(
        id=first.id,
        model=first.model,
        created=first.created,
        choices=choices,
        usage=usage,
        system_fingerprint=first.system_fingerprint,
        service_tier=first.service_tier,
    )


def _more_logprobs(held: Mapping[str, Any] | None, more: Mapping[str, Any]) -> Mapping[str, Any]:
    """``logprobs`` so far, and a chunk's: their lists (``content``, ``refusal``) joined,
    as OpenAI's SDK adds them up."""
    if held is None:
        return more
    out = dict(held)
    for key, value in more.items():
        if isinstance(value, list) and isinstance(out.get(key), list):
            out[key] = [*out[key], *value]
        elif value is not None or key not in out:
            out[key] = value
    return out
