"""Resuming a committed stream that broke: what was delivered, and how another target
continues it. Pure: chunks in, chunks out.

When a stream that already sent content to the client breaks (a reset, an error event,
a malformed event, a stall), another candidate of the route can finish the answer:

- a target that takes a prefill gets the original request plus the delivered text as a
  trailing assistant message (:func:`adapters.prefilled`), and what it streams is the
  rest of the answer, joined without doubling whitespace (:class:`Seamed`);
- any other target (and one that refuses the prefill) answers the original request
  anew; :class:`Spliced` forwards only what follows the delivered text, after checking
  that the new answer begins with exactly that text. If it does not, the attempt fails:
  never a spliced answer.

A stream whose tool-call deltas had begun is not resumed: a client never receives a
corrupted tool call. Every chunk of the continuation carries the id and creation time of
the first stream (:meth:`Delivered.restamp`), so the client sees one answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from adapters import ChatChunk, ChunkChoice, Delta, Seam, StreamError, Usage

from ..traffic._tokens import CHARS_PER_TOKEN

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["Delivered", "Seamed", "Spliced"]


class Delivered:
    """What a committed stream has sent the client so far."""

    def __init__(self) -> None:
        self._text: list[str] = []
        self.tool_calls = False  # tool-call deltas went out: not resumable
        self.finished = False  # a finish reason went out: nothing to resume
        self.id: str | None = None
        self.created = 0
        #: What the broken attempts consumed (estimated: they reported no usage), added
        #: to the usage the continuation reports, so the client and budgets see the sum.
        self.broken_usage = Usage()
        self._counted = 0  # characters of text already counted in broken_usage

    @property
    def text(self) -> str:
        """The answer's text (first choice) as the client has it."""
        return "".join(self._text)

    @property
    def resumable(self) -> bool:
        """Whether another target may finish this answer."""
        return not (self.tool_calls or self.finished) and self.id is not None

    def note(self, batch: list[ChatChunk]) -> None:
        """Record a batch the client is being sent."""
        for chunk in batch:
            if self.id is None:
                self.id, self.created = chunk.id, chunk.created
            for choice in chunk.choices:
                if choice.index != 0:
                    self.tool_calls = True  # several choices: not ours to continue
                delta = choice.delta
                if delta.content:
                    self._text.append(delta.content)
                if delta.tool_calls:
                    self.tool_calls = True
                if choice.finish_reason:
                    self.finished = True

    def restamp(self, batch: list[ChatChunk]) -> list[ChatChunk]:
        """A continuation's chunks as part of the first answer: its id and time, and no
        second role announcement."""
        out: list[ChatChunk] = []
        for chunk in batch:
            if not chunk.has_content and chunk.usage is None:
                continue  # a role chunk (or an empty one): the client has had its own
            usage = chunk.usage
            if usage is not None:
                extra = self.broken_usage
                usage = attrs.evolve(  # the continuation's details, as it reported them
                    usage,
                    prompt_tokens=usage.prompt_tokens + extra.prompt_tokens,
                    completion_tokens=usage.completion_tokens + extra.completion_tokens,
                )
            out.append(
                attrs.evolve(chunk, id=self.id or chunk.id, created=self.created, usage=usage)
            )
        return out

    def broke(self, prompt_tokens: int) -> None:
        """An attempt broke: count what it consumed (its prompt, and what it delivered
        since the last break), estimated at four characters a token."""
        delivered = len(self.text) - self._counted
        self._counted = len(self.text)
        self.broken_usage = Usage(
            self.broken_usage.prompt_tokens + prompt_tokens,
            self.broken_usage.completion_tokens + -(-delivered // CHARS_PER_TOKEN),
        )


class Seamed:
    """A prefilled continuation, its start joined onto the delivered text: whitespace
    the delivered text ended with is not repeated (:class:`adapters.Seam`)."""

    def __init__(self, chunks: AsyncIterator[list[ChatChunk]], delivered: str) -> None:
        self._chunks = chunks
        self._seam = Seam.after(delivered)

    def __aiter__(self) -> Seamed:
        return self

    async def __anext__(self) -> list[ChatChunk]:
        batch = await anext(self._chunks)
        if not self._seam.pending:
            return batch
        return [self._join(chunk) for chunk in batch]

    def _join(self, chunk: ChatChunk) -> ChatChunk:
        choices = []
        for choice in chunk.choices:
            content = choice.delta.content
            if choice.index == 0 and content:
                delta = attrs.evolve(choice.delta, content=self._seam.feed(content) or None)
                choice = attrs.evolve(choice, delta=delta)
            choices.append(choice)
        return attrs.evolve(chunk, choices=tuple(choices))


class Spliced:
    """A regenerated answer with the already delivered text taken off its front.

    Iterates the batches of ``chunks`` (an upstream stream of the original request);
    until the delivered text has been matched, content is compared and dropped, and a
    difference raises StreamError. Batches that end up empty are skipped.
    """

    def __init__(self, chunks: AsyncIterator[list[ChatChunk]], delivered: str) -> None:
        self._chunks = chunks
        self._left = delivered  # what the new answer must still repeat

    def __aiter__(self) -> Spliced:
        return self

    async def __anext__(self) -> list[ChatChunk]:
        while True:
            batch = await anext(self._chunks)
            if not self._left:
                return batch
            out = [c for c in map(self._trim, batch) if c is not None]
            if out:
                return out

    def _trim(self, chunk: ChatChunk) -> ChatChunk | None:
        """``chunk`` with the part the client already has removed (None: nothing left)."""
        if not self._left:
            return chunk
        choices: list[ChunkChoice] = []
        for choice in chunk.choices:
            delta = choice.delta
            if choice.index != 0 or delta.tool_calls:
                raise StreamError("the new answer diverged from the text already sent")
            text = delta.content or ""
            if self._left:
                shared = min(len(text), len(self._left))
                if text[:shared] != self._left[:shared] or (
                    choice.finish_reason and shared < len(self._left)
                ):
                    raise StreamError("the new answer diverged from the text already sent")
                self._left = self._left[shared:]
                text = text[shared:]
            if text or choice.finish_reason:
                new_delta = Delta(content=text or None, refusal=delta.refusal)
                choices.append(attrs.evolve(choice, delta=new_delta))
        if not choices and chunk.usage is None:
            return None
        return attrs.evolve(chunk, choices=tuple(choices))
