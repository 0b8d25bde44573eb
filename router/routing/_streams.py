"""Streams through the engine: opening one up to its first content chunk, and reading
the rest of a committed one.

A stream is committed to an attempt when its first content chunk arrives; before that,
failures and silence move on unseen (:func:`first_chunk` runs inside an attempt). After
it, :class:`Chunks` hands the client's side every batch as it comes, each within the
stall timeout and all within the stream's deadline; a break is charged to the target
that broke and raised as a GatewayError for the caller to end the stream with.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING

import attrs
import trio

from adapters import ChatChunk, GatewayError, StreamError, Timeout

if TYPE_CHECKING:
    from adapters import GatewayRequest

    from ..upstream._upstream import Upstream
    from ._request import RequestTrace

__all__ = ["Chunks", "StreamStart", "close_stream", "first_chunk"]


@attrs.define
class StreamStart:
    """A stream up to its first content chunk, with the rest still to read.

    ``exit`` owns the open upstream stream; whoever takes the StreamStart closes it.
    """

    head: list[ChatChunk]
    rest: AsyncIterator[list[ChatChunk]] | None  # None when the stream already ended
    exit: AsyncExitStack


async def first_chunk(
    upstream: Upstream, model: str, req: GatewayRequest, first_token_timeout: float
) -> StreamStart:
    """Open a stream and read it up to its first content chunk.

    Raises:
        Timeout: no content within ``first_token_timeout``.
        GatewayError: the upstream refused or broke before any content.
    """
    head: list[ChatChunk] = []
    rest: AsyncIterator[list[ChatChunk]] | None = None
    async with AsyncExitStack() as attempt:
        with trio.move_on_after(first_token_timeout) as scope:
            chunks = await attempt.enter_async_context(upstream.stream(req, model))
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


async def close_stream(start: StreamStart) -> None:
    """A stream that lost a race (or was never taken): close it, even while cancelled."""
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        await start.exit.aclose()


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

    Iterating raises StreamError when the upstream stalls, breaks or has not ended by
    the deadline (a stall too: charged to the target).
    """

    def __init__(
        self,
        start: StreamStart,
        trace: RequestTrace,
        deadline: float,
        stall_timeout: float,
        broke: Callable[[str, GatewayError], None],
        ended: Callable[[str], None] = lambda _: None,
    ) -> None:
        self._head: list[ChatChunk] | None = start.head or None
        self._rest = start.rest
        self._trace = trace
        self._deadline = deadline
        self._stall = stall_timeout
        self._broke = broke
        self._ended = ended

    def __aiter__(self) -> Chunks:
        return self

    async def __anext__(self) -> list[ChatChunk]:
        if self._head is not None:
            head, self._head = self._head, None
            return head
        if self._rest is None:
            raise StopAsyncIteration
        # One cancel scope per batch: whichever comes first, the stall or the deadline.
        stall_at = trio.current_time() + self._stall
        with trio.move_on_at(min(stall_at, self._deadline)):
            try:
                return await anext(self._rest)
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
        else:  # the stream's deadline ended the wait: the target had not finished by then
            silent = trio.current_time() - (stall_at - self._stall)
            stalled = StreamError(
                f"upstream stream stalled for {silent:g}s and did not end by its deadline"
            )
        self._fail(stalled)
        raise stalled

    def _fail(self, exc: GatewayError) -> None:
        """A break of the committed stream: charged to the target that broke."""
        self._rest = None
        target = self._trace.target
        exc.upstream = exc.upstream or target
        if target is not None:
            self._broke(target, exc)
