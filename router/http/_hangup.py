"""The client hung up: told by the connection to the request it serves, directly.

hypercorn never cancels the app when a client goes away; it puts ``http.disconnect`` on
the request's ``receive()``, so a request that wants to stop its upstream work at once
must watch ``receive()`` in a task of its own: a nursery and a task per request, for an
event that almost never comes. Our server (:mod:`._server`) gives each HTTP/1.1
connection a :class:`Hangup` in the ASGI scope's ``state`` (hypercorn hands each request
a shallow copy of the connection's state, so the object is the connection's own). The
connection calls :meth:`Hangup.gone` when its client is gone (the socket read its end
or failed, a write found it closed, hypercorn closed it); the request registers a cancel
scope with :meth:`Hangup.watch`, which that call cancels. HTTP/1.1 serves one request
at a time per connection; HTTP/2 (a stream can be reset alone) and other servers keep
the watching task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    import trio

__all__ = ["HANGUP", "Hangup", "hangup_of"]

#: The key of a connection's :class:`Hangup` in the ASGI scope's ``state``.
HANGUP = "llm_router.hangup"


class Hangup:
    """One HTTP/1.1 connection's client: gone or not, and the request to cancel if so."""

    __slots__ = ("_scope", "_wanted", "is_gone")

    def __init__(self) -> None:
        self.is_gone = False
        self._scope: trio.CancelScope | None = None
        self._wanted: Callable[[], bool] | None = None

    def watch(self, scope: trio.CancelScope, wanted: Callable[[], bool]) -> None:
        """Cancel ``scope`` when the client goes (at once if it has), if ``wanted()``
        then says so (a request sending its last byte is done, not cancelled)."""
        self._scope, self._wanted = scope, wanted
        if self.is_gone:
            self.gone()

    def unwatch(self) -> None:
        """The request is over."""
        self._scope = self._wanted = None

    def gone(self) -> None:
        """The connection's client is gone (called by the connection, maybe often)."""
        self.is_gone = True
        scope, wanted = self._scope, self._wanted
        if scope is not None and wanted is not None:
            self._scope = self._wanted = None
            if wanted():
                scope.cancel()


def hangup_of(scope: dict[str, Any]) -> Hangup | None:
    """The connection's :class:`Hangup`, on HTTP/1.1 through our server; else None."""
    if scope.get("http_version") not in ("1.1", "1.0"):
        return None
    state = scope.get("state")
    found = state.get(HANGUP) if isinstance(state, dict) else None
    return found if isinstance(found, Hangup) else None
