"""Content hooks over loopback, with the official SDKs as clients and the fake OpenAI
upstream (which answers "echo: " and the last user message): a blocked request gets 400
``content_blocked`` in the client's format; the upstream sees redacted text; a card
number split across stream chunks is redacted; a plugin hook; blocked answers end as
errors, never as truncated successes; embeddings inputs are screened too."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anthropic
import openai
import pytest

from tests.conftest import openai_client

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

    from tests.conftest import RouterFactory
    from tests.fakes.openai_upstream import FakeOpenAI


def config(url: str, route_hooks: str, hooks: str = "") -> str:
    return f"""
[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{url}"

[hooks.pii]
kind = "pii"

[hooks.no-secrets]
kind = "regex"
patterns = ["project-[a-z]+"]
action = "block"

[hooks.answers]
kind = "pii"
categories = ["card", "email"]
on = ["response"]

[hooks.shout]
kind = "plugin"
callable = "tests.router.http.hook_plugin:shout"

{hooks}

[routes.chat]
fallback = ["up:gpt-4o-mini"]
hooks = {route_hooks}

[routes.embed]
fallback = ["up:text-embedding-3-small"]
hooks = {route_hooks}

[routes.cached]
fallback = ["up:gpt-4o-mini"]
hooks = {route_hooks}
cache = {{ ttl = "10m" }}
"""


def sent(fake: FakeOpenAI) -> str:
    """The text of the last user message the upstream got."""
    posts = [r for r in fake.received if r.method == "POST"]
    return str(posts[-1].body["messages"][-1]["content"])


async def test_blocked_request_is_400_content_blocked(
    fake_openai: FakeOpenAI, start_router: RouterFactory
) -> None:
    async with start_router(config(fake_openai.url, '["no-secrets"]')) as url:
        async with openai_client(url) as client:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.chat.completions.create(
                    model="chat", messages=[{"role": "user", "content": "about project-apollo"}]
                )
            assert caught.value.code == "content_blocked"
            assert 'hook "no-secrets"' in caught.value.message
            ok = await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "about the moon"}]
            )
            assert ok.choices[0].message.content == "echo: about the moon"
            with pytest.raises(openai.BadRequestError) as responses:
                await client.responses.create(model="chat", input="see project-gemini")
            assert responses.value.code == "content_blocked"
        # The Messages ingress answers in Anthropic's error format.
        async with anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0) as claude:
            with pytest.raises(anthropic.BadRequestError) as refused:
                await claude.messages.create(
                    model="chat",
                    max_tokens=50,
                    messages=[{"role": "user", "content": "project-apollo"}],
                )
            assert refused.value.status_code == 400
            assert "no-secrets" in str(refused.value.message)
    assert [r for r in fake_openai.received if r.method == "POST"][-1].body["messages"][-1][
        "content"
    ] == "about the moon"  # the blocked ones never reached it


async def test_upstream_sees_redacted_text(
    fake_openai: FakeOpenAI, start_router: RouterFactory
) -> None:
    async with (
        start_router(config(fake_openai.url, '["pii"]')) as url,
        openai_client(url) as client,
    ):
        answer = await client.chat.completions.create(
            model="chat",
            messages=[
                {"role": "system", "content": "key sk-abcdefghijklmnopqrstuvwxyz123"},
                {
                    "role": "user",
                    "content": "mail me at jane@example.org, card 4111 1111 1111 1111",
                },
            ],
        )
    posts = [r for r in fake_openai.received if r.method == "POST"]
    assert posts[-1].body["messages"][0]["content"] == "key [API_KEY]"
    assert sent(fake_openai) == "mail me at [EMAIL], card [CARD]"
    assert answer.choices[0].message.content == "echo: mail me at [EMAIL], card [CARD]"


async def test_pii_split_across_stream_chunks_is_redacted(
    fake_openai: FakeOpenAI, start_router: RouterFactory
) -> None:
    prompt = "pay with 4111 1111 1111 1111 or ask bob@example.org please"
    async with (
        start_router(config(fake_openai.url, '["answers"]')) as url,
        openai_client(url) as client,
    ):
        stream = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": prompt}], stream=True
        )
        pieces = [c.choices[0].delta.content or "" async for c in stream if c.choices]
    assert sent(fake_openai) == prompt  # the hook runs on answers only
    assert "".join(pieces) == "echo: pay with [CARD] or ask [EMAIL] please"
    assert not any("1111" in p for p in pieces)


async def test_plugin_hook(fake_openai: FakeOpenAI, start_router: RouterFactory) -> None:
    async with (
        start_router(config(fake_openai.url, '["shout"]')) as url,
        openai_client(url) as client,
    ):
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "quiet please"}]
        )
        assert sent(fake_openai) == "QUIET PLEASE"
        assert answer.choices[0].message.content == "ECHO: QUIET PLEASE"
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="chat", messages=[{"role": "user", "content": "Forbidden words"}]
            )
        assert caught.value.code == "content_blocked"


async def test_blocked_answers_end_as_errors(
    fake_openai: FakeOpenAI, start_router: RouterFactory
) -> None:
    extra = '[hooks.no-cards-out]\nkind = "pii"\ncategories = ["card"]\naction = "block"\non = ["response"]'
    async with (
        start_router(config(fake_openai.url, '["no-cards-out"]', extra)) as url,
        openai_client(url) as client,
    ):
        ask: list[ChatCompletionMessageParam] = [
            {"role": "user", "content": "the card is 4111 1111 1111 1111 ok"}
        ]
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(model="chat", messages=ask)
        assert caught.value.code == "content_blocked"
        assert "response was blocked" in caught.value.message
        stream = await client.chat.completions.create(model="chat", messages=ask, stream=True)
        seen: list[str] = []

        async def read() -> None:
            async for chunk in stream:
                seen.extend(c.delta.content or "" for c in chunk.choices)

        with pytest.raises(openai.APIError, match="blocked by hook"):
            await read()
    assert "1111" not in "".join(seen)


async def test_embeddings_inputs_are_screened(
    fake_openai: FakeOpenAI, start_router: RouterFactory
) -> None:
    async with (
        start_router(config(fake_openai.url, '["pii", "no-secrets"]')) as url,
        openai_client(url) as client,
    ):
        await client.embeddings.create(
            model="embed", input=["mail jane@example.org", "plain"], encoding_format="float"
        )
        with pytest.raises(openai.BadRequestError) as caught:
            await client.embeddings.create(model="embed", input="project-x")
        assert caught.value.code == "content_blocked"
    posts = [r for r in fake_openai.received if r.method == "POST"]
    assert posts[-1].body["input"] == ["mail [EMAIL]", "plain"]


async def test_messages_stream_is_redacted_across_chunks(
    fake_openai: FakeOpenAI, start_router: RouterFactory
) -> None:
    prompt = "pay with 4111 1111 1111 1111"
    async with (
        start_router(config(fake_openai.url, '["answers"]')) as url,
        anthropic.AsyncAnthropic(base_url=url, api_key="x", max_retries=0) as claude,
        claude.messages.stream(
            model="chat", max_tokens=50, messages=[{"role": "user", "content": prompt}]
        ) as stream,
    ):
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert "".join(pieces) == "echo: pay with [CARD]"
    assert final.stop_reason == "end_turn"


async def test_cached_answers_go_through_the_hooks_again(
    fake_openai: FakeOpenAI, start_router: RouterFactory
) -> None:
    ask: list[ChatCompletionMessageParam] = [{"role": "user", "content": "mail bob@example.org"}]
    async with (
        start_router(config(fake_openai.url, '["answers"]')) as url,
        openai_client(url) as client,
    ):
        for cache in ("miss", "hit"):
            raw = await client.chat.completions.with_raw_response.create(
                model="cached", messages=ask
            )
            assert raw.headers["x-router-cache"] == cache
            assert raw.parse().choices[0].message.content == "echo: mail [EMAIL]"
        stream = await client.chat.completions.create(model="cached", messages=ask, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "echo: mail [EMAIL]"
    assert len([r for r in fake_openai.received if r.method == "POST"]) == 1
