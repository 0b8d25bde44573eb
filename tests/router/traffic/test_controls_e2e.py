"""Cost, budgets and the response cache over loopback, with the official SDK."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
import openai
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

if TYPE_CHECKING:
    from pathlib import Path

    from openai.types.chat import ChatCompletionMessageParam

    from tests.conftest import RouterFactory
    from tests.fakes.openai_upstream import FakeOpenAI

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]
#: What the fake's answer costs at gpt-4o-mini: 4 fresh prompt tokens, 3 read from the
#: cache and 5 completion tokens, at $0.15, $0.075 and $0.60 per million.
MINI = 3.825e-6


def config(upstream: str, extra: str = "") -> str:
    return f"""
[server]
api_keys = ["env:ROUTER_KEY"]

[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{upstream}"

[routes.chat]
fallback = ["up:gpt-4o-mini"]

[routes.priced]
fallback = ["up:house-model"]

[routes.cached]
fallback = ["up:gpt-4o-mini"]
cache = {{ ttl = "10m" }}

[prices]
"up:house-model" = {{ input = 10.0, output = 20.0 }}

[keys.small]
secret = "env:SMALL_KEY"
budget = {{ usd = 0.0001, per = "day" }}
{extra}
"""


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ROUTER_KEY", "router-key-1")
    monkeypatch.setenv("SMALL_KEY", "small-key-1")


def client_for(url: str, key: str = "router-key-1") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0)


async def cost_metric(url: str) -> dict[tuple[str, str, str], float]:
    async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
        text = (await raw.get("/metrics")).text
    return {
        (s.labels["route"], s.labels["target"], s.labels["key"]): s.value
        for family in text_string_to_metric_families(text)
        if family.name == "llm_router_cost_usd"
        for s in family.samples
        if s.name.endswith("_total")
    }


async def test_cost_from_shipped_and_configured_prices(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url:
        client = client_for(url)
        await client.chat.completions.create(model="chat", messages=HI)
        await client.chat.completions.create(model="priced", messages=HI)
        await client.close()
        costs = await cost_metric(url)
    # The fake reports 7 prompt tokens (3 of them read from its cache) and 5 completion.
    # gpt-4o-mini ships at $0.15 / $0.60 per million, cached input at $0.075:
    # 4*0.15e-6 + 3*0.075e-6 + 5*0.60e-6
    assert costs[("chat", "up:gpt-4o-mini", "server")] == pytest.approx(MINI, abs=1e-12)
    # house-model is priced in the config at $10 / $20, no cache rate: a cached token
    # costs the input price, 7*10e-6 + 5*20e-6
    assert costs[("priced", "up:house-model", "server")] == pytest.approx(1.7e-4, abs=1e-12)


async def test_a_spent_budget_is_a_429(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url:
        client = client_for(url, "small-key-1")
        await client.chat.completions.create(model="priced", messages=HI)
        with pytest.raises(openai.RateLimitError) as spent:
            await client.chat.completions.create(model="priced", messages=HI)
        await client.close()
    assert spent.value.code == "budget_exhausted"
    assert "small" in spent.value.message
    assert 0 < int(spent.value.response.headers["retry-after"]) <= 86_400
    assert len(fake_openai.received) == 1  # the refused request reached no upstream


async def test_cache_hits_misses_streamed_replay_and_bypass(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url:
        client = client_for(url)
        first = await client.chat.completions.with_raw_response.create(model="cached", messages=HI)
        second = await client.chat.completions.with_raw_response.create(model="cached", messages=HI)
        stream = await client.chat.completions.with_raw_response.create(
            model="cached",
            messages=HI,
            stream=True,
        )
        streamed = "".join(
            [c.choices[0].delta.content or "" async for c in stream.parse() if c.choices]
        )
        fresh = await client.chat.completions.with_raw_response.create(
            model="cached",
            messages=HI,
            extra_headers={"cache-control": "no-cache"},
        )
        other = client_for(url, "small-key-1")  # another key: its own entries
        theirs = await other.chat.completions.with_raw_response.create(model="cached", messages=HI)
        await other.close()
        await client.close()
    assert [r.headers["x-router-cache"] for r in (first, second, stream, fresh, theirs)] == [
        "miss",
        "hit",
        "hit",
        "miss",
        "miss",
    ]
    assert second.parse().choices[0].message.content == "echo: hi there"
    assert streamed == "echo: hi there"
    assert len(fake_openai.received) == 3  # first, the no-cache one, the other key's


async def test_a_streamed_answer_is_cached_too(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url:
        client = client_for(url)
        stream = await client.chat.completions.create(model="cached", messages=HI, stream=True)
        _ = [c async for c in stream]
        again = await client.chat.completions.with_raw_response.create(model="cached", messages=HI)
        await client.close()
    assert again.headers["x-router-cache"] == "hit"
    assert again.parse().choices[0].message.content == "echo: hi there"
    assert len(fake_openai.received) == 1


async def test_a_key_rate_limit_is_a_429(
    start_router: RouterFactory, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BUSY_KEY", "busy-key-1")
    extra = '[keys.busy]\nsecret = "env:BUSY_KEY"\nlimits = { rpm = 1 }\n'
    async with start_router(config(fake_openai.url, extra)) as url:
        client = client_for(url, "busy-key-1")
        await client.chat.completions.create(model="chat", messages=HI)
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="chat", messages=HI)
        await client.close()
    assert limited.value.code == "key_rate_limited"
    assert 50 <= int(limited.value.response.headers["retry-after"]) <= 60


async def test_provider_limits_route_around_and_429_with_retry_after(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = f"""
[defaults]
retries = 0

[providers.small]
kind = "openai"
base_url = "{fake_openai.url}"
limits = {{ rpm = 1 }}

[providers.big]
kind = "openai"
base_url = "{fake_openai.url}"
limits = {{ rpm = 2 }}

[routes.chat]
fallback = ["small:gpt-4o-mini", "big:gpt-4o-mini"]
"""
    async with start_router(toml) as url:
        client = client_for(url)
        targets = []
        for _ in range(3):
            raw = await client.chat.completions.with_raw_response.create(model="chat", messages=HI)
            targets.append(raw.headers["x-router-target"])
        with pytest.raises(openai.RateLimitError) as limited:
            await client.chat.completions.create(model="chat", messages=HI)
        await client.close()
    assert targets == ["small:gpt-4o-mini", "big:gpt-4o-mini", "big:gpt-4o-mini"]
    assert 50 <= int(limited.value.response.headers["retry-after"]) <= 60
    assert len(fake_openai.received) == 3


async def test_traffic_state_in_admin_status(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url:
        client = client_for(url, "small-key-1")
        await client.chat.completions.create(model="cached", messages=HI)
        await client.close()
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
            traffic = (await raw.get("/admin/status")).json()["traffic"]
    assert traffic["cache"]["misses"] == 1
    assert traffic["cache"]["entries"] == 1
    assert traffic["budgets"]["small"]["spent_day"] == pytest.approx(MINI, abs=1e-12)


async def test_a_stream_is_priced_even_when_the_client_asks_no_usage(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url:
        client = client_for(url)
        stream = await client.chat.completions.create(model="chat", messages=HI, stream=True)
        chunks = [c async for c in stream]
        await client.close()
        costs = await cost_metric(url)
    assert all(c.usage is None for c in chunks)  # not asked for: not sent
    assert fake_openai.received[0].body["stream_options"] == {"include_usage": True}
    # Priced from the usage the stream reported, its cache reads at their own rate.
    assert costs[("chat", "up:gpt-4o-mini", "server")] == pytest.approx(MINI, abs=1e-12)


async def test_provider_headers_close_the_window_before_a_429(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = f"""
[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{fake_openai.url}"

[providers.backup]
kind = "openai"
base_url = "{fake_openai.url}"

[routes.chat]
fallback = ["up:last-call", "backup:gpt-4o-mini"]
"""
    async with start_router(toml) as url:
        client = client_for(url)
        targets = []
        for _ in range(2):
            raw = await client.chat.completions.with_raw_response.create(model="chat", messages=HI)
            targets.append(raw.headers["x-router-target"])
        await client.close()
    # up said "0 requests left, reset in 30 s": the second request did not go there.
    assert targets == ["up:last-call", "backup:gpt-4o-mini"]
    assert [r.body["model"] for r in fake_openai.received] == ["last-call", "gpt-4o-mini"]


async def test_spend_survives_a_restart_with_a_state_file(
    start_router: RouterFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    state = tmp_path / "state.json"
    toml = config(fake_openai.url).replace("[server]\n", f'[server]\nstate_file = "{state}"\n')
    async with start_router(toml) as url:
        client = client_for(url, "small-key-1")
        await client.chat.completions.create(model="priced", messages=HI)
        await client.close()
    saved = orjson.loads(state.read_bytes())["budgets"]["small"]
    assert saved["day_usd"] == pytest.approx(1.7e-4, abs=1e-12)
    async with start_router(toml) as url:  # a new daemon: the budget is still spent
        client = client_for(url, "small-key-1")
        with pytest.raises(openai.RateLimitError, match="budget"):
            await client.chat.completions.create(model="priced", messages=HI)
        await client.close()
    assert len(fake_openai.received) == 1
