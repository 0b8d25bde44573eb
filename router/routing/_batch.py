"""Embeddings batching: concurrent small requests to one target share one upstream call.

A route with ``batch = { max = 64, wait = "5ms" }`` sends each embeddings attempt here.
The first request to a target opens a batch and waits up to ``wait`` for others with
the same parameters (model, dimensions, user, text or tokens, and any other parameter);
they join it until it holds ``max`` inputs, when it goes at once. One upstream call
carries all their inputs; its answer is split back in order, each request getting its
own vectors and its share of the tokens (the provider's count per input where it has
one, else the reported total in proportion to each request's estimate). A failure
fails every member with the same error, each a copy of its own.

The call runs in a task of :meth:`EmbeddingBatcher.run`'s nursery (the daemon's), not
in a member's: a member that gives up (its client left, its deadline passed) stops
waiting, and the call goes on for the others; when the last member gives up, the call
is cancelled. Until :meth:`~EmbeddingBatcher.run` runs, or for a request of ``max``
inputs or more, every request makes its own call.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Hashable
from typing import TYPE_CHECKING

import attrs
import orjson
import trio

from adapters import (
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayError,
    ProviderInternalError,
    split_embeddings,
)

from ..traffic._tokens import embedding_tokens

if TYPE_CHECKING:
    from rules import BatchConfig

    from ..upstream._upstream import Upstream

__all__ = ["BatchStats", "EmbeddingBatcher"]

log = logging.getLogger("llm_router")


@attrs.define
class BatchStats:
    """Counters for ``/admin/status``: combined calls made, and what they carried."""

    calls: int = 0
    requests: int = 0
    inputs: int = 0


@attrs.define(eq=False)
class _Batch:
    """Requests waiting for one combined call, and its outcome."""

    key: Hashable
    requests: list[EmbeddingRequest] = attrs.field(factory=list)
    weights: list[int] = attrs.field(factory=list)
    size: int = 0  # inputs so far
    waiting: int = 0  # members still waiting for the answer
    full: trio.Event = attrs.field(factory=trio.Event)  # send now, do not wait on
    done: trio.Event = attrs.field(factory=trio.Event)
    call: trio.CancelScope | None = None  # the upstream call, once it started
    answers: list[EmbeddingResponse] | None = None
    error: GatewayError | None = None

    def join(self, req: EmbeddingRequest) -> int:
        """Add ``req``; its place in the batch."""
        self.requests.append(req)
        self.weights.append(embedding_tokens(req))
        self.size += len(req.inputs)
        self.waiting += 1
        return len(self.requests) - 1

    def leave(self) -> None:
        """A member stopped waiting; the last one out cancels a call nobody awaits."""
        self.waiting -= 1
        if self.waiting == 0 and self.call is not None and not self.done.is_set():
            self.call.cancel()

    def combined(self) -> EmbeddingRequest:
        """One request with every member's inputs, in the order they joined."""
        first = self.requests[0]
        inputs = tuple(i for req in self.requests for i in req.inputs)
        return attrs.evolve(first, inputs=inputs)

    def answer(self, place: int) -> EmbeddingResponse:
        """The member's share of the answer. Raises (a copy of) the batch's failure."""
        if self.answers is None:
            raise copy.copy(self.error or _CANCELLED)
        return self.answers[place]


#: What a member would get from a call that never finished (the daemon is stopping).
_CANCELLED = ProviderInternalError("the combined embeddings call was cancelled")


class EmbeddingBatcher:
    """Combines embeddings requests per target and parameters; runs their calls."""

    def __init__(self) -> None:
        self._nursery: trio.Nursery | None = None
        self._open: dict[Hashable, _Batch] = {}
        self.stats = BatchStats()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the combined calls; until cancelled (the daemon stops)."""
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            task_status.started()
            try:
                await trio.sleep_forever()
            finally:
                self._nursery = None

    async def embed(
        self, upstream: Upstream, model: str, req: EmbeddingRequest, config: BatchConfig
    ) -> EmbeddingResponse:
        """``req``'s answer from ``model`` at ``upstream``, in a combined call if
        others come within ``config.wait``.

        Raises:
            GatewayError: the call failed (every member gets the same failure).
        """
        nursery = self._nursery
        if nursery is None or len(req.inputs) >= config.max:
            return await upstream.embed(req, model)
        key = _key(upstream, model, req, config)
        batch = self._open.get(key)
        if batch is None or batch.size + len(req.inputs) > config.max:
            if batch is not None:
                self._close(batch)  # no room for this one: what it holds goes now
            batch = self._open[key] = _Batch(key)
            nursery.start_soon(self._send, batch, upstream, model, config.wait)
        place = batch.join(req)
        if batch.size >= config.max:
            self._close(batch)
        try:
            await batch.done.wait()
        finally:
            batch.leave()
        return batch.answer(place)

    def _close(self, batch: _Batch) -> None:
        """No one else joins ``batch``; it is sent now."""
        if self._open.get(batch.key) is batch:
            del self._open[batch.key]
        batch.full.set()

    async def _send(self, batch: _Batch, upstream: Upstream, model: str, wait: float) -> None:
        try:
            with trio.move_on_after(wait):
                await batch.full.wait()
            self._close(batch)
            if batch.waiting == 0:
                return  # every member gave up before it was sent
            combined = batch.combined()
            self.stats.calls += 1
            self.stats.requests += len(batch.requests)
            self.stats.inputs += batch.size
            with trio.CancelScope() as batch.call:
                try:
                    answer = await upstream.embed(combined, model)
                    counts = [len(req.inputs) for req in batch.requests]
                    batch.answers = split_embeddings(answer, counts, batch.weights)
                except GatewayError as exc:
                    batch.error = exc
        except Exception as exc:  # a bug: its members fail, the daemon does not
            log.error("combined embeddings call failed: %s", type(exc).__name__, exc_info=exc)
            batch.error = GatewayError("internal error in the router; the log has the details")
        finally:
            batch.done.set()


def _key(upstream: Upstream, model: str, req: EmbeddingRequest, config: BatchConfig) -> Hashable:
    """What requests must share to share a call: the target and every parameter."""
    extra = orjson.dumps(dict(req.extra), option=orjson.OPT_SORT_KEYS) if req.extra else b""
    return (
        upstream,
        model,
        req.dimensions,
        req.user,
        req.token_input,
        extra,
        config.max,
        config.wait,
    )
