"""The engine's timing rules on trio's MockClock: retries with jittered backoff and
Retry-After, the deadline, and circuit breakers (streams: test_engine_streams.py)."""

from __future__ import annotations

import contextlib
import math
import random

import pytest
import trio
import trio.testing

from adapters import (
    AllTargetsFailed,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    NetworkError,
    NoHealthyTarget,
    Overloaded,
    ProviderInternalError,
    RateLimitExceeded,
    SerializationError,
    StreamError,
    Timeout,
)
from router import Engine, RequestTrace
from router.routing._attempt import CircuitOpen
from router.routing._request import RoutedRequest
from tests.fakes.scripted import REQ, SEED, Scripted, Step, boom, engine_for, options, rules_of

BACKOFF = '[defaults]\nbackoff = { initial = "100ms", max = "5s", multiplier = 2.0 }\n'
CIRCUIT = '[defaults]\ncircuit = { failures = 3, successes = 2, open_for = "30s" }\n'
FALLBACK = '[routes.r]\nfallback = ["a:m", "b:m"]\n'


# -- retries --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "error",
    [
        boom(500),
        Overloaded("busy", upstream_status=529),
        NetworkError("reset"),
        RateLimitExceeded("429"),
    ],
    ids=["500", "overloaded", "reset", "429-without-retry-after"],
)
async def test_fast_failures_retry_at_jittered_times_then_fall_back(
    autojump_clock: trio.testing.MockClock, error: GatewayError
) -> None:
    a, b, engine, routes = engine_for(BACKOFF, Step(latency=0.5, error=error))
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(retries=2)))
    replay = random.Random(SEED)  # full jitter: uniform(0, min(max, initial * 2**n))
    t1 = 0.5 + replay.uniform(0.0, 0.1)
    t2 = t1 + 0.5 + replay.uniform(0.0, 0.2)
    assert a.started == [("m", 0.0), ("m", t1), ("m", t2)]
    assert b.started == [("m", t2 + 0.5)]
    assert trio.current_time() == t2 + 1.0
    assert (trace.attempts, trace.retries, trace.target) == (4, 2, "b:m")


async def test_a_retry_that_succeeds_stays_on_the_target(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b, engine, routes = engine_for(
        BACKOFF, [Step(latency=0.5, error=NetworkError("reset")), Step(latency=0.5)]
    )
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(retries=3)))
    t1 = 0.5 + random.Random(SEED).uniform(0.0, 0.1)
    assert a.started == [("m", 0.0), ("m", t1)]
    assert b.started == []
    assert (trace.attempts, trace.retries, trace.target) == (2, 1, "a:m")
    assert trio.current_time() == t1 + 0.5


async def test_retry_after_replaces_the_backoff(autojump_clock: trio.testing.MockClock) -> None:
    limited = RateLimitExceeded("slow down", upstream_status=429, retry_after=2.0)
    a, _, engine, routes = engine_for(
        BACKOFF, [Step(latency=0.25, error=limited), Step(latency=0.25)]
    )
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(retries=1)))
    assert a.started == [("m", 0.0), ("m", 2.25)]
    assert trio.current_time() == 2.5
    assert (trace.retries, trace.target) == (1, "a:m")
    assert engine._rng.random() == random.Random(SEED).random()  # no jitter drawn


@pytest.mark.parametrize(
    ("retry_after", "deadline", "retried_at"),
    [
        (2.0, 2.25, None),  # would start exactly at the deadline: no time left to answer
        (2.0, math.nextafter(2.25, 3.0), 2.25),
        (30.0, 1000.0, 30.25),  # the cap itself is honoured
        (31.0, 1000.0, None),  # over the 30 s cap: another target, now
    ],
)
async def test_retry_after_that_does_not_fit_moves_on_at_once(
    autojump_clock: trio.testing.MockClock,
    retry_after: float,
    deadline: float,
    retried_at: float | None,
) -> None:
    limited = RateLimitExceeded("slow down", upstream_status=429, retry_after=retry_after)
    a, b, engine, routes = engine_for(BACKOFF, Step(latency=0.25, error=limited), Step())
    trace = RequestTrace("r")
    with contextlib.suppress(Timeout):  # the engine holds the request to its deadline
        await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(deadline, retries=1)))
    if retried_at is None:
        assert a.started == [("m", 0.0)]
        assert b.started == [("m", 0.25)]
        assert trace.retries == 0
    else:
        assert a.started == [("m", 0.0), ("m", retried_at)]
        fallback_at = retried_at + 0.25
        assert b.started == ([("m", fallback_at)] if fallback_at < deadline else [])
        assert trace.retries == 1


@pytest.mark.parametrize("fits", [False, True])
async def test_a_backoff_that_would_cross_the_deadline_is_skipped(
    autojump_clock: trio.testing.MockClock, fits: bool
) -> None:
    a, b, engine, routes = engine_for(BACKOFF, Step(latency=0.5, error=boom()))
    t1 = 0.5 + random.Random(SEED).uniform(0.0, 0.1)
    deadline = math.nextafter(t1, 10.0) if fits else t1
    trace = RequestTrace("r")
    with pytest.raises(Timeout):  # whichever way, the answer would come after the deadline
        await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(deadline, retries=1)))
    assert trio.current_time() == deadline
    if fits:
        assert a.started == [("m", 0.0), ("m", t1)]
        assert b.started == []  # the retry failed after the deadline had passed
    else:
        assert a.started == [("m", 0.0)]
        assert b.started == [("m", 0.5)]
    assert trace.retries == int(fits)


@pytest.mark.parametrize(
    "error",
    [
        Timeout("no answer in 5s"),
        StreamError("cut"),
        SerializationError("bad json"),
        ContextLengthExceeded("long"),
    ],
    ids=["timeout", "stream-error", "bad-json", "context-length"],
)
async def test_slow_or_unfixable_failures_are_not_retried(
    autojump_clock: trio.testing.MockClock, error: GatewayError
) -> None:
    a, b, engine, routes = engine_for(BACKOFF, Step(latency=5.0, error=error))
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(retries=2)))
    assert a.started == [("m", 0.0)]
    assert b.started == [("m", 5.0)]  # at once
    assert trace.retries == 0


async def test_the_engine_holds_the_request_to_its_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, _, engine, routes = engine_for(BACKOFF, Step(latency=5.0))
    with pytest.raises(Timeout, match="deadline"):
        await engine.complete(
            RoutedRequest(routes["r"], REQ, RequestTrace("r"), options(deadline=1.0))
        )
    assert trio.current_time() == 1.0
    assert a.cancelled == [("m", 1.0)]
    assert engine.registry.get("a:m").in_flight == 0
    # A cancelled attempt is no verdict on the target: its circuit stays closed.
    assert engine.registry.get("a:m").failures == 0


async def test_a_failure_that_opens_the_circuit_is_not_retried(
    autojump_clock: trio.testing.MockClock,
) -> None:
    circuit = 'circuit = { failures = 2, successes = 1, open_for = "30s" }\n'
    a, _, engine, routes = engine_for(BACKOFF + circuit, Step(latency=0.5, error=boom()))
    trace = RequestTrace("solo")
    with pytest.raises(ProviderInternalError):  # the target's own failure, not a 503
        await engine.complete(RoutedRequest(routes["solo"], REQ, trace, options(retries=3)))
    t1 = 0.5 + random.Random(SEED).uniform(0.0, 0.1)
    assert a.started == [("m", 0.0), ("m", t1)]
    assert trio.current_time() == t1 + 0.5  # no backoff slept for a retry the breaker refuses


# -- circuit breaker ------------------------------------------------------------------


async def test_breaker_opens_skips_probes_and_closes(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b, engine, routes = engine_for(CIRCUIT, Step(latency=1.0, error=boom()))
    for _ in range(3):
        await engine.complete(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options()))
    assert [t for _, t in a.started] == [0.0, 1.5, 3.0]
    breaker = engine.registry.get("a:m").breaker
    assert (breaker.state(4.5), breaker.opened_at) == ("open", 4.0)
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(routes["r"], REQ, trace, options()))
    assert (trace.target, trace.attempts, len(a.started)) == ("b:m", 1, 3)  # a skipped
    assert b.started[-1] == ("m", 4.5)
    b.plans["m"] = Step(latency=0.5, error=boom())
    trace = RequestTrace("r")
    with pytest.raises(AllTargetsFailed) as caught:
        await engine.complete(RoutedRequest(routes["r"], REQ, trace, options()))
    assert [type(e) for e in caught.value.attempts] == [ProviderInternalError, CircuitOpen]
    assert caught.value.attempts[1].upstream == "a:m"
    assert (trace.attempts, len(a.started)) == (1, 3)
    b.plans["m"] = Step(latency=0.5)
    await trio.sleep_until(33.5)
    await engine.complete(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options()))
    assert len(a.started) == 3  # still open at 33.5
    a.plans["m"] = Step(latency=1.0)
    await trio.sleep_until(34.0)  # opened_at + open_for: one probe goes through
    probe, other = RequestTrace("r"), RequestTrace("r")
    async with trio.open_nursery() as nursery:
        nursery.start_soon(engine.complete, RoutedRequest(routes["r"], REQ, probe, options()))
        await trio.sleep(0.5)
        await engine.complete(RoutedRequest(routes["r"], REQ, other, options()))
    assert a.started[3:] == [("m", 34.0)]  # one probe at a time
    assert (probe.target, other.target) == ("a:m", "b:m")
    assert (other.attempts, other.errors) == (1, [])  # a refused before any attempt
    assert (breaker.state(35.0), breaker.consecutive_successes) == ("half_open", 1)
    await engine.complete(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options()))
    assert a.started[-1] == ("m", 35.0)
    assert breaker.state(36.0) == "closed"
    async with trio.open_nursery() as nursery:  # closed: no probe limit
        for _ in range(3):
            nursery.start_soon(
                engine.complete, RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())
            )
    assert a.started[-3:] == [("m", 36.0)] * 3


async def test_a_failed_probe_reopens_for_a_fresh_window(
    autojump_clock: trio.testing.MockClock,
) -> None:
    circuit = '[defaults]\ncircuit = { failures = 1, successes = 1, open_for = "10s" }\n'
    a, _, engine, routes = engine_for(circuit, Step(latency=1.0, error=boom()))
    await engine.complete(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options()))
    assert engine.registry.get("a:m").breaker.opened_at == 1.0
    await trio.sleep_until(11.0)
    await engine.complete(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options()))
    assert a.started == [("m", 0.0), ("m", 11.0)]  # the probe fails at 12.0
    assert engine.registry.get("a:m").breaker.opened_at == 12.0
    await trio.sleep_until(21.5)
    await engine.complete(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options()))
    assert len(a.started) == 2
    await trio.sleep_until(22.0)
    a.plans["m"] = Step(latency=1.0)
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(routes["r"], REQ, trace, options()))
    assert (a.started[-1], trace.target) == (("m", 22.0), "a:m")
    assert engine.registry.get("a:m").breaker.state(23.0) == "closed"


async def test_every_circuit_open_is_a_fast_503(autojump_clock: trio.testing.MockClock) -> None:
    circuit = '[defaults]\ncircuit = { failures = 1, successes = 1, open_for = "30s" }\n'
    routes, defaults = rules_of(
        circuit
        + FALLBACK
        + '[routes.hedged]\nfallback = ["a:m", "b:m"]\nhedge = { after = "250ms", max = 1 }\n'
        + '[routes.outer]\nfallback = ["r"]\n'
    )
    ups = {p: Scripted(p, {"m": Step(latency=1.0, error=boom())}) for p in "ab"}
    engine = Engine(ups, defaults)
    with pytest.raises(AllTargetsFailed):
        await engine.complete(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options()))
    assert trio.current_time() == 2.0
    messages = []
    for route in ("r", "hedged", "outer"):
        trace = RequestTrace(route)
        with pytest.raises(NoHealthyTarget) as caught:
            await engine.complete(RoutedRequest(routes[route], REQ, trace, options()))
        assert type(caught.value) is NoHealthyTarget
        assert caught.value.status_hint == 503
        assert trace.attempts == 0
        messages.append(caught.value.message)
    assert trio.current_time() == 2.0  # at once, no wait
    assert [len(u.started) for u in ups.values()] == [1, 1]
    for message in messages:  # the nested route's 503 names the open targets too
        assert "a:m" in message, message
        assert "b:m" in message, message


async def test_a_refusal_does_not_count_against_the_circuit(
    autojump_clock: trio.testing.MockClock,
) -> None:
    circuit = '[defaults]\ncircuit = { failures = 1, successes = 1, open_for = "30s" }\n'
    a, _, engine, routes = engine_for(circuit, Step(error=InvalidRequest("bad")))
    for _ in range(3):
        with pytest.raises(InvalidRequest):
            await engine.complete(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options()))
    assert len(a.started) == 3
    assert engine.registry.get("a:m").breaker.state(0.0) == "closed"


async def test_a_cancelled_straggler_does_not_free_the_probe_slot(
    autojump_clock: trio.testing.MockClock,
) -> None:
    circuit = '[defaults]\ncircuit = { failures = 1, successes = 2, open_for = "10s" }\n'
    plan = [Step(latency=100.0), Step(latency=1.0, error=boom()), Step(latency=5.0)]
    a, _, engine, routes = engine_for(circuit, plan)
    async with trio.open_nursery() as nursery:
        straggler = trio.CancelScope()

        async def long_request() -> None:
            with straggler:
                await engine.complete(
                    RoutedRequest(routes["solo"], REQ, RequestTrace("solo"), options())
                )

        nursery.start_soon(long_request)  # admitted while closed, answers at 100 s
        await trio.testing.wait_all_tasks_blocked()
        await engine.complete(
            RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())
        )  # opens at 1.0
        await trio.sleep_until(11.0)
        nursery.start_soon(
            engine.complete, RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())
        )
        await trio.sleep(1.0)  # the probe runs until 16.0
        straggler.cancel()  # the client of the old request leaves
        await trio.testing.wait_all_tasks_blocked()
        trace = RequestTrace("r")
        await engine.complete(RoutedRequest(routes["r"], REQ, trace, options()))
    assert a.started == [("m", 0.0), ("m", 0.0), ("m", 11.0)]  # no second probe at 12.0
    assert trace.target == "b:m"
