"""``rediss://``: the shared state over TLS to a Redis whose certificate a private CA
signed (``shared_state.tls``), with and without a client certificate; and a Redis the
daemon must not trust, which leaves it serving on its own accounting and says why."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import pytest
import trustme

from .conftest import REDIS, RedisServer
from .test_shared_e2e import ask, config, status, two_daemons

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.fakes.openai_upstream import FakeOpenAI


@pytest.fixture(autouse=True)
def team_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "team-key-1")


@pytest.fixture
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(params=["server certificate", "client certificate too"])
async def tls_redis(
    request: pytest.FixtureRequest, tmp_path: Path, ca: trustme.CA
) -> AsyncIterator[RedisServer]:
    """A redis-server reached only by TLS, its certificate signed by ``ca``; asking
    for the clients' certificates too (signed by the same CA) in the second case."""
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    cert = ca.issue_cert("127.0.0.1")
    files = {name: tmp_path / f"{name}.pem" for name in ("ca", "cert", "key")}
    ca.cert_pem.write_to_path(files["ca"])
    cert.cert_chain_pems[0].write_to_path(files["cert"])
    cert.private_key_pem.write_to_path(files["key"])
    mutual = request.param == "client certificate too"
    extra = ["--tls-cert-file", str(files["cert"]), "--tls-key-file", str(files["key"])]
    extra += ["--tls-ca-cert-file", str(files["ca"])]
    extra += ["--tls-auth-clients", "yes" if mutual else "no"]
    context = ssl.create_default_context()
    ca.configure_trust(context)
    if mutual:
        client = ca.issue_cert("llm-router")
        client.configure_cert(context)
    server = RedisServer(tmp_path, *extra, tls=context)
    await server.start()
    try:
        yield server
    finally:
        server.stop()


def tls_config(upstream: str, redis: RedisServer, ca: trustme.CA, folder: Path, rpm: int) -> str:
    """The e2e config, its Redis reached by TLS trusting ``ca`` (and showing a client
    certificate when the server asks for one)."""
    ca_file = folder / "trusted-ca.pem"
    ca.cert_pem.write_to_path(ca_file)
    tls = f'ca_file = "{ca_file}"'
    if "--tls-auth-clients" in redis.extra and "yes" in redis.extra:
        client = ca.issue_cert("llm-router")
        client.cert_chain_pems[0].write_to_path(folder / "client.pem")
        client.private_key_pem.write_to_path(folder / "client.key")
        tls += f', cert_file = "{folder / "client.pem"}", key_file = "file:{folder / "client.key"}"'
    toml = config(upstream, redis.url, rpm=rpm)
    return toml.replace('timeout = "2s"', f'timeout = "2s", tls = {{ {tls} }}')


async def test_two_daemons_share_a_keys_window_over_tls(
    tmp_path: Path, fake_openai: FakeOpenAI, tls_redis: RedisServer, ca: trustme.CA
) -> None:
    assert tls_redis.url.startswith("rediss://")
    toml = tls_config(fake_openai.url, tls_redis, ca, tmp_path, rpm=3)
    async with two_daemons(tmp_path, toml) as urls:
        answers = [await ask(urls[i % 2]) for i in range(5)]
        report = await status(urls[1])
    assert [s for s, _ in answers] == [200] * 3 + [429] * 2  # one window, over TLS
    assert {h["code"] for _, h in answers[3:]} == {"key_rate_limited"}
    assert report["shared_state"]["state"] == "ok"
    assert report["shared_state"]["url"] == tls_redis.url


async def test_a_redis_signed_by_another_ca_is_not_trusted_and_fails_no_request(
    tmp_path: Path,
    fake_openai: FakeOpenAI,
    tls_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stranger = trustme.CA()  # not the CA that signed the server's certificate
    toml = tls_config(fake_openai.url, tls_redis, stranger, tmp_path, rpm=3)
    async with two_daemons(tmp_path, toml) as urls:
        answers = [await ask(url) for url in urls * 2]
        report = await status(urls[0])
    # Each daemon counts on its own: two requests each, within its rpm of 3.
    assert [s for s, _ in answers] == [200] * 4
    shared = report["shared_state"]
    assert shared["state"] == "degraded"
    assert "certificate verify failed" in shared["reason"]
    assert "TLS handshake failed: certificate verify failed" in caplog.text
    assert "serving on this daemon's own accounting" in caplog.text
