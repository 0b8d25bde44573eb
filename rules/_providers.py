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
    "PROVIDER_KINDS",
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
    """

    kind: str
    models: tuple[str, ...] = ()
    health: HealthCheck | None = None


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


@attrs.frozen(kw_only=True)
class OpenAIProvider(ProviderConfig):
    """OpenAI, or any host speaking its Chat Completions API.

    Attributes:
        base_url: As the OpenAI SDK means it (with ``/v1``); stored without a trailing
            slash.
        api_key: Sent as ``Authorization: Bearer``; None sends no key (local servers).
        organization: Sent as ``OpenAI-Organization``.
        headers: Extra headers sent with every request.
    """

    kind: Literal["openai", "openai_compatible"] = "openai"
    base_url: str = attrs.field(
        default="https://api.openai.com/v1", converter=_strip_slash, validator=_check_base_url
    )
    api_key: SecretRef | None = None
    organization: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict)
    limits: Limits | None = None
    pool: PoolConfig = PoolConfig()
    models: tuple[str, ...] = ()


@attrs.frozen(kw_only=True)
class OpenAICompatibleProvider(OpenAIProvider):
    """``kind = "openai_compatible"``: an OpenAI-style host; ``base_url`` is required."""

    kind: Literal["openai_compatible"] = "openai_compatible"
    base_url: str = attrs.field(converter=_strip_slash, validator=_check_base_url)


#: ``kind`` -> provider class. Later adapters add their kinds here.
PROVIDER_KINDS: dict[str, type[ProviderConfig]] = {
    "openai": OpenAIProvider,
    "openai_compatible": OpenAICompatibleProvider,
    "simulated": SimulatedProvider,
}
