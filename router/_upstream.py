"""Upstreams: one per configured provider, answering in unified types.

:class:`HTTPUpstream` joins a pure adapter to a transport; :class:`SimulatedUpstream`
plays the built-in simulated provider's plans with trio's clock (so tests of timing run
on MockClock). The engine sees only the :class:`Upstream` interface.
"""

from __future__ import annotations

import time
from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Protocol

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from adapters import (
        ChatChunk,
        GatewayRequest,
        GatewayResponse,
        HTTPAdapter,
        SimulatedModel,
    )

    from ._transport import Transport

__all__ = ["HTTPUpstream", "SimulatedUpstream", "Upstream"]


class Upstream(Protocol):
    name: str
    kind: str

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        """One non-streamed attempt. Raises GatewayError."""
        ...

    def stream(
        self, req: GatewayRequest, model: str
    ) -> AbstractAsyncContextManager[AsyncIterator[list[ChatChunk]]]:
        """One streamed attempt; its chunks are readable while the context is open.

        Chunks come in batches, as they arrived together, so that the client gets them
        in one write. Raises GatewayError on entry (the upstream refused) or while
        iterating.
        """
        ...

    async def aclose(self) -> None: ...


class HTTPUpstream:
    def __init__(self, name: str, kind: str, adapter: HTTPAdapter, transport: Transport) -> None:
        self.name = name
        self.kind = kind
        self.adapter = adapter
        self.transport = transport

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        if req.stream:
            req = attrs.evolve(req, stream=False, include_usage=False)
        upstream_request = self.adapter.build_request(req, model)
        async with self.transport.request(upstream_request) as response:
            body = await response.aread()
        if 200 <= response.status < 300:
            return self.adapter.parse_response(response.status, response.headers, body)
        raise self.adapter.parse_error(response.status, response.headers, body)

    @asynccontextmanager
    async def stream(
        self, req: GatewayRequest, model: str
    ) -> AsyncIterator[AsyncIterator[list[ChatChunk]]]:
        upstream_request = self.adapter.build_request(req, model)
        async with self.transport.request(upstream_request) as response:
            if not 200 <= response.status < 300:
                body = await response.aread()
                raise self.adapter.parse_error(response.status, response.headers, body)
            decoder = self.adapter.stream_decoder()

            async def chunks() -> AsyncGenerator[list[ChatChunk]]:
                async for data in response.aiter_bytes():
                    if batch := decoder.feed(data):
                        yield batch
                if batch := decoder.close():
                    yield batch

            async with aclosing(chunks()) as iterator:
                yield iterator

    async def aclose(self) -> None:
        await self.transport.aclose()


class SimulatedUpstream:
    """The ``simulated`` provider: waits out each plan's latency on trio's clock."""

    kind = "simulated"

    def __init__(self, name: str, model: SimulatedModel) -> None:
        self.name = name
        self.model = model

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        plan = self.model.plan(req, model, created=int(time.time()))
        await trio.sleep(plan.latency)
        if plan.error is not None:
            raise plan.error
        await trio.sleep(plan.token_interval * len(plan.tokens))
        return plan.response()

    @asynccontextmanager
    async def stream(
        self, req: GatewayRequest, model: str
    ) -> AsyncIterator[AsyncIterator[list[ChatChunk]]]:
        plan = self.model.plan(req, model, created=int(time.time()))
        await trio.sleep(plan.latency)
        if plan.error is not None:
            raise plan.error

        async def chunks() -> AsyncGenerator[list[ChatChunk]]:
            role, *rest = plan.chunks(req.include_usage)
            yield [role, rest[0]]  # the role and the first token go out together
            for chunk in rest[1:]:
                await trio.sleep(plan.token_interval)
                yield [chunk]

        async with aclosing(chunks()) as iterator:
            yield iterator

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
