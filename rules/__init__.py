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
from ._fields import Duration, at_least, field_local, fraction, positive
from ._graph import (
    Balance,
    Choice,
    Fallback,
    Leaf,
    Node,
    RouteSettings,
    RouteTable,
    Split,
    Target,
    parse_target,
    reachable,
)
from ._hooks import (
    ENTRY_POINT_GROUP,
    HookConfig,
    PIIHookConfig,
    PluginHookConfig,
    RegexHookConfig,
    load_callable,
)
from ._load import load_config, parse_config
from ._names import MAX_MODEL_NAME, model_name, model_problem
from ._pii import CATEGORIES as PII_CATEGORIES
from ._pii import find_pii
from ._plugin import load_plugin
from ._providers import (
    Capabilities,
    HealthCheck,
    HTTPProvider,
    Limits,
    PoolConfig,
    ProviderConfig,
    ProviderKinds,
    ProviderLimits,
    url_field,
)
from ._render import render_tree, timeout_warnings
from ._scan import Blocked, TextHook, TextStream, apply_hooks, compile_hook
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
from ._secret_stores import AwsSecretsConfig, SecretsConfig, VaultConfig
from ._secrets import MalformedSecret, SecretRef, find_secrets
from ._shared import RedisURL, SharedState
from ._simulate_table import SimulateConfig, SimulatedLatency, SimulateProfile
from ._units import Percentile, parse_duration, parse_percentile, parse_size
from ._validate import AnswerCheck, ValidateConfig, compile_check, schema_check
from ._when import Value, WhenRule, evaluate, parse_condition

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
    "SecretsConfig",
    "VaultConfig",
    "AwsSecretsConfig",
    # schema
    "Config",
    "ServerConfig",
    "SharedState",
    "RedisURL",
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
    "ProviderLimits",
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
    "field_local",
    "fraction",
    "positive",
    # content hooks
    "HookConfig",
    "RegexHookConfig",
    "PIIHookConfig",
    "PluginHookConfig",
    "ENTRY_POINT_GROUP",
    "load_callable",
    "PII_CATEGORIES",
    "find_pii",
    "TextHook",
    "TextStream",
    "Blocked",
    "apply_hooks",
    "compile_hook",
    # answer validation
    "ValidateConfig",
    "AnswerCheck",
    "compile_check",
    "schema_check",
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
    "Choice",
    "reachable",
    # smart selection (route ``when`` rules)
    "WhenRule",
    "Value",
    "evaluate",
    "parse_condition",
    "load_plugin",
    "render_tree",
    "resume_max",
    "timeout_warnings",
]
