"""The ``simulated`` provider's upstream: its plans played out on trio's clock, so
tests of timing run on MockClock."""

from __future__ import annotations

import time
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING

import trio

from adapters import Capabilities

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from adapters import (
        ChatChunk,
        EmbeddingRequest,
        EmbeddingResponse,
        GatewayRequest,
        GatewayResponse,
        SimulatedModel,
    )

__all__ = ["SimulatedUpstream"]


class SimulatedUpstream:
    """The ``simulated`` provider: waits out each plan's latency on trio's clock."""

    kind = "simulated"

    def __init__(self, name: str, model: SimulatedModel) -> None:
        self.name = name
        self.model = model

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        plan = self.model.plan(req, model, created=int(time.time()))
        if plan.error is not None:
            await trio.sleep(plan.latency)
            raise plan.error
        await trio.sleep(plan.latency + plan.token_interval * len(plan.tokens))
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
            # Each token is due at its own time from the first, as a real provider
            # sends them: a busy event loop late for one does not delay all the rest.
            due = trio.current_time()
            yield [role, rest[0]]  # the role and the first token go out together
            for chunk in rest[1:]:
                due += plan.token_interval
                await trio.sleep_until(due)
                yield [chunk]

        async with aclosing(chunks()) as iterator:
            yield iterator

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        plan = self.model.embed_plan(req, model)
        await trio.sleep(plan.latency)
        if plan.error is not None:
            raise plan.error
        return plan.response

    async def probe(self) -> None:
        """The simulated provider is always reachable; its failures are per request."""
        await trio.lowlevel.checkpoint()

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # nothing runs in the background

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()
