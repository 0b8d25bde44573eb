"""Failure accounting through the daemon: the official SDK over loopback, a fake OpenAI
upstream. A target that cuts every stream opens its circuit."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
import openai
import pytest

from tests.conftest import RouterFactory, openai_client
from tests.router.routing.test_routing_e2e import HI, config

if TYPE_CHECKING:
    from tests.fakes.openai_upstream import FakeOpenAI


async def test_a_target_that_cuts_every_stream_opens_its_circuit(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    defaults = 'retries = 0\ncircuit = { failures = 3, successes = 1, open_for = "60s" }'
    routes = '[routes.r]\nfallback = ["up:break-mid-stream", "backup:gpt-4o"]'
    async with (
        start_router(config(fake_openai.url, routes, defaults)) as url,
        openai_client(url) as client,
        httpx2.AsyncClient(base_url=url, trust_env=False) as admin,
    ):

        async def status() -> str:
            return (await admin.get("/admin/status")).json()["targets"]["up:break-mid-stream"]

        for n in range(1, 4):
            stream = await client.chat.completions.create(
                model="r", messages=[{"role": "user", "content": "a b c d"}], stream=True
            )
            with pytest.raises(openai.APIError, match="upstream"):
                _ = [c async for c in stream]
            state = await status()
            assert state["state"] == ("open" if n == 3 else "closed")
        assert state["failures"] == 3
        raw = await client.chat.completions.with_raw_response.create(
            model="r", messages=HI, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert (text, raw.headers["x-router-target"]) == ("echo: hi", "backup:gpt-4o")
    models = [r.body["model"] for r in fake_openai.received]
    assert models == ["break-mid-stream"] * 3 + ["gpt-4o"]  # open: the cutter sees nothing
