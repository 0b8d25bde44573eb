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
import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import trio

from adapters import (
    GatewayError,
    InvalidRequest,
    NotFound,
    Usage,
)
from rules import MAX_MODEL_NAME, RouteCacheConfig, model_problem

from ..routing._request import RequestOptions, RequestTrace, RoutedRequest
from ..traffic._budgets import Reservation
from ..traffic._cache import assemble, replay
from ..traffic._keys import ClientKey, Forbidden
from ..traffic._tokens import answer_usage, chunk_chars, request_tokens, stream_usage
from ._framing import (
    INTERNAL,
    JSON,
    SSE_HEADERS,
    ClientGone,
    Sending,
    id_headers,
    make_request_id,
    read_body,
    send_error,
    send_internal_error,
    trace_headers,
)
from ._observer import RequestFacts
from ._openai_ingress import Ingress
from ._outcome import client_error, failed, note_chunks
from ._overload import Overload

if TYPE_CHECKING:
    from adapters import ChatChunk, GatewayRequest, GatewayResponse

    from ..routing._runtime import Runtime
    from ..routing._streams import Chunks
    from ..traffic._controls import Controls
    from ._observer import Observer

__all__ = ["Chat"]

error_log = logging.getLogger("llm_router")

Scope = dict[str, Any]


@attrs.define
class Exchange:
    """One request and its answer on the HTTP side: what the handlers share."""

    scope: Scope
    asgi_send: Sending
    codec: Ingress
    request_id: str
    started: float  # trio time at arrival
    trace: RequestTrace = attrs.field(factory=lambda: RequestTrace(route=""))
    #: What the controls said: the caller's key, its cache entry, the charged estimate,
    #: the worst case held in its budget.
    key: ClientKey | None = None
    cache_entry: bytes | None = None
    cache: RouteCacheConfig | None = None
    tokens: int = 0
    #: The whole body was read (else the connection closes after the answer).
    body_read: bool = False
    #: The last byte of the answer is being sent: a disconnect now is the server's own.
    finishing: bool = False
    #: A client must take each write within this many seconds (the route's
    #: ``stall_timeout``, as for upstreams), and the whole answer by ``write_end``.
    write_stall: float = math.inf
    write_end: float = math.inf

    #: Cancelled if a write outlasts its bound (one scope per request, its deadline
    #: set only while a write is under way: cheaper than a scope per write).
    writing: trio.CancelScope | None = None

    async def send(self, message: dict[str, Any]) -> None:
        """One ASGI message, bounded: a client that stops reading is cut off.

        Past ``write_stall`` seconds (or at ``write_end``) the ``writing`` scope is
        cancelled, which ends the request; the connection closes (a write cut short
        leaves the framing broken).
        """
        scope = self.writing
        if scope is None:
            await self.asgi_send(message)
            return
        scope.deadline = min(trio.current_time() + self.write_stall, self.write_end)
        try:
            await self.asgi_send(message)
        finally:
            scope.deadline = math.inf

    async def send_last(self, body: bytes) -> None:
        """The answer's last body bytes."""
        self.finishing = True
        await self.send({"type": "http.response.body", "body": body})

    hold: Reservation | None = None
    #: A stream: committed (its 200 sent), characters of answer received, charged.
    streaming: bool = False
    streamed: int = 0
    charged: bool = False
    #: The last usage a stream reported, whole (cache and reasoning details too).
    usage: Usage | None = None

    def headers(self) -> list[tuple[bytes, bytes]]:
        """The headers that say what happened (``x-request-id``, ``x-router-*``)."""
        return [
            *trace_headers(self.trace, self.request_id),
            *id_headers(self.codec, self.request_id),
        ]

    async def error(self, err: GatewayError) -> None:
        """Answer with ``err`` in the client's format, before any byte was sent."""
        self.finishing = True
        close = not self.body_read  # an unread body would be read as the next request
        await send_error(self.send, self.codec, err, self.trace, self.request_id, close=close)


class Chat:
    """Answers chat requests: the controls, the engine, and the framing of the answer.

    Args:
        controls: Budgets, cost, the response cache (state that outlives a reload).
        observer: Told of each request (metrics, traces, the access log).
    """

    def __init__(
        self, controls: Controls, observer: Observer, overload: Overload | None = None
    ) -> None:
        self.controls = controls
        self.observer = observer
        self.overload = overload or Overload()

    async def serve(
        self, scope: Scope, receive: Any, send: Sending, codec: Ingress, runtime: Runtime
    ) -> None:
        """The whole request, from its first byte read to its last byte sent."""
        ex = Exchange(scope, send, codec, make_request_id(scope), trio.current_time())
        trace = ex.trace
        ex.write_stall = runtime.engine.stall_timeout
        runtime.users.enter()
        wall_ns = time.time_ns()
        admitted = False
        try:
            # Refused fast when saturated, before any work: in-flight streams keep flowing.
            self.overload.admit()
            admitted = True
            # The key first, from the headers: a client without one costs no body read.
            ex.key = key = runtime.keys.identify(scope["headers"])
            if key is not None:
                trace.client = key.name
            # (server.read_timeout bounds the body: the connection enforces it.)
            body = await read_body(scope, receive, runtime.max_body)
            ex.body_read = True
            with trio.CancelScope() as ex.writing:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope, ex)
                    try:
                        await self._answer(ex, body, runtime)
                    except GatewayError as exc:
                        err = client_error(exc)
                        trace.status = codec.status(err)
                        failed(trace, err)
                        await ex.error(err)
                    except Exception as exc:
                        await _internal_error(ex, exc)
                    nursery.cancel_scope.cancel()
            if ex.writing.cancelled_caught:
                # Its connection is closed already, and so is the upstream attempt.
                trace.error = "ClientStalled"
                trace.outcome = "cancelled"
                error_log.warning(
                    "request %s: the client took nothing for %gs; connection closed",
                    ex.request_id,
                    ex.write_stall,
                )
        except ClientGone:
            pass
        except GatewayError as exc:  # the key, or reading the body
            trace.status = codec.status(exc)
            failed(trace, exc)
            await ex.error(exc)
        except Exception as exc:  # answering an error failed too
            await _internal_error(ex, exc)
        finally:
            # Runs on every exit, cancellation included; nothing here awaits.
            runtime.users.exit()
            if admitted:
                self.overload.done()
            if not trace.outcome:  # cancelled before an answer was complete
                trace.outcome = "cancelled"
            facts = RequestFacts(
                scope["method"], scope["path"], ex.request_id, wall_ns, ex.started,
                trio.current_time(),
            )  # fmt: skip
            self.observer.ended(trace, facts)

    async def _answer(self, ex: Exchange, body: bytes, runtime: Runtime) -> None:
        scope, trace, key = ex.scope, ex.trace, ex.key
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
        ex.write_end = options.stream_end
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
        ex.cache_entry, ex.cache, ex.tokens = entry, settings.cache, tokens
        # No await since admit(): concurrent requests see each other's holds.
        ex.hold = self.controls.reserve(key, node, req)
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
        trace.cost_usd = self.controls.settle(ex.key, trace.target, usage, ex.tokens, ex.hold)
        self.controls.store(ex.cache_entry, ex.cache, resp)
        body = ex.codec.response(resp, req)
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
        await ex.send_last(body)

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
        try:
            async for batch in chunks:
                body = b"".join([encoder.feed(c) for c in batch])
                if trace.ttft is None:
                    trace.response_model = batch[0].model if batch else None
                ex.usage = note_chunks(trace, batch) or ex.usage
                ex.streamed += chunk_chars(batch)
                if kept is not None:
                    kept += batch
                await send({"type": "http.response.body", "body": body, "more_body": True})
                if trace.ttft is None:
                    trace.ttft = trio.current_time() - ex.started
            end = encoder.done()
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
        await ex.send_last(end)

    def _settle_stream(
        self, ex: Exchange, req: GatewayRequest, kept: list[ChatChunk] | None
    ) -> None:
        """A stream's cost, charged once whatever way it ended (the usage it reported,
        else counted from the prompt and the streamed text); a whole one goes into the
        cache if it has one."""
        trace = ex.trace
        ex.charged = True
        usage = ex.usage if ex.usage is not None else stream_usage(req, ex.streamed)
        trace.cost_usd = self.controls.settle(ex.key, trace.target, usage, ex.tokens, ex.hold)
        if kept is not None and (whole := assemble(kept)) is not None:
            self.controls.store(ex.cache_entry, ex.cache, whole)


async def _internal_error(ex: Exchange, exc: BaseException) -> None:
    """A bug of ours, or headers the server refused: the traceback logged, and a JSON
    500 in the client's format unless the answer had begun (the access log says 500)."""
    error_log.error("request %s failed", ex.request_id, exc_info=exc)
    trace = ex.trace
    trace.error = type(exc).__name__
    trace.outcome = "internal_error"
    if not ex.asgi_send.started:
        trace.status = 500
        await send_internal_error(ex.asgi_send, ex.codec, ex.request_id)


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
        body = ex.codec.response(resp, req)
        headers = [JSON, (b"content-length", b"%d" % len(body)), *ex.headers()]
    await ex.send({"type": "http.response.start", "status": 200, "headers": headers})
    trace.outcome = "ok"
    await ex.send_last(body)


async def _watch_disconnect(receive: Any, scope: trio.CancelScope, ex: Exchange) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            # Sending the last byte makes hypercorn report a disconnect while it still
            # closes or recycles the connection: cancelling that would leave the socket
            # open for good (neither closed nor timed out as idle).
            if not ex.finishing:
                ex.trace.outcome = ex.trace.outcome or "cancelled"
                scope.cancel()
            return


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
