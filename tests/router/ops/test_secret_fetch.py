"""One remote secret fetched against the fake managers on loopback, and each way it can
fail: every failure a ConfigError naming the reference and what went wrong, never the
value or a token."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

import pytest

from router.ops._secret_fetch import AwsSigner, fetch_remote
from rules import ConfigError, SecretRef
from rules._secret_stores import AwsSecretsConfig, SecretsConfig, VaultConfig
from tests.router.ops.test_remote_secrets import VAULT_TOKEN, aws_env, fake_sm, fake_vault

if TYPE_CHECKING:
    from tests.fakes.secrets_managers import FakeSecretsManager, FakeVault

__all__ = ["aws_env", "fake_sm", "fake_vault"]  # fixtures, used by name

NO_AWS = AwsSigner(AwsSecretsConfig())


def vault_settings(addr: str | None, namespace: str | None = None) -> SecretsConfig:
    token = SecretRef.parse("env:VAULT_TOKEN")
    return SecretsConfig(vault=VaultConfig(token=token, addr=addr, namespace=namespace))


async def vault(ref: str, settings: SecretsConfig, token: str | None = VAULT_TOKEN) -> str:
    return await fetch_remote(SecretRef.parse(ref), settings, vault_token=token, aws=NO_AWS)


async def test_vault_reads_the_member_in_a_namespace(fake_vault: FakeVault) -> None:
    fake_vault.secrets["secret/team a/openai"] = {"api_key": "sk-vault-1", "n": 3}  # type: ignore[dict-item]
    settings = vault_settings(fake_vault.url + "/", namespace="ops")
    assert await vault("vault:/team a/openai#api_key", settings) == "sk-vault-1"
    (seen,) = fake_vault.received
    assert seen.path == "/v1/secret/data/team a/openai"  # quoted on the wire, one slash
    assert seen.headers["x-vault-namespace"] == "ops"
    with pytest.raises(ConfigError, match=r"the Vault secret has no string member 'n'$"):
        await vault("vault:team a/openai#n", settings)
    with pytest.raises(ConfigError, match=r"has no string member 'other'$"):
        await vault("vault:team a/openai#other", settings)


async def test_vault_without_a_token_or_an_address_says_which(
    fake_vault: FakeVault, monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(ConfigError, match=r"^secret vault:x#k: no \[secrets.vault\] token"):
        await vault("vault:x#k", SecretsConfig())
    with pytest.raises(ConfigError, match=r"no \[secrets.vault\] token to read it with"):
        await vault("vault:x#k", vault_settings(fake_vault.url), token=None)
    monkeypatch.delenv("VAULT_ADDR", raising=False)
    with pytest.raises(ConfigError, match=r"no Vault address \(secrets.vault.addr or VAULT_ADDR\)"):
        await vault("vault:x#k", vault_settings(None))
    fake_vault.secrets["secret/x"] = {"k": "from-env-addr"}
    monkeypatch.setenv("VAULT_ADDR", fake_vault.url)
    assert await vault("vault:x#k", vault_settings(None)) == "from-env-addr"
    with pytest.raises(ConfigError, match=r"Vault answered HTTP 403$") as caught:
        await vault("vault:x#k", vault_settings(None), token="hvs.wrong-token")
    assert "hvs." not in str(caught.value)


async def test_a_server_that_cannot_be_reached_is_named_by_the_error_type() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))  # bound, not listening: refused
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ConfigError) as caught:
            await vault("vault:x#k", vault_settings(url))
    assert str(caught.value) == "secret vault:x#k: cannot reach the server (ConnectError)"


async def aws(ref: str, signer: AwsSigner | None = None) -> str:
    return await fetch_remote(
        SecretRef.parse(ref),
        SecretsConfig(),
        vault_token=None,
        aws=signer or AwsSigner(AwsSecretsConfig()),
    )


async def test_secrets_manager_answers_whole_or_a_member_or_why_not(
    fake_sm: FakeSecretsManager,
) -> None:
    fake_sm.secrets["plain"] = "sk-plain-7"
    fake_sm.secrets["list"] = '["sk-in-a-list"]'
    assert await aws("aws-sm:plain") == "sk-plain-7"
    with pytest.raises(
        ConfigError, match=r"^secret aws-sm:plain#k: the secret is not a JSON object$"
    ):
        await aws("aws-sm:plain#k")
    with pytest.raises(ConfigError, match=r"the secret's JSON is not a JSON object$"):
        await aws("aws-sm:list#k")
    with pytest.raises(
        ConfigError, match=r"Secrets Manager answered HTTP 400 \(ResourceNotFoundException\)$"
    ):
        await aws("aws-sm:absent")
    fake_sm.down = True  # a 500 without an AWS error type
    with pytest.raises(ConfigError, match=r"answered HTTP 500 \(an error\)$"):
        await aws("aws-sm:plain")


async def test_secrets_manager_without_a_region_or_credentials_says_which(
    aws_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION", raising=False)
    with pytest.raises(ConfigError, match=r"^secret aws-sm:x: no AWS region \(secrets.aws.region"):
        await aws("aws-sm:x")
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    signer = AwsSigner(AwsSecretsConfig(region="eu-west-1"))
    with pytest.raises(ConfigError, match=r"^secret aws-sm:x: no AWS credentials"):
        await aws("aws-sm:x", signer)
