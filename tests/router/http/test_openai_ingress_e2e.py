"""The OpenAI ingress carries what the answer holds, whichever format it came in: the
official openai SDK on /v1/chat/completions, routed to a fake OpenAI upstream and to a
fake Anthropic one."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2

from tests.conftest import RouterFactory, openai_client
from tests.fakes.anthropic_upstream import REFUSAL, FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk

HI: Any = [{"role": "user", "content": "hi there"}]


def config(openai_url: str, anthropic_url: str) -> str:
    return f"""
[defaults]
retries = 0

[providers.oa]
kind = "openai"
base_url = "{openai_url}"

[providers.claude]
kind = "anthropic"
base_url = "{anthropic_url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[routes.chat]
fallback = ["oa:gpt-4o"]
"""


async def raw_answer(url: str, model: str) -> dict[str, Any]:
    """The JSON body as sent, before the SDK fills in what is missing."""
    body = {"model": model, "messages": HI}
    async with httpx2.AsyncClient(base_url=url, trust_env=False) as http:
        answer = await http.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    got: dict[str, Any] = answer.json()
    return got


async def test_every_answer_message_has_a_refusal_key(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    async with start_router(config(fake_openai.url, fake_anthropic.url)) as url:
        for model in ("oa:gpt-4o", "claude:claude-test"):
            message = (await raw_answer(url, model))["choices"][0]["message"]
            assert "refusal" in message, model
            assert message["refusal"] is None


async def test_an_anthropic_refusal_is_a_refusal(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    async with (
        start_router(config(fake_openai.url, fake_anthropic.url)) as url,
        openai_client(url) as client,
    ):
        answer = await client.chat.completions.create(model="claude:refuser", messages=HI)
        stream = await client.chat.completions.create(
            model="claude:refuser", messages=HI, stream=True
        )
        chunks: list[ChatCompletionChunk] = [c async for c in stream]
    choice = answer.choices[0]
    assert choice.finish_reason == "content_filter"
    assert choice.message.refusal == REFUSAL
    assert choice.message.content is None
    # Streamed, the text came before the stop reason said what it was: it stays content.
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == REFUSAL
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "content_filter"


async def test_an_openai_refusal_passes_through(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    async with (
        start_router(config(fake_openai.url, fake_anthropic.url)) as url,
        openai_client(url) as client,
    ):
        answer = await client.chat.completions.create(model="oa:refuses", messages=HI)
        stream = await client.chat.completions.create(model="oa:refuses", messages=HI, stream=True)
        chunks: list[ChatCompletionChunk] = [c async for c in stream]
    assert answer.choices[0].message.refusal == FakeOpenAI.REFUSAL
    assert answer.choices[0].message.content is None
    refusal = "".join(c.choices[0].delta.refusal or "" for c in chunks if c.choices)
    assert refusal == FakeOpenAI.REFUSAL


async def test_an_anthropic_stop_sequence_is_a_stop(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    async with (
        start_router(config(fake_openai.url, fake_anthropic.url)) as url,
        openai_client(url) as client,
    ):
        answer = await client.chat.completions.create(
            model="claude:stopper", messages=HI, stop=["STOP"]
        )
        stream = await client.chat.completions.create(
            model="claude:stopper", messages=HI, stop=["STOP"], stream=True
        )
        chunks: list[ChatCompletionChunk] = [c async for c in stream]
    assert answer.choices[0].finish_reason == "stop"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"


async def test_logprobs_pass_through(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    async with (
        start_router(config(fake_openai.url, fake_anthropic.url)) as url,
        openai_client(url) as client,
    ):
        answer = await client.chat.completions.create(
            model="chat", messages=HI, logprobs=True, top_logprobs=2
        )
        stream = await client.chat.completions.create(
            model="chat", messages=HI, logprobs=True, stream=True
        )
        chunks: list[ChatCompletionChunk] = [c async for c in stream]
    logprobs = answer.choices[0].logprobs
    assert logprobs is not None
    assert logprobs.content is not None
    assert [t.token for t in logprobs.content] == ["echo:", " hi", " there"]
    assert logprobs.content[0].logprob == -0.5
    streamed = [
        t.token
        for c in chunks
        for choice in c.choices
        if choice.logprobs is not None and choice.logprobs.content
        for t in choice.logprobs.content
    ]
    assert streamed == ["echo:", " hi", " there"]
    sent = fake_openai.received[0].body
    assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)


async def test_usage_details_reach_the_client(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    async with (
        start_router(config(fake_openai.url, fake_anthropic.url)) as url,
        openai_client(url) as client,
    ):
        usages = []
        for model in ("oa:gpt-4o", "claude:claude-test"):
            answer = await client.chat.completions.create(model=model, messages=HI)
            stream = await client.chat.completions.create(
                model=model, messages=HI, stream=True, stream_options={"include_usage": True}
            )
            last = [c async for c in stream][-1]
            usages += [answer.usage, last.usage]
    details = []
    for usage in usages:
        assert usage is not None
        assert usage.prompt_tokens_details is not None
        assert usage.completion_tokens_details is not None
        details.append(
            (
                usage.prompt_tokens,
                usage.prompt_tokens_details.cached_tokens,
                usage.completion_tokens_details.reasoning_tokens,
            )
        )
    # Anthropic's cache reads are OpenAI's cached tokens, and counted in the prompt.
    assert details == [(7, 3, 2)] * 2 + [(25, 5, 0)] * 2


async def test_an_openai_clients_max_tokens_reaches_a_reasoning_model_by_its_new_name(
    start_router: RouterFactory, fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic
) -> None:
    # The client's body passes through to an OpenAI target, but o-series models refuse
    # the older name: it is renamed, the rest left as it came.
    async with (
        start_router(config(fake_openai.url, fake_anthropic.url)) as url,
        openai_client(url) as client,
    ):
        answer = await client.chat.completions.create(
            model="oa:o3-mini", messages=HI, max_tokens=50, seed=7
        )
        await client.chat.completions.create(model="oa:gpt-4o", messages=HI, max_tokens=50)
    assert answer.choices[0].message.content == "echo: hi there"
    reasoning, plain = (r.body for r in fake_openai.received)
    assert (reasoning["max_completion_tokens"], reasoning["seed"]) == (50, 7)
    assert "max_tokens" not in reasoning
    assert plain["max_tokens"] == 50
