"""A provider's ``tls`` and ``proxy`` settings: their forms, checks and warnings."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from adapters import provider_kinds
from rules import (
    ConfigError,
    HTTPProvider,
    ProxyURL,
    SecretRef,
    TLSConfig,
    compile_routes,
    connection_warnings,
    load_config,
    parse_config,
    render_tree,
)

if TYPE_CHECKING:
    from pathlib import Path

KINDS = provider_kinds()


def config(extra: str) -> str:
    return (
        '[providers.up]\nkind = "openai"\nbase_url = "https://api.test/v1"\n'
        f'{extra}\n[routes.chat]\nfallback = ["up:m"]\n'
    )


def up(extra: str) -> HTTPProvider:
    provider = parse_config(config(extra), kinds=KINDS).providers["up"]
    assert isinstance(provider, HTTPProvider)
    return provider


def errors(extra: str) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_config(config(extra), kinds=KINDS)
    return caught.value.errors


def test_tls_defaults_and_fields() -> None:
    assert up("").tls is None
    provider = up(
        'tls = { ca_file = "/etc/ca.pem", cert_file = "/etc/c.pem",'
        ' key_file = "env:CLIENT_KEY", verify = true }'
    )
    assert provider.tls == TLSConfig(
        "/etc/ca.pem", "/etc/c.pem", SecretRef("env", "CLIENT_KEY"), verify=True
    )


def test_relative_tls_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    folder = tmp_path / "conf"
    folder.mkdir()
    path = folder / "router.toml"
    path.write_text(
        config('tls = { ca_file = "certs/ca.pem", cert_file = "c.pem", key_file = "file:c.key" }')
    )
    provider = load_config(path, kinds=KINDS).providers["up"]
    assert isinstance(provider, HTTPProvider)
    assert provider.tls is not None
    assert provider.tls.ca_file == str(folder / "certs/ca.pem")
    assert provider.tls.cert_file == str(folder / "c.pem")
    assert provider.tls.key_file is not None
    assert provider.tls.key_file.path() == folder / "c.key"


def test_key_file_needs_cert_file() -> None:
    assert errors('tls = { key_file = "env:K" }') == (
        "providers.up.tls.key_file: key_file needs cert_file (the certificate it goes with)",
    )


def test_ca_file_has_no_effect_without_verification() -> None:
    assert errors('tls = { ca_file = "ca.pem", verify = false }') == (
        "providers.up.tls.ca_file: ca_file has no effect with verify = false",
    )


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ('tls = { ca_file = "" }', "providers.up.tls.ca_file: must not be empty"),
        ("tls = { ca_file = 3 }", "providers.up.tls.ca_file: expected a string, got 3"),
        ('tls = { verify = "no" }', 'providers.up.tls.verify: expected true or false, got "no"'),
        ('tls = { key_file = "sk-live-key" }', "providers.up.tls.key_file: must be a secret"),
        ('tls = { ca = "x" }', "providers.up.tls.ca: unknown key"),
    ],
)
def test_bad_tls_values(extra: str, message: str) -> None:
    (line,) = errors(extra)
    assert line.startswith(message)


def test_proxy_forms() -> None:
    assert up("").proxy is None
    assert up('proxy = "env"').proxy == "env"
    assert up('proxy = "env:EGRESS_PROXY_URL"').proxy == SecretRef("env", "EGRESS_PROXY_URL")
    assert up('proxy = "http://proxy.internal:3128"').proxy == ProxyURL("proxy.internal", 3128)
    assert up('proxy = "http://us%3Aer:p%40ss@[fd00::1]:3128/"').proxy == ProxyURL(
        "fd00::1", 3128, "us:er", "p@ss"
    )


def test_a_proxy_url_never_prints_its_credentials() -> None:
    proxy = ProxyURL.parse("http://user:secret-pw@proxy.internal:3128")
    assert str(proxy) == "http://proxy.internal:3128"
    assert repr(proxy) == "ProxyURL('http://proxy.internal:3128')"
    assert str(ProxyURL("fd00::1", 8080)) == "http://[fd00::1]:8080"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("https://user:secret-pw@proxy.internal:443", "only http:// proxies are supported"),
        ("socks5://user:secret-pw@proxy.internal:1080", "only http:// proxies are supported"),
        ("http://user:secret-pw@proxy.internal", "needs a port (http://HOST:PORT)"),
        ("http://user:secret-pw@:3128", "needs a host (http://HOST:PORT)"),
        ("http://user:secret-pw@proxy.internal:99999", "is not a URL of the form"),
        ("http://user:secret-pw@proxy.internal:3128/path", "must be http://HOST:PORT alone"),
        ("secret-pw", 'must be "http://HOST:PORT"'),
        ("environment", 'must be "http://HOST:PORT"'),
    ],
)
def test_bad_proxies_never_quote_the_value(value: str, message: str) -> None:
    (line,) = errors(f'proxy = "{value}"')
    assert line.startswith(f"providers.up.proxy: {message}")
    assert "secret-pw" not in line


def test_a_proxy_must_be_a_string() -> None:
    (line,) = errors("proxy = 3128")
    assert line.startswith('providers.up.proxy: must be "http://HOST:PORT"')


def test_warnings_for_risky_connections() -> None:
    loaded = parse_config(
        config('tls = { verify = false }\nproxy = "http://user:secret-pw@proxy.internal:3128"'),
        kinds=KINDS,
    )
    assert connection_warnings(loaded.providers) == [
        "providers.up.tls.verify = false: the upstream's certificate is NOT checked; anyone"
        " on the path can read and change the traffic, keys included",
        "providers.up.proxy: the proxy password is written in the config file; a secret"
        ' reference keeps it out (proxy = "env:NAME")',
    ]
    safe = parse_config(config('proxy = "env:EGRESS_PROXY_URL"'), kinds=KINDS)
    assert connection_warnings(safe.providers) == []


def test_check_shows_how_a_provider_is_reached() -> None:
    loaded = parse_config(
        config(
            'tls = { ca_file = "/etc/ca.pem", cert_file = "/etc/c.pem", key_file = "env:K" }\n'
            'proxy = "http://user:secret-pw@proxy.internal:3128"'
        ),
        kinds=KINDS,
    )
    first = render_tree(compile_routes(loaded)).splitlines()[0]
    assert first == (
        "providers: up (openai, https://api.test/v1, trusting /etc/ca.pem, client certificate"
        " /etc/c.pem, proxy http://proxy.internal:3128)"
    )
    unverified = parse_config(config('tls = { verify = false }\nproxy = "env"'), kinds=KINDS)
    assert render_tree(compile_routes(unverified)).splitlines()[0] == (
        "providers: up (openai, https://api.test/v1, certificate NOT verified, proxy env)"
    )
