"""Routing around targets that cannot take what a request needs (MockClock)."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from adapters import GatewayRequest, ImagePart, Message, TextPart, UnsupportedCapability
from router import Engine, RequestTrace
from router.routing._request import RoutedRequest
from tests.fakes.scripted import Scripted, Step, options, rules_of

PICTURE = GatewayRequest(
    model="r",
    messages=(
        Message(
            role="user",
            content=(TextPart("what is this?"), ImagePart("data:image/png;base64,AA==")),
        ),
    ),
)


async def test_a_target_without_vision_is_skipped(autojump_clock: trio.testing.MockClock) -> None:
    routes, defaults = rules_of('[routes.r]\nfallback = ["a:m", "b:m"]\n')
    a = Scripted("a", {"m": Step(latency=1.0)}, blind=frozenset({"m"}))
    b = Scripted("b", {"m": Step(latency=1.0)})
    trace = RequestTrace("r")
    await Engine({"a": a, "b": b}, defaults).complete(
        RoutedRequest(routes["r"], PICTURE, trace, options())
    )
    assert a.started == []  # never asked
    assert (trace.target, trace.attempts, trio.current_time()) == ("b:m", 1, 1.0)


async def test_nowhere_to_go_is_a_400(autojump_clock: trio.testing.MockClock) -> None:
    routes, defaults = rules_of('[routes.r]\nbalance = "round_robin"\ntargets = ["a:m", "b:m"]\n')
    ups = {p: Scripted(p, {"m": Step()}, blind=frozenset({"m"})) for p in "ab"}
    with pytest.raises(UnsupportedCapability) as caught:
        await Engine(ups, defaults).complete(
            RoutedRequest(routes["r"], PICTURE, RequestTrace("r"), options())
        )
    assert caught.value.status_hint == 400
    assert "a:m cannot take images" in caught.value.message
    assert "b:m cannot take images" in caught.value.message
    assert trio.current_time() == 0.0  # no attempt was made


async def test_text_requests_do_not_ask(autojump_clock: trio.testing.MockClock) -> None:
    routes, defaults = rules_of('[routes.r]\nfallback = ["a:m"]\n')
    a = Scripted("a", {"m": Step()}, blind=frozenset({"m"}))
    text = GatewayRequest(model="r", messages=(Message(role="user", content="hi"),))
    trace = RequestTrace("r")
    await Engine({"a": a}, defaults).complete(RoutedRequest(routes["r"], text, trace, options()))
    assert trace.target == "a:m"
