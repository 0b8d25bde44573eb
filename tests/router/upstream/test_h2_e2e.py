"""``pool = { http2 = true }`` end to end: the official OpenAI SDK, the router, and an
OpenAI fake served over HTTP/2 by hypercorn (h2c: HTTP/2 with prior knowledge), a
server implementation other than the one the pool's own tests use."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import trio
import trustme

from adapters import provider_kinds
from router import App, Engine, H2Pool, Runtime
from router.upstream._providers import build_upstreams
from rules import compile_routes, parse_config
from tests.conftest import RouterFactory, openai_client
from tests.fakes._base import running
from tests.fakes.openai_upstream import FakeOpenAI

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from openai.types.chat import ChatCompletionMessageParam

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "a b c"}]


@asynccontextmanager
async def http2_openai() -> AsyncIterator[tuple[FakeOpenAI, list[tuple[str, int]]]]:
    """The OpenAI fake on hypercorn, and the HTTP version and client port (so the
    connection) of each request it got."""
    fake = FakeOpenAI()
    seen: list[tuple[str, int]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append((scope["http_version"], scope["client"][1]))
        await fake(scope, receive, send)

    async with running(app) as url:
        fake.url = f"{url}/v1"
        yield fake, seen


def config(url: str) -> str:
    return f"""
[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{url}"
pool = {{ http2 = true }}

[routes.r]
fallback = ["up:gpt-4o"]
"""


@asynccontextmanager
async def app_over_http2(toml: str) -> AsyncIterator[str]:
    """The app on hypercorn, its HTTP/2 pools' ``run()`` in this nursery."""
    parsed = parse_config(toml, kinds=provider_kinds())
    upstreams = build_upstreams(parsed)
    async with trio.open_nursery() as nursery:
        for upstream in upstreams.values():
            transport = getattr(upstream, "transport", None)
            assert isinstance(transport, H2Pool)
            await nursery.start(transport.run)
        app = App(Runtime(compile_routes(parsed), Engine(upstreams)))
        async with running(app) as url:
            yield url
        for upstream in upstreams.values():
            await upstream.aclose()


async def test_chat_and_streams_over_http2_through_the_app() -> None:
    async with (
        http2_openai() as (fake, seen),
        app_over_http2(config(fake.url)) as url,
        openai_client(url) as client,
    ):
        whole = await client.chat.completions.create(model="r", messages=HI)
        stream = await client.chat.completions.create(model="r", messages=HI, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        answers: list[str] = []

        async def one() -> None:
            answer = await client.chat.completions.create(model="r", messages=HI)
            answers.append(answer.choices[0].message.content or "")

        # As many as hypercorn's 100 streams per connection and more: none fails.
        async with trio.open_nursery() as nursery:
            for _ in range(150):
                nursery.start_soon(one)
    assert whole.choices[0].message.content == "echo: a b c"
    assert text == "echo: a b c"
    assert answers == ["echo: a b c"] * 150
    assert {version for version, _ in seen} == {"2"}
    assert len(seen) == 152


async def test_a_hedged_stream_over_http2_resets_only_the_loser() -> None:
    """The winner's stream is opened in an attempt's task and read to its end by the
    request's; the silent loser is cancelled: its stream reset, the connection kept."""
    async with http2_openai() as (fake, seen):
        toml = config(fake.url).replace(
            'fallback = ["up:gpt-4o"]',
            'fallback = ["up:silent", "up:gpt-4o"]\nhedge = { after = "100ms", max = 1 }',
        )
        toml = toml.replace("retries = 0", "retries = 0\nhedge_budget = 1.0")
        async with app_over_http2(toml) as url, openai_client(url) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="r", messages=HI, stream=True
            )
            text = "".join(
                [c.choices[0].delta.content or "" async for c in raw.parse() if c.choices]
            )
            with trio.fail_after(5):  # a hang guard: the server sees the loser's reset
                await fake.disconnected.wait()
            again = await client.chat.completions.create(model="up:gpt-4o", messages=HI)
    assert text == "echo: a b c"
    assert raw.headers["x-router-hedges"] == "1"
    assert again.choices[0].message.content == "echo: a b c"
    assert [version for version, _ in seen] == ["2", "2", "2"]
    assert len({port for _, port in seen}) == 1  # one connection throughout


async def test_the_daemon_speaks_http2_to_a_provider(start_router: RouterFactory) -> None:
    async with (
        http2_openai() as (fake, seen),
        start_router(config(fake.url)) as url,
        openai_client(url) as client,
    ):
        whole = await client.chat.completions.create(model="r", messages=HI)
        stream = await client.chat.completions.create(model="r", messages=HI, stream=True)
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert whole.choices[0].message.content == "echo: a b c"
    assert text == "echo: a b c"
    assert [version for version, _ in seen] == ["2", "2"]


async def test_the_daemon_speaks_http2_over_tls_to_a_private_ca(
    start_router: RouterFactory, tmp_path: Path
) -> None:
    """``tls.ca_file`` and ``http2`` together: ALPN picks h2 on a verified connection."""
    ca = trustme.CA()
    chain, key, ca_file = tmp_path / "chain.pem", tmp_path / "key.pem", tmp_path / "ca.pem"
    issued = ca.issue_cert("localhost")
    issued.private_key_and_cert_chain_pem.write_to_path(str(chain))
    issued.private_key_pem.write_to_path(str(key))
    ca.cert_pem.write_to_path(str(ca_file))
    fake = FakeOpenAI()
    seen: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["http_version"])
        await fake(scope, receive, send)

    async with running(app, (str(chain), str(key))) as served:
        port = served.rsplit(":", 1)[1]
        toml = config(f"https://localhost:{port}/v1").replace(
            "pool = { http2 = true }",
            f'pool = {{ http2 = true }}\ntls = {{ ca_file = "{ca_file}" }}',
        )
        async with start_router(toml) as url, openai_client(url) as client:
            whole = await client.chat.completions.create(model="r", messages=HI)
    assert whole.choices[0].message.content == "echo: a b c"
    assert seen == ["2"]


async def test_an_http2_provider_added_by_a_reload_serves_at_once(
    start_router: RouterFactory, tmp_path: Path
) -> None:
    """The new pool's connection tasks run before the new rules take their first request."""
    async with (
        http2_openai() as (fake, seen),
        start_router(
            '[routes.r]\nfallback = ["sim:echo"]\n[providers.sim]\nkind = "simulated"\n'
        ) as url,
        openai_client(url) as client,
    ):
        (tmp_path / "router.toml").write_text(config(fake.url))
        async with httpx2.AsyncClient(base_url=url) as http:
            reloaded = (await http.post("/admin/reload")).json()
        assert reloaded["ok"] is True, reloaded
        whole = await client.chat.completions.create(model="r", messages=HI)
    assert whole.choices[0].message.content == "echo: a b c"
    assert [version for version, _ in seen] == ["2"]
