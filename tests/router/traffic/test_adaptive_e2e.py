"""Adaptive bounds over loopback: the daemon learns from a fake OpenAI's 429s, and says
what it learned in ``/admin/status`` and ``/metrics``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2

from tests.conftest import RouterFactory, openai_client

if TYPE_CHECKING:
    from tests.fakes.openai_upstream import FakeOpenAI

CONFIG = """
[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{url}"
limits = {{ adaptive = true, concurrency = 8 }}

[providers.backup]
kind = "openai"
base_url = "{url}"

[routes.r]
fallback = ["up:fail-429", "backup:gpt-4o"]
"""


async def test_a_429_halves_the_bound_and_status_and_metrics_show_it(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    config = CONFIG.format(url=fake_openai.url)
    async with (
        start_router(config) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as raw,
        openai_client(url) as client,
    ):
        before = (await raw.get("/admin/status")).json()["traffic"]["concurrency"]["up"]
        answer = await client.chat.completions.with_raw_response.create(
            model="r", messages=[{"role": "user", "content": "hi"}]
        )
        assert answer.headers["x-router-target"] == "backup:gpt-4o"  # the 429 moved on
        after = (await raw.get("/admin/status")).json()["traffic"]["concurrency"]["up"]
        metrics = (await raw.get("/metrics")).text
    assert (before["limit"], before["ceiling"], before["adaptive"]) == (8, 8, True)
    assert (after["limit"], after["in_flight"]) == (4, 0)
    assert 'llm_router_concurrency_limit{target="up"} 4.0' in metrics
    assert 'llm_router_concurrency_in_flight{target="up"} 0.0' in metrics
