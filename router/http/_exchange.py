"""What every request over HTTP shares, chat or embeddings: the :class:`Exchange` (one
request and its answer), and :class:`Handler`, the shell around answering it.

The shell admits the request (overload), identifies its key from the headers before the
body is read, reads the body (bounded by ``server.max_body``), runs the handler's
``answer`` in a scope that a client's hang-up cancels (hypercorn never cancels the app
itself: over HTTP/1.1 our connection does it, :mod:`._hangup`; elsewhere a sibling task
watches ``receive()`` for ``http.disconnect``), which cancels every upstream attempt; it answers errors in the client's format and tells the
observer (metrics, traces, the access log) how the request ended. A handler's answer
finds its route with :meth:`Handler.route` and notes a cache lookup with
:meth:`Handler.note_cache`.
"""

from __future__ import annotations

import logging
import math
import time
from typing import TYPE_CHECKING, Any

import attrs
import trio

from adapters import GatewayError, InvalidRequest, NotFound, Usage
from rules import MAX_MODEL_NAME, RouteCacheConfig, TextHook, model_problem

from ..routing._request import RequestTrace
from ..traffic._budgets import Reservation
from ..traffic._keys import ClientKey, Forbidden
from ._framing import (
    JSON,
    ClientGone,
    Sending,
    id_headers,
    make_request_id,
    read_body,
    send_error,
    send_internal_error,
    trace_headers,
)
from ._hangup import hangup_of
from ._observer import RequestFacts
from ._openai_ingress import Ingress
from ._outcome import client_error, failed
from ._overload import Overload

if TYPE_CHECKING:
    from rules import Node, RouteSettings

    from ..routing._runtime import Runtime
    from ..traffic._controls import Controls
    from ._observer import Observer

__all__ = ["Exchange", "Handler", "bypasses_cache", "check_model"]

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

    def client_left(self) -> bool:
        """The client is gone: True if that cancels the request (noted in its trace).

        Sending the last byte makes hypercorn report a disconnect while it still closes
        or recycles the connection: cancelling that would leave the socket open for good
        (neither closed nor timed out as idle)."""
        if self.finishing:
            return False
        self.trace.outcome = self.trace.outcome or "cancelled"
        return True

    async def send_last(self, body: bytes) -> None:
        """The answer's last body bytes."""
        self.finishing = True
        await self.send({"type": "http.response.body", "body": body})

    hold: Reservation | None = None
    #: The route's content hooks, for its answer.
    hooks: tuple[TextHook, ...] = ()
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

    async def answer_json(self, body: bytes) -> None:
        """A 200 with the JSON ``body`` and the headers that say what happened."""
        self.trace.status = 200
        headers = [JSON, (b"content-length", b"%d" % len(body)), *self.headers()]
        await self.send({"type": "http.response.start", "status": 200, "headers": headers})
        # Before the last send: hypercorn reports a disconnect as soon as it is sent.
        self.trace.outcome = self.trace.outcome or "ok"
        await self.send_last(body)

    async def error(self, err: GatewayError) -> None:
        """Answer with ``err`` in the client's format, before any byte was sent."""
        self.finishing = True
        close = not self.body_read  # an unread body would be read as the next request
        await send_error(self.send, self.codec, err, self.trace, self.request_id, close=close)


class Handler:
    """The shell around one kind of request; a subclass answers it (:meth:`answer`).

    Args:
        controls: Budgets, cost, the response cache (state that outlives a reload).
        observer: Told of each request (metrics, traces, the access log).
        overload: The limits on requests in flight and the loop's lag.
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
            await self.overload.admit()
            admitted = True
            # The key first, from the headers: a client without one costs no body read.
            ex.key = key = runtime.keys.identify(scope["headers"])
            if key is not None:
                trace.client = key.name
            # (server.read_timeout bounds the body: the connection enforces it.)
            body = await read_body(scope, receive, runtime.max_body)
            ex.body_read = True
            with trio.CancelScope() as ex.writing:
                hangup = hangup_of(scope)
                if hangup is None:  # HTTP/2, another server: a task watches receive()
                    async with trio.open_nursery() as nursery:
                        nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope, ex)
                        await self._answer(ex, body, runtime)
                        nursery.cancel_scope.cancel()
                else:  # the connection cancels this scope itself: no task per request
                    with trio.CancelScope() as request:
                        hangup.watch(request, ex.client_left)
                        try:
                            await self._answer(ex, body, runtime)
                        finally:
                            hangup.unwatch()
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
        """:meth:`answer`, its errors answered in the client's format."""
        try:
            await self.answer(ex, body, runtime)
        except GatewayError as exc:
            err = client_error(exc)
            ex.trace.status = ex.codec.status(err)
            failed(ex.trace, err)
            await ex.error(err)
        except Exception as exc:
            await _internal_error(ex, exc)

    async def answer(self, ex: Exchange, body: bytes, runtime: Runtime) -> None:
        """Answer the request whose ``body`` was read. Raises GatewayError for the
        client (answered in its format by the shell)."""
        raise NotImplementedError

    def route(self, ex: Exchange, model: str, runtime: Runtime) -> tuple[Node, RouteSettings]:
        """What the client's ``model`` names, and its settings; the request is now
        under way on that route (the observer is told).

        Raises:
            InvalidRequest: a model name an upstream URL could misread.
            NotFound: no route or target of that name.
            Forbidden: the caller's key may not use it.
        """
        check_model(model)
        node = runtime.table.lookup(model)
        if node is None:
            raise NotFound(
                f"model {model!r} is not a route or a provider:model target; "
                "GET /v1/models lists them",
                param="model",
            )
        if ex.key is not None and not ex.key.may_use(model):
            raise Forbidden(f"this key may not use {model!r}", param="model")
        ex.trace.route = model
        self.observer.started(ex.trace, runtime.table)
        return node, runtime.settings_for(node)

    def note_cache(
        self, ex: Exchange, cache: RouteCacheConfig | None, entry: bytes | None, hit: bool
    ) -> None:
        """A lookup in the route's cache: ``x-router-cache``, metrics, and where a
        fresh answer is stored (``entry``; None when it is not cached)."""
        if cache is not None:
            ex.trace.cache = "hit" if hit else "miss"
            self.observer.cache_lookup(ex.trace)
        ex.cache_entry, ex.cache = entry, cache


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


async def _watch_disconnect(receive: Any, scope: trio.CancelScope, ex: Exchange) -> None:
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            if ex.client_left():
                scope.cancel()
            return


def check_model(model: str) -> None:
    """A model name an upstream URL could misread is refused before anything else
    (the model part of ``provider:model``; a route name is checked whole)."""
    _, colon, name = model.partition(":")
    problem = model_problem(name if colon else model)
    if problem is not None:
        raise InvalidRequest(
            f"model {model[:MAX_MODEL_NAME]!r} is not a valid model name: it {problem}",
            param="model",
        )


def bypasses_cache(headers: list[tuple[bytes, bytes]]) -> bool:
    """``cache-control: no-cache`` (or ``no-store``) asks for a fresh answer."""
    for name, value in headers:
        if name == b"cache-control" and (b"no-cache" in value or b"no-store" in value):
            return True
    return False
