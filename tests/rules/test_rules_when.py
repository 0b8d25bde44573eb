"""The ``when`` condition language: parsing, type checks, evaluation, and the config
errors ``check`` shows for it."""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING

import pytest

from adapters import provider_kinds
from rules import ConfigError, compile_routes, evaluate, parse_condition, parse_config, render_tree

if TYPE_CHECKING:
    from rules import Value

parse = partial(parse_config, kinds=provider_kinds())

FACTS: dict[str, Value] = {
    "tokens": 9000.0,
    "max_tokens": None,
    "complexity": 0.25,
    "has_tools": True,
    "has_images": False,
    "json": False,
    "key": "batch-jobs",
    "header.x-tier": "gold",
}


def holds(text: str, **facts: Value) -> bool:
    known = {**FACTS, **facts}
    return evaluate(parse_condition(text), lambda name: known.get(name))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tokens > 8000", True),
        ("tokens > 8_000 and not has_tools", False),
        ("tokens <= 9000 and tokens >= 9000 and tokens == 9000", True),
        ("tokens < 9000 or has_images", False),
        ("not (tokens < 100 or has_images)", True),
        ("has_tools and (json or complexity > 0.2)", True),
        ("header.X-Tier == 'gold'", True),  # header names are case-insensitive
        ('header.x-tier == "silver"', False),
        ("key == 'batch-jobs' and key != 'web'", True),
        # Absent values: equal to nothing, unequal to everything, never ordered.
        ("max_tokens > 0", False),
        ("max_tokens <= 0", False),
        ("max_tokens == 10", False),
        ("max_tokens != 10", True),
        ("header.x-none == 'a'", False),
        ("has_tools == true and json == false", True),
        ("(tokens > 1 and has_tools) == true", True),
        ("not not has_tools", True),
        ("true", True),
        ("false or false", False),
        ("json or has_tools and false", False),
    ],
)
def test_conditions_evaluate(text: str, expected: bool) -> None:
    assert holds(text) is expected


def test_and_binds_tighter_than_or() -> None:
    # json or (has_tools and has_images): False or (True and False)
    assert holds("json or has_tools and has_images") is False
    assert holds("has_tools or json and has_images") is True


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "the condition is empty"),
        ("tokens >", "the condition ends too early"),
        ("tokens > 1 1", "unexpected '1' at column 12"),
        ("tokens = 1", "unexpected '=' at column 8"),
        ("size > 1", "unknown name 'size' at column 1"),
        ("key > 'a'", "needs numbers, not strings"),
        ("key == 3", "compares string with number"),
        ("tokens", "tokens is a number, not a condition"),
        ("has_tools and key", "key is a string, not a condition"),
        ("(tokens > 1", "the ( at column 1 is not closed"),
        ("1 < tokens < 5", "comparisons do not chain"),
        ("__import__('os')", "unknown name '__import__'"),
        ("tokens > 1 and", "the condition ends too early"),
    ],
)
def test_bad_conditions_say_what_and_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_condition(text)


BASE = """
[providers.sim]
kind = "simulated"

[routes.big]
fallback = ["sim:big"]
"""


def test_check_names_the_key_path_of_each_bad_rule() -> None:
    toml = (
        BASE
        + """
[routes.chat]
fallback = ["sim:small"]
when = [
  { if = "tokens > 10", use = "big" },
  { if = "tokens >>", use = "big" },
  { if = "has_tools", use = "nowhere" },
  { if = "has_tools", use = "other:x" },
  { if = 3, use = "big" },
  { if = "json", use = "big", then = 1 },
  { use = "big" },
]
"""
    )
    with pytest.raises(ConfigError) as info:
        parse(toml)
    assert info.value.errors == (
        "routes.chat.when[1].if: unexpected '>' at column 9",
        "routes.chat.when[4].if: expected a string, got 3",
        "routes.chat.when[5].then: unknown key",
        "routes.chat.when[6].if: required key missing",
    )
    fixed = toml.replace('"tokens >>"', '"json"').replace("if = 3", 'if = "json"')
    fixed = fixed.replace(", then = 1", "").replace("{ use", '{ if = "json", use')
    with pytest.raises(ConfigError) as info:
        parse(fixed)
    assert info.value.errors == (
        'routes.chat.when[2].use: unknown route "nowhere"',
        'routes.chat.when[3].use: unknown provider "other" in target "other:x"',
    )


def test_a_rule_that_leads_back_is_a_cycle() -> None:
    toml = BASE.replace(
        'fallback = ["sim:big"]', 'fallback = ["sim:big"]\nwhen = [{ if = "json", use = "chat" }]'
    )
    toml += '\n[routes.chat]\nfallback = ["big"]\n'
    with pytest.raises(ConfigError, match="route cycle big -> chat -> big"):
        parse(toml)


def test_a_complexity_plugin_must_import() -> None:
    toml = BASE + '\n[defaults]\ncomplexity = "no_such_module_here:score"\n'
    with pytest.raises(
        ConfigError, match=r"^defaults.complexity: cannot import no_such_module_here"
    ):
        parse(toml)
    with pytest.raises(ConfigError, match=r"defaults.complexity: .* is not a plugin reference"):
        parse(BASE + '\n[defaults]\ncomplexity = "json"\n')
    with pytest.raises(ConfigError, match=r"defaults.complexity: json has no nothing"):
        parse(BASE + '\n[defaults]\ncomplexity = "json:nothing"\n')
    assert parse(BASE + '\n[defaults]\ncomplexity = "json:loads"\n').defaults.complexity


def test_check_shows_the_rules_in_the_routing_tree() -> None:
    toml = (
        BASE
        + """
[routes.chat]
balance = "round_robin"
targets = ["sim:small"]
when = [{ if = "tokens > 8000", use = "big" }, { if = "has_tools", use = "sim:tools" }]
"""
    )
    table = compile_routes(parse(toml))
    tree = render_tree(table).split("\n\n")[2]
    assert tree.splitlines() == [
        "chat: balance round_robin",
        "├── when[0] if tokens > 8000 -> big: fallback (on: timeout, network, server_error, "
        "rate_limited, overloaded, context_length)",
        "│   └── sim:big",
        "├── when[1] if has_tools -> sim:tools",
        "└── sim:small",
    ]
    # What a rule can reach counts as the route's own.
    assert {str(t) for t in table.targets()} == {"sim:big", "sim:small", "sim:tools"}
