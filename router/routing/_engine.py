"""The engine: runs a route's policy tree for one request.

It walks the compiled nodes of :mod:`rules` and makes attempts on upstreams:

- ``fallback`` tries its children in order and moves on when a failure's reason is in
  the node's ``on`` set; a bad request or a content-policy refusal goes straight back.
- ``balance`` orders its children by strategy (round robin, weighted, latency or least
  connections, the last two by power of two choices on live state), then falls back
  through them the same way.
- ``split`` sends each request to one arm, sticky by weighted rendezvous hashing.
- ``hedge`` on a fallback or balance node starts the next candidate when the current
  ones are slow (a fixed delay or a latency quantile), within the hedge budget; the
  first good answer wins and the others are cancelled (:mod:`router._hedge`).

Each leaf attempt goes through the target's circuit breaker and retries fast failures
with backoff (:mod:`router._attempt`). Streams are committed to an attempt when its
first content chunk arrives; before that, failures and silence move on unseen.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, TypeVar

import attrs
import trio

from adapters import (
    AllTargetsFailed,
    ChatChunk,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    NoHealthyTarget,
    StreamError,
    Timeout,
    UnsupportedCapability,
)
from rules import Balance, Defaults, Fallback, HedgeConfig, Leaf, Node, Percentile, Split

from ..traffic._cost import PriceTable
from ..traffic._ratelimit import estimate_tokens
from ._attempt import AttemptRecord, Call, LeafRunner, Served
from ._breaker import CircuitBreaker
from ._choose import choose_latency, choose_least_connections, weighted_rendezvous
from ._hedge import run_hedged
from ._hedge_budget import TokenBucket
from ._stats import TargetRegistry

if TYPE_CHECKING:
    from ..traffic._targetlimits import TargetLimits
    from ..upstream._upstream import Upstream
    from ._stats import TargetState

__all__ = ["Engine", "RequestOptions", "RequestTrace", "StreamStart"]

T = TypeVar("T")

# Failures a balance node moves on from (fallback nodes carry their own set).
_DEFAULT_ON = frozenset(
    {"timeout", "network", "server_error", "rate_limited", "overloaded", "context_length"}
)
# The hedge delay for a ``pNN`` target without enough samples yet.
UNKNOWN_QUANTILE_DELAY = 1.0


@attrs.define
class RequestTrace:
    """What happened to one request, for its response headers, log line, metrics, spans
    and errors. The engine records facts here; the app reports them when the request ends.
    """

    route: str
    attempts: int = 0
    status: int = 0  # the HTTP status sent to the client, 0 until one is
    target: str | None = None
    arm: str | None = None  # the split arm taken, if a split was on the way
    hedges: int = 0
    retries: int = 0
    errors: list[GatewayError] = attrs.field(factory=list)
    fallbacks: int = 0  # moves to the next candidate after a failure
    hedge_won: bool = False  # a hedge (not the first candidate) gave the answer
    log: list[AttemptRecord] = attrs.field(factory=list)
    #: Set by the app: the route as config knows it ("" for an unknown model).
    known_route: str = ""
    ttft: float | None = None  # seconds to the first content sent (streams)
    tokens_in: int | None = None
    tokens_out: int | None = None
    response_model: str | None = None
    finish_reasons: tuple[str, ...] = ()
    error: str | None = None  # the class name of the failure the client got
    outcome: str = ""  # the metrics outcome, set when the request ends
    client: str | None = None  # the name of the caller's key, when keys are configured
    cost_usd: float | None = None
    cache: str | None = None  # "hit" or "miss" on a route with a cache


@attrs.frozen
class RequestOptions:
    """What bounds one request: its deadline (trio time), retries per target, time to
    first token (streams), and its headers (lower-case names) for sticky splits."""

    deadline: float
    retries: int = 0
    first_token_timeout: float = 15.0
    #: The request's headers as the server gave them (raw, lower-case names); read only
    #: by a sticky split, so nothing is decoded for other requests.
    headers: Sequence[tuple[bytes, bytes]] = ()
    #: The request's estimated tokens, when the caller already has it (for rate limits).
    tokens: int | None = None

    def sticky_key(self, sticky: str | None) -> str | None:
        """The value a split with ``sticky`` hashes: a header, or the client's key."""
        if sticky is None:
            return None
        if sticky.startswith("header:"):
            return self._header(sticky[7:].lower())
        key = self._header("x-api-key") or self._header("authorization")
        return key.removeprefix("Bearer ").strip() if key else None

    def _header(self, name: str) -> str | None:
        wanted = name.encode("latin-1")
        for key, value in self.headers:
            if key.lower() == wanted:
                return value.decode("latin-1")
        return None


@attrs.define
class StreamStart:
    """A stream up to its first content chunk, with the rest still to read.

    ``exit`` owns the open upstream stream; whoever takes the StreamStart closes it.
    """

    head: list[ChatChunk]
    rest: AsyncIterator[list[ChatChunk]] | None  # None when the stream already ended
    exit: AsyncExitStack


class Engine:
    """Executes policy trees against upstreams, with live state per target.

    Args:
        upstreams: Provider name -> its upstream.
        defaults: ``[defaults]`` of the config: retries, backoff, circuit, hedge budget,
            stall timeout.
        registry: Live state per target; pass the old one on reload so it carries over.
        budget: The hedge budget; likewise carried over.
        rng: Randomness for balancing, splits and jitter (seed it in tests).
        limits: Rate-limit windows of providers and targets (carried over on reload).
        prices: For ``balance = "cheapest"``.
    """

    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        defaults: Defaults | None = None,
        *,
        registry: TargetRegistry | None = None,
        budget: TokenBucket | None = None,
        rng: random.Random | None = None,
        limits: TargetLimits | None = None,
        prices: PriceTable | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.limits = limits
        self.prices = prices or PriceTable()
        self.defaults = defaults = defaults or Defaults()
        circuit = defaults.circuit
        self.registry = registry or TargetRegistry(
            lambda: CircuitBreaker(circuit.failures, circuit.successes, circuit.open_for)
        )
        self.budget = budget or TokenBucket(defaults.hedge_budget)
        self.stall_timeout = defaults.stall_timeout
        self._rng = rng or random.Random()
        self._leaves = LeafRunner(upstreams, self.registry, defaults.backoff, self._rng, limits)
        self._round_robin: dict[str, itertools.count[int]] = {}

    async def complete(
        self, node: Node, req: GatewayRequest, trace: RequestTrace, options: RequestOptions
    ) -> GatewayResponse:
        """A whole answer from the first candidate that gives one.

        Raises:
            GatewayError: the failure to report (AllTargetsFailed naming every attempt,
                NoHealthyTarget when every target's circuit is open).
        """

        async def call(upstream: Upstream, model: str) -> GatewayResponse:
            return await upstream.complete(req, model)

        work = Call(
            call,
            _nothing,
            vision=req.needs_vision,
            tools=req.needs_tools,
            tokens=_request_tokens(req, options),
            used=_total_tokens,
        )
        served = await self._start(node, work, trace, options)
        return served.value

    async def open_stream(
        self, node: Node, req: GatewayRequest, trace: RequestTrace, options: RequestOptions
    ) -> StreamStart:
        """A stream from the first candidate to send content within the first-token time.

        The caller owns ``StreamStart.exit`` and must close it (enter it in its stack).

        Raises:
            GatewayError: as :meth:`complete`.
        """

        async def call(upstream: Upstream, model: str) -> StreamStart:
            return await _first_chunk(upstream, model, req, options.first_token_timeout)

        work = Call(
            call,
            _close_stream,
            vision=req.needs_vision,
            tools=req.needs_tools,
            tokens=_request_tokens(req, options),
        )
        served = await self._start(node, work, trace, options)
        return served.value

    async def next_batch(self, rest: AsyncIterator[list[ChatChunk]]) -> list[ChatChunk] | None:
        """The next chunks of a committed stream, None at its end.

        Raises:
            StreamError: the upstream went silent for ``stall_timeout``, or broke.
        """
        with trio.move_on_after(self.stall_timeout):
            try:
                return await anext(rest)
            except StopAsyncIteration:
                return None
        raise StreamError(f"upstream stream stalled for {self.stall_timeout:g}s")

    def stream_failed(self, target: str, error: GatewayError) -> None:
        """A committed stream broke: it counts against its target like any failure."""
        self._leaves.record_failure(self.registry.get(target), error, trio.current_time())

    # -- policy walk --------------------------------------------------------------------

    async def _start(
        self, node: Node, call: Call[T], trace: RequestTrace, options: RequestOptions
    ) -> Served[T]:
        self.budget.on_request()
        served = await self._run(node, call, _Ctx(trace, options))
        trace.target = served.target
        return served

    async def _run(self, node: Node, call: Call[T], ctx: _Ctx) -> Served[T]:
        if isinstance(node, Leaf):
            options = ctx.options
            return await self._leaves.run(
                node.target, call, ctx.trace, options.deadline, options.retries
            )
        if isinstance(node, Split):
            arm = self._arm(node, ctx.options.sticky_key(node.sticky))
            ctx.trace.arm = _key(arm)
            return await self._run(arm, call, ctx)
        on = node.on if isinstance(node, Fallback) else _DEFAULT_ON
        candidates = self._order(node, call.tokens)
        if node.hedge is not None:
            permit = _HedgePermit(self.budget, ctx.trace)
            return await run_hedged(
                candidates,
                lambda child: self._child(node, child, call, ctx),
                on,
                self._hedge_delay(node.hedge, candidates[0]),
                node.hedge.max,
                permit,
                call.discard,
                permit,
            )
        errors: list[GatewayError] = []
        for child in candidates:
            if errors:
                ctx.trace.fallbacks += 1
            try:
                return await self._child(node, child, call, ctx)
            except GatewayError as exc:
                errors.append(exc)
                if not falls_back(exc, on):
                    raise
        raise combine(errors)

    async def _child(
        self, parent: Fallback | Balance, child: Node, call: Call[T], ctx: _Ctx
    ) -> Served[T]:
        """A child of a fallback or balance node; routes among a balance's targets get
        their own in-flight count and latency, as leaves do."""
        if isinstance(child, Leaf) or not isinstance(parent, Balance):
            return await self._run(child, call, ctx)
        state = self.registry.get(child.name)
        state.in_flight += 1
        started = trio.current_time()
        try:
            served = await self._run(child, call, ctx)
        except GatewayError:
            state.stats.observe_failure(trio.current_time() - started)
            raise
        finally:
            state.in_flight -= 1
        state.stats.observe(trio.current_time() - started)
        return served

    def _hedge_delay(self, hedge: HedgeConfig, first: Node) -> float:
        if not isinstance(hedge.after, Percentile):
            return float(hedge.after)
        stats = self.registry.get(_key(first)).stats
        quantile = stats.quantile(hedge.after.q)
        return UNKNOWN_QUANTILE_DELAY if quantile is None else quantile

    # -- choosing -----------------------------------------------------------------------

    def _order(self, node: Fallback | Balance, tokens: int) -> list[Node]:
        """The children in the order this node tries them; open circuits last."""
        children = list(node.children)
        if isinstance(node, Balance):
            children = self._balance_order(node, children, tokens)
        now = trio.current_time()
        usable = [c for c in children if not self._is_open(c, now)]
        return usable + [c for c in children if c not in usable]

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
        states = {_key(c): self.registry.get(_key(c)) for c in children}

        def state_of(child: Node) -> TargetState:
            return states[_key(child)]

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

    def _arm(self, node: Split, sticky_key: str | None) -> Node:
        """Same key, same arm; without one, a random arm by weight."""
        if sticky_key is None:
            return self._rng.choices(node.children, weights=node.weights, k=1)[0]
        arms = [_key(c) for c in node.children]
        index = weighted_rendezvous(f"{node.name}\x00{sticky_key}", arms, node.weights)
        return node.children[index]

    def _is_open(self, node: Node, now: float) -> bool:
        if not isinstance(node, Leaf):
            return False
        return self.registry.get(str(node.target)).breaker.state(now) == "open"


@attrs.define
class _Ctx:
    trace: RequestTrace
    options: RequestOptions


@attrs.define
class _HedgePermit:
    """Asks the budget for each hedge, and counts the hedges that went."""

    budget: TokenBucket
    trace: RequestTrace

    def __call__(self) -> bool:
        if self.budget.try_take():
            self.trace.hedges += 1
            return True
        return False

    def fallback(self) -> None:
        """A failure started the next candidate."""
        self.trace.fallbacks += 1

    def won(self, by_hedge: bool) -> None:
        """The race has a winner; ``by_hedge`` if a hedge (not a fallback) started it."""
        self.trace.hedge_won = self.trace.hedge_won or by_hedge


def _key(node: Node) -> str:
    """The live-state key of a node: ``provider:model`` for a leaf, else its route name."""
    return str(node.target) if isinstance(node, Leaf) else node.name


def _estimate(state: TargetState) -> float:
    """A target's latency estimate for ordering the rest; unknown sorts first."""
    estimate = state.stats.estimate()
    return 0.0 if estimate is None else estimate


def falls_back(exc: GatewayError, on: frozenset[str]) -> bool:
    """Whether ``exc`` lets a node move on to its next candidate."""
    if isinstance(exc, AllTargetsFailed | NoHealthyTarget | UnsupportedCapability):
        return True  # another target may be healthy, or able to take it
    return exc.fallback_reason is not None and exc.fallback_reason in on


def combine(errors: Sequence[GatewayError]) -> GatewayError:
    """The error for a node whose every candidate failed."""
    flat: list[GatewayError] = []
    for e in errors:
        flat.extend(e.attempts if isinstance(e, AllTargetsFailed) else (e,))
    if flat and all(isinstance(e, UnsupportedCapability) for e in flat):
        reasons = "; ".join(e.message for e in flat)
        return UnsupportedCapability(f"no target can take this request: {reasons}")
    if flat and all(isinstance(e, NoHealthyTarget) for e in flat):
        names = ", ".join(e.upstream or "?" for e in flat)
        # ``upstream`` names them all, so a route naming this one can list them too.
        return NoHealthyTarget(
            f"no healthy target: every circuit is open ({names})", upstream=names
        )
    if len(flat) == 1:
        return flat[0]
    return AllTargetsFailed(tuple(flat))


def _weighted_order(children: list[Node], weights: list[float], rng: random.Random) -> list[Node]:
    """A weighted random order: each place drawn by weight from what is left."""
    pool = list(zip(children, weights, strict=True))
    order: list[Node] = []
    while pool:
        i = rng.choices(range(len(pool)), weights=[w for _, w in pool], k=1)[0]
        order.append(pool.pop(i)[0])
    return order


async def _first_chunk(
    upstream: Upstream, model: str, req: GatewayRequest, first_token_timeout: float
) -> StreamStart:
    """Open a stream and read it up to its first content chunk."""
    head: list[ChatChunk] = []
    rest: AsyncIterator[list[ChatChunk]] | None = None
    async with AsyncExitStack() as attempt:
        with trio.move_on_after(first_token_timeout) as scope:
            chunks = await attempt.enter_async_context(upstream.stream(req, model))
            rest = chunks
            async for batch in chunks:
                head += batch
                if any(chunk.has_content for chunk in batch):
                    break
            else:
                rest = None  # the whole (content-free) stream is in head
        if scope.cancelled_caught:
            raise Timeout(f"no first token within {first_token_timeout:g}s")
        return StreamStart(head, rest, attempt.pop_all())


def _request_tokens(req: GatewayRequest, options: RequestOptions) -> int:
    """Tokens a request may use, before the upstream says (rate limits need it first)."""
    if options.tokens is not None:
        return options.tokens  # the app estimated it already, for the key's own window
    return estimate_tokens(sum(len(m.text()) for m in req.messages), req.max_tokens)


def _total_tokens(resp: GatewayResponse) -> int | None:
    return resp.usage.total_tokens if resp.usage is not None else None


async def _nothing(value: object) -> None:
    await trio.lowlevel.checkpoint()


async def _close_stream(start: StreamStart) -> None:
    """A stream that lost a race: close it, even while being cancelled."""
    with trio.CancelScope(shield=True), trio.move_on_after(5):
        await start.exit.aclose()
