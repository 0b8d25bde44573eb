"""The raw ASGI application: paths to handlers. No framework on the hot path.

Chat requests (``/v1/chat/completions``, ``/v1/messages``, ``/v1/responses``) go to
:class:`~._chat.Chat`, embeddings (``/v1/embeddings``) to :class:`~._embeddings.Embeddings`,
legacy text completions (``/v1/completions``) to :class:`~._completions.TextCompletions`,
token counts (``/v1/messages/count_tokens``) to :func:`~._count_tokens.count_tokens`; the
rest are small JSON endpoints: health, readiness, models, metrics, and the admin
endpoints (status, reload; the status page and its event stream). ``runtime`` is the rules snapshot in force; a request reads
it once, so a reload swaps it without touching requests in flight.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Protocol

import attrs
import trio

from rules import render_tree

from ..traffic._controls import Controls
from ._admin import is_admin, is_ready, status
from ._anthropic_ingress import ANTHROPIC
from ._chat import Chat
from ._completions import TextCompletions
from ._count_tokens import count_tokens
from ._embeddings import Embeddings
from ._events import LiveFeed, page_state
from ._framing import (
    FORBIDDEN,
    MethodNotAllowed,
    Sending,
    error_json,
    lifespan,
    not_found,
    refuse,
    send_internal_error,
    send_json,
    send_method_not_allowed,
)
from ._models import model_list, model_one
from ._observer import NoObserver
from ._openai_ingress import OPENAI, Ingress
from ._origin import admit, refuse_websocket
from ._overload import Overload
from ._responses_ingress import RESPONSES
from ._timeline import Gauges, Timeline, TimelineObserver
from ._ui import send_page

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ..routing._runtime import Runtime
    from ._exchange import Handler
    from ._observer import Observer

__all__ = ["App", "ReloadOutcome"]

Scope = dict[str, Any]

error_log = logging.getLogger("llm_router")


class ReloadOutcome(Protocol):
    """What ``POST /admin/reload`` answers with (the daemon's reload result)."""

    @property
    def ok(self) -> bool: ...

    def to_json(self) -> dict[str, Any]: ...


class App:
    """The daemon's ASGI callable.

    Args:
        runtime: The rules snapshot in force (replaced whole on reload).
        observer: Told of each request: metrics, traces, the access log.
        admin_key: Lets admin endpoints answer beyond loopback.
        reload: Reloads the rules (``POST /admin/reload``); None where nothing can.
    """

    def __init__(
        self,
        runtime: Runtime,
        *,
        observer: Observer | None = None,
        admin_key: str | None = None,
        reload: Callable[[], Awaitable[ReloadOutcome]] | None = None,
    ) -> None:
        self.runtime = runtime
        self.observer: Observer = observer or NoObserver()
        self.admin_key = admin_key
        self.reload = reload
        #: Facts about the daemon for ``/admin/status`` beyond the rules (reload state).
        self.status_extra: Callable[[], dict[str, Any]] = dict
        #: More of them that take I/O (the usage ledger's figures), awaited.
        self.status_read: Callable[[], Awaitable[dict[str, Any]]] | None = None
        #: Budgets, cost, the response cache: state that outlives a reload.
        self.controls = Controls(runtime.table.config)
        #: Requests in flight and the loop's lag against their limits (server settings).
        server = runtime.table.config.server
        self.overload = Overload(server.max_in_flight, server.overload_lag)
        #: The last 15 minutes, a sample a second, for the status page (``/admin/ui``);
        #: the daemon runs its clock (``timeline.run(app.gauges)``).
        self.timeline = Timeline()
        self.feed = LiveFeed(self.timeline, self._page_state)
        told = TimelineObserver(self.observer, self.timeline)
        self._chat = Chat(self.controls, told, self.overload)
        self._embeddings = Embeddings(self.controls, told, self.overload)
        self._text = TextCompletions(self.controls, told, self.overload)
        self._handlers: dict[str, Handler] = dict.fromkeys(_EMBEDDINGS, self._embeddings)
        self._handlers.update(dict.fromkeys(_TEXT, self._text))
        self._tree: tuple[str, str] = ("", "")  # the routing tree drawn, by rules digest

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        kind = scope["type"]
        if kind == "http":
            sending = Sending(send)
            try:
                await self._http(scope, receive, sending)
            except Exception:
                # The last net: a bug anywhere still gets a JSON answer, never the
                # server's bare 500, and the traceback is logged.
                error_log.exception("%s %s failed", scope["method"], scope["path"])
                if not sending.started:
                    codec = _INGRESS.get(scope["path"])
                    await send_internal_error(sending, codec, None)
        elif kind == "lifespan":
            await lifespan(receive, send)
        elif kind == "websocket":
            await refuse_websocket(scope, receive, send)

    async def _http(self, scope: Scope, receive: Any, send: Sending) -> None:
        path = scope["path"]
        method = scope["method"]
        codec = _INGRESS.get(path)
        # Browsers: Origin and Host checks, CORS (None: refused or a preflight, answered).
        send = await admit(scope, send, self.runtime.table.config.server, codec)
        if send is None:
            return
        if codec is not None:
            if method != "POST":
                await refuse(send, codec, MethodNotAllowed(f"{path} takes POST"))
                return
            handler = self._handlers.get(path, self._chat)
            await handler.serve(scope, receive, send, codec, self.runtime)
        elif path == "/v1/messages/count_tokens":
            if method != "POST":
                await refuse(send, ANTHROPIC, MethodNotAllowed(f"{path} takes POST"))
                return
            await count_tokens(scope, receive, send, self.runtime)
        elif path == "/admin/reload":
            await self._admin_reload(scope, method, send)
        elif method != "GET":
            if path in _GET_PATHS or path.startswith(("/v1/models/", "/models/")):
                await send_method_not_allowed(send, path, "GET")
            else:
                await send_json(send, 404, not_found(path))
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
        elif path in _ADMIN_PAGES:
            if not is_admin(scope, self.admin_key):
                await send_json(send, 403, FORBIDDEN)
            elif path == "/admin/status":
                report = self._status()
                if self.status_read is not None:
                    report.update(await self.status_read())
                await send_json(send, 200, report)
            elif path == "/admin/ui":
                await send_page(send)
            else:
                await self.feed.serve(receive, send)
        elif path in ("/v1/models", "/models"):
            await send_json(send, 200, model_list(self.runtime.table, _anthropic(scope)))
        elif path.startswith(("/v1/models/", "/models/")):
            model = path.split("/models/", 1)[1]
            await send_json(send, *model_one(self.runtime.table, model, _anthropic(scope)))
        elif path == "/metrics" and (page := self.observer.metrics_page()) is not None:
            body, content_type = page
            headers = [
                (b"content-type", content_type.encode()),
                (b"content-length", b"%d" % len(body)),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
        else:
            await send_json(send, 404, not_found(path))

    def _status(self) -> dict[str, Any]:
        report: dict[str, Any] = {**status(self.runtime), **self.status_extra()}
        traffic = self.controls.snapshot()
        limits = self.runtime.engine.limits
        if limits is not None:
            traffic["target_limits"] = {
                name: attrs.asdict(usage) for name, usage in limits.limiter.snapshot().items()
            }
            if gates := limits.gates():  # bounds on requests at once, adaptive ones learned
                traffic["concurrency"] = {key: attrs.asdict(g) for key, g in gates.items()}
        batcher = self.runtime.engine.batcher
        if batcher is not None:  # embeddings combined into shared upstream calls
            traffic["embedding_batches"] = attrs.asdict(batcher.stats)
        report["traffic"] = traffic
        if self.controls.shared is not None:
            report["shared_state"] = self.controls.shared.link.snapshot()
        report["overload"] = self.overload.snapshot()
        return report

    def gauges(self) -> Gauges:
        """Requests in flight and circuit state of each target of the rules in force,
        read as a sample of the timeline closes."""
        now = trio.current_time()
        runtime = self.runtime
        registry = runtime.engine.registry
        found: dict[str, tuple[int, str]] = {}
        for target in sorted(str(t) for t in runtime.table.targets()):
            if target in registry:
                state = registry.get(target)
                found[target] = (state.in_flight, state.breaker.state(now))
            else:
                found[target] = (0, "closed")  # never asked for yet
        return found

    def _page_state(self) -> dict[str, Any]:
        table = self.runtime.table
        if self._tree[0] != table.digest:
            self._tree = (table.digest, render_tree(table))
        return page_state(self._status(), self._tree[1])

    async def _admin_reload(self, scope: Scope, method: str, send: Any) -> None:
        if method != "POST":
            await send_method_not_allowed(send, "/admin/reload", "POST")
        elif not is_admin(scope, self.admin_key):
            await send_json(send, 403, FORBIDDEN)
        elif self.reload is None:
            body = error_json("this daemon cannot reload", "service_unavailable")
            await send_json(send, 503, body)
        else:
            result = await self.reload()
            await send_json(send, 200 if result.ok else 422, result.to_json())


def _anthropic(scope: Scope) -> bool:
    """An Anthropic SDK asks (it sends ``anthropic-version``): answer in its shape."""
    return any(name == b"anthropic-version" for name, _ in scope["headers"])


_INGRESS: dict[str, Ingress] = {
    "/v1/chat/completions": OPENAI,
    "/chat/completions": OPENAI,
    "/v1/messages": ANTHROPIC,
    "/v1/responses": RESPONSES,
    "/responses": RESPONSES,
    "/v1/embeddings": OPENAI,  # errors in OpenAI's shape
    "/embeddings": OPENAI,
    "/v1/completions": OPENAI,
    "/completions": OPENAI,
}
_EMBEDDINGS = frozenset({"/v1/embeddings", "/embeddings"})
_TEXT = frozenset({"/v1/completions", "/completions"})
_ADMIN_PAGES = frozenset({"/admin/status", "/admin/ui", "/admin/events"})
_GET_PATHS = frozenset({"/healthz", "/readyz", "/v1/models", "/models", "/metrics", *_ADMIN_PAGES})
