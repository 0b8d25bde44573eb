"""Budgets over loopback: every answer is charged, and requests in flight hold their worst
case, so concurrent requests cannot spend a budget several times over."""

from __future__ import annotations

import math
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import httpx2
import openai
import pytest
import trio

from tests.fakes.azure_upstream import FakeAzure
from tests.fakes.openai_upstream import FakeOpenAI, running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from openai.types.chat import ChatCompletionMessageParam

    from tests.conftest import RouterFactory
    from tests.fakes._base import Answer, Receive, Received, Reply, Send

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]
PROMPT_TOKENS = 2  # "hi there": 8 characters at 4 a token


@attrs.define
class NoUsage(FakeOpenAI):
    """An OpenAI-compatible host that never reports usage, streamed or not."""

    def reply(self, model: str, got: Received) -> Reply:
        answer = super().reply(model, got)
        body = {k: v for k, v in answer.body.items() if k != "usage"}
        return attrs.evolve(answer, body=body)

    def scripted(self, model: str, got: Received, *, stream: bool) -> Answer:
        got.body.pop("stream_options", None)  # asked or not, it sends none
        return super().scripted(model, got, stream=stream)


@attrs.define
class Gated(FakeOpenAI):
    """Holds every answer until :attr:`gate` is set; :attr:`arrived` counts requests."""

    gate: trio.Event = attrs.field(factory=trio.Event, kw_only=True)
    arrived: int = attrs.field(default=0, kw_only=True)
    on_arrival: Any = attrs.field(default=None, kw_only=True)

    async def _send(self, answer: Answer, receive: Receive, send: Send) -> None:
        self.arrived += 1
        if self.on_arrival is not None:
            self.on_arrival()
        await self.gate.wait()
        await super()._send(answer, receive, send)


@asynccontextmanager
async def serving(app: FakeOpenAI) -> AsyncIterator[FakeOpenAI]:
    async with running(app) as url:
        app.url = f"{url}/v1"
        yield app


def config(url: str, kind: str = "openai", budget: float = 1000.0, extra: str = "") -> str:
    # Prices of a dollar a token, or of $0.08 an output token and nothing for the prompt.
    return f"""
[defaults]
retries = 0

[providers.up]
kind = "{kind}"
base_url = "{url}"

[routes.chat]
fallback = ["up:dollar"]

[prices]
"up:dollar" = {{ input = 1_000_000, output = 1_000_000 }}
"up:pricey" = {{ input = 0, output = 80_000 }}
"up:fail-500" = {{ input = 0, output = 80_000 }}
"up:silent" = {{ input = 0, output = 80_000 }}

[keys.team]
secret = "env:TEAM_KEY"
budget = {{ usd = {budget}, per = "day" }}
{extra}
"""


@pytest.fixture(autouse=True)
def team_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "team-key-1")


def client_for(url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="team-key-1", max_retries=0)


async def team_budget(url: str) -> dict[str, Any]:
    async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
        state: dict[str, Any] = (await raw.get("/admin/status")).json()
    return state["traffic"]["budgets"]["team"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("kind", ["openai_compatible", "mistral"])
async def test_a_stream_without_usage_is_charged_from_its_text(
    start_router: RouterFactory, fake_openai: FakeOpenAI, kind: str
) -> None:
    async with start_router(config(fake_openai.url, kind)) as url:
        client = client_for(url)
        stream = await client.chat.completions.create(model="up:dollar", messages=HI, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        await client.close()
        spent = (await team_budget(url))["spent_day"]
    assert "stream_options" not in fake_openai.received[0].body  # these kinds ask for none
    assert text == "echo: hi there"
    assert spent == PROMPT_TOKENS + math.ceil(len(text) / 4)  # $1 a token: 2 + 4


async def test_an_azure_stream_without_usage_is_charged_from_its_text(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AZURE_TEST_KEY", "azure-fake-key")
    fake = FakeAzure()
    async with running(fake) as fake_url:
        toml = config(fake_url, "azure").replace(
            f'base_url = "{fake_url}"',
            f'base_url = "{fake_url}"\napi_key = "env:AZURE_TEST_KEY"\napi_version = "2024-10-21"',
        )
        async with start_router(toml) as url:
            client = client_for(url)
            stream = await client.chat.completions.create(
                model="up:dollar", messages=HI, stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
            await client.close()
            spent = (await team_budget(url))["spent_day"]
    assert "stream_options" not in fake.received[0].body  # the client asked for none
    assert text == "echo: hi there"
    assert spent == PROMPT_TOKENS + math.ceil(len(text) / 4)


async def test_an_answer_without_usage_is_charged_from_its_text(
    start_router: RouterFactory,
) -> None:
    async with serving(NoUsage()) as fake, start_router(config(fake.url)) as url:
        client = client_for(url)
        answer = await client.chat.completions.create(model="up:dollar", messages=HI)
        stream = await client.chat.completions.create(model="up:dollar", messages=HI, stream=True)
        assert {c.usage async for c in stream} == {None}
        await client.close()
        spent = (await team_budget(url))["spent_day"]
    assert answer.usage is None
    assert spent == 2 * (PROMPT_TOKENS + math.ceil(len("echo: hi there") / 4))


async def test_a_stream_the_client_leaves_is_charged_for_what_it_got(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    # ``story-stall-5`` streams 5 words, then nothing: the client leaves.
    toml = config(fake_openai.url, extra='[prices."up:story-stall-5"]\ninput = 1e6\noutput = 1e6')
    async with start_router(toml) as url:
        client = client_for(url)
        stream = await client.chat.completions.create(
            model="up:story-stall-5", messages=HI, stream=True
        )
        got = ""
        async for chunk in stream:
            got += (chunk.choices[0].delta.content or "") if chunk.choices else ""
            if len(got.split()) == 5:
                break
        await stream.close()
        await client.close()
        with trio.fail_after(5):  # until the router has seen the client go
            while (budget := await team_budget(url))["spent_day"] == 0:  # noqa: ASYNC110
                await trio.sleep(0.01)
    assert got == "The lighthouse keeper counted ships"
    assert budget["spent_day"] == PROMPT_TOKENS + math.ceil(len(got) / 4)
    assert budget["reserved"] == 0.0


async def test_concurrent_requests_overshoot_a_budget_by_one_request_at_most(
    start_router: RouterFactory,
) -> None:
    # Each request may cost (and costs) 5 output tokens at $0.08: $0.40, against $1.
    n = 10
    refused: list[openai.RateLimitError] = []
    all_in = trio.Event()

    def count() -> None:
        if fake.arrived + len(refused) == n:
            all_in.set()

    fake = Gated(on_arrival=count)
    async with serving(fake), start_router(config(fake.url, budget=1.0)) as url:
        client = client_for(url)

        async def ask() -> None:
            try:
                await client.chat.completions.create(model="up:pricey", messages=HI, max_tokens=5)
            except openai.RateLimitError as exc:
                refused.append(exc)
                count()

        async with trio.open_nursery() as nursery:
            for _ in range(n):
                nursery.start_soon(ask)
            await all_in.wait()  # every request reached the fake or was refused
            held = await team_budget(url)
            fake.gate.set()
        budget = await team_budget(url)
        with pytest.raises(openai.RateLimitError) as spent:
            await client.chat.completions.create(model="up:pricey", messages=HI, max_tokens=5)
        await client.close()
    # $0.40 held, $0.80, then $1.20: the third was let in with $0.20 left, no fourth.
    assert fake.arrived == 3
    assert held["reserved"] == pytest.approx(1.2)
    assert held["spent_day"] == 0.0
    assert {e.code for e in refused} == {"budget_exhausted"}
    assert "held by its requests in flight" in refused[0].message
    assert refused[0].response.headers["retry-after"] == "1"
    assert budget["spent_day"] == pytest.approx(1.2)  # <= $1 + one request's $0.40
    assert budget["reserved"] == 0.0
    assert "is spent" in spent.value.message


async def test_a_request_without_max_tokens_holds_a_default_allowance(
    start_router: RouterFactory,
) -> None:
    fake = Gated()
    async with serving(fake), start_router(config(fake.url, budget=1000.0)) as url:
        client = client_for(url)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: client.chat.completions.create(model="up:pricey", messages=HI)
            )
            await fake.request_seen.wait()
            held = await team_budget(url)
            fake.gate.set()
        await client.close()
    assert held["reserved"] == pytest.approx(4096 * 0.08)  # RESERVE_OUTPUT tokens


async def test_a_failed_or_abandoned_request_gives_its_hold_back(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url, budget=1.0)) as url:
        client = client_for(url)
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="up:fail-500", messages=HI, max_tokens=5)
        assert (await team_budget(url))["reserved"] == 0.0
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                lambda: client.chat.completions.create(model="up:silent", messages=HI, max_tokens=5)
            )
            await fake_openai.request_seen.wait()
            assert (await team_budget(url))["reserved"] == pytest.approx(0.4)
            nursery.cancel_scope.cancel()  # the client leaves
        await fake_openai.disconnected.wait()  # the router gave the upstream up
        with trio.fail_after(5):  # and its request's task has unwound
            while (budget := await team_budget(url))["reserved"]:  # noqa: ASYNC110
                await trio.sleep(0.01)
        await client.close()
    assert budget["spent_day"] == 0.0


async def test_a_huge_max_tokens_does_not_fill_a_providers_window(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = config(fake_openai.url).replace(
        'base_url = "', 'limits = { tpm = 1000 }\nbase_url = "', 1
    )
    async with start_router(toml) as url:
        client = client_for(url)
        huge = await client.chat.completions.create(
            model="up:gpt-4o-mini", messages=HI, max_tokens=1_000_000, stream=True
        )
        assert [c async for c in huge]
        # A stream's usage never reaches the window: it holds its estimate for a minute.
        after = await client.chat.completions.with_raw_response.create(
            model="up:gpt-4o-mini", messages=HI, max_tokens=100
        )
        await client.close()
    assert after.status_code == 200  # not a 429 for the next minute
    assert len(fake_openai.received) == 2
