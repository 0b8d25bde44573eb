"""Resuming a broken stream on trio's MockClock: the client's text is the canonical
answer exactly, once, under one id; a divergent regeneration, a spent ``resume_max``
or the deadline end the stream with the original failure instead."""

from __future__ import annotations

import random

import pytest
import trio
import trio.testing

from adapters import ChatChunk, GatewayRequest, Message, StreamError
from router import Engine, RequestTrace, RoutedRequest
from tests.fakes.scripted import REQ, SEED, Scripted, Step, options, rules_of

WORDS = ("The ", "quick ", "brown ", "fox ", "jumps.")
CUT = StreamError("connection reset mid-stream")


def setup(
    *steps: Step, defaults: str = ""
) -> tuple[dict[str, Scripted], Engine, RoutedRequest[GatewayRequest]]:
    names = "abc"[: len(steps)]
    routes, config = rules_of(
        defaults + "[routes.r]\nfallback = [" + ", ".join(f'"{p}:m"' for p in names) + "]\n"
    )
    ups = {p: Scripted(p, {"m": step}) for p, step in zip(names, steps, strict=True)}
    engine = Engine(ups, config, rng=random.Random(SEED))
    return ups, engine, RoutedRequest(routes["r"], REQ, RequestTrace("r"), options())


def with_resumes(
    routed: RoutedRequest[GatewayRequest], resume_max: int
) -> RoutedRequest[GatewayRequest]:
    opts = routed.options
    return RoutedRequest(
        routed.node,
        routed.request,
        routed.trace,
        type(opts)(opts.deadline, opts.retries, opts.first_token_timeout, resume_max=resume_max),
    )


async def read(
    engine: Engine, routed: RoutedRequest[GatewayRequest], got: list[ChatChunk] | None = None
) -> list[ChatChunk]:
    """Every chunk of the stream; ``got`` keeps them should the stream fail."""
    got = [] if got is None else got
    async with engine.stream(routed) as chunks:
        async for batch in chunks:
            got += batch
    return got


def text(chunks: list[ChatChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def test_a_cut_stream_is_regenerated_and_spliced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, routed = setup(
        Step(gaps=(0.0, 1.0), words=WORDS, broken=CUT), Step(gaps=(0.5,) * 5, words=WORDS)
    )
    ups["b"].prefill = False
    got = await read(engine, with_resumes(routed, 1))
    assert text(got) == "".join(WORDS)
    assert {c.id for c in got} == {"a"}  # the continuation carries the first stream's id
    assert ups["b"].started == [("m", 1.0)]
    assert ups["b"].requests == [REQ]  # no prefill for a target that does not take one
    assert ups["a"].closed == [("m", 1.0)]  # the broken stream closed at once
    assert trio.current_time() == 3.5  # b regenerates all five words, 0.5 s apart
    trace = routed.trace
    assert (trace.target, trace.attempts, trace.resumes) == ("b:m", 2, [("b:m", "resumed")])
    assert engine.registry.get("a:m").failures == 1  # the break is charged to a


async def test_a_target_that_takes_a_prefill_streams_only_the_rest(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, routed = setup(
        Step(gaps=(0.0, 1.0), words=WORDS, broken=CUT), Step(gaps=(0.5,) * 5, words=WORDS)
    )
    got = await read(engine, with_resumes(routed, 1))
    assert text(got) == "".join(WORDS)
    [sent] = ups["b"].requests
    assert sent.messages == (*REQ.messages, Message(role="assistant", content="The quick "))
    assert trio.current_time() == 2.5  # three words left, 0.5 s apart, from 1.0


async def test_a_refused_prefill_is_answered_anew_and_spliced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, routed = setup(
        Step(gaps=(0.0, 1.0), words=WORDS, broken=CUT), Step(gaps=(0.5,) * 5, words=WORDS)
    )
    ups["b"].refuses_prefill = True  # says it takes one, answers 400 (as some models do)
    got = await read(engine, with_resumes(routed, 1))
    assert text(got) == "".join(WORDS)
    assert [len(r.messages) for r in ups["b"].requests] == [2, 1]  # prefilled, then anew
    assert ups["b"].started == [("m", 1.0), ("m", 1.0)]
    assert engine.registry.get("b:m").breaker.state(3.5) == "closed"


async def test_a_stall_after_commit_is_resumed_at_the_stall_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, routed = setup(
        Step(gaps=(0.0, 100.0), words=WORDS),
        Step(gaps=(0.0,) * 5, words=WORDS),
        defaults='[defaults]\nstall_timeout = "10s"\n',
    )
    got = await read(engine, with_resumes(routed, 1))
    assert text(got) == "".join(WORDS)
    assert ups["b"].started == [("m", 10.0)]
    assert trio.current_time() == 10.0


async def test_a_regeneration_that_diverges_is_never_spliced(
    autojump_clock: trio.testing.MockClock,
) -> None:
    other = ("The ", "slow ", "brown ", "fox ", "jumps.")
    ups, engine, routed = setup(
        Step(gaps=(0.0, 0.0), words=WORDS, broken=CUT), Step(gaps=(0.0,) * 5, words=other)
    )
    ups["b"].prefill = False
    got: list[ChatChunk] = []
    with pytest.raises(StreamError, match="mid-stream"):  # the original failure
        await read(engine, with_resumes(routed, 1), got)
    assert text(got) == "The quick "  # nothing of b's answer reached the client
    assert routed.trace.resumes == [("a:m", "failed")]
    assert ups["b"].closed == [("m", 0.0)]


async def test_resume_max_bounds_the_resumes(autojump_clock: trio.testing.MockClock) -> None:
    steps = (
        Step(gaps=(0.0,), words=WORDS, broken=CUT),
        Step(gaps=(0.0, 0.0), words=WORDS, broken=CUT),
        Step(gaps=(0.0,) * 5, words=WORDS),
    )
    ups, engine, routed = setup(*steps)
    with pytest.raises(StreamError):
        await read(engine, with_resumes(routed, 1))
    assert ups["c"].started == []
    ups, engine, routed = setup(*steps)
    assert text(await read(engine, with_resumes(routed, 2))) == "".join(WORDS)
    assert [t for t, _ in routed.trace.resumes] == ["b:m", "c:m"]


async def test_without_resumes_a_break_ends_the_stream(
    autojump_clock: trio.testing.MockClock,
) -> None:
    ups, engine, routed = setup(
        Step(gaps=(0.0,), words=WORDS, broken=CUT), Step(gaps=(0.0,) * 5, words=WORDS)
    )
    with pytest.raises(StreamError):
        await read(engine, routed)  # resume_max 0
    assert ups["b"].started == []


async def test_the_deadline_is_not_resumed(autojump_clock: trio.testing.MockClock) -> None:
    ups, engine, routed = setup(
        Step(gaps=(0.0, 50.0), words=WORDS), Step(gaps=(0.0,) * 5, words=WORDS)
    )
    opts = routed.options
    routed = RoutedRequest(routed.node, REQ, routed.trace, type(opts)(20.0, resume_max=1))
    with pytest.raises(StreamError, match="did not end by its deadline"):
        await read(engine, routed)
    assert trio.current_time() == 20.0
    assert ups["b"].started == []  # no time left to resume in
    assert engine.registry.get("a:m").failures == 1  # charged to the target that was late
