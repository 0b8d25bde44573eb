"""Answer validation over loopback, with the official OpenAI SDK as client and the fake
OpenAI upstream: ``gpt-4o-mini`` answers ``echo: ...`` (not JSON), ``gpt-json`` answers
``{"echo": ...}``. An answer that fails validation is retried and fallen back from, whole
or streamed; when every target fails, the client gets 502 ``invalid_response``; the
client's own ``response_format`` JSON Schema is checked too; failures are counted."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pytest

from tests.conftest import openai_client

if TYPE_CHECKING:
    from pathlib import Path

    from openai.types.chat import ChatCompletionMessageParam

    from tests.conftest import RouterFactory
    from tests.fakes.openai_upstream import FakeOpenAI

ASK: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]
SCHEMA = {
    "type": "object",
    "properties": {"echo": {"type": "string"}},
    "required": ["echo"],
}


@pytest.fixture(autouse=True)
def schema_file(tmp_path: Path) -> None:
    """The file ``routes.strict`` names, beside the config (a test may rewrite it)."""
    (tmp_path / "answer.schema.json").write_text(json.dumps(SCHEMA))


def config(url: str) -> str:
    return f"""
[defaults]
retries = 1
backoff = {{ initial = "1ms", max = "1ms" }}

[providers.up]
kind = "openai"
base_url = "{url}"

[routes.chat]
fallback = ["up:gpt-4o-mini", "up:gpt-json"]
validate = "json"

[routes.strict]
fallback = ["up:gpt-json", "up:other-json"]
validate = {{ schema = "file:answer.schema.json" }}

[routes.plain]
fallback = ["up:gpt-4o-mini", "up:gpt-json"]
"""


def posts(fake: FakeOpenAI) -> list[str]:
    return [str(r.body["model"]) for r in fake.received if r.method == "POST"]


async def test_a_non_json_answer_falls_back_to_a_json_one(
    fake_openai: FakeOpenAI, start_router: RouterFactory
) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        raw = await client.chat.completions.with_raw_response.create(model="chat", messages=ASK)
        answer = raw.parse()
        assert json.loads(answer.choices[0].message.content or "") == {"echo": "hi there"}
        assert raw.headers["x-router-target"] == "up:gpt-json"
        assert raw.headers["x-router-attempts"] == "3"  # the first target retried once
        stream = await client.chat.completions.create(model="chat", messages=ASK, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert json.loads(text) == {"echo": "hi there"}
        async with httpx2.AsyncClient() as http:
            metrics = (await http.get(f"{url}/metrics")).text
    assert posts(fake_openai) == ["gpt-4o-mini", "gpt-4o-mini", "gpt-json"] * 2
    line = 'llm_router_validation_failures_total{route="chat",target="up:gpt-4o-mini"} 4.0'
    assert line in metrics


async def test_schema_mismatch_everywhere_is_a_502(
    fake_openai: FakeOpenAI, start_router: RouterFactory, tmp_path: Path
) -> None:
    wants_answer = {**SCHEMA, "required": ["answer"]}
    (tmp_path / "answer.schema.json").write_text(json.dumps(wants_answer))
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.chat.completions.create(model="strict", messages=ASK)
        assert caught.value.status_code == 502
        assert caught.value.code == "invalid_response"
        assert "'answer' is a required property" in caught.value.message
        with pytest.raises(openai.APIStatusError) as streamed:  # before any byte of it
            await client.chat.completions.create(model="strict", messages=ASK, stream=True)
        assert streamed.value.status_code == 502
    assert posts(fake_openai) == ["gpt-json", "gpt-json", "other-json", "other-json"] * 2


async def test_the_clients_json_schema_is_checked(
    fake_openai: FakeOpenAI, start_router: RouterFactory, tmp_path: Path
) -> None:
    response_format: Any = {
        "type": "json_schema",
        "json_schema": {"name": "echo", "schema": SCHEMA, "strict": True},
    }
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        answer = await client.chat.completions.create(
            model="plain", messages=ASK, response_format=response_format
        )
        assert json.loads(answer.choices[0].message.content or "") == {"echo": "hi there"}
        # Without a schema, the same route takes the first answer as it is.
        plain = await client.chat.completions.create(model="plain", messages=ASK)
        assert plain.choices[0].message.content == "echo: hi there"
        strict = await client.chat.completions.create(model="strict", messages=ASK)
        assert json.loads(strict.choices[0].message.content or "") == {"echo": "hi there"}
