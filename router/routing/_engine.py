"""The engine: runs a route's policy tree for one request, stream included.

It walks the compiled nodes of :mod:`rules` and makes attempts on upstreams:

- ``fallback`` and ``balance`` nodes order their children (:mod:`._order`) and race
  them by the pure policy in :mod:`._race`, carried out by :mod:`._racer`: one at a
  time, moving on when a failure's reason is in the node's ``on`` set; with ``hedge``,
  the next candidate also starts when the current ones are slow (a fixed delay or a
  latency quantile), within the hedge budget, and the first good answer wins.
- ``split`` sends each request to one arm, sticky by weighted rendezvous hashing.

Each leaf attempt goes through the target's circuit breaker and retries fast failures
with backoff (:mod:`._attempt`). A stream is committed to an attempt when its first
content chunk arrives; before that, failures and silence move on unseen. The engine owns
the whole answer: :meth:`Engine.complete` returns it, :meth:`Engine.stream` opens it.
"""

from __future__ import annotations

import random
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import trio

from adapters import (
    ChatChunk,
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    InvalidRequest,
    TextRequest,
    TextResponse,
    Timeout,
    prefilled,
    translated,
)
from rules import Balance, Defaults, Fallback, HedgeConfig, Leaf, Node, Percentile, Split

from ..traffic._cost import PriceTable
from ..traffic._tokens import request_tokens
from ._attempt import Call, LeafRunner, Served, Verdict
from ._breaker import CircuitBreaker
from ._failures import DEFAULT_ON
from ._hedge_budget import TokenBucket
from ._order import CandidateOrder, node_key
from ._race import Race
from ._racer import run_race
from ._resume import Delivered, Seamed, Spliced
from ._select import scorer, selected
from ._stats import TargetRegistry
from ._streams import Chunks, Resume, StreamStart, close_stream, first_chunk
from ._text import complete_text
from ._validation import buffered, check_answer
from ._work import attempt_kind, input_tokens, nothing, text_tokens_used, total_tokens, within

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable, Mapping

    from ..traffic._targetlimits import TargetLimits
    from ..upstream._upstream import Upstream
    from ._batch import EmbeddingBatcher
    from ._request import RequestTrace, RoutedRequest

__all__ = ["Engine"]

T = TypeVar("T")

# The hedge delay for a ``pNN`` target without enough samples yet.
UNKNOWN_QUANTILE_DELAY = 1.0


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
        batcher: Combines embeddings requests of routes with ``batch`` (carried over on
            reload; it runs in the daemon's nursery); None: each request calls alone.
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
        batcher: EmbeddingBatcher | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.batcher = batcher
        self.limits = limits
        self.prices = prices or PriceTable()
        self.defaults = defaults = defaults or Defaults()
        circuit = defaults.circuit
        # Not `registry or ...`: an empty registry is falsy (it has a length).
        self.registry = (
            registry
            if registry is not None
            else TargetRegistry(
                lambda: CircuitBreaker(circuit.failures, circuit.successes, circuit.open_for)
            )
        )
        self.budget = budget or TokenBucket(defaults.hedge_budget)
        self.stall_timeout = defaults.stall_timeout
        self._rng = rng or random.Random()
        self._leaves = LeafRunner(upstreams, self.registry, defaults.backoff, self._rng, limits)
        self._order = CandidateOrder(self.registry, self.prices, self._rng)
        self._score = scorer(defaults.complexity)

    async def complete(self, routed: RoutedRequest[GatewayRequest]) -> GatewayResponse:
        """A whole answer from the first candidate that gives one, within the deadline.

        An attempt that has others after it fails with Timeout when it has no answer
        within the first-token time, so a silent target does not eat the whole deadline;
        the last candidate (a route's only target too) has until the deadline.

        Raises:
            GatewayError: the failure to report (AllTargetsFailed naming every attempt,
                NoHealthyTarget when every target's circuit is open, Timeout when the
                deadline passed).
        """
        req, check = routed.request, routed.options.check

        async def final(upstream: Upstream, model: str) -> GatewayResponse:
            resp = await upstream.complete(req, model)
            if check is not None:
                check_answer(check, resp)
            return resp

        call = within(routed.options.first_token_timeout, final)
        work = attempt_kind(routed, call, nothing, total_tokens, final=final)
        return (await self._start(routed, work)).value

    async def embed(self, routed: RoutedRequest[EmbeddingRequest]) -> EmbeddingResponse:
        """Embeddings from the first candidate that gives them, as :meth:`complete`
        (the first-token time bounds an attempt that has others after it). On a route
        with ``batch``, each attempt may share its upstream call with concurrent
        requests to the same target (:mod:`._batch`).

        Raises:
            GatewayError: as :meth:`complete`.
        """
        req, batch, batcher = routed.request, routed.options.batch, self.batcher

        async def final(upstream: Upstream, model: str) -> EmbeddingResponse:
            if batch is not None and batcher is not None:
                return await batcher.embed(upstream, model, req, batch)
            return await upstream.embed(req, model)

        call = within(routed.options.first_token_timeout, final)
        work = attempt_kind(routed, call, nothing, input_tokens, final=final)
        return (await self._start(routed, work)).value

    @asynccontextmanager
    async def stream(self, routed: RoutedRequest[GatewayRequest]) -> AsyncIterator[Chunks]:
        """A stream from the first candidate to send content within the first-token time.

        Entering raises (GatewayError, as :meth:`complete`) before any content exists;
        the chunks it yields raise StreamError if the committed stream breaks, stalls or
        outlives its stream deadline (counted against its target; its success counts
        when it ends whole). Leaving closes the upstream stream.
        """
        async with self._streamed(routed, lambda v: partial(self._resume, routed, v)) as chunks:
            yield chunks

    async def complete_text(self, routed: RoutedRequest[TextRequest]) -> TextResponse:
        """A legacy text completion (``/v1/completions``), as :meth:`complete`; a target
        without that API lacks a capability (UnsupportedCapability when none has it)."""
        req = routed.request

        async def final(upstream: Upstream, model: str) -> TextResponse:
            return await complete_text(upstream, req, model)

        call = within(routed.options.first_token_timeout, final)
        work = attempt_kind(routed, call, nothing, text_tokens_used, final=final)
        return (await self._start(routed, work)).value

    def stream_text(
        self, routed: RoutedRequest[TextRequest]
    ) -> AbstractAsyncContextManager[Chunks]:
        """A legacy text completion's stream, as :meth:`stream` (its chunks carry the
        upstream's events as they came); a break is not resumed, it ends the stream."""
        return self._streamed(routed, None)

    @asynccontextmanager
    async def _streamed(
        self,
        routed: RoutedRequest[GatewayRequest] | RoutedRequest[TextRequest],
        resume: Callable[[dict[str, Verdict]], Resume] | None,
    ) -> AsyncIterator[Chunks]:
        """The stream of :meth:`stream` and :meth:`stream_text`; ``resume`` makes what
        continues it after a break, given the verdicts still open (None: never)."""
        req, check = routed.request, routed.options.check
        first_token_timeout = routed.options.first_token_timeout

        async def call(upstream: Upstream, model: str) -> StreamStart:
            start = await first_chunk(upstream, model, req, first_token_timeout)
            if check is not None:  # read whole and checked before it is committed
                return await buffered(start, check, self.stall_timeout)
            return start

        work = attempt_kind(routed, call, close_stream, verdict_later=True)
        served = await self._start(routed, work)
        start = served.value
        # The breaker's verdict on each stream still open: given when it ends whole or
        # breaks (a resumed stream's target gets its own), none when it is closed early.
        verdicts: dict[str, Verdict] = {}
        if served.verdict is not None:
            verdicts[served.verdict.target] = served.verdict

        def broke(target: str, error: GatewayError) -> None:
            verdict = verdicts.pop(target, None)
            if verdict is not None:
                verdict.failure(error)
            else:
                self._broke(target, error)

        def ended(target: str) -> None:
            verdict = verdicts.pop(target, None)
            if verdict is not None:
                verdict.success()

        chunks = Chunks(
            start,
            routed.trace,
            routed.options.stream_end,
            self.stall_timeout,
            broke,
            ended,
            resume=resume(verdicts) if resume is not None else None,
            resume_max=routed.options.resume_max,
        )
        try:
            if start.rest is None:  # the whole stream came with its first chunk
                ended(served.target)
            yield chunks
        finally:
            await chunks.aclose()
            for verdict in verdicts.values():
                verdict.release()  # closed before it ended (the client left): no verdict

    async def _resume(
        self,
        routed: RoutedRequest[GatewayRequest],
        verdicts: dict[str, Verdict],
        delivered: Delivered,
        broken: frozenset[str],
    ) -> StreamStart:
        """The rest of a broken stream from the route's next candidate (the route's own
        policy, the broken targets skipped): prefilled with the delivered text where the
        target takes a prefill, else regenerated and spliced (see :mod:`._resume`).

        Raises:
            GatewayError: no candidate could continue the answer.
        """
        text = delivered.text
        delivered.broke(request_tokens(routed.request, with_output=False))
        # Translated even for a target of the client's format: the continuation is
        # spliced onto what was sent through the unified chunks, and a prefill changes
        # the request. (UnsupportedParameter when the client's body has parts only a
        # passthrough carries: then nobody resumes, and the stream ends with an error.)
        req = translated(routed.request)
        first_token_timeout = routed.options.first_token_timeout

        def seamed(chunks: AsyncIterator[list[ChatChunk]]) -> AsyncIterator[list[ChatChunk]]:
            return Seamed(chunks, text)

        def spliced(chunks: AsyncIterator[list[ChatChunk]]) -> AsyncIterator[list[ChatChunk]]:
            return Spliced(chunks, text)

        async def call(upstream: Upstream, model: str) -> StreamStart:
            if upstream.capabilities(model).prefill:
                try:
                    go_on = prefilled(req, text)
                    return await first_chunk(upstream, model, go_on, first_token_timeout, seamed)
                except InvalidRequest:
                    pass  # it refuses a prefill (some models do): answer anew, spliced
            return await first_chunk(upstream, model, req, first_token_timeout, spliced)

        work = attempt_kind(routed, call, close_stream, verdict_later=True, exclude=broken)
        served = await self._run(routed.node, work, routed)
        routed.trace.target = served.target
        if served.verdict is not None:
            verdicts[served.target] = served.verdict
        self.registry.get(served.target).resumed += 1
        return served.value

    def _broke(self, target: str, error: GatewayError) -> None:
        """A committed stream broke: it counts against its target like any failure."""
        self._leaves.record_failure(self.registry.get(target), error, trio.current_time())

    # -- policy walk --------------------------------------------------------------------

    async def _start(self, routed: RoutedRequest[Any], call: Call[T]) -> Served[T]:
        self.budget.on_request()
        trace = routed.trace
        with trio.move_on_at(routed.options.deadline) as scope:
            try:
                served = await self._run(routed.node, call, routed)
            except GatewayError as exc:
                if exc.upstream_status is not None and exc in trace.errors:
                    trace.target = exc.upstream  # its answer goes to the client: name it
                raise
            trace.target = served.target
            return served
        assert scope.cancelled_caught
        raise Timeout(f"the request took longer than its deadline ({trace.route})")

    async def _run(self, node: Node, call: Call[T], routed: RoutedRequest[Any]) -> Served[T]:
        if isinstance(node, Leaf):
            options = routed.options
            return await self._leaves.run(
                node.target, call, routed.trace, options.deadline, options.retries
            )
        if node.when and (chosen := selected(node, routed, self._score)) is not node:
            return await self._run(chosen, call, routed)
        if isinstance(node, Split):
            arm = self._order.arm(node, routed.options.sticky_key(node.sticky))
            routed.trace.arm = node_key(arm)
            return await self._run(arm, call, routed)
        candidates = self._order.order(node, call.tokens, trio.current_time())
        race = self._race(node, candidates)

        async def run(index: int) -> Served[T]:
            last = index == len(candidates) - 1
            return await self._child(
                node, candidates[index], call if last else call.elsewhere(), routed
            )

        async def discard(served: Served[T]) -> None:
            if served.verdict is not None:
                served.verdict.release()
            await call.discard(served.value)

        try:
            return await run_race(race, run, discard)
        finally:
            _note_race(routed.trace, race)

    def _race(self, node: Fallback | Balance, candidates: list[Node]) -> Race:
        on = node.on if isinstance(node, Fallback) else DEFAULT_ON
        hedge = node.hedge
        if hedge is None:
            return Race(len(candidates), on)
        return Race(
            len(candidates),
            on,
            delay=self._hedge_delay(hedge, candidates[0]),
            max_hedges=hedge.max,
            permit=self.budget.try_take,
        )

    async def _child(
        self, parent: Fallback | Balance, child: Node, call: Call[T], routed: RoutedRequest[Any]
    ) -> Served[T]:
        """A child of a fallback or balance node; routes among a balance's targets get
        their own in-flight count and latency, as leaves do."""
        if isinstance(child, Leaf) or not isinstance(parent, Balance):
            return await self._run(child, call, routed)
        state = self.registry.get(child.name)
        state.in_flight += 1
        started = trio.current_time()
        try:
            served = await self._run(child, call, routed)
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
        stats = self.registry.get(node_key(first)).stats
        quantile = stats.quantile(hedge.after.q)
        return UNKNOWN_QUANTILE_DELAY if quantile is None else quantile


def _note_race(trace: RequestTrace, race: Race) -> None:
    trace.fallbacks += race.fallbacks
    trace.hedges += race.hedges
    trace.hedge_won = trace.hedge_won or race.won_by_hedge
