"""The engine's embeddings: the same attempts, fallback and breakers as chat, and the
batcher that combines concurrent requests into one upstream call (trio's MockClock)."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

import attrs
import pytest
import trio
import trio.testing

from adapters import (
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayError,
    InvalidRequest,
    Timeout,
    UnsupportedParameter,
    Usage,
)
from router.routing._batch import EmbeddingBatcher
from router.routing._engine import Engine
from router.routing._request import RequestTrace, RoutedRequest
from rules import BatchConfig
from tests.fakes.scripted import SEED, Scripted, Step, boom, options, rules_of, spelled

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rules import Node

ROUTES = '[routes.r]\nfallback = ["a:m", "b:m"]\n[routes.solo]\nfallback = ["a:m"]\n'
BATCH = BatchConfig(max=8, wait=0.005)


def setup(
    a: Step | list[Step], b: Step | None = None, defaults: str = ""
) -> tuple[Scripted, Scripted, Engine, Mapping[str, Node], EmbeddingBatcher]:
    routes, parsed = rules_of(defaults + ROUTES)
    up_a, up_b = Scripted("a", {"m": a}), Scripted("b", {"m": b or Step(latency=0.5)})
    batcher = EmbeddingBatcher()
    engine = Engine({"a": up_a, "b": up_b}, parsed, rng=random.Random(SEED), batcher=batcher)
    return up_a, up_b, engine, routes, batcher


def routed(
    node: Node, *inputs: str, batch: BatchConfig | None = BATCH, dimensions: int | None = None
) -> RoutedRequest[EmbeddingRequest]:
    req = EmbeddingRequest("r", inputs, dimensions=dimensions)
    return RoutedRequest(node, req, RequestTrace("r"), attrs.evolve(options(), batch=batch))


async def test_a_failing_target_falls_back_to_the_next(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, _, engine, routes, _ = setup(Step(error=boom(503)))
    request = routed(routes["r"], "hello", batch=None)
    answer = await engine.embed(request)
    assert answer.vectors == (spelled("hello"),)
    assert request.trace.target == "b:m"
    assert [type(e).__name__ for e in request.trace.errors] == ["ProviderInternalError"]
    assert trio.current_time() == 0.5


async def test_a_silent_target_with_others_after_it_gives_way_at_the_first_token_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    _, _, engine, routes, _ = setup(Step(latency=100.0))
    request = routed(routes["r"], "hello", batch=None)
    request = attrs.evolve(request, options=attrs.evolve(request.options, first_token_timeout=2.0))
    await engine.embed(request)
    assert request.trace.target == "b:m"
    assert isinstance(request.trace.errors[0], Timeout)
    assert trio.current_time() == 2.5


async def test_a_refused_parameter_moves_on_without_a_word_on_the_targets_health(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A target that cannot take a parameter was never called: a half-open circuit keeps
    waiting for a real probe, and its probe slot is free again."""
    circuit = '[defaults]\ncircuit = { failures = 1, successes = 1, open_for = "10s" }\n'
    refused = UnsupportedParameter("no dimensions here", param="dimensions")
    _, _, engine, routes, _ = setup([Step(error=boom(500)), Step(error=refused)], defaults=circuit)
    state = engine.registry.get("a:m")
    await engine.embed(routed(routes["r"], "x", batch=None))
    assert state.breaker.state(trio.current_time()) == "open"
    await trio.sleep(10)
    request = routed(routes["r"], "x", batch=None)
    await engine.embed(request)
    assert request.trace.target == "b:m"
    assert state.breaker.state(trio.current_time()) == "half_open"
    assert state.breaker.allow(trio.current_time())  # the probe slot was given back


async def test_concurrent_requests_share_one_call_after_the_wait(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    up_a, _, engine, routes, batcher = setup(Step(latency=1.0))
    await nursery.start(batcher.run)
    answers: dict[str, EmbeddingResponse] = {}
    ended: dict[str, float] = {}

    async def ask(*inputs: str) -> None:
        answers[inputs[0]] = await engine.embed(routed(routes["solo"], *inputs))
        ended[inputs[0]] = trio.current_time()

    async with trio.open_nursery() as clients:
        clients.start_soon(ask, "aa", "bbbb")
        await trio.sleep(0.002)
        clients.start_soon(ask, "cccccc")
    assert [req.inputs for req in up_a.embedded] == [("aa", "bbbb", "cccccc")]
    assert up_a.started == [("m", 0.005)]  # the first request's wait
    assert answers["aa"].vectors == (spelled("aa"), spelled("bbbb"))
    assert answers["cccccc"].vectors == (spelled("cccccc"),)
    # The call's 12 characters, shared by the requests' estimates (2 + 2 tokens).
    assert [answers[k].usage for k in ("aa", "cccccc")] == [Usage(6), Usage(6)]
    assert ended == {"aa": 1.005, "cccccc": 1.005}
    assert (batcher.stats.calls, batcher.stats.requests, batcher.stats.inputs) == (1, 2, 3)


async def test_a_full_batch_goes_at_once_and_the_next_opens(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    up_a, _, engine, routes, batcher = setup(Step(latency=1.0))
    await nursery.start(batcher.run)
    config = BatchConfig(max=3, wait=0.5)
    async with trio.open_nursery() as clients:
        for text in ("a", "b", "c", "d"):
            clients.start_soon(engine.embed, routed(routes["solo"], text, batch=config))
            await trio.sleep(0.001)
    assert [req.inputs for req in up_a.embedded] == [("a", "b", "c"), ("d",)]
    assert up_a.started == [("m", 0.002), ("m", 0.503)]


async def test_a_request_as_large_as_a_batch_goes_alone(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    up_a, _, engine, routes, batcher = setup(Step())
    await nursery.start(batcher.run)
    await engine.embed(routed(routes["solo"], *"abcdefgh"))
    assert up_a.started == [("m", 0.0)]
    assert batcher.stats.calls == 0


async def test_requests_with_other_parameters_do_not_share(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    up_a, _, engine, routes, batcher = setup(Step())
    await nursery.start(batcher.run)
    async with trio.open_nursery() as clients:
        clients.start_soon(engine.embed, routed(routes["solo"], "a"))
        clients.start_soon(engine.embed, routed(routes["solo"], "b", dimensions=8))
        clients.start_soon(engine.embed, routed(routes["solo"], "c"))
    assert sorted(tuple(sorted(req.inputs)) for req in up_a.embedded) == [("a", "c"), ("b",)]


async def test_a_failed_call_fails_every_member_each_with_its_own_error(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    refused = InvalidRequest("bad input", upstream_status=400)
    up_a, _, engine, routes, batcher = setup(Step(error=refused))
    await nursery.start(batcher.run)
    requests = [routed(routes["solo"], text) for text in ("a", "b")]
    errors: list[GatewayError] = []

    async def ask(request: RoutedRequest[EmbeddingRequest]) -> None:
        with pytest.raises(InvalidRequest) as caught:
            await engine.embed(request)
        errors.append(caught.value)

    async with trio.open_nursery() as clients:
        for request in requests:
            clients.start_soon(ask, request)
    assert len(up_a.embedded) == 1
    assert len(errors) == 2
    assert errors[0] is not errors[1]
    assert [r.trace.errors[0].upstream for r in requests] == ["a:m", "a:m"]


async def test_a_member_that_leaves_does_not_cancel_the_others_call(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    up_a, _, engine, routes, batcher = setup(Step(latency=1.0))
    await nursery.start(batcher.run)
    got: list[EmbeddingResponse] = []

    async def stays() -> None:
        got.append(await engine.embed(routed(routes["solo"], "stays")))

    async with trio.open_nursery() as clients:
        with trio.move_on_after(0.5):  # this client leaves mid-call
            clients.start_soon(stays)
            await engine.embed(routed(routes["solo"], "leaves"))
    assert up_a.cancelled == []
    assert got[0].vectors == (spelled("stays"),)
    assert trio.current_time() == 1.005


async def test_the_call_is_cancelled_when_every_member_left(
    nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
) -> None:
    up_a, _, engine, routes, batcher = setup(Step(latency=1.0))
    await nursery.start(batcher.run)
    with trio.move_on_after(0.5):
        async with trio.open_nursery() as clients:
            for text in ("a", "b"):
                clients.start_soon(engine.embed, routed(routes["solo"], text))
    await trio.sleep(0.1)  # the batcher's task sees that no one waits
    assert up_a.cancelled == [("m", 0.5)]


async def test_without_a_running_batcher_each_request_calls_alone(
    autojump_clock: trio.testing.MockClock,
) -> None:
    up_a, _, engine, routes, _ = setup(Step(latency=1.0))
    async with trio.open_nursery() as clients:
        for text in ("a", "b"):
            clients.start_soon(engine.embed, routed(routes["solo"], text))
    assert sorted(req.inputs for req in up_a.embedded) == [("a",), ("b",)]
    assert up_a.started == [("m", 0.0), ("m", 0.0)]
