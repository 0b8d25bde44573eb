"""Provider kinds: one `ProviderSpec` each, built in or from a plugin.

A spec names everything the daemon knows about a kind: its ``[providers.*]`` config
class, the factory of its adapter, its default base URL, the parser of its rate-limit
headers and its name in traces. The config loader is handed `provider_kinds()`; the
daemon reads the rest from `provider_spec`.

Third-party kinds come from the ``llm_router.adapters`` entry-point group: each entry
point names a `ProviderSpec`, and is loaded before a config is parsed (by
`provider_kinds`), so the plugin's ``kind`` and its config class are understood there.

A factory takes the provider's name and its settings as plain values (its config
class's fields, secret references already resolved by the daemon) and returns an
:class:`HTTPAdapter`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from functools import partial
from importlib.metadata import entry_points
from typing import Any

import attrs

from rules import ConfigError, ProviderConfig

from ._base import HTTPAdapter
from ._compat import COMPATIBLE_HOSTS, IDENTITY, CompatibleHost, Fixups
from ._configs import (
    ANTHROPIC_URL,
    COHERE_URL,
    GEMINI_URL,
    OLLAMA_URL,
    OPENAI_URL,
    AnthropicProvider,
    AzureProvider,
    BedrockProvider,
    CohereProvider,
    GeminiProvider,
    OllamaProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
    SimulatedProvider,
)
from ._configs_hosted import (
    HF_ROUTER_URL,
    REPLICATE_URL,
    RUNPOD_URL,
    HuggingFaceProvider,
    ReplicateProvider,
    RunPodProvider,
)
from ._openai import OpenAIAdapter
from ._ratelimit_headers import (
    RateLimitParser,
    parse_anthropic_headers,
    parse_openai_headers,
)

__all__ = [
    "ENTRY_POINT_GROUP",
    "AdapterFactory",
    "ProviderSpec",
    "adapter_factory",
    "known_kinds",
    "provider_kinds",
    "provider_spec",
    "register_adapter",
]

AdapterFactory = Callable[[str, Mapping[str, Any]], HTTPAdapter]

ENTRY_POINT_GROUP = "llm_router.adapters"


@attrs.frozen
class ProviderSpec:
    """Everything the daemon knows about one provider ``kind``.

    Attributes:
        kind: The ``kind`` of ``[providers.*]`` blocks it serves.
        config: Their config class (a subclass of ``rules.ProviderConfig``, or of
            ``rules.HTTPProvider`` for a provider reached over HTTP).
        factory: ``(name, settings) -> HTTPAdapter``, or ``"module:function"`` to import
            it when first needed (a daemon that uses only OpenAI never imports
            botocore); None for a kind answered in-process (``simulated``).
        default_base_url: Where it is reached when the block gives no ``base_url``.
        rate_limits: The parser of its rate-limit response headers, if it sends any.
        system: Its ``gen_ai.system`` name in traces; empty: the kind itself.
    """

    kind: str
    config: type[ProviderConfig]
    factory: AdapterFactory | str | None
    default_base_url: str | None = None
    rate_limits: RateLimitParser | None = None
    system: str = ""

    @property
    def tracing_name(self) -> str:
        return self.system or self.kind

    def adapter_factory(self) -> AdapterFactory:
        """The factory, imported if the spec names it by path. KeyError for none."""
        if self.factory is None:
            raise KeyError(self.kind)
        if isinstance(self.factory, str):
            module, _, name = self.factory.partition(":")
            factory: AdapterFactory = getattr(importlib.import_module(module), name)
            return factory
        return self.factory


def _openai(
    name: str,
    settings: Mapping[str, Any],
    *,
    fixups: Fixups = IDENTITY,
    stream_usage: bool,
    prefill: bool = False,
    openai_limits: bool = False,
    text_completions: bool = True,
) -> HTTPAdapter:
    headers = dict(settings.get("headers") or {})
    if settings.get("organization"):
        headers["OpenAI-Organization"] = settings["organization"]
    return OpenAIAdapter(
        base_url=settings["base_url"],
        api_key=settings.get("api_key"),
        headers=headers,
        name=name,
        fixups=fixups,
        stream_usage=stream_usage,
        prefill=prefill,
        openai_limits=openai_limits,
        text_completions=text_completions,
    )


def _compatible(host: CompatibleHost) -> ProviderSpec:
    """A named OpenAI-compatible host: OpenAI's adapter with the host's table row."""
    return ProviderSpec(
        host.kind,
        OpenAIProvider,
        partial(
            _openai,
            fixups=host.fixups,
            stream_usage=host.stream_usage,
            prefill=host.prefill,
            text_completions=host.text_completions,
        ),
        default_base_url=host.base_url,
        rate_limits=parse_openai_headers if host.rate_limits else None,
        system=host.system or "",
    )


BUILT_IN: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        "openai",
        OpenAIProvider,
        partial(_openai, stream_usage=True, openai_limits=True),
        default_base_url=OPENAI_URL,
        rate_limits=parse_openai_headers,
    ),
    # Generic compatible hosts may not take stream_options.include_usage.
    ProviderSpec(
        "openai_compatible",
        OpenAICompatibleProvider,
        partial(_openai, stream_usage=False),
        rate_limits=parse_openai_headers,
    ),
    ProviderSpec("simulated", SimulatedProvider, None),
    ProviderSpec(
        "anthropic",
        AnthropicProvider,
        "adapters._anthropic:make_adapter",
        default_base_url=ANTHROPIC_URL,
        rate_limits=parse_anthropic_headers,
    ),
    ProviderSpec(
        "gemini",
        GeminiProvider,
        "adapters._gemini:make_adapter",
        default_base_url=GEMINI_URL,
        system="gcp.gemini",
    ),
    ProviderSpec(
        "bedrock", BedrockProvider, "adapters._bedrock:make_adapter", system="aws.bedrock"
    ),
    ProviderSpec(
        "azure",
        AzureProvider,
        "adapters._azure:make_adapter",
        rate_limits=parse_openai_headers,
        system="az.ai.openai",
    ),
    ProviderSpec(
        "ollama", OllamaProvider, "adapters._ollama:make_adapter", default_base_url=OLLAMA_URL
    ),
    ProviderSpec(
        "cohere", CohereProvider, "adapters._cohere:make_adapter", default_base_url=COHERE_URL
    ),
    ProviderSpec(
        "huggingface",
        HuggingFaceProvider,
        "adapters._huggingface:make_adapter",
        default_base_url=HF_ROUTER_URL,
    ),
    ProviderSpec(
        "replicate",
        ReplicateProvider,
        "adapters._replicate:make_adapter",
        default_base_url=REPLICATE_URL,
    ),
    ProviderSpec(
        "runpod", RunPodProvider, "adapters._runpod:make_adapter", default_base_url=RUNPOD_URL
    ),
    *(_compatible(host) for host in COMPATIBLE_HOSTS.values()),
)


@attrs.define
class Registry:
    """Specs by kind, and which entry points have been loaded into them."""

    specs: dict[str, ProviderSpec] = attrs.Factory(lambda: {s.kind: s for s in BUILT_IN})
    loaded: set[str] = attrs.Factory(set)

    def register(self, spec: ProviderSpec) -> None:
        self.specs[spec.kind] = spec

    def load_plugins(self) -> None:
        """Register every entry point of the group not loaded yet.

        Raises:
            ConfigError: An entry point fails to load or names no `ProviderSpec`.
        """
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.value in self.loaded:
                continue
            where = f'plugin "{ep.name}" ({ep.value})'
            try:
                spec = ep.load()
            except Exception as exc:
                raise ConfigError(f"{where}: cannot load: {type(exc).__name__}: {exc}") from exc
            if not isinstance(spec, ProviderSpec):
                raise ConfigError(f"{where}: names {type(spec).__name__}, not a ProviderSpec")
            if spec.kind in self.specs and self.specs[spec.kind] is not spec:
                raise ConfigError(f'{where}: kind "{spec.kind}" is taken')
            self.specs[spec.kind] = spec
            self.loaded.add(ep.value)


#: The process's registry (tests swap it for a copy).
REGISTRY = Registry()


def register_adapter(spec: ProviderSpec) -> None:
    """Make ``spec.kind`` available to ``[providers.*]`` blocks (without a plugin)."""
    REGISTRY.register(spec)


def provider_kinds() -> dict[str, type[ProviderConfig]]:
    """``kind`` -> config class, plugins loaded first: what the config loader is given.

    Raises:
        ConfigError: A plugin fails to load.
    """
    REGISTRY.load_plugins()
    return {kind: spec.config for kind, spec in REGISTRY.specs.items()}


def provider_spec(kind: str) -> ProviderSpec:
    """The spec of ``kind``: built in, registered, or from a plugin loaded by
    `provider_kinds` (as every parsed config's kinds were). Raises KeyError."""
    return REGISTRY.specs[kind]


def adapter_factory(kind: str) -> AdapterFactory:
    """The adapter factory for ``kind``. Raises KeyError if no adapter knows it."""
    return provider_spec(kind).adapter_factory()


def known_kinds() -> tuple[str, ...]:
    REGISTRY.load_plugins()
    return tuple(sorted(REGISTRY.specs))
