"""``[server]``: the daemon's own settings (listening, limits, files, processes)."""

import ipaddress
import re
from typing import Any, Literal

import attrs

from ._errors import FieldError, describe
from ._fields import Duration, Listen, Size, at_least, field_local, non_empty, positive
from ._secrets import SecretRef
from ._shared import SharedState

__all__ = ["LogLevel", "ServerConfig"]

MiB = 1024 * 1024

LogLevel = Literal["debug", "info", "warning", "error"]

_ORIGIN = re.compile(r"[a-z][a-z0-9+.-]*://[^/?#@\s]+")
_HOST = re.compile(r"(\[[0-9a-f:.]+\]|[a-z0-9_-]+(\.[a-z0-9_-]+)*)(:[0-9]{1,5})?")


@field_local
def _check_origins(
    instance: Any, attribute: "attrs.Attribute[Any]", value: tuple[str, ...]
) -> None:
    for i, origin in enumerate(value):
        if origin != "*" and not _ORIGIN.fullmatch(origin.lower()):
            raise FieldError(
                f'{describe(origin)} is not an origin like "https://app.example" '
                '(scheme://host[:port], no path, no trailing slash) or "*"',
                (attribute.name, i),
            )


@field_local
def _check_hosts(instance: Any, attribute: "attrs.Attribute[Any]", value: tuple[str, ...]) -> None:
    for i, host in enumerate(value):
        if host != "*" and not _HOST.fullmatch(host.lower()):
            raise FieldError(
                f'{describe(host)} is not a host name like "router.example" or '
                '"router.example:8080" (no scheme, no path) or "*"',
                (attribute.name, i),
            )


def _check_networks(
    instance: Any, attribute: "attrs.Attribute[Any]", value: tuple[str, ...]
) -> None:
    for i, network in enumerate(value):
        try:
            ipaddress.ip_network(network, strict=False)
        except ValueError:
            raise FieldError(
                f"{network!r} is not a network (CIDR such as 10.0.0.0/8 or an address)",
                (attribute.name, i),
            ) from None


@attrs.frozen
class ServerConfig:
    """``[server]``: where to listen and who may call.

    Attributes:
        listen: ``HOST:PORT``, ``[::1]:PORT`` or ``fd:N`` (an inherited socket).
        api_keys: Client keys accepted on every route; empty means no client auth.
        max_body: Largest request body accepted, in bytes.
        drain_timeout: Seconds in-flight requests get to finish on SIGTERM.
        admin_key: Key for the admin endpoints from other hosts than loopback.
        access_log: Write one line per request to stderr (buffered, like nginx's
            ``access_log ... buffer= flush=``).
        fetch_images: Let the daemon download ``http(s)`` image URLs for providers that
            need the bytes (Gemini, Bedrock, Ollama). Off by default: a URL in a client's
            request would otherwise make the daemon fetch whatever it names (SSRF).
        watch: Reload when the config file changes (SIGHUP and ``POST /admin/reload``
            reload either way).
        log_level: The lifecycle log's threshold: debug, info, warning or error (the
            access log is written whatever it is).
        read_timeout: A request's head, and then its body, must each arrive within it
            (else 408 and the connection closes).
        keepalive_timeout: Idle client connections are closed after it.
        max_connections: Client connections held at once; past it a new connection
            gets 503 and is closed at once. Unset: half the process's descriptor limit
            (``ulimit -n``), so upstream connections and files always have descriptors.
        backlog: The listen queue (connections the kernel holds before accept).
        max_in_flight: Requests (chat, embeddings) in progress at once (0: no bound);
            past it, new ones get 503 with Retry-After at once.
        overload_lag: When the event loop runs this late, new requests get 503
            with Retry-After at once (requests in flight, streams included, go on).
        cors_origins: Browser origins (``scheme://host[:port]``, or ``"*"``) allowed to
            call the daemon; a request with any other ``Origin`` header gets 403.
        allowed_hosts: ``Host`` names (optionally ``:port``, or ``"*"``) served besides
            localhost; on loopback connections, or anywhere once set, another ``Host``
            gets 421 (DNS rebinding).
        fetch_images_allow: Networks (CIDR) image fetches may reach besides public
            addresses; loopback, private, link-local and other special addresses are
            refused unless listed here.
        max_response: Largest upstream answer body, and largest single stream event or
            line, in bytes; past it the attempt fails and its connection is closed.
        state_file: Where budgets' spend is kept across restarts (JSON, written within
            about a second of a change and at exit); absent, spend lives in memory only.
        shared_state: A Redis shared with other daemons (`SharedState`); absent: none.
        log_bodies: The access log carries each request's prompt and its answer, always
            through the PII redactor.
        usage_db: The usage ledger's SQLite file, one row per request (absent: none).
        workers: Processes serving the listen sockets (``serve --workers`` wins).
    """

    listen: Listen = attrs.field(default=("127.0.0.1:8080",), validator=non_empty)
    api_keys: tuple[SecretRef, ...] = ()
    max_body: Size = attrs.field(default=4 * MiB, validator=positive)
    drain_timeout: Duration = attrs.field(default=30.0, validator=at_least(0))
    admin_key: SecretRef | None = None
    access_log: bool = True
    fetch_images: bool = False
    watch: bool = True
    log_level: LogLevel = "info"
    state_file: str | None = None
    shared_state: SharedState | None = None
    log_bodies: bool = False
    usage_db: str | None = None
    # Connections (the hardening settings of DESIGN.md).
    read_timeout: Duration = attrs.field(default=30.0, validator=positive)
    keepalive_timeout: Duration = attrs.field(default=75.0, validator=positive)
    max_connections: int | None = attrs.field(default=None, validator=positive)
    backlog: int = attrs.field(default=4096, validator=positive)
    workers: int = attrs.field(default=1, validator=positive)
    max_in_flight: int = attrs.field(default=0, validator=at_least(0))
    overload_lag: Duration = attrs.field(default=0.1, validator=positive)
    # Browsers: Origin and Host checks (router/http/_origin.py).
    cors_origins: tuple[str, ...] = attrs.field(default=(), validator=_check_origins)
    allowed_hosts: tuple[str, ...] = attrs.field(default=(), validator=_check_hosts)
    # Bounds on what upstreams and image URLs may send back.
    fetch_images_allow: tuple[str, ...] = attrs.field(default=(), validator=_check_networks)
    max_response: Size = attrs.field(default=32 * MiB, validator=positive)
