"""One chat request over HTTP, on either ingress (OpenAI or Anthropic format).

Decode the body, find the route in the rules snapshot, ask the traffic controls (key,
rate windows, cache), hand the engine one
:class:`~router.routing._request.RoutedRequest`, and frame its answer in the client's
format: JSON, or SSE as the engine's stream yields batches. The shell around it (the
body read, the key, disconnects, errors, the observer) is :class:`~._exchange.Handler`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio

from adapters import GatewayError, GatewayResponse
from rules import schema_check

from ..routing._request import RequestOptions, RoutedRequest
from ..traffic._cache import assemble, replay
from ..traffic._content import (
    AnswerScreen,
    answer_text,
    request_text,
    screen_answer,
    screen_request,
)
from ..traffic._tokens import answer_usage, chunk_chars, request_tokens, stream_usage
from ._exchange import Exchange, Handler, bypasses_cache
from ._framing import INTERNAL, SSE_HEADERS
from ._outcome import failed, note_chunks

if TYPE_CHECKING:
    from adapters import ChatChunk, GatewayRequest

    from ..routing._runtime import Runtime
    from ..routing._streams import Chunks

__all__ = ["Chat"]

error_log = logging.getLogger("llm_router")


class Chat(Handler):
    """Answers chat requests: the controls, the engine, and the framing of the answer."""

    async def answer(self, ex: Exchange, body: bytes, runtime: Runtime) -> None:
        scope, trace, key = ex.scope, ex.trace, ex.key
        req = ex.codec.decode(body, ex.scope["headers"])
        node, settings = self.route(ex, req.model, runtime)
        if runtime.table.config.server.log_bodies:
            trace.prompt = request_text(req)  # redacted as the access log writes it
        ex.hooks = settings.hooks
        req = screen_request(settings.hooks, req)  # before the cache key and any upstream
        tokens = request_tokens(req)
        options = RequestOptions(
            deadline=ex.started + settings.timeout,
            retries=settings.retries,
            first_token_timeout=settings.first_token_timeout,
            headers=scope["headers"],
            tokens=tokens,
            resume_max=settings.resume_max,
            stream_deadline=ex.started + settings.stream_timeout,
            # The route's validation, else the JSON Schema the client asked for.
            check=settings.check or schema_check(req.extra.get("response_format")),
        )
        ex.write_end = options.stream_end
        bypass = bypasses_cache(scope["headers"])
        lease = max(settings.timeout, settings.stream_timeout) + 60
        entry, hit, hold = await self.controls.enter(
            key, tokens, settings.cache, req.model, req, bypass, node, lease
        )
        self.note_cache(ex, settings.cache, entry, hit is not None)
        if isinstance(hit, GatewayResponse):
            await _replay(ex, req, hit)
            return
        ex.tokens = tokens
        ex.hold = hold
        routed = RoutedRequest(node, req, trace, options)
        try:
            if req.stream:
                async with runtime.engine.stream(routed) as chunks:
                    await self._stream(ex, req, chunks)
            else:
                await self._complete(ex, req, await runtime.engine.complete(routed))
        finally:  # cancellation included; nothing here awaits
            if ex.streaming and not ex.charged:
                self._settle_stream(ex, req, None)  # cut short: what it consumed so far
            elif ex.hold is not None:
                ex.hold.release()  # no answer (a settled hold ignores this)

    async def _complete(self, ex: Exchange, req: GatewayRequest, resp: GatewayResponse) -> None:
        trace = ex.trace
        usage = answer_usage(req, resp)  # estimated from the text when the upstream gave none
        trace.usage = usage
        trace.cost_usd = self.controls.settle(ex.key, trace.target, usage, ex.tokens, ex.hold)
        resp = screen_answer(ex.hooks, resp)  # raises ContentBlocked: a 400, no answer
        if trace.prompt is not None:
            trace.answer = answer_text(resp)
        self.controls.store(ex.cache_entry, ex.cache, resp)
        body = ex.codec.response(resp, req)
        trace.response_model = resp.model
        if resp.usage is not None:
            trace.tokens_in = resp.usage.prompt_tokens
            trace.tokens_out = resp.usage.completion_tokens
        trace.finish_reasons = tuple(c.finish_reason for c in resp.choices if c.finish_reason)
        await ex.answer_json(body)

    async def _stream(self, ex: Exchange, req: GatewayRequest, chunks: Chunks) -> None:
        """Forward a committed stream; a break ends it with the format's error event."""
        trace, send = ex.trace, ex.send
        trace.status = 200
        headers = [*SSE_HEADERS, *ex.headers()]
        ex.streaming = True
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        encoder = ex.codec.stream(req)
        # A stream is kept for the cache only whole: its chunks are gathered as they go.
        kept: list[ChatChunk] | None = [] if ex.cache_entry is not None else None
        screen = AnswerScreen(ex.hooks)
        said: list[str] | None = [] if trace.prompt is not None else None
        try:
            async for upstream_batch in chunks:
                batch = screen.feed(upstream_batch) if ex.hooks else upstream_batch
                if not batch:
                    continue  # all held back by the hooks for now
                body = b"".join([encoder.feed(c) for c in batch])
                if trace.ttft is None:
                    trace.response_model = batch[0].model if batch else None
                ex.usage = note_chunks(trace, batch) or ex.usage
                ex.streamed += chunk_chars(batch)
                if kept is not None:
                    kept += batch
                if said is not None:
                    said += [c.delta.content or "" for chunk in batch for c in chunk.choices]
                await send({"type": "http.response.body", "body": body, "more_body": True})
                if trace.ttft is None:
                    trace.ttft = trio.current_time() - ex.started
            held = screen.close()
            if kept is not None:
                kept += held
            if said is not None:
                said += [c.delta.content or "" for chunk in held for c in chunk.choices]
            ex.streamed += chunk_chars(held)
            end = b"".join([encoder.feed(c) for c in held]) + encoder.done()
            self._settle_stream(ex, req, kept)
        except GatewayError as exc:
            end = encoder.error(exc)
            failed(trace, exc)
            error_log.warning("stream from %s broke: %s", trace.target, exc.message)
        except Exception as exc:
            error_log.exception("request %s: stream failed", ex.request_id)
            trace.error = type(exc).__name__
            trace.outcome = "internal_error"
            end = encoder.error(INTERNAL)
        trace.outcome = trace.outcome or "ok"  # before the last send, as above
        if said is not None:
            trace.answer = "".join(said)
        await ex.send_last(end)

    def _settle_stream(
        self, ex: Exchange, req: GatewayRequest, kept: list[ChatChunk] | None
    ) -> None:
        """A stream's cost, charged once whatever way it ended (the usage it reported,
        else counted from the prompt and the streamed text); a whole one goes into the
        cache if it has one."""
        trace = ex.trace
        ex.charged = True
        trace.usage = usage = ex.usage if ex.usage is not None else stream_usage(req, ex.streamed)
        trace.cost_usd = self.controls.settle(ex.key, trace.target, usage, ex.tokens, ex.hold)
        if kept is not None and (whole := assemble(kept)) is not None:
            self.controls.store(ex.cache_entry, ex.cache, whole)


async def _replay(ex: Exchange, req: GatewayRequest, resp: GatewayResponse) -> None:
    """A cached answer, as JSON or replayed as a stream; through the route's hooks
    again (stored after them, but the hooks may have changed since)."""
    resp = screen_answer(ex.hooks, resp)
    trace = ex.trace
    if trace.prompt is not None:
        trace.answer = answer_text(resp)
    trace.response_model = resp.model
    if not req.stream:
        await ex.answer_json(ex.codec.response(resp, req))
        return
    trace.status = 200
    encoder = ex.codec.stream(req)
    body = b"".join([encoder.feed(c) for c in replay(resp)]) + encoder.done()
    headers = [*SSE_HEADERS, *ex.headers()]
    await ex.send({"type": "http.response.start", "status": 200, "headers": headers})
    trace.outcome = "ok"
    await ex.send_last(body)
