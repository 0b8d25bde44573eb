"""The ``ai21`` kind through the daemon, the official OpenAI SDK as the client, a fake
AI21 Studio that refuses what the real one does not take."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.conftest import openai_client
from tests.fakes._base import running
from tests.fakes.ai21_upstream import FakeAI21

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RouterFactory

KEY = "ai21-secret-key-0000"
CONFIG = """
[defaults]
retries = 0

[providers.ai21]
kind = "ai21"
base_url = "{url}"
api_key = "env:AI21_TEST_KEY"

[providers.wrong]
kind = "ai21"
base_url = "{url}"
api_key = "env:AI21_WRONG_KEY"

[routes.chat]
fallback = ["ai21:jamba-mini"]
"""


def ask(text: str) -> Any:
    return [
        {"role": "developer", "content": "Be brief."},
        {"role": "user", "content": [{"type": "text", "text": text}]},
    ]


@asynccontextmanager
async def served(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FakeAI21, openai.AsyncOpenAI]]:
    monkeypatch.setenv("AI21_TEST_KEY", KEY)
    monkeypatch.setenv("AI21_WRONG_KEY", "ai21-wrong-key-9999")
    fake = FakeAI21(key=KEY)
    async with running(fake) as address:
        fake.url = address + "/studio/v1"
        async with (
            start_router(CONFIG.replace("{url}", fake.url)) as url,
            openai_client(url) as client,
        ):
            yield fake, client


async def test_an_answer_in_ai21s_dialect(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    schema: Any = {"name": "x", "schema": {"type": "object"}}
    async with served(start_router, monkeypatch) as (fake, client):
        answer = await client.chat.completions.create(
            model="chat",
            messages=ask("hi there"),
            max_tokens=50,
            n=2,
            extra_body={"documents": [{"content": "The sky is green.", "id": "d1"}]},
        )
        # A JSON Schema becomes AI21's only JSON mode; the answer is checked against it.
        shaped = await client.chat.completions.create(
            model="ai21:jamba-json",
            messages=ask("hi there"),
            response_format={"type": "json_schema", "json_schema": schema},
        )
    assert answer.choices[0].message.content == "echo: hi there [1 document(s)]"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (12, 5)
    sent = fake.received[0]
    assert sent.path == "/studio/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "hi there"},
    ]
    assert "response_format" not in sent.body
    assert (sent.body["n"], sent.body["max_tokens"]) == (2, 50)
    assert fake.received[1].body["response_format"] == {"type": "json_object"}
    assert shaped.choices[0].message.content == '{"echo":"hi there"}'
    assert sent.body["documents"] == [{"content": "The sky is green.", "id": "d1"}]


async def test_a_stream_carries_usage_on_its_last_chunk(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (fake, client):
        stream = await client.chat.completions.create(
            model="chat",
            messages=ask("one two"),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: one two"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 17
    assert "stream_options" not in fake.received[0].body  # AI21 refuses it


async def test_failures_map_to_the_clients_statuses(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    image: Any = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    async with served(start_router, monkeypatch) as (fake, client):
        create = client.chat.completions.create
        with pytest.raises(openai.RateLimitError):
            await create(model="ai21:fail-429", messages=ask("x"))
        with pytest.raises(openai.NotFoundError):
            await create(model="ai21:fail-404", messages=ask("x"))
        with pytest.raises(openai.BadRequestError) as invalid:
            await create(model="ai21:fail-400", messages=ask("x"))
        with pytest.raises(openai.InternalServerError) as refused:
            await create(model="wrong:jamba-mini", messages=ask("x"))
        with pytest.raises(openai.BadRequestError) as imaged:
            await create(model="chat", messages=[{"role": "user", "content": [image]}])
    assert "temperature" in invalid.value.message  # AI21's "detail" is the message
    assert refused.value.status_code == 502
    assert "ai21-wrong-key-9999" not in refused.value.response.text
    assert "ai21 takes text only" in imaged.value.message
    assert len(fake.received) == 4  # the image never left
