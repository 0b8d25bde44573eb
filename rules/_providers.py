"""Provider blocks: ``[providers.NAME]``, one class per ``kind``.

Each kind is an attrs class registered in `PROVIDER_KINDS`; the loader picks the class
from the block's ``kind`` key. A new adapter adds its class here (or, from outside the
package, inserts it into `PROVIDER_KINDS`) and nothing else changes.
"""

from collections.abc import Mapping
from typing import Literal

import attrs

from ._errors import FieldError
from ._fields import Duration, at_least, field_local, fraction, positive
from ._secrets import SecretRef

__all__ = [
    "COMPATIBLE_HOSTS",
    "PROVIDER_KINDS",
    "AnthropicProvider",
    "AzureProvider",
    "BedrockProvider",
    "Capabilities",
    "CohereProvider",
    "GeminiProvider",
    "HTTPProvider",
    "OllamaProvider",
    "HealthCheck",
    "LatencySpec",
    "Limits",
    "OpenAICompatibleProvider",
    "OpenAIProvider",
    "PoolConfig",
    "ProviderConfig",
    "SimulatedProvider",
]


@attrs.frozen
class Limits:
    """Request and token rate limits per minute (unset: unlimited)."""

    rpm: int | None = attrs.field(default=None, validator=positive)
    tpm: int | None = attrs.field(default=None, validator=positive)


@attrs.frozen
class LatencySpec:
    """A simulated latency distribution, by its median and 99th percentile (seconds)."""

    median: Duration = attrs.field(validator=positive)
    p99: Duration = attrs.field()

    @p99.validator
    def _check_p99(self, attribute: "attrs.Attribute[float]", value: float) -> None:
        if value < self.median:
            raise FieldError("must not be less than median", (attribute.name,))


@attrs.frozen
class PoolConfig:
    """The provider's keep-alive connection pool."""

    max_connections: int = attrs.field(default=100, validator=positive)
    keepalive: Duration = attrs.field(default=90.0, validator=at_least(0))
    http2: bool = False
    transport: Literal["h11", "httpx"] = "h11"


@attrs.frozen
class HealthCheck:
    """An active health check: a cheap probe every ``interval``, feeding the breakers.

    Attributes:
        interval: Seconds between probes.
        timeout: Seconds a probe may take before it counts as a failure.
    """

    interval: Duration = attrs.field(default=10.0, validator=positive)
    timeout: Duration = attrs.field(default=2.0, validator=positive)


@attrs.frozen(kw_only=True)
class ProviderConfig:
    """Base of every provider block.

    Attributes:
        kind: Which adapter talks to this provider (the key of `PROVIDER_KINDS`).
        models: Models the provider offers, listed by ``GET /v1/models``; empty means
            not listed (any model can still be asked for).
        health: An optional active health check.
        limits: Requests and tokens per minute for the provider as a whole.
        model_limits: The same per model id (each target's own window).
    """

    kind: str
    models: tuple[str, ...] = ()
    health: HealthCheck | None = None
    limits: Limits | None = None
    model_limits: Mapping[str, Limits] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class SimulatedProvider(ProviderConfig):
    """A built-in provider that answers locally: no network and no key."""

    kind: Literal["simulated"] = "simulated"
    latency: LatencySpec = LatencySpec(median=0.08, p99=0.6)
    error_rate: float = attrs.field(default=0.0, validator=fraction)
    tokens_per_second: float = attrs.field(default=200.0, validator=positive)
    seed: int | None = None
    models: tuple[str, ...] = ()  # redefined so that fields read in the documented order


@field_local
def _check_base_url(instance: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise FieldError("must start with http:// or https://", (attribute.name,))


def _strip_slash(value: str) -> str:
    # Adapters append paths ("/chat/completions"); a trailing slash would double it.
    return value.rstrip("/")


@attrs.frozen
class Capabilities:
    """What a provider's models can take; unset means the adapter's own default."""

    vision: bool | None = None
    tools: bool | None = None


@attrs.frozen(kw_only=True)
class HTTPProvider(ProviderConfig):
    """What every provider reached over HTTP shares.

    Attributes:
        headers: Extra headers sent with every request.
        pool: The provider's connection pool.
        capabilities: Overrides of what the provider's models can take.
        model_capabilities: The same, per model id, where a model differs.
    """

    headers: Mapping[str, str] = attrs.field(factory=dict)
    pool: PoolConfig = PoolConfig()
    capabilities: Capabilities = Capabilities()
    model_capabilities: Mapping[str, Capabilities] = attrs.field(factory=dict)


@attrs.frozen(kw_only=True)
class OpenAIProvider(HTTPProvider):
    """OpenAI, or any host speaking its Chat Completions API.

    Attributes:
        base_url: As the OpenAI SDK means it (with ``/v1``); stored without a trailing
            slash.
        api_key: Sent as ``Authorization: Bearer``; None sends no key (local servers).
        organization: Sent as ``OpenAI-Organization``.
    """

    kind: Literal[
        "openai",
        "openai_compatible",
        "vllm",
        "together",
        "groq",
        "mistral",
        "deepseek",
        "openrouter",
        "fireworks",
    ] = "openai"
    base_url: str = attrs.field(
        default="https://api.openai.com/v1", converter=_strip_slash, validator=_check_base_url
    )
    api_key: SecretRef | None = None
    organization: str | None = None
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class OpenAICompatibleProvider(OpenAIProvider):
    """``kind = "openai_compatible"``: an OpenAI-style host; ``base_url`` is required."""

    kind: Literal["openai_compatible"] = "openai_compatible"
    base_url: str = attrs.field(converter=_strip_slash, validator=_check_base_url)


#: Default base URLs of the OpenAI-compatible hosts known by name.
COMPATIBLE_HOSTS: dict[str, str] = {
    "vllm": "http://127.0.0.1:8000/v1",
    "together": "https://api.together.xyz/v1",
    "groq": "https://api.groq.com/openai/v1",
    "mistral": "https://api.mistral.ai/v1",
    "deepseek": "https://api.deepseek.com/v1",
    "openrouter": "https://openrouter.ai/api/v1",
    "fireworks": "https://api.fireworks.ai/inference/v1",
}


@attrs.frozen(kw_only=True)
class VllmProvider(OpenAIProvider):
    """``kind = "vllm"``: OpenAI-compatible, with its own default base URL."""

    kind: Literal["vllm"] = "vllm"
    base_url: str = attrs.field(
        default=COMPATIBLE_HOSTS["vllm"], converter=_strip_slash, validator=_check_base_url
    )


@attrs.frozen(kw_only=True)
class TogetherProvider(OpenAIProvider):
    """``kind = "together"``: OpenAI-compatible, with its own default base URL."""

    kind: Literal["together"] = "together"
    base_url: str = attrs.field(
        default=COMPATIBLE_HOSTS["together"], converter=_strip_slash, validator=_check_base_url
    )


@attrs.frozen(kw_only=True)
class GroqProvider(OpenAIProvider):
    """``kind = "groq"``: OpenAI-compatible, with its own default base URL."""

    kind: Literal["groq"] = "groq"
    base_url: str = attrs.field(
        default=COMPATIBLE_HOSTS["groq"], converter=_strip_slash, validator=_check_base_url
    )


@attrs.frozen(kw_only=True)
class MistralProvider(OpenAIProvider):
    """``kind = "mistral"``: OpenAI-compatible, with its own default base URL."""

    kind: Literal["mistral"] = "mistral"
    base_url: str = attrs.field(
        default=COMPATIBLE_HOSTS["mistral"], converter=_strip_slash, validator=_check_base_url
    )


@attrs.frozen(kw_only=True)
class DeepseekProvider(OpenAIProvider):
    """``kind = "deepseek"``: OpenAI-compatible, with its own default base URL."""

    kind: Literal["deepseek"] = "deepseek"
    base_url: str = attrs.field(
        default=COMPATIBLE_HOSTS["deepseek"], converter=_strip_slash, validator=_check_base_url
    )


@attrs.frozen(kw_only=True)
class OpenrouterProvider(OpenAIProvider):
    """``kind = "openrouter"``: OpenAI-compatible, with its own default base URL."""

    kind: Literal["openrouter"] = "openrouter"
    base_url: str = attrs.field(
        default=COMPATIBLE_HOSTS["openrouter"], converter=_strip_slash, validator=_check_base_url
    )


@attrs.frozen(kw_only=True)
class FireworksProvider(OpenAIProvider):
    """``kind = "fireworks"``: OpenAI-compatible, with its own default base URL."""

    kind: Literal["fireworks"] = "fireworks"
    base_url: str = attrs.field(
        default=COMPATIBLE_HOSTS["fireworks"], converter=_strip_slash, validator=_check_base_url
    )


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
    base_url: str = attrs.field(
        default="https://api.anthropic.com", converter=_strip_slash, validator=_check_base_url
    )
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
    base_url: str = attrs.field(
        default="https://generativelanguage.googleapis.com/v1beta",
        converter=_strip_slash,
        validator=_check_base_url,
    )
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
    base_url: str | None = attrs.field(
        default=None,
        converter=attrs.converters.optional(_strip_slash),
        validator=attrs.validators.optional(_check_base_url),
    )
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
    base_url: str = attrs.field(converter=_strip_slash, validator=_check_base_url)
    deployment: str | None = None
    api_version: str = "2024-10-21"
    api_key: SecretRef | None = None
    ad_token: SecretRef | None = None
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class OllamaProvider(HTTPProvider):
    """Ollama's native ``/api/chat`` (for its OpenAI mode, use ``openai_compatible``)."""

    kind: Literal["ollama"] = "ollama"
    base_url: str = attrs.field(
        default="http://127.0.0.1:11434", converter=_strip_slash, validator=_check_base_url
    )
    api_key: SecretRef | None = None
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class CohereProvider(HTTPProvider):
    """Cohere's v2 Chat API."""

    kind: Literal["cohere"] = "cohere"
    base_url: str = attrs.field(
        default="https://api.cohere.com", converter=_strip_slash, validator=_check_base_url
    )
    api_key: SecretRef | None = None
    models: tuple[str, ...] = ()


#: ``kind`` -> provider class. Later adapters add their kinds here.
PROVIDER_KINDS: dict[str, type[ProviderConfig]] = {
    "openai": OpenAIProvider,
    "openai_compatible": OpenAICompatibleProvider,
    "simulated": SimulatedProvider,
    "anthropic": AnthropicProvider,
    "gemini": GeminiProvider,
    "bedrock": BedrockProvider,
    "azure": AzureProvider,
    "ollama": OllamaProvider,
    "cohere": CohereProvider,
    "vllm": VllmProvider,
    "together": TogetherProvider,
    "groq": GroqProvider,
    "mistral": MistralProvider,
    "deepseek": DeepseekProvider,
    "openrouter": OpenrouterProvider,
    "fireworks": FireworksProvider,
}
