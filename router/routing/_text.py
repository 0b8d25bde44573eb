"""A legacy text completion's attempt on one target: only HTTP upstreams of the OpenAI
family serve ``/v1/completions``; any other is a target without the capability, which
routing moves on from."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters import UnsupportedCapability

if TYPE_CHECKING:
    from adapters import TextRequest, TextResponse

    from ..upstream._upstream import Upstream

__all__ = ["complete_text"]


async def complete_text(upstream: Upstream, req: TextRequest, model: str) -> TextResponse:
    """``req``'s whole answer from ``model`` at ``upstream``.

    Raises:
        UnsupportedCapability: the upstream has no text completions.
        GatewayError: the attempt failed.
    """
    call = getattr(upstream, "complete_text", None)
    if call is None:
        raise UnsupportedCapability(
            f"provider {upstream.name!r} ({upstream.kind}) has no text completions"
        )
    answer: TextResponse = await call(req, model)
    return answer
