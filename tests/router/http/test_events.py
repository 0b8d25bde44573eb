"""``GET /admin/events`` over real HTTP: the first event, one event per sample with only
the state that changed, and a stream that ends cleanly when the client goes, when the
daemon stops (without holding the drain) or when too many are open.

Samples are closed by hand (``app.timeline.tick``), so no test waits on a clock.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import orjson
import trio
from hypercorn.config import Config as HypercornConfig

from adapters import provider_kinds
from router import App
from router.http import _events
from router.http._server import ConnectionLimits, serve
from router.ops._assemble import build_runtime
from rules import parse_config

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    import pytest

CONFIG = """
[providers.sim]
kind = "simulated"
latency = { median = "1ms", p99 = "1ms" }

[routes.chat]
fallback = ["sim:echo", "sim:other"]
"""
CHAT = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}


def make_app() -> App:
    return App(build_runtime(parse_config(CONFIG, kinds=provider_kinds())).runtime)


@asynccontextmanager
async def serving(app: App) -> AsyncIterator[tuple[str, trio.Event, list[str]]]:
    """The app behind the daemon's own server, whose drain would wait an hour for a
    request that did not end; setting the event stops it as SIGTERM does."""
    config = HypercornConfig()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.graceful_timeout = 3600.0
    stop = trio.Event()
    done: list[str] = []

    async def shutdown() -> None:
        await stop.wait()
        app.timeline.close()

    async def run(task_status: trio.TaskStatus[list[str]]) -> None:
        await serve(
            app, config, ConnectionLimits(), shutdown_trigger=shutdown, task_status=task_status
        )
        done.append("drained")

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(run)
        yield binds[0], stop, done
        stop.set()


class Events:
    """Server-Sent Events read from a streamed answer (events end at a blank line)."""

    def __init__(self, response: httpx2.Response) -> None:
        self.chunks = response.aiter_bytes()
        self.buffer = b""

    async def next(self) -> tuple[str, Any]:
        while b"\n\n" not in self.buffer:
            self.buffer += await anext(self.chunks)
        raw, self.buffer = self.buffer.split(b"\n\n", 1)
        fields = dict(line.split(b": ", 1) for line in raw.split(b"\n") if b": " in line)
        return fields[b"event"].decode(), orjson.loads(fields[b"data"])

    async def rest(self) -> bytes:
        """Everything until the answer ends (raises if it ends badly)."""
        async for chunk in self.chunks:
            self.buffer += chunk
        return self.buffer


async def wait_for(condition: Any) -> None:
    """Until ``condition()`` holds; the guard fails the test instead of hanging it."""
    with trio.fail_after(10):
        while not condition():  # noqa: ASYNC110 - the server's side of a socket: no event to await
            await trio.sleep(0.01)


async def test_hello_carries_the_ring_and_the_page_state() -> None:
    app = make_app()
    for _ in range(3):
        app.timeline.tick(app.gauges())
    async with (
        serving(app) as (url, _, _),
        httpx2.AsyncClient(base_url=url) as client,
        client.stream("GET", "/admin/events") as response,
    ):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["cache-control"] == "no-store"
        kind, hello = await Events(response).next()
    assert kind == "hello"
    assert hello["step"] == 1.0
    assert hello["span"] == 900.0
    assert len(hello["history"]) == 3
    assert set(hello["history"][0]["x"]) == {"sim:echo", "sim:other"}
    state = hello["state"]
    assert "chat: fallback" in state["rules"]["tree"]
    assert state["rules"]["routes"] == ["chat"]
    assert state["reload"] is None  # this app cannot reload
    assert set(state) >= {"targets", "budgets", "windows", "cache", "overload", "hedge_budget"}


async def test_each_sample_is_sent_with_the_state_that_changed() -> None:
    app = make_app()
    async with (
        serving(app) as (url, _, _),
        httpx2.AsyncClient(base_url=url) as client,
        client.stream("GET", "/admin/events") as response,
    ):
        events = Events(response)
        assert (await events.next())[0] == "hello"
        app.timeline.tick(app.gauges())
        kind, idle = await events.next()
        assert kind == "sample"
        assert "state" not in idle  # nothing changed
        assert len(idle["s"]) == 1
        assert (await client.post("/v1/chat/completions", json=CHAT)).status_code == 200
        # The request is counted as it ends, in the same step as it leaves in_flight.
        await wait_for(lambda: app.overload.in_flight == 0)
        app.timeline.tick(app.gauges())
        _, busy = await events.next()
    assert busy["s"][0]["x"]["sim:echo"][:2] == [1, 0]  # one attempt, no failure
    assert busy["s"][0]["g"][0] == 1
    assert busy["state"]["targets"]["sim:echo"]["state"] == "closed"
    assert "rules" not in busy["state"]  # sent whole once, not again


async def test_a_client_that_goes_ends_its_stream() -> None:
    app = make_app()
    async with serving(app) as (url, _, _), httpx2.AsyncClient(base_url=url) as client:
        async with client.stream("GET", "/admin/events") as response:
            events = Events(response)  # held: a dropped reader would close its answer
            await events.next()
            assert app.feed.readers == 1
        await wait_for(lambda: app.feed.readers == 0)


async def test_stopping_ends_open_streams_cleanly_and_holds_no_drain() -> None:
    app = make_app()
    async with (
        serving(app) as (url, stop, done),
        httpx2.AsyncClient(base_url=url) as client,
        client.stream("GET", "/admin/events") as response,
    ):
        events = Events(response)
        await events.next()
        stop.set()
        # The answer's last chunk arrives (httpx2 raises on a cut chunked body).
        assert await events.rest() == b""
        await wait_for(lambda: done == ["drained"])  # not after the hour of drain
    assert app.feed.readers == 0


async def test_a_closed_timeline_or_too_many_readers_get_503(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_events, "MAX_READERS", 1)
    app = make_app()
    async with (
        serving(app) as (url, _, _),
        httpx2.AsyncClient(base_url=url) as client,
    ):
        async with client.stream("GET", "/admin/events") as first:
            events = Events(first)  # held: a dropped reader would close its answer
            await events.next()
            second = await client.get("/admin/events")
            assert second.status_code == 503
            assert second.headers["retry-after"] == "5"
        await wait_for(lambda: app.feed.readers == 0)
        app.timeline.close()
        assert (await client.get("/admin/events")).status_code == 503


async def test_a_write_not_taken_within_the_stall_bound_ends_the_stream(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client that stops reading: its write is cut short at WRITE_STALL, which ends the
    stream and its connection (zero here: every write is already too late)."""
    monkeypatch.setattr(_events, "WRITE_STALL", 0.0)
    app = make_app()
    async with serving(app) as (url, _, _):
        host, port = url.removeprefix("http://").split(":")
        received = b""
        async with await trio.open_tcp_stream(host, int(port)) as stream:
            request = b"GET /admin/events HTTP/1.1\r\nhost: %s:%s\r\n\r\n"
            await stream.send_all(request % (host.encode(), port.encode()))
            with trio.fail_after(10):
                while chunk := await stream.receive_some():  # until the server closes
                    received += chunk
        assert received.startswith(b"HTTP/1.1 200")
        assert not received.endswith(b"0\r\n\r\n")  # cut, not a finished answer
        await wait_for(lambda: app.feed.readers == 0)


def test_state_picks_rounded_values_a_person_reads() -> None:
    report = {
        "rules": {"digest": "d"},
        "targets": {"a:m": {"state": "open", "seconds_until_half_open": 12.34, "in_flight": 3}},
        "hedge_budget": {"tokens": 4.4444, "burst": 5.0, "rate": 0.1},
        "traffic": {"budgets": {"k": {"spent_day": 0.12345678, "budget": None}}},
        "overload": {"loop_lag_ms": 1.6, "connections": 2},
    }
    state = _events.page_state(report, "tree")
    assert state["rules"] == {"digest": "d", "tree": "tree"}
    assert state["targets"] == {"a:m": {"state": "open", "last_error": None, "half_open_in": 12}}
    assert state["hedge_budget"] == {"tokens": 4.4, "burst": 5.0}
    assert state["budgets"]["k"]["spent_day"] == 0.123457
    assert state["overload"] == {"loop_lag_ms": 2, "connections": 2}
