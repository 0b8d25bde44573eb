"""Remote secret references: ``aws-sm:`` and ``vault:`` against fakes on loopback.

The daemon takes a provider's key from each secrets manager and the fake upstream sees
it; a value past its ttl is fetched again and a rotated one takes effect (MockClock);
a failed refresh keeps the value in force and is reported once, in the status and in
the metrics.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import httpx2
import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry, generate_latest

from adapters import provider_kinds
from router import run_daemon
from router.ops._secret_store import RETRY, RemoteSecrets, SecretsCollector
from rules import Config, ConfigError, SecretRef, parse_config
from tests.fakes.openai_upstream import running
from tests.fakes.secrets_managers import SIGV4, FakeSecretsManager, FakeVault

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    from tests.fakes.openai_upstream import FakeOpenAI

HI = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}
VAULT_TOKEN = "hvs.test-token-2b7e1516"
AKID = "AKIDEXAMPLE12345"

AWS_CONFIG = """
[server]
listen = ["127.0.0.1:0"]
access_log = false
watch = false

[secrets]
ttl = "5m"

[providers.up]
kind = "openai"
base_url = "{url}"
api_key = "aws-sm:prod/openai#api_key"

[routes.chat]
fallback = ["up:gpt-4o"]
"""

VAULT_CONFIG = """
[server]
listen = ["127.0.0.1:0"]
access_log = false
watch = false

[secrets]
ttl = "5m"

[secrets.vault]
addr = "{vault}"
token = "env:VAULT_TOKEN"

[providers.up]
kind = "openai"
base_url = "{url}"
api_key = "vault:team/openai#api_key"

[routes.chat]
fallback = ["up:gpt-4o"]
"""


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Credentials and region from the environment only, whatever the machine has."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_SECRETS_MANAGER"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", AKID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-access-key-for-tests")
    monkeypatch.setenv("AWS_REGION", "us-east-1")


@pytest.fixture
async def fake_sm(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FakeSecretsManager]:
    app = FakeSecretsManager()
    async with running(app) as url:
        app.url = url
        monkeypatch.setenv("AWS_ENDPOINT_URL", url)
        yield app


@pytest.fixture
async def fake_vault(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeVault]:
    app = FakeVault(VAULT_TOKEN)
    async with running(app) as url:
        app.url = url
        monkeypatch.setenv("VAULT_TOKEN", VAULT_TOKEN)
        yield app


@asynccontextmanager
async def daemon(path: Path) -> AsyncIterator[httpx2.AsyncClient]:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, str(path)))
        async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:
            yield client
        nursery.cancel_scope.cancel()


async def test_a_provider_key_from_secrets_manager(
    tmp_path: Path, fake_sm: FakeSecretsManager, fake_openai: FakeOpenAI
) -> None:
    fake_sm.secrets["prod/openai"] = '{"api_key": "sk-from-aws-4f1c", "org": "x"}'
    fake_openai.key = "sk-from-aws-4f1c"
    path = tmp_path / "router.toml"
    path.write_text(AWS_CONFIG.format(url=fake_openai.url))
    async with daemon(path) as client:
        response = await client.post("/v1/chat/completions", json=HI)
        assert response.status_code == 200, response.text
        status = (await client.get("/admin/status")).json()
    assert status["secrets"]["remote"] == ["aws-sm:prod/openai#api_key"]
    assert "sk-from-aws" not in str(status)


async def test_the_request_to_secrets_manager_is_sigv4_signed(
    tmp_path: Path, fake_sm: FakeSecretsManager, fake_openai: FakeOpenAI
) -> None:
    fake_sm.secrets["prod/openai"] = '{"api_key": "sk-from-aws-4f1c"}'
    path = tmp_path / "router.toml"
    path.write_text(AWS_CONFIG.format(url=fake_openai.url))
    async with daemon(path):
        pass
    [seen] = fake_sm.received
    match = SIGV4.fullmatch(seen.headers["authorization"])
    assert match is not None, seen.headers["authorization"]
    assert match["key"] == AKID
    assert match["region"] == "us-east-1"
    assert {"host", "x-amz-date", "x-amz-target"} <= set(match["signed"].split(";"))
    assert match["date"] == seen.headers["x-amz-date"][:8]
    assert seen.body == b'{"SecretId":"prod/openai"}'


async def test_a_provider_key_from_vault(
    tmp_path: Path, fake_vault: FakeVault, fake_openai: FakeOpenAI
) -> None:
    fake_vault.secrets["secret/team/openai"] = {"api_key": "sk-from-vault-9a0b"}
    fake_openai.key = "sk-from-vault-9a0b"
    path = tmp_path / "router.toml"
    path.write_text(VAULT_CONFIG.format(url=fake_openai.url, vault=fake_vault.url))
    async with daemon(path) as client:
        response = await client.post("/v1/chat/completions", json=HI)
        assert response.status_code == 200, response.text
    [seen] = fake_vault.received
    assert seen.path == "/v1/secret/data/team/openai"


async def test_a_secret_that_cannot_be_fetched_stops_the_start(
    tmp_path: Path, fake_vault: FakeVault, fake_openai: FakeOpenAI
) -> None:
    path = tmp_path / "router.toml"
    path.write_text(VAULT_CONFIG.format(url=fake_openai.url, vault=fake_vault.url))
    expected = pytest.RaisesExc(ConfigError, match=r"openai#api_key: Vault answered HTTP 404")
    with pytest.RaisesGroup(expected, flatten_subgroups=True):
        async with daemon(path):
            pass


async def test_the_daemon_takes_a_rotated_value_after_the_ttl(
    tmp_path: Path,
    fake_vault: FakeVault,
    fake_openai: FakeOpenAI,
    autojump_clock: trio.testing.MockClock,
) -> None:
    fake_vault.secrets["secret/team/openai"] = {"api_key": "sk-old-11aa"}
    fake_openai.key = "sk-old-11aa"
    path = tmp_path / "router.toml"
    path.write_text(VAULT_CONFIG.format(url=fake_openai.url, vault=fake_vault.url))
    async with daemon(path) as client:
        assert (await client.post("/v1/chat/completions", json=HI)).status_code == 200
        fake_vault.secrets["secret/team/openai"] = {"api_key": "sk-new-22bb"}
        fake_openai.key = "sk-new-22bb"
        assert (await client.post("/v1/chat/completions", json=HI)).status_code == 502
        await trio.sleep(200)  # not yet due (the ttl is 5m)
        assert len(fake_vault.received) == 1
        for _ in range(10_000):  # the refresh, then the reload it asks for
            await trio.sleep(1)
            status = (await client.get("/admin/status")).json()
            if status["reload"]["counts"]["success"]:
                break
        assert status["secrets"]["refreshes"] == {"success": 2, "failure": 0}
        assert (await client.post("/v1/chat/completions", json=HI)).status_code == 200


def vault_config(url: str) -> tuple[SecretRef, Config]:
    config = parse_config(
        VAULT_CONFIG.format(url="http://127.0.0.1:9/v1", vault=url), kinds=provider_kinds()
    )
    return SecretRef.parse("vault:team/openai#api_key"), config


async def test_a_failed_refresh_keeps_the_value_and_is_reported(
    fake_vault: FakeVault,
    autojump_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake_vault.secrets["secret/team/openai"] = {"api_key": "sk-old-11aa"}
    ref, config = vault_config(fake_vault.url)
    token = SecretRef.parse("env:VAULT_TOKEN")
    store = RemoteSecrets()
    changes: list[str] = []
    refreshed = trio.Event()

    async def changed(reason: str) -> None:
        changes.append(reason)
        refreshed.set()

    assert await store.get(ref, config.secrets, VAULT_TOKEN) == "sk-old-11aa"
    async with trio.open_nursery() as nursery:
        current = lambda: (config, {token: VAULT_TOKEN})  # noqa: E731
        await nursery.start(store.run, current, changed)
        fake_vault.down = True
        fake_vault.secrets["secret/team/openai"] = {"api_key": "sk-new-22bb"}
        with caplog.at_level(logging.WARNING, "llm_router"):
            for _ in range(10_000):  # until two refreshes failed
                if len(fake_vault.received) == 3:
                    break
                await trio.sleep(1)
        assert changes == []
        assert store.counts == {"success": 1, "failure": 2}
        [stale] = store.status()["secrets"]["stale"]
        assert stale["secret"] == "vault:team/openai#api_key"
        assert "HTTP 500" in stale["error"]
        registry = CollectorRegistry()
        registry.register(SecretsCollector(store))
        text = generate_latest(registry).decode()
        assert "llm_router_secrets_stale 1.0" in text
        assert 'llm_router_secret_refreshes_total{result="failure"} 2.0' in text
        fake_vault.down = False  # the next try (sooner than the ttl) succeeds
        with trio.fail_after(RETRY + 1):
            await refreshed.wait()
        assert store.stale == 0
        nursery.cancel_scope.cancel()
    warnings = [r for r in caplog.records if "refresh failed" in r.getMessage()]
    assert len(warnings) == 1  # once per streak
    assert all("sk-" not in r.getMessage() for r in caplog.records)


async def test_check_fetches_remote_secrets_only_when_asked(
    tmp_path: Path, fake_vault: FakeVault, capsys: pytest.CaptureFixture[str]
) -> None:
    from router.ops._cli import main

    path = tmp_path / "router.toml"
    path.write_text(VAULT_CONFIG.format(url="http://127.0.0.1:9/v1", vault=fake_vault.url))
    assert await trio.to_thread.run_sync(main, ["check", str(path)]) == 0
    assert fake_vault.received == []
    assert await trio.to_thread.run_sync(main, ["check", "--fetch-secrets", str(path)]) == 1
    assert "providers.up.api_key: secret vault:team/openai#api_key: Vault answered HTTP 404" in (
        capsys.readouterr().err
    )
    fake_vault.secrets["secret/team/openai"] = {"api_key": "sk-from-vault-9a0b"}
    assert await trio.to_thread.run_sync(main, ["check", "--fetch-secrets", str(path)]) == 0
    assert "sk-from-vault" not in capsys.readouterr().out
