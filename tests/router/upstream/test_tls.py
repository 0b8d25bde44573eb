"""Client TLS contexts: built once per setting, off the event loop, errors by setting."""

from __future__ import annotations

import logging
import os
import ssl
import sys
import threading
import types
from typing import TYPE_CHECKING

import pytest
import trio
import trustme

from adapters import NetworkError, provider_kinds
from router.upstream._tls import (
    HTTPX_H1,
    SYSTEM,
    ClientTLS,
    client_tls,
    prepare_tls,
    prepare_tls_now,
    system_context,
)
from rules import ConfigError, SecretRef, TLSConfig, parse_config

if TYPE_CHECKING:
    from pathlib import Path

KINDS = provider_kinds()


def config_with(*providers: str) -> str:
    blocks = "\n".join(providers)
    return f'{blocks}\n[routes.chat]\nfallback = ["a:m"]\n'


def provider(name: str, extra: str = "") -> str:
    return f'[providers.{name}]\nkind = "openai"\nbase_url = "https://x.test/v1"\n{extra}\n'


def write_ca(tmp_path: Path, name: str = "ca.pem") -> tuple[trustme.CA, Path]:
    ca = trustme.CA()
    path = tmp_path / name
    ca.cert_pem.write_to_path(str(path))
    return ca, path


def client_cert(tmp_path: Path, ca: trustme.CA) -> tuple[Path, Path, str]:
    """A client certificate and its key (files), and the key as text."""
    issued = ca.issue_cert("client.test")
    cert, key = tmp_path / "client.pem", tmp_path / "client.key"
    issued.cert_chain_pems[0].write_to_path(str(cert))
    issued.private_key_pem.write_to_path(str(key))
    return cert, key, issued.private_key_pem.bytes().decode()


def test_providers_without_tls_share_the_system_context() -> None:
    config = parse_config(config_with(provider("a"), provider("b")), kinds=KINDS)
    found = prepare_tls_now(config, {})
    assert found["a"] is found["b"] is SYSTEM
    assert found["a"].context_now() is SYSTEM.context_now()  # one context, built once


def test_equal_settings_share_one_context_and_new_contents_make_another(
    tmp_path: Path,
) -> None:
    _, path = write_ca(tmp_path)
    tls = f'tls = {{ ca_file = "{path}" }}'
    config = parse_config(config_with(provider("a", tls), provider("b", tls)), kinds=KINDS)
    first = prepare_tls_now(config, {})
    assert first["a"] is first["b"]
    assert prepare_tls_now(config, {})["a"] is first["a"]  # nothing changed: the same
    write_ca(tmp_path)  # a renewed CA at the same path
    renewed = prepare_tls_now(config, {})
    assert renewed["a"].digest != first["a"].digest
    assert renewed["a"].context_now() is not first["a"].context_now()


def test_a_context_is_built_once_per_alpn() -> None:
    built: list[object] = []

    def build(alpn: tuple[str, ...] | None) -> ssl.SSLContext:
        built.append(alpn)
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    tls = ClientTLS(build, "test")
    for _ in range(3):
        tls.context_now()
        tls.context_now(HTTPX_H1)
    assert built == [None, HTTPX_H1]


async def test_a_missing_context_is_built_in_a_worker_thread() -> None:
    threads: list[int] = []

    def build(alpn: tuple[str, ...] | None) -> ssl.SSLContext:
        threads.append(threading.get_ident())
        return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)

    tls = ClientTLS(build, "test")
    async with trio.open_nursery() as nursery:
        for _ in range(10):  # a burst of new connections wanting it at once
            nursery.start_soon(tls.context)
    assert len(threads) == 1
    assert threads[0] != threading.main_thread().ident


async def test_prepare_tls_builds_in_a_worker_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, path = write_ca(tmp_path)
    config = parse_config(
        config_with(provider("a", f'tls = {{ ca_file = "{path}" }}')), kinds=KINDS
    )
    threads: list[int] = []
    original = ssl.create_default_context

    def recording(*args: object, **kwargs: object) -> ssl.SSLContext:
        threads.append(threading.get_ident())
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl, "create_default_context", recording)
    found = await prepare_tls(config, {})
    assert found["a"].context_now() is not None
    assert threads
    assert threading.main_thread().ident not in threads


def test_an_empty_system_store_is_said_in_the_log(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    (tmp_path / "certs").mkdir()
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "certs"))
    monkeypatch.setitem(sys.modules, "certifi", None)  # not installed
    monkeypatch.setattr("router.upstream._tls._warned_empty", False)
    with caplog.at_level(logging.WARNING, logger="llm_router"):
        context = system_context()
    assert context.cert_store_stats()["x509_ca"] == 0
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert "trust store is empty" in record.getMessage()
    assert "ca-certificates" in record.getMessage()


def test_an_empty_system_store_falls_back_to_certifi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    _, bundle = write_ca(tmp_path, "bundle.pem")
    empty = tmp_path / "empty.pem"
    empty.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(empty))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "none"))
    certifi = types.ModuleType("certifi")
    certifi.where = lambda: str(bundle)  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "certifi", certifi)
    monkeypatch.setattr("router.upstream._tls._warned_empty", False)
    with caplog.at_level(logging.WARNING, logger="llm_router"):
        context = system_context()
    assert context.cert_store_stats()["x509_ca"] == 1
    assert "using certifi's bundle" in caplog.records[0].getMessage()


def test_the_system_store_is_not_called_empty_when_it_has_certificates(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("router.upstream._tls._warned_empty", False)
    with caplog.at_level(logging.WARNING, logger="llm_router"):
        system_context()
    assert not caplog.records


# --- errors name the setting --------------------------------------------------------


def test_an_unreadable_ca_file_names_the_setting(tmp_path: Path) -> None:
    settings = TLSConfig(ca_file=str(tmp_path / "missing.pem"))
    with pytest.raises(ConfigError) as caught:
        client_tls("up", settings)
    assert caught.value.errors == (
        f"providers.up.tls.ca_file: cannot read {tmp_path / 'missing.pem'}: No such file or directory",
    )


def test_a_ca_file_without_a_certificate_names_the_setting(tmp_path: Path) -> None:
    path = tmp_path / "ca.pem"
    path.write_text("not a certificate\n")
    with pytest.raises(ConfigError, match=r"^providers\.up\.tls\.ca_file: .* holds no PEM"):
        client_tls("up", TLSConfig(ca_file=str(path)))


def test_a_key_that_does_not_match_names_key_file(tmp_path: Path) -> None:
    ca, _ = write_ca(tmp_path)
    cert, _, _ = client_cert(tmp_path, ca)
    other = ca.issue_cert("other.test")
    other_key = tmp_path / "other.key"
    other.private_key_pem.write_to_path(str(other_key))
    settings = TLSConfig(cert_file=str(cert), key_file=SecretRef("file", str(other_key)))
    with pytest.raises(ConfigError, match=r"^providers\.up\.tls\.key_file: the key does not match"):
        client_tls("up", settings)


def test_a_key_held_in_the_environment_loads_and_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ca, _ = write_ca(tmp_path)
    cert, _, pem = client_cert(tmp_path, ca)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    modes: list[int] = []
    original = ssl.SSLContext.load_cert_chain

    def spy(self: ssl.SSLContext, certfile: str, keyfile: str | None = None) -> None:
        assert keyfile is not None
        modes.append(os.stat(keyfile).st_mode & 0o777)
        original(self, certfile, keyfile)

    monkeypatch.setattr(ssl.SSLContext, "load_cert_chain", spy)
    settings = TLSConfig(cert_file=str(cert), key_file=SecretRef("env", "CLIENT_KEY"))
    tls = client_tls("up", settings, pem)
    assert tls.context_now() is not None
    assert modes == [0o600]  # private while it existed
    assert list(scratch.iterdir()) == []  # and gone at once


def test_a_bad_key_in_the_environment_names_the_setting_not_the_value(tmp_path: Path) -> None:
    ca, _ = write_ca(tmp_path)
    cert, _, _ = client_cert(tmp_path, ca)
    value = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LXZhbHVlLTEyMzQ1\n-----END PRIVATE KEY-----\n"
    settings = TLSConfig(cert_file=str(cert), key_file=SecretRef("env", "CLIENT_KEY"))
    with pytest.raises(ConfigError) as caught:
        client_tls("up", settings, value)
    (line,) = caught.value.errors
    assert line.startswith("providers.up.tls.key_file: ")
    assert "c2VjcmV0" not in line


def test_a_key_secret_that_cannot_be_read_names_the_setting(tmp_path: Path) -> None:
    ca, _ = write_ca(tmp_path)
    cert, _, _ = client_cert(tmp_path, ca)
    settings = TLSConfig(cert_file=str(cert), key_file=SecretRef("env", "LLM_ROUTER_UNSET_KEY"))
    with pytest.raises(ConfigError, match=r"^providers\.up\.tls\.key_file: secret env:"):
        client_tls("up", settings)


def test_prepare_tls_reports_every_provider_at_once(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    text = config_with(
        provider("a", f'tls = {{ ca_file = "{missing}" }}'),
        provider("b", f'tls = {{ cert_file = "{missing}" }}'),
    )
    with pytest.raises(ConfigError) as caught:
        prepare_tls_now(parse_config(text, kinds=KINDS), {})
    assert [e.split(":")[0] for e in caught.value.errors] == [
        "providers.a.tls.ca_file",
        "providers.b.tls.cert_file",
    ]


async def test_a_context_that_cannot_be_built_later_fails_the_connection(tmp_path: Path) -> None:
    """A context for another ALPN list is built on first use; its certificate file may
    have gone since: the connection fails as one that cannot connect, naming why."""
    ca, _ = write_ca(tmp_path)
    cert, key, _ = client_cert(tmp_path, ca)
    settings = TLSConfig(cert_file=str(cert), key_file=SecretRef("file", str(key)))
    tls = client_tls("up", settings)
    cert.unlink()
    with pytest.raises(NetworkError, match=r"cannot set up TLS: providers\.up\.tls\.cert_file"):
        await tls.context(HTTPX_H1)
