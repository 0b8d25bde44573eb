"""From ``[providers.*]`` config to live upstreams: adapters, transports, secrets.

Each provider's kind names its spec in ``adapters`` (config class, adapter factory);
what is here is the I/O side: transports, secrets, the AWS credential chain.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from adapters import (
    BedrockProvider,
    JobAdapter,
    SimulatedModel,
    SimulatedProvider,
    provider_spec,
)
from rules import Config, ConfigError, HTTPProvider, ProviderConfig, SecretRef

from ._h2pool import H2Pool
from ._images import ImageFetcher
from ._jobs import JobUpstream
from ._pool import H11Pool
from ._proxy import ProxyRoutes, proxy_routes
from ._tls import ClientTLS, client_tls
from ._transport import HttpxTransport, Transport
from ._upstream import CapabilityOverrides, HTTPUpstream, SimulatedUpstream, Upstream

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["build_upstream", "build_upstreams"]


def build_upstreams(config: Config) -> dict[str, Upstream]:
    """One upstream per provider. Raises ConfigError for unresolvable secrets."""
    upstreams: dict[str, Upstream] = {}
    errors: list[str] = []
    for name, provider in config.providers.items():
        try:
            upstreams[name] = build_upstream(name, provider, config)
        except ConfigError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ConfigError(tuple(errors))
    return upstreams


#: Fields of an HTTP provider that shape its connections, not its requests: the
#: adapter is not given them (a proxy URL may hold a password).
CONNECTION_FIELDS = frozenset({"tls", "proxy"})


def build_upstream(
    name: str,
    provider: ProviderConfig,
    config: Config,
    resolved: Mapping[SecretRef, str] | None = None,
    tls: ClientTLS | None = None,
) -> Upstream:
    """The upstream of one provider.

    Args:
        resolved: Its secrets, read already (off the event loop); read here if None.
        tls: Its TLS contexts, built already (``prepare_tls``, off the event loop);
            built here if None (blocking: tests, ``build_upstreams``).

    Raises:
        ConfigError: a secret, a TLS file or the proxy setting cannot be used.
    """
    if isinstance(provider, SimulatedProvider):
        model = SimulatedModel(
            median=provider.latency.median,
            p99=provider.latency.p99,
            error_rate=provider.error_rate,
            tokens_per_second=provider.tokens_per_second,
            seed=provider.seed,
            name=name,
        )
        return SimulatedUpstream(name, model)
    try:
        factory = provider_spec(provider.kind).adapter_factory()
    except KeyError:
        raise ConfigError((f"providers.{name}.kind: no adapter for {provider.kind!r}",)) from None
    resolved = resolved or {}
    settings = dict(_plain_settings(name, provider, resolved))
    # Kept out of every error message: the proxy's URL (with its password) included.
    secrets = tuple(
        settings[field.name]
        for field in attrs.fields(type(provider))
        if isinstance(getattr(provider, field.name), SecretRef)
    )
    for field_name in CONNECTION_FIELDS:
        settings.pop(field_name, None)
    connection = _connection(name, provider, resolved, tls)
    if isinstance(provider, BedrockProvider) and not (
        provider.api_key or provider.aws_access_key_id
    ):
        settings["aws_credentials"] = _aws_credential_chain(name)
    adapter = factory(name, settings)
    # A provider that answers through jobs (create, poll or stream, cancel) needs more
    # than one request per answer.
    upstream = JobUpstream if isinstance(adapter, JobAdapter) else HTTPUpstream
    return upstream(
        name,
        provider.kind,
        adapter,
        _transport(provider, config, connection),
        secrets,
        capabilities=_capabilities(provider),
        side_transport=HttpxTransport(
            max_connections=4,
            connect_timeout=config.defaults.connect_timeout,
            tls=connection.tls,
            proxy=connection.proxy,
        ),
        images=ImageFetcher(config.server.fetch_images_allow)
        if config.server.fetch_images
        else None,
        max_response=config.server.max_response,
    )


def _capabilities(provider: ProviderConfig) -> CapabilityOverrides:
    """The operator's overrides of what the provider's models can take."""
    if not isinstance(provider, HTTPProvider):
        return CapabilityOverrides()
    return CapabilityOverrides(
        attrs.asdict(provider.capabilities),
        {model: attrs.asdict(c) for model, c in provider.model_capabilities.items()},
    )


def _aws_credential_chain(name: str) -> Any:
    """Credentials from the usual AWS chain (environment, profile, instance role)."""
    import botocore.session  # only daemons with a Bedrock provider pay for the import

    credentials = botocore.session.get_session().get_credentials()
    if credentials is None:
        raise ConfigError(
            (
                f"providers.{name}: no AWS credentials: set aws_access_key_id and "
                "aws_secret_access_key, api_key, or the usual AWS environment or profile",
            )
        )
    return credentials


@attrs.frozen
class _Connection:
    """How a provider's transports reach it: TLS contexts and proxies."""

    tls: ClientTLS | None = None
    proxy: ProxyRoutes | None = None


def _connection(
    name: str, provider: ProviderConfig, secrets: Mapping[SecretRef, str], tls: ClientTLS | None
) -> _Connection:
    if not isinstance(provider, HTTPProvider):
        return _Connection(tls)
    if tls is None:
        settings = provider.tls
        key = secrets.get(settings.key_file) if settings and settings.key_file else None
        tls = client_tls(name, settings, key)
    return _Connection(tls, proxy_routes(name, provider.proxy, secrets))


def _transport(provider: ProviderConfig, config: Config, connection: _Connection) -> Transport:
    pool = getattr(provider, "pool", None)
    connect_timeout = config.defaults.connect_timeout
    if pool is None:
        return H11Pool(connect_timeout=connect_timeout, tls=connection.tls, proxy=connection.proxy)
    if pool.http2:
        # Its connections' tasks run in H2Pool.run(), which the daemon starts.
        return H2Pool(
            max_connections=pool.max_connections,
            keepalive=pool.keepalive,
            connect_timeout=connect_timeout,
            tls=connection.tls,
            proxy=connection.proxy,
        )
    if pool.transport == "httpx":
        return HttpxTransport(
            max_connections=pool.max_connections,
            keepalive=pool.keepalive,
            connect_timeout=connect_timeout,
            tls=connection.tls,
            proxy=connection.proxy,
        )
    return H11Pool(
        max_connections=pool.max_connections,
        keepalive=pool.keepalive,
        connect_timeout=connect_timeout,
        tls=connection.tls,
        proxy=connection.proxy,
    )


def _plain_settings(
    name: str, provider: ProviderConfig, secrets: Mapping[SecretRef, str]
) -> Mapping[str, Any]:
    """The provider's fields as plain values, secret references resolved."""
    settings: dict[str, Any] = {}
    for field in attrs.fields(type(provider)):
        value = getattr(provider, field.name)
        if isinstance(value, SecretRef) and value in secrets:
            value = secrets[value]
        elif isinstance(value, SecretRef):
            try:
                value = value.resolve()
            except ConfigError as exc:
                raise ConfigError(
                    tuple(f"providers.{name}.{field.name}: {e}" for e in exc.errors)
                ) from None
        elif attrs.has(type(value)):
            value = attrs.asdict(value)
        settings[field.name] = value
    return settings
