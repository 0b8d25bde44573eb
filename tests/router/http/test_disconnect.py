"""A client that goes away cancels its upstream work at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
import trio

if TYPE_CHECKING:
    from tests.conftest import RouterFactory
    from tests.fakes.openai_upstream import FakeOpenAI

CONFIG = """
[providers.up]
kind = "openai"
base_url = "{url}"

[routes.chat]
fallback = ["up:silent"]
"""


async def _disconnect_mid_request(url: str, fake: FakeOpenAI, stream: bool) -> None:
    body = {"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "x"}]}
    async with (
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
        trio.open_nursery() as nursery,
    ):

        async def request() -> None:
            await client.post("/v1/chat/completions", json=body)

        nursery.start_soon(request)
        await fake.request_seen.wait()
        nursery.cancel_scope.cancel()  # the client hangs up


async def test_client_disconnect_closes_upstream(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(CONFIG.format(url=fake_openai.url)) as url:
        await _disconnect_mid_request(url, fake_openai, stream=False)
        # The design's promise: the upstream connection is closed within a second.
        with trio.fail_after(1):
            await fake_openai.disconnected.wait()


async def test_client_disconnect_closes_upstream_stream(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(CONFIG.format(url=fake_openai.url)) as url:
        await _disconnect_mid_request(url, fake_openai, stream=True)
        with trio.fail_after(1):
            await fake_openai.disconnected.wait()
