"""SimulatedModel: seeded, pure plans of what a fake upstream answers and when."""

from __future__ import annotations

import attrs
import pytest

from adapters import (
    ChatChunk,
    ChunkChoice,
    Delta,
    GatewayRequest,
    Message,
    ProviderInternalError,
    SimulatedModel,
    TextPart,
    Usage,
)

REQ = GatewayRequest("route", (Message("system", "Be nice."), Message("user", "Hello there")))


def echo_request(*messages: Message, max_tokens: int | None = None) -> GatewayRequest:
    return GatewayRequest("route", messages, max_tokens=max_tokens)


def test_same_seed_same_plans() -> None:
    a = SimulatedModel(0.1, 0.5, error_rate=0.3, seed=1234)
    b = SimulatedModel(0.1, 0.5, error_rate=0.3, seed=1234)
    plans_a = [a.plan(REQ, "gpt-sim", created=100 + i) for i in range(200)]
    plans_b = [b.plan(REQ, "gpt-sim", created=100 + i) for i in range(200)]
    # Errors are exceptions (compared by identity), so compare them separately.
    assert [(p.error is None, p.error and p.error.message) for p in plans_a] == [
        (p.error is None, p.error and p.error.message) for p in plans_b
    ]
    assert [attrs.evolve(p, error=None) for p in plans_a] == [
        attrs.evolve(p, error=None) for p in plans_b
    ]
    assert len({p.id for p in plans_a}) == 200  # ids differ from plan to plan
    assert len({p.latency for p in plans_a}) == 200


def test_different_seeds_differ() -> None:
    a = SimulatedModel(0.1, 0.5, seed=1)
    b = SimulatedModel(0.1, 0.5, seed=2)
    assert [a.latency() for _ in range(10)] != [b.latency() for _ in range(10)]


@pytest.mark.parametrize(("median", "p99"), [(0.2, 1.0), (0.05, 0.06), (1.5, 12.0)])
def test_latency_distribution(median: float, p99: float) -> None:
    model = SimulatedModel(median, p99, seed=42)
    draws = sorted(model.latency() for _ in range(20_000))
    assert all(d > 0 for d in draws)
    assert abs(draws[10_000] / median - 1) < 0.05
    assert abs(draws[19_800] / p99 - 1) < 0.10


def test_median_equal_to_p99_is_constant() -> None:
    model = SimulatedModel(0.3, 0.3, seed=0)
    assert {round(model.latency(), 12) for _ in range(100)} == {0.3}


def test_plan_latency_comes_from_the_distribution() -> None:
    model = SimulatedModel(0.01, 0.02, seed=3)
    latencies = sorted(model.plan(REQ, "m", 0).latency for _ in range(2_000))
    assert abs(latencies[1_000] / 0.01 - 1) < 0.05


@pytest.mark.parametrize(("median", "p99"), [(2.0, 1.0), (0.0, 1.0), (-1.0, 1.0)])
def test_bad_latency_parameters(median: float, p99: float) -> None:
    with pytest.raises(ValueError, match="median"):
        SimulatedModel(median, p99)


def test_error_rate() -> None:
    model = SimulatedModel(0.01, 0.02, error_rate=0.25, seed=99, name="sim")
    plans = [model.plan(REQ, "gpt-sim", created=0) for _ in range(10_000)]
    errors = [p.error for p in plans if p.error is not None]
    assert abs(len(errors) / 10_000 - 0.25) < 0.02
    for err in errors:
        assert isinstance(err, ProviderInternalError)
        assert err.upstream == "sim:gpt-sim"
        assert err.upstream_status == 500
        assert err.retryable
    # A failing plan still says how long to wait before failing.
    assert all(p.latency > 0 for p in plans)


def test_error_rate_zero_never_fails() -> None:
    model = SimulatedModel(0.01, 0.02, seed=5)
    assert all(model.plan(REQ, "m", 0).error is None for _ in range(5_000))


def test_error_rate_one_always_fails() -> None:
    model = SimulatedModel(0.01, 0.02, error_rate=1.0, seed=5)
    assert all(model.plan(REQ, "m", 0).error is not None for _ in range(1_000))


def test_echo_repeats_the_last_user_message() -> None:
    req = echo_request(
        Message("user", "first question"),
        Message("assistant", "an answer"),
        Message("user", (TextPart("What is "), TextPart("this?  Tell me."))),
        Message("tool", "not a user"),
    )
    plan = SimulatedModel(0.01, 0.02, seed=0).plan(req, "echo", created=7)
    assert "".join(plan.tokens) == "What is this?  Tell me."
    assert plan.tokens == ("What ", "is ", "this?  ", "Tell ", "me.")
    assert plan.finish_reason == "stop"
    assert plan.response().choices[0].message.content == "What is this?  Tell me."
    assert plan.usage == Usage(prompt_tokens=2 + 2 + 5 + 3, completion_tokens=5)


def test_echo_keeps_leading_whitespace() -> None:
    # BUG (adapters/_simulated.py): _WORD = r"\S+\s*" drops whitespace before the first
    # word, so the echo is not the user's text.
    req = echo_request(Message("user", "  indented\ttext\n"))
    plan = SimulatedModel(0.01, 0.02, seed=0).plan(req, "echo", created=7)
    assert "".join(plan.tokens) == "  indented\ttext\n"


def test_echo_without_user_message_is_empty() -> None:
    plan = SimulatedModel(0.01, 0.02, seed=0).plan(
        echo_request(Message("system", "hi")), "echo", created=0
    )
    assert plan.response().choices[0].message.content == ""
    assert plan.finish_reason == "stop"


def test_other_models_give_the_canned_answer() -> None:
    model = SimulatedModel(0.01, 0.02, seed=0)
    a = model.plan(REQ, "gpt-sim", created=0)
    b = model.plan(echo_request(Message("user", "something else")), "other", created=0)
    text = "".join(a.tokens)
    assert text.startswith("This is a simulated answer")
    assert "".join(b.tokens) == text
    assert "Hello there" not in text
    assert len(a.tokens) > 10
    assert a.usage == Usage(prompt_tokens=4, completion_tokens=len(a.tokens))


@pytest.mark.parametrize("max_tokens", [1, 2, 3])
def test_max_tokens_truncates(max_tokens: int) -> None:
    req = echo_request(Message("user", "one two three four"), max_tokens=max_tokens)
    plan = SimulatedModel(0.01, 0.02, seed=0).plan(req, "echo", created=0)
    assert plan.tokens == ("one ", "two ", "three ")[:max_tokens]
    assert plan.finish_reason == "length"
    assert plan.usage.completion_tokens == max_tokens
    assert plan.response().choices[0].finish_reason == "length"


@pytest.mark.parametrize("max_tokens", [4, 5, 100])
def test_max_tokens_not_reached(max_tokens: int) -> None:
    req = echo_request(Message("user", "one two three four"), max_tokens=max_tokens)
    plan = SimulatedModel(0.01, 0.02, seed=0).plan(req, "echo", created=0)
    assert plan.tokens == ("one ", "two ", "three ", "four")
    assert plan.finish_reason == "stop"


def test_token_interval_from_rate() -> None:
    plan = SimulatedModel(0.01, 0.02, tokens_per_second=50, seed=0).plan(REQ, "m", 0)
    assert plan.token_interval == pytest.approx(0.02)


@pytest.mark.parametrize("include_usage", [False, True])
def test_chunks(include_usage: bool) -> None:
    req = echo_request(Message("user", "a b c"))
    plan = SimulatedModel(0.01, 0.02, seed=0).plan(req, "echo", created=123)
    chunks = plan.chunks(include_usage)

    def mk(*choices: ChunkChoice, usage: Usage | None = None) -> ChatChunk:
        return ChatChunk(plan.id, "echo", 123, choices, usage)

    expected = [
        mk(ChunkChoice(0, Delta(role="assistant", content=""))),
        mk(ChunkChoice(0, Delta(content="a "))),
        mk(ChunkChoice(0, Delta(content="b "))),
        mk(ChunkChoice(0, Delta(content="c"))),
        mk(ChunkChoice(0, Delta(), "stop")),
    ]
    if include_usage:
        expected.append(mk(usage=Usage(3, 3)))
    assert chunks == expected
    assert not chunks[0].has_content
    assert all(ch.has_content for ch in chunks[1:5])
    assert all(ch.id == plan.id for ch in chunks)


def test_chunks_and_response_agree() -> None:
    plan = SimulatedModel(0.01, 0.02, seed=11).plan(REQ, "gpt-sim", created=5)
    chunks = plan.chunks(include_usage=True)
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    resp = plan.response()
    assert resp.choices[0].message.content == streamed == "".join(plan.tokens)
    assert resp.choices[0].message.role == "assistant"
    assert resp.choices[0].finish_reason == chunks[-2].choices[0].finish_reason == "stop"
    assert resp.usage == chunks[-1].usage == plan.usage
    assert (resp.id, resp.model, resp.created) == (plan.id, "gpt-sim", 5)
    assert len(chunks) == len(plan.tokens) + 3


def test_a_prefill_is_continued() -> None:
    model = SimulatedModel(0.01, 0.02, seed=0)
    whole = "".join(model.plan(REQ, "gpt-sim", created=0).tokens)
    prefix = whole[:20]
    req = attrs.evolve(REQ, messages=(*REQ.messages, Message("assistant", prefix)))
    rest = "".join(model.plan(req, "gpt-sim", created=0).tokens)
    assert prefix + rest == whole
    assert rest == whole[20:]


def test_a_prefill_the_answer_does_not_begin_with_is_answered_anew() -> None:
    req = echo_request(Message("user", "say this"), Message("assistant", "something else"))
    plan = SimulatedModel(0.01, 0.02, seed=0).plan(req, "echo", created=0)
    assert "".join(plan.tokens) == "say this"
