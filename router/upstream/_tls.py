"""Client TLS contexts: built once per distinct setting, off the event loop, shared.

A context with the system's trust store costs ~30-60 ms of CPU to build (it parses
every CA certificate the system has, 144 here); one built per connection froze the
event loop for seconds under a burst of new connections. So contexts are built:

- once per process for the system's store (:data:`SYSTEM`, every provider without
  ``tls`` shares it), and once per distinct ``tls`` setting and file contents (two
  providers with the same ``tls`` share one);
- in a worker thread (:func:`prepare_tls`, at start and on each reload, beside the
  secrets), or, when a connection needs one not built yet, through
  :meth:`ClientTLS.context`, in a worker thread too: never on the event loop.

ALPN is a property of a context in Python (there is no per-connection setting), so a
:class:`ClientTLS` holds one context per ALPN list it was asked for (the h11 pool asks
for none; httpx2 sets its own list on the context it is given, so it gets one of its
own with that same list).

Trust store: ``ssl.create_default_context()`` (OpenSSL's default paths, i.e. the OS
bundle; ``SSL_CERT_FILE``/``SSL_CERT_DIR`` honoured). ``truststore`` builds in under
1 ms but, on Linux, re-reads the whole system bundle on *every* connection (~50 ms of
CPU per handshake, measured), and ``certifi`` costs the same to build as the system
store and ignores CAs the operator added to the OS. Measurements: ``docs/providers.md``.
An empty system store is said in the log at once (and certifi's bundle is used if
certifi is installed).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import ssl
import tempfile
import threading
import weakref
from typing import TYPE_CHECKING

import trio
from trio.lowlevel import RunVar

from adapters import NetworkError
from rules import ConfigError, HTTPProvider, SecretRef, TLSConfig

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from rules import Config

__all__ = [
    "ALPN",
    "SYSTEM",
    "ClientTLS",
    "client_tls",
    "prepare_tls",
    "prepare_tls_now",
    "system_context",
]

log = logging.getLogger("llm_router")

#: An ALPN protocol list, e.g. ``("h2", "http/1.1")``; None: no ALPN extension.
ALPN = tuple[str, ...] | None

# Contexts are built in threads of their own: a slow disk must not hold up the
# default limiter, which reads the config file. One per trio run: a token is given
# back through the run that lent it.
_BUILDERS: RunVar[trio.CapacityLimiter] = RunVar("tls_builders")


def _builders() -> trio.CapacityLimiter:
    try:
        return _BUILDERS.get()
    except LookupError:
        limiter = trio.CapacityLimiter(2)
        _BUILDERS.set(limiter)
        return limiter


class ClientTLS:
    """The TLS side of one provider's connections: its contexts, one per ALPN list.

    Args:
        build: Builds a context for an ALPN list; blocking (parses files).
        digest: What the contexts are built from (settings and file contents): equal
            digests make equal contexts, so a reload can keep the upstream.
    """

    def __init__(self, build: Callable[[ALPN], ssl.SSLContext], digest: str) -> None:
        self._build = build
        self.digest = digest
        self._contexts: dict[ALPN, ssl.SSLContext] = {}
        self._lock = threading.Lock()

    @classmethod
    def fixed(cls, context: ssl.SSLContext) -> ClientTLS:
        """A given context, used as it is whatever ALPN is asked for (tests, callers
        with their own context)."""
        tls = cls(lambda _alpn: context, f"fixed:{id(context)}")
        tls._contexts[None] = context
        return tls

    def context_now(self, alpn: ALPN = None) -> ssl.SSLContext:
        """The context for ``alpn``, built now if it is not yet (blocking: call it in a
        worker thread)."""
        with self._lock:
            context = self._contexts.get(alpn)
            if context is None:
                context = self._contexts[alpn] = self._build(alpn)
            return context

    async def context(self, alpn: ALPN = None) -> ssl.SSLContext:
        """The context for ``alpn``; one not built yet is built in a worker thread.

        Raises:
            NetworkError: it cannot be built (a certificate file gone since the
                provider was built): the connection fails, as one that cannot connect.
        """
        context = self._contexts.get(alpn)
        if context is not None:
            return context
        try:
            return await trio.to_thread.run_sync(self.context_now, alpn, limiter=_builders())
        except ConfigError as exc:
            raise NetworkError(f"cannot set up TLS: {exc}") from None


def _with_alpn(context: ssl.SSLContext, alpn: ALPN) -> ssl.SSLContext:
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


# --- the system's trust store ------------------------------------------------------


def system_context(alpn: ALPN = None) -> ssl.SSLContext:
    """A new context verifying against the system's trust store (blocking, ~40 ms).

    An empty store (a minimal container without ``ca-certificates``) is logged as an
    error, since every https upstream will then fail; certifi's bundle is used instead
    when certifi is installed.
    """
    context = ssl.create_default_context()
    if _store_is_empty(context):
        _use_fallback(context)
    return _with_alpn(context, alpn)


_HASHED_NAME = re.compile(r"[0-9a-f]{8}\.[0-9]+")


def _store_is_empty(context: ssl.SSLContext) -> bool:
    if context.cert_store_stats()["x509_ca"]:
        return False
    # A capath (a folder of hashed names) is read lazily: count what it holds.
    capath = ssl.get_default_verify_paths().capath
    try:
        return not any(_HASHED_NAME.fullmatch(name) for name in os.listdir(capath or ""))
    except OSError:
        return True


_warned_empty = False


def _use_fallback(context: ssl.SSLContext) -> None:
    global _warned_empty
    paths = ssl.get_default_verify_paths()
    where = f"{paths.openssl_cafile} and {paths.openssl_capath}"
    try:
        import certifi  # type: ignore[import-not-found,unused-ignore]  # optional
    except ImportError:
        if not _warned_empty:
            _warned_empty = True
            log.error(
                "the system's TLS trust store is empty (no CA certificates in %s): every"
                " https upstream will fail verification; install the ca-certificates"
                " package, set SSL_CERT_FILE, or give providers tls.ca_file",
                where,
            )
        return
    context.load_verify_locations(cafile=certifi.where())
    if not _warned_empty:
        _warned_empty = True
        log.warning(
            "the system's TLS trust store is empty (no CA certificates in %s): using"
            " certifi's bundle instead (%s)",
            where,
            certifi.where(),
        )


#: The system's trust store, shared by every provider without ``tls``.
SYSTEM = ClientTLS(system_context, "system")


# --- a provider's own settings -----------------------------------------------------

# Equal settings and file contents share their ClientTLS while some upstream uses it.
_SHARED: weakref.WeakValueDictionary[tuple[TLSConfig, str], ClientTLS] = (
    weakref.WeakValueDictionary()
)
_SHARED_LOCK = threading.Lock()


def client_tls(
    name: str, settings: TLSConfig | None, key: str | None = None, where: str | None = None
) -> ClientTLS:
    """The TLS of provider ``name`` (blocking: reads files, builds its first context).

    Args:
        settings: Its ``tls``; None is the system's store (:data:`SYSTEM`).
        key: The value of ``tls.key_file``'s secret (a PEM block), read already; read
            here when None.
        where: The setting errors name (``providers.NAME.tls`` unless given).

    Raises:
        ConfigError: a file cannot be read or holds no certificate, the key cannot be
            read or does not match the certificate. Each names its setting, never a
            secret's value.
    """
    if settings is None:
        return SYSTEM  # built once, by prepare_tls or by the first https connection
    where = where or f"providers.{name}.tls"
    ca = _read(f"{where}.ca_file", settings.ca_file) if settings.ca_file else None
    cert = _read(f"{where}.cert_file", settings.cert_file) if settings.cert_file else None
    if settings.key_file is not None and key is None:
        try:
            key = settings.key_file.resolve(multiline=True)
        except ConfigError as exc:
            raise ConfigError(tuple(f"{where}.key_file: {e}" for e in exc.errors)) from None
    digest = hashlib.sha256(
        repr((settings, ca, cert, key)).encode("utf-8", "surrogateescape")
    ).hexdigest()
    with _SHARED_LOCK:
        shared = _SHARED.get((settings, digest))
        if shared is None:
            shared = ClientTLS(_Builder(where, settings, ca, key), digest)
            shared.context_now()  # its errors are the config's, now
            _SHARED[(settings, digest)] = shared
    return shared


def _read(setting: str, path: str) -> bytes:
    try:
        with open(path, "rb") as file:
            data = file.read()
    except OSError as exc:
        raise ConfigError(f"{setting}: cannot read {path}: {exc.strerror}") from None
    if b"-----BEGIN CERTIFICATE-----" not in data:
        raise ConfigError(
            f"{setting}: {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        )
    return data


class _Builder:
    """Builds one provider's contexts from its settings and what its files held."""

    def __init__(self, where: str, settings: TLSConfig, ca: bytes | None, key: str | None) -> None:
        self._where = where
        self._settings = settings
        self._ca = ca
        self._key = key

    def __call__(self, alpn: ALPN) -> ssl.SSLContext:
        settings = self._settings
        if not settings.verify:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        elif self._ca is not None:
            # Only the given CAs: a private CA's upstream needs no public one (and
            # skipping the system's store makes the context cheap).
            try:
                context = ssl.create_default_context(cadata=self._ca.decode("latin-1"))
            except ssl.SSLError as exc:
                raise ConfigError(
                    f"{self._where}.ca_file: {settings.ca_file} holds a certificate that"
                    f" cannot be read ({exc.reason or 'not PEM'})"
                ) from None
        else:
            context = system_context()
        if settings.cert_file is not None:
            self._load_cert_chain(context, settings.cert_file, settings.key_file)
        return _with_alpn(context, alpn)

    def _load_cert_chain(
        self, context: ssl.SSLContext, cert_file: str, key_ref: SecretRef | None
    ) -> None:
        where = self._where
        try:
            if key_ref is None:
                context.load_cert_chain(cert_file)
            elif key_ref.scheme in ("file", "cred"):
                context.load_cert_chain(cert_file, key_ref.path())  # the file itself
            else:
                _load_with_key_text(context, cert_file, self._key or "")
        except ssl.SSLError as exc:
            reason = exc.reason or "not PEM"
            if reason == "KEY_VALUES_MISMATCH":
                raise ConfigError(
                    f"{where}.key_file: the key does not match {where}.cert_file's certificate"
                ) from None
            setting = "cert_file" if key_ref is None else "key_file"
            raise ConfigError(
                f"{where}.{setting}: not a PEM private key the certificate goes with ({reason})"
            ) from None
        except OSError as exc:
            raise ConfigError(
                f"{where}.cert_file: cannot read {cert_file}: {exc.strerror}"
            ) from None


def _load_with_key_text(context: ssl.SSLContext, cert_file: str, key: str) -> None:
    """``load_cert_chain`` takes paths only: a key held in memory (``env:``) goes
    through a private file (mode 0600) that is deleted as soon as it is read."""
    fd, path = tempfile.mkstemp(prefix="llm-router-key-", suffix=".pem")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(key)
        context.load_cert_chain(cert_file, path)
    finally:
        os.unlink(path)


# --- for a whole config ------------------------------------------------------------


def prepare_tls_now(config: Config, secrets: Mapping[SecretRef, str]) -> dict[str, ClientTLS]:
    """Every HTTP provider's TLS (blocking; :func:`prepare_tls` runs it off the loop).

    The contexts a provider's transport will use are built now: none with ALPN for the
    h11 pool, httpx2's list for ``pool.transport = "httpx"`` or ``pool.http2``.

    Raises:
        ConfigError: every provider whose TLS cannot be built, at once.
    """
    found: dict[str, ClientTLS] = {}
    errors: list[str] = []
    for name, provider in config.providers.items():
        if not isinstance(provider, HTTPProvider):
            continue
        settings = provider.tls
        key = secrets.get(settings.key_file) if settings and settings.key_file else None
        try:
            found[name] = tls = client_tls(name, settings, key)
            tls.context_now(transport_alpn(provider))
        except ConfigError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ConfigError(tuple(errors))
    return found


async def prepare_tls(config: Config, secrets: Mapping[SecretRef, str]) -> dict[str, ClientTLS]:
    """:func:`prepare_tls_now` in a worker thread."""
    return await trio.to_thread.run_sync(prepare_tls_now, config, secrets, limiter=_builders())


def transport_alpn(provider: HTTPProvider) -> ALPN:
    """The ALPN list the provider's data-path transport offers."""
    pool = provider.pool
    if pool.http2:
        return HTTPX_H2
    if pool.transport == "httpx":
        return HTTPX_H1
    return None


#: What httpx2 sets on the context it is given (so setting it again changes nothing).
HTTPX_H1: ALPN = ("http/1.1",)
HTTPX_H2: ALPN = ("h2", "http/1.1")
