"""Adaptive bounds in flight (AIMD), on MockClock: a fake upstream that answers 429 past
a concurrency it does not announce, and the gate that learns it."""

from __future__ import annotations

import attrs
import pytest
import trio
import trio.testing

from adapters import GatewayRequest, GatewayResponse, RateLimitExceeded, provider_kinds
from router import Engine, RequestTrace
from router.routing._request import RoutedRequest
from router.traffic._adaptive import AT_CAPACITY_WAIT, Gate
from router.traffic._targetlimits import TargetLimited, TargetLimits
from router.traffic._window import RateLimiter
from rules import ConfigError, Node, compile_routes, parse_config
from tests.fakes.scripted import REQ, Scripted, Step, options


@attrs.define(eq=False)
class Hidden(Scripted):
    """Takes ``hidden`` requests at once; past them it answers 429 at once."""

    hidden: int = 3
    now: int = 0
    peak: int = 0
    rejected: int = 0
    retry_after: float | None = None

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        if self.now >= self.hidden:
            self.rejected += 1
            raise RateLimitExceeded("too many requests", retry_after=self.retry_after)
        self.now += 1
        self.peak = max(self.peak, self.now)
        try:
            return await super().complete(req, model)
        finally:
            self.now -= 1


def setup(
    limits_toml: str, routes: str = '[routes.r]\nfallback = ["a:m", "b:m"]\n', hidden: int = 3
) -> tuple[Hidden, Scripted, Engine, Node, TargetLimits]:
    text = (
        f'[providers.a]\nkind = "simulated"\n{limits_toml}\n'
        '[providers.b]\nkind = "simulated"\n' + routes
    )
    config = parse_config(text, kinds=provider_kinds())
    limits = TargetLimits(RateLimiter(trio.current_time))
    limits.configure(config)
    a = Hidden("a", {"m": Step(latency=1.0)}, hidden=hidden)
    b = Scripted("b", {"m": Step(latency=1.0)})
    engine = Engine({"a": a, "b": b}, config.defaults, limits=limits)
    return a, b, engine, compile_routes(config).routes["r"], limits


async def wave(engine: Engine, node: Node, n: int) -> list[str | None]:
    """``n`` requests at once; the target that answered each (None: it failed)."""
    served: list[str | None] = [None] * n

    async def one(i: int) -> None:
        trace = RequestTrace("r")
        try:
            await engine.complete(RoutedRequest(node, REQ, trace, options(retries=0)))
        except RateLimitExceeded:
            return
        served[i] = trace.target

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(one, i)
    return served


def limit(limits: TargetLimits, key: str = "a") -> int:
    return limits.gates()[key].limit


async def test_a_429_halves_once_per_round_and_the_rest_moves_on(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, _b, engine, node, limits = setup("limits = { adaptive = true, concurrency = 8 }")
    assert limit(limits) == 8
    served = await wave(engine, node, 10)
    # Three reach a and stay; the fourth gets a's 429 at once (8 -> 4) and moves on to
    # b; the fifth, admitted after that decrease, gets one too (4 -> 2); the other five
    # find the bound full and go to b without asking a.
    assert served.count("a:m") == 3
    assert served.count("b:m") == 7
    assert a.rejected == 2
    assert trio.current_time() == 1.0
    assert limit(limits) == 3  # 2, then +1/2 +1/2 +1/3 for the three answers


async def test_429s_of_one_round_halve_once(autojump_clock: trio.testing.MockClock) -> None:
    gate = Gate(8, True, trio.current_time)
    tickets = [gate.enter() for _ in range(6)]
    for ticket in tickets:  # all started before the first 429 came back
        gate.leave(ticket, "rate_limited")  # type: ignore[arg-type]
    assert gate.limit == 4


async def test_the_bound_settles_around_the_hidden_concurrency(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, _b, engine, node, limits = setup("limits = { adaptive = true, concurrency = 16 }")
    seen = []
    for _ in range(20):
        await wave(engine, node, 6)
        seen.append(limit(limits))
    # AIMD's saw tooth around the hidden 3: the first wave halves 16 -> 8 -> 4 -> 2 and
    # its three successes grow it back to 3; a round of three successes makes it 4, whose
    # fourth request gets a 429 (-> 2) while three more successes make it 3 again.
    assert seen == [3, 4] * 10
    assert a.peak == 3
    assert a.rejected == 3 + 9  # the first wave's three, then one every other wave


async def test_successes_grow_the_bound_up_to_its_ceiling(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _a, _b, engine, node, limits = setup(
        "limits = { adaptive = true, concurrency = 4 }", hidden=100
    )
    gate = limits._gates["a"]
    gate.leave(gate.enter(), "rate_limited")  # type: ignore[arg-type]
    gate.leave(gate.enter(), "rate_limited")  # type: ignore[arg-type]
    assert limit(limits) == 1
    grown = []
    for _ in range(6):
        await wave(engine, node, 1)
        grown.append(limit(limits))
    # +1/bound per success: 1 -> 2 after one, -> 3 after two more, -> 4 (the ceiling).
    assert grown == [2, 2, 3, 3, 3, 4]


async def test_retry_after_holds_the_target_then_lets_it_serve(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, _b, engine, node, limits = setup(
        "limits = { adaptive = true, concurrency = 4 }", '[routes.r]\nfallback = ["a:m"]\n', 1
    )
    a.retry_after = 30.0
    served = await wave(engine, node, 2)
    assert sorted(served, key=str) == [None, "a:m"]
    assert trio.current_time() == 1.0
    with pytest.raises(TargetLimited) as held:
        await engine.complete(RoutedRequest(node, REQ, RequestTrace("r"), options()))
    assert held.value.retry_after == pytest.approx(29.0)  # the 429 came at t=0
    assert limits.gates()["a"].blocked_for == pytest.approx(29.0)
    await trio.sleep(29.0)
    assert await wave(engine, node, 1) == ["a:m"]


async def test_a_fixed_concurrency_refuses_past_it(
    autojump_clock: trio.testing.MockClock,
) -> None:
    a, _b, engine, node, limits = setup(
        "limits = { concurrency = 2 }", '[routes.r]\nfallback = ["a:m"]\n', 100
    )
    served = await wave(engine, node, 3)
    assert served.count("a:m") == 2
    assert a.peak == 2
    state = limits.gates()["a"]
    assert (state.limit, state.adaptive, state.in_flight) == (2, False, 0)


async def test_model_limits_bound_one_target(autojump_clock: trio.testing.MockClock) -> None:
    _a, _b, engine, node, limits = setup(
        'model_limits = { "m" = { adaptive = true, concurrency = 2 } }', hidden=100
    )
    assert set(limits.gates()) == {"a:m"}
    served = await wave(engine, node, 3)
    assert sorted(served, key=str) == ["a:m", "a:m", "b:m"]


def test_the_refusal_while_full_has_a_short_retry_after() -> None:
    gate = Gate(1, True, lambda: 0.0)
    assert not isinstance(gate.enter(), float)
    assert gate.enter() == AT_CAPACITY_WAIT


def test_headers_saying_nothing_remains_step_back_once() -> None:
    now = [0.0]
    gate = Gate(8, True, lambda: now[0])
    gate.exhausted(5.0)
    gate.exhausted(5.0)  # the same burst
    assert gate.state().limit == 4
    assert gate.enter() == 5.0
    now[0] = 5.0
    gate.exhausted(None)
    assert gate.state().limit == 2


def test_a_reload_keeps_what_was_learned_within_the_new_ceiling() -> None:
    gate = Gate(16, True, lambda: 0.0)
    gate.exhausted(None)
    assert gate.limit == 8
    gate.reconfigure(32, True)
    assert gate.limit == 8
    gate.reconfigure(4, True)
    assert gate.limit == 4


def test_keys_take_no_concurrency() -> None:
    text = (
        '[providers.a]\nkind = "simulated"\nlimits = { adaptive = "yes", concurrency = 0 }\n'
        '[routes.r]\nfallback = ["a:m"]\n[keys.k]\nsecret = "env:X"\n'
        "limits = { adaptive = true }\n"
    )
    with pytest.raises(ConfigError) as info:
        parse_config(text, kinds=provider_kinds())
    assert info.value.errors == (
        'providers.a.limits.adaptive: expected true or false, got "yes"',
        "providers.a.limits.concurrency: must be greater than 0, got 0",
        "keys.k.limits.adaptive: unknown key",
    )
