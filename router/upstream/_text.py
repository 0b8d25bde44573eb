"""Legacy text completions (``/v1/completions``) over HTTP: the client's body to an
OpenAI-format target and its answer back, as they came (see
:mod:`adapters._text_completions`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from adapters import TextCompleter, UnsupportedCapability, text_response_from_wire
from adapters._base import upstream_json

if TYPE_CHECKING:
    from adapters import TextRequest, TextResponse, UpstreamRequest

    from ._transport import UpstreamResponse

__all__ = ["complete_text", "text_request"]


class Sender(Protocol):
    """What of an HTTP upstream the calls need (it is ``HTTPUpstream``)."""

    name: str
    kind: str

    @property
    def adapter(self) -> object: ...

    async def signed(self, request: UpstreamRequest) -> UpstreamRequest: ...

    async def send_whole(self, request: UpstreamRequest) -> tuple[UpstreamResponse, bytes]: ...


def text_request(upstream: Sender, req: TextRequest, model: str) -> UpstreamRequest:
    """The unsigned upstream request for ``req`` on ``model``.

    Raises:
        UnsupportedCapability: the kind (or this host of it) has no text completions;
            routing moves on to a target that has.
    """
    adapter = upstream.adapter
    if not isinstance(adapter, TextCompleter):
        raise UnsupportedCapability(
            f"provider {upstream.name!r} ({upstream.kind}) has no text completions "
            "(/v1/completions serves OpenAI-format targets only)",
            upstream=f"{upstream.name}:{model}",
        )
    return adapter.text_completion_request(req, model)


async def complete_text(upstream: Sender, req: TextRequest, model: str) -> TextResponse:
    """A whole answer to ``req`` from ``model`` at ``upstream``, naming its model.

    Raises:
        UnsupportedCapability: as :func:`text_request`.
        GatewayError: the call failed, or its answer is not a text completion.
    """
    request = await upstream.signed(text_request(upstream, req, model))
    _, body = await upstream.send_whole(request)
    return text_response_from_wire(upstream_json(body)).with_model(model)
