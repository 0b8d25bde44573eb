"""Provider blocks: ``[providers.NAME]``, the parts every kind shares.

Each provider kind has its own config class, a subclass of `ProviderConfig` (kinds
reached over HTTP subclass `HTTPProvider`). The classes live with their adapters, in
``adapters``; the loader is handed the ``kind -> class`` mapping (``parse_config(...,
kinds=...)``) and picks the class from the block's ``kind`` key. What is here are the
fields, types and validators those classes are built from.
"""

from collections.abc import Mapping
from typing import Any, Literal

import attrs

from ._connection import Proxy, TLSConfig
from ._errors import FieldError
from ._fields import Duration, at_least, field_local, positive

__all__ = [
    "Capabilities",
    "HTTPProvider",
    "HealthCheck",
    "Limits",
    "PoolConfig",
    "ProviderLimits",
    "ProviderConfig",
    "ProviderKinds",
    "url_field",
]


@attrs.frozen
class Limits:
    """Request and token rate limits per minute (unset: unlimited)."""

    rpm: int | None = attrs.field(default=None, validator=positive)
    tpm: int | None = attrs.field(default=None, validator=positive)


@attrs.frozen
class ProviderLimits(Limits):
    """A provider's or model's limits: rates, and requests at once.

    Attributes:
        concurrency: Requests in flight at once (unset: no bound unless ``adaptive``).
        adaptive: Learn the bound from the upstream: halved on a 429 (and waiting out its
            Retry-After), grown by one per bound's worth of successes, never below 1 nor
            above ``concurrency`` (unset: the pool's ``max_connections``). See
            ``router.traffic._adaptive``.
    """

    concurrency: int | None = attrs.field(default=None, validator=positive)
    adaptive: bool = False


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
        kind: Which adapter talks to this provider (a key of the loader's ``kinds``).
        models: Models the provider offers, listed by ``GET /v1/models``; empty means
            not listed (any model can still be asked for).
        health: An optional active health check.
        limits: Requests and tokens per minute, and requests at once, for the provider
            as a whole.
        model_limits: The same per model id (each target's own window and bound).
    """

    kind: str
    models: tuple[str, ...] = ()
    health: HealthCheck | None = None
    limits: ProviderLimits | None = None
    model_limits: Mapping[str, ProviderLimits] = attrs.field(factory=dict)


#: What the loader is given: provider ``kind`` -> its config class.
ProviderKinds = Mapping[str, type[ProviderConfig]]


@field_local
def _check_base_url(instance: object, attribute: "attrs.Attribute[str]", value: str) -> None:
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise FieldError("must start with http:// or https://", (attribute.name,))


def _strip_slash(value: str) -> str:
    # Adapters append paths ("/chat/completions"); a trailing slash would double it.
    return value.rstrip("/")


def url_field(default: Any = attrs.NOTHING, *, optional: bool = False) -> Any:
    """A base URL field: ``http(s)://`` checked, stored without a trailing slash.

    Without ``default`` the key is required; ``optional`` lets it be None (absent).
    """
    if optional:
        return attrs.field(
            default=default,
            converter=attrs.converters.optional(_strip_slash),
            validator=attrs.validators.optional(_check_base_url),
        )
    return attrs.field(default=default, converter=_strip_slash, validator=_check_base_url)


@attrs.frozen
class Capabilities:
    """What a provider's models can take; unset means the adapter's own default."""

    vision: bool | None = None
    tools: bool | None = None
    prefill: bool | None = None


@attrs.frozen(kw_only=True)
class HTTPProvider(ProviderConfig):
    """What every provider reached over HTTP shares.

    Attributes:
        headers: Extra headers sent with every request.
        pool: The provider's connection pool.
        capabilities: Overrides of what the provider's models can take.
        model_capabilities: The same, per model id, where a model differs.
        tls: Whom to trust and which client certificate to show (None: the system's
            trust store, no client certificate).
        proxy: The HTTP proxy to go through (None: none); see ``_connection``.
    """

    headers: Mapping[str, str] = attrs.field(factory=dict)
    pool: PoolConfig = PoolConfig()
    capabilities: Capabilities = Capabilities()
    model_capabilities: Mapping[str, Capabilities] = attrs.field(factory=dict)
    tls: TLSConfig | None = None
    proxy: Proxy | None = None
