"""The ``router.toml`` language: schema, loading and route compilation.

Pure code: no I/O beyond reading the config file and secrets, no trio, no httpx.
Typical use::

    config = load_config("router.toml")   # raises ConfigError, one line per problem
    table = compile_routes(config)         # an immutable snapshot for the engine
    node = table.lookup("chat")
"""

from ._compile import compile_routes
from ._errors import ConfigError
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
from ._providers import (
    COMPATIBLE_HOSTS,
    PROVIDER_KINDS,
    AnthropicProvider,
    AzureProvider,
    BedrockProvider,
    Capabilities,
    CohereProvider,
    GeminiProvider,
    HealthCheck,
    HTTPProvider,
    LatencySpec,
    Limits,
    OllamaProvider,
    OpenAICompatibleProvider,
    OpenAIProvider,
    PoolConfig,
    ProviderConfig,
    SimulatedProvider,
)
from ._render import render_tree
from ._schema import (
    FALLBACK_ON,
    STRATEGIES,
    Backoff,
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
from ._secrets import SecretRef
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
    # schema
    "Config",
    "ServerConfig",
    "Price",
    "TelemetryConfig",
    "Defaults",
    "Backoff",
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
    # providers
    "COMPATIBLE_HOSTS",
    "PROVIDER_KINDS",
    "AnthropicProvider",
    "AzureProvider",
    "BedrockProvider",
    "Capabilities",
    "CohereProvider",
    "GeminiProvider",
    "HealthCheck",
    "HTTPProvider",
    "OllamaProvider",
    "ProviderConfig",
    "SimulatedProvider",
    "LatencySpec",
    "OpenAIProvider",
    "OpenAICompatibleProvider",
    "PoolConfig",
    # compiled routes
    "Target",
    "parse_target",
    "compile_routes",
    "RouteTable",
    "RouteSettings",
    "Node",
    "Leaf",
    "Fallback",
    "Balance",
    "Split",
    "render_tree",
]
