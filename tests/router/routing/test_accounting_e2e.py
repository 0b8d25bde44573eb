"""Failure accounting through the daemon: the official SDK over loopback, a fake OpenAI
upstream. A target that cuts every stream opens its circuit; an upstream refusal passed
through still names the target that refused; a silent target in a non-stream fallback
costs the first-token time, not the whole timeout."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2
import openai
import orjson
import pytest
import trio

from tests.conftest import RouterFactory, openai_client
from tests.router.routing.test_routing_e2e import HI, config

if TYPE_CHECKING:
    from tests.fakes.openai_upstream import FakeOpenAI


async def test_a_target_that_cuts_every_stream_opens_its_circuit(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    defaults = 'retries = 0\ncircuit = { failures = 3, successes = 1, open_for = "60s" }'
    # resume off: each broken stream ends with its error, as the client sees it.
    routes = '[routes.r]\nfallback = ["up:break-mid-stream", "backup:gpt-4o"]\nresume = "off"'
    async with (
        start_router(config(fake_openai.url, routes, defaults)) as url,
        openai_client(url) as client,
        httpx2.AsyncClient(base_url=url, trust_env=False) as admin,
    ):

        async def status() -> dict[str, Any]:
            targets = (await admin.get("/admin/status")).json()["targets"]
            state: dict[str, Any] = targets["up:break-mid-stream"]
            return state

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


async def test_an_upstream_refusal_passed_through_names_its_target(
    start_router: RouterFactory, fake_openai: FakeOpenAI, capsys: pytest.CaptureFixture[str]
) -> None:
    routes = '[routes.r]\nfallback = ["up:fail-400", "backup:gpt-4o"]'
    toml = config(fake_openai.url, routes)  # the access log is on by default, on stderr
    async with start_router(toml) as url, openai_client(url) as client:
        with pytest.raises(openai.BadRequestError) as stream_refused:
            await client.chat.completions.create(model="r", messages=HI, stream=True)
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model="r", messages=HI)
        # On the same keep-alive connection: the two before it have ended and logged.
        await client.chat.completions.create(model="backup:gpt-4o", messages=HI)
    for caught in (stream_refused, refused):
        assert caught.value.response.headers["x-router-target"] == "up:fail-400"
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line[:1] == "{"]
    assert [(line["status"], line["target"]) for line in lines[:2]] == [(400, "up:fail-400")] * 2


async def test_a_silent_target_in_a_non_stream_fallback_costs_the_first_token_time(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    routes = '[routes.r]\nfallback = ["up:silent", "backup:gpt-4o"]\nfirst_token_timeout = "200ms"'
    async with start_router(config(fake_openai.url, routes)) as url, openai_client(url) as client:
        with trio.fail_after(5):  # the route's timeout is 60 s: far from it
            raw = await client.chat.completions.with_raw_response.create(model="r", messages=HI)
            await fake_openai.disconnected.wait()  # the silent attempt's connection closed
    assert raw.parse().choices[0].message.content == "echo: hi"
    assert raw.headers["x-router-target"] == "backup:gpt-4o"
    assert [r.body["model"] for r in fake_openai.received] == ["silent", "gpt-4o"]
