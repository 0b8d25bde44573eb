"""Each built-in kind's ``[providers.NAME]`` block: one attrs class per adapter.

Built from the shared parts in ``rules`` (fields, validators, `HTTPProvider`), and
named by the kind's spec in ``_kinds``; the loader picks the class by ``kind``. This
module imports no adapter, so parsing a config costs no botocore.

The OpenAI-compatible hosts known by name (``vllm``, ``groq``, ...) share
`OpenAIProvider`: only their default base URL differs, read from the hosts' table.
"""

from typing import Any, Literal

import attrs

from rules import (
    Duration,
    FieldError,
    HTTPProvider,
    ProviderConfig,
    SecretRef,
    fraction,
    model_name,
    positive,
    url_field,
)

from ._compat import COMPATIBLE_HOSTS

__all__ = [
    "ANTHROPIC_URL",
    "COHERE_URL",
    "GEMINI_URL",
    "OLLAMA_URL",
    "OPENAI_URL",
    "AnthropicProvider",
    "AzureProvider",
    "BedrockProvider",
    "CohereProvider",
    "GeminiProvider",
    "LatencySpec",
    "OllamaProvider",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "SimulatedProvider",
]

# Default base URLs: the config classes' defaults, the specs' and the adapters'.
OPENAI_URL = "https://api.openai.com/v1"
ANTHROPIC_URL = "https://api.anthropic.com"
GEMINI_URL = "https://generativelanguage.googleapis.com/v1beta"
OLLAMA_URL = "http://127.0.0.1:11434"
COHERE_URL = "https://api.cohere.com"


@attrs.frozen
class LatencySpec:
    """A simulated latency distribution, by its median and 99th percentile (seconds)."""

    median: Duration = attrs.field(validator=positive)
    p99: Duration = attrs.field()

    @p99.validator
    def _check_p99(self, attribute: "attrs.Attribute[float]", value: float) -> None:
        if value < self.median:
            raise FieldError("must not be less than median", (attribute.name,))


@attrs.frozen(kw_only=True)
class SimulatedProvider(ProviderConfig):
    """A built-in provider that answers locally: no network and no key."""

    kind: Literal["simulated"] = "simulated"
    latency: LatencySpec = LatencySpec(median=0.08, p99=0.6)
    error_rate: float = attrs.field(default=0.0, validator=fraction)
    tokens_per_second: float = attrs.field(default=200.0, validator=positive)
    seed: int | None = None
    models: tuple[str, ...] = ()  # redefined so that fields read in the documented order


def _host_url(provider: Any) -> str:
    # The default base URL of the kind: a named compatible host's, else OpenAI's.
    host = COMPATIBLE_HOSTS.get(provider.kind)
    return host.base_url if host is not None else OPENAI_URL


@attrs.frozen(kw_only=True)
class OpenAIProvider(HTTPProvider):
    """OpenAI, or any host speaking its Chat Completions API.

    Attributes:
        kind: ``openai`` or one of the compatible hosts known by name.
        base_url: As the OpenAI SDK means it (with ``/v1``); stored without a trailing
            slash. Defaults to the kind's own.
        api_key: Sent as ``Authorization: Bearer``; None sends no key (local servers).
        organization: Sent as ``OpenAI-Organization``.
    """

    kind: str = "openai"
    base_url: str = url_field(attrs.Factory(_host_url, takes_self=True))
    api_key: SecretRef | None = None
    organization: str | None = None
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class OpenAICompatibleProvider(OpenAIProvider):
    """``kind = "openai_compatible"``: an OpenAI-style host; ``base_url`` is required."""

    kind: Literal["openai_compatible"] = "openai_compatible"
    base_url: str = url_field()


@attrs.frozen(kw_only=True)
class AnthropicProvider(HTTPProvider):
    """Anthropic's Messages API.

    Attributes:
        base_url: As the Anthropic SDK means it: without ``/v1``.
        api_key: Sent as ``x-api-key``.
        auth_token: Sent as ``Authorization: Bearer`` instead of a key.
        anthropic_version: The ``anthropic-version`` header.
        max_tokens: Sent when the client gave no limit (Anthropic requires one).
        beta: ``anthropic-beta`` feature names.
    """

    kind: Literal["anthropic"] = "anthropic"
    base_url: str = url_field(ANTHROPIC_URL)
    api_key: SecretRef | None = None
    auth_token: SecretRef | None = None
    anthropic_version: str = "2023-06-01"
    max_tokens: int = attrs.field(default=4096, validator=positive)
    beta: tuple[str, ...] = ()
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class GeminiProvider(HTTPProvider):
    """Google's Gemini API (generateContent); the key goes in ``x-goog-api-key``."""

    kind: Literal["gemini"] = "gemini"
    base_url: str = url_field(GEMINI_URL)
    api_key: SecretRef | None = None
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class BedrockProvider(HTTPProvider):
    """AWS Bedrock Runtime's Converse API, signed with SigV4 (or a Bedrock API key).

    Attributes:
        region: The AWS region, e.g. ``us-east-1``.
        base_url: Defaults to ``https://bedrock-runtime.{region}.amazonaws.com``.
        aws_access_key_id, aws_secret_access_key, aws_session_token: Static credentials;
            absent, the usual AWS chain (environment, profile, instance role) is used.
        api_key: A Bedrock API key, sent as ``Authorization: Bearer`` instead of SigV4.
    """

    kind: Literal["bedrock"] = "bedrock"
    region: str
    base_url: str | None = url_field(None, optional=True)
    aws_access_key_id: SecretRef | None = None
    aws_secret_access_key: SecretRef | None = None
    aws_session_token: SecretRef | None = None
    api_key: SecretRef | None = None
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class AzureProvider(HTTPProvider):
    """Azure OpenAI.

    Attributes:
        base_url: The resource endpoint, ``https://{resource}.openai.azure.com``.
        deployment: The deployment to call; absent, a target's model names the deployment.
        api_version: The required ``api-version`` query parameter.
        api_key: Sent as ``api-key``.
        ad_token: A Microsoft Entra ID token, sent as ``Authorization: Bearer`` instead.
    """

    kind: Literal["azure"] = "azure"
    base_url: str = url_field()
    deployment: str | None = attrs.field(default=None, validator=model_name)
    api_version: str = "2024-10-21"
    api_key: SecretRef | None = None
    ad_token: SecretRef | None = None
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class OllamaProvider(HTTPProvider):
    """Ollama's native ``/api/chat`` (for its OpenAI mode, use ``openai_compatible``)."""

    kind: Literal["ollama"] = "ollama"
    base_url: str = url_field(OLLAMA_URL)
    api_key: SecretRef | None = None
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class CohereProvider(HTTPProvider):
    """Cohere's v2 Chat API."""

    kind: Literal["cohere"] = "cohere"
    base_url: str = url_field(COHERE_URL)
    api_key: SecretRef | None = None
    models: tuple[str, ...] = ()
