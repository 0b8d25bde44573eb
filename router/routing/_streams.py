"""Streams through the engine: opening one up to its first content chunk, and reading
the rest of a committed one.

A stream is committed to an attempt when its first content chunk arrives; before that,
failures and silence move on unseen (:func:`first_chunk` runs inside an attempt). After
it, :class:`Chunks` hands the client's side every batch as it comes, each within the
stall timeout and all within the stream's deadline; a break is charged to the target
that broke and raised as a GatewayError for the caller to end the stream with.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import attrs
import trio

from adapters import (
    ChatChunk,
    GatewayError,
    GatewayRequest,
    StreamError,
    Timeout,
    UnsupportedCapability,
)

from ._resume import Delivered

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from adapters import TextRequest

    from ..upstream._upstream import Upstream
    from ._request import RequestTrace

__all__ = ["Chunks", "Resume", "StreamStart", "close_stream", "first_chunk"]

log = logging.getLogger("llm_router")


@attrs.define
class StreamStart:
    """A stream up to its first content chunk, with the rest still to read.

    ``exit`` owns the open upstream stream; whoever takes the StreamStart closes it.
    """

    head: list[ChatChunk]
    rest: AsyncIterator[list[ChatChunk]] | None  # None when the stream already ended
    exit: AsyncExitStack


async def first_chunk(
    upstream: Upstream,
    model: str,
    req: GatewayRequest | TextRequest,
    first_token_timeout: float,
    wrap: Callable[[AsyncIterator[list[ChatChunk]]], AsyncIterator[list[ChatChunk]]] | None = None,
) -> StreamStart:
    """Open a stream and read it up to its first content chunk.

    ``wrap``: applied to the upstream's batches first (a resumed stream's splice or
    seam, :mod:`._resume`).

    Raises:
        Timeout: no content within ``first_token_timeout``.
        GatewayError: the upstream refused or broke before any content (StreamError
            too when a regenerated answer diverges from what was delivered).
    """
    head: list[ChatChunk] = []
    rest: AsyncIterator[list[ChatChunk]] | None = None
    async with AsyncExitStack() as attempt:
        with trio.move_on_after(first_token_timeout) as scope:
            chunks: AsyncIterator[list[ChatChunk]]
            chunks = await attempt.enter_async_context(_opened(upstream, model, req))
            if wrap is not None:
                chunks = wrap(chunks)
            rest = chunks
            async for batch in chunks:
                head += batch
                if any(chunk.has_content for chunk in batch):
                    break
            else:
                rest = None  # the whole (content-free) stream is in head
        if scope.cancelled_caught:
            raise Timeout(f"no first token within {first_token_timeout:g}s")
        return StreamStart(head, rest, attempt.pop_all())


def _opened(
    upstream: Upstream, model: str, req: GatewayRequest | TextRequest
) -> AbstractAsyncContextManager[AsyncIterator[list[ChatChunk]]]:
    """The upstream stream answering ``req``: a chat, or a legacy text completion (which
    only HTTP upstreams of the OpenAI family serve)."""
    if isinstance(req, GatewayRequest):
        return upstream.stream(req, model)
    stream_text = getattr(upstream, "stream_text", None)
    if stream_text is None:
        raise UnsupportedCapability(
            f"provider {upstream.name!r} ({upstream.kind}) has no text completions"
        )
    opened: AbstractAsyncContextManager[AsyncIterator[list[ChatChunk]]] = stream_text(req, model)
    return opened


async def close_stream(start: StreamStart) -> None:
    """A stream that lost a race (or was never taken): close it, even while cancelled."""
    await _close(start.exit)


async def _close(exit: AsyncExitStack) -> None:
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        await exit.aclose()


#: Continues a broken stream on another target: given what was delivered and the
#: targets that broke it, a stream opened up to its first new content.
Resume = Callable[[Delivered, frozenset[str]], Awaitable[StreamStart]]


class _DeadlinePassed(StreamError):
    """The stream's deadline passed mid-stream: charged, but not resumed (no time left)."""


class Chunks:
    """The batches of a committed stream, its head first, as an async iterator.

    Args:
        start: The stream, opened up to its first content chunk.
        trace: The request's trace (``target`` names who answers).
        deadline: When the stream must have ended (trio time): ``stream_timeout`` after
            the request began.
        stall_timeout: Seconds allowed between two batches.
        broke: Charges a break to its target (breaker and stats).
        ended: Credits the target whose upstream stream ended complete.
        resume: Continues the answer on another target after a break; None: never.
        resume_max: Resumes allowed for this request.

    Iterating raises StreamError when the upstream stalls or breaks (charged to the
    target) and no other target could continue the answer, or when the stream has not
    ended by its deadline. Close it with :meth:`aclose`.
    """

    def __init__(
        self,
        start: StreamStart,
        trace: RequestTrace,
        deadline: float,
        stall_timeout: float,
        broke: Callable[[str, GatewayError], None],
        ended: Callable[[str], None] = lambda _: None,
        resume: Resume | None = None,
        resume_max: int = 0,
    ) -> None:
        self._head: list[ChatChunk] | None = start.head or None
        self._rest = start.rest
        self._exit = start.exit
        self._trace = trace
        self._deadline = deadline
        self._stall = stall_timeout
        self._broke = broke
        self._ended = ended
        self._resume = resume
        self._resumes_left = resume_max if resume is not None else 0
        self._delivered = Delivered()
        self._broken: set[str] = set()
        self._resumed = False

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> list[ChatChunk]:
        while True:
            if self._head is not None:
                batch, self._head = self._head, None
            elif self._rest is None:
                raise StopAsyncIteration
            else:
                try:
                    batch = await self._read(self._rest)
                except _DeadlinePassed:
                    raise
                except GatewayError as exc:
                    if not await self._resumed_after(exc):
                        raise
                    continue
            if self._resumed:
                batch = self._delivered.restamp(batch)
                if not batch:
                    continue
            self._delivered.note(batch)
            return batch

    async def aclose(self) -> None:
        """Close the upstream stream in use, even while cancelled."""
        await _close(self._exit)

    async def _read(self, rest: AsyncIterator[list[ChatChunk]]) -> list[ChatChunk]:
        # One cancel scope per batch: whichever comes first, the stall or the deadline.
        stall_at = trio.current_time() + self._stall
        with trio.move_on_at(min(stall_at, self._deadline)):
            try:
                return await anext(rest)
            except StopAsyncIteration:
                self._rest = None
                if self._trace.target is not None:
                    self._ended(self._trace.target)
                raise
            except GatewayError as exc:
                self._fail(exc)
                raise
        self._rest = None
        if stall_at < self._deadline:
            stalled = StreamError(f"upstream stream stalled for {self._stall:g}s")
            self._fail(stalled)
            raise stalled
        # The stream's deadline ended the wait: the target had not finished by then.
        silent = trio.current_time() - (stall_at - self._stall)
        late = _DeadlinePassed(
            f"upstream stream stalled for {silent:g}s and did not end by its deadline"
        )
        self._fail(late)
        raise late

    def _fail(self, exc: GatewayError) -> None:
        """A break of the committed stream: charged to the target that broke."""
        self._rest = None
        target = self._trace.target
        exc.upstream = exc.upstream or target
        if target is not None:
            self._broke(target, exc)

    async def _resumed_after(self, exc: GatewayError) -> bool:
        """Continue the answer on another target after ``exc``; False if none could."""
        if self._resume is None or self._resumes_left <= 0 or not self._delivered.resumable:
            return False
        self._resumes_left -= 1
        broken = self._trace.target or ""
        self._broken.add(broken)
        await self.aclose()
        trace = self._trace
        with trio.move_on_at(self._deadline):
            try:
                start = await self._resume(self._delivered, frozenset(self._broken))
            except GatewayError as failure:
                log.warning("stream from %s broke (%s); no target resumed it: %s",
                            broken, exc.message, failure.message)  # fmt: skip
                trace.resumes.append((broken, "failed"))
                return False
            log.info("stream from %s broke (%s); resumed on %s", broken, exc.message,
                     trace.target)  # fmt: skip
            trace.resumes.append((trace.target or "", "resumed"))
            self._exit, self._head, self._rest = start.exit, start.head or None, start.rest
            self._resumed = True
            if start.rest is None and trace.target is not None:
                self._ended(trace.target)  # the whole rest came with its first chunk
            return True
        trace.resumes.append((broken, "failed"))
        return False
