"""The order in which a node tries its candidates, and the arm a split takes.

- ``fallback``: as written, open circuits last.
- ``balance``: by strategy: round robin, weighted random, latency or least connections
  (power of two choices on live state, :mod:`router.routing._choose`), or cheapest
  (by the price table); open circuits last.
- ``split``: one arm per request, sticky by weighted rendezvous hashing, else random by
  weight.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING

from rules import Balance, Leaf, Node, Split

from ._choose import choose_latency, choose_least_connections, weighted_rendezvous

if TYPE_CHECKING:
    import random

    from rules import Fallback

    from ..traffic._cost import PriceTable
    from ._stats import TargetRegistry, TargetState

__all__ = ["CandidateOrder", "node_key"]


def node_key(node: Node) -> str:
    """The live-state key of a node: ``provider:model`` for a leaf, else its route name."""
    return str(node.target) if isinstance(node, Leaf) else node.name


class CandidateOrder:
    """Orders candidates on live state; keeps the round-robin counters between requests."""

    def __init__(self, registry: TargetRegistry, prices: PriceTable, rng: random.Random) -> None:
        self.registry = registry
        self.prices = prices
        self._rng = rng
        self._round_robin: dict[str, itertools.count[int]] = {}

    def order(self, node: Fallback | Balance, tokens: int, now: float) -> list[Node]:
        """The children in the order this node tries them; open circuits last."""
        children = list(node.children)
        if isinstance(node, Balance):
            children = self._balance_order(node, children, tokens)
        usable = [c for c in children if not self._is_open(c, now)]
        return usable + [c for c in children if c not in usable]

    def arm(self, node: Split, sticky_key: str | None) -> Node:
        """Same key, same arm; without one, a random arm by weight."""
        if sticky_key is None:
            return self._rng.choices(node.children, weights=node.weights, k=1)[0]
        arms = [node_key(c) for c in node.children]
        index = weighted_rendezvous(f"{node.name}\x00{sticky_key}", arms, node.weights)
        return node.children[index]

    def _balance_order(self, node: Balance, children: list[Node], tokens: int) -> list[Node]:
        strategy = node.strategy
        if strategy == "cheapest":
            return sorted(children, key=lambda child: self._cost(child, tokens))
        if strategy == "weighted":
            return _weighted_order(children, list(node.weights), self._rng)
        if strategy == "round_robin":
            start = next(self._round_robin.setdefault(node.name, itertools.count()))
            start %= len(children)
            return children[start:] + children[:start]
        states = {node_key(c): self.registry.get(node_key(c)) for c in children}

        def state_of(child: Node) -> TargetState:
            return states[node_key(child)]

        if strategy == "latency":
            first = choose_latency(children, state_of, self._rng)
            rest = sorted(
                (c for c in children if c is not first), key=lambda c: _estimate(state_of(c))
            )
        else:  # least_connections
            first = choose_least_connections(children, state_of, self._rng)
            rest = sorted(
                (c for c in children if c is not first), key=lambda c: state_of(c).in_flight
            )
        return [first, *rest]

    def _cost(self, node: Node, tokens: int) -> float:
        """The estimated price of sending the request to ``node`` (a route: its cheapest
        target); unknown prices sort last. The output is taken as 256 tokens: only the
        order matters here."""
        if isinstance(node, Leaf):
            price = self.prices.estimate(str(node.target), tokens, 256)
            return float("inf") if price is None else price
        return min((self._cost(child, tokens) for child in node.children), default=float("inf"))

    def _is_open(self, node: Node, now: float) -> bool:
        if not isinstance(node, Leaf):
            return False
        return self.registry.get(str(node.target)).breaker.state(now) == "open"


def _estimate(state: TargetState) -> float:
    """A target's latency estimate for ordering the rest; unknown sorts first."""
    estimate = state.stats.estimate()
    return 0.0 if estimate is None else estimate


def _weighted_order(children: list[Node], weights: list[float], rng: random.Random) -> list[Node]:
    """A weighted random order: each place drawn by weight from what is left."""
    pool = list(zip(children, weights, strict=True))
    order: list[Node] = []
    while pool:
        i = rng.choices(range(len(pool)), weights=[w for _, w in pool], k=1)[0]
        order.append(pool.pop(i)[0])
    return order
