"""``GET /metrics``: present, growing, bounded labels; the daemon over loopback."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
import openai
import pytest
from prometheus_client.parser import text_string_to_metric_families

from router.ops._metrics import Metrics
from tests.conftest import RouterFactory, openai_client

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam

    from tests.fakes.openai_upstream import FakeOpenAI


def config(upstream: str) -> str:
    return f"""
[defaults]
retries = 1
backoff = {{ initial = "1ms", max = "1ms" }}
circuit = {{ failures = 2, open_for = "60s" }}

[providers.up]
kind = "openai"
base_url = "{upstream}"
api_key = "env:FAKE_UPSTREAM_KEY"

[routes.chat]
fallback = ["up:fail-500", "up:gpt-4o"]

[routes.plain]
fallback = ["up:gpt-4o"]

[routes.broken]
fallback = ["up:fail-503"]

[routes.ab]
split = {{ plain = 1 }}

[routes.resumed]
fallback = ["up:break-mid-stream", "up:gpt-4o"]
"""


@pytest.fixture(autouse=True)
def upstream_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_UPSTREAM_KEY", "sk-upstream-secret")


Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(url: str) -> Samples:
    async with httpx2.AsyncClient() as client:
        response = await client.get(f"{url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples: Samples = {}
    for family in text_string_to_metric_families(response.text):
        for s in family.samples:
            samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def test_metrics_present_and_growing(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        before = await scrape(url)
        assert value(before, "llm_router_config_reloads_total", result="success") == 0
        assert ("llm_router_circuit_state", (("target", "up:fail-500"),)) in before
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
        await client.chat.completions.create(model="plain", messages=messages)
        after_one = await scrape(url)
        await client.chat.completions.create(model="plain", messages=messages)
        stream = await client.chat.completions.create(
            model="plain", messages=messages, stream=True, stream_options={"include_usage": True}
        )
        async for _ in stream:
            pass
        after = await scrape(url)

    ok = {"route": "plain", "target": "up:gpt-4o", "outcome": "ok"}
    assert value(after_one, "llm_router_requests_total", **ok) == 1
    assert value(after, "llm_router_requests_total", **ok) == 3
    assert value(after, "llm_router_request_duration_seconds_count", route="plain") == 3
    assert value(after, "llm_router_request_duration_seconds_sum", route="plain") > 0
    ttft = value(
        after, "llm_router_time_to_first_token_seconds_count", route="plain", target="up:gpt-4o"
    )
    assert ttft == 1
    assert value(after, "llm_router_attempts_total", target="up:gpt-4o", result="ok") == 3
    # 7 in, 5 out per answer (the fake's usage), three answers.
    assert value(after, "llm_router_tokens_total", target="up:gpt-4o", direction="in") == 21
    assert value(after, "llm_router_tokens_total", target="up:gpt-4o", direction="out") == 15
    assert value(after, "llm_router_in_flight", route="plain") == 0


async def test_failures_fallbacks_retries_and_circuit_state(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        # 500, a retry, 500 again: the circuit (2 failures) opens; the fallback answers.
        await client.chat.completions.create(model="chat", messages=messages)
        with pytest.raises(openai.APIStatusError):
            await client.chat.completions.create(model="broken", messages=messages)
        with pytest.raises(openai.NotFoundError):
            await client.chat.completions.create(model="no-such-model-x1", messages=messages)
        await client.chat.completions.create(model="ab", messages=messages)
        samples = await scrape(url)

    assert value(samples, "llm_router_circuit_state", target="up:fail-500") == 2  # open
    assert value(samples, "llm_router_circuit_state", target="up:gpt-4o") == 0
    assert (
        value(samples, "llm_router_attempts_total", target="up:fail-500", result="server_error")
        == 2
    )
    assert value(samples, "llm_router_retries_total", target="up:fail-500") == 1
    assert value(samples, "llm_router_fallbacks_total", route="chat") == 1
    ok = {"route": "chat", "target": "up:gpt-4o", "outcome": "ok"}
    assert value(samples, "llm_router_requests_total", **ok) == 1
    failed = {"route": "broken", "target": "up:fail-503", "outcome": "upstream_error"}
    assert value(samples, "llm_router_requests_total", **failed) == 1
    unknown = {"route": "-", "target": "-", "outcome": "client_error"}
    assert value(samples, "llm_router_requests_total", **unknown) == 1
    assert value(samples, "llm_router_split_arm_total", route="ab", arm="plain") == 1
    # A model the client made up never becomes a label value.
    assert not any("no-such-model" in v for _, labels in samples for _, v in labels)


async def test_resumes_are_counted_by_route_target_and_outcome(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "a b c"}]
    async with start_router(config(fake_openai.url)) as url, openai_client(url) as client:
        stream = await client.chat.completions.create(
            model="resumed", messages=messages, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        samples = await scrape(url)
    assert text == "echo: a b c"
    resumed = {"route": "resumed", "target": "up:gpt-4o", "outcome": "resumed"}
    assert value(samples, "llm_router_resumes_total", **resumed) == 1
    ok = {"route": "resumed", "target": "up:gpt-4o", "outcome": "ok"}
    assert value(samples, "llm_router_requests_total", **ok) == 1


async def test_reload_counter() -> None:
    metrics = Metrics()
    metrics.reload("success")
    metrics.reload("failure")
    metrics.reload("failure")
    text = metrics.render().decode()
    assert 'llm_router_config_reloads_total{result="failure"} 2.0' in text
    assert 'llm_router_config_reloads_total{result="unchanged"} 0.0' in text
    with pytest.raises(ValueError, match="reload result"):
        metrics.reload("maybe")


async def test_metrics_is_get_only(start_router: RouterFactory, fake_openai: FakeOpenAI) -> None:
    async with start_router(config(fake_openai.url)) as url, httpx2.AsyncClient() as client:
        response = await client.post(f"{url}/metrics")
    assert response.status_code == 405
