"""The ``router.toml`` language: schema, loading and route compilation.

Pure code: no I/O beyond reading the config file and secrets, no trio, no httpx.
Typical use::

    config = load_config("router.toml", kinds=kinds)  # ConfigError: one line per problem
    table = compile_routes(config)                     # an immutable snapshot for the engine
    node = table.lookup("chat")

``kinds`` maps each provider ``kind`` to its config class; the registry in ``adapters``
provides it (``adapters.provider_kinds()``), so this package never imports adapters.
"""

from ._compile import compile_routes, resume_max
from ._connection import ProxySetting, ProxyURL, TLSConfig, connection_warnings
from ._errors import ConfigError, FieldError
from ._fields import Duration, at_least, fraction, positive
from ._graph import (
    Balance,
    Fallback,
    Leaf,
    Node,
    RouteSettings,
    RouteTable,
    Split,
    Target,
    parse_target,
)
from ._load import load_config, parse_config
from ._names import MAX_MODEL_NAME, model_name, model_problem
from ._providers import (
    Capabilities,
    HealthCheck,
    HTTPProvider,
    Limits,
    PoolConfig,
    ProviderConfig,
    ProviderKinds,
    url_field,
)
from ._render import render_tree, timeout_warnings
from ._schema import (
    FALLBACK_ON,
    STRATEGIES,
    Backoff,
    BatchConfig,
    Budget,
    CacheConfig,
    Circuit,
    Config,
    Defaults,
    HedgeConfig,
    KeyConfig,
    Price,
    RouteCacheConfig,
    RouteConfig,
    ServerConfig,
    TelemetryConfig,
)
from ._secrets import MalformedSecret, SecretRef, find_secrets
from ._simulate_table import SimulateConfig, SimulatedLatency, SimulateProfile
from ._units import Percentile, parse_duration, parse_percentile, parse_size

__all__ = [
    # loading
    "ConfigError",
    "load_config",
    "parse_config",
    # units and secrets
    "parse_duration",
    "parse_size",
    "parse_percentile",
    "Percentile",
    "SecretRef",
    "MalformedSecret",
    "find_secrets",
    # schema
    "Config",
    "ServerConfig",
    "Price",
    "TelemetryConfig",
    "SimulateConfig",
    "SimulateProfile",
    "SimulatedLatency",
    "Defaults",
    "Backoff",
    "BatchConfig",
    "Circuit",
    "CacheConfig",
    "KeyConfig",
    "Budget",
    "Limits",
    "RouteConfig",
    "HedgeConfig",
    "RouteCacheConfig",
    "FALLBACK_ON",
    "STRATEGIES",
    # providers: the shared parts (each kind's class lives with its adapter)
    "Capabilities",
    "HealthCheck",
    "HTTPProvider",
    "PoolConfig",
    "ProviderConfig",
    "ProviderKinds",
    "url_field",
    # how a provider is reached
    "TLSConfig",
    "ProxyURL",
    "ProxySetting",
    "connection_warnings",
    # for the fields of a provider class (a plugin's too)
    "Duration",
    "FieldError",
    "at_least",
    "fraction",
    "positive",
    # compiled routes
    "Target",
    "parse_target",
    "model_problem",
    "model_name",
    "MAX_MODEL_NAME",
    "compile_routes",
    "RouteTable",
    "RouteSettings",
    "Node",
    "Leaf",
    "Fallback",
    "Balance",
    "Split",
    "render_tree",
    "resume_max",
    "timeout_warnings",
]
