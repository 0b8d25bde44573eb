"""Hedging on trio's MockClock: hedge starts at exact times, losers cancelled, the hedge
budget, ``pNN`` delays, hedged streams, and a deterministic tail-latency simulation."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from adapters import AllTargetsFailed, InvalidRequest
from router import Engine, RequestTrace
from router.routing._engine import UNKNOWN_QUANTILE_DELAY
from router.routing._hedge_budget import TokenBucket
from router.routing._request import RoutedRequest
from tests.fakes.scripted import REQ, Scripted, Step, boom, options, rules_of, texts

if TYPE_CHECKING:
    from collections.abc import Callable

    from rules import Node

HEDGED = '[routes.r]\nfallback = ["a:m", "b:m", "c:m"]\nhedge = { after = "250ms", max = %d }\n'


def hedged(
    a: Step,
    b: Step,
    c: Step | None = None,
    *,
    max_hedges: int = 1,
    budget: float = 1.0,
    burst: float | None = None,
) -> tuple[dict[str, Scripted], Engine, Node]:
    routes, defaults = rules_of(f"[defaults]\nhedge_budget = {budget}\n" + HEDGED % max_hedges)
    plans = {"a": a, "b": b, "c": c or Step(latency=1.0)}
    ups = {p: Scripted(p, {"m": step}) for p, step in plans.items()}
    bucket = None if burst is None else TokenBucket(budget, burst)
    return ups, Engine(ups, defaults, budget=bucket), routes["r"]


async def test_hedge_starts_after_the_delay_and_the_loser_is_cancelled(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, node = hedged(Step(latency=10.0), Step(latency=1.0), budget=0.1)
    trace = RequestTrace("r")
    answer = await engine.complete(RoutedRequest(node, REQ, trace, options()))
    assert answer.id == "b"
    assert trio.current_time() == 1.25
    assert ups["b"].started == [("m", 0.25)]
    assert ups["a"].cancelled == [("m", 1.25)]  # cancelled the moment b answered
    assert ups["c"].started == []
    assert (trace.hedges, trace.attempts, trace.target) == (1, 2, "b:m")
    assert engine.registry.get("a:m").in_flight == 0
    assert engine.registry.get("a:m").breaker.state(1.25) == "closed"


async def test_a_failure_starts_the_next_at_once_and_is_no_hedge(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, node = hedged(Step(latency=0.125, error=boom()), Step(latency=1.0))
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(node, REQ, trace, options()))
    assert ups["b"].started == [("m", 0.125)]
    assert ups["c"].started == [("m", 0.375)]  # b is slow: c is the hedge, 250 ms later
    assert trio.current_time() == 1.125  # b answered first
    assert ups["c"].cancelled == [("m", 1.125)]
    assert (trace.hedges, trace.target) == (1, "b:m")


async def test_a_failure_after_the_hedges_are_spent_still_falls_back_at_once(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, node = hedged(Step(latency=0.5, error=boom()), Step(latency=10.0))
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(node, REQ, trace, options()))
    assert ups["b"].started == [("m", 0.25)]  # the one hedge
    assert ups["c"].started == [("m", 0.5)]  # a failed: the next, not a hedge
    assert trio.current_time() == 1.5
    assert (trace.hedges, trace.target) == (1, "c:m")


async def test_max_two_hedges_start_a_third_at_twice_the_delay(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, node = hedged(
        Step(latency=10.0), Step(latency=10.0), Step(latency=1.0), max_hedges=2
    )
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(node, REQ, trace, options()))
    assert [u.started for u in ups.values()] == [[("m", 0.0)], [("m", 0.25)], [("m", 0.5)]]
    assert trio.current_time() == 1.5
    assert [u.cancelled for u in ups.values()] == [[("m", 1.5)], [("m", 1.5)], []]
    assert (trace.hedges, trace.attempts, trace.target) == (2, 3, "c:m")


async def test_the_budget_caps_hedges_within_a_request(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, node = hedged(
        Step(latency=10.0),
        Step(latency=10.0),
        Step(latency=1.0),
        max_hedges=2,
        budget=0.1,
        burst=1.0,
    )  # one token in hand
    trace = RequestTrace("r")
    answer = await engine.complete(RoutedRequest(node, REQ, trace, options()))
    assert ups["c"].started == []
    assert (answer.id, trio.current_time(), trace.hedges) == ("a", 10.0, 1)
    assert ups["b"].cancelled == [("m", 10.0)]


async def test_no_budget_never_hedges(autojump_clock: trio.testing.MockClock) -> None:
    ups, engine, node = hedged(Step(latency=10.0), Step(latency=1.0), budget=0.0)
    for n in range(3):
        trace = RequestTrace("r")
        await engine.complete(RoutedRequest(node, REQ, trace, options()))
        assert (trace.hedges, trace.target, trio.current_time()) == (0, "a:m", 10.0 * (n + 1))
    assert ups["b"].started == []


async def test_the_budget_keeps_hedges_to_its_share_of_requests(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, engine, node = hedged(Step(latency=10.0), Step(latency=1.0), budget=0.1, burst=1.0)
    hedged_at = []
    for n in range(100):
        trace = RequestTrace("r")
        started = trio.current_time()
        await engine.complete(RoutedRequest(node, REQ, trace, options()))
        assert trio.current_time() - started == (1.25 if trace.hedges else 10.0)
        if trace.hedges:
            hedged_at.append(n)
    assert len(hedged_at) <= engine.budget.burst + 0.1 * 100
    assert hedged_at == list(range(0, 100, 10))  # the burst token, then one per 10 requests


async def test_a_percentile_delay_waits_for_enough_samples(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, defaults = rules_of(
        "[defaults]\nhedge_budget = 1.0\n"
        '[routes.r]\nfallback = ["a:m", "b:m"]\nhedge = { after = "p90", max = 1 }\n'
        '[routes.solo]\nfallback = ["a:m"]\n'
    )
    a = Scripted("a", {"m": Step(latency=10.0)})
    b = Scripted("b", {"m": Step(latency=0.5)})
    engine = Engine({"a": a, "b": b}, defaults)

    async def hedge_delay() -> float:
        a.plans["m"] = Step(latency=10.0)
        started = trio.current_time()
        await engine.complete(RoutedRequest(routes["r"], REQ, RequestTrace("r"), options()))
        return b.started[-1][1] - started

    async def feed(latencies: list[float]) -> None:
        for latency in latencies:
            a.plans["m"] = Step(latency=latency)
            await engine.complete(
                RoutedRequest(routes["solo"], REQ, RequestTrace("solo"), options())
            )

    assert await hedge_delay() == UNKNOWN_QUANTILE_DELAY == 1.0  # no samples
    await feed([0.125 * i for i in range(1, 20)])
    assert await hedge_delay() == 1.0  # 19 samples: still the floor
    await feed([2.5])
    # 20 samples 0.125 .. 2.5 s: the nearest-rank p90 is the 18th, 2.25 s
    assert engine.registry.get("a:m").stats.quantile(0.9) == 2.25
    assert await hedge_delay() == 2.25


# -- streams --------------------------------------------------------------------------


async def test_a_hedged_stream_is_won_by_the_first_content_chunk(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # a opens at once and sends its role chunk, but its first content takes 10 s
    ups, engine, node = hedged(Step(gaps=(10.0,)), Step(latency=0.5, gaps=(0.5, 0.25)))
    trace = RequestTrace("r")
    async with engine.stream(RoutedRequest(node, REQ, trace, options())) as chunks:
        assert trio.current_time() == 1.25
        assert ups["a"].closed == [("m", 1.25)]  # the loser's stream is closed at once
        assert ups["b"].closed == []
        assert [texts(batch) async for batch in chunks] == [[None, "b0"], ["b1"]]
    assert ups["b"].closed == [("m", 1.5)]
    assert (trace.hedges, trace.target) == (1, "b:m")


async def test_a_stream_head_that_comes_second_is_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    # both first content chunks land at 1.0: one wins, the other is released at once
    ups, engine, node = hedged(Step(gaps=(1.0,)), Step(latency=0.5, gaps=(0.25,)))
    trace = RequestTrace("r")
    async with engine.stream(RoutedRequest(node, REQ, trace, options())) as chunks:
        assert trio.current_time() == 1.0
        winner, loser = ("a", "b") if trace.target == "a:m" else ("b", "a")
        assert ups[loser].closed == [("m", 1.0)]
        assert ups[winner].closed == []
        assert texts(await anext(chunks)) == [None, f"{winner}0"]
    assert ups[winner].closed == [("m", 1.0)]


async def test_a_bad_request_ends_the_race(autojump_clock: trio.testing.MockClock) -> None:
    ups, engine, node = hedged(Step(latency=10.0), Step(latency=0.25, error=InvalidRequest("no")))
    with pytest.raises(InvalidRequest):
        await engine.complete(RoutedRequest(node, REQ, RequestTrace("r"), options()))
    assert trio.current_time() == 0.5
    assert ups["a"].cancelled == [("m", 0.5)]
    assert ups["c"].started == []


async def test_every_hedged_attempt_failing_names_each(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, node = hedged(
        Step(latency=1.0, error=boom(500)),
        Step(latency=1.0, error=boom(502)),
        Step(latency=1.0, error=boom(503)),
    )
    trace = RequestTrace("r")
    with pytest.raises(AllTargetsFailed) as caught:
        await engine.complete(RoutedRequest(node, REQ, trace, options()))
    # b is the hedge at 0.25; a fails at 1.0, so c starts then; c fails last at 2.0
    assert [u.started[0][1] for u in ups.values()] == [0.0, 0.25, 1.0]
    assert trio.current_time() == 2.0
    assert sorted(str(e.upstream) for e in caught.value.attempts) == ["a:m", "b:m", "c:m"]
    assert (trace.hedges, trace.attempts) == (1, 3)


# -- simulation -----------------------------------------------------------------------

SIMULATION = (
    "[defaults]\nhedge_budget = 0.1\n"
    '[routes.plain]\nbalance = "round_robin"\ntargets = ["a:m", "b:m"]\n'
    '[routes.hedged]\nbalance = "round_robin"\ntargets = ["a:m", "b:m"]\n'
    'hedge = { after = "300ms", max = 1 }\n'
)


def heavy_tail(seed: int) -> Callable[[], Step]:
    """95% of answers in 0.1 s, 5% in 5 s, drawn from a seeded generator."""
    rng = random.Random(seed)
    return lambda: Step(latency=5.0 if rng.random() < 0.05 else 0.1)


def p99(latencies: list[float]) -> float:
    return sorted(latencies)[math.ceil(0.99 * len(latencies)) - 1]


async def run_simulation(
    route: str, budget: TokenBucket | None, n: int = 1000
) -> tuple[list[float], int, int]:
    """Latency of each of ``n`` sequential requests, the hedges, the attempts."""
    routes, defaults = rules_of(SIMULATION)
    ups = {p: Scripted(p, {"m": heavy_tail(seed)}) for p, seed in (("a", 1), ("b", 2))}
    engine = Engine(ups, defaults, budget=budget)
    latencies, hedges, attempts = [], 0, 0
    for _ in range(n):
        trace = RequestTrace(route)
        started = trio.current_time()
        await engine.complete(RoutedRequest(routes[route], REQ, trace, options()))
        latencies.append(trio.current_time() - started)
        hedges += trace.hedges
        attempts += trace.attempts
    return latencies, hedges, attempts


@pytest.mark.parametrize("burst", [None, 5.0], ids=["default-burst", "burst-5"])
async def test_simulation_hedging_cuts_the_tail_within_the_budget(
    autojump_clock: trio.testing.MockClock, burst: float | None
) -> None:
    budget = None if burst is None else TokenBucket(0.1, burst)
    plain, no_hedges, plain_attempts = await run_simulation("plain", None)
    assert (no_hedges, plain_attempts) == (0, 1000)
    assert p99(plain) == pytest.approx(5.0)
    latencies, hedges, attempts = await run_simulation("hedged", budget)
    allowed = (burst if burst is not None else TokenBucket(0.1).burst) + 0.1 * 1000
    assert hedges <= allowed
    assert attempts - 1000 == hedges  # every extra attempt is a counted hedge
    assert max(latencies) <= 5.0 + 1e-9
    assert p99(latencies) < 1.0, f"p99 {p99(latencies):g}s with {hedges} hedges"


async def test_two_failures_in_the_same_instant_start_two_fallbacks(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """Regression: with one failure event shared by the attempts, the second of two
    simultaneous failures was lost, and the request waited on a slow target (to 12 s)."""
    routes, defaults = rules_of(
        '[routes.r]\nfallback = ["a:m", "b:m", "c:m", "d:m"]\nhedge = { after = "1s", max = 1 }\n',
        providers="abcd",
    )
    plans = {
        "a": Step(latency=2.0, error=boom()),  # fails at 2 s
        "b": Step(latency=1.0, error=boom()),  # the hedge at 1 s, fails at 2 s too
        "c": Step(latency=10.0),  # started by the first failure: slow
        "d": Step(latency=0.0),  # started by the second: answers at once
    }
    ups = {p: Scripted(p, {"m": step}) for p, step in plans.items()}
    trace = RequestTrace("r")
    answer = await Engine(ups, defaults).complete(RoutedRequest(routes["r"], REQ, trace, options()))
    assert trio.current_time() == 2.0
    assert answer.id == "d"
    assert ups["c"].started == [("m", 2.0)]
    assert ups["d"].started == [("m", 2.0)]
    assert ups["c"].cancelled == [("m", 2.0)]
    assert (trace.target, trace.hedges, trace.fallbacks) == ("d:m", 1, 2)
