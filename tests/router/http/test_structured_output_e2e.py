"""``response_format`` through the daemon: the official SDK's ``chat.completions.parse``
with a Pydantic model, answered by Anthropic and Bedrock (a forced tool) and Gemini (JSON
mode with the schema), streamed or not; and a refusal that moves on to a target that
can."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai
import pydantic
import pytest

from tests.conftest import openai_client
from tests.fakes.anthropic_upstream import KEY, FakeAnthropic
from tests.fakes.bedrock_upstream import FakeBedrock
from tests.fakes.gemini_upstream import FakeGemini
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from openai.types.chat import ChatCompletionMessageParam

    from tests.conftest import RouterFactory


class Attendee(pydantic.BaseModel):
    name: str
    age: int


class Event(pydantic.BaseModel):
    title: str
    attendees: list[Attendee]
    online: bool


ASK: list[ChatCompletionMessageParam] = [
    {"role": "user", "content": "Alice and Bob meet online on Friday."}
]


@pytest.fixture
async def fakes(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[str]:
    """The Anthropic and Gemini fakes, and a config that routes to each."""
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", KEY)
    monkeypatch.setenv("GEM_TEST_KEY", "gem-secret")
    monkeypatch.setenv("BRK_TEST_KEY", "brk-secret")
    anthropic, gemini = FakeAnthropic(), FakeGemini(key="gem-secret")
    bedrock = FakeBedrock(region="us-west-2", api_key="brk-secret")
    async with (
        running(anthropic) as anthropic_url,
        running(gemini) as gemini_url,
        running(bedrock) as bedrock_url,
    ):
        yield f"""
[defaults]
retries = 0

[providers.claude]
kind = "anthropic"
base_url = "{anthropic_url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[providers.gem]
kind = "gemini"
base_url = "{gemini_url}/v1beta"
api_key = "env:GEM_TEST_KEY"

[providers.aws]
kind = "bedrock"
region = "us-west-2"
base_url = "{bedrock_url}"
api_key = "env:BRK_TEST_KEY"

[providers.sim]
kind = "simulated"
latency = {{ median = "1ms", p99 = "2ms" }}

[routes.claude]
fallback = ["claude:claude-sonnet"]

[routes.gemini]
fallback = ["gem:gemini-2.5-flash"]

[routes.bedrock]
fallback = ["aws:anthropic.claude-3-haiku-20240307-v1:0"]

[routes.sim-first]
fallback = ["sim:echo", "claude:claude-sonnet"]
"""


@pytest.mark.parametrize("route", ["claude", "gemini", "bedrock"])
async def test_parse_gets_json_that_fits_the_model(
    start_router: RouterFactory, fakes: str, route: str
) -> None:
    async with start_router(fakes) as url, openai_client(url) as client:
        completion = await client.chat.completions.parse(
            model=route, messages=ASK, response_format=Event
        )
        async with client.chat.completions.stream(
            model=route, messages=ASK, response_format=Event
        ) as stream:
            streamed = await stream.get_final_completion()
    for answer in (completion, streamed):
        choice = answer.choices[0]
        assert choice.finish_reason == "stop"
        assert choice.message.tool_calls in (None, [])
        assert choice.message.parsed == Event(
            title="text", attendees=[Attendee(name="text", age=1)], online=True
        )


async def test_json_object_is_an_object(start_router: RouterFactory, fakes: str) -> None:
    async with start_router(fakes) as url, openai_client(url) as client:
        completion = await client.chat.completions.create(
            model="claude", messages=ASK, response_format={"type": "json_object"}
        )
    assert completion.choices[0].message.content == "{}"
    assert completion.choices[0].finish_reason == "stop"


async def test_a_target_that_cannot_moves_on(start_router: RouterFactory, fakes: str) -> None:
    """The simulated provider cannot answer in JSON: it refuses, the next one answers;
    alone, it refuses with 400 unsupported_parameter naming response_format."""
    async with start_router(fakes) as url, openai_client(url) as client:
        completion = await client.chat.completions.parse(
            model="sim-first", messages=ASK, response_format=Event
        )
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.parse(
                model="sim:echo", messages=ASK, response_format=Event
            )
    assert completion.choices[0].message.parsed is not None
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.param == "response_format"
