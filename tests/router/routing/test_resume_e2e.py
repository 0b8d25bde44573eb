"""The resume scenarios over loopback, with the official SDKs as clients: a 60-word
answer that dies after 40 words, goes silent after 20, or turns malformed at its 10th
event, each resumed by the route's fallback (one that takes a prefill, one that refuses
it, one that does not continue it). The client's text is the canonical answer exactly,
on the OpenAI, the Anthropic and the Responses ingress."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.conftest import anthropic_client, openai_client
from tests.fakes._base import STORY
from tests.fakes.anthropic_upstream import KEY, FakeAnthropic
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RouterFactory
    from tests.fakes.openai_upstream import FakeOpenAI

CUTS = ["story-break-40", "story-stall-20", "story-corrupt-10", "story-end-40"]
# The fallbacks: Anthropic continues a prefill; "story-no-prefill" refuses one with a
# 400 (as recent Claude models do); OpenAI answers a trailing assistant message anew.
FALLBACKS = ["claude:story", "claude:story-no-prefill", "oa:story"]


@pytest.fixture
async def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAnthropic]:
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", KEY)
    app = FakeAnthropic()
    async with running(app) as url:
        app.url = url
        yield app


def config(openai_url: str, anthropic_url: str, cut: str, fallback: str) -> str:
    return f"""
[defaults]
stall_timeout = "300ms"

[providers.oa]
kind = "openai_compatible"  # OpenAI's own API takes /v1/responses as it is
base_url = "{openai_url}"

[providers.claude]
kind = "anthropic"
base_url = "{anthropic_url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[routes.r]
fallback = ["oa:{cut}", "{fallback}"]
"""


@pytest.mark.parametrize("fallback", FALLBACKS)
@pytest.mark.parametrize("cut", CUTS)
async def test_the_openai_ingress_gets_the_whole_answer(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    cut: str,
    fallback: str,
) -> None:
    toml = config(fake_openai.url, fake_anthropic.url, cut, fallback)
    async with start_router(toml) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="r", messages=[{"role": "user", "content": "tell me"}], stream=True
        )
        chunks = [c async for c in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == STORY
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices[0].finish_reason == "stop"


@pytest.mark.parametrize("fallback", FALLBACKS)
@pytest.mark.parametrize("cut", CUTS)
async def test_the_anthropic_ingress_gets_the_whole_answer(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    cut: str,
    fallback: str,
) -> None:
    toml = config(fake_openai.url, fake_anthropic.url, cut, fallback)
    async with (
        start_router(toml) as url,
        anthropic_client(url) as client,
        client.messages.stream(
            model="r", max_tokens=500, messages=[{"role": "user", "content": "tell me"}]
        ) as stream,
    ):
        message = await stream.get_final_message()
    assert [b.text for b in message.content if b.type == "text"] == [STORY]
    assert message.stop_reason == "end_turn"


@pytest.mark.parametrize("fallback", FALLBACKS)
@pytest.mark.parametrize("cut", CUTS)
async def test_the_responses_ingress_gets_the_whole_answer(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    cut: str,
    fallback: str,
) -> None:
    toml = config(fake_openai.url, fake_anthropic.url, cut, fallback)
    async with (
        start_router(toml) as url,
        openai_client(url) as client,
        client.responses.stream(model="r", input="tell me") as stream,
    ):
        deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
        response = await stream.get_final_response()
    assert "".join(deltas) == STORY
    assert response.output_text == STORY
    assert response.status == "completed"
    assert [item.type for item in response.output] == ["message"]
