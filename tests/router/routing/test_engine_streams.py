"""Streams through the engine on trio's MockClock: the first-token timeout, breaks
before the first content chunk (fail over), and after it (a stall, a cut, the deadline:
no failover, counted against the target), and the upstream stream closed on leaving."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from adapters import GatewayRequest, NetworkError, Overloaded, StreamError, Timeout
from router import RequestTrace
from router.routing._request import RoutedRequest
from tests.fakes.scripted import REQ, Step, engine_for, options, texts

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from adapters import ChatChunk


async def _batches(chunks: AsyncIterator[list[ChatChunk]]) -> list[list[str | None]]:
    return [texts(batch) async for batch in chunks]


@pytest.mark.parametrize(
    "silent",
    [Step(latency=1000.0), Step(gaps=(100.0,))],  # no headers; headers and a role, no content
    ids=["no-headers", "role-only"],
)
async def test_no_first_token_in_time_fails_over_at_exactly_the_timeout(
    autojump_clock: trio.testing.MockClock, silent: Step
) -> None:
    a, b, engine, routes = engine_for("", silent, Step(latency=0.5, gaps=(0.25, 0.25)))
    trace = RequestTrace("r")
    routed = RoutedRequest(routes["r"], REQ, trace, options(retries=2, first_token_timeout=4.0))
    async with engine.stream(routed) as chunks:
        assert trio.current_time() == 4.75  # 4 s silent on a, then 0.5 + 0.25 on b
        assert await _batches(chunks) == [[None, "b0"], ["b1"]]
        assert trio.current_time() == 5.0
    assert a.started == [("m", 0.0)]  # a slow failure: no retry
    assert a.closed == [("m", 4.0)]
    assert b.started == [("m", 4.0)]
    assert b.closed == [("m", 5.0)]
    assert [type(e) for e in trace.errors] == [Timeout]
    assert (trace.target, trace.attempts) == ("b:m", 2)


@pytest.mark.parametrize(
    "broken",
    [
        Step(latency=2.0, error=Overloaded("busy", upstream_status=503)),
        Step(latency=2.0, gaps=(), broken=NetworkError("reset before content")),
    ],
    ids=["refused", "reset-after-role"],
)
async def test_a_stream_that_breaks_before_content_fails_over(
    autojump_clock: trio.testing.MockClock, broken: Step
) -> None:
    a, b, engine, routes = engine_for("", broken, Step(latency=0.5))
    trace = RequestTrace("r")
    async with engine.stream(RoutedRequest(routes["r"], REQ, trace, options())) as chunks:
        assert texts(await anext(chunks)) == [None, "b0"]
    assert a.closed == [("m", 2.0)]
    assert b.started == [("m", 2.0)]
    assert (trace.target, trace.attempts) == ("b:m", 2)
    assert trio.current_time() == 2.5


async def test_a_stall_after_commit_is_a_stream_error_at_the_stall_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b, engine, routes = engine_for(
        '[defaults]\nstall_timeout = "10s"\n', Step(gaps=(0.0, 100.0))
    )
    routed = RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())
    async with engine.stream(routed) as chunks:
        assert texts(await anext(chunks)) == [None, "a0"]
        with pytest.raises(StreamError, match="stalled for 10s") as caught:
            await anext(chunks)
        assert trio.current_time() == 10.0
        assert caught.value.upstream == "a:m"
    assert a.closed == [("m", 10.0)]
    assert b.started == []  # committed: never a second answer spliced in


async def test_the_stream_deadline_ends_a_stall_charged_to_the_target(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, _, engine, routes = engine_for("", Step(gaps=(0.0, 5.0, 5.0)))
    routed = RoutedRequest(routes["r"], REQ, RequestTrace("r"), options(deadline=7.5))
    async with engine.stream(routed) as chunks:
        assert texts(await anext(chunks)) == [None, "a0"]
        assert texts(await anext(chunks)) == ["a1"]
        with pytest.raises(StreamError, match=r"stalled for 2\.5s and did not end") as caught:
            await anext(chunks)
        assert trio.current_time() == 7.5
        assert caught.value.upstream == "a:m"
    assert a.closed == [("m", 7.5)]
    # Silent when its time ran out (stall_timeout 30 s not reached): still the target's.
    assert engine.registry.get("a:m").failures == 1


async def test_timeout_bounds_the_wait_and_stream_timeout_the_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    flowing = Step(gaps=(0.0, 4.0, 4.0, 4.0))  # content until 12 s, past the 5 s timeout
    a, _, engine, routes = engine_for("", flowing)
    trace = RequestTrace("r")
    routed = RoutedRequest(routes["r"], REQ, trace, options(deadline=5.0, stream_deadline=600.0))
    async with engine.stream(routed) as chunks:
        assert await _batches(chunks) == [[None, "a0"], ["a1"], ["a2"], ["a3"]]
    assert trio.current_time() == 12.0
    assert (engine.registry.get("a:m").successes, trace.errors) == (1, [])
    # Cut at its total: 10 s after the request began, while it still flows.
    routed = RoutedRequest(routes["r"], REQ, RequestTrace("r"), options(22.0, stream_deadline=22.0))
    async with engine.stream(routed) as chunks:
        with pytest.raises(StreamError, match="did not end by its deadline"):
            await _batches(chunks)
        assert trio.current_time() == 22.0
    assert a.closed == [("m", 12.0), ("m", 22.0)]
    assert engine.registry.get("a:m").failures == 1


async def test_the_wait_for_the_first_chunk_is_bounded_by_timeout_not_stream_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, _, engine, routes = engine_for("", Step(latency=100.0))
    trace = RequestTrace("solo")
    routed = RoutedRequest(routes["solo"], REQ, trace, options(deadline=5.0, stream_deadline=600.0))
    with pytest.raises(Timeout, match="deadline"):
        async with engine.stream(routed):
            pass
    assert trio.current_time() == 5.0


async def test_a_committed_stream_failure_counts_against_the_circuit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    circuit = '[defaults]\ncircuit = { failures = 1, successes = 1, open_for = "30s" }\n'
    cut = StreamError("connection reset mid-stream")
    a, _, engine, routes = engine_for(circuit, Step(gaps=(0.0, 1.0), broken=cut))
    trace = RequestTrace("r")
    async with engine.stream(RoutedRequest(routes["r"], REQ, trace, options())) as chunks:
        assert texts(await anext(chunks)) == [None, "a0"]
        assert texts(await anext(chunks)) == ["a1"]
        assert engine.registry.get("a:m").breaker.state(1.0) == "closed"
        with pytest.raises(StreamError, match="mid-stream"):
            await anext(chunks)
        # The engine charged the break to the target the moment it broke.
        assert engine.registry.get("a:m").breaker.state(1.0) == "open"
    assert trace.target == "a:m"
    trace = RequestTrace("r")
    async with engine.stream(RoutedRequest(routes["r"], REQ, trace, options())):
        assert (trace.target, trace.attempts) == ("b:m", 1)
    assert len(a.started) == 1


async def test_leaving_early_closes_the_upstream_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, _, engine, routes = engine_for("", Step(gaps=(0.0, 1.0, 1.0)))
    routed = RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())
    with trio.move_on_after(0.5):
        async with engine.stream(routed) as chunks:
            await anext(chunks)
            await anext(chunks)  # cancelled half-way: the client left
    assert a.closed == [("m", 0.5)]


async def test_a_target_that_cuts_every_stream_opens_its_circuit_after_n_breaks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    circuit = '[defaults]\ncircuit = { failures = 3, successes = 1, open_for = "30s" }\n'
    cut = StreamError("connection reset mid-stream")
    a, _, engine, routes = engine_for(circuit, Step(gaps=(0.0, 1.0), broken=cut))
    breaker = engine.registry.get("a:m").breaker
    for n in range(1, 4):
        trace = RequestTrace("r")
        async with engine.stream(RoutedRequest(routes["r"], REQ, trace, options())) as chunks:
            assert trace.target == "a:m"
            # Committed, content flowing: not a success yet, so the count stands.
            assert breaker.consecutive_failures == n - 1
            with pytest.raises(StreamError, match="mid-stream"):
                await _batches(chunks)
        assert breaker.consecutive_failures == n
        assert breaker.state(trio.current_time()) == ("open" if n == 3 else "closed")
    assert trio.current_time() == 3.0
    assert engine.registry.get("a:m").failures == 3
    assert engine.registry.get("a:m").successes == 0
    trace = RequestTrace("r")
    async with engine.stream(RoutedRequest(routes["r"], REQ, trace, options())):
        assert trace.target == "b:m"  # a's circuit is open: not even tried
    assert len(a.started) == 3


async def test_a_stream_counts_as_a_success_when_it_ends_not_when_it_commits(
    autojump_clock: trio.testing.MockClock,
) -> None:
    circuit = '[defaults]\ncircuit = { failures = 2, successes = 1, open_for = "30s" }\n'
    cut = StreamError("connection reset mid-stream")
    _, _, engine, routes = engine_for(
        circuit, [Step(broken=cut), Step(gaps=(0.0, 1.0)), Step(broken=cut)]
    )
    state = engine.registry.get("a:m")

    def routed() -> RoutedRequest[GatewayRequest]:
        return RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())

    async with engine.stream(routed()) as chunks:
        with pytest.raises(StreamError):
            await _batches(chunks)
    assert state.breaker.consecutive_failures == 1
    async with engine.stream(routed()) as chunks:
        assert state.breaker.consecutive_failures == 1  # committed, not over
        assert await _batches(chunks) == [[None, "a0"], ["a1"]]
        assert (state.breaker.consecutive_failures, state.successes) == (0, 1)  # it ended
    assert trio.current_time() == 1.0
    assert state.stats.count == 2  # each commit measured its time to first chunk
    async with engine.stream(routed()) as chunks:
        with pytest.raises(StreamError):
            await _batches(chunks)
    assert state.breaker.state(trio.current_time()) == "closed"  # 1 failure in a row, not 2


async def test_a_half_open_probe_stream_holds_the_probe_until_it_ends(
    autojump_clock: trio.testing.MockClock,
) -> None:
    circuit = '[defaults]\ncircuit = { failures = 1, successes = 1, open_for = "10s" }\n'
    cut = StreamError("connection reset mid-stream")
    _, _, engine, routes = engine_for(
        circuit, [Step(broken=cut), Step(gaps=(0.0, 5.0)), Step(gaps=(0.0, 5.0))]
    )
    breaker = engine.registry.get("a:m").breaker

    async def read(chunks: AsyncIterator[list[ChatChunk]]) -> None:
        with pytest.raises(StreamError):
            await _batches(chunks)

    async with engine.stream(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())) as c:
        await read(c)
    assert breaker.state(0.0) == "open"
    await trio.sleep(10.0)
    # The probe commits and the client leaves before the end: no verdict, slot freed.
    with trio.move_on_after(1.0):
        routed = RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())
        async with engine.stream(routed) as chunks:
            assert breaker.probe_in_flight
            await _batches(chunks)
    assert not breaker.probe_in_flight
    assert breaker.state(trio.current_time()) == "half_open"
    # The next probe ends whole: the circuit closes when it ends, at 11 + 5.
    trace = RequestTrace("r")
    async with engine.stream(RoutedRequest(routes["r"], REQ, trace, options())) as chunks:
        assert trace.target == "a:m"
        assert breaker.state(trio.current_time()) == "half_open"
        await _batches(chunks)
    assert trio.current_time() == 16.0
    assert breaker.state(trio.current_time()) == "closed"
