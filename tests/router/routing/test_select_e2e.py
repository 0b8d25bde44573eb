"""Smart selection end to end: a route's ``when`` rules over loopback, the official SDK
as client, a fake OpenAI upstream whose received models say where each request went."""

from __future__ import annotations

from typing import TYPE_CHECKING

import openai

from tests.conftest import RouterFactory, openai_client

if TYPE_CHECKING:
    import pytest
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionToolParam

    from tests.fakes.openai_upstream import FakeOpenAI

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
TOOL: ChatCompletionToolParam = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
}

ROUTES = """
[routes.big]
fallback = ["up:fail-500", "up:big-backup"]

[routes.chat]
fallback = ["up:small"]
when = [
  { if = "tokens > 8000", use = "up:big" },
  { if = "has_tools", use = "up:tools" },
  { if = "header.x-tier == 'gold' and key != 'batch-jobs'", use = "up:gold" },
  { if = "complexity >= 0.3", use = "big" },
]
"""


def config(upstream: str, routes: str = ROUTES, defaults: str = "") -> str:
    return f"""
[defaults]
retries = 0
{defaults}

[providers.up]
kind = "openai"
base_url = "{upstream}"

{routes}
"""


async def ask(
    url: str,
    messages: list[ChatCompletionMessageParam] = HI,
    tools: list[ChatCompletionToolParam] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[str, str, str]:
    """(x-router-rule, x-router-target, the answer's text) for one request to ``chat``."""
    async with openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat",
            messages=messages,
            tools=tools if tools is not None else openai.omit,
            extra_headers=headers,
        )
    answer = raw.parse()
    text = answer.choices[0].message.content or ""
    return raw.headers["x-router-rule"], raw.headers["x-router-target"], text


async def test_a_long_prompt_goes_to_the_big_model(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    long: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "lorem " * 8000}
    ]  # 48000 chars: ~12000 tokens
    async with start_router(config(fake_openai.url)) as url:
        assert await ask(url, messages=long) == ("when[0]", "up:big", "echo: " + "lorem " * 8000)
        assert (await ask(url))[:2] == ("default", "up:small")
    assert [r.body["model"] for r in fake_openai.received] == ["big", "small"]


async def test_a_request_with_tools_goes_to_the_tool_model(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url:
        rule, target, _ = await ask(url, tools=[TOOL])
    assert (rule, target) == ("when[1]", "up:tools")


async def test_a_header_picks_the_target(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url:
        gold = await ask(url, headers={"X-Tier": "gold"})
        silver = await ask(url, headers={"x-tier": "silver"})
    assert gold[:2] == ("when[2]", "up:gold")
    assert silver[:2] == ("default", "up:small")


async def test_the_client_key_name_is_a_fact(
    start_router: RouterFactory, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BATCH_KEY", "batch-secret")
    monkeypatch.setenv("WEB_KEY", "web-secret")
    keys = '\n[keys.batch-jobs]\nsecret = "env:BATCH_KEY"\n[keys.web]\nsecret = "env:WEB_KEY"\n'
    async with start_router(config(fake_openai.url, ROUTES + keys)) as url:
        seen = []
        for key in ("batch-secret", "web-secret"):
            client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)
            async with client:
                raw = await client.chat.completions.with_raw_response.create(
                    model="chat", messages=HI, extra_headers={"x-tier": "gold"}
                )
            seen.append((raw.headers["x-router-rule"], raw.headers["x-router-target"]))
    assert seen == [("default", "up:small"), ("when[2]", "up:gold")]


async def test_a_complex_prompt_goes_to_a_route_whose_fallback_still_applies(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    hard = "Explain step by step why this design is better, and compare the trade-off. Why?"
    async with start_router(config(fake_openai.url)) as url:
        rule, target, _ = await ask(url, messages=[{"role": "user", "content": hard}])
        easy_rule, _, _ = await ask(url, messages=[{"role": "user", "content": "why?"}])
    # "big" is a fallback route: its first target fails, its second answers.
    assert (rule, target) == ("when[3]", "up:big-backup")
    assert easy_rule == "default"
    assert [r.body["model"] for r in fake_openai.received] == ["fail-500", "big-backup", "small"]


async def test_a_plugin_replaces_the_complexity_score(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    defaults = 'complexity = "tests.router.routing.test_select_e2e:shouting"'
    async with start_router(config(fake_openai.url, defaults=defaults)) as url:
        loud = await ask(url, messages=[{"role": "user", "content": "HELP"}])
        calm = await ask(url, messages=[{"role": "user", "content": "help"}])
    assert (loud[0], calm[0]) == ("when[3]", "default")


def shouting(text: str) -> float:
    """A complexity plugin: upper-case prompts are hard."""
    return 1.0 if text.isupper() else 0.0


async def test_routes_without_when_send_no_rule_header(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(model="big", messages=HI)
    assert "x-router-rule" not in raw.headers
    assert raw.headers["x-router-target"] == "up:big-backup"


async def test_a_stream_is_chosen_and_explained_too(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat", messages=HI, tools=[TOOL], stream=True
        )
        async for _ in raw.parse():
            pass
    assert (raw.headers["x-router-rule"], raw.headers["x-router-target"]) == (
        "when[1]",
        "up:tools",
    )
