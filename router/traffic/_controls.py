"""Traffic controls around the engine: budgets, cost, the response cache, key limits.

The app asks, per request: may this key spend (budget, its own rpm/tpm)? is the answer
cached? and afterwards: what did it cost, and should the answer be kept? The state
(spend per key, cached answers, rate windows) lives here, outside the rules, so it
survives a reload; what the rules say (prices, budgets, TTLs) comes from the runtime.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, overload

import attrs
import trio

from adapters import (
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    RateLimitExceeded,
    Usage,
)
from rules import Leaf, reachable

from ._budgets import Budgets
from ._cache import ResponseCache, cache_key
from ._cache_entries import Cached, embedding_cache_key
from ._cost import PriceTable
from ._tokens import RESERVE_OUTPUT, embedding_tokens, request_tokens
from ._window import RateLimiter

if TYPE_CHECKING:
    from rules import Config, Node, RouteCacheConfig

    from ._budgets import Reservation
    from ._keys import ClientKey

__all__ = ["BudgetExhausted", "Controls", "KeyRateLimited"]


class BudgetExhausted(GatewayError):
    """A key spent its budget for the period; like OpenAI's own quota error, a 429."""

    status_hint = 429
    error_type = "insufficient_quota"
    code = "budget_exhausted"


class KeyRateLimited(RateLimitExceeded):
    """The client key's own rpm / tpm is spent for now."""

    code = "key_rate_limited"


class Controls:
    """Per-daemon traffic state. ``configure`` applies a (re)loaded config."""

    def __init__(self, config: Config) -> None:
        self.budgets = Budgets(time.time)
        self.key_limits = RateLimiter(trio.current_time)
        self.cache = ResponseCache(config.cache.max_bytes, trio.current_time)
        self.prices = PriceTable(config.prices)
        self._keys: frozenset[str] = frozenset()
        self.configure(config)

    def configure(self, config: Config) -> None:
        """Apply a (re)loaded config: prices, the cache's size, the keys' budgets and
        windows. Spend and windows of keys that stay are kept; a key removed (or its
        limits) is forgotten, its spend aside (it may come back)."""
        self.prices = PriceTable(config.prices)
        self.cache.max_bytes = config.cache.max_bytes
        for name, key in config.keys.items():
            self.budgets.configure(name, key.budget)
            if key.limits is not None:
                self.key_limits.configure(f"key:{name}", key.limits.rpm, key.limits.tpm)
            else:
                self.key_limits.forget(f"key:{name}")
        for name in self._keys - config.keys.keys():
            self.budgets.configure(name, None)
            self.key_limits.forget(f"key:{name}")
        self._keys = frozenset(config.keys)

    # -- before the engine -----------------------------------------------------------

    def admit(self, key: ClientKey | None, tokens: int) -> None:
        """Let the request in, or raise BudgetExhausted / KeyRateLimited (both 429s)."""
        if key is None:
            return
        if key.budget is not None and self.budgets.exhausted(key.name):
            budget = f"the budget of key {key.name!r} (${key.budget.usd:g} a {key.budget.per})"
            if self.budgets.remaining(key.name):  # what is left is held by requests in flight
                raise BudgetExhausted(
                    f"{budget} is held by its requests in flight; retry when they end",
                    retry_after=1.0,
                )
            raise BudgetExhausted(
                f"{budget} is spent", retry_after=self.budgets.resets_in(key.name)
            )
        if key.limits is not None:
            wait = self.key_limits.acquire(f"key:{key.name}", tokens)
            if wait is not None:
                raise KeyRateLimited(
                    f"key {key.name!r} is at its rate limit; retry in {wait:.1f}s",
                    retry_after=wait,
                )

    @overload
    def lookup(
        self,
        cache: RouteCacheConfig | None,
        route: str,
        req: GatewayRequest,
        key: ClientKey | None,
        bypass: bool,
    ) -> tuple[bytes | None, GatewayResponse | None]: ...

    @overload
    def lookup(
        self,
        cache: RouteCacheConfig | None,
        route: str,
        req: EmbeddingRequest,
        key: ClientKey | None,
        bypass: bool,
    ) -> tuple[bytes | None, EmbeddingResponse | None]: ...

    def lookup(
        self,
        cache: RouteCacheConfig | None,
        route: str,
        req: GatewayRequest | EmbeddingRequest,
        key: ClientKey | None,
        bypass: bool,
    ) -> tuple[bytes | None, Cached | None]:
        """The cache key for this request (None: not cached) and a fresh answer of its
        kind (chat or embeddings) if any."""
        if cache is None:
            return None, None
        owner = None if cache.shared else (key.name if key is not None else "")
        kind: type[Cached]
        if isinstance(req, GatewayRequest):
            entry, kind = cache_key(route, req, owner), GatewayResponse
        else:
            entry, kind = embedding_cache_key(route, req, owner), EmbeddingResponse
        if bypass:
            return entry, None
        hit = self.cache.get(entry)
        return entry, hit if isinstance(hit, kind) else None

    def reserve(
        self, key: ClientKey | None, node: Node, req: GatewayRequest | EmbeddingRequest
    ) -> Reservation | None:
        """Hold the request's worst-case cost in its key's budget while it is in flight
        (None: the key has no budget): its prompt estimate plus its ``max_tokens`` (or
        RESERVE_OUTPUT) at the dearest target ``node`` can reach. The caller settles it
        with the real cost (:meth:`settle`) or releases it, in a ``finally``.

        Called right after :meth:`admit`, with no ``await`` between, so concurrent
        requests see each other's holds.
        """
        if key is None or key.budget is None:
            return None
        if isinstance(req, EmbeddingRequest):  # no output: the inputs are the cost
            prompt, output = embedding_tokens(req), 0
        else:
            prompt = request_tokens(req, with_output=False)
            output = max(req.max_tokens if req.max_tokens is not None else RESERVE_OUTPUT, 0)
        worst = 0.0
        for target in _targets(node):
            worst = max(worst, self.prices.estimate(target, prompt, output) or 0.0)
        return self.budgets.reserve(key.name, worst)

    # -- after the engine ------------------------------------------------------------

    def settle(
        self,
        key: ClientKey | None,
        target: str | None,
        usage: Usage | None,
        estimated: int = 0,
        hold: Reservation | None = None,
    ) -> float | None:
        """The request's cost in USD (None: unknown price or usage); charged to the key
        in place of its ``hold``, and its token window learns the real count."""
        cost = None
        if target is not None and usage is not None:
            if key is not None and key.limits is not None:
                self.key_limits.reconcile(f"key:{key.name}", estimated, usage.total_tokens)
            cost = self.prices.cost(target, usage)
        if hold is not None:
            hold.settle(cost)
        elif cost is not None and key is not None:
            self.budgets.charge(key.name, cost)
        return cost

    def snapshot(self) -> dict[str, object]:
        """For ``/admin/status``: the cache, spend per key and the keys' windows."""
        return {
            "cache": attrs.asdict(self.cache.stats),
            "budgets": {
                name: attrs.asdict(state) for name, state in self.budgets.snapshot().items()
            },
            "key_limits": {
                name: attrs.asdict(usage) for name, usage in self.key_limits.snapshot().items()
            },
        }

    def store(self, entry: bytes | None, cache: RouteCacheConfig | None, resp: Cached) -> None:
        if entry is not None and cache is not None:
            self.cache.put(entry, resp, cache.ttl)


def _targets(node: Node) -> list[str]:
    """The targets ``node`` can reach (a route is a small tree: walked per request)."""
    found: list[str] = []
    stack = [node]
    while stack:
        here = stack.pop()
        if isinstance(here, Leaf):
            found.append(str(here.target))
        else:
            stack.extend(reachable(here))  # ``when`` choices too
    return found
