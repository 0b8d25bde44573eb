"""The engine's policy walk on trio's MockClock with scripted targets: fallback, ``on``,
what never falls back, nested routes, balance strategies and sticky splits."""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

import attrs
import pytest
import trio
import trio.testing

from adapters import (
    AllTargetsFailed,
    ContentFiltered,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    NetworkError,
    ProviderInternalError,
    RateLimitExceeded,
    Timeout,
)
from router import Engine, RequestTrace
from router.routing._attempt import Call
from router.routing._request import RoutedRequest
from router.routing._work import nothing
from tests.fakes.scripted import REQ, Scripted, Step, boom, options, rules_of

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rules import Node

FALLBACK = '[routes.r]\nfallback = ["a:m", "b:m"]\n'


def two(a: Step, b: Step | None = None) -> tuple[Scripted, Scripted, Engine]:
    up_a, up_b = Scripted("a", {"m": a}), Scripted("b", {"m": b or Step()})
    return up_a, up_b, Engine({"a": up_a, "b": up_b})


async def served_by(
    engine: Engine, node: Node, n: int, headers: Mapping[str, str] | None = None
) -> list[str | None]:
    """The target of each of ``n`` sequential requests."""
    targets = []
    for _ in range(n):
        trace = RequestTrace("r")
        await engine.complete(RoutedRequest(node, REQ, trace, options(headers=headers)))
        targets.append(trace.target)
    return targets


def binomial_ok(hits: int, n: int, p: float) -> bool:
    """Within 4.5 standard deviations of ``n * p`` (a false alarm about once in 10^5)."""
    return abs(hits - n * p) <= 4.5 * math.sqrt(n * p * (1 - p))


# -- fallback -------------------------------------------------------------------------


async def test_fallback_moves_on_at_once_and_reports_the_target(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, _ = rules_of(FALLBACK)
    _, b, engine = two(Step(latency=1.0, error=boom()), Step(latency=2.0))
    trace = RequestTrace("r")
    answer = await engine.complete(RoutedRequest(routes["r"], REQ, trace, options()))
    assert (answer.id, answer.model) == ("b", "m")
    assert (trace.attempts, trace.target, trace.retries) == (2, "b:m", 0)
    assert [e.upstream for e in trace.errors] == ["a:m"]
    assert b.started == [("m", 1.0)]
    assert trio.current_time() == 3.0


@pytest.mark.parametrize(
    ("on", "error", "falls_back"),
    [
        ('["timeout"]', Timeout("slow"), True),
        ('["timeout"]', boom(), False),
        ('["timeout"]', NetworkError("reset"), False),
        ('["server_error"]', boom(), True),
        ('["rate_limited"]', RateLimitExceeded("429"), True),
        ('["rate_limited"]', ContextLengthExceeded("too long"), False),
        ('["network", "context_length"]', ContextLengthExceeded("too long"), True),
    ],
)
async def test_on_restricts_which_failures_fall_back(
    autojump_clock: trio.testing.MockClock, on: str, error: GatewayError, falls_back: bool
) -> None:
    routes, _ = rules_of(FALLBACK + f"on = {on}\n")
    _, b, engine = two(Step(latency=0.5, error=error))
    trace = RequestTrace("r")
    if falls_back:
        await engine.complete(RoutedRequest(routes["r"], REQ, trace, options()))
        assert b.started == [("m", 0.5)]
    else:
        with pytest.raises(type(error)):
            await engine.complete(RoutedRequest(routes["r"], REQ, trace, options()))
        assert b.started == []
    assert trio.current_time() == 0.5


@pytest.mark.parametrize(
    "error",
    [
        InvalidRequest("messages: bad role", upstream_status=400),
        ContentFiltered("refused: the request violates policy 7", upstream_status=400),
    ],
    ids=["invalid", "content-filtered"],
)
async def test_no_fallback_and_no_retry_on_a_bad_request_or_refusal(
    autojump_clock: trio.testing.MockClock, error: GatewayError
) -> None:
    routes, _ = rules_of(FALLBACK)
    a, b, engine = two(Step(latency=0.25, error=error))
    trace = RequestTrace("r")
    with pytest.raises(type(error)) as caught:
        await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(retries=2)))
    assert caught.value.message == error.message  # the provider's reason, unchanged
    assert (caught.value.upstream, caught.value.upstream_status) == ("a:m", 400)
    assert a.started == [("m", 0.0)]
    assert b.started == []
    assert (trace.attempts, trace.retries) == (1, 0)
    assert trio.current_time() == 0.25


async def test_context_length_exceeded_falls_back_without_retry(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, _ = rules_of(FALLBACK)
    a, b, engine = two(Step(latency=0.25, error=ContextLengthExceeded("8192 tokens max")))
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(retries=2)))
    assert a.started == [("m", 0.0)]
    assert b.started == [("m", 0.25)]
    assert trace.target == "b:m"


async def test_nested_routes_flatten_every_attempt(autojump_clock: trio.testing.MockClock) -> None:
    routes, _ = rules_of(
        '[routes.inner]\nfallback = ["b:m", "c:m"]\n[routes.r]\nfallback = ["a:m", "inner"]\n'
    )
    ups = {
        p: Scripted(p, {"m": Step(latency=1.0, error=boom(500 + i))}) for i, p in enumerate("abc")
    }
    trace = RequestTrace("r")
    with pytest.raises(AllTargetsFailed) as caught:
        await Engine(ups).complete(RoutedRequest(routes["r"], REQ, trace, options()))
    failed = caught.value
    assert [e.upstream for e in failed.attempts] == ["a:m", "b:m", "c:m"]
    assert [e.upstream_status for e in failed.attempts] == [500, 501, 502]
    for name in ("a:m", "b:m", "c:m"):
        assert name in failed.message
    assert [ups[p].started for p in "abc"] == [[("m", 0.0)], [("m", 1.0)], [("m", 2.0)]]
    assert (trace.attempts, trace.target) == (3, None)
    assert failed.status_hint == 502


# -- balance --------------------------------------------------------------------------


async def test_round_robin_rotates_and_falls_back_in_rotation(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, _ = rules_of('[routes.r]\nbalance = "round_robin"\ntargets = ["a:m", "b:m", "c:m"]\n')
    ups = {p: Scripted(p, {"m": Step(latency=1.0)}) for p in "abc"}
    engine = Engine(ups)
    assert await served_by(engine, routes["r"], 6) == ["a:m", "b:m", "c:m"] * 2
    ups["b"].plans["m"] = Step(latency=1.0, error=boom())
    # b fails: its turn moves on to the next in rotation, c
    assert await served_by(engine, routes["r"], 3) == ["a:m", "c:m", "c:m"]
    assert ups["c"].started[-2:] == [("m", 8.0), ("m", 9.0)]


async def test_weighted_shares_follow_the_weights(autojump_clock: trio.testing.MockClock) -> None:
    routes, _ = rules_of('[routes.r]\nbalance = "weighted"\ntargets = { "a:m" = 3, "b:m" = 1 }\n')
    ups = {p: Scripted(p, {"m": Step()}) for p in "ab"}
    engine = Engine(ups, rng=random.Random(5))
    served = await served_by(engine, routes["r"], 4000)
    assert binomial_ok(served.count("a:m"), 4000, 0.75)


async def test_least_connections_prefers_the_idle_target(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, _ = rules_of(
        '[routes.only_a]\nfallback = ["a:m"]\n'
        '[routes.r]\nbalance = "least_connections"\ntargets = ["a:m", "b:m"]\n'
    )
    a = Scripted("a", {"m": [Step(latency=10.0)] * 3 + [Step(latency=1.0)]})
    b = Scripted("b", {"m": Step(latency=1.0)})
    engine = Engine({"a": a, "b": b}, rng=random.Random(1))
    async with trio.open_nursery() as nursery:
        for _ in range(3):  # three long requests in flight on a:m
            nursery.start_soon(
                engine.complete, RoutedRequest(routes["only_a"], REQ, RequestTrace("x"), options())
            )
        await trio.testing.wait_all_tasks_blocked()
        assert engine.registry.get("a:m").in_flight == 3
        assert await served_by(engine, routes["r"], 5) == ["b:m"] * 5
    assert trio.current_time() == 10.0
    assert engine.registry.get("a:m").in_flight == 0
    # idle again: ties are broken at random, so both get traffic
    served = await served_by(engine, routes["r"], 40)
    assert 5 < served.count("a:m") < 35


async def test_latency_prefers_the_faster_and_explores_a_recovered_target(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, _ = rules_of('[routes.r]\nbalance = "latency"\ntargets = ["a:m", "b:m"]\n')
    a = Scripted("a", {"m": Step(latency=1.0)})
    b = Scripted("b", {"m": Step(latency=0.125)})
    engine = Engine({"a": a, "b": b}, rng=random.Random(3))
    served = await served_by(engine, routes["r"], 400)
    assert served[-300:].count("b:m") > 0.9 * 300
    assert served[-300:].count("a:m") > 0  # epsilon: the slow one still gets a few
    # a breaks (fast failures fall back to b), then recovers faster than b
    a.plans["m"] = Step(error=boom())
    await served_by(engine, routes["r"], 100)
    assert (engine.registry.get("a:m").stats.estimate() or 0.0) > 1.0
    a.plans["m"] = Step(latency=0.0625)
    served = await served_by(engine, routes["r"], 1000)
    assert served[-200:].count("a:m") > 0.9 * 200


# -- split ----------------------------------------------------------------------------

SPLIT = (
    '[routes.r]\nsplit = { "a:m" = 90, "b:m" = 10 }\nsticky = "header:x-user-id"\n'
    '[routes.loose]\nsplit = { "a:m" = 1, "b:m" = 3 }\n'
)


async def test_sticky_split_same_key_same_arm(autojump_clock: trio.testing.MockClock) -> None:
    routes, _ = rules_of(SPLIT)
    ups = {p: Scripted(p, {"m": Step()}) for p in "ab"}
    engine = Engine(ups, rng=random.Random(0))
    arms: dict[str, set[str | None]] = {}
    for _ in range(5):
        for user in range(200):
            trace = RequestTrace("r")
            headers = {"x-user-id": f"user-{user}"}
            await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(headers=headers)))
            assert trace.arm == trace.target
            arms.setdefault(f"user-{user}", set()).add(trace.arm)
    assert all(len(seen) == 1 for seen in arms.values())
    # and across engines (restarts, replicas): the hash is stable, not salted
    other = Engine(ups, rng=random.Random(99))
    for user in range(200):
        trace = RequestTrace("r")
        headers = {"x-user-id": f"user-{user}"}
        await other.complete(RoutedRequest(routes["r"], REQ, trace, options(headers=headers)))
        assert {trace.arm} == arms[f"user-{user}"]


async def test_sticky_split_shares_over_many_keys(autojump_clock: trio.testing.MockClock) -> None:
    routes, _ = rules_of(SPLIT)
    ups = {p: Scripted(p, {"m": Step()}) for p in "ab"}
    engine = Engine(ups)
    n = 5000
    arms = []
    for user in range(n):
        trace = RequestTrace("r")
        headers = {"x-user-id": f"user-{user}"}
        await engine.complete(RoutedRequest(routes["r"], REQ, trace, options(headers=headers)))
        arms.append(trace.arm)
    assert binomial_ok(arms.count("a:m"), n, 0.9)


async def test_split_without_the_key_is_random_by_weight(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, _ = rules_of(SPLIT)
    ups = {p: Scripted(p, {"m": Step()}) for p in "ab"}
    engine = Engine(ups, rng=random.Random(8))
    for route, p_a in (("r", 0.9), ("loose", 0.25)):
        arms = []
        for _ in range(2000):
            trace = RequestTrace(route)
            await engine.complete(
                RoutedRequest(routes[route], REQ, trace, options())
            )  # no x-user-id
            arms.append(trace.arm)
        assert binomial_ok(arms.count("a:m"), 2000, p_a)
        assert trio.current_time() == 0.0


async def test_a_split_arm_can_be_a_route(autojump_clock: trio.testing.MockClock) -> None:
    routes, _ = rules_of(
        '[routes.arm]\nfallback = ["a:m", "c:m"]\n'
        '[routes.r]\nsplit = { "arm" = 1 }\nsticky = "header:x-user-id"\n'
    )
    a = Scripted("a", {"m": Step(latency=0.5, error=boom())})
    c = Scripted("c", {"m": Step()})
    trace = RequestTrace("r")
    await Engine({"a": a, "c": c}).complete(
        RoutedRequest(routes["r"], REQ, trace, options(headers={"x-user-id": "u1"}))
    )
    assert (trace.arm, trace.target, trace.attempts) == ("arm", "c:m", 2)
    assert c.started == [("m", 0.5)]


async def test_errors_keep_their_type_through_a_single_target_route(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, _ = rules_of('[routes.r]\nfallback = ["a:m"]\n')
    a = Scripted("a", {"m": Step(latency=2.0, error=boom(503))})
    with pytest.raises(ProviderInternalError) as caught:
        await Engine({"a": a}).complete(
            RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())
        )
    assert (caught.value.upstream, caught.value.upstream_status) == ("a:m", 503)
    assert trio.current_time() == 2.0


def test_a_call_elsewhere_is_the_same_call_without_its_final_attempt() -> None:
    async def attempt(upstream: object, model: str) -> int:
        return 1

    call: Call[int] = Call(
        attempt,
        nothing,
        vision=True,
        tools=True,
        tokens=7,
        used=lambda _: 3,
        exclude=frozenset({"a:b"}),
        verdict_later=True,
        final=attempt,
    )
    assert call.elsewhere() == attrs.evolve(call, final=None)
    plain = call.elsewhere()
    assert plain.elsewhere() is plain
