"""One legacy text completion over HTTP: ``POST /v1/completions`` in OpenAI's format.

The body goes to an OpenAI-format target as it came (``model`` replaced) and the answer
comes back as the target gave it: JSON, or its SSE events passed on one by one and
ended with ``data: [DONE]``. Around that, what every request gets: the route (fallback,
balancing, retries, hedges), the key, its rate windows and budget (the worst case held:
prompt plus ``max_tokens`` for each completion), the answer's usage priced and charged
(a stream's from its usage event, which the gateway asks for where the host takes it,
else counted from the streamed text), and the observer. A stream that breaks after its
first event ends with an error event the SDKs raise, never ``[DONE]``; it is not
resumed (a completion's text cannot be re-asked of another model without changing it).
Answers are not cached. The shell (body, key, disconnects, errors in OpenAI's shape) is
:class:`~._exchange.Handler`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import orjson
import trio

from adapters import GatewayError, Usage, text_request_from_wire

from ..routing._request import RequestOptions, RoutedRequest
from ..traffic._tokens import chunk_chars, text_request_tokens, text_tokens
from ._exchange import Exchange, Handler
from ._framing import INTERNAL, SSE_HEADERS
from ._openai_ingress import OpenAIStreamEncoder, parse_json
from ._outcome import failed, note_chunks

if TYPE_CHECKING:
    from adapters import TextRequest, TextResponse

    from ..routing._runtime import Runtime
    from ..routing._streams import Chunks

__all__ = ["TextCompletions"]

error_log = logging.getLogger("llm_router")


class TextCompletions(Handler):
    """Answers ``/v1/completions``: the controls, the engine, the answer as it came."""

    async def answer(self, ex: Exchange, body: bytes, runtime: Runtime) -> None:
        req = text_request_from_wire(parse_json(body))
        node, settings = self.route(ex, req.model, runtime)
        tokens = text_request_tokens(req)
        options = RequestOptions(
            deadline=ex.started + settings.timeout,
            retries=settings.retries,
            first_token_timeout=settings.first_token_timeout,
            headers=ex.scope["headers"],
            tokens=tokens,
            stream_deadline=ex.started + settings.stream_timeout,
        )
        ex.write_end = options.stream_end
        self.controls.admit(ex.key, tokens)
        ex.tokens = tokens
        # No await since admit(): concurrent requests see each other's holds.
        ex.hold = self.controls.reserve(ex.key, node, req)
        routed = RoutedRequest(node, req, ex.trace, options)
        try:
            if req.stream:
                async with runtime.engine.stream_text(routed) as chunks:
                    await self._stream(ex, req, chunks)
            else:
                await self._complete(ex, req, await runtime.engine.complete_text(routed))
        finally:  # cancellation included; nothing here awaits
            if ex.streaming and not ex.charged:
                self._settle_stream(ex, req)  # cut short: what it consumed so far
            elif ex.hold is not None:
                ex.hold.release()  # no answer (a settled hold ignores this)

    async def _complete(self, ex: Exchange, req: TextRequest, resp: TextResponse) -> None:
        trace = ex.trace
        usage = resp.usage if resp.usage is not None else _estimated(req, resp)
        trace.cost_usd = self.controls.settle(ex.key, trace.target, usage, ex.tokens, ex.hold)
        trace.response_model = resp.model
        trace.tokens_in, trace.tokens_out = usage.prompt_tokens, usage.completion_tokens
        trace.finish_reasons = _finishes(resp)
        await ex.answer_json(orjson.dumps(resp.raw))

    async def _stream(self, ex: Exchange, req: TextRequest, chunks: Chunks) -> None:
        """Pass a committed stream on; a break ends it with OpenAI's error event."""
        trace, send = ex.trace, ex.send
        trace.status = 200
        ex.streaming = True
        headers = [*SSE_HEADERS, *ex.headers()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # Each chunk carries its upstream event; the usage event only if the client asked.
        encoder = OpenAIStreamEncoder(req.include_usage)
        try:
            async for batch in chunks:
                data = b"".join([encoder.feed(c) for c in batch])
                if trace.ttft is None:
                    trace.response_model = batch[0].model if batch else None
                ex.usage = note_chunks(trace, batch) or ex.usage
                ex.streamed += chunk_chars(batch)
                await send({"type": "http.response.body", "body": data, "more_body": True})
                if trace.ttft is None:
                    trace.ttft = trio.current_time() - ex.started
            end = encoder.done()
            self._settle_stream(ex, req)
        except GatewayError as exc:
            end = encoder.error(exc)
            failed(trace, exc)
            error_log.warning("stream from %s broke: %s", trace.target, exc.message)
        except Exception as exc:
            error_log.exception("request %s: stream failed", ex.request_id)
            trace.error = type(exc).__name__
            trace.outcome = "internal_error"
            end = encoder.error(INTERNAL)
        trace.outcome = trace.outcome or "ok"  # before the last send: see answer_json
        await ex.send_last(end)

    def _settle_stream(self, ex: Exchange, req: TextRequest) -> None:
        """A stream's cost, charged once whatever way it ended: the usage it reported,
        else the prompt's estimate and the text streamed so far."""
        ex.charged = True
        usage = ex.usage
        if usage is None:
            usage = Usage(text_request_tokens(req, with_output=False), text_tokens(ex.streamed))
        trace = ex.trace
        trace.cost_usd = self.controls.settle(ex.key, trace.target, usage, ex.tokens, ex.hold)


def _estimated(req: TextRequest, resp: TextResponse) -> Usage:
    """The usage of an answer that reported none: the prompt's estimate and its text."""
    chars = sum(
        len(str(c.get("text") or "")) for c in resp.raw.get("choices") or () if isinstance(c, dict)
    )
    return Usage(text_request_tokens(req, with_output=False), text_tokens(chars))


def _finishes(resp: TextResponse) -> tuple[str, ...]:
    return tuple(
        str(c["finish_reason"])
        for c in resp.raw.get("choices") or ()
        if isinstance(c, dict) and c.get("finish_reason")
    )
