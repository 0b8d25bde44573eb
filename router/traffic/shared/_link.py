"""The daemon's link to the shared Redis: up or degraded, and never in a request's way.

Every call is bounded by ``shared_state.timeout`` (50 ms by default). A call that
fails (no answer in time, the connection lost) returns None, the caller goes on with
this daemon's own accounting, and the link turns *degraded*: said once in the log, in
``/admin/status`` and in the ``llm_router_shared_state_up`` metric. While degraded no
request waits for Redis at all; a background task reconnects with backoff (0.1 s
doubling to 5 s), loads the scripts, pushes what was accounted locally meanwhile (the
*resync*: spend charged while degraded) and only then turns the link *ok* again.

Writes that need no answer (a hold given back, spend charged, a window corrected, an
answer cached) are posted on the connection with :meth:`SharedLink.later`: they go out
with the next request's call to Redis, in the same ``send``, or after ``WRITE_DELAY``
when no call comes, so they cost a request no round trip and, under load, no system
call of their own. A write that cannot be sent, or whose connection ends before it is
answered, is handed back to its owner (`Write.failed`), which keeps what matters
(spend) for the resync. A Redis that stops answering is noticed by the calls' timeout
(the hedge budget's sync makes one every quarter second), which ends the connection
and so hands the writes still unanswered back.

The password is used for ``AUTH`` only: no log line, status or error holds it.
"""

from __future__ import annotations

import logging
import time
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, Protocol

import trio

from ._conn import ConnectionLost, Replies, open_connection
from ._resp import ReplyError
from ._scripts import ALL

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from rules import SharedState

    from ...upstream._tls import ClientTLS
    from ._conn import Connection
    from ._scripts import Script

__all__ = ["Command", "SharedLink", "Write"]

log = logging.getLogger("llm_router")

Command = tuple[bytes | str | int | float, ...]

#: Most writes waiting for their answer; past it a write is handed back at once.
MAX_QUEUED = 10_000
#: Seconds a posted write waits for a call to take it along before it is sent alone.
WRITE_DELAY = 0.005
#: Seconds between reconnection attempts: the first, and the most.
BACKOFF = (0.1, 5.0)
#: A connection (with AUTH and SELECT) gets this long, however short the call timeout.
CONNECT_TIMEOUT = 1.0


class Write(Protocol):
    """A write sent after the answer: its commands, and what to do if it cannot be sent."""

    def commands(self) -> Sequence[Command]: ...

    def failed(self) -> None: ...


class SharedLink:
    """One Redis connection, kept up; see the module's doc.

    Args:
        config: ``server.shared_state``.
        password: The password's value (resolved from its reference), or None.
        wall: The wall clock, for ``since`` in the status.
        tls: Whom a ``rediss://`` connection trusts (``shared_state.tls``, built
            already); None: the system's CAs.
    """

    def __init__(
        self,
        config: SharedState,
        password: str | None,
        wall: Callable[[], float] = time.time,
        tls: ClientTLS | None = None,
    ) -> None:
        self.config = config
        self._tls = tls
        self.url = str(config.url)
        self._password = password
        self._wall = wall
        self.state: Literal["ok", "degraded"] = "degraded"
        self.since = wall()
        self.reason: str | None = "not connected yet"
        self.errors = 0  # calls that failed (timeouts, lost connections, script errors)
        self._conn: Connection | None = None
        self._down = trio.Event()
        self.unanswered = 0  # writes posted and not yet answered (or handed back)
        self._wake = trio.Event()
        #: Called once connected, before the link is ok: the writes that resynchronise.
        self.resync: list[Callable[[], list[Write]]] = []
        self._logged_down = False
        self._lost: str | None = None  # why the connection in use ended, once it has

    def key(self, *parts: str) -> str:
        """A Redis key under the configured prefix."""
        return ":".join((self.config.prefix, *parts))

    @property
    def ok(self) -> bool:
        return self.state == "ok"

    # -- calls ---------------------------------------------------------------------------

    async def script(self, script: Script, keys: Sequence[str], args: Sequence[Any]) -> Any:
        """Run ``script``: its reply, or None (degraded, failed: go on locally)."""
        replies = await self.pipeline([("EVALSHA", script.sha, len(keys), *keys, *args)])
        if replies is None:
            return None
        reply = replies[0]
        if isinstance(reply, ReplyError):
            self._script_error(script, reply)
            return None
        return reply

    async def pipeline(self, commands: Sequence[Command]) -> list[Any] | None:
        """The replies to ``commands``, sent together; None when degraded or failed."""
        conn = self._conn
        if conn is None or self.state != "ok":
            return None
        with trio.move_on_after(self.config.timeout) as scope:
            try:
                return await conn.pipeline(commands)
            except ConnectionLost as exc:
                self.fail(str(exc))
                return None
        assert scope.cancelled_caught
        self.fail(f"no answer within {self.config.timeout * 1000:g} ms")
        return None

    def later(self, write: Write) -> None:
        """Send ``write`` soon, off the request's path (see the module's doc)."""
        conn = self._conn
        if conn is None or self.state != "ok" or self.unanswered >= MAX_QUEUED:
            write.failed()
            return
        self.unanswered += 1
        conn.post(write.commands(), partial(self._written, write))
        self._wake.set()

    def _written(self, write: Write, replies: Replies) -> None:
        self.unanswered -= 1
        if isinstance(replies, ConnectionLost):
            write.failed()
            return
        for reply in replies:
            if isinstance(reply, ReplyError):
                self.errors += 1
                log.error("shared state: a write was refused: %s", str(reply)[:200])

    def _script_error(self, script: Script, reply: ReplyError) -> None:
        self.errors += 1
        if str(reply).startswith("NOSCRIPT"):  # SCRIPT FLUSH behind our back: load again
            self.fail("the scripts were flushed")
        else:
            log.error("shared state: script %s failed: %s", script.name, str(reply)[:200])

    # -- state ---------------------------------------------------------------------------

    def fail(self, reason: str) -> None:
        """A call failed: degraded until reconnected (logged once per outage)."""
        self.errors += 1
        if self.state == "ok":
            self.state, self.since, self.reason = "degraded", self._wall(), reason
            log.warning(
                "shared state %s unreachable (%s): serving on this daemon's own accounting",
                self.url,
                reason,
            )
            self._logged_down = True
        self._down.set()

    def _up(self) -> None:
        if self._logged_down:
            log.warning(
                "shared state %s reachable again after %.1fs", self.url, self._wall() - self.since
            )
        else:
            log.info("shared state %s connected", self.url)
        self._logged_down = False
        self.state, self.since, self.reason = "ok", self._wall(), None

    def snapshot(self) -> dict[str, object]:
        """For ``/admin/status``: the URL (never a password), the state and since when."""
        return {
            "url": self.url,
            "state": self.state,
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.since)),
            "reason": self.reason,
            "errors": self.errors,
            "unanswered_writes": self.unanswered,
        }

    # -- the background task -------------------------------------------------------------

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep the link up. Reports started after the first attempt, whichever way it
        went (a daemon starts degraded rather than not at all)."""
        delay, started = BACKOFF[0], False
        while True:
            self._down = trio.Event()
            failure = None
            async with trio.open_nursery() as nursery:
                try:
                    await self._connect(nursery)
                except ConnectionLost as exc:
                    failure = str(exc)
                else:
                    delay = BACKOFF[0]
                    nursery.start_soon(self._flush_writes)
                    if not started:
                        task_status.started()
                        started = True
                    await self._down.wait()
                nursery.cancel_scope.cancel()
            if failure is not None:
                if self.reason == "not connected yet" and not self._logged_down:
                    log.warning(
                        "shared state %s unreachable (%s): serving on this daemon's own"
                        " accounting until it answers",
                        self.url,
                        failure,
                    )
                    self._logged_down = True
                self.reason = failure
            self._conn = None
            if self.state == "ok":
                self.fail(self._lost or "connection lost")
            if not started:
                task_status.started()
                started = True
            await trio.sleep(delay)
            delay = min(delay * 2, BACKOFF[1])

    async def _connect(self, nursery: trio.Nursery) -> None:
        """Connect, load the scripts, resync; then the link is ok.

        Raises:
            ConnectionLost: any step failed.
        """
        self._lost = None
        timeout = max(CONNECT_TIMEOUT, self.config.timeout)
        conn = await open_connection(
            self.config.url, self._password, nursery, timeout, self._connection_lost, self._tls
        )
        writes: list[Write] = []
        try:
            with trio.move_on_after(timeout):
                replies = await conn.pipeline([("SCRIPT", "LOAD", s.source) for s in ALL])
                for script, reply in zip(ALL, replies, strict=True):
                    if isinstance(reply, ReplyError):
                        raise ConnectionLost(f"script {script.name} refused: {str(reply)[:120]}")
                writes = [w for source in self.resync for w in source()]
                commands = [c for w in writes for c in w.commands()]
                if commands:
                    for reply in await conn.pipeline(commands):
                        if isinstance(reply, ReplyError):
                            log.error("shared state: resync write refused: %s", str(reply)[:200])
                self._conn = conn
                self._up()
                return
        except ConnectionLost:
            for write in writes:
                write.failed()
            raise
        for write in writes:
            write.failed()
        raise ConnectionLost(f"no answer within {timeout:g}s after connecting")

    def _connection_lost(self, why: str) -> None:
        self._lost = why
        if self._conn is not None and why != "closed":  # "closed": ours, on the way out
            self.fail(why)

    async def _flush_writes(self) -> None:
        """Send posted writes that no call took along within ``WRITE_DELAY``."""
        while True:
            await self._wake.wait()
            await trio.sleep(WRITE_DELAY)
            self._wake = trio.Event()
            conn = self._conn
            if conn is not None:
                conn.flush()
