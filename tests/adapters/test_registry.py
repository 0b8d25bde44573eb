"""The registry of provider kinds: one spec per kind, the hosts' table, lazy imports."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime
from typing import Any, Protocol, runtime_checkable

import pytest

from adapters import (
    OpenAIAdapter,
    OpenAIProvider,
    ProviderSpec,
    UpstreamLimits,
    adapter_factory,
    known_kinds,
    provider_kinds,
    provider_spec,
)
from adapters._compat import COMPATIBLE_HOSTS
from adapters._registry import Registry
from rules import ConfigError, parse_config


@runtime_checkable
class HasBaseURL(Protocol):
    base_url: str


BUILT_IN = [
    "ai21",
    "anthropic",
    "azure",
    "bedrock",
    "cohere",
    "deepseek",
    "fireworks",
    "gemini",
    "groq",
    "huggingface",
    "mistral",
    "ollama",
    "openai",
    "openai_compatible",
    "openrouter",
    "replicate",
    "runpod",
    "simulated",
    "together",
    "vllm",
]


def test_every_built_in_kind_has_one_spec_naming_its_config_class() -> None:
    assert list(known_kinds()) == BUILT_IN
    kinds = provider_kinds()
    for kind in BUILT_IN:
        spec = provider_spec(kind)
        assert spec.kind == kind
        assert kinds[kind] is spec.config


@pytest.mark.parametrize("kind", sorted(COMPATIBLE_HOSTS))
def test_a_named_host_is_a_row_not_a_class(kind: str) -> None:
    host = COMPATIBLE_HOSTS[kind]
    spec = provider_spec(kind)
    assert spec.config is OpenAIProvider
    assert spec.default_base_url == host.base_url
    config = parse_config(
        f'[providers.p]\nkind = "{kind}"\n[routes.r]\nfallback = ["p:m"]\n',
        kinds=provider_kinds(),
    )
    assert config.providers["p"] == OpenAIProvider(kind=kind, base_url=host.base_url)
    adapter = adapter_factory(kind)("p", {"base_url": host.base_url, "kind": kind})
    assert isinstance(adapter, OpenAIAdapter)
    assert adapter.url == host.base_url + "/chat/completions"


def test_default_base_urls_are_the_config_defaults() -> None:
    for kind in BUILT_IN:
        spec = provider_spec(kind)
        if spec.default_base_url is None:
            continue
        required: dict[str, Any] = {"runpod": {"endpoint_id": "abc123"}}.get(kind, {})
        config = spec.config(kind=kind, **required)
        assert isinstance(config, HasBaseURL)  # each kind's own field, not ProviderConfig's
        assert config.base_url == spec.default_base_url


def test_rate_limit_parsers_by_kind() -> None:
    now = datetime(2025, 3, 1, 12, tzinfo=UTC)
    openai = [("x-ratelimit-remaining-requests", "0"), ("x-ratelimit-reset-requests", "2s")]
    anthropic = [
        ("anthropic-ratelimit-requests-remaining", "0"),
        ("anthropic-ratelimit-requests-reset", "2025-03-01T12:00:02Z"),
    ]
    by_kind = {}
    for kind in BUILT_IN:
        parse = provider_spec(kind).rate_limits
        if parse is not None:
            by_kind[kind] = parse(openai, now) or parse(anthropic, now)
    expected = UpstreamLimits(0, None, 2.0)
    assert by_kind == {
        kind: expected
        for kind in (
            "anthropic",
            "azure",
            "deepseek",
            "fireworks",
            "groq",
            "openai",
            "openai_compatible",
            "openrouter",
            "together",
        )
    }


def test_tracing_names() -> None:
    names = {kind: provider_spec(kind).tracing_name for kind in BUILT_IN}
    assert {k: v for k, v in names.items() if k != v} == {
        "azure": "az.ai.openai",
        "bedrock": "aws.bedrock",
        "gemini": "gcp.gemini",
        "mistral": "mistral_ai",
    }


def test_a_factory_named_by_path_is_imported_when_first_asked_for() -> None:
    code = (
        "import sys, adapters; from rules import parse_config; "
        'parse_config(\'[providers.b]\\nkind = "bedrock"\\nregion = "us-east-1"\\n'
        '[routes.r]\\nfallback = ["b:m"]\\n\', kinds=adapters.provider_kinds()); '
        "adapters.adapter_factory('openai'); "
        "print('botocore' in sys.modules, 'adapters._bedrock' in sys.modules); "
        "adapters.adapter_factory('bedrock'); "
        "print('botocore' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.split() == ["False", "False", "True"]


def test_unknown_and_local_kinds_have_no_factory() -> None:
    with pytest.raises(KeyError):
        adapter_factory("nope")
    with pytest.raises(KeyError):
        adapter_factory("simulated")  # answered in-process, not over HTTP


class _EntryPoint:
    def __init__(self, name: str, value: object) -> None:
        self.name, self.value, self._value = name, f"plugin_mod:{name}", value

    def load(self) -> object:
        if isinstance(self._value, Exception):
            raise self._value
        return self._value


@pytest.mark.parametrize(
    ("loaded", "message"),
    [
        (ImportError("no module named plugin_mod"), "cannot load: ImportError: no module"),
        (lambda name, settings: None, "names function, not a ProviderSpec"),
        (ProviderSpec("openai", OpenAIProvider, None), 'kind "openai" is taken'),
    ],
)
def test_a_broken_plugin_is_a_config_error(
    monkeypatch: pytest.MonkeyPatch, loaded: object, message: str
) -> None:
    monkeypatch.setattr(
        "adapters._registry.entry_points", lambda group: [_EntryPoint("bad", loaded)]
    )
    with pytest.raises(ConfigError) as info:
        Registry().load_plugins()
    assert str(info.value).startswith('plugin "bad" (plugin_mod:bad): ')
    assert message in str(info.value)
