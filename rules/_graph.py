"""The compiled route graph: what the engine walks for each request.

A `RouteTable` is an immutable snapshot: a reload builds a new one and swaps it in with
one assignment, so a request keeps the table it started with. Routes that name other
routes share the named route's node, so the graph is a DAG, not a tree.
"""

import hashlib
import json
from collections.abc import Mapping

import attrs

from ._scan import TextHook
from ._schema import BatchConfig, Config, HedgeConfig, RouteCacheConfig
from ._validate import AnswerCheck
from ._when import Expr

__all__ = [
    "Balance",
    "Choice",
    "Fallback",
    "Leaf",
    "Node",
    "RouteSettings",
    "RouteTable",
    "Split",
    "Target",
    "config_digest",
    "parse_target",
    "reachable",
]


@attrs.frozen(order=True)
class Target:
    """One model at one provider, written ``provider:model``."""

    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}:{self.model}"


def parse_target(text: str) -> Target:
    """Split ``provider:model`` at the first colon.

    Model ids may contain colons themselves
    (``bedrock:anthropic.claude-3-5-haiku-20241022-v1:0``), provider names may not.

    Raises:
        ValueError: There is no colon, or the provider or model is empty.
    """
    provider, colon, model = text.partition(":")
    if not colon or not provider or not model:
        raise ValueError(f'"{text}" is not a target (provider:model)')
    return Target(provider, model)


@attrs.frozen
class RouteSettings:
    """A route's effective policy: its own values, else ``[defaults]``.

    Attributes:
        timeout: Seconds to wait for an answer (retries, hedges and fallbacks included),
            up to a stream's first content chunk.
        first_token_timeout: Seconds until a stream's first content chunk.
        retries: Extra attempts per target for fast, retryable failures.
        cache: The route's response cache, or None when it does not cache.
        resume_max: Resumes of a broken stream per request (0: ``resume = "off"``).
        stream_timeout: Seconds a committed stream may last, from the request's start.
        batch: Combine concurrent embeddings requests into one upstream call, or None.
        hooks: The content hooks its requests and answers go through, in order.
        check: What its answers must be (``validate``), or None.
    """

    timeout: float
    first_token_timeout: float
    retries: int
    cache: RouteCacheConfig | None = None
    resume_max: int = 1
    stream_timeout: float = 600.0
    batch: BatchConfig | None = None
    hooks: tuple[TextHook, ...] = ()
    check: AnswerCheck | None = None


@attrs.frozen(cache_hash=True)
class Leaf:
    """Send the request to one target."""

    target: Target


@attrs.frozen(cache_hash=True)
class Choice:
    """A compiled ``when`` rule: while ``condition`` holds, ``node`` serves the request
    instead of the route's own policy. ``label`` (``when[0]``) is what the answer's
    ``x-router-rule`` header says; ``text`` is the condition as written."""

    label: str
    text: str
    condition: Expr
    node: "Node"


@attrs.frozen(cache_hash=True)
class Fallback:
    """Try children in order; move on after a failure whose class is in ``on``."""

    name: str
    children: tuple["Node", ...]
    on: frozenset[str]
    hedge: HedgeConfig | None
    settings: RouteSettings
    when: tuple[Choice, ...] = ()


@attrs.frozen(cache_hash=True)
class Balance:
    """Pick one child by ``strategy`` (weights are used by ``weighted`` only)."""

    name: str
    strategy: str
    children: tuple["Node", ...]
    weights: tuple[float, ...]
    hedge: HedgeConfig | None
    settings: RouteSettings
    when: tuple[Choice, ...] = ()


@attrs.frozen(cache_hash=True)
class Split:
    """Pick one child at random by relative weight, or by hash of the sticky key."""

    name: str
    children: tuple["Node", ...]
    weights: tuple[float, ...]
    sticky: str | None
    settings: RouteSettings
    when: tuple[Choice, ...] = ()


Node = Leaf | Fallback | Balance | Split


def reachable(node: Node) -> tuple[Node, ...]:
    """The nodes directly below ``node``: its ``when`` choices, then its children."""
    if isinstance(node, Leaf):
        return ()
    if not node.when:
        return node.children
    return (*(choice.node for choice in node.when), *node.children)


def config_digest(config: Config) -> str:
    """SHA-256 of the configuration in a canonical form.

    The canonical form is the parsed values, not the file's bytes: an edit that only
    touches comments or spacing keeps the digest, so a reload can tell nothing changed.
    Secret references are hashed as references; values are never read here.
    """
    canonical = json.dumps(
        attrs.asdict(config),
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


@attrs.frozen(eq=False)
class RouteTable:
    """The compiled rules: route name -> policy tree, plus the config they came from.

    Attributes:
        config: The configuration compiled.
        routes: Route name -> node, in file order.
        digest: `config_digest` of ``config`` (hex SHA-256).
        default_hooks: ``[defaults] hooks``, compiled: what a direct
            ``provider:model`` request goes through.
    """

    config: Config
    routes: Mapping[str, Node]
    digest: str
    default_hooks: tuple[TextHook, ...] = ()

    @property
    def short_digest(self) -> str:
        """The first 12 hex digits of `digest`, for logs and ``/admin/reload``."""
        return self.digest[:12]

    def lookup(self, model: str) -> Node | None:
        """Find what a client's ``model`` means.

        Returns:
            The route's node; else a `Leaf` when ``model`` is ``provider:model`` with a
            defined provider that serves ``model`` (any, or one of its ``models`` when
            it lists them); else None (the client gets 404).
        """
        node = self.routes.get(model)
        if node is not None:
            return node
        provider, colon, name = model.partition(":")
        if not colon or not name:
            return None
        block = self.config.providers.get(provider)
        if block is None or (block.models and name not in block.models):
            return None
        return Leaf(Target(provider, name))

    def route_names(self) -> tuple[str, ...]:
        """The route names, in file order."""
        return tuple(self.routes)

    def listed(self) -> tuple[Target, ...]:
        """Every target of the routes and every model a provider lists, once each, sorted:
        what ``GET /v1/models`` shows besides the route names."""
        found = set(self.targets())
        for provider, block in self.config.providers.items():
            found.update(Target(provider, model) for model in block.models)
        return tuple(sorted(found))

    def targets(self) -> tuple[Target, ...]:
        """Every target some route can reach, once each, sorted."""
        found: set[Target] = set()
        seen: set[int] = set()
        stack: list[Node] = list(self.routes.values())
        while stack:
            node = stack.pop()
            if id(node) in seen:  # shared subroutes are walked once
                continue
            seen.add(id(node))
            if isinstance(node, Leaf):
                found.add(node.target)
            else:
                stack.extend(reachable(node))
        return tuple(sorted(found))
