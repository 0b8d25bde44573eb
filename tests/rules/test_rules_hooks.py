"""Content hooks, pure: what the PII finder reports, what hooks make of a text, and that
a stream of text in any chunking comes out as the whole text would."""

from __future__ import annotations

from functools import partial

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import provider_kinds
from rules import (
    PII_CATEGORIES,
    Blocked,
    ConfigError,
    PIIHookConfig,
    RegexHookConfig,
    TextHook,
    TextStream,
    apply_hooks,
    compile_hook,
    compile_routes,
    find_pii,
    parse_config,
    render_tree,
)
from rules._pii import iban_valid, luhn_valid

parse = partial(parse_config, kinds=provider_kinds())
PII = compile_hook("pii", PIIHookConfig())
SECRET = compile_hook("secret", RegexHookConfig(patterns=(r"project-[a-z]{3,8}",)))


def found(text: str) -> list[tuple[str, str]]:
    return [(c, text[s:e]) for s, e, c in find_pii(text, PII_CATEGORIES)]


def test_check_digits() -> None:
    assert luhn_valid("4111111111111111")
    assert not luhn_valid("4111111111111112")
    assert iban_valid("DE89370400440532013000")
    assert iban_valid("GB82WEST12345698765432")
    assert not iban_valid("DE89370400440532013001")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("write to jane.doe+x@mail.example.org today", [("email", "jane.doe+x@mail.example.org")]),
        ("card 4111 1111 1111 1111.", [("card", "4111 1111 1111 1111")]),
        ("card 4111-1111-1111-1111", [("card", "4111-1111-1111-1111")]),
        ("not a card 4111 1111 1111 1112", []),
        ("IBAN DE89 3704 0044 0532 0130 00 AND MORE", [("iban", "DE89 3704 0044 0532 0130 00")]),
        ("IBAN GB82WEST12345698765432", [("iban", "GB82WEST12345698765432")]),
        ("bad DE89 3704 0044 0532 0130 01", []),
        ("key sk-proj-abcdefghijklmnopqrstuvwx", [("api_key", "sk-proj-abcdefghijklmnopqrstuvwx")]),
        ("aws AKIAIOSFODNN7EXAMPLE", [("api_key", "AKIAIOSFODNN7EXAMPLE")]),
        ("call +1 415-555-0132 now", [("phone", "+1 415-555-0132")]),
        ("call (030) 1234 5678", [("phone", "(030) 1234 5678")]),
        ("in 2019 we sold 1234567890 units", []),
        ("host 192.168.100.200 on 2024-01-15", []),
    ],
)
def test_pii_found(text: str, expected: list[tuple[str, str]]) -> None:
    assert found(text) == expected


def test_redact_and_block() -> None:
    text = "mail a@b.example, card 4111111111111111"
    assert apply_hooks([PII], text, "request") == "mail [EMAIL], card [CARD]"
    only_cards = compile_hook("c", PIIHookConfig(categories=("card",), replacement="<x>"))
    assert apply_hooks([only_cards], text, "request") == "mail a@b.example, card <x>"
    blocker = compile_hook("no-pii", PIIHookConfig(action="block"))
    with pytest.raises(Blocked, match='blocked by hook "no-pii"') as caught:
        apply_hooks([blocker], text, "response")
    assert caught.value.direction == "response"
    assert apply_hooks([blocker], "nothing here", "response") == "nothing here"


def test_hooks_run_only_on_their_direction() -> None:
    answers = compile_hook("a", RegexHookConfig(patterns=("x",), on=("response",)))
    assert apply_hooks([answers], "x", "request") == "x"
    assert apply_hooks([answers], "x", "response") == "[REDACTED]"


def run_stream(hooks: list[TextHook], pieces: list[str]) -> str:
    stream = TextStream(hooks, "response")
    return "".join(stream.feed(p) for p in pieces) + stream.flush()


TEXTS = [
    "Reach me at jane.doe@mail.example.org or +1 415-555-0132; card 4111 1111 1111 1111.",
    "IBAN DE89 3704 0044 0532 0130 00 and key sk-abcdefghijklmnopqrstuvwxyz012345 end",
    "the project-alpha plan and project-beta, nothing else",
]


@pytest.mark.parametrize("text", TEXTS)
def test_stream_split_at_every_offset(text: str) -> None:
    hooks = [PII, SECRET]
    whole = apply_hooks(hooks, text, "response")
    for cut in range(len(text) + 1):
        assert run_stream(hooks, [text[:cut], text[cut:]]) == whole


@given(st.sampled_from(TEXTS), st.lists(st.integers(0, 100), max_size=12))
def test_stream_in_any_chunking(text: str, cuts: list[int]) -> None:
    points = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *points], [*points, len(text)], strict=True)]
    assert run_stream([PII, SECRET], pieces) == apply_hooks([PII, SECRET], text, "response")


def test_stream_holds_back_only_a_window() -> None:
    stream = TextStream([SECRET], "response")
    out = stream.feed("a" * 100)
    assert out == "a" * (100 - SECRET.window)
    assert len(out) + len(stream.flush()) == 100


def test_stream_blocks_a_split_match() -> None:
    blocker = compile_hook("b", RegexHookConfig(patterns=("forbidden",), action="block"))
    stream = TextStream([blocker], "response")
    assert stream.feed("this is forb") == "thi"  # the last 9 characters held back
    with pytest.raises(Blocked):
        stream.feed("idden")


CONFIG = """
[providers.sim]
kind = "simulated"

[hooks.pii]
kind = "pii"
categories = ["email", "passport"]

[hooks.words]
kind = "regex"
patterns = ["fine", "a(b"]

[hooks.plug]
kind = "plugin"
callable = "tests.nowhere:fn"

[hooks.other]
kind = "scanner"

[routes.chat]
fallback = ["sim:echo"]
"""


def test_check_names_each_bad_hook() -> None:
    with pytest.raises(ConfigError) as caught:
        parse(CONFIG)
    assert caught.value.errors == (
        'hooks.pii.categories[1]: unknown value "passport" '
        "(allowed: email, phone, card, iban, api_key)",
        'hooks.words.patterns[1]: "a(b" is not a regular expression: missing ), '
        "unterminated subpattern at position 1",
        "hooks.plug.callable: cannot load \"tests.nowhere:fn\": ModuleNotFoundError: No module named 'tests.nowhere'",
        'hooks.other.kind: unknown hook kind "scanner" (known: regex, pii, plugin)',
    )


def test_check_names_unknown_hooks_of_routes() -> None:
    text = """
[providers.sim]
kind = "simulated"
[hooks.pii]
kind = "pii"
[defaults]
hooks = ["nope"]
[routes.chat]
fallback = ["sim:echo"]
hooks = ["pii", "missing"]
"""
    with pytest.raises(ConfigError) as caught:
        parse(text)
    assert caught.value.errors == (
        'defaults.hooks[0]: unknown hook "nope" (no [hooks.nope])',
        'routes.chat.hooks[1]: unknown hook "missing" (no [hooks.missing])',
    )


def test_plugin_loads_by_module_and_name() -> None:
    text = """
[providers.sim]
kind = "simulated"
[hooks.shout]
kind = "plugin"
callable = "tests.router.http.hook_plugin:shout"
[routes.chat]
fallback = ["sim:echo"]
hooks = ["shout"]
"""
    config = parse(text)
    assert "hooks shout" in render_tree(compile_routes(config))  # what `check` prints
    hook = compile_hook("shout", config.hooks["shout"])
    assert apply_hooks([hook], "hi", "request") == "HI"
    with pytest.raises(Blocked):
        apply_hooks([hook], "forbidden", "request")
