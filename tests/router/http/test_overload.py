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

from router.http._admission import FLOOR, INITIAL, SUSTAINED, ConcurrencyLimit, LagProbe
from router.http._overload import Overload, Overloaded
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
            assert "llm_router_overloaded 0.0" in metrics  # refused by the cap, not the wait
            assert "llm_router_queue_delay_seconds " in metrics
            assert status["overloaded"] is False
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


async def test_admit_counts_and_refuses_by_reason() -> None:
    overload = Overload(max_in_flight=2, lag_limit=0.1)
    await overload.admit()
    await overload.admit()
    with pytest.raises(Overloaded, match="max_in_flight"):
        await overload.admit()
    overload.done()
    for _ in range(SUSTAINED):
        overload.observe(0.25)
    with pytest.raises(Overloaded, match="250 ms late") as caught:
        await overload.admit()
    assert caught.value.retry_after == 1.0
    overload.observe(0.0)  # one probe on time: the loop is not saturated any more
    await overload.admit()
    assert overload.in_flight == 2
    assert overload.refused == {"in_flight": 1, "lag": 1, "connections": 0}


def test_the_lag_probe_reads_sustained_lateness_not_one_slow_moment() -> None:
    probe = LagProbe()
    probe.record(0.2)  # one slow moment
    assert probe.latest == 0.2
    assert probe.sustained == 0.0
    for _ in range(SUSTAINED - 1):  # a saturated loop: late on every probe
        probe.record(0.15)
    assert probe.sustained == 0.15
    probe.record(-0.001)  # early (a clock's jitter) reads as on time
    assert probe.latest == 0.0
    assert probe.sustained == 0.0


async def test_the_probe_measures_how_late_the_loop_runs_its_timer() -> None:
    overload = Overload()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(overload.watch_lag)
        await trio.testing.wait_all_tasks_blocked()  # the probe waits for its timer
        time.sleep(0.1)  # noqa: ASYNC251 (the loop runs nothing for 100 ms)
        await trio.testing.wait_all_tasks_blocked()  # the probe woke late
        assert overload.probe.latest >= 0.08
        assert overload.lag < 0.08  # once is not saturation
        nursery.cancel_scope.cancel()


async def test_virtual_time_never_reads_as_lag(autojump_clock: trio.abc.Clock) -> None:
    overload = Overload()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(overload.watch_lag)
        await trio.sleep(1)  # a hundred probes, each due at once in virtual time
        time.sleep(0.02)  # noqa: ASYNC251 (wall time runs while virtual time stands)
        await trio.sleep(0.1)
        assert overload.probe.latest == 0.0
        assert overload.concurrency.limit == INITIAL  # nothing held back: no growth
        nursery.cancel_scope.cancel()


def test_the_limit_grows_only_while_it_holds_requests_back_and_the_loop_keeps_up() -> None:
    limit = ConcurrencyLimit(target=0.005)
    limit.observe(0.0, held_back=False)
    assert limit.limit == INITIAL
    limit.observe(0.0, held_back=True)  # an idle loop: doubles
    assert limit.limit == INITIAL * 2
    limit.observe(0.004, held_back=True)  # near the target: grows a little
    assert limit.limit == int(INITIAL * 2 * 1.2)
    for _ in range(50):
        limit.observe(0.0, held_back=True)
    assert limit.limit > 5000  # thousands of held streams, if the loop carries them


def test_the_limit_shrinks_on_a_late_pass_waits_for_the_effect_and_keeps_a_floor() -> None:
    limit = ConcurrencyLimit(target=0.005)
    limit.observe(0.05, held_back=True)
    assert limit.limit == int(INITIAL * 0.75)
    for _ in range(3):  # the requests already started still run: no second cut yet
        limit.observe(0.05, held_back=True)
    assert limit.limit == int(INITIAL * 0.75)
    for _ in range(40):
        limit.observe(0.05, held_back=True)
    assert limit.limit == FLOOR


async def test_past_the_learned_limit_requests_wait_their_turn_in_order(
    autojump_clock: trio.abc.Clock,
) -> None:
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    await overload.admit()
    order: list[int] = []

    async def request(n: int) -> None:
        await overload.admit()
        order.append(n)

    async with trio.open_nursery() as nursery:
        for n in range(3):
            nursery.start_soon(request, n)
            await trio.testing.wait_all_tasks_blocked()
        assert overload.queued == 3
        overload.done()  # the first request ends: the next in line goes
        await trio.testing.wait_all_tasks_blocked()
        assert order == [0]
        overload.done()
        await trio.testing.wait_all_tasks_blocked()
        assert order == [0, 1]
        overload.done()
    assert order == [0, 1, 2]
    assert overload.in_flight == 1


async def test_a_request_whose_turn_does_not_come_within_a_quarter_of_overload_lag_goes_anyway(
    autojump_clock: trio.abc.Clock,
) -> None:
    """The learned limit paces; it never starves a request while the daemon keeps up."""
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    await overload.admit()
    start = trio.current_time()
    await overload.admit()
    assert trio.current_time() - start == pytest.approx(0.025)
    assert overload.in_flight == 2
    assert overload.queued == 0


async def test_a_request_still_waiting_when_the_loop_lags_gets_503(
    autojump_clock: trio.abc.Clock,
) -> None:
    overload = Overload(lag_limit=0.1)
    overload.concurrency.value = 1.0
    await overload.admit()
    async with trio.open_nursery() as nursery:

        async def lagging() -> None:
            await trio.sleep(0.02)
            for _ in range(SUSTAINED):
                overload.probe.record(0.25)  # the loop falls behind while the request waits

        nursery.start_soon(lagging)
        with pytest.raises(Overloaded, match="250 ms late") as caught:
            await overload.admit()
    assert caught.value.retry_after == 1.0
    assert overload.refused["lag"] == 1
    assert overload.queued == 0
    assert overload.in_flight == 1


async def test_a_request_that_leaves_while_waiting_takes_no_place(
    autojump_clock: trio.abc.Clock,
) -> None:
    overload = Overload(lag_limit=10)
    overload.concurrency.value = 1.0
    await overload.admit()
    with trio.move_on_after(1):
        await overload.admit()  # the client disconnects while it waits
    assert overload.queued == 0
    overload.done()
    assert overload.in_flight == 0
    await overload.admit()
    assert overload.in_flight == 1


async def test_a_burst_past_the_initial_limit_is_served_while_the_loop_keeps_up(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock
) -> None:
    """Held streams are idle between chunks: the limit grows to carry all of them."""
    config = CONFIG.format(latency="2s").replace("max_in_flight = 1", "")
    burst = INITIAL * 3
    async with start_router(config) as url, openai_client(url) as client:
        answers: list[str] = []

        async def held() -> None:
            stream = await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "one two"}], stream=True
            )
            answers.append("".join([c.choices[0].delta.content or "" async for c in stream]))

        async with trio.open_nursery() as nursery:
            for _ in range(burst):
                nursery.start_soon(held)
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as http:
            status = (await http.get("/admin/status")).json()["overload"]
    assert answers == ["one two"] * burst
    assert status["refused"] == {"in_flight": 0, "lag": 0, "connections": 0}
