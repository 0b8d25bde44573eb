"""The raw ASGI application: HTTP in, engine, HTTP out. No framework on the hot path.

Per request: read the body (bounded by ``server.max_body``), decode it, find the route
in the current rules snapshot, run the engine under the request deadline, and answer
in the client's format. A sibling task watches ``receive()`` for ``http.disconnect``
(hypercorn never cancels the app itself) and cancels the request's scope, which
cancels every upstream attempt.
"""

from __future__ import annotations

import logging
import time
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any

import attrs
import trio

from adapters import (
    AllTargetsFailed,
    GatewayError,
    NoHealthyTarget,
    NotFound,
    RateLimitExceeded,
    Timeout,
    Usage,
)
from rules import Node, RouteCacheConfig

from ..ops._metrics import CONTENT_TYPE, Metrics
from ..routing._engine import RequestOptions, RequestTrace
from ..traffic._cache import assemble, replay
from ..traffic._controls import Controls
from ..traffic._keys import ClientKey, Forbidden
from ..traffic._ratelimit import estimate_tokens
from ._admin import is_admin, is_ready, status
from ._anthropic_ingress import ANTHROPIC
from ._framing import (
    FORBIDDEN,
    JSON,
    SSE_HEADERS,
    ClientGone,
    lifespan,
    make_request_id,
    not_found,
    read_body,
    send_error,
    send_json,
    trace_headers,
)
from ._openai_ingress import OPENAI, Ingress

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from adapters import ChatChunk, GatewayRequest, GatewayResponse

    from ..ops._accesslog import AccessLog
    from ..ops._reload import ReloadResult
    from ..ops._tracing import Tracing
    from ..routing._engine import Engine
    from ..routing._runtime import Runtime

__all__ = ["App"]

error_log = logging.getLogger("llm_router")

Scope = dict[str, Any]

_INTERNAL = GatewayError("internal error in the router; the log has the details")


class App:
    """The daemon's ASGI callable. ``runtime`` holds the rules snapshot in force.

    ``metrics`` (served at ``GET /metrics``) is the app's own; ``tracing`` comes from
    :func:`router._tracing.setup_tracing`, and costs one attribute check per request
    when it is off (or absent).
    """

    def __init__(
        self,
        runtime: Runtime,
        access_log: AccessLog | None = None,
        admin_key: str | None = None,
        reload: Callable[[], Awaitable[ReloadResult]] | None = None,
        *,
        tracing: Tracing | None = None,
    ) -> None:
        self.runtime = runtime
        self.access_log = access_log
        self.admin_key = admin_key
        #: Reloads the rules (``POST /admin/reload``); None where nothing can reload.
        self.reload = reload
        #: Facts about the daemon for ``/admin/status`` beyond the rules (reload state).
        self.status_extra: Callable[[], dict[str, Any]] = dict
        #: Prometheus metrics; ``metrics.reload(result)`` counts config reloads.
        self.metrics = Metrics(lambda: self.runtime)
        #: Budgets, cost, the response cache: state that outlives a reload.
        self.controls = Controls(runtime.table.config)
        self.tracing = tracing
        # The request path's only look at tracing: None unless spans are exported.
        self._tracing = tracing if tracing is not None and tracing.enabled else None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await lifespan(receive, send)

    async def _http(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope["path"]
        method = scope["method"]
        codec = _INGRESS.get(path)
        if codec is not None:
            if method != "POST":
                await send_json(send, 405, {"error": {"message": "use POST"}})
                return
            await self._chat(scope, receive, send, codec)
        elif path == "/admin/reload":
            await self._admin_reload(scope, method, send)
        elif method != "GET":
            await send_json(send, 405 if path in _GET_PATHS else 404, not_found(path))
        elif path == "/healthz":
            await send_json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            runtime = self.runtime
            ready = is_ready(runtime)
            state = {
                "status": "ready" if ready else "unavailable",
                "rules": runtime.table.short_digest,
            }
            await send_json(send, 200 if ready else 503, state)
        elif path == "/admin/status":
            if is_admin(scope, self.admin_key):
                report: dict[str, Any] = {**status(self.runtime), **self.status_extra()}
                traffic = self.controls.snapshot()
                limits = self.runtime.engine.limits
                if limits is not None:
                    traffic["target_limits"] = {
                        name: attrs.asdict(usage)
                        for name, usage in limits.limiter.snapshot().items()
                    }
                report["traffic"] = traffic
                await send_json(send, 200, report)
            else:
                await send_json(send, 403, FORBIDDEN)
        elif path in ("/v1/models", "/models"):
            await send_json(send, 200, self._models())
        elif path == "/metrics":
            body = self.metrics.render()
            headers = [
                (b"content-type", CONTENT_TYPE.encode()),
                (b"content-length", b"%d" % len(body)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        else:
            await send_json(send, 404, not_found(path))

    async def _admin_reload(self, scope: Scope, method: str, send: Any) -> None:
        if method != "POST":
            await send_json(send, 405, {"error": {"message": "use POST"}})
        elif not is_admin(scope, self.admin_key):
            await send_json(send, 403, FORBIDDEN)
        elif self.reload is None:
            await send_json(send, 503, {"error": {"message": "this daemon cannot reload"}})
        else:
            result = await self.reload()
            await send_json(send, 200 if result.ok else 422, result.to_json())

    def _models(self) -> dict[str, Any]:
        table = self.runtime.table
        ids = [*table.route_names(), *(str(t) for t in table.targets())]
        data = [{"id": i, "object": "model", "created": 0, "owned_by": "llm-router"} for i in ids]
        return {"object": "list", "data": data}

    async def _chat(self, scope: Scope, receive: Any, send: Any, codec: Ingress) -> None:
        request_id = make_request_id(scope)
        runtime = self.runtime  # one snapshot for the whole request
        runtime.users.enter()
        trace = RequestTrace(route="")
        started = trio.current_time()
        tracing = self._tracing
        wall_ns = 0 if tracing is None else time.time_ns()
        try:
            body = await read_body(scope, receive, runtime.max_body)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope, trace)
                try:
                    await self._answer(
                        scope, send, codec, body, runtime, trace, request_id, started
                    )
                except GatewayError as exc:
                    err = _client_error(exc)
                    trace.status = codec.status(err)
                    _failed(trace, err)
                    await send_error(send, codec, err, trace, request_id)
                except Exception as exc:
                    # A bug of ours: still a well-formed answer, and the traceback logged.
                    error_log.exception("request %s failed", request_id)
                    trace.error = type(exc).__name__
                    trace.outcome = "internal_error"
                    if not trace.status:
                        trace.status = 500
                        await send_error(send, codec, _INTERNAL, trace, request_id)
                nursery.cancel_scope.cancel()
        except ClientGone:
            pass
        except GatewayError as exc:  # from reading the body
            trace.status = codec.status(exc)
            _failed(trace, exc)
            await send_error(send, codec, exc, trace, request_id)
        finally:
            # Runs on every exit, cancellation included; nothing here awaits.
            runtime.users.exit()
            ended = trio.current_time()
            if not trace.outcome:  # cancelled before an answer was complete
                trace.outcome = "cancelled"
            metrics = self.metrics
            if trace.known_route:
                metrics.finished(trace.known_route)
            metrics.request_done(trace, ended - started)
            if tracing is not None:
                tracing.record(trace, request_id, wall_ns, started, ended)
            if self.access_log is not None:
                self.access_log.record(
                    trace, scope["method"], scope["path"], request_id, (ended - started) * 1000
                )

    async def _answer(
        self,
        scope: Scope,
        send: Any,
        codec: Ingress,
        body: bytes,
        runtime: Runtime,
        trace: RequestTrace,
        request_id: str,
        started: float,
    ) -> None:
        key = runtime.keys.identify(scope["headers"])
        if key is not None:
            trace.client = key.name
        req = codec.decode(body)
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
        trace.known_route = self.metrics.route_label(runtime.table, req.model)
        self.metrics.started(trace.known_route)
        settings = runtime.settings_for(node)
        tokens = estimate_tokens(sum(len(m.text()) for m in req.messages), req.max_tokens)
        options = RequestOptions(
            deadline=started + settings.timeout,
            retries=settings.retries,
            first_token_timeout=settings.first_token_timeout,
            headers=scope["headers"],
            tokens=tokens,
        )
        self.controls.admit(key, tokens)
        entry, hit = self.controls.lookup(
            settings.cache, req.model, req, key, _bypasses_cache(scope["headers"])
        )
        if settings.cache is not None:
            trace.cache = "hit" if hit is not None else "miss"
            self.metrics.cache(trace.known_route, trace.cache)
        if hit is not None:
            await self._replay(send, codec, req, hit, trace, request_id)
            return
        deal = _Deal(key, entry, settings.cache, tokens)
        if req.stream:
            await self._stream(
                send, codec, runtime.engine, req, node, trace, request_id, options, started, deal
            )
        else:
            await self._complete(
                send, codec, runtime.engine, req, node, trace, request_id, options, deal
            )

    def _settle_stream(
        self, trace: RequestTrace, deal: _Deal, kept: list[ChatChunk] | None
    ) -> None:
        """A stream that ended complete: its cost, and into the cache if it has one."""
        usage = None
        if trace.tokens_in is not None or trace.tokens_out is not None:
            usage = Usage(trace.tokens_in or 0, trace.tokens_out or 0)
        trace.cost_usd = self.controls.settle(deal.key, trace.target, usage, deal.tokens)
        if kept is not None and (whole := assemble(kept)) is not None:
            self.controls.store(deal.entry, deal.cache, whole)

    async def _replay(
        self,
        send: Any,
        codec: Ingress,
        req: GatewayRequest,
        resp: GatewayResponse,
        trace: RequestTrace,
        request_id: str,
    ) -> None:
        """A cached answer, as JSON or replayed as a stream."""
        trace.status = 200
        trace.response_model = resp.model
        if not req.stream:
            body = codec.response(resp)
            headers = [
                JSON,
                (b"content-length", b"%d" % len(body)),
                *trace_headers(trace, request_id),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            trace.outcome = "ok"
            await send({"type": "http.response.body", "body": body})
            return
        encoder = codec.stream(req)
        body = b"".join([encoder.feed(c) for c in replay(resp)]) + encoder.done()
        headers = [*SSE_HEADERS, *trace_headers(trace, request_id)]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        trace.outcome = "ok"
        await send({"type": "http.response.body", "body": body})

    async def _complete(
        self,
        send: Any,
        codec: Ingress,
        engine: Engine,
        req: GatewayRequest,
        node: Node,
        trace: RequestTrace,
        request_id: str,
        options: RequestOptions,
        deal: _Deal,
    ) -> None:
        with trio.move_on_at(options.deadline) as scope:
            resp = await engine.complete(node, req, trace, options)
        if scope.cancelled_caught:
            raise Timeout(f"the request took longer than its deadline ({trace.route})")
        trace.cost_usd = self.controls.settle(deal.key, trace.target, resp.usage, deal.tokens)
        self.controls.store(deal.entry, deal.cache, resp)
        body = codec.response(resp)
        trace.status = 200
        trace.response_model = resp.model
        if resp.usage is not None:
            trace.tokens_in = resp.usage.prompt_tokens
            trace.tokens_out = resp.usage.completion_tokens
        trace.finish_reasons = tuple(c.finish_reason for c in resp.choices if c.finish_reason)
        headers = [
            JSON,
            (b"content-length", b"%d" % len(body)),
            *trace_headers(trace, request_id),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        # Before the last send: hypercorn reports a disconnect as soon as it is sent.
        trace.outcome = trace.outcome or "ok"
        await send({"type": "http.response.body", "body": body})

    async def _stream(
        self,
        send: Any,
        codec: Ingress,
        engine: Engine,
        req: GatewayRequest,
        node: Node,
        trace: RequestTrace,
        request_id: str,
        options: RequestOptions,
        started: float,
        deal: _Deal,
    ) -> None:
        deadline = options.deadline
        # A stream is kept for the cache only whole: its chunks are gathered as they go.
        kept: list[ChatChunk] | None = [] if deal.entry is not None else None
        async with AsyncExitStack() as stack:
            with trio.move_on_at(deadline) as scope:
                start = await engine.open_stream(node, req, trace, options)
                await stack.enter_async_context(start.exit)
            if scope.cancelled_caught:
                raise Timeout(f"the request took longer than its deadline ({trace.route})")
            trace.status = 200
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [*SSE_HEADERS, *trace_headers(trace, request_id)],
                }
            )
            encoder = codec.stream(req)
            head = start.head
            body = b"".join([encoder.feed(c) for c in head])
            await send({"type": "http.response.body", "body": body, "more_body": True})
            trace.ttft = trio.current_time() - started
            if head:
                trace.response_model = head[0].model
                _note_chunks(trace, head)
                if kept is not None:
                    kept += head
            rest = start.rest
            end = None
            with trio.move_on_at(deadline) as scope:
                try:
                    while rest is not None and (batch := await engine.next_batch(rest)):
                        body = b"".join([encoder.feed(c) for c in batch])
                        _note_chunks(trace, batch)
                        if kept is not None:
                            kept += batch
                        await send({"type": "http.response.body", "body": body, "more_body": True})
                    end = encoder.done()
                    self._settle_stream(trace, deal, kept)
                except GatewayError as exc:
                    exc.upstream = exc.upstream or trace.target
                    end = encoder.error(exc)
                    _failed(trace, exc)
                    error_log.warning("stream from %s broke: %s", trace.target, exc.message)
                    if trace.target:
                        engine.stream_failed(trace.target, exc)
                except Exception as exc:
                    error_log.exception("request %s: stream failed", request_id)
                    trace.error = type(exc).__name__
                    trace.outcome = "internal_error"
                    end = encoder.error(_INTERNAL)
            if end is None:  # the deadline passed mid-stream
                timeout = Timeout("the stream took longer than its deadline")
                _failed(trace, timeout)
                end = encoder.error(timeout)
            trace.outcome = trace.outcome or "ok"  # before the last send, as above
            await send({"type": "http.response.body", "body": end})


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


@attrs.frozen
class _Deal:
    """What the controls said about one request: its key, and its cache entry."""

    key: ClientKey | None
    entry: bytes | None
    cache: RouteCacheConfig | None
    tokens: int  # the estimate the key's window was charged


def _bypasses_cache(headers: list[tuple[bytes, bytes]]) -> bool:
    """``cache-control: no-cache`` (or ``no-store``) asks for a fresh answer."""
    for name, value in headers:
        if name == b"cache-control" and (b"no-cache" in value or b"no-store" in value):
            return True
    return False


_INGRESS: dict[str, Ingress] = {
    "/v1/chat/completions": OPENAI,
    "/chat/completions": OPENAI,
    "/v1/messages": ANTHROPIC,
}
_GET_PATHS = frozenset(
    {"/healthz", "/readyz", "/v1/models", "/models", "/admin/status", "/metrics"}
)
