"""The kinds of attempt a request makes, as the engine hands them to its nodes: what
each attempt calls, what it needs of a target, and what it counts (pure helpers around
:class:`~router.routing._attempt.Call`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

import trio

from adapters import (
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayRequest,
    GatewayResponse,
    TextResponse,
    Timeout,
)

from ..traffic._tokens import embedding_tokens, request_tokens, text_request_tokens
from ._attempt import Call

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..upstream._upstream import Upstream
    from ._request import RoutedRequest

__all__ = [
    "input_tokens",
    "nothing",
    "text_tokens_used",
    "total_tokens",
    "attempt_kind",
    "within",
]

T = TypeVar("T")


def within(
    seconds: float, attempt: Callable[[Upstream, str], Awaitable[T]]
) -> Callable[[Upstream, str], Awaitable[T]]:
    """``attempt``, moving on (Timeout) when it has no answer within ``seconds``, as a
    silent stream does: for a candidate that has others after it."""

    async def call(upstream: Upstream, model: str) -> T:
        with trio.move_on_after(seconds):
            return await attempt(upstream, model)
        raise Timeout(f"no answer within {seconds:g}s")

    return call


def attempt_kind(
    routed: RoutedRequest[Any],
    attempt: Callable[[Upstream, str], Awaitable[T]],
    discard: Callable[[T], Awaitable[None]],
    used: Callable[[T], int | None] = lambda _: None,
    *,
    verdict_later: bool = False,
    final: Callable[[Upstream, str], Awaitable[T]] | None = None,
    exclude: frozenset[str] = frozenset(),
) -> Call[T]:
    """One kind of attempt for this request, with what it needs of a target."""
    req = routed.request
    chat = isinstance(req, GatewayRequest)
    return Call(
        attempt,
        discard,
        vision=chat and req.needs_vision,
        tools=chat and req.needs_tools,
        tokens=_request_tokens(routed),
        used=used,
        verdict_later=verdict_later,
        final=final,
        exclude=exclude,
    )


def _request_tokens(routed: RoutedRequest[Any]) -> int:
    """Tokens a request may use, before the upstream says (rate limits need it first)."""
    if routed.options.tokens is not None:
        return routed.options.tokens  # the app estimated it already, for the key's window
    req = routed.request
    if isinstance(req, GatewayRequest):
        return request_tokens(req)
    return embedding_tokens(req) if isinstance(req, EmbeddingRequest) else text_request_tokens(req)


def total_tokens(resp: GatewayResponse) -> int | None:
    return resp.usage.total_tokens if resp.usage is not None else None


def text_tokens_used(resp: TextResponse) -> int | None:
    return resp.usage.total_tokens if resp.usage is not None else None


def input_tokens(resp: EmbeddingResponse) -> int | None:
    return resp.usage.prompt_tokens if resp.usage is not None else None


async def nothing(value: object) -> None:
    await trio.lowlevel.checkpoint()
