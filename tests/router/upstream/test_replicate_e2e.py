"""The ``replicate`` kind through the daemon, the official OpenAI SDK as the client, a
fake Replicate upstream: create with ``Prefer: wait``, polling, the SSE stream, errors,
and the cancel of a prediction nobody waits for any more."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pytest
import trio

from tests.conftest import openai_client
from tests.fakes._base import running
from tests.fakes._writes import Coalescing
from tests.fakes.replicate_upstream import FakeReplicate

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RouterFactory

TOKEN = "r8_secret_token_1234"
CONFIG = """
[defaults]
retries = 0

[providers.rep]
kind = "replicate"
base_url = "{url}"
api_key = "env:REPLICATE_TEST_TOKEN"
poll_interval = "5ms"

[providers.wrong]
kind = "replicate"
base_url = "{url}"
api_key = "env:REPLICATE_WRONG_TOKEN"

[routes.chat]
fallback = ["rep:meta/echo"]
"""
ASK: Any = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi there"}]


@asynccontextmanager
async def served(
    start_router: RouterFactory,
    monkeypatch: pytest.MonkeyPatch,
    extra: str = "",
    one_write: bool = False,
) -> AsyncIterator[tuple[FakeReplicate, openai.AsyncOpenAI, str]]:
    """The daemon before a fake Replicate; with ``one_write``, each of its answers'
    bodies goes out in one write (as TCP may coalesce a stream's events)."""
    monkeypatch.setenv("REPLICATE_TEST_TOKEN", TOKEN)
    monkeypatch.setenv("REPLICATE_WRONG_TOKEN", "r8_wrong_token_5678")
    fake = FakeReplicate(token=TOKEN)
    async with running(Coalescing(fake) if one_write else fake) as address:
        fake.url = address + "/v1"
        async with (
            start_router((CONFIG + extra).replace("{url}", fake.url)) as url,
            openai_client(url) as client,
        ):
            yield fake, client, url


async def test_an_answer_waits_with_prefer_and_joins_the_output(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (fake, client, _):
        answer = await client.chat.completions.create(
            model="chat", messages=ASK, max_tokens=50, temperature=0.5, stop=["END"]
        )
    assert answer.choices[0].message.content == "echo: hi there"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (11, 3)
    sent = fake.received[-1]
    assert (sent.method, sent.path) == ("POST", "/v1/models/meta/echo/predictions")
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["prefer"] == "wait=60"
    assert sent.body == {
        "input": {
            "prompt": "hi there",
            "system_prompt": "Be brief.",
            "max_tokens": 50,
            "temperature": 0.5,
            "stop_sequences": "END",
        },
        "stream": False,
    }


async def test_cancel_after_sends_replicates_own_deadline(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = '[providers.timed]\nkind = "replicate"\nbase_url = "{url}"\n'
    extra += 'api_key = "env:REPLICATE_TEST_TOKEN"\ncancel_after = "2m"\nwait = "10s"\n'
    async with served(start_router, monkeypatch, extra) as (fake, client, _):
        await client.chat.completions.create(model="timed:meta/echo", messages=ASK)
        await client.chat.completions.create(model="rep:meta/echo", messages=ASK)
    timed, plain = fake.received
    assert (timed.headers["cancel-after"], timed.headers["prefer"]) == ("120s", "wait=10")
    assert "cancel-after" not in plain.headers


async def test_a_prediction_still_running_is_polled_until_it_succeeds(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (fake, client, _):
        answer = await client.chat.completions.create(model="rep:meta/slow", messages=ASK)
    assert answer.choices[0].message.content == "echo: hi there"
    assert [(r.method, r.path) for r in fake.received] == [
        ("POST", "/v1/models/meta/slow/predictions"),
        ("GET", "/v1/predictions/p0001xyz"),
        ("GET", "/v1/predictions/p0001xyz"),
    ]
    assert fake.canceled == []


async def test_a_version_goes_to_the_predictions_endpoint(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (fake, client, _):
        answer = await client.chat.completions.create(model="rep:acme/llm:5c7d5dc6", messages=ASK)
    assert answer.choices[0].message.content == "echo: hi there"
    sent = fake.received[-1]
    assert (sent.path, sent.body["version"]) == ("/v1/predictions", "5c7d5dc6")


async def test_a_stream_reads_the_prediction_stream_then_its_token_counts(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (fake, client, _):
        stream = await client.chat.completions.create(
            model="chat",
            messages=[{"role": "user", "content": "one two three"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "echo: one two three"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (11, 4)
    create, read, ended = fake.received
    assert create.body["stream"] is True
    assert "prefer" not in create.headers
    assert (read.path, read.headers["accept"]) == ("/v1/stream/p0001xyz", "text/event-stream")
    assert read.headers["cache-control"] == "no-store"
    assert read.headers["authorization"] == f"Bearer {TOKEN}"
    assert ended.path == "/v1/predictions/p0001xyz"
    assert fake.canceled == []


async def test_errors_map_to_the_clients_statuses(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (_, client, _url):
        create = client.chat.completions.create
        with pytest.raises(openai.RateLimitError) as limited:
            await create(model="rep:meta/fail-429", messages=ASK)
        with pytest.raises(openai.BadRequestError) as invalid:
            await create(model="rep:meta/fail-422", messages=ASK)
        with pytest.raises(openai.NotFoundError):
            await create(model="rep:meta/fail-404", messages=ASK)
        with pytest.raises(openai.InternalServerError) as crashed:
            await create(model="rep:meta/crash", messages=ASK)
        with pytest.raises(openai.InternalServerError) as billing:
            await create(model="rep:meta/fail-402", messages=ASK)
        with pytest.raises(openai.InternalServerError) as refused:
            await create(model="wrong:meta/echo", messages=ASK)
        image: Any = {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}
        with pytest.raises(openai.BadRequestError) as imaged:
            await create(model="rep:meta/echo", messages=[{"role": "user", "content": [image]}])
    assert limited.value.response.headers.get("retry-after") == "7"
    assert "temperature" in invalid.value.message
    assert crashed.value.status_code == 502
    assert "CUDA out of memory" in crashed.value.message
    assert billing.value.status_code == 502
    assert refused.value.status_code == 502
    assert refused.value.code == "upstream_authentication_failed"
    assert "r8_wrong_token_5678" not in refused.value.response.text
    assert imaged.value.status_code == 400


async def test_a_stream_cut_or_failing_mid_way_raises(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with served(start_router, monkeypatch) as (_, client, _url):
        for model in ("rep:meta/error-mid-stream", "rep:meta/truncated"):
            stream = await client.chat.completions.create(model=model, messages=ASK, stream=True)
            with pytest.raises(openai.APIError):
                _ = [chunk async for chunk in stream]


async def test_the_words_that_came_with_an_error_event_reach_the_client_first(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The prediction's first word and its error event come in one read.
    received: list[Any] = []
    async with served(start_router, monkeypatch, one_write=True) as (_, client, _url):

        async def read() -> None:
            create = client.chat.completions.create
            stream = await create(model="rep:meta/error-mid-stream", messages=ASK, stream=True)
            async for chunk in stream:
                received.append(chunk)

        with pytest.raises(openai.APIError, match="the model crashed"):
            await read()
    assert "".join(c.choices[0].delta.content or "" for c in received if c.choices) == "echo:"


async def _hang_up(url: str, body: dict[str, Any], until: trio.Event) -> None:
    """Send ``body`` and go away once ``until`` is set."""
    async with (
        httpx2.AsyncClient(base_url=url, trust_env=False) as http,
        trio.open_nursery() as nursery,
    ):

        async def request() -> None:
            await http.post("/v1/chat/completions", json=body)

        nursery.start_soon(request)
        await until.wait()
        nursery.cancel_scope.cancel()  # the client hangs up


@pytest.mark.parametrize("stream", [False, True], ids=["polled", "streamed"])
async def test_a_client_that_goes_away_cancels_the_prediction(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    async with served(start_router, monkeypatch) as (fake, _client, url):
        body = {"model": "rep:meta/silent", "messages": ASK, "stream": stream}
        # Streamed: once its stream is open (and silent); polled: once it was polled.
        await _hang_up(url, body, fake.read_seen)
        with trio.fail_after(3):
            await fake.cancel_seen.wait()
    assert fake.canceled == ["p0001xyz"]
    cancel = fake.received[-1]
    assert (cancel.method, cancel.path) == ("POST", "/v1/predictions/p0001xyz/cancel")
    assert cancel.headers["authorization"] == f"Bearer {TOKEN}"


async def test_a_hedge_that_loses_cancels_its_prediction(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    extra = """
[providers.sim]
kind = "simulated"
latency = { median = "5ms", p99 = "10ms" }

[routes.raced]
fallback = ["rep:meta/silent", "sim:echo"]
hedge = { after = "100ms", max = 1 }
"""
    async with served(start_router, monkeypatch, extra) as (fake, client, _):
        answer = await client.chat.completions.create(model="raced", messages=ASK)
        with trio.fail_after(3):
            await fake.cancel_seen.wait()
    assert answer.choices[0].message.content
    assert fake.canceled == ["p0001xyz"]
