"""TLS and proxies end to end: the daemon, started on a config, in front of a fake
OpenAI upstream behind a TLS server of our own (and proxies of our own), with the
official SDK as the client."""

from __future__ import annotations

import base64
import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import httpx2
import pytest
import trustme

from adapters import provider_kinds
from router.upstream._providers import build_upstream
from rules import parse_config
from tests.conftest import RouterFactory, openai_client
from tests.fakes.tunnels import ConnectProxy, ForwardProxy, TLSFront, serving, serving_tls

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.fakes.openai_upstream import FakeOpenAI

HI: Any = [{"role": "user", "content": "hi"}]
KINDS = provider_kinds()


def config(base_url: str, extra: str = "") -> str:
    return f"""
[server]
access_log = false
watch = false

[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{base_url}"
api_key = "env:LLM_ROUTER_TEST_KEY"
{extra}

[routes.chat]
fallback = ["up:gpt-4o"]
"""


@pytest.fixture(autouse=True)
def upstream_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_ROUTER_TEST_KEY", "sk-test-9f8e7d6c5b4a")


@asynccontextmanager
async def behind_tls(fake: FakeOpenAI, front: TLSFront) -> AsyncIterator[int]:
    """The fake, behind ``front``; yields the TLS port."""
    async with serving_tls(front.handle, front.context) as port:
        yield port


def fake_port(fake: FakeOpenAI) -> int:
    return int(fake.url.rpartition(":")[2].split("/")[0])


async def ask(url: str) -> str | None:
    async with openai_client(url) as client:
        answer = await client.chat.completions.create(model="chat", messages=HI)
    return answer.choices[0].message.content


async def failure(url: str) -> tuple[int, str]:
    """A request that fails: its status and error message."""
    async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:
        response = await client.post("/v1/chat/completions", json={"model": "chat", "messages": HI})
    return response.status_code, response.json()["error"]["message"]


async def test_a_private_ca_is_trusted_through_ca_file(
    fake_openai: FakeOpenAI, start_router: RouterFactory, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "private-ca.pem"))
    front = TLSFront(ca, fake_port(fake_openai))
    async with behind_tls(fake_openai, front) as port:
        toml = config(f"https://127.0.0.1:{port}/v1", 'tls = { ca_file = "private-ca.pem" }')
        async with start_router(toml) as url:
            assert await ask(url) == "echo: hi"
            assert await ask(url) == "echo: hi"
    assert len(front.accepted) == 1  # kept alive


async def test_an_untrusted_certificate_is_a_502_that_says_so(
    fake_openai: FakeOpenAI, start_router: RouterFactory
) -> None:
    front = TLSFront(trustme.CA(), fake_port(fake_openai))
    async with (
        behind_tls(fake_openai, front) as port,
        start_router(config(f"https://127.0.0.1:{port}/v1")) as url,
    ):
        status, message = await failure(url)
    assert status == 502
    assert "certificate verify failed" in message
    assert "cannot connect" not in message
    assert fake_openai.received == []


async def test_verify_false_accepts_any_certificate_and_warns(
    fake_openai: FakeOpenAI, start_router: RouterFactory, caplog: pytest.LogCaptureFixture
) -> None:
    front = TLSFront(trustme.CA(), fake_port(fake_openai))
    caplog.set_level(logging.WARNING, logger="llm_router")
    async with behind_tls(fake_openai, front) as port:
        toml = config(f"https://127.0.0.1:{port}/v1", "tls = { verify = false }")
        async with start_router(toml) as url:
            assert await ask(url) == "echo: hi"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("providers.up.tls.verify = false" in w and "NOT" in w for w in warnings)


@pytest.mark.parametrize("key_in", ["file", "env"])
async def test_a_client_certificate_is_shown_where_one_is_required(
    key_in: str,
    fake_openai: FakeOpenAI,
    start_router: RouterFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ca, client_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    issued = client_ca.issue_cert("router.test", common_name="router.test")
    issued.cert_chain_pems[0].write_to_path(str(tmp_path / "client.pem"))
    if key_in == "file":
        issued.private_key_pem.write_to_path(str(tmp_path / "client.key"))
        (tmp_path / "client.key").chmod(0o600)
        key = "file:client.key"
    else:
        monkeypatch.setenv("LLM_ROUTER_CLIENT_KEY", issued.private_key_pem.bytes().decode())
        key = "env:LLM_ROUTER_CLIENT_KEY"
    front = TLSFront(ca, fake_port(fake_openai), client_ca=client_ca)
    async with behind_tls(fake_openai, front) as port:
        tls = f'tls = {{ ca_file = "ca.pem", cert_file = "client.pem", key_file = "{key}" }}'
        async with start_router(config(f"https://127.0.0.1:{port}/v1", tls)) as url:
            assert await ask(url) == "echo: hi"
    assert [a.client_subject for a in front.accepted] == ["router.test"]


async def test_without_the_client_certificate_the_502_says_so(
    fake_openai: FakeOpenAI, start_router: RouterFactory, tmp_path: Path
) -> None:
    ca, client_ca = trustme.CA(), trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    front = TLSFront(ca, fake_port(fake_openai), client_ca=client_ca)
    async with behind_tls(fake_openai, front) as port:
        toml = config(f"https://127.0.0.1:{port}/v1", 'tls = { ca_file = "ca.pem" }')
        async with start_router(toml) as url:
            status, message = await failure(url)
    assert status == 502
    assert "certificate required" in message
    assert front.accepted == []


async def test_a_tunnel_through_a_proxy_named_by_a_secret(
    fake_openai: FakeOpenAI,
    start_router: RouterFactory,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    front = TLSFront(ca, fake_port(fake_openai))
    proxy = ConnectProxy()
    async with behind_tls(fake_openai, front) as port, serving(proxy.handle) as proxy_port:
        monkeypatch.setenv(
            "LLM_ROUTER_EGRESS_PROXY", f"http://egress:s3cr3t-proxy-pw@127.0.0.1:{proxy_port}"
        )
        toml = config(
            f"https://upstream.test:{port}/v1",  # only the proxy can reach it
            'tls = { ca_file = "ca.pem" }\nproxy = "env:LLM_ROUTER_EGRESS_PROXY"',
        )
        async with start_router(toml) as url:
            assert await ask(url) == "echo: hi"
    assert proxy.targets == [f"upstream.test:{port}"]
    assert proxy.authorizations == ["Basic " + base64.b64encode(b"egress:s3cr3t-proxy-pw").decode()]
    assert front.server_names == ["upstream.test"]
    assert fake_openai.received[0].headers["authorization"] == "Bearer sk-test-9f8e7d6c5b4a"
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "s3cr3t-proxy-pw" not in logged


async def test_plain_http_is_forwarded_by_the_environment_proxy(
    fake_openai: FakeOpenAI, start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = ForwardProxy()
    async with serving(proxy.handle) as proxy_port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")  # the SDK reads them too
        monkeypatch.delenv("http_proxy", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        base = f"http://upstream.test:{fake_port(fake_openai)}/v1"
        async with start_router(config(base, 'proxy = "env"')) as url:
            assert await ask(url) == "echo: hi"
    assert proxy.targets == [f"{base}/chat/completions"]
    assert proxy.authorizations == [None]


async def test_a_refused_tunnel_is_a_502_naming_the_proxy_status(
    start_router: RouterFactory,
) -> None:
    proxy = ConnectProxy(refuse=407)
    async with serving(proxy.handle) as proxy_port:
        toml = config("https://upstream.test/v1", f'proxy = "http://127.0.0.1:{proxy_port}"')
        async with start_router(toml) as url:
            status, message = await failure(url)
    assert status == 502
    assert "refused the tunnel to upstream.test:443: HTTP 407" in message


async def test_health_probes_use_the_providers_tls_and_proxy(
    fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    front = TLSFront(ca, fake_port(fake_openai))
    proxy = ConnectProxy()
    async with behind_tls(fake_openai, front) as port, serving(proxy.handle) as proxy_port:
        extra = f'tls = {{ ca_file = "{tmp_path / "ca.pem"}" }}\nproxy = "http://127.0.0.1:{proxy_port}"'
        loaded = parse_config(config(f"https://upstream.test:{port}/v1", extra), kinds=KINDS)
        upstream = build_upstream("up", loaded.providers["up"], loaded)
        await upstream.probe()  # raises on failure
        await upstream.aclose()
    assert proxy.targets == [f"upstream.test:{port}"]
    assert fake_openai.received[0].method == "GET"
