"""Upstreams built from the config, and what stops the build: every provider's unreadable
secret reported at once, each by its key path; a Bedrock provider without keys taking
the usual AWS credential chain, or saying it found none."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adapters import provider_kinds
from router.upstream._providers import build_upstreams
from rules import ConfigError, parse_config

if TYPE_CHECKING:
    from pathlib import Path

ROUTE = '[routes.chat]\nfallback = ["a:m"]\n'


def test_every_unreadable_secret_is_reported_by_its_key_path(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("BU_MISSING_A", raising=False)
    monkeypatch.delenv("BU_MISSING_B", raising=False)
    config = parse_config(
        '[providers.a]\nkind = "openai"\napi_key = "env:BU_MISSING_A"\n\n'
        '[providers.b]\nkind = "anthropic"\napi_key = "env:BU_MISSING_B"\n\n'
        '[providers.c]\nkind = "simulated"\n\n' + ROUTE,
        kinds=provider_kinds(),
    )
    with pytest.raises(ConfigError) as caught:
        build_upstreams(config)
    errors = caught.value.errors
    assert len(errors) == 2
    assert errors[0].startswith("providers.a.api_key: ")
    assert errors[1].startswith("providers.b.api_key: ")
    assert all("BU_MISSING" in e for e in errors)  # the variable's name, not a value


def bedrock(region: str = "us-west-2") -> str:
    return f'[providers.a]\nkind = "bedrock"\nregion = "{region}"\n\n' + ROUTE


@pytest.fixture
def no_aws_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> pytest.MonkeyPatch:
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_WEB_IDENTITY_TOKEN_FILE", raising=False)
    return monkeypatch


def test_bedrock_without_keys_takes_the_aws_chain_or_says_it_found_none(
    no_aws_files: pytest.MonkeyPatch,
) -> None:
    config = parse_config(bedrock(), kinds=provider_kinds())
    with pytest.raises(
        ConfigError, match=r"^providers.a: no AWS credentials: set aws_access_key_id"
    ):
        build_upstreams(config)
    no_aws_files.setenv("AWS_ACCESS_KEY_ID", "AKIDCHAIN0001")
    no_aws_files.setenv("AWS_SECRET_ACCESS_KEY", "chain-secret")
    upstreams = build_upstreams(config)
    assert upstreams["a"].kind == "bedrock"
    assert "chain-secret" not in repr(upstreams["a"])
