"""Assembly: a whole :class:`Runtime` from a config, at start and on every reload.

:func:`build_runtime` is the one place that turns a :class:`Config` into what serves
it: the upstreams, the rate windows of providers and targets, the engine with its live
target state and hedge budget, the prices and the client keys. Given the runtime in
force, it keeps what lives across reloads (target state, hedge budget, rate windows,
the embeddings batcher, and the upstreams whose settings did not change) and applies to it every setting the
new config changes. What it cannot apply while serving is named by
:func:`restart_needed`.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import attrs
import trio

from rules import (
    Config,
    ConfigError,
    ProviderConfig,
    RouteTable,
    SecretRef,
    compile_routes,
    find_secrets,
)

from ..routing._batch import EmbeddingBatcher
from ..routing._breaker import CircuitBreaker
from ..routing._engine import Engine
from ..routing._hedge_budget import TokenBucket
from ..routing._runtime import Runtime
from ..routing._stats import TargetRegistry
from ..traffic._cost import PriceTable
from ..traffic._keys import KeyRing
from ..traffic._targetlimits import TargetLimits, observe_headers
from ..traffic._window import RateLimiter
from ..upstream._providers import build_upstream
from ..upstream._tls import ClientTLS, prepare_tls_now
from ..upstream._upstream import Upstream

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

__all__ = ["RESTART_ONLY", "Assembly", "build_runtime", "restart_needed"]

#: Settings read once, at start: a reload that changes one reports it instead.
RESTART_ONLY = (
    "server.listen",  # the sockets are bound (or inherited) once
    "server.drain_timeout",  # hypercorn's graceful timeout is set when it starts
    "server.state_file",  # read at start, written by a task started with it
    "server.shared_state",  # its link (and connection) starts with the daemon
    "server.access_log",  # its writer task starts with the daemon
    "server.watch",  # so does the file watcher
    "server.keepalive_timeout",  # the connection settings are the server's, set at start
    "server.max_connections",
    "server.backlog",
    "server.workers",  # the main process starts them
    "server.max_in_flight",  # the overload limits are the app's, set at start
    "server.overload_lag",
    "telemetry",  # the span exporter is set up once
)


@attrs.frozen
class Assembly:
    """What :func:`build_runtime` made.

    Attributes:
        runtime: The new snapshot, ready to swap in.
        rebuilt: Providers whose upstream is new (added, or their settings changed).
        retired: Upstreams of the previous runtime it does not use: close them once the
            previous runtime's last request has ended.
    """

    runtime: Runtime
    rebuilt: tuple[str, ...] = ()
    retired: tuple[Upstream, ...] = ()


def build_runtime(
    config: Config,
    previous: Runtime | None = None,
    *,
    table: RouteTable | None = None,
    secrets: Mapping[SecretRef, str] | None = None,
    tls: Mapping[str, ClientTLS] | None = None,
    upstreams: Mapping[str, Upstream] | None = None,
    rng: random.Random | None = None,
) -> Assembly:
    """The runtime for ``config``; with ``previous``, on its live state.

    From ``previous`` (the runtime in force, on a reload) it keeps the target registry,
    the hedge budget, the rate windows and the embeddings batcher, and applies to them the new
    ``[defaults.circuit]`` (existing breakers included), ``hedge_budget`` and provider
    limits (a removed limit is forgotten). Upstreams whose build settings are unchanged
    are reused with their pooled connections, unless a secret of theirs has a new
    value or their TLS files new contents. Nothing of ``previous`` changes unless the
    whole build succeeds.

    Args:
        table: ``compile_routes(config)``, when the caller has it already.
        secrets: The config's secrets, read already (``secrets_for``, off the event
            loop); each is read here when missing.
        tls: Every HTTP provider's TLS contexts, built already (``prepare_tls``, off
            the event loop); built here when None (blocking: tests).
        upstreams: Every provider's upstream, made by the caller (the simulator's,
            which stream in coarser batches); built from the config when None.
        rng: The engine's randomness (balancing, splits, jitter); seeded by the
            simulator so that a run repeats.

    Raises:
        ConfigError: the rules do not compile, a secret cannot be resolved, a TLS
            file cannot be used, or a provider cannot be built.
    """
    table = table if table is not None else compile_routes(config)
    secrets = secrets if secrets is not None else {}
    tls = tls if tls is not None else prepare_tls_now(config, secrets)
    keys = KeyRing.from_config(config, secrets)
    if upstreams is None:
        upstreams, rebuilt = _upstreams(config, previous, secrets, tls)
    else:
        upstreams, rebuilt = dict(upstreams), list(upstreams)
    # Nothing below raises: from here the live state may change.
    circuit = config.defaults.circuit
    if previous is None:
        registry = TargetRegistry(
            partial(CircuitBreaker, circuit.failures, circuit.successes, circuit.open_for)
        )
        budget = TokenBucket(config.defaults.hedge_budget)
        limits = TargetLimits(RateLimiter(trio.current_time))
        batcher = EmbeddingBatcher()  # the daemon runs it, for good
        retired: tuple[Upstream, ...] = ()
    else:
        old = previous.engine
        registry = old.registry
        registry.configure_breakers(circuit.failures, circuit.successes, circuit.open_for)
        budget = old.budget
        budget.configure(config.defaults.hedge_budget)
        limits = (
            old.limits if old.limits is not None else TargetLimits(RateLimiter(trio.current_time))
        )
        batcher = old.batcher if old.batcher is not None else EmbeddingBatcher()
        retired = tuple(u for name, u in old.upstreams.items() if upstreams.get(name) is not u)
    # What the rules name is kept for good; what clients invent is bounded per provider.
    registry.retain([str(t) for t in table.targets()] + list(table.route_names()))
    limits.configure(config)
    observe_headers(upstreams, limits)
    engine = Engine(
        upstreams,
        config.defaults,
        registry=registry,
        budget=budget,
        limits=limits,
        prices=PriceTable(config.prices),
        batcher=batcher,
        rng=rng,
    )
    digests = {name: t.digest for name, t in tls.items()}
    runtime = Runtime(table, engine, keys=keys, secrets=secrets, tls=digests)
    return Assembly(runtime, tuple(rebuilt), retired)


def restart_needed(started: Config, config: Config) -> tuple[str, ...]:
    """The settings of :data:`RESTART_ONLY` in which ``config`` differs from the config
    the daemon ``started`` with (so a later reload still reports them)."""
    return tuple(key for key in RESTART_ONLY if _lookup(started, key) != _lookup(config, key))


def _upstreams(
    config: Config,
    previous: Runtime | None,
    secrets: Mapping[SecretRef, str],
    tls: Mapping[str, ClientTLS],
) -> tuple[dict[str, Upstream], list[str]]:
    """Every provider's upstream: the running one if its build settings (the values of
    its secrets and its TLS digest included) are unchanged.

    Raises:
        ConfigError: every provider that cannot be built, at once.
    """
    old_config = previous.table.config if previous is not None else None
    old_secrets = previous.secrets if previous is not None else {}
    old_tls = previous.tls if previous is not None else {}
    running = previous.engine.upstreams if previous is not None else {}
    upstreams: dict[str, Upstream] = {}
    rebuilt: list[str] = []
    errors: list[str] = []
    for name, provider in config.providers.items():
        current = running.get(name)
        if (
            current is not None
            and old_config is not None
            and name in old_config.providers
            and old_tls.get(name) == (tls[name].digest if name in tls else None)
            and _build_key(old_config.providers[name], old_config, old_secrets)
            == _build_key(provider, config, secrets)
        ):
            upstreams[name] = current
            continue
        try:
            upstreams[name] = build_upstream(name, provider, config, secrets, tls.get(name))
            rebuilt.append(name)
        except ConfigError as exc:
            errors.extend(exc.errors)
    if errors:
        raise ConfigError(tuple(errors))
    return upstreams, rebuilt


def _build_key(
    provider: ProviderConfig, config: Config, secrets: Mapping[SecretRef, str]
) -> tuple[object, ...]:
    """What an upstream is built from: a change of any of it needs a new upstream.

    A secret counts by its value (None: not read before, so read anew when built),
    one in a table (``tls.key_file``) included.
    """
    values = tuple(secrets.get(ref) for _, ref in find_secrets(provider))
    server = config.server
    return (
        provider,
        values,
        config.defaults.connect_timeout,
        server.fetch_images,
        server.fetch_images_allow,
        server.max_response,
    )


def _lookup(config: Config, dotted: str) -> object:
    value: object = config
    for part in dotted.split("."):
        value = getattr(value, part)
    return value
