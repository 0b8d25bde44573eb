"""The ``runpod`` kind through the daemon, the official OpenAI SDK as the client, a fake
RunPod endpoint: its OpenAI route, and its native queue (``/runsync`` polled through
``/status``, ``/run`` read through ``/stream``, ``/cancel`` for a job nobody waits for)."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pytest
import trio

from tests.conftest import openai_client
from tests.fakes._base import running
from tests.fakes.runpod_upstream import FakeRunPod

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RouterFactory

KEY = "rpa_secret_key_ABCDEF"
CONFIG = """
[defaults]
retries = 0

[providers.pod]
kind = "runpod"
endpoint_id = "vllm-abc123"
base_url = "{url}"
api_key = "env:RUNPOD_TEST_KEY"

[providers.queue]
kind = "runpod"
api = "native"
endpoint_id = "vllm-abc123"
base_url = "{url}"
api_key = "env:RUNPOD_TEST_KEY"
poll_interval = "5ms"

[providers.wrong]
kind = "runpod"
api = "native"
endpoint_id = "vllm-abc123"
base_url = "{url}"
api_key = "env:RUNPOD_WRONG_KEY"

[routes.chat]
fallback = ["queue:llama"]
"""


def ask(text: str) -> Any:
    return [{"role": "system", "content": "Be brief."}, {"role": "user", "content": text}]


@asynccontextmanager
async def served(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[tuple[FakeRunPod, openai.AsyncOpenAI, str]]:
    monkeypatch.setenv("RUNPOD_TEST_KEY", KEY)
    monkeypatch.setenv("RUNPOD_WRONG_KEY", "rpa_wrong_key_999999")
    fake = FakeRunPod(key=KEY)
    async with running(fake) as address:
        fake.url = address + "/v2"
        async with (
            start_router(CONFIG.replace("{url}", fake.url)) as url,
            openai_client(url) as client,
        ):
            yield fake, client, url


async def test_the_openai_route_of_an_endpoint(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (fake, client, _):
        answer = await client.chat.completions.create(model="pod:gpt-4o", messages=ask("hi"))
        stream = await client.chat.completions.create(
            model="pod:gpt-4o", messages=ask("a b"), stream=True
        )
        chunks = [chunk async for chunk in stream]
    assert answer.choices[0].message.content == "echo: hi"
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "echo: a b"
    plain, streamed = fake.received
    assert plain.path == "/v2/vllm-abc123/openai/v1/chat/completions"
    assert plain.headers["authorization"] == f"Bearer {KEY}"
    assert streamed.body["stream_options"] == {"include_usage": True}


async def test_runsync_answers_with_the_workers_output(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (fake, client, _):
        answer = await client.chat.completions.create(
            model="chat", messages=ask("hi there"), max_tokens=50, temperature=0.5, stop=["END"]
        )
        legacy = await client.chat.completions.create(model="chat", messages=ask("legacy"))
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (9, 3)
    assert legacy.choices[0].message.content == "echo: legacy"
    sent = fake.received[0]
    assert (sent.method, sent.path) == ("POST", "/v2/vllm-abc123/runsync")
    assert sent.headers["authorization"] == f"Bearer {KEY}"
    assert sent.body == {
        "input": {
            "messages": ask("hi there"),
            "sampling_params": {"max_tokens": 50, "temperature": 0.5, "stop": ["END"]},
        }
    }


async def test_a_job_still_in_progress_is_polled_through_status(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (fake, client, _):
        answer = await client.chat.completions.create(model="chat", messages=ask("slow"))
    assert answer.choices[0].message.content == "echo: slow"
    assert [r.path for r in fake.received] == [
        "/v2/vllm-abc123/runsync",
        "/v2/vllm-abc123/status/job1-e1",
        "/v2/vllm-abc123/status/job1-e1",
    ]


async def test_a_stream_runs_the_job_and_reads_its_stream(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (fake, client, _):
        stream = await client.chat.completions.create(
            model="chat",
            messages=ask("one two three"),
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3
    run, first, second = fake.received
    assert (run.path, run.body["input"]["stream"]) == ("/v2/vllm-abc123/run", True)
    assert first.path == second.path == "/v2/vllm-abc123/stream/job1-e1"
    assert fake.cancelled == []


async def test_failures_map_to_the_clients_statuses(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (_, client, _url):
        create = client.chat.completions.create
        with pytest.raises(openai.RateLimitError) as limited:
            await create(model="chat", messages=ask("fail-429"))
        with pytest.raises(openai.BadRequestError):
            await create(model="chat", messages=ask("fail-400"))
        with pytest.raises(openai.InternalServerError) as crashed:
            await create(model="chat", messages=ask("crash"))
        with pytest.raises(openai.InternalServerError) as refused:
            await create(model="wrong:llama", messages=ask("hi"))
    assert limited.value.response.headers.get("retry-after") == "3"
    assert crashed.value.status_code == 502
    assert "CUDA out of memory" in crashed.value.message
    assert refused.value.status_code == 502
    assert refused.value.code == "upstream_authentication_failed"
    assert "rpa_wrong_key_999999" not in refused.value.response.text


@pytest.mark.parametrize("stream", [False, True], ids=["polled", "streamed"])
async def test_a_client_that_goes_away_cancels_the_job(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    async with served(start_router, monkeypatch) as (fake, _client, url):
        body = {"model": "chat", "messages": ask("silent"), "stream": stream}
        async with (
            httpx2.AsyncClient(base_url=url, trust_env=False) as http,
            trio.open_nursery() as nursery,
        ):

            async def request() -> None:
                await http.post("/v1/chat/completions", json=body)

            nursery.start_soon(request)
            await fake.read_seen.wait()  # polled once: still running
            nursery.cancel_scope.cancel()  # the client hangs up
        with trio.fail_after(3):
            await fake.cancel_seen.wait()
    assert fake.cancelled == ["job1-e1"]
    assert fake.received[-1].path == "/v2/vllm-abc123/cancel/job1-e1"
