"""One chat request over HTTP, on either ingress (OpenAI or Anthropic format).

Read the body (bounded by ``server.max_body``), decode it, find the route in the rules
snapshot, ask the traffic controls (key, rate windows, cache), hand the engine one
:class:`~router.routing._request.RoutedRequest`, and frame its answer in the client's
format: JSON, or SSE as the engine's stream yields batches. A sibling task watches
``receive()`` for ``http.disconnect`` (hypercorn never cancels the app itself) and
cancels the request's scope, which cancels every upstream attempt.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

import attrs
import trio

from adapters import (
    AllTargetsFailed,
    GatewayError,
    InvalidRequest,
    NoHealthyTarget,
    NotFound,
    RateLimitExceeded,
    Timeout,
    Usage,
)
from rules import MAX_MODEL_NAME, RouteCacheConfig, model_problem

from ..routing._request import RequestOptions, RequestTrace, RoutedRequest
from ..traffic._cache import assemble, replay
from ..traffic._keys import ClientKey, Forbidden
from ..traffic._tokens import request_tokens
from ._framing import (
    INTERNAL,
    JSON,
    SSE_HEADERS,
    ClientGone,
    Sending,
    make_request_id,
    read_body,
    send_error,
    send_internal_error,
    trace_headers,
)
from ._observer import RequestFacts
from ._openai_ingress import Ingress

if TYPE_CHECKING:
    from adapters import ChatChunk, GatewayRequest, GatewayResponse

    from ..routing._runtime import Runtime
    from ..routing._streams import Chunks
    from ..traffic._controls import Controls
    from ._observer import Observer

__all__ = ["Chat", "outcome_of"]

error_log = logging.getLogger("llm_router")

Scope = dict[str, Any]


@attrs.define
class Exchange:
    """One request and its answer on the HTTP side: what the handlers share."""

    scope: Scope
    send: Sending
    codec: Ingress
    request_id: str
    started: float  # trio time at arrival
    trace: RequestTrace = attrs.field(factory=lambda: RequestTrace(route=""))
    #: What the controls said: the caller's key, its cache entry, the charged estimate.
    key: ClientKey | None = None
    cache_entry: bytes | None = None
    cache: RouteCacheConfig | None = None
    tokens: int = 0

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The headers that say what happened (``x-request-id``, ``x-router-*``)."""
        return trace_headers(self.trace, self.request_id)

    async def error(self, err: GatewayError) -> None:
        """Answer with ``err`` in the client's format, before any byte was sent."""
        await send_error(self.send, self.codec, err, self.trace, self.request_id)


class Chat:
    """Answers chat requests: the controls, the engine, and the framing of the answer.

    Args:
        controls: Budgets, cost, the response cache (state that outlives a reload).
        observer: Told of each request (metrics, traces, the access log).
    """

    def __init__(self, controls: Controls, observer: Observer) -> None:
        self.controls = controls
        self.observer = observer

    async def serve(
        self, scope: Scope, receive: Any, send: Sending, codec: Ingress, runtime: Runtime
    ) -> None:
        """The whole request, from its first byte read to its last byte sent."""
        ex = Exchange(scope, send, codec, make_request_id(scope), trio.current_time())
        trace = ex.trace
        runtime.users.enter()
        wall_ns = time.time_ns()
        try:
            body = await read_body(scope, receive, runtime.max_body)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope, trace)
                try:
                    await self._answer(ex, body, runtime)
                except GatewayError as exc:
                    err = _client_error(exc)
                    trace.status = codec.status(err)
                    _failed(trace, err)
                    await ex.error(err)
                except Exception as exc:
                    await _internal_error(ex, exc)
                nursery.cancel_scope.cancel()
        except ClientGone:
            pass
        except GatewayError as exc:  # from reading the body
            trace.status = codec.status(exc)
            _failed(trace, exc)
            await ex.error(exc)
        except Exception as exc:  # answering an error failed too
            await _internal_error(ex, exc)
        finally:
            # Runs on every exit, cancellation included; nothing here awaits.
            runtime.users.exit()
            if not trace.outcome:  # cancelled before an answer was complete
                trace.outcome = "cancelled"
            facts = RequestFacts(
                scope["method"], scope["path"], ex.request_id, wall_ns, ex.started,
                trio.current_time(),
            )  # fmt: skip
            self.observer.ended(trace, facts)

    async def _answer(self, ex: Exchange, body: bytes, runtime: Runtime) -> None:
        scope, trace = ex.scope, ex.trace
        key = runtime.keys.identify(scope["headers"])
        if key is not None:
            trace.client = key.name
        req = ex.codec.decode(body)
        _check_model(req.model)
        node = runtime.table.lookup(req.model)
        if node is None:
            raise NotFound(
                f"model {req.model!r} is not a route or a provider:model target; "
                "GET /v1/models lists them",
                param="model",
            )
        if key is not None and not key.may_use(req.model):
            raise Forbidden(f"this key may not use {req.model!r}", param="model")
        trace.route = req.model
        self.observer.started(trace, runtime.table)
        settings = runtime.settings_for(node)
        tokens = request_tokens(req)
        options = RequestOptions(
            deadline=ex.started + settings.timeout,
            retries=settings.retries,
            first_token_timeout=settings.first_token_timeout,
            headers=scope["headers"],
            tokens=tokens,
            resume_max=settings.resume_max,
            stream_deadline=ex.started + settings.stream_timeout,
        )
        self.controls.admit(key, tokens)
        entry, hit = self.controls.lookup(
            settings.cache, req.model, req, key, _bypasses_cache(scope["headers"])
        )
        if settings.cache is not None:
            trace.cache = "hit" if hit is not None else "miss"
            self.observer.cache_lookup(trace)
        if hit is not None:
            await _replay(ex, req, hit)
            return
        ex.key, ex.cache_entry, ex.cache, ex.tokens = key, entry, settings.cache, tokens
        routed = RoutedRequest(node, req, trace, options)
        if req.stream:
            async with runtime.engine.stream(routed) as chunks:
                await self._stream(ex, req, chunks)
        else:
            await self._complete(ex, await runtime.engine.complete(routed))

    async def _complete(self, ex: Exchange, resp: GatewayResponse) -> None:
        trace = ex.trace
        trace.cost_usd = self.controls.settle(ex.key, trace.target, resp.usage, ex.tokens)
        self.controls.store(ex.cache_entry, ex.cache, resp)
        body = ex.codec.response(resp)
        trace.status = 200
        trace.response_model = resp.model
        if resp.usage is not None:
            trace.tokens_in = resp.usage.prompt_tokens
            trace.tokens_out = resp.usage.completion_tokens
        trace.finish_reasons = tuple(c.finish_reason for c in resp.choices if c.finish_reason)
        headers = [JSON, (b"content-length", b"%d" % len(body)), *ex.headers()]
        await ex.send({"type": "http.response.start", "status": 200, "headers": headers})
        # Before the last send: hypercorn reports a disconnect as soon as it is sent.
        trace.outcome = trace.outcome or "ok"
        await ex.send({"type": "http.response.body", "body": body})

    async def _stream(self, ex: Exchange, req: GatewayRequest, chunks: Chunks) -> None:
        """Forward a committed stream; a break ends it with the format's error event."""
        trace, send = ex.trace, ex.send
        trace.status = 200
        headers = [*SSE_HEADERS, *ex.headers()]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        encoder = ex.codec.stream(req)
        # A stream is kept for the cache only whole: its chunks are gathered as they go.
        kept: list[ChatChunk] | None = [] if ex.cache_entry is not None else None
        try:
            async for batch in chunks:
                body = b"".join([encoder.feed(c) for c in batch])
                if trace.ttft is None:
                    trace.response_model = batch[0].model if batch else None
                _note_chunks(trace, batch)
                if kept is not None:
                    kept += batch
                await send({"type": "http.response.body", "body": body, "more_body": True})
                if trace.ttft is None:
                    trace.ttft = trio.current_time() - ex.started
            end = encoder.done()
            self._settle_stream(ex, kept)
        except GatewayError as exc:
            end = encoder.error(exc)
            _failed(trace, exc)
            error_log.warning("stream from %s broke: %s", trace.target, exc.message)
        except Exception as exc:
            error_log.exception("request %s: stream failed", ex.request_id)
            trace.error = type(exc).__name__
            trace.outcome = "internal_error"
            end = encoder.error(INTERNAL)
        trace.outcome = trace.outcome or "ok"  # before the last send, as above
        await send({"type": "http.response.body", "body": end})

    def _settle_stream(self, ex: Exchange, kept: list[ChatChunk] | None) -> None:
        """A stream that ended complete: its cost, and into the cache if it has one."""
        trace = ex.trace
        usage = None
        if trace.tokens_in is not None or trace.tokens_out is not None:
            usage = Usage(trace.tokens_in or 0, trace.tokens_out or 0)
        trace.cost_usd = self.controls.settle(ex.key, trace.target, usage, ex.tokens)
        if kept is not None and (whole := assemble(kept)) is not None:
            self.controls.store(ex.cache_entry, ex.cache, whole)


async def _internal_error(ex: Exchange, exc: BaseException) -> None:
    """A bug of ours, or headers the server refused: the traceback logged, and a JSON
    500 in the client's format unless the answer had begun (the access log says 500)."""
    error_log.error("request %s failed", ex.request_id, exc_info=exc)
    trace = ex.trace
    trace.error = type(exc).__name__
    trace.outcome = "internal_error"
    if not ex.send.started:
        trace.status = 500
        await send_internal_error(ex.send, ex.codec, ex.request_id)


async def _replay(ex: Exchange, req: GatewayRequest, resp: GatewayResponse) -> None:
    """A cached answer, as JSON or replayed as a stream."""
    trace = ex.trace
    trace.status = 200
    trace.response_model = resp.model
    if req.stream:
        encoder = ex.codec.stream(req)
        body = b"".join([encoder.feed(c) for c in replay(resp)]) + encoder.done()
        headers = [*SSE_HEADERS, *ex.headers()]
    else:
        body = ex.codec.response(resp)
        headers = [JSON, (b"content-length", b"%d" % len(body)), *ex.headers()]
    await ex.send({"type": "http.response.start", "status": 200, "headers": headers})
    trace.outcome = "ok"
    await ex.send({"type": "http.response.body", "body": body})


async def _watch_disconnect(receive: Any, scope: trio.CancelScope, trace: RequestTrace) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            trace.outcome = trace.outcome or "cancelled"
            scope.cancel()
            return


def _failed(trace: RequestTrace, err: GatewayError) -> None:
    """Note the failure the client gets, by class name and metrics outcome."""
    trace.error = type(err).__name__
    trace.outcome = outcome_of(err)


def outcome_of(err: GatewayError) -> str:
    """The ``requests_total`` outcome of a request that failed with ``err``."""
    if isinstance(err, RateLimitExceeded):
        return "rate_limited"
    if isinstance(err, Timeout):
        return "timeout"
    if isinstance(err, NoHealthyTarget):
        return "unavailable"
    if err.status_hint < 500:
        return "client_error"
    return "upstream_error"


def _note_chunks(trace: RequestTrace, batch: list[ChatChunk]) -> None:
    """Usage and finish reasons, from the chunks of a stream as they pass."""
    for chunk in batch:
        if chunk.usage is not None:
            trace.tokens_in = chunk.usage.prompt_tokens
            trace.tokens_out = chunk.usage.completion_tokens
        for choice in chunk.choices:
            if choice.finish_reason:
                trace.finish_reasons = (*trace.finish_reasons, choice.finish_reason)


def _client_error(exc: GatewayError) -> GatewayError:
    """The error the client gets: all-rate-limited is a 429 with the shortest wait."""
    if isinstance(exc, AllTargetsFailed) and all(
        isinstance(a, RateLimitExceeded) for a in exc.attempts
    ):
        waits = [a.retry_after for a in exc.attempts if a.retry_after is not None]
        return RateLimitExceeded(exc.message, retry_after=min(waits) if waits else None)
    return exc


def _check_model(model: str) -> None:
    """A model name an upstream URL could misread is refused before anything else
    (the model part of ``provider:model``; a route name is checked whole)."""
    _, colon, name = model.partition(":")
    problem = model_problem(name if colon else model)
    if problem is not None:
        raise InvalidRequest(
            f"model {model[:MAX_MODEL_NAME]!r} is not a valid model name: it {problem}",
            param="model",
        )


def _bypasses_cache(headers: list[tuple[bytes, bytes]]) -> bool:
    """``cache-control: no-cache`` (or ``no-store``) asks for a fresh answer."""
    for name, value in headers:
        if name == b"cache-control" and (b"no-cache" in value or b"no-store" in value):
            return True
    return False
