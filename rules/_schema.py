"""The shape of ``router.toml``: one frozen attrs class per table.

These classes are the parsed file, before route names are resolved (that is
``_compile``). They are immutable, so one `Config` can be shared by every request task
and replaced whole on reload. Invariants that need only one table are checked here;
anything that looks across tables (does this provider exist?) is checked when routes
are compiled.
"""

from collections.abc import Mapping
from typing import Any, Literal, get_args

import attrs

from ._batch import BatchConfig
from ._errors import FieldError
from ._fields import (
    After,
    Duration,
    Size,
    Targets,
    all_of,
    at_least,
    field_local,
    non_empty,
    positive,
    positive_weights,
)
from ._hooks import HookConfig
from ._keys import Budget, KeyConfig, Price
from ._plugin import check_plugin
from ._providers import ProviderConfig
from ._secret_stores import SecretsConfig, check_remote_secrets
from ._server import ServerConfig
from ._simulate_table import SimulateConfig
from ._telemetry import TelemetryConfig
from ._validate import ValidateConfig
from ._when import WhenRule

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

FailureClass = Literal[
    "timeout", "network", "server_error", "rate_limited", "overloaded", "context_length"
]
#: The failures a fallback moves on after; also its default ``on`` set.
FALLBACK_ON: tuple[str, ...] = get_args(FailureClass)


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
    #: Content hooks (``[hooks.NAME]``) of routes that name none, and of direct
    #: ``provider:model`` requests.
    hooks: tuple[str, ...] = ()
    complexity: str | None = attrs.field(default=None, validator=check_plugin)  # see _when


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
    """``[routes.NAME]``: exactly one of ``fallback``, ``balance`` or ``split``. Entries
    name routes or ``provider:model`` targets, resolved by `compile_routes`; unset policy
    fields (None) take the ``[defaults]``."""

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
    #: Content hooks run on this route's requests and answers, in order (None: the
    #: defaults'; ``[]``: none).
    hooks: tuple[str, ...] | None = None
    #: What an answer must be: ``"json"``, or ``{ schema = "file:PATH" }``.
    validate: ValidateConfig | None = None
    when: tuple[WhenRule, ...] = ()  # checked before the policy; see ``_when``

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


def _check_routes(
    instance: Any, attribute: "attrs.Attribute[Any]", value: Mapping[str, Any]
) -> None:
    if not value:
        raise FieldError("at least one route is required", (attribute.name,))


@attrs.frozen
class Config:
    """The whole file. Only ``routes`` is required; every other table has defaults."""

    server: ServerConfig = attrs.field(factory=ServerConfig)
    defaults: Defaults = Defaults()
    providers: Mapping[str, ProviderConfig] = attrs.field(factory=dict)
    routes: Mapping[str, RouteConfig] = attrs.field(factory=dict, validator=_check_routes)
    cache: CacheConfig = CacheConfig()
    keys: Mapping[str, KeyConfig] = attrs.field(factory=dict)
    telemetry: TelemetryConfig = attrs.field(factory=TelemetryConfig)
    secrets: SecretsConfig = attrs.field(factory=SecretsConfig, validator=check_remote_secrets)
    #: Prices by ``provider:model`` or model id, over the shipped defaults.
    prices: Mapping[str, Price] = attrs.field(factory=dict)
    #: Content hooks by name, for routes' ``hooks``.
    hooks: Mapping[str, HookConfig] = attrs.field(factory=dict)
    simulate: SimulateConfig = attrs.field(factory=SimulateConfig)  # `llm-router simulate`
