"""``GET /admin/events``: the status page's live feed, as Server-Sent Events.

A reader first gets ``hello``: the sampling step and span, every sample of the ring
(:class:`~._timeline.Timeline`) and the whole page state (:func:`page_state`: rules and
routing tree, circuits, budgets, rate windows, cache, reloads, load). Then, as each
sample closes (once a second), one ``sample`` event: the new sample(s) and the parts of
the page state that changed since the last event (a top-level key is sent whole or not
at all). Under traffic that is one to three KB a second.

A stream ends cleanly (the last chunk of a chunked answer) when the daemon stops, so an
open page never holds the drain; when the client goes (a sibling task watches
``receive()``, as hypercorn never cancels the app); or when the client stops reading
for :data:`WRITE_STALL` seconds (the connection is closed). At most
:data:`MAX_READERS` streams are open at once; more get 503.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
import trio

from ._framing import send_json

if TYPE_CHECKING:
    from collections.abc import Callable

    from ._timeline import Timeline

__all__ = ["MAX_READERS", "WRITE_STALL", "LiveFeed", "page_state"]

#: Open event streams at most (pages are for operators: a handful).
MAX_READERS = 16
#: Seconds a client may take to accept one event before its stream is cut.
WRITE_STALL = 10.0
#: Asks a browser to reconnect this many milliseconds after a stream ends.
RETRY_MS = 3000

_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    (b"x-accel-buffering", b"no"),  # a proxy in front must not hold events back
    (b"x-content-type-options", b"nosniff"),
]


class LiveFeed:
    """The event streams of one app.

    Args:
        timeline: Where the samples come from.
        state: Returns the page state now (:func:`page_state` of the app's status).
    """

    def __init__(self, timeline: Timeline, state: Callable[[], dict[str, Any]]) -> None:
        self.timeline = timeline
        self.state = state
        self.readers = 0

    async def serve(self, receive: Any, send: Any) -> None:
        """One reader's stream, from ``hello`` to its end (see the module's notes)."""
        if self.readers >= MAX_READERS or self.timeline.closed:
            error = {"message": "too many open event streams", "type": "overloaded"}
            await send_json(send, 503, {"error": error}, [(b"retry-after", b"5")])
            return
        self.readers += 1
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_watch_disconnect, receive, nursery.cancel_scope)
                if await self._pump(send):
                    # The daemon stops: end the answer properly, then the connection
                    # closes with the rest of the idle ones.
                    with trio.move_on_after(WRITE_STALL):
                        await send({"type": "http.response.body", "more_body": False})
                nursery.cancel_scope.cancel()
        finally:
            self.readers -= 1

    async def _pump(self, send: Any) -> bool:
        """Send events until the timeline closes (True) or the client stalls (False)."""
        timeline = self.timeline
        seen = timeline.closed_count
        state = self.state()
        history = b",".join(sample.json for sample in timeline.since(0))
        hello = b'{"step":%s,"span":%s,"history":[%s],"state":%s}' % (
            orjson.dumps(timeline.step),
            orjson.dumps(timeline.span),
            history,
            orjson.dumps(state),
        )
        if not await _write(send, b"retry: %d\n" % RETRY_MS + _event(b"hello", hello)):
            return False
        while await timeline.wait_past(seen):
            samples = timeline.since(seen)
            seen = timeline.closed_count
            now = self.state()
            changed = {key: value for key, value in now.items() if state.get(key) != value}
            state = now
            body = b'{"s":[%s]' % b",".join(sample.json for sample in samples)
            if changed:
                body += b',"state":' + orjson.dumps(changed)
            if not await _write(send, _event(b"sample", body + b"}")):
                return False
        return True


def _event(name: bytes, data: bytes) -> bytes:
    # orjson never writes a raw newline, so one data line carries the whole JSON.
    return b"event: %s\ndata: %s\n\n" % (name, data)


async def _write(send: Any, data: bytes) -> bool:
    """One chunk; False when the client took nothing for WRITE_STALL seconds (the
    server closed the connection: a write cut short leaves it unusable)."""
    with trio.move_on_after(WRITE_STALL):
        await send({"type": "http.response.body", "body": data, "more_body": True})
        return True
    return False


async def _watch_disconnect(receive: Any, scope: trio.CancelScope) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    scope.cancel()


def page_state(report: dict[str, Any], tree: str) -> dict[str, Any]:
    """What the page shows besides the samples, from ``/admin/status``'s report.

    Only values a person reads are kept, rounded, so that an idle daemon's state does
    not change from one second to the next (an unchanged part is not sent again).
    """
    rules = report.get("rules", {})
    traffic = report.get("traffic", {})
    budget = report.get("hedge_budget", {})
    return {
        "rules": {**rules, "tree": tree},
        "targets": {
            name: {
                "state": target.get("state"),
                "last_error": target.get("last_error"),
                "half_open_in": _rounded(target.get("seconds_until_half_open"), 0),
            }
            for name, target in report.get("targets", {}).items()
        },
        "hedge_budget": {
            "tokens": _rounded(budget.get("tokens"), 1),
            "burst": budget.get("burst"),
        },
        "budgets": {
            name: {
                "budget": spend.get("budget"),
                "spent_day": _rounded(spend.get("spent_day"), 6),
                "spent_month": _rounded(spend.get("spent_month"), 6),
                "remaining": _rounded(spend.get("remaining"), 6),
                "reserved": _rounded(spend.get("reserved"), 6),
            }
            for name, spend in traffic.get("budgets", {}).items()
        },
        "windows": {
            "keys": traffic.get("key_limits", {}),
            "targets": traffic.get("target_limits", {}),
        },
        "cache": traffic.get("cache", {}),
        "reload": report.get("reload"),
        "overload": {
            **report.get("overload", {}),
            "loop_lag_ms": _rounded(report.get("overload", {}).get("loop_lag_ms"), 0),
        },
    }


def _rounded(value: object, digits: int) -> float | None:
    return round(value, digits) if isinstance(value, int | float) else None
