"""How a provider is reached: its TLS settings and its HTTP proxy.

``[providers.NAME]`` may say whom to trust and which client certificate to show
(``tls = { ca_file, cert_file, key_file, verify }``) and which proxy to go through
(``proxy``). This module holds the shapes and their checks; the router builds TLS
contexts and tunnels from them.

A proxy is written one of three ways:

- ``"http://[user:pass@]HOST:PORT"``: this proxy, for http and https upstreams alike;
- ``"env"``, the bare word: the standard ``HTTPS_PROXY``, ``HTTP_PROXY`` and
  ``NO_PROXY`` variables (either case), read when the provider is built;
- a secret reference (``env:NAME``, ``file:PATH``, ``cred:NAME``) whose value is the URL,
  for a URL that holds a password. ``env`` alone has no colon, so it can never be
  mistaken for ``env:NAME``.

No message here quotes a proxy URL: it may hold a password.
"""

from collections.abc import Mapping
from typing import Annotated, Literal
from urllib.parse import unquote, urlsplit

import attrs

from ._errors import FieldError
from ._fields import FilePath, Parse
from ._secrets import SecretRef

__all__ = [
    "PROXY_FORMS",
    "Proxy",
    "ProxySetting",
    "ProxyURL",
    "TLSConfig",
    "connection_warnings",
    "parse_proxy",
]

PROXY_FORMS = (
    'must be "http://HOST:PORT" (user:password@ allowed), "env" (the HTTPS_PROXY, '
    "HTTP_PROXY and NO_PROXY variables) or a secret reference holding the URL "
    "(env:NAME, file:PATH or cred:NAME)"
)


@attrs.frozen
class TLSConfig:
    """TLS to the provider: whom to trust and which client certificate to show.

    Attributes:
        ca_file: PEM certificates to trust besides the system's (a private CA).
        cert_file: The client certificate (PEM; it may hold the key too), for
            upstreams that ask for one (mutual TLS).
        key_file: The client certificate's private key: a secret reference (a PEM
            block; newlines are kept).
        verify: Check the upstream's certificate and name. ``false`` only for tests
            against a throwaway certificate: anyone on the path can then read and
            change the traffic, keys included.
    """

    ca_file: FilePath | None = None
    cert_file: FilePath | None = None
    key_file: SecretRef | None = None
    verify: bool = True

    def __attrs_post_init__(self) -> None:
        if self.key_file is not None and self.cert_file is None:
            raise FieldError(
                "key_file needs cert_file (the certificate it goes with)", ("key_file",)
            )
        if not self.verify and self.ca_file is not None:
            raise FieldError("ca_file has no effect with verify = false", ("ca_file",))


@attrs.frozen(repr=False)
class ProxyURL:
    """An HTTP proxy: where it is and, if it asks, the user and password to give it.

    Prints as ``http://HOST:PORT``, never with the user or password.
    """

    host: str
    port: int
    username: str = attrs.field(default="", repr=False)
    password: str = attrs.field(default="", repr=False)

    @classmethod
    def parse(cls, text: str) -> "ProxyURL":
        """Parse ``http://[user:pass@]HOST:PORT`` (a trailing ``/`` is allowed).

        Raises:
            FieldError: not such a URL; the message never repeats the text.
        """
        try:
            parts = urlsplit(text)
            port = parts.port
        except ValueError:
            raise FieldError("is not a URL of the form http://HOST:PORT") from None
        if parts.scheme != "http":
            raise FieldError(
                "only http:// proxies are supported (https upstreams are reached through"
                " the proxy's CONNECT tunnel, TLS end to end)"
            )
        if not parts.hostname:
            raise FieldError("needs a host (http://HOST:PORT)")
        if port is None:
            raise FieldError("needs a port (http://HOST:PORT)")
        if parts.path not in ("", "/") or parts.query or parts.fragment:
            raise FieldError("must be http://HOST:PORT alone, without a path or query")
        return cls(
            parts.hostname,
            port,
            unquote(parts.username or ""),
            unquote(parts.password or ""),
        )

    def __str__(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def __repr__(self) -> str:
        return f"ProxyURL({str(self)!r})"


#: A provider's ``proxy``: a URL, ``"env"`` (the standard variables) or a secret reference.
ProxySetting = ProxyURL | SecretRef | Literal["env"]
#: The field type: the loader parses the text with `parse_proxy`.
Proxy = Annotated[ProxySetting, Parse.PROXY]


def parse_proxy(value: object) -> ProxySetting:
    """The ``proxy`` key's value (see the module docstring).

    Raises:
        FieldError: none of the three forms; the message never repeats the value.
    """
    if not isinstance(value, str):
        raise FieldError(PROXY_FORMS)
    if value == "env":
        return "env"
    if "://" in value:
        return ProxyURL.parse(value)
    try:
        return SecretRef.parse(value)
    except FieldError:
        raise FieldError(PROXY_FORMS) from None


def connection_warnings(providers: Mapping[str, object]) -> list[str]:
    """One line per provider whose connection settings are risky, though valid:
    ``tls.verify = false``, and a proxy password written in the file itself."""
    lines = []
    for name, provider in providers.items():
        tls = getattr(provider, "tls", None)
        if isinstance(tls, TLSConfig) and not tls.verify:
            lines.append(
                f"providers.{name}.tls.verify = false: the upstream's certificate is NOT"
                " checked; anyone on the path can read and change the traffic, keys included"
            )
        proxy = getattr(provider, "proxy", None)
        if isinstance(proxy, ProxyURL) and proxy.password:
            lines.append(
                f"providers.{name}.proxy: the proxy password is written in the config file;"
                ' a secret reference keeps it out (proxy = "env:NAME")'
            )
    return lines
