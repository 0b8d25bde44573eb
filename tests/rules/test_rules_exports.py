"""The public surface of `rules`: the daemon is written against exactly these names."""

import subprocess
import sys

import rules


def test_all_is_pinned() -> None:
    assert rules.__all__ == [
        "ConfigError",
        "load_config",
        "parse_config",
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
        "Capabilities",
        "HealthCheck",
        "HTTPProvider",
        "PoolConfig",
        "ProviderLimits",
        "ProviderConfig",
        "ProviderKinds",
        "url_field",
        "TLSConfig",
        "ProxyURL",
        "ProxySetting",
        "connection_warnings",
        "Duration",
        "FieldError",
        "at_least",
        "field_local",
        "fraction",
        "positive",
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
        "ValidateConfig",
        "AnswerCheck",
        "compile_check",
        "schema_check",
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
        "WhenRule",
        "Value",
        "evaluate",
        "parse_condition",
        "load_plugin",
        "render_tree",
        "resume_max",
        "timeout_warnings",
    ]


def test_every_name_exists() -> None:
    for name in rules.__all__:
        assert hasattr(rules, name), name


def test_rules_is_pure() -> None:
    # rules is tested without an event loop: importing it must not pull in the I/O layers.
    code = (
        "import sys, rules; "
        "print(sorted(m for m in ('trio', 'httpx', 'httpx2', 'router', 'adapters')"
        " if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
