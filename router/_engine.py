"""The engine: runs a route's policy tree for one request.

It walks the compiled nodes of :mod:`rules` (fallback, balance, split, leaf) and makes
attempts on upstreams. A failure moves on to the next candidate when the node's ``on``
set names its reason; anything else (a bad request, a content-policy refusal) goes
straight back to the client. Streams are committed to an attempt when its first content
chunk arrives: before that, a failure or a silent upstream (``first_token_timeout``)
moves on transparently; after it, the stream is the client's and a break ends it with
an error event.

What this module does not do yet (the routing-rules issue): retries with backoff,
hedging, circuit breakers, and the latency / least-connections strategies, which run
as round robin for now.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import TypeVar

import attrs
import trio

from adapters import (
    AllTargetsFailed,
    ChatChunk,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    NoHealthyTarget,
    StreamError,
    Timeout,
)
from rules import Balance, Fallback, Leaf, Node, Split

from ._upstream import Upstream

__all__ = ["Engine", "RequestTrace", "StreamStart"]

T = TypeVar("T")
Attempt = Callable[[Upstream, str], Awaitable[T]]

# Failures a balance or split node moves on from (fallback nodes have their own set).
_DEFAULT_ON = frozenset(
    {"timeout", "network", "server_error", "rate_limited", "overloaded", "context_length"}
)


@attrs.define
class RequestTrace:
    """What happened to one request, for its response headers and error body."""

    route: str
    attempts: int = 0
    status: int = 0  # the HTTP status sent to the client, 0 until one is
    target: str | None = None
    errors: list[GatewayError] = attrs.field(factory=list)


@attrs.define
class StreamStart:
    """A committed stream: the chunks read so far (up to the first content) and the rest."""

    head: list[ChatChunk]
    rest: AsyncIterator[list[ChatChunk]] | None  # None when the stream already ended


class Engine:
    """Executes policy trees against upstreams.

    Args:
        upstreams: Provider name -> its upstream.
        stall_timeout: Seconds a committed stream may go silent between chunks.
    """

    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        *,
        stall_timeout: float = 30.0,
        rng: random.Random | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.stall_timeout = stall_timeout
        self._rng = rng or random.Random()
        self._round_robin: dict[str, itertools.count[int]] = {}

    async def complete(
        self, node: Node, req: GatewayRequest, trace: RequestTrace
    ) -> GatewayResponse:
        """A whole answer from the first candidate that gives one.

        Raises:
            GatewayError: the last error, or AllTargetsFailed naming every attempt.
        """

        async def attempt(upstream: Upstream, model: str) -> GatewayResponse:
            return await upstream.complete(req, model)

        return await self._walk(node, attempt, trace)

    async def open_stream(
        self,
        node: Node,
        req: GatewayRequest,
        trace: RequestTrace,
        stack: AsyncExitStack,
        first_token_timeout: float,
    ) -> StreamStart:
        """Open a stream on the first candidate to send content; ``stack`` owns it after.

        A candidate that sends no content within ``first_token_timeout`` seconds is
        abandoned for the next one.

        Raises:
            GatewayError: as :meth:`complete`, when no candidate sent a first chunk.
        """

        async def attempt(upstream: Upstream, model: str) -> StreamStart:
            return await self._stream_attempt(upstream, model, req, stack, first_token_timeout)

        return await self._walk(node, attempt, trace)

    async def next_batch(self, rest: AsyncIterator[list[ChatChunk]]) -> list[ChatChunk] | None:
        """The next chunks of a committed stream (those that arrived together), None at its end.

        Raises:
            StreamError: the upstream went silent for ``stall_timeout``, or broke.
        """
        with trio.move_on_after(self.stall_timeout):
            try:
                return await anext(rest)
            except StopAsyncIteration:
                return None
        raise StreamError(f"upstream stream stalled for {self.stall_timeout:g}s")

    # -- policy walk --------------------------------------------------------------------

    async def _walk(self, node: Node, attempt: Attempt[T], trace: RequestTrace) -> T:
        if isinstance(node, Leaf):
            return await self._attempt(node, attempt, trace)
        on = node.on if isinstance(node, Fallback) else _DEFAULT_ON
        errors: list[GatewayError] = []
        for child in self._candidates(node):
            try:
                return await self._walk(child, attempt, trace)
            except GatewayError as exc:
                errors.append(exc)
                if not _falls_back(exc, on):
                    raise
        if len(errors) == 1:
            raise errors[0]
        raise AllTargetsFailed(tuple(_flatten(errors)))

    async def _attempt(self, leaf: Leaf, attempt: Attempt[T], trace: RequestTrace) -> T:
        target = str(leaf.target)
        upstream = self.upstreams.get(leaf.target.provider)
        if upstream is None:  # the rules were checked; only a bug gets here
            raise NoHealthyTarget(f"no upstream for {target}", upstream=target)
        trace.attempts += 1
        try:
            result = await attempt(upstream, leaf.target.model)
        except GatewayError as exc:
            exc.upstream = exc.upstream or target
            trace.errors.append(exc)
            raise
        trace.target = target
        return result

    def _candidates(self, node: Fallback | Balance | Split) -> Sequence[Node]:
        """The children in the order this node tries them."""
        children = node.children
        if isinstance(node, Fallback):
            return children
        if isinstance(node, Split):
            # Sticky arms come with the routing-rules issue; a random arm by weight now.
            return self._rng.choices(children, weights=node.weights, k=1)
        if node.strategy == "weighted":
            return _weighted_order(children, node.weights, self._rng)
        counter = self._round_robin.setdefault(node.name, itertools.count())
        start = next(counter) % len(children)
        return children[start:] + children[:start]

    async def _stream_attempt(
        self,
        upstream: Upstream,
        model: str,
        req: GatewayRequest,
        stack: AsyncExitStack,
        first_token_timeout: float,
    ) -> StreamStart:
        head: list[ChatChunk] = []
        rest: AsyncIterator[list[ChatChunk]] | None = None
        async with AsyncExitStack() as attempt_stack:
            with trio.move_on_after(first_token_timeout) as scope:
                chunks = await attempt_stack.enter_async_context(upstream.stream(req, model))
                rest = chunks
                async for batch in chunks:
                    head += batch
                    if any(chunk.has_content for chunk in batch):
                        break
                else:
                    rest = None  # the whole (content-free) stream is in head
            if scope.cancelled_caught:
                raise Timeout(f"no first token within {first_token_timeout:g}s")
            committed = attempt_stack.pop_all()
        await stack.enter_async_context(committed)
        return StreamStart(head, rest)


def _falls_back(exc: GatewayError, on: frozenset[str]) -> bool:
    if isinstance(exc, AllTargetsFailed | NoHealthyTarget):
        return True
    return exc.fallback_reason is not None and exc.fallback_reason in on


def _flatten(errors: list[GatewayError]) -> list[GatewayError]:
    out: list[GatewayError] = []
    for e in errors:
        out.extend(e.attempts if isinstance(e, AllTargetsFailed) else (e,))
    return out


def _weighted_order(
    children: tuple[Node, ...], weights: tuple[float, ...], rng: random.Random
) -> list[Node]:
    """A weighted random order: each place drawn by weight from what is left."""
    pool = list(zip(children, weights, strict=True))
    order: list[Node] = []
    while pool:
        i = rng.choices(range(len(pool)), weights=[w for _, w in pool], k=1)[0]
        order.append(pool.pop(i)[0])
    return order
