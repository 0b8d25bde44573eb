"""The model-name rule: what clients may send and what router.toml may write."""

from functools import partial

import pytest

from adapters import provider_kinds
from rules import MAX_MODEL_NAME, ConfigError, model_problem, parse_config

parse = partial(parse_config, kinds=provider_kinds())


@pytest.mark.parametrize(
    "name",
    [
        "gpt-4o",
        "meta-llama/Llama-3.1-8B",
        "anthropic.claude-3-5-haiku-20241022-v1:0",
        "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-x",
        "models/gemini-2.5-flash",
        "qwen2.5:7b",
        "a..b",
        "...x",
        "é-модель",
        "m" * MAX_MODEL_NAME,
    ],
)
def test_real_names_pass(name: str) -> None:
    assert model_problem(name) is None


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "is empty"),
        ("..", 'has a "." or ".." path segment'),
        ("../../x", 'has a "." or ".." path segment'),
        ("a/./b", 'has a "." or ".." path segment'),
        ("a/..", 'has a "." or ".." path segment'),
        ("x?y", 'contains "?"'),
        ("x#y", 'contains "#"'),
        ("x%2e", 'contains "%"'),
        ("a b", "contains a space"),
        ("a\tb", "contains whitespace"),
        ("a\u00a0b", "contains whitespace"),
        ("a\rb", "contains a line break"),
        ("a\nb", "contains a line break"),
        ("a\x00b", "contains a control character (U+0000)"),
        ("a\x7fb", "contains a control character (U+007F)"),
        ("a\x9bb", "contains a control character (U+009B)"),
        ("m" * (MAX_MODEL_NAME + 1), f"is longer than {MAX_MODEL_NAME} characters"),
    ],
)
def test_names_a_url_could_misread_are_refused(name: str, problem: str) -> None:
    assert model_problem(name) == problem


def test_config_names_each_bad_model_by_its_field() -> None:
    text = r"""
[providers.sim]
kind = "simulated"
models = ["echo", "../x"]
model_limits = { "a b" = { rpm = 5 } }

[providers.gem]
kind = "gemini"
model_capabilities = { "x?y" = { tools = false } }

[routes."chat\n"]
fallback = ["gem:a\r\nb", "gem:models/../../x", "sim:echo"]

[routes.ok]
fallback = ["sim:unlisted"]
"""
    with pytest.raises(ConfigError) as info:
        parse(text)
    assert sorted(info.value.errors) == sorted(
        [
            'providers.sim.models[1]: the model name has a "." or ".." path segment',
            'providers.sim.model_limits."a b": the model name contains a space',
            'providers.gem.model_capabilities."x?y": the model name contains "?"',
            'routes."chat\\n": a route name (a client\'s model) contains a line break',
            'routes."chat\\n".fallback[0]: the model name of a target contains a line break',
            'routes."chat\\n".fallback[1]: the model name of a target has a "." or ".." '
            "path segment",
            'routes.ok.fallback[0]: "unlisted" is not in providers.sim.models',
        ]
    )


def test_listed_models_are_served_and_listed() -> None:
    from rules import Leaf, Target, compile_routes

    config = parse(
        """
[providers.sim]
kind = "simulated"
models = ["echo", "b"]

[providers.any]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]
"""
    )
    table = compile_routes(config)
    assert table.lookup("sim:b") == Leaf(Target("sim", "b"))
    assert table.lookup("sim:c") is None
    assert table.lookup("any:c") == Leaf(Target("any", "c"))
    assert [str(t) for t in table.listed()] == ["sim:b", "sim:echo"]


def test_an_azure_deployment_follows_the_rule() -> None:
    with pytest.raises(ConfigError) as info:
        parse(
            """
[providers.az]
kind = "azure"
base_url = "https://r.openai.azure.com"
deployment = "../gpt-4o"

[routes.chat]
fallback = ["az:gpt-4o"]
"""
        )
    assert info.value.errors == (
        'providers.az.deployment: the model name has a "." or ".." path segment',
    )
