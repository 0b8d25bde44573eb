"""The engine's policy walk and timing rules, on trio's MockClock with scripted targets."""

from __future__ import annotations

import random
from contextlib import AsyncExitStack, aclosing, asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import pytest
import trio
import trio.testing

from adapters import (
    AllTargetsFailed,
    ChatChunk,
    ChunkChoice,
    ContentFiltered,
    Delta,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    Message,
    ProviderInternalError,
    StreamError,
    Timeout,
)
from router import Engine, RequestTrace
from rules import compile_routes, parse_config

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

REQ = GatewayRequest(model="r", messages=(Message(role="user", content="hi"),))


@attrs.define
class Script:
    """What one scripted target does: wait, then fail or answer (streams: chunk by chunk)."""

    latency: float = 0.0
    error: GatewayError | None = None
    chunk_gaps: tuple[float, ...] = (0.0, 0.0)  # a stream: one content chunk per gap


@attrs.define
class Scripted:
    """An Upstream whose models are scripts; records when each attempt started."""

    name: str
    scripts: dict[str, Script]
    kind: str = "scripted"
    started: list[tuple[str, float]] = attrs.field(factory=list)

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        script = self.scripts[model]
        self.started.append((model, trio.current_time()))
        await trio.sleep(script.latency)
        if script.error:
            raise script.error
        return GatewayResponse(id="x", model=model, created=0, choices=())

    @asynccontextmanager
    async def stream(
        self, req: GatewayRequest, model: str
    ) -> AsyncIterator[AsyncIterator[list[ChatChunk]]]:
        script = self.scripts[model]
        self.started.append((model, trio.current_time()))
        await trio.sleep(script.latency)
        if script.error:
            raise script.error

        async def chunks() -> AsyncGenerator[list[ChatChunk]]:
            yield [ChatChunk("x", model, 0, (ChunkChoice(0, Delta(role="assistant")),))]
            for i, gap in enumerate(script.chunk_gaps):
                await trio.sleep(gap)
                yield [ChatChunk("x", model, 0, (ChunkChoice(0, Delta(content=f"t{i}")),))]

        async with aclosing(chunks()) as iterator:
            yield iterator

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def table(routes: str, providers: tuple[str, ...] = ("a", "b", "c")) -> dict[str, object]:
    text = "".join(f'[providers.{p}]\nkind = "simulated"\n' for p in providers) + routes
    return dict(compile_routes(parse_config(text)).routes)


def boom(status: int = 500) -> GatewayError:
    return ProviderInternalError("boom", upstream_status=status)


async def test_fallback_moves_on_and_reports_the_target(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes = table('[routes.r]\nfallback = ["a:m", "b:m"]\n')
    a = Scripted("a", {"m": Script(latency=1.0, error=boom())})
    b = Scripted("b", {"m": Script(latency=2.0)})
    trace = RequestTrace(route="r")
    answer = await Engine({"a": a, "b": b}).complete(routes["r"], REQ, trace)  # type: ignore[arg-type]
    assert answer.model == "m"
    assert (trace.attempts, trace.target) == (2, "b:m")
    assert b.started == [("m", 1.0)]  # at once after a's failure
    assert trio.current_time() == 3.0


async def test_bad_request_is_not_retried_elsewhere(autojump_clock: trio.testing.MockClock) -> None:
    routes = table('[routes.r]\nfallback = ["a:m", "b:m"]\n')
    refusal = ContentFiltered("refused by the content policy", upstream_status=400)
    a = Scripted("a", {"m": Script(error=refusal)})
    b = Scripted("b", {"m": Script()})
    with pytest.raises(ContentFiltered, match="content policy"):
        await Engine({"a": a, "b": b}).complete(routes["r"], REQ, RequestTrace("r"))  # type: ignore[arg-type]
    assert b.started == []


async def test_on_limits_which_failures_fall_back(autojump_clock: trio.testing.MockClock) -> None:
    routes = table('[routes.r]\nfallback = ["a:m", "b:m"]\non = ["timeout"]\n')
    a = Scripted("a", {"m": Script(error=boom())})
    b = Scripted("b", {"m": Script()})
    with pytest.raises(ProviderInternalError):
        await Engine({"a": a, "b": b}).complete(routes["r"], REQ, RequestTrace("r"))  # type: ignore[arg-type]
    assert b.started == []


async def test_nested_routes_flatten_every_attempt(autojump_clock: trio.testing.MockClock) -> None:
    routes = table(
        '[routes.inner]\nfallback = ["b:m", "c:m"]\n[routes.r]\nfallback = ["a:m", "inner"]\n'
    )
    ups = {p: Scripted(p, {"m": Script(error=boom(500 + i))}) for i, p in enumerate("abc")}
    trace = RequestTrace("r")
    with pytest.raises(AllTargetsFailed) as caught:
        await Engine(ups).complete(routes["r"], REQ, trace)  # type: ignore[arg-type]
    assert [e.upstream for e in caught.value.attempts] == ["a:m", "b:m", "c:m"]
    assert [e.upstream_status for e in caught.value.attempts] == [500, 501, 502]
    assert trace.attempts == 3


async def test_silent_stream_fails_over_after_first_token_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes = table('[routes.r]\nfallback = ["a:m", "b:m"]\n')
    a = Scripted("a", {"m": Script(latency=1000.0)})  # never a first token in time
    b = Scripted("b", {"m": Script(latency=0.5, chunk_gaps=(0.25, 0.25))})
    engine = Engine({"a": a, "b": b})  # type: ignore[dict-item]
    trace = RequestTrace("r")
    async with AsyncExitStack() as stack:
        start = await engine.open_stream(routes["r"], REQ, trace, stack, first_token_timeout=4.0)  # type: ignore[arg-type]
        assert trio.current_time() == 4.75  # 4 s silent on a, 0.5 + 0.25 to b's first token
        assert [c.choices[0].delta.content for c in start.head] == [None, "t0"]
        assert start.rest is not None
        batch = await engine.next_batch(start.rest)
        assert batch is not None
        assert batch[0].choices[0].delta.content == "t1"
        assert await engine.next_batch(start.rest) is None
    assert b.started == [("m", 4.0)]
    assert trace.target == "b:m"


async def test_stall_after_commit_is_a_stream_error(autojump_clock: trio.testing.MockClock) -> None:
    routes = table('[routes.r]\nfallback = ["a:m", "b:m"]\n')
    a = Scripted("a", {"m": Script(chunk_gaps=(0.0, 100.0))})  # then silent for 100 s
    b = Scripted("b", {"m": Script()})
    engine = Engine({"a": a, "b": b}, stall_timeout=30.0)  # type: ignore[dict-item]
    async with AsyncExitStack() as stack:
        start = await engine.open_stream(routes["r"], REQ, RequestTrace("r"), stack, 15.0)  # type: ignore[arg-type]
        assert start.rest is not None
        with pytest.raises(StreamError, match="stalled for 30s"):
            await engine.next_batch(start.rest)
    assert trio.current_time() == 30.0
    assert b.started == []  # committed: no failover after the first token


async def test_stream_error_before_first_token_fails_over(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes = table('[routes.r]\nfallback = ["a:m", "b:m"]\n')
    a = Scripted("a", {"m": Script(latency=2.0, error=Timeout("connect timed out"))})
    b = Scripted("b", {"m": Script()})
    trace = RequestTrace("r")
    async with AsyncExitStack() as stack:
        await Engine({"a": a, "b": b}).open_stream(routes["r"], REQ, trace, stack, 15.0)  # type: ignore[arg-type]
    assert (trace.attempts, trace.target) == (2, "b:m")
    assert b.started == [("m", 2.0)]


async def test_round_robin_rotates(autojump_clock: trio.testing.MockClock) -> None:
    routes = table('[routes.r]\nbalance = "round_robin"\ntargets = ["a:m", "b:m", "c:m"]\n')
    ups = {p: Scripted(p, {"m": Script()}) for p in "abc"}
    engine = Engine(ups)  # type: ignore[arg-type]
    served = []
    for _ in range(6):
        trace = RequestTrace("r")
        await engine.complete(routes["r"], REQ, trace)  # type: ignore[arg-type]
        served.append(trace.target)
    assert served == ["a:m", "b:m", "c:m"] * 2


async def test_weighted_and_split_follow_their_weights(
    autojump_clock: trio.testing.MockClock,
) -> None:
    routes = table(
        '[routes.w]\nbalance = "weighted"\ntargets = { "a:m" = 3, "b:m" = 1 }\n'
        '[routes.s]\nsplit = { "a:m" = 1, "b:m" = 3 }\n'
    )
    ups = {p: Scripted(p, {"m": Script()}) for p in "ab"}
    engine = Engine(ups, rng=random.Random(5))  # type: ignore[arg-type]
    for route, expected_a in (("w", 0.75), ("s", 0.25)):
        firsts = []
        for _ in range(2000):
            trace = RequestTrace(route)
            await engine.complete(routes[route], REQ, trace)  # type: ignore[arg-type]
            firsts.append(trace.target)
        assert firsts.count("a:m") / 2000 == pytest.approx(expected_a, abs=0.04)
