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
    TextRequest,
    Usage,
)
from rules import Leaf, reachable

from ._budgets import Budgets
from ._cache import ResponseCache, cache_key
from ._cache_entries import Cached, embedding_cache_key
from ._cost import PriceTable
from ._tokens import RESERVE_OUTPUT, embedding_tokens, request_tokens, text_request_tokens
from ._window import RateLimiter
from .shared._traffic import SharedHold

if TYPE_CHECKING:
    from rules import Config, Node, RouteCacheConfig

    from ._budgets import Reservation
    from ._keys import ClientKey
    from .shared._traffic import Admitted, SharedTraffic

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
        #: Key windows, spend and the cache on the shared Redis (``server.shared_state``).
        self.shared: SharedTraffic | None = None
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

    async def enter(
        self,
        key: ClientKey | None,
        tokens: int,
        cache: RouteCacheConfig | None,
        route: str,
        req: GatewayRequest | EmbeddingRequest,
        bypass: bool,
        node: Node,
        lease: float,
    ) -> tuple[bytes | None, Cached | None, Reservation | None]:
        """Admit a request (:meth:`admit`), look it up in the cache (:meth:`lookup`) and,
        with no cached answer, hold its worst case in its budget (:meth:`reserve`).

        With shared state up, all three are one round trip to Redis (the holds of every
        daemon's requests seen at once); otherwise, or if Redis does not answer in
        time, this daemon's own state decides, with no ``await`` between the three.
        ``lease``: seconds after which a shared hold lapses if never given back.

        Returns:
            The cache key (None: not cached), a cached answer, the request's hold.
        """
        shared = self.shared
        counted = key is not None and (key.budget is not None or key.limits is not None)
        if shared is not None and shared.link.ok and (cache is not None or counted):
            entry, _ = self.lookup(cache, route, req, key, True)
            name = key.name if key is not None else "-"
            budget = key.budget if key is not None else None
            limits = key.limits if key is not None else None
            worst = self._worst(node, req) if budget is not None else 0.0
            windows = (limits.rpm or 0, limits.tpm or 0) if limits is not None else None
            looked = entry if not bypass else None
            admitted = await shared.admit(name, windows, tokens, budget, worst, lease, looked)
            if admitted is not None:
                self._refused(key, admitted)
                hit = admitted.answer
                kind = GatewayResponse if isinstance(req, GatewayRequest) else EmbeddingResponse
                if not isinstance(hit, kind):
                    hit = None
                # Without a key nothing is charged (as below): the hold is only a key's.
                return entry, hit, admitted.hold if key is not None else None
        self.admit(key, tokens)
        entry, hit = self.lookup(cache, route, req, key, bypass)
        return entry, hit, None if hit is not None else self.reserve(key, node, req)

    def _refused(self, key: ClientKey | None, admitted: Admitted) -> None:
        """Raise the refusal shared state answered, as :meth:`admit` would."""
        if admitted.code == 0 or key is None:
            return
        if admitted.code == 3:
            raise KeyRateLimited(
                f"key {key.name!r} is at its rate limit; retry in {admitted.wait:.1f}s",
                retry_after=admitted.wait,
            )
        assert key.budget is not None
        budget = f"the budget of key {key.name!r} (${key.budget.usd:g} a {key.budget.per})"
        if admitted.code == 1:
            raise BudgetExhausted(
                f"{budget} is held by its requests in flight; retry when they end",
                retry_after=1.0,
            )
        raise BudgetExhausted(f"{budget} is spent", retry_after=self.budgets.resets_in(key.name))

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
        self,
        key: ClientKey | None,
        node: Node,
        req: GatewayRequest | EmbeddingRequest | TextRequest,
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
        return self.budgets.reserve(key.name, self._worst(node, req))

    def _worst(self, node: Node, req: GatewayRequest | EmbeddingRequest | TextRequest) -> float:
        """The request's worst-case cost at the dearest target ``node`` can reach."""
        if isinstance(req, EmbeddingRequest):  # no output: the inputs are the cost
            prompt, output = embedding_tokens(req), 0
        elif isinstance(req, TextRequest):  # max_tokens for each completion it makes
            prompt = text_request_tokens(req, with_output=False)
            output = text_request_tokens(req) - prompt
        else:
            prompt = request_tokens(req, with_output=False)
            output = max(req.max_tokens if req.max_tokens is not None else RESERVE_OUTPUT, 0)
        worst = 0.0
        for target in _targets(node):
            worst = max(worst, self.prices.estimate(target, prompt, output) or 0.0)
        return worst

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
            if isinstance(hold, SharedHold):
                hold.reconcile(usage.total_tokens)
            elif key is not None and key.limits is not None:
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
            **({"shared": self.shared.snapshot()} if self.shared is not None else {}),
        }

    def store(self, entry: bytes | None, cache: RouteCacheConfig | None, resp: Cached) -> None:
        if entry is None or cache is None:
            return
        if self.shared is not None and self.shared.link.ok:
            self.shared.store(entry, resp, cache.ttl, self.cache.max_bytes)
        else:
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
