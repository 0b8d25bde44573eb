"""``/v1/responses`` to OpenAI's own API passes through: the official openai SDK's body
reaches the upstream's ``/v1/responses`` as it was sent (but for ``model`` and
``store``), and OpenAI's answer or event stream comes back as it was; a fallback to
another kind still answers, translated."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import orjson
import pytest

from tests.conftest import openai_client
from tests.router.ops.test_metrics import scrape, value

if TYPE_CHECKING:
    from tests.conftest import RouterFactory
    from tests.fakes.anthropic_upstream import FakeAnthropic
    from tests.fakes.openai_upstream import FakeOpenAI

#: What the translation has no form for, so only a passthrough carries it.
UNTRANSLATED: dict[str, Any] = {
    "include": ["message.output_text.logprobs"],
    "truncation": "auto",
    "tools": [{"type": "web_search"}],
}


@pytest.fixture
def toml(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> str:
    return f"""
[defaults]
retries = 0

[providers.oa]
kind = "openai"
base_url = "{fake_openai.url}"

[providers.claude]
kind = "anthropic"
base_url = "{fake_anthropic.url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[routes.chat]
fallback = ["oa:gpt-4o"]

[routes.falls]
fallback = ["oa:fail-500", "claude:claude-sonnet-4-5"]

[hooks.secrets]
kind = "regex"
patterns = ["secret"]

[routes.claude]
fallback = ["claude:claude-sonnet-4-5"]

[routes.hooked]
fallback = ["oa:gpt-4o"]
hooks = ["secrets"]
"""


async def test_the_body_and_the_answer_pass_unchanged(
    start_router: RouterFactory, fake_openai: FakeOpenAI, toml: str
) -> None:
    async with start_router(toml) as url, openai_client(url) as client:
        raw = await client.responses.with_raw_response.create(
            model="chat",
            input="hi there",
            instructions="Be brief.",
            metadata={"ticket": "42"},
            store=True,
            **UNTRANSLATED,
        )
    sent = fake_openai.received[-1]
    assert sent.path == "/v1/responses"
    expected = {
        "model": "gpt-4o",
        "input": "hi there",
        "instructions": "Be brief.",
        "metadata": {"ticket": "42"},
        "store": False,  # nothing is kept on OpenAI's servers for a stateless gateway
        **UNTRANSLATED,
    }
    assert sent.body == expected
    body = orjson.loads(raw.http_response.content)
    assert body["x_openai"] == {"only": "openai"}  # OpenAI's own object, as it came
    assert body["id"] == "resp_fake1"
    response = raw.parse()
    assert response.output_text == "echo: hi there"
    assert response.usage is not None
    assert (response.usage.input_tokens, response.usage.output_tokens) == fake_openai.USAGE


async def test_the_stream_passes_event_by_event(
    start_router: RouterFactory, fake_openai: FakeOpenAI, toml: str
) -> None:
    async with (
        start_router(toml) as url,
        openai_client(url) as client,
        client.responses.stream(model="chat", input="one two three", **UNTRANSLATED) as stream,
    ):
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    sent = fake_openai.received[-1]
    assert sent.path == "/v1/responses"
    assert sent.body == {
        "model": "gpt-4o",
        "input": "one two three",
        "stream": True,
        "store": False,
        **UNTRANSLATED,
    }
    assert kinds[0] == "response.created"
    assert kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    assert final.output_text == "echo: one two three"
    assert final.id == "resp_fake1"


async def test_usage_reaches_the_metrics(
    start_router: RouterFactory, fake_openai: FakeOpenAI, toml: str
) -> None:
    async with start_router(toml) as url, openai_client(url) as client:
        await client.responses.create(model="chat", input="hi")
        async with client.responses.stream(model="chat", input="hi") as stream:
            await stream.get_final_response()
        after = await scrape(url)
    prompt, completion = fake_openai.USAGE
    assert value(after, "llm_router_tokens_total", target="oa:gpt-4o", direction="in") == 2 * prompt
    out = value(after, "llm_router_tokens_total", target="oa:gpt-4o", direction="out")
    assert out == 2 * completion


async def test_a_fallback_to_another_kind_still_answers(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    fake_anthropic: FakeAnthropic,
    toml: str,
) -> None:
    async with start_router(toml) as url, openai_client(url) as client:
        response = await client.responses.create(model="falls", input="hi there")
        async with client.responses.stream(model="falls", input="one two") as stream:
            final = await stream.get_final_response()
        with pytest.raises(openai.BadRequestError) as refused:
            await client.responses.create(model="claude", input="hi", truncation="auto")
    assert [r.path for r in fake_openai.received] == ["/v1/responses"] * 2
    assert len(fake_anthropic.received) == 2  # the truncation request reached no one
    assert response.output_text == final.output_text.replace("one two", "hi there")
    assert response.status == final.status == "completed"
    assert refused.value.code == "unsupported_parameter"
    assert isinstance(refused.value.body, dict)
    assert refused.value.body["param"] == "truncation"


async def test_state_is_refused_and_hooks_translate(
    start_router: RouterFactory, fake_openai: FakeOpenAI, toml: str
) -> None:
    async with start_router(toml) as url, openai_client(url) as client:
        with pytest.raises(openai.BadRequestError) as stateful:
            await client.responses.create(model="chat", input="hi", previous_response_id="r1")
        hooked = await client.responses.create(model="hooked", input="a secret word")
        with pytest.raises(openai.BadRequestError) as untranslatable:
            await client.responses.create(model="hooked", input="hi", truncation="auto")
    assert stateful.value.code == "unsupported_parameter"
    assert [r.path for r in fake_openai.received] == ["/v1/chat/completions"]
    assert "secret" not in orjson.dumps(fake_openai.received[0].body).decode()
    assert hooked.output_text.startswith("echo: ")
    assert untranslatable.value.code == "unsupported_parameter"
