"""Rate limits and the cheapest strategy in the engine, on MockClock."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from adapters import GatewayRequest, Message, RateLimitExceeded, provider_kinds
from router import Engine, RequestTrace
from router.routing._request import RoutedRequest
from router.traffic._cost import PriceTable
from router.traffic._targetlimits import TargetLimited, TargetLimits
from router.traffic._window import RateLimiter
from rules import Node, Price, compile_routes, parse_config, parse_target
from tests.fakes.scripted import Scripted, Step, options

REQ = GatewayRequest(model="r", messages=(Message(role="user", content="hello"),), max_tokens=10)


def setup(limits_toml: str, routes: str) -> tuple[dict[str, Scripted], Engine, Node]:
    text = (
        f'[providers.a]\nkind = "simulated"\n{limits_toml}\n'
        '[providers.b]\nkind = "simulated"\n' + routes
    )
    config = parse_config(text, kinds=provider_kinds())
    limits = TargetLimits(RateLimiter(trio.current_time))
    limits.configure(config)
    ups = {p: Scripted(p, {"m": Step(latency=0.5), "n": Step(latency=0.5)}) for p in "ab"}
    engine = Engine(ups, config.defaults, limits=limits)
    return ups, engine, compile_routes(config).routes["r"]


async def test_a_limited_target_is_skipped(autojump_clock: trio.testing.MockClock) -> None:
    ups, engine, node = setup("limits = { rpm = 2 }", '[routes.r]\nfallback = ["a:m", "b:m"]\n')
    served = []
    for _ in range(3):
        trace = RequestTrace("r")
        await engine.complete(RoutedRequest(node, REQ, trace, options()))
        served.append(trace.target)
    assert served == ["a:m", "a:m", "b:m"]
    assert len(ups["a"].started) == 2  # the third never reached a


async def test_all_limited_is_a_429_with_a_true_retry_after(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, engine, node = setup("limits = { rpm = 1 }", '[routes.r]\nfallback = ["a:m"]\n')
    await engine.complete(RoutedRequest(node, REQ, RequestTrace("r"), options()))
    assert trio.current_time() == 0.5
    with pytest.raises(RateLimitExceeded) as limited:
        await engine.complete(RoutedRequest(node, REQ, RequestTrace("r"), options()))
    assert isinstance(limited.value, TargetLimited)
    assert limited.value.retry_after is not None
    assert limited.value.retry_after == pytest.approx(59.5)  # the first leaves at t=60
    await trio.sleep(limited.value.retry_after)
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(node, REQ, trace, options()))
    assert trace.target == "a:m"


async def test_model_limits_are_their_own_window(autojump_clock: trio.testing.MockClock) -> None:
    _ups, engine, node = setup(
        'model_limits = { "m" = { tpm = 48 } }',
        '[routes.r]\nbalance = "round_robin"\ntargets = ["a:m", "a:n"]\n',
    )
    # Each request is estimated at ceil(5 / 4) + 10 = 12 tokens (a quarter of the tpm, the
    # most one request holds): a:m takes four (48 <= 48).
    targets = []
    for _ in range(10):
        trace = RequestTrace("r")
        await engine.complete(RoutedRequest(node, REQ, trace, options()))
        targets.append(trace.target)
    assert targets.count("a:m") == 4
    assert targets.count("a:n") == 6


async def test_upstream_headers_close_a_window(autojump_clock: trio.testing.MockClock) -> None:
    limits = TargetLimits(RateLimiter(trio.current_time))
    limits.configure(
        parse_config(
            '[providers.a]\nkind = "openai"\n[routes.r]\nfallback = ["a:m"]\n',
            kinds=provider_kinds(),
        )
    )
    limits.observe(
        "a",
        "openai",
        [("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "2s")],
    )
    with pytest.raises(TargetLimited) as closed:
        limits.take(parse_target("a:m"), 10)
    assert closed.value.retry_after == pytest.approx(2.0)
    await trio.sleep(2.0)
    assert limits.take(parse_target("a:m"), 10) == ["a"]


async def test_cheapest_orders_by_price(autojump_clock: trio.testing.MockClock) -> None:
    config = parse_config(
        '[providers.a]\nkind = "simulated"\n[providers.b]\nkind = "simulated"\n'
        '[routes.r]\nbalance = "cheapest"\ntargets = ["a:gpt-4o", "b:gpt-4o-mini", "a:mystery"]\n',
        kinds=provider_kinds(),
    )
    ups = {
        p: Scripted(p, {"gpt-4o": Step(), "gpt-4o-mini": Step(), "mystery": Step()}) for p in "ab"
    }
    prices = PriceTable({"a:mystery": Price(input=0.01, output=0.01)})
    engine = Engine(ups, config.defaults, prices=prices)
    node = compile_routes(config).routes["r"]
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(node, REQ, trace, options()))
    assert trace.target == "a:mystery"  # the configured price undercuts both shipped ones
    engine = Engine(ups, config.defaults, prices=PriceTable())
    trace = RequestTrace("r")
    await engine.complete(RoutedRequest(node, REQ, trace, options()))
    assert trace.target == "b:gpt-4o-mini"  # unknown prices sort last
