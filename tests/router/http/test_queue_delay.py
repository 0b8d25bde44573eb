"""Overload by the wait requests see: a window's mean wait before admission past ten times
``overload_lag`` refuses new connections that cannot start at once (inline at intake),
and the learned limit shrinks; what starts at once, kept-alive requests (paced) and what
is in flight go on."""

from __future__ import annotations

import json
import socket
import time
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from router.http import _intake
from router.http._admission import MIN_SAMPLES, QueueDelay
from router.http._intake import REFUSALS_PER_PASS, STARTS_PER_PASS, Intake
from router.http._overload import ARRIVED, PLACED, Overload
from tests.conftest import openai_client

if TYPE_CHECKING:
    from collections.abc import Callable

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
POST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: 127.0.0.1\r\n"
    b"content-type: application/json\r\ncontent-length: %d\r\n\r\n%s" % (len(CHAT), CHAT)
)


def _window(delay: QueueDelay, start: float, waits: list[float]) -> None:
    """Admissions spread over one window from ``start``, each having waited as given."""
    for n, wait in enumerate(waits):
        delay.record(wait, start + n * delay.interval / (len(waits) + 1))


def test_a_window_whose_mean_wait_passes_the_target_is_overload() -> None:
    delay = QueueDelay(target=0.5, interval=1.0)
    _window(delay, 0.0, [2.0] * MIN_SAMPLES)
    assert not delay.overloaded  # the verdict is taken when the window closes
    delay.expire(1.0)
    assert delay.overloaded
    # Requests on a free place admitted at once beside the queue do not hide it.
    _window(delay, 1.0, [0.0] * (MIN_SAMPLES // 2) + [3.0] * (MIN_SAMPLES // 2))
    delay.expire(2.0)
    assert delay.overloaded
    _window(delay, 2.0, [0.1] * MIN_SAMPLES)
    delay.expire(3.0)
    assert not delay.overloaded


def test_a_few_slow_requests_or_none_are_no_evidence_of_overload() -> None:
    delay = QueueDelay(target=0.5, interval=1.0)
    _window(delay, 0.0, [9.0] * (MIN_SAMPLES - 1))  # a quiet daemon, a few slow moments
    delay.expire(1.0)
    assert not delay.overloaded  # too few yet: the window runs on
    delay.expire(2.0)  # and none came for an interval: no evidence
    assert not delay.overloaded
    _window(delay, 2.0, [9.0] * (MIN_SAMPLES - 1))  # a saturated daemon admits few...
    delay.expire(3.0)
    delay.record(9.0, 3.5)  # ...but steadily: the window runs on to enough of them
    delay.expire(3.5)
    assert delay.overloaded
    delay.expire(4.5)  # nothing admitted since: stale
    assert not delay.overloaded


async def test_the_wait_counts_only_as_far_as_both_clocks_saw_it(
    autojump_clock: trio.abc.Clock,
) -> None:
    overload = Overload(lag_limit=0.1)
    now, wall = trio.current_time(), time.perf_counter()
    ARRIVED.set((now - 1.0, wall - 1.0))  # waited a second on both clocks
    await overload.admit()
    assert overload.delay.latest == pytest.approx(1.0, abs=0.05)
    ARRIVED.set((now - 1.0, time.perf_counter()))  # virtual time jumped, nobody waited
    await overload.admit()
    assert overload.delay.latest < 0.05
    ARRIVED.set(None)
    assert overload.snapshot()["queue_delay_ms"] == pytest.approx(
        overload.delay.latest * 1000, abs=0.1
    )


async def test_overloaded_a_kept_alive_request_is_paced_not_refused(
    autojump_clock: trio.abc.Clock,
) -> None:
    """Its client is mid-session: refusing it would close a connection that a client
    asking again at once reopens straight into intake, for nothing served sooner."""
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    overload.delay.overloaded = True
    await overload.admit()
    start = trio.current_time()
    await overload.admit()
    assert trio.current_time() - start == pytest.approx(overload.pace)
    assert overload.refused["lag"] == 0
    assert overload.in_flight == 2


async def test_a_connections_first_request_started_by_intake_is_admitted_at_once(
    autojump_clock: trio.abc.Clock,
) -> None:
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    await overload.admit()
    PLACED.set(True)  # intake gave its connection a place
    start = trio.current_time()
    await overload.admit()
    PLACED.set(False)
    assert trio.current_time() == start
    assert overload.in_flight == 2


def test_overloaded_the_learned_limit_shrinks_even_while_the_timer_is_on_time() -> None:
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 100.0
    overload.delay.overloaded = True
    overload.observe(0.0)
    assert overload.concurrency.limit < 100
    overload.delay.overloaded = False
    before = overload.concurrency.value
    overload.hold_back()
    overload.observe(0.0)
    assert overload.concurrency.value > before  # and grows again once it is over


class _Listener:
    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(512)
        self.sock.setblocking(False)
        self.clients: list[socket.socket] = []

    def connect(self, data: bytes) -> socket.socket:
        client = socket.create_connection(self.sock.getsockname())
        client.settimeout(5)
        client.sendall(data)
        self.clients.append(client)
        return client

    def close(self) -> None:
        for client in self.clients:
            client.close()
        self.sock.close()


def _answer(client: socket.socket) -> bytes:
    received = b""
    while chunk := client.recv(65536):
        received += chunk
    return received


def _keep(started: list[socket.socket]) -> Callable[..., None]:
    return lambda conn, settled, arrived: started.append(conn)


def test_overloaded_intake_refuses_api_requests_without_a_place_at_once() -> None:
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    intake = Intake(overload, (b"POST /v1/",))
    listener = _Listener()
    started: list[socket.socket] = []
    try:
        listener.connect(POST)
        refused = listener.connect(POST)
        models = listener.connect(b"GET /v1/models HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
        overload.delay.overloaded = True
        intake.take(listener.sock, now=0.0)
        intake.sort(now=0.0)
        intake.start(0.0, _keep(started))
        assert len(started) == 1  # the one place: taken at once, overloaded or not
        answer = _answer(refused)  # told at once, not after a quarter of overload_lag
        assert answer.startswith(b"HTTP/1.1 503 ")
        assert b"retry-after: 1" in answer
        assert overload.refused["lag"] == 1
        # Not an API request: it waits for a place, then starts anyway.
        assert [w.conn.getpeername() for w in intake.waiting] == [models.getsockname()]
        intake.start(overload.pace, _keep(started))
        assert len(started) == 2
    finally:
        for conn in started:
            conn.close()
        intake.close()
        listener.close()


def test_not_overloaded_a_waiting_connection_starts_after_a_quarter_of_overload_lag() -> None:
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    intake = Intake(overload, (b"POST /v1/",))
    listener = _Listener()
    started: list[socket.socket] = []
    arrivals: list[tuple[float, float]] = []
    try:
        listener.connect(POST)
        listener.connect(POST)
        intake.take(listener.sock, now=0.0)
        intake.sort(now=0.0)
        intake.start(0.0, _keep(started))
        intake.start(overload.pace * 0.9, _keep(started))
        assert len(started) == 1

        def spawn(conn: socket.socket, settled: object, arrived: tuple[float, float]) -> None:
            started.append(conn)
            arrivals.append(arrived)

        overload.probe.record(overload.concurrency.target * 2)  # a long pass: a burst
        intake.start(overload.pace, spawn)
        assert len(started) == 1  # no headroom: it waits for a place
        overload.probe.record(0.0)
        intake.start(overload.pace, spawn)
        assert len(started) == 2
        assert arrivals[0][0] == 0.0  # its wait is measured from the accept
        assert overload.refused["lag"] == 0
    finally:
        for conn in started:
            conn.close()
        intake.close()
        listener.close()


def test_refusals_and_starts_per_pass_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A pass that refuses or starts a thousand connections is a long pass for everyone."""
    monkeypatch.setattr(_intake, "REFUSALS_PER_PASS", 3)
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    intake = Intake(overload, (b"POST /v1/",))
    listener = _Listener()
    started: list[socket.socket] = []
    try:
        for _ in range(6):
            listener.connect(POST)
        overload.delay.overloaded = True
        intake.take(listener.sock, now=0.0)
        intake.sort(now=0.0)
        intake.start(0.0, _keep(started))
        assert (len(started), overload.refused["lag"], len(intake.waiting)) == (1, 3, 2)
        intake.start(0.0, _keep(started))
        assert (overload.refused["lag"], len(intake.waiting)) == (5, 0)
    finally:
        for conn in started:
            conn.close()
        intake.close()
        listener.close()
    assert REFUSALS_PER_PASS > 3


def test_fewer_handlers_start_per_pass_while_passes_run_long() -> None:
    overload = Overload(lag_limit=0.1)
    intake = Intake(overload)
    listener = _Listener()
    started: list[socket.socket] = []
    try:
        for _ in range(STARTS_PER_PASS + 4):
            listener.connect(POST)
        intake.take(listener.sock, now=0.0)
        intake.sort(now=0.0)
        overload.probe.record(overload.concurrency.target * 4)  # the last pass ran long
        intake.start(0.0, _keep(started))
        assert len(started) == STARTS_PER_PASS // 4
        overload.probe.record(0.0)
        intake.start(0.0, _keep(started))
        assert len(started) == STARTS_PER_PASS // 4 + STARTS_PER_PASS
    finally:
        for conn in started:
            conn.close()
        intake.close()
        listener.close()


async def test_the_daemon_measures_each_requests_wait_first_and_kept_alive(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    waits: list[float] = []
    record = QueueDelay.record

    def spy(self: QueueDelay, delay: float, now: float) -> None:
        waits.append(delay)
        record(self, delay, now)

    monkeypatch.setattr(QueueDelay, "record", spy)
    async with start_router(CONFIG) as url, openai_client(url) as client:
        for text in ("one", "two"):  # one connection, kept alive
            reply = await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": text}]
            )
            assert reply.choices[0].message.content == text
    assert len(waits) == 2
    assert all(0 <= wait < 1 for wait in waits)
