"""Overload: past max_in_flight or with a lagging loop, new requests get a fast 503
in the client's format, while the ones in flight finish; the limits are in
``/admin/status`` and the metrics."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import httpx2
import openai
import pytest
import trio
import trio.testing

from router.http._overload import SUSTAINED, Overload, Overloaded
from tests.conftest import openai_client

if TYPE_CHECKING:
    from tests.conftest import RouterFactory

CONFIG = """
[server]
max_in_flight = 1

[providers.sim]
kind = "simulated"
latency = {{ median = "{latency}", p99 = "{latency}" }}
tokens_per_second = 10

[routes.chat]
fallback = ["sim:echo"]
"""


async def test_past_max_in_flight_new_requests_get_503_while_the_held_one_finishes(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock
) -> None:
    async with start_router(CONFIG.format(latency="5s")) as url, openai_client(url) as client:
        finished: list[str] = []

        async def held() -> None:
            stream = await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "one two three"}], stream=True
            )
            finished.append("".join([c.choices[0].delta.content or "" async for c in stream]))

        async with (
            trio.open_nursery() as nursery,
            httpx2.AsyncClient(base_url=url, trust_env=False) as http,
        ):
            nursery.start_soon(held)
            while (await http.get("/admin/status")).json()["overload"]["in_flight"] == 0:  # noqa: ASYNC110
                await trio.sleep(0.01)  # virtual time: until the held stream is in flight
            start = trio.current_time()
            with pytest.raises(openai.APIStatusError) as refused:
                await client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "x"}]
                )
            assert trio.current_time() == start  # at once, not after the held one
            assert refused.value.status_code == 503
            assert refused.value.response.headers["retry-after"] == "1"
            assert "server.max_in_flight" in refused.value.message
            status = (await http.get("/admin/status")).json()["overload"]
            metrics = (await http.get("/metrics")).text
            assert status["in_flight"] == 1
            assert status["max_in_flight"] == 1
            assert status["refused"]["in_flight"] == 1
            assert "llm_router_requests_in_flight 1.0" in metrics
            assert 'llm_router_overload_refusals_total{reason="in_flight"} 1.0' in metrics
        assert finished == ["one two three"]  # the held stream ended whole


async def test_status_reports_the_limits_and_the_connections_held(
    start_router: RouterFactory,
) -> None:
    body = {"model": "chat", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}
    async with (
        start_router(CONFIG.format(latency="1ms")) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as http,
    ):
        assert (await http.post("/v1/messages", json=body)).status_code == 200
        status = (await http.get("/admin/status")).json()["overload"]
        assert status["overload_lag_ms"] == 100.0
        assert status["connections"] == 1  # this client's keep-alive connection
        assert status["in_flight"] == 0


def test_admit_counts_and_refuses_by_reason() -> None:
    overload = Overload(max_in_flight=2, lag_limit=0.1)
    overload.admit()
    overload.admit()
    with pytest.raises(Overloaded, match="max_in_flight"):
        overload.admit()
    overload.done()
    overload.lag = 0.25
    with pytest.raises(Overloaded, match="250 ms late") as caught:
        overload.admit()
    assert caught.value.retry_after == 1.0
    overload.lag = 0.0
    overload.admit()
    assert overload.in_flight == 2
    assert overload.refused == {"in_flight": 1, "lag": 1, "connections": 0}


async def test_the_lag_probe_reads_sustained_lateness_not_one_slow_moment() -> None:
    overload = Overload()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(overload.watch_lag)
        await trio.testing.wait_all_tasks_blocked()  # the probe waits for its timer
        time.sleep(0.2)  # noqa: ASYNC251 (one slow moment: the loop runs nothing for 200 ms)
        await trio.testing.wait_all_tasks_blocked()  # the probe woke late, once
        assert overload.lag < 0.1
        for _ in range(SUSTAINED):  # a saturated loop: late on every probe
            time.sleep(0.2)  # noqa: ASYNC251
            await trio.testing.wait_all_tasks_blocked()
        assert overload.lag >= 0.1
        nursery.cancel_scope.cancel()
