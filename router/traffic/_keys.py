"""Client keys: who may call, and which routes they may use.

With no ``server.api_keys`` and no ``[keys.*]`` tables, the gateway is open (anyone who
reaches the port). Otherwise every request on the chat endpoints must present a key, as
``Authorization: Bearer KEY`` or ``x-api-key: KEY`` (what the OpenAI and Anthropic SDKs
send). Keys are compared by their SHA-256 digests with :func:`hmac.compare_digest`,
against every configured key, so the time taken says nothing about which key was close.
A ``[keys.NAME]`` table may give the key as ``sha256 = "..."``: the config then never
holds the key itself.
"""

from __future__ import annotations

import hashlib
import hmac
from typing import TYPE_CHECKING, Any

import attrs

from adapters import GatewayError
from rules import Budget, Limits

if TYPE_CHECKING:
    from collections.abc import Mapping

    from rules import Config, SecretRef

__all__ = ["ClientKey", "Forbidden", "KeyRing", "Unauthorized"]


class Unauthorized(GatewayError):
    """No client key, or one the gateway does not know."""

    status_hint = 401
    error_type = "invalid_request_error"
    code = "invalid_api_key"


class Forbidden(GatewayError):
    """A known key asked for a route it may not use."""

    status_hint = 403
    error_type = "permission_error"
    code = "route_not_allowed"


@attrs.frozen
class ClientKey:
    """A caller, by the name of its key (``server`` for the keys of ``server.api_keys``)."""

    name: str
    routes: frozenset[str] | None = None
    limits: Limits | None = None
    budget: Budget | None = None

    def may_use(self, route: str) -> bool:
        return self.routes is None or route in self.routes


class KeyRing:
    """The configured keys, by digest."""

    def __init__(self, keys: list[tuple[bytes, ClientKey]]) -> None:
        self._keys = keys

    @classmethod
    def from_config(cls, config: Config, secrets: Mapping[SecretRef, str] | None = None) -> KeyRing:
        """The keys of ``config``; ``secrets``: its secrets read already (else read here).

        Raises ConfigError (from SecretRef.resolve) for a key that cannot be read.
        """
        known = secrets or {}

        def read(ref: SecretRef) -> str:
            return known[ref] if ref in known else ref.resolve()

        keys: list[tuple[bytes, ClientKey]] = []
        for ref in config.server.api_keys:
            keys.append((_digest(read(ref)), ClientKey("server")))
        for name, key in config.keys.items():
            if key.sha256 is not None:
                digest = bytes.fromhex(key.sha256)
            else:
                assert key.secret is not None  # the schema wants one of the two
                digest = _digest(read(key.secret))
            routes = frozenset(key.routes) if key.routes is not None else None
            keys.append((digest, ClientKey(name, routes, key.limits, key.budget)))
        return cls(keys)

    @property
    def digests(self) -> frozenset[bytes]:
        """The SHA-256 digests of the keys accepted (what a reload compares)."""
        return frozenset(digest for digest, _ in self._keys)

    @property
    def open(self) -> bool:
        """No keys configured: every caller is let in, unnamed."""
        return not self._keys

    def identify(self, headers: Mapping[str, str] | list[tuple[bytes, bytes]]) -> ClientKey | None:
        """The caller's key; None when the gateway is open.

        Raises:
            Unauthorized: no key, or an unknown one.
        """
        if self.open:
            return None
        presented = _presented(headers)
        if presented is None:
            raise Unauthorized(
                "a client key is required: send it as 'Authorization: Bearer KEY' or 'x-api-key'"
            )
        digest = _digest(presented)
        found: ClientKey | None = None
        for known, key in self._keys:  # all of them: the time does not depend on which
            if hmac.compare_digest(digest, known) and found is None:
                found = key
        if found is None:
            raise Unauthorized("the client key is not valid")
        return found


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def _presented(headers: Any) -> str | None:
    items = headers.items() if hasattr(headers, "items") else headers
    for name, value in items:
        name = name.decode("latin-1").lower() if isinstance(name, bytes) else name.lower()
        if name not in ("authorization", "x-api-key"):
            continue
        text = value.decode("latin-1") if isinstance(value, bytes) else value
        if name == "authorization":
            scheme, _, token = text.partition(" ")
            if scheme.lower() != "bearer":
                continue
            text = token
        text = text.strip()
        if text:
            return text
    return None
