"""Intake: connections from the listen queue to their handlers, at a pace the loop can take.

A connection costs little in the kernel's listen queue and a good deal once its handler
runs: hypercorn's connection tasks, the parse, the app, a dozen scheduler steps in all.
Start 500 handlers at once and every scheduler pass holds a step of each, hundreds of
milliseconds long, for everyone. So intake takes every queued connection at each
wake-up (a few microseconds each) but holds the connections with a handler to the
concurrency limit learned from the loop's lag (:mod:`._admission`), starting the
others oldest first as places free up, at most :data:`STARTS_PER_PASS` per pass. It
answers three kinds of connection itself, from the request's first bytes, without a
handler:

- any, past ``server.max_connections`` (taken or waiting): ``503`` at once;

- ``GET /healthz`` on a new connection: ``200`` at once, as HAProxy's ``monitor-uri``
  answers at the front, so an orchestrator's liveness probe is not queued behind a
  burst it has nothing to do with;
- a request to an API endpoint while the loop lags past ``server.overload_lag``, or
  while the daemon is overloaded (:attr:`.Overload.overloaded`: requests have waited
  too long for a turn) and no place is free for it: ``503`` with ``Retry-After`` at
  once, as the app would answer it, but for a few system calls instead of a handler
  (refusing a thousand must not itself saturate the loop). A client is told rather
  than queued behind the crowd.

The limit paces, it never starves: unless the daemon is overloaded, a connection that
has waited a quarter of ``overload_lag`` is started whatever the limit says, once a
pass runs short (as many as a pass may start).

Anything else, and anything whose first bytes have not arrived yet, gets its handler.
"""

from __future__ import annotations

import collections
import contextlib
import logging
import math
import socket
import time
from typing import TYPE_CHECKING

import attrs
import orjson
import trio

from ._overload import Overload

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

__all__ = ["API_PATHS", "HEALTHY", "STARTS_PER_PASS", "Intake", "accept_forever", "answer_inline"]

log = logging.getLogger("llm_router")

#: Connections taken from the listen queue per wake-up, at most.
TAKE_PER_WAKE = 1024
#: Handlers started per scheduler pass, at most, while passes are short. Handlers
#: started together move in step (parse, connect upstream, TLS handshake, answer), so
#: a pass in a burst costs about this many requests' worth of CPU; while passes run
#: past the learned limit's lag target, fewer start (down to one a pass), and a health
#: probe, answered by intake once a pass, waits less.
STARTS_PER_PASS = 16
#: Connections refused per pass, at most (each is a few system calls, some 20-50 µs).
REFUSALS_PER_PASS = 128
#: How much of a request's first bytes intake looks at.
PEEK = 1024
#: How often intake looks again at connections it cannot start yet (a health probe's
#: request may come just after its connection).
RECHECK = 0.002


def _answer(status: bytes, body: dict[str, object], *extra: bytes) -> bytes:
    data = orjson.dumps(body)
    head = [
        b"HTTP/1.1 " + status,
        b"content-type: application/json",
        b"content-length: %d" % len(data),
        b"connection: close",
        *extra,
    ]
    return b"\r\n".join(head) + b"\r\n\r\n" + data


def _unavailable(message: str) -> bytes:
    error = {"message": message, "type": "server_error", "param": None, "code": "overloaded"}
    return _answer(b"503 Service Unavailable", {"error": error}, b"retry-after: 1")


HEALTHY = _answer(b"200 OK", {"status": "ok"})
BEHIND = _unavailable(
    "the router is saturated (requests wait longer than server.overload_lag allows); retry shortly"
)
TOO_MANY_CONNECTIONS = _unavailable("too many connections (server.max_connections); retry shortly")


def answer_inline(conn: socket.socket, answer: bytes) -> None:
    """Answer on a connection without a handler, and close it.

    What the client sent so far is read first: closing a socket with unread data
    resets the connection, and the client could lose the answer.
    """
    with contextlib.suppress(OSError):  # nothing yet (BlockingIOError), or gone
        conn.recv(65536)
    with contextlib.suppress(OSError):
        conn.send(answer)
        conn.shutdown(socket.SHUT_WR)
    conn.close()


def _first_bytes(conn: socket.socket) -> bytes:
    try:
        return conn.recv(PEEK, socket.MSG_PEEK)
    except OSError:  # nothing yet (BlockingIOError), or the client is gone
        return b""


def is_health_probe(head: bytes) -> bool:
    """A whole ``GET /healthz`` request head (what follows it is read and dropped)."""
    return head.startswith((b"GET /healthz ", b"GET /healthz?")) and b"\r\n\r\n" in head


@attrs.define(slots=True)
class Waiting:
    """A connection taken from the listen queue, not started yet.

    Attributes:
        since: When it was taken (trio's clock).
        wall: The same on the wall clock (``time.perf_counter``).
        api: Its request is to an API endpoint (True), to another (False), or its
            first bytes have not come yet (None).
        out: It has left the queue (started, answered or refused).
    """

    conn: socket.socket
    since: float
    wall: float
    api: bool | None = None
    out: bool = False


@attrs.define
class Intake:
    """Connections taken from one listen queue, waiting for their handler.

    Attributes:
        overload: Where the daemon stands (its lag, requests waiting for a turn) and
            the refusal counts.
        api_paths: Request-line prefixes of the endpoints a refusal may answer
            (``b"POST /v1/"`` and the like); others always get a handler.
        waiting: Connections taken and not started, oldest first.
        unsorted: Those of them whose first bytes have not come yet (and, until the
            next pass, any of those started meanwhile).
        settling: Connections started whose first answer is not sent yet.
    """

    overload: Overload
    api_paths: tuple[bytes, ...] = (b"POST /",)
    waiting: collections.deque[Waiting] = attrs.field(factory=collections.deque)
    unsorted: list[Waiting] = attrs.field(factory=list)
    settling: int = 0
    _idle: trio.CancelScope | None = None

    def startable(self) -> bool:
        """Connections wait and the limit has places for them."""
        return bool(self.waiting) and self.settling < self.overload.concurrency.limit

    def idle(self, now: float) -> trio.CancelScope:
        """The scope to wait for new connections in: cancelled when a place frees up,
        and due soon while connections wait (their first bytes may come, the limit may
        grow, the oldest may fall due)."""
        self._idle = trio.CancelScope(deadline=now + RECHECK if self.waiting else math.inf)
        return self._idle

    def take(self, sock: socket.socket, now: float) -> str | None:
        """Everything in the listen queue (up to :data:`TAKE_PER_WAKE`), without waiting.

        Returns why ``accept()`` failed, if it did (out of descriptors, say), else None.
        """
        wall = time.perf_counter()
        for _ in range(TAKE_PER_WAKE):
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return None
            except OSError as exc:
                return exc.strerror or str(exc)
            conn.setblocking(False)
            if self._full():
                self.overload.refused["connections"] += 1
                answer_inline(conn, TOO_MANY_CONNECTIONS)
            else:
                waiting = Waiting(conn, now, wall)
                self.waiting.append(waiting)
                self.unsorted.append(waiting)
        return None

    def sort(self, now: float) -> None:
        """Look at the first bytes of the connections waiting: answer the health probes
        at once, note which are API requests.

        A client's request comes a moment after its connection, so this runs on every
        pass while connections wait, and reads each connection's first bytes until
        they have come: only those, so that a pass costs the connections still silent,
        not the thousands already sorted and waiting for a place.
        """
        silent: list[Waiting] = []
        for waiting in self.unsorted:
            if waiting.out:
                continue  # started, silent still, by start()
            first = _first_bytes(waiting.conn)
            if is_health_probe(first):
                waiting.out = True
                self.waiting.remove(waiting)  # rare: a probe among the waiting
                answer_inline(waiting.conn, HEALTHY)
            elif first:
                waiting.api = first.startswith(self.api_paths)
            else:
                silent.append(waiting)
        self.unsorted = silent

    def start(
        self,
        now: float,
        spawn: Callable[[socket.socket, Callable[[], None] | None, tuple[float, float]], None],
    ) -> None:
        """Start handlers, oldest first, while the learned limit has places (at most
        :data:`STARTS_PER_PASS`), and refuse the API requests that may not wait.

        While the loop lags past ``overload_lag`` every API request waiting is refused;
        while the daemon is overloaded, those left without a place; else a connection
        that waited a quarter of ``overload_lag`` starts anyway if the last pass was
        short.

        A place is held from the handler's start until the answer to the connection's
        first request is sent (``spawn`` gets the function to call then, and when the
        connection arrived), so a burst of one-request clients is carried a limit's
        worth at a time, and a stream holds its place until it ends. A client that
        sends nothing gives its place back after a moment (the server's
        ``FIRST_BYTES_GRACE``); its request, when it comes, meets the limit on
        requests in flight, as the later ones of a kept-alive connection do.
        """
        overload = self.overload
        if overload.behind:
            self._refuse_api()
        for _ in range(min(self._batch(), len(self.waiting))):
            head = self.waiting[0]
            if head.api and overload.behind:
                break  # refused in the next pass (refusals per pass are bounded)
            if self.settling >= overload.concurrency.limit:
                if overload.overloaded and head.api is not False:
                    break  # no place: refused below, or waits for its first bytes
                if now - head.since < overload.pace or not self._headroom():
                    overload.hold_back()
                    break
            overload.connections += 1  # the handler counts itself out
            self.waiting.popleft().out = True
            spawn(head.conn, self._place(), (head.since, head.wall))
        if overload.overloaded and self.settling >= overload.concurrency.limit:
            self._refuse_api()

    def _headroom(self) -> bool:
        """The last pass was short: a connection started past the limit costs little.
        In a burst passes run long, and the overdue wait for a place instead (or are
        refused once the daemon is overloaded): starting them all would admit the whole
        burst before the wait it causes is measured."""
        return self.overload.probe.latest <= self.overload.concurrency.target

    def _batch(self) -> int:
        """How many may start this pass: fewer as the last pass ran long."""
        pass_time = self.overload.probe.latest
        target = self.overload.concurrency.target
        if pass_time <= target:
            return STARTS_PER_PASS
        return max(1, int(STARTS_PER_PASS * target / pass_time))

    def _refuse_api(self) -> None:
        """Tell the API requests waiting, oldest first, to come back later (at most
        :data:`REFUSALS_PER_PASS`: a thousand at once would make one long pass). The
        walk past others is bounded as well: a pass never walks the whole queue."""
        passed: list[Waiting] = []
        budget = REFUSALS_PER_PASS
        while self.waiting and budget and len(passed) < REFUSALS_PER_PASS:
            waiting = self.waiting.popleft()
            if waiting.api:
                budget -= 1
                waiting.out = True
                self.overload.refused["lag"] += 1
                answer_inline(waiting.conn, BEHIND)
            else:
                passed.append(waiting)
        self.waiting.extendleft(reversed(passed))

    def _place(self) -> Callable[[], None]:
        """Take a place; the function returned gives it back (once, however often called)."""
        self.settling += 1
        held = True

        def give_back() -> None:
            nonlocal held
            if held:
                held = False
                self.settling -= 1
                if self._idle is not None:
                    self._idle.cancel()

        return give_back

    def _full(self) -> bool:
        cap = self.overload.max_connections
        return bool(cap) and self.overload.connections + len(self.waiting) >= cap

    def close(self) -> None:
        """Close the connections never started (the daemon is stopping)."""
        while self.waiting:
            self.waiting.popleft().conn.close()
        self.unsorted.clear()


#: Request lines of the API endpoints, which intake may refuse when the daemon is behind.
API_PATHS = (
    b"POST /v1/",
    b"POST /chat/",
    b"POST /embeddings",
    b"POST /responses",
    b"POST /completions",
    b"POST /messages",
)


async def accept_forever(
    sock: socket.socket,
    intake: Intake,
    handle: Callable[
        [trio.SocketStream, Callable[[], None] | None, tuple[float, float] | None],
        Awaitable[None],
    ],
    nursery: trio.Nursery,
) -> None:
    """Take connections from the listen queue and start their handlers (:mod:`._intake`).

    One ``accept()`` per scheduler pass (trio's ``serve_listeners``) takes about 17
    connections a second from a saturated loop, and the rest wait unseen in the
    kernel's queue; intake takes the whole queue at each wake-up and starts the
    handlers a batch per pass. ``sock`` is the listener's (non-blocking) stdlib socket.
    """

    def spawn(
        conn: socket.socket, settled: Callable[[], None] | None, arrived: tuple[float, float]
    ) -> None:
        stream = trio.SocketStream(trio.socket.from_stdlib_socket(conn))
        nursery.start_soon(handle, stream, settled, arrived)

    try:
        while True:
            if intake.startable():
                await trio.lowlevel.checkpoint()  # more to start, in the next pass
            else:
                # A new connection, a place freed (intake cancels this scope), or a
                # look at the waiting ones' first bytes again.
                with intake.idle(trio.current_time()):
                    await trio.lowlevel.wait_readable(sock)
            now = trio.current_time()
            failure = intake.take(sock, now)
            intake.sort(now)
            intake.start(now, spawn)
            if failure is not None and not intake.waiting:
                # EMFILE and the like: wait a little, as trio does
                log.error("accept() failed: %s; retrying in 100 ms", failure)
                await trio.sleep(0.1)
    finally:
        intake.close()
