"""``server.shared_state``: a Redis URL alone or a table; a password only by reference."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from rules import RedisURL, SecretRef, TLSConfig
from tests.rules.test_rules_load import BASE, errors, parse

if TYPE_CHECKING:
    from pathlib import Path


def test_absent_by_default() -> None:
    assert parse(BASE).server.shared_state is None


@pytest.mark.parametrize(
    ("url", "parsed", "shown"),
    [
        ("redis://10.0.0.5", RedisURL("redis", "10.0.0.5"), "redis://10.0.0.5:6379/0"),
        ("redis://h:7000/3", RedisURL("redis", "h", 7000, 3), "redis://h:7000/3"),
        ("rediss://app@h:6380/1", RedisURL("rediss", "h", 6380, 1, "app"), "rediss://app@h:6380/1"),
        ("redis://[::1]:6379", RedisURL("redis", "::1"), "redis://[::1]:6379/0"),
        (
            "unix:///run/r.sock?db=2",
            RedisURL("unix", "/run/r.sock", 0, 2),
            "unix:///run/r.sock?db=2",
        ),
    ],
)
def test_a_url_alone(url: str, parsed: RedisURL, shown: str) -> None:
    shared = parse(f'[server]\nshared_state = "{url}"\n' + BASE).server.shared_state
    assert shared is not None
    assert shared.url == parsed
    assert str(shared.url) == shown
    assert (shared.password, shared.timeout, shared.prefix) == (None, 0.05, "llm-router")


def test_a_table() -> None:
    text = '[server]\nshared_state = { url = "redis://h", password = "env:RP", timeout = "20ms", prefix = "x" }\n'
    shared = parse(text + BASE).server.shared_state
    assert shared is not None
    assert shared.password == SecretRef.parse("env:RP")
    assert (shared.timeout, shared.prefix) == (0.02, "x")


def test_errors_name_the_key_and_never_the_password() -> None:
    text = '[server]\nshared_state = "redis://:hunter2secret@h:6379/0"\n'
    (message,) = errors(text + BASE)
    assert message.startswith("server.shared_state: holds a password")
    assert "hunter2" not in message
    bad = '[server]\nshared_state = { url = "http://h", password = "hunter2secret", timeout = 0 }\n'
    problems = errors(bad + BASE)
    assert problems == [
        "server.shared_state.url: must be redis://HOST[:PORT][/DB], rediss://HOST[:PORT][/DB]"
        " or unix:///PATH[?db=N]",
        "server.shared_state.password: must be a secret reference (env:NAME, file:PATH,"
        " cred:NAME, aws-sm:NAME[#key] or vault:PATH#key), not a literal key",
        "server.shared_state.timeout: must be greater than 0, got 0",
    ]
    assert errors('[server]\nshared_state = "redis://h/x"\n' + BASE) == [
        "server.shared_state: must be redis://HOST[:PORT][/DB], rediss://HOST[:PORT][/DB]"
        " or unix:///PATH[?db=N] (the database is a number: /0)"
    ]


def test_tls_takes_a_providers_shape_and_needs_rediss(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("-----BEGIN CERTIFICATE-----\n")
    tls = f'tls = {{ ca_file = "{ca}", cert_file = "{ca}", key_file = "file:{ca}" }}'
    text = f'[server]\nshared_state = {{ url = "rediss://h:6380", {tls} }}\n'
    shared = parse(text + BASE).server.shared_state
    assert shared is not None
    assert shared.tls == TLSConfig(str(ca), str(ca), SecretRef.parse(f"file:{ca}"))
    plain = f'[server]\nshared_state = {{ url = "redis://h", tls = {{ ca_file = "{ca}" }} }}\n'
    assert errors(plain + BASE) == [
        "server.shared_state.tls: tls needs a rediss:// URL (TLS to Redis)"
    ]
    unverified = '[server]\nshared_state = { url = "rediss://h", tls = { verify = false } }\n'
    shared = parse(unverified + BASE).server.shared_state
    assert shared is not None
    assert shared.tls == TLSConfig(verify=False)
