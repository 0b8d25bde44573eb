"""Embeddings over HTTP: one request, in as many upstream calls as the provider needs.

A provider takes a bounded number of inputs per call (Titan on Bedrock one, Cohere 96,
Gemini 100, OpenAI 2048: the adapter's ``embedding_batch``). A longer request is cut
into parts, sent a few at a time, and their answers joined in order; the first part to
fail cancels the others and its error is the request's. Every part is built before
anything is sent, so a parameter the provider cannot take is refused with no call made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, cast

import attrs
import trio

from adapters import (
    GatewayError,
    UnsupportedCapability,
    join_embeddings,
    request_parts,
)

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from adapters import Embedder, EmbeddingRequest, EmbeddingResponse, UpstreamRequest

    from ._transport import UpstreamResponse

__all__ = ["PARTS_AT_ONCE", "embed_over_http"]

#: Parts of one request in flight at once.
PARTS_AT_ONCE = 8


class Sender(Protocol):
    """What of an HTTP upstream the calls need (it is ``HTTPUpstream``)."""

    name: str
    kind: str

    @property
    def adapter(self) -> object: ...

    async def signed(self, request: UpstreamRequest) -> UpstreamRequest: ...

    async def send_whole(self, request: UpstreamRequest) -> tuple[UpstreamResponse, bytes]: ...


async def embed_over_http(upstream: Sender, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
    """``req``'s vectors from ``model`` at ``upstream``.

    Raises:
        UnsupportedCapability: the provider (or this model of it) has no embeddings,
            or cannot take one of the request's parameters (UnsupportedParameter).
        GatewayError: a call failed (the first failure).
    """
    # A plugin's adapter may have no embeddings at all (AdapterBase says none).
    has = hasattr(upstream.adapter, "embedding_batch")
    adapter = cast("Embedder", upstream.adapter)
    size = adapter.embedding_batch(model) if has else 0
    if size <= 0:
        raise UnsupportedCapability(
            f"provider {upstream.name!r} ({upstream.kind}) has no embeddings",
            upstream=f"{upstream.name}:{model}",
        )
    parts = request_parts(req, size)
    requests = [adapter.build_embedding_request(part, model) for part in parts]

    async def one(index: int) -> EmbeddingResponse:
        response, body = await upstream.send_whole(await upstream.signed(requests[index]))
        return adapter.parse_embedding_response(
            parts[index], model, response.status, response.headers, body
        )

    if len(parts) == 1:
        answer = await one(0)
    else:
        answer = join_embeddings(await _in_order(one, len(parts)))
    # Most providers do not name the model that answered: it is the one asked.
    return answer if answer.model else attrs.evolve(answer, model=model)


async def _in_order(
    call: Callable[[int], Awaitable[EmbeddingResponse]], count: int, at_once: int = PARTS_AT_ONCE
) -> list[EmbeddingResponse]:
    """``call(0) .. call(count - 1)``, at most ``at_once`` running; their results in
    order. The first GatewayError cancels the rest and is raised as it is."""
    results: list[EmbeddingResponse | None] = [None] * count
    failures: list[GatewayError] = []
    limiter = trio.CapacityLimiter(at_once)

    async def run(index: int, nursery: trio.Nursery) -> None:
        async with limiter:
            try:
                results[index] = await call(index)
            except GatewayError as exc:
                failures.append(exc)
                nursery.cancel_scope.cancel()

    async with trio.open_nursery() as nursery:
        for index in range(count):
            nursery.start_soon(run, index, nursery)
    if failures:
        raise failures[0]
    return [r for r in results if r is not None]
