"""The shape of ``router.toml``: one frozen attrs class per table.

These classes are the parsed file, before route names are resolved (that is
``_compile``). They are immutable, so one `Config` can be shared by every request task
and replaced whole on reload. Invariants that need only one table are checked here;
anything that looks across tables (does this provider exist?) is checked when routes
are compiled.
"""

import ipaddress
import re
from collections.abc import Mapping
from typing import Any, Literal, get_args

import attrs

from ._batch import BatchConfig
from ._errors import FieldError, describe
from ._fields import (
    After,
    Duration,
    Listen,
    Size,
    Targets,
    all_of,
    at_least,
    field_local,
    non_empty,
    positive,
    positive_weights,
)
from ._providers import Limits, ProviderConfig
from ._secrets import SecretRef
from ._simulate_table import SimulateConfig
from ._telemetry import TelemetryConfig

__all__ = [
    "FALLBACK_ON",
    "STRATEGIES",
    "Backoff",
    "BatchConfig",
    "Budget",
    "CacheConfig",
    "Circuit",
    "Config",
    "Defaults",
    "FailureClass",
    "HedgeConfig",
    "KeyConfig",
    "RouteCacheConfig",
    "RouteConfig",
    "ServerConfig",
    "Strategy",
    "TelemetryConfig",
    "Price",
]

MiB = 1024 * 1024

Strategy = Literal["round_robin", "weighted", "latency", "least_connections", "cheapest"]
#: Balancing strategies, for messages and ``check`` output.
STRATEGIES: tuple[str, ...] = get_args(Strategy)

LogLevel = Literal["debug", "info", "warning", "error"]

FailureClass = Literal[
    "timeout", "network", "server_error", "rate_limited", "overloaded", "context_length"
]
#: The failures a fallback moves on after; also its default ``on`` set.
FALLBACK_ON: tuple[str, ...] = get_args(FailureClass)


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
    # Connections (the hardening settings of DESIGN.md).
    read_timeout: Duration = attrs.field(default=30.0, validator=positive)
    keepalive_timeout: Duration = attrs.field(default=75.0, validator=positive)
    max_connections: int | None = attrs.field(default=None, validator=positive)
    backlog: int = attrs.field(default=4096, validator=positive)
    max_in_flight: int = attrs.field(default=0, validator=at_least(0))
    overload_lag: Duration = attrs.field(default=0.1, validator=positive)
    # Browsers: Origin and Host checks (router/http/_origin.py).
    cors_origins: tuple[str, ...] = attrs.field(default=(), validator=_check_origins)
    allowed_hosts: tuple[str, ...] = attrs.field(default=(), validator=_check_hosts)
    # Bounds on what upstreams and image URLs may send back.
    fetch_images_allow: tuple[str, ...] = attrs.field(default=(), validator=_check_networks)
    max_response: Size = attrs.field(default=32 * MiB, validator=positive)


@attrs.frozen
class Backoff:
    """Delay between retries: ``initial * multiplier**n``, capped at ``max``, jittered."""

    initial: Duration = attrs.field(default=0.1, validator=at_least(0))
    max: Duration = attrs.field(default=5.0, validator=at_least(0))
    multiplier: float = attrs.field(default=2.0, validator=at_least(1))


@attrs.frozen
class Circuit:
    """Circuit breaker: open after ``failures`` in a row, for ``open_for`` seconds;
    close again after ``successes`` in a row while half-open."""

    failures: int = attrs.field(default=5, validator=at_least(1))
    successes: int = attrs.field(default=2, validator=at_least(1))
    open_for: Duration = attrs.field(default=30.0, validator=positive)


@attrs.frozen
class Defaults:
    """``[defaults]``: policy for every route that does not say otherwise."""

    timeout: Duration = attrs.field(default=60.0, validator=positive)
    first_token_timeout: Duration = attrs.field(default=15.0, validator=positive)
    connect_timeout: Duration = attrs.field(default=5.0, validator=positive)
    stall_timeout: Duration = attrs.field(default=30.0, validator=positive)
    stream_timeout: Duration = attrs.field(default=600.0, validator=positive)
    retries: int = attrs.field(default=2, validator=at_least(0))
    backoff: Backoff = Backoff()
    circuit: Circuit = Circuit()
    hedge_budget: float = attrs.field(default=0.1, validator=at_least(0))
    #: A committed stream that breaks goes on on another target ("off": it ends with an
    #: error event), at most ``resume_max`` times per request.
    resume: Literal["auto", "off"] = "auto"
    resume_max: int = attrs.field(default=1, validator=at_least(0))


@attrs.frozen
class HedgeConfig:
    """Start another target when the first is slow.

    Attributes:
        after: Seconds to wait, or a `Percentile` of the target's observed latency.
        max: Extra attempts at most.
    """

    after: After = attrs.field()
    max: int = attrs.field(default=1, validator=at_least(1))

    @after.validator
    def _check_after(self, attribute: "attrs.Attribute[Any]", value: object) -> None:
        if isinstance(value, float | int) and value < 0:
            raise FieldError(f"must be at least 0, got {value:g}", (attribute.name,))


@attrs.frozen
class RouteCacheConfig:
    """Opt-in exact-match response cache for one route.

    Attributes:
        ttl: Seconds an answer stays fresh.
        shared: Serve one client key's cached answers to other keys too (off: each key
            has its own entries).
    """

    ttl: Duration = attrs.field(validator=positive)
    shared: bool = False


@field_local
def _check_sticky(instance: Any, attribute: "attrs.Attribute[Any]", value: str | None) -> None:
    if value is None or value == "key":
        return
    scheme, _, header = value.partition(":")
    if scheme != "header" or not header or not header.replace("-", "").isalnum():
        raise FieldError(f'must be "key" or "header:NAME", got "{value}"', (attribute.name,))


@attrs.frozen
class RouteConfig:
    """``[routes.NAME]``: exactly one of ``fallback``, ``balance`` or ``split``.

    Entries name other routes or ``provider:model`` targets; they are resolved by
    `compile_routes`. Unset policy fields (None) take the ``[defaults]``.
    """

    fallback: tuple[str, ...] | None = attrs.field(default=None, validator=non_empty)
    balance: Strategy | None = None
    targets: Targets | None = attrs.field(
        default=None, validator=all_of(non_empty, positive_weights)
    )
    split: Mapping[str, float] | None = attrs.field(
        default=None, validator=all_of(non_empty, positive_weights)
    )
    sticky: str | None = attrs.field(default=None, validator=_check_sticky)
    hedge: HedgeConfig | None = None
    cache: RouteCacheConfig | None = None
    batch: BatchConfig | None = None
    on: tuple[FailureClass, ...] | None = attrs.field(default=None, validator=non_empty)
    timeout: Duration | None = attrs.field(default=None, validator=positive)
    first_token_timeout: Duration | None = attrs.field(default=None, validator=positive)
    stream_timeout: Duration | None = attrs.field(default=None, validator=positive)
    retries: int | None = attrs.field(default=None, validator=at_least(0))
    resume: Literal["auto", "off"] | None = None
    resume_max: int | None = attrs.field(default=None, validator=at_least(0))

    @property
    def policy(self) -> Literal["fallback", "balance", "split"]:
        """Which of the three policies this route uses."""
        if self.fallback is not None:
            return "fallback"
        return "balance" if self.balance is not None else "split"

    def __attrs_post_init__(self) -> None:
        # Cross-field rules. Every broken rule is reported, not just the first.
        given = [k for k in ("fallback", "balance", "split") if getattr(self, k) is not None]
        if len(given) != 1:
            raise FieldError("a route needs exactly one of fallback, balance or split")
        problems = []
        policy = given[0]
        if policy == "balance" and self.targets is None:
            problems.append(FieldError("balance needs targets", ("targets",)))
        if policy != "balance" and self.targets is not None:
            problems.append(FieldError("targets go with balance", ("targets",)))
        if isinstance(self.targets, Mapping) and self.balance != "weighted":
            problems.append(
                FieldError('a table of weights needs balance = "weighted"', ("targets",))
            )
        if policy != "split" and self.sticky is not None:
            problems.append(FieldError("sticky goes with split", ("sticky",)))
        if policy == "split" and self.hedge is not None:
            problems.append(FieldError("hedge goes with fallback or balance", ("hedge",)))
        if policy != "fallback" and self.on is not None:
            problems.append(FieldError("on goes with fallback", ("on",)))
        if len(problems) == 1:
            raise problems[0]
        if problems:
            raise ExceptionGroup("invalid route", problems)


@attrs.frozen
class CacheConfig:
    """``[cache]``: the response cache shared by all routes that opt in."""

    max_bytes: Size = attrs.field(default=64 * MiB, validator=positive)


@attrs.frozen
class Budget:
    """Spending cap for one client key."""

    usd: float = attrs.field(validator=positive)
    per: Literal["day", "month"]


@field_local
def _check_sha256(instance: Any, attribute: "attrs.Attribute[Any]", value: str | None) -> None:
    if value is not None and (len(value) != 64 or not all(c in "0123456789abcdef" for c in value)):
        # The value is not echoed: it stands for a key.
        raise FieldError("must be 64 lower-case hex digits (sha256 of the key)", (attribute.name,))


@attrs.frozen
class KeyConfig:
    """``[keys.NAME]``: a client key with its own allowed routes, limits and budget.

    Attributes:
        secret: The key, as a secret reference; or
        sha256: the hex SHA-256 of the key, so the config never holds it.
        routes: The routes it may use (absent: all).
        limits: Its own rpm / tpm.
        budget: Its spending cap.
    """

    secret: SecretRef | None = None
    sha256: str | None = attrs.field(default=None, validator=_check_sha256)
    routes: tuple[str, ...] | None = attrs.field(default=None, validator=non_empty)
    limits: Limits | None = None
    budget: Budget | None = None

    def __attrs_post_init__(self) -> None:
        if (self.secret is None) == (self.sha256 is None):
            raise FieldError("a key needs exactly one of secret or sha256", ())


@attrs.frozen
class Price:
    """USD per million tokens; ``cache_read`` / ``cache_write`` for prompt tokens read
    from / written to a prompt cache (unset: see ``router.traffic._cost``)."""

    input: float = attrs.field(validator=at_least(0))
    output: float = attrs.field(validator=at_least(0))
    cache_read: float | None = attrs.field(default=None, validator=at_least(0))
    cache_write: float | None = attrs.field(default=None, validator=at_least(0))


def _check_routes(
    instance: Any, attribute: "attrs.Attribute[Any]", value: Mapping[str, Any]
) -> None:
    if not value:
        raise FieldError("at least one route is required", (attribute.name,))


@attrs.frozen
class Config:
    """The whole file. Only ``routes`` is required; every other table has defaults."""

    server: ServerConfig = ServerConfig()
    defaults: Defaults = Defaults()
    providers: Mapping[str, ProviderConfig] = attrs.field(factory=dict)
    routes: Mapping[str, RouteConfig] = attrs.field(factory=dict, validator=_check_routes)
    cache: CacheConfig = CacheConfig()
    keys: Mapping[str, KeyConfig] = attrs.field(factory=dict)
    telemetry: TelemetryConfig = attrs.field(factory=TelemetryConfig)
    #: Prices by ``provider:model`` or model id, over the shipped defaults.
    prices: Mapping[str, Price] = attrs.field(factory=dict)
    simulate: SimulateConfig = attrs.field(factory=SimulateConfig)  # `llm-router simulate`
