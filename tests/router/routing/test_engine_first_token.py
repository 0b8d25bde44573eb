"""The first-token time bounds whole (non-stream) answers too, on trio's MockClock: an
attempt with others after it and no answer by then moves on; the last candidate has
until the request's deadline."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from adapters import AllTargetsFailed, Timeout
from router import Engine, RequestTrace
from router.routing._request import RoutedRequest
from tests.fakes.scripted import REQ, Scripted, Step, engine_for, options, rules_of


async def test_a_silent_target_costs_the_first_token_time_then_the_next_answers(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b, engine, routes = engine_for("", Step(latency=1000.0), Step(latency=0.5))
    trace = RequestTrace("r")
    routed = RoutedRequest(routes["r"], REQ, trace, options(deadline=60.0, first_token_timeout=4.0))
    resp = await engine.complete(routed)
    assert trio.current_time() == 4.5
    assert resp.id == "b"
    assert a.cancelled == [("m", 4.0)]
    assert b.started == [("m", 4.0)]
    assert [type(e) for e in trace.errors] == [Timeout]
    assert (trace.target, trace.attempts) == ("b:m", 2)
    assert engine.registry.get("a:m").failures == 1  # silence is the target's failure


async def test_the_last_candidate_has_until_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, b, engine, routes = engine_for("", Step(latency=30.0), Step(latency=30.0))
    trace = RequestTrace("r")
    routed = RoutedRequest(routes["r"], REQ, trace, options(deadline=60.0, first_token_timeout=4.0))
    assert (await engine.complete(routed)).id == "b"
    assert trio.current_time() == 34.0  # a cut at 4 s; b, the last, answers after 30 s
    assert (a.cancelled, b.cancelled) == ([("m", 4.0)], [])
    # A route's only target is its last: a long answer is not cut.
    routed = RoutedRequest(routes["solo"], REQ, RequestTrace("solo"), options(100.0, 0, 4.0))
    assert (await engine.complete(routed)).id == "a"
    assert trio.current_time() == 64.0


async def test_the_last_target_of_a_nested_route_with_more_after_it_is_bounded(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes, defaults = rules_of(
        '[routes.inner]\nfallback = ["a:m", "b:m"]\n[routes.outer]\nfallback = ["inner", "c:m"]\n'
    )
    slow = Step(latency=30.0)
    ups = {p: Scripted(p, {"m": slow}) for p in "abc"}
    engine = Engine(ups, defaults, rng=random.Random(7))
    trace = RequestTrace("outer")
    routed = RoutedRequest(routes["outer"], REQ, trace, options(60.0, 0, 4.0))
    assert (await engine.complete(routed)).id == "c"
    assert trio.current_time() == 4.0 + 4.0 + 30.0
    assert [u.cancelled for u in ups.values()] == [[("m", 4.0)], [("m", 8.0)], []]


async def test_every_candidate_silent_ends_at_the_deadline(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, _, engine, routes = engine_for("", Step(latency=1000.0), Step(latency=1000.0))
    trace = RequestTrace("r")
    routed = RoutedRequest(routes["r"], REQ, trace, options(deadline=20.0, first_token_timeout=4.0))
    with pytest.raises(Timeout, match="deadline"):
        await engine.complete(routed)
    assert trio.current_time() == 20.0
    assert not any(isinstance(e, AllTargetsFailed) for e in trace.errors)
