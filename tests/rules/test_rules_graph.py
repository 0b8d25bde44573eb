"""Compiling routes into the graph the engine walks, and `check`'s rendering of it."""

from functools import partial
from pathlib import Path

import attrs
import pytest

from adapters import provider_kinds
from rules import (
    FALLBACK_ON,
    Balance,
    Config,
    ConfigError,
    Fallback,
    HedgeConfig,
    Leaf,
    Percentile,
    RouteCacheConfig,
    RouteConfig,
    RouteSettings,
    Split,
    Target,
    compile_routes,
    load_config,
    parse_config,
    parse_target,
    render_tree,
)

# Every kind the registry knows (built in, and plugins): what the daemon parses with.
KINDS = provider_kinds()
parse = partial(parse_config, kinds=KINDS)
load = partial(load_config, kinds=KINDS)

HERE = Path(__file__).parent


@pytest.fixture
def design() -> Config:
    return load(HERE / "design_example.toml")


@pytest.mark.parametrize(
    ("text", "provider", "model"),
    [
        ("openai:gpt-4o", "openai", "gpt-4o"),
        (
            "bedrock:anthropic.claude-3-5-haiku-20241022-v1:0",
            "bedrock",
            "anthropic.claude-3-5-haiku-20241022-v1:0",
        ),
        ("ollama:llama3:8b", "ollama", "llama3:8b"),
    ],
)
def test_parse_target_splits_at_first_colon(text: str, provider: str, model: str) -> None:
    target = parse_target(text)
    assert target == Target(provider, model)
    assert str(target) == text


@pytest.mark.parametrize("text", ["gpt-4o", ":gpt-4o", "openai:", ""])
def test_parse_target_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a target"):
        parse_target(text)


def test_compile_design_example(design: Config) -> None:
    table = compile_routes(design)
    assert table.route_names() == ("chat", "fastest", "trial")

    settings = RouteSettings(timeout=60.0, first_token_timeout=15.0, retries=2)
    fastest = table.routes["fastest"]
    assert fastest == Balance(
        name="fastest",
        strategy="latency",
        children=(Leaf(Target("sim-fast", "echo")), Leaf(Target("sim-slow", "echo"))),
        weights=(1.0, 1.0),
        hedge=HedgeConfig(after=Percentile(0.9), max=1),
        settings=settings,
    )
    chat = table.routes["chat"]
    assert isinstance(chat, Fallback)
    assert chat.on == frozenset(FALLBACK_ON)
    assert chat.children[0] is fastest  # a named route is shared, not copied
    assert chat.children[1] == Leaf(Target("openai", "gpt-4o-mini"))
    assert table.routes["trial"] == Split(
        name="trial",
        children=(Leaf(Target("sim-fast", "echo")), Leaf(Target("sim-slow", "echo"))),
        weights=(90.0, 10.0),
        sticky="header:x-user-id",
        settings=attrs.evolve(settings, cache=RouteCacheConfig(ttl=600.0)),
    )


def test_route_settings_override_defaults() -> None:
    config = parse(
        """
[defaults]
timeout = "30s"
retries = 1
stream_timeout = "20m"
[providers.p]
kind = "simulated"
[routes.a]
fallback = ["p:m"]
timeout = "5s"
first_token_timeout = "2s"
stream_timeout = "2m"
on = ["timeout", "network"]
[routes.b]
fallback = ["p:m"]
"""
    )
    table = compile_routes(config)
    a, b = table.routes["a"], table.routes["b"]
    assert isinstance(a, Fallback)
    assert a.settings == RouteSettings(
        timeout=5.0, first_token_timeout=2.0, retries=1, stream_timeout=120.0
    )
    assert a.on == frozenset({"timeout", "network"})
    assert isinstance(b, Fallback)
    assert b.settings == RouteSettings(
        timeout=30.0, first_token_timeout=15.0, retries=1, stream_timeout=1200.0
    )


def test_weighted_balance_keeps_weights() -> None:
    config = parse(
        '[providers.p]\nkind = "simulated"\n'
        '[routes.w]\nbalance = "weighted"\ntargets = { "p:a" = 3, "p:b" = 1 }\n'
    )
    node = compile_routes(config).routes["w"]
    assert isinstance(node, Balance)
    assert node.weights == (3.0, 1.0)
    assert list(node.children) == [Leaf(Target("p", "a")), Leaf(Target("p", "b"))]


def test_lookup(design: Config) -> None:
    table = compile_routes(design)
    assert table.lookup("chat") is table.routes["chat"]
    assert table.lookup("openai:gpt-4o") == Leaf(Target("openai", "gpt-4o"))
    assert table.lookup("openai:ft:gpt-4o:org:abc") == Leaf(Target("openai", "ft:gpt-4o:org:abc"))
    assert table.lookup("nope:gpt-4o") is None
    assert table.lookup("openai:") is None
    assert table.lookup("gpt-4o") is None


def test_targets_are_reachable_deduplicated_and_sorted(design: Config) -> None:
    assert compile_routes(design).targets() == (
        Target("openai", "gpt-4o-mini"),
        Target("sim-fast", "echo"),
        Target("sim-slow", "echo"),
    )


def test_digest_ignores_comments_but_not_values() -> None:
    base = '[providers.p]\nkind = "simulated"\n[routes.a]\nfallback = ["p:m"]\n'
    first = compile_routes(parse(base))
    commented = compile_routes(parse("# a comment\n" + base.replace(" = ", "=")))
    changed = compile_routes(parse(base.replace("p:m", "p:n")))
    assert len(first.digest) == 64
    assert first.short_digest == first.digest[:12]
    assert commented.digest == first.digest
    assert changed.digest != first.digest


def test_compile_rejects_config_built_in_code() -> None:
    config = Config(routes={"a": RouteConfig(fallback=("b",))})
    with pytest.raises(ConfigError) as info:
        compile_routes(config)
    assert info.value.errors == ('routes.a.fallback[0]: unknown route "b"',)


def test_config_needs_a_route() -> None:
    with pytest.raises(ValueError, match="at least one route is required"):
        Config()


def test_render_tree(design: Config) -> None:
    assert render_tree(compile_routes(design)) == (
        "providers: sim-fast (simulated), sim-slow (simulated),"
        " openai (openai, https://api.openai.com/v1, api_key env:OPENAI_API_KEY)\n"
        "\n"
        "chat: fallback (on: timeout, network, server_error, rate_limited, overloaded,"
        " context_length)\n"
        "├── fastest: balance latency, hedge after p90 max 1\n"
        "│   ├── sim-fast:echo\n"
        "│   └── sim-slow:echo\n"
        "└── openai:gpt-4o-mini\n"
        "\n"
        "fastest: balance latency, hedge after p90 max 1\n"
        "├── sim-fast:echo\n"
        "└── sim-slow:echo\n"
        "\n"
        "trial: split, sticky header:x-user-id, cache ttl 10m\n"
        "├── sim-fast:echo (90%)\n"
        "└── sim-slow:echo (10%)\n"
    )


def test_render_tree_nested_and_overrides() -> None:
    config = parse(
        """
[providers.a]
kind = "simulated"
[routes.outer]
fallback = ["inner", "a:z"]
on = ["timeout"]
timeout = "10s"
retries = 0
hedge = { after = "250ms" }
[routes.inner]
balance = "weighted"
targets = { "a:x" = 3, "a:y" = 1 }
"""
    )
    assert render_tree(compile_routes(config)) == (
        "providers: a (simulated)\n"
        "\n"
        "outer: fallback (on: timeout), hedge after 250ms max 1, timeout 10s, retries 0\n"
        "├── inner: balance weighted\n"
        "│   ├── a:x (75%)\n"
        "│   └── a:y (25%)\n"
        "└── a:z\n"
        "\n"
        "inner: balance weighted\n"
        "├── a:x (75%)\n"
        "└── a:y (25%)\n"
    )


def test_render_tree_never_shows_secret_values(
    design: Config, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-appear")
    assert "sk-should-not-appear" not in render_tree(compile_routes(design))
