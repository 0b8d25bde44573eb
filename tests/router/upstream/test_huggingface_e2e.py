"""The ``huggingface`` kind through the daemon, the official OpenAI SDK as the client:
the router's OpenAI-compatible API (``api = "openai"``), and a TGI server's native
``/generate`` and ``/generate_stream`` (``api = "tgi"``)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.conftest import openai_client
from tests.fakes._base import running
from tests.fakes.openai_upstream import FakeOpenAI
from tests.fakes.tgi_upstream import FakeTGI

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RouterFactory

TOKEN = "hf_secret_token_abcdef"
CONFIG = """
[defaults]
retries = 0

[providers.hf]
kind = "huggingface"
base_url = "{router}"
api_key = "env:HF_TEST_TOKEN"

[providers.tgi]
kind = "huggingface"
api = "tgi"
base_url = "{tgi}"
api_key = "env:HF_TEST_TOKEN"

[providers.plain]
kind = "huggingface"
api = "tgi"
template = "plain"
base_url = "{tgi}"
api_key = "env:HF_TEST_TOKEN"

[routes.chat]
fallback = ["tgi:local"]
"""


def ask(text: str) -> Any:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


@asynccontextmanager
async def served(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FakeOpenAI, FakeTGI, openai.AsyncOpenAI]]:
    monkeypatch.setenv("HF_TEST_TOKEN", TOKEN)
    hub, tgi = FakeOpenAI(key=TOKEN), FakeTGI(token=TOKEN)
    async with running(hub) as hub_address, running(tgi) as tgi_address:
        hub.url, tgi.url = hub_address + "/v1", tgi_address
        toml = CONFIG.replace("{router}", hub.url).replace("{tgi}", tgi.url)
        async with start_router(toml) as url, openai_client(url) as client:
            yield hub, tgi, client


async def test_the_router_speaks_chat_completions_with_the_token(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = "hf:meta-llama/Llama-3.1-8B-Instruct:novita"
    async with served(start_router, monkeypatch) as (hub, _, client):
        answer = await client.chat.completions.create(model=model, messages=ask("hi"))
        stream = await client.chat.completions.create(model=model, messages=ask("a b"), stream=True)
        chunks = [chunk async for chunk in stream]
    assert answer.choices[0].message.content == "echo: hi"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: a b"
    sent = hub.received[0]
    assert (sent.path, sent.body["model"]) == ("/v1/chat/completions", model.removeprefix("hf:"))
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"


async def test_tgi_generate_gets_the_rendered_prompt_and_parameters(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (_, tgi, client):
        answer = await client.chat.completions.create(
            model="chat", messages=ask("hi there"), max_tokens=50, temperature=0, stop=["END"]
        )
        plain = await client.chat.completions.create(model="plain:local", messages=ask("yo"))
        long = await client.chat.completions.create(model="chat", messages=ask("long"))
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.usage is not None
    assert answer.usage.completion_tokens == 3
    assert plain.choices[0].message.content == "echo: yo"
    assert long.choices[0].finish_reason == "length"
    sent = tgi.received[0]
    assert sent.path == "/generate"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.body == {
        "inputs": "<|im_start|>system\nBe brief.<|im_end|>\n"
        "<|im_start|>user\nhi there<|im_end|>\n<|im_start|>assistant\n",
        "parameters": {
            "details": True,
            "return_full_text": False,
            "max_new_tokens": 50,
            "do_sample": False,  # TGI refuses temperature 0: greedy decoding instead
            "stop": ["END"],
        },
    }
    assert tgi.received[1].body["inputs"] == "System: Be brief.\n\nUser: yo\n\nAssistant:"


async def test_tgi_generate_stream_with_usage(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (_, tgi, client):
        stream = await client.chat.completions.create(
            model="chat",
            messages=ask("one two three"),
            stream=True,
            stream_options={"include_usage": True},
            top_p=1.0,
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"  # the special end token is not text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (FakeTGI.INPUT_LENGTH, 5)
    sent = tgi.received[0]
    assert sent.path == "/generate_stream"
    assert "top_p" not in sent.body["parameters"]  # 1.0 is TGI's refusal, and no-op


async def test_tgi_errors_map_to_the_clients_statuses(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (_, _tgi, client):
        create = client.chat.completions.create
        with pytest.raises(openai.BadRequestError) as too_long:
            await create(model="chat", messages=ask("fail-ctx"))
        with pytest.raises(openai.InternalServerError) as overloaded:
            await create(model="chat", messages=ask("fail-429"))
        with pytest.raises(openai.InternalServerError) as incomplete:
            await create(model="chat", messages=ask("fail-500"))
        stream = await create(model="chat", messages=ask("error-mid-stream"), stream=True)
        with pytest.raises(openai.APIError) as mid_stream:
            _ = [chunk async for chunk in stream]
    assert too_long.value.code == "context_length_exceeded"
    # TGI's 429 is its queue full (no Retry-After): overload, for another target to serve.
    assert overloaded.value.status_code == 502
    assert "overloaded" in overloaded.value.message
    assert incomplete.value.status_code == 502
    assert "CUDA out of memory" in str(mid_stream.value)
