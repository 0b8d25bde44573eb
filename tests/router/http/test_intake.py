"""Intake: a burst of new connections is started a limit's worth at a time; health
probes and refusals are answered without a handler, at once."""

from __future__ import annotations

import collections
import json
import socket
from typing import TYPE_CHECKING

import trio
import trio.testing

from router.http import _intake
from router.http._admission import INITIAL, SUSTAINED, ConcurrencyLimit
from router.http._intake import HEALTHY, Intake, Waiting
from router.http._overload import Overload
from tests.conftest import openai_client

if TYPE_CHECKING:
    from collections.abc import Iterator

    import pytest

    from tests.conftest import RouterFactory

CONFIG = """
[providers.sim]
kind = "simulated"
latency = { median = "1ms", p99 = "2ms" }
tokens_per_second = 100000

[routes.chat]
fallback = ["sim:echo"]
"""

CHAT = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _post(body: bytes = CHAT) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
        b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body)
    )


class _Listener:
    """A listening socket and clients connected to it, all closed at the end."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.sock.setblocking(False)
        self.clients: list[socket.socket] = []

    def connect(self, data: bytes = b"") -> socket.socket:
        client = socket.create_connection(self.sock.getsockname())
        client.settimeout(5)
        if data:
            client.sendall(data)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.sock.close()


def _read_all(client: socket.socket) -> bytes:
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def test_a_health_probe_is_answered_without_a_handler_even_with_no_place_free() -> None:
    overload = Overload()
    overload.concurrency.value = 1.0
    intake = Intake(overload)
    listener = _Listener()
    started: list[socket.socket] = []
    try:
        busy = listener.connect(_post())
        probe = listener.connect(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        intake.take(listener.sock, now=0.0)
        intake.sort(now=0.0)
        intake.start(0.0, lambda conn, settled, arrived: started.append(conn))
        assert len(started) == 1  # the one place: the first connection's
        assert _read_all(probe) == HEALTHY
        assert not intake.waiting
        assert busy.fileno() != -1
    finally:
        for conn in started:
            conn.close()
        listener.close()


class _CountedWalks(collections.deque[Waiting]):
    """A queue that counts the walks over it."""

    walks = 0

    def __iter__(self) -> Iterator[Waiting]:
        self.walks += 1
        return super().__iter__()


def test_a_pass_walks_only_the_connections_whose_first_bytes_have_not_come(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Thousands of sorted connections waiting for a place cost a pass nothing: each
    connection's first bytes are looked at until they come, and the queue of those
    waiting is not walked (or rebuilt) on every pass."""
    overload = Overload()
    overload.concurrency.value = 1.0
    intake = Intake(overload, (b"POST /v1/",))
    intake.waiting = queue = _CountedWalks()
    listener = _Listener()
    started: list[socket.socket] = []
    peeks: list[socket.socket] = []
    peek = _intake._first_bytes

    def counted(conn: socket.socket) -> bytes:
        peeks.append(conn)
        return peek(conn)

    monkeypatch.setattr(_intake, "_first_bytes", counted)
    try:
        for _ in range(20):
            listener.connect(_post())
        silent = listener.connect()
        intake.take(listener.sock, now=0.0)
        intake.sort(now=0.0)
        intake.start(0.0, lambda conn, settled, arrived: started.append(conn))
        assert (len(peeks), len(started), len(intake.waiting)) == (21, 1, 20)
        peeks.clear()
        walks = queue.walks
        for _ in range(5):  # later passes: only the silent one is looked at
            intake.sort(now=0.0)
            intake.start(0.0, lambda conn, settled, arrived: started.append(conn))
        assert [conn.getpeername() for conn in peeks] == [silent.getsockname()] * 5
        assert intake.waiting is queue  # not rebuilt either
        assert queue.walks == walks
    finally:
        for conn in started:
            conn.close()
        intake.close()
        listener.close()


def test_while_the_loop_lags_api_requests_are_refused_at_once_without_a_handler() -> None:
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    intake = Intake(overload, (b"POST /v1/",))
    listener = _Listener()
    started: list[socket.socket] = []
    try:
        listener.connect(_post())
        waiting = listener.connect(_post())
        models = listener.connect(b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        intake.take(listener.sock, now=0.0)
        intake.sort(now=0.0)
        intake.start(0.0, lambda conn, settled, arrived: started.append(conn))
        assert len(started) == 1
        intake.start(0.01, lambda conn, settled, arrived: started.append(conn))
        assert len(intake.waiting) == 2  # the loop keeps up: the others wait their turn
        for _ in range(SUSTAINED):
            overload.probe.record(0.25)
        intake.start(0.02, lambda conn, settled, arrived: started.append(conn))
        answer = _read_all(waiting)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"retry-after: 1" in answer
        assert b'"code":"overloaded"' in answer
        assert overload.refused["lag"] == 1
        # Not an API request: it waits for a handler, which answers it.
        assert [w.conn.getpeername() for w in intake.waiting] == [models.getsockname()]
    finally:
        for conn in started:
            conn.close()
        intake.close()
        listener.close()


def test_the_limit_paces_but_never_starves_a_connection() -> None:
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    intake = Intake(overload)
    listener = _Listener()
    started: list[socket.socket] = []
    try:
        listener.connect(_post())
        listener.connect(_post())
        intake.take(listener.sock, now=0.0)
        intake.sort(now=0.0)
        intake.start(0.0, lambda conn, settled, arrived: started.append(conn))
        intake.start(0.02, lambda conn, settled, arrived: started.append(conn))
        assert len(started) == 1  # one place, taken
        intake.start(0.025, lambda conn, settled, arrived: started.append(conn))
        assert len(started) == 2  # overdue: started anyway
    finally:
        for conn in started:
            conn.close()
        listener.close()


def test_past_max_connections_a_new_connection_is_refused_at_once() -> None:
    overload = Overload()
    overload.max_connections = 1
    intake = Intake(overload)
    listener = _Listener()
    try:
        listener.connect()
        second = listener.connect()
        intake.take(listener.sock, now=0.0)
        answer = _read_all(second)
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"max_connections" in answer
        assert overload.refused["connections"] == 1
        assert len(intake.waiting) == 1
    finally:
        intake.close()
        listener.close()


async def test_a_burst_is_started_a_limit_at_a_time_and_every_client_served(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock
) -> None:
    burst = INITIAL * 2
    async with start_router(CONFIG) as url, openai_client(url) as client:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        answers: list[bytes] = []

        async def one_client() -> None:
            stream = await trio.open_tcp_stream(host, int(port))
            async with stream:
                await stream.send_all(_post())
                received = b""
                while b'"finish_reason"' not in received:
                    chunk = await stream.receive_some(65536)
                    if not chunk:
                        break
                    received += chunk
                answers.append(received)

        async with trio.open_nursery() as nursery:
            for _ in range(burst):
                nursery.start_soon(one_client)
        assert len(answers) == burst
        assert all(a.startswith(b"HTTP/1.1 200 ") for a in answers)
        reply = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "after"}]
        )
        assert reply.choices[0].message.content == "after"


async def test_clients_that_send_nothing_give_their_place_back(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Idle connections (pre-connected pools, or an attacker's) cannot block intake."""
    # A loop that lags: the limit stays where it is, whatever waits.
    monkeypatch.setattr(ConcurrencyLimit, "observe", lambda *args, **kwargs: None)
    async with start_router(CONFIG) as url, openai_client(url) as client:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        idle = [await trio.open_tcp_stream(host, int(port)) for _ in range(INITIAL * 2)]
        try:
            start = trio.current_time()
            reply = await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "served"}]
            )
            assert reply.choices[0].message.content == "served"
            assert trio.current_time() - start < 1  # not after the idle ones time out
        finally:
            for stream in idle:
                await stream.aclose()
