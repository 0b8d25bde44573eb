"""One embeddings request over HTTP: ``POST /v1/embeddings`` in OpenAI's format.

Decode the body, find the route, ask the traffic controls (key, rate windows and
budget, counted from the inputs; the route's cache), hand the engine the request, and
write its vectors as the client asked (floats, or base64 as the official SDKs ask by
default). The shell around it (body, key, disconnects, errors, the observer) is
:class:`~._exchange.Handler`, as for chat; errors are in OpenAI's shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs
import orjson

from adapters import (
    EmbeddingResponse,
    Usage,
    embedding_request_from_wire,
    embedding_response_to_wire,
)

from ..routing._request import RequestOptions, RoutedRequest
from ..traffic._content import request_text, screen_embeddings
from ..traffic._tokens import embedding_tokens
from ._exchange import Exchange, Handler, bypasses_cache
from ._openai_ingress import parse_json

if TYPE_CHECKING:
    from adapters import EmbeddingRequest

    from ..routing._runtime import Runtime

__all__ = ["Embeddings"]


class Embeddings(Handler):
    """Answers embeddings requests: the controls, the engine, the answer's encoding."""

    async def answer(self, ex: Exchange, body: bytes, runtime: Runtime) -> None:
        req = embedding_request_from_wire(parse_json(body))
        node, settings = self.route(ex, req.model, runtime)
        if runtime.table.config.server.log_bodies:
            ex.trace.prompt = request_text(req)  # redacted as the access log writes it
        req = screen_embeddings(settings.hooks, req)
        tokens = embedding_tokens(req)
        options = RequestOptions(
            deadline=ex.started + settings.timeout,
            retries=settings.retries,
            first_token_timeout=settings.first_token_timeout,
            headers=ex.scope["headers"],
            tokens=tokens,
            batch=settings.batch,
        )
        # A large answer to a client that reads slowly is held to the route's bound.
        ex.write_end = ex.started + settings.stream_timeout
        bypass = bypasses_cache(ex.scope["headers"])
        lease = max(settings.timeout, settings.stream_timeout) + 60
        entry, hit, hold = await self.controls.enter(
            ex.key, tokens, settings.cache, req.model, req, bypass, node, lease
        )
        self.note_cache(ex, settings.cache, entry, hit is not None)
        if isinstance(hit, EmbeddingResponse):
            await _answer(ex, req, hit)
            return
        ex.tokens = tokens
        ex.hold = hold
        try:
            resp = await runtime.engine.embed(RoutedRequest(node, req, ex.trace, options))
            if resp.usage is None:  # the provider does not count (Gemini): our estimate
                resp = attrs.evolve(resp, usage=Usage(tokens))
            ex.trace.usage = resp.usage
            ex.trace.cost_usd = self.controls.settle(
                ex.key, ex.trace.target, resp.usage, tokens, ex.hold
            )
            self.controls.store(ex.cache_entry, ex.cache, resp)
            await _answer(ex, req, resp)
        finally:  # cancellation included; nothing here awaits
            if ex.hold is not None:
                ex.hold.release()  # no answer (a settled hold ignores this)


async def _answer(ex: Exchange, req: EmbeddingRequest, resp: EmbeddingResponse) -> None:
    """The vectors in the encoding the client asked for."""
    trace = ex.trace
    trace.response_model = resp.model
    if resp.usage is not None:
        trace.tokens_in, trace.tokens_out = resp.usage.prompt_tokens, 0
    await ex.answer_json(orjson.dumps(embedding_response_to_wire(resp, req.encoding_format)))
