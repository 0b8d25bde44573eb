"""A route's ``validate``: how it is written and checked at load, and what its compiled
check says of answers."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from adapters import provider_kinds
from rules import Config, ConfigError, Leaf, compile_routes, load_config, render_tree, schema_check

if TYPE_CHECKING:
    from pathlib import Path

ROUTE = """
[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]
validate = {validate}
"""
SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}


def load(tmp_path: Path, validate: str) -> Config:
    path = tmp_path / "router.toml"
    path.write_text(ROUTE.format(validate=validate))
    return load_config(path, kinds=provider_kinds())


def test_json_and_schema(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    json_only = compile_routes(load(tmp_path, '"json"')).routes["chat"]
    assert not isinstance(json_only, Leaf)
    check = json_only.settings.check
    assert check is not None
    assert check.problem('{"any": 1}') is None
    assert "not JSON" in (check.problem("echo: hi") or "")
    table = compile_routes(load(tmp_path, '{ schema = "file:s.json" }'))
    assert "validate file:s.json" in render_tree(table)  # what `check` prints
    schema = table.routes["chat"]
    assert not isinstance(schema, Leaf)
    check = schema.settings.check
    assert check is not None
    assert check.problem('{"n": 3}') is None
    assert check.problem('{"n": "3"}') == (
        "the answer does not match its schema at n: '3' is not of type 'integer'"
    )


@pytest.mark.parametrize(
    ("validate", "expected"),
    [
        ('"yaml"', 'routes.chat.validate: expected "json" or { schema = "file:PATH" }, got "yaml"'),
        (
            '{ schema = "s.json" }',
            'routes.chat.validate.schema: expected "file:PATH", got "s.json"',
        ),
        ('{ schema = "file:none.json" }', "routes.chat.validate.schema: cannot read"),
        ('{ schema = "file:bad.json" }', "routes.chat.validate.schema: "),
        ('{ schema = "file:s.json", strict = true }', "routes.chat.validate.strict: unknown key"),
    ],
)
def test_bad_validate_is_named_by_key_path(tmp_path: Path, validate: str, expected: str) -> None:
    (tmp_path / "s.json").write_text(json.dumps(SCHEMA))
    (tmp_path / "bad.json").write_text(json.dumps({"type": "no-such-type"}))
    with pytest.raises(ConfigError) as caught:
        load(tmp_path, validate)
    [error] = caught.value.errors
    assert error.startswith(expected)


def test_bad_schema_says_why(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text(json.dumps({"type": "no-such-type"}))
    with pytest.raises(ConfigError, match="is not a valid JSON Schema"):
        load(tmp_path, '{ schema = "file:bad.json" }')


def test_the_clients_response_format() -> None:
    wanted = {"type": "json_schema", "json_schema": {"name": "n", "schema": SCHEMA}}
    check = schema_check(wanted)
    assert check is not None
    assert check.problem('{"n": 1}') is None
    assert check.problem('{"m": 1}') is not None
    assert schema_check({"type": "json_object"}) is None
    assert schema_check(None) is None
    broken = {"type": "json_schema", "json_schema": {"schema": {"type": 5}}}
    assert schema_check(broken) is None  # the upstream says what is wrong with it
