"""``aws-sm:`` and ``vault:`` references and the ``[secrets]`` table, as ``check`` sees
them: parsed and checked with key paths, never fetched, never echoed."""

from functools import partial

import pytest

from adapters import provider_kinds
from rules import ConfigError, SecretRef, parse_config

parse = partial(parse_config, kinds=provider_kinds())

ROUTE = """
[routes.chat]
fallback = ["sim:echo"]

[providers.sim]
kind = "simulated"
"""

VAULT = """
[secrets.vault]
addr = "https://vault.example:8200"
token = "env:VAULT_TOKEN"
"""


def errors(text: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        parse(text + ROUTE)
    return list(info.value.errors)


def provider(api_key: str) -> str:
    return f'[providers.up]\nkind = "openai"\napi_key = "{api_key}"\n'


def test_references_parse_into_name_and_key() -> None:
    config = parse(provider("aws-sm:prod/openai#api_key") + VAULT + ROUTE)
    ref = config.providers["up"].api_key  # type: ignore[attr-defined]
    assert ref == SecretRef("aws-sm", "prod/openai#api_key")
    assert (ref.remote, ref.remote_name, ref.key) == (True, "prod/openai", "api_key")
    whole = SecretRef.parse("aws-sm:arn:aws:secretsmanager:us-east-1:1:secret:k-AbC")
    assert whole.remote_name == "arn:aws:secretsmanager:us-east-1:1:secret:k-AbC"
    assert whole.key is None
    vault = SecretRef.parse("vault:team/openai#key")
    assert (vault.remote_name, vault.key) == ("team/openai", "key")
    assert config.secrets.vault is not None
    assert config.secrets.vault.mount == "secret"
    assert config.secrets.ttl == 300.0


def test_a_remote_reference_is_not_read_as_a_file() -> None:
    with pytest.raises(ConfigError, match="fetched by the daemon"):
        SecretRef.parse("vault:a#b").resolve()


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("aws-sm:", "aws-sm: needs a secret name or ARN"),
        ("aws-sm:name#", "aws-sm: needs a secret name or ARN"),
        ("vault:team/openai", "vault: needs a path and a key"),
        ("vault:#key", "vault: needs a path and a key"),
    ],
)
def test_malformed_references_name_their_key_path(ref: str, message: str) -> None:
    [line] = errors(provider(ref) + VAULT)
    assert line.startswith(f"providers.up.api_key: {message}")


def test_a_vault_reference_needs_the_vault_table() -> None:
    assert errors(provider("vault:team/openai#key")) == [
        "providers.up.api_key: a vault: reference needs a [secrets.vault] table"
    ]


def test_the_secrets_table_is_checked() -> None:
    text = '[secrets]\nttl = "soon"\n[secrets.vault]\naddr = "vault:8200"\ntoken = "env:T"\n'
    assert sorted(errors(text)) == [
        'secrets.ttl: "soon" is not a duration',
        "secrets.vault.addr: must be an http:// or https:// URL",
    ]
    assert errors('[secrets.vault]\ntoken = "vault:x#y"\n') == [
        "secrets.vault.token: the Vault token must be env:, file: or cred:"
    ]
    assert errors("[secrets.vault]\naddr = 'http://v:1'\n") == [
        "secrets.vault.token: required key missing"
    ]
    assert errors("[secrets]\nregion = 'x'\n") == ["secrets.region: unknown key"]
