"""``llm-router simulate``: the real engine and policies, in virtual time.

The daemon's own assembly (:func:`build_runtime`) builds the routing engine, breakers,
hedge budget and rate windows from the config; every provider is then played by the
built-in ``simulated`` model (a real provider by the default model, or by its
``--provider`` override), and a traffic shape (:mod:`._traffic_spec`) drives requests
straight into the engine, with no HTTP in between. It all runs in virtual time
(:class:`~._virtual_clock.VirtualClock`, which jumps to the next event as trio's
``MockClock`` with autojump does, at a fraction of its cost a request): a simulated
upstream waits out its latencies on that clock, so an hour of traffic takes only the
CPU time of the routing it exercises. The engine's own deadlines, timeouts, backoff
and hedge timers are trio's cancel scopes on the same clock.

Not modelled: the HTTP layer (framing, the overload guard), response caches, client
keys and their budgets, and active health probes. Embeddings routes (those with
``batch``) get no traffic unless named.
"""

from __future__ import annotations

import random
import zlib
from contextlib import aclosing, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import attrs
import trio

from adapters import (
    GatewayError,
    GatewayRequest,
    LatencySpec,
    Message,
    SimulatedModel,
    SimulatedProvider,
    Usage,
)
from rules import Config, Node, RouteSettings, SimulateProfile, compile_routes

from ..routing._request import RequestOptions, RequestTrace, RoutedRequest
from ..traffic._tokens import request_tokens
from ..upstream._upstream import SimulatedUpstream, Upstream
from ._assemble import build_runtime
from ._virtual_clock import VirtualClock, virtual_sleep

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable

    from adapters import ChatChunk, GatewayResponse

    Sleep = Callable[[float], Awaitable[None]]

    from ..routing._runtime import Runtime
    from ._traffic_spec import TrafficSpec

__all__ = ["Sample", "modelled", "provider_seed", "run_simulation", "simulate"]

#: Stream batches are at least this many seconds of tokens apart: fewer wake-ups per
#: stream than one a token, and the same time to first token and to the end.
STREAM_SLICE = 0.25


@attrs.frozen
class Sample:
    """One request's outcome: seconds to its answer (a stream's end), to its first
    token (streams only), whether it succeeded, and what the engine did for it."""

    route: str
    latency: float
    ttft: float | None
    ok: bool
    attempts: int
    hedges: int
    retries: int
    resumes: int
    cost: float | None
    error: str | None = None


def modelled(config: Config, seed: int) -> Config:
    """``config`` with every provider played by a seeded simulated model.

    A simulated provider keeps its parameters, its seed derived from ``seed``, its
    name and its own ``seed`` (so the daemon given :func:`provider_seed` as the
    provider's seed draws the same latencies); any other kind becomes a simulated
    model with its rate limits. ``[simulate.providers.NAME]`` sets the parameters
    (for a simulated provider too: a what-if); a real provider without it gets the
    defaults of :class:`~rules.SimulateProfile`.
    Client keys are dropped: the simulator drives the engine, not the HTTP surface.
    """
    providers = {}
    for name, provider in config.providers.items():
        own = provider_seed(seed, name)
        profile = config.simulate.providers.get(name)
        if isinstance(provider, SimulatedProvider):
            played = attrs.evolve(provider, seed=own ^ (provider.seed or 0))
        else:
            played = SimulatedProvider(
                models=provider.models,
                limits=provider.limits,
                model_limits=provider.model_limits,
                seed=own,
            )
            profile = profile or SimulateProfile()
        if profile is not None:
            latency = LatencySpec(profile.latency.median, profile.latency.p99)
            played = attrs.evolve(
                played,
                latency=latency,
                error_rate=profile.error_rate,
                tokens_per_second=profile.tokens_per_second,
            )
        providers[name] = played
    return attrs.evolve(config, providers=providers, keys={})


def provider_seed(seed: int, name: str) -> int:
    """The seed of provider ``name``'s model in a run with ``seed``."""
    return seed ^ zlib.crc32(name.encode())


class SlicedUpstream(SimulatedUpstream):
    """The simulated upstream, waiting on the virtual clock's timers, a whole answer
    in one wait and a stream's tokens in slices of :data:`STREAM_SLICE` seconds rather
    than one by one (the same timings, a fraction of the wake-ups)."""

    def __init__(self, name: str, model: SimulatedModel, sleep: Sleep) -> None:
        super().__init__(name, model)
        self._sleep = sleep
        # Answers of the same text share one response (the first one's id): nothing in
        # a simulation reads an answer but its usage.
        self._answers: dict[tuple[object, ...], GatewayResponse] = {}

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        plan = self.model.plan(req, model, created=0)
        if plan.error is not None:
            await self._sleep(plan.latency)
            raise plan.error
        await self._sleep(plan.latency + plan.token_interval * len(plan.tokens))
        key = (model, plan.tokens, plan.finish_reason, plan.usage)
        answer = self._answers.get(key)
        if answer is None:
            answer = self._answers[key] = plan.response()
        return answer

    @asynccontextmanager
    async def stream(
        self, req: GatewayRequest, model: str
    ) -> AsyncIterator[AsyncIterator[list[ChatChunk]]]:
        plan = self.model.plan(req, model, created=0)
        sleep = self._sleep
        await sleep(plan.latency)
        if plan.error is not None:
            raise plan.error
        step = max(1, int(STREAM_SLICE / plan.token_interval))

        async def chunks() -> AsyncGenerator[list[ChatChunk]]:
            role, *rest = plan.chunks(req.include_usage)
            yield [role, rest[0]]
            rest = rest[1:]
            for i in range(0, len(rest), step):
                part = rest[i : i + step]
                await sleep(plan.token_interval * len(part))  # nothing runs late here
                yield part

        async with aclosing(chunks()) as iterator:
            yield iterator


def _upstreams(config: Config, sleep: Sleep) -> dict[str, Upstream]:
    out: dict[str, Upstream] = {}
    for name, provider in config.providers.items():
        assert isinstance(provider, SimulatedProvider)  # made so by modelled()
        model = SimulatedModel(
            provider.latency.median,
            provider.latency.p99,
            provider.error_rate,
            provider.tokens_per_second,
            seed=provider.seed,
            name=name,
        )
        out[name] = SlicedUpstream(name, model, sleep)
    return out


def simulate(config: Config, traffic: TrafficSpec, duration: float, seed: int) -> list[Sample]:
    """Run ``traffic`` for ``duration`` virtual seconds through ``config``'s engine.

    Raises:
        ValueError: the traffic names a route the config does not have.
    """
    clock = VirtualClock()
    return trio.run(partial(run_simulation, config, traffic, duration, seed), clock=clock)


async def run_simulation(
    config: Config, traffic: TrafficSpec, duration: float, seed: int
) -> list[Sample]:
    """:func:`simulate`, inside a trio run (on a :class:`VirtualClock` or a
    ``MockClock``, or it takes real time)."""
    clock = trio.lowlevel.current_clock()
    sleep_until = clock.sleep_until if isinstance(clock, VirtualClock) else trio.sleep_until
    config = modelled(config, seed)
    table = compile_routes(config)
    upstreams = _upstreams(config, virtual_sleep)
    runtime = build_runtime(
        config, table=table, tls={}, upstreams=upstreams, rng=random.Random(seed)
    ).runtime
    routes = _routes(runtime, traffic)
    rng = random.Random(seed + 1)
    requests = _Requests(traffic)
    samples: list[Sample] = []

    def arrive(nursery: trio.Nursery) -> None:
        route = rng.choice(routes)
        low, high = traffic.prompt
        req, tokens = requests.get(route[0], rng.randint(low, high), rng.random() < traffic.stream)
        headers = [(b"x-user-id", str(rng.randrange(10_000)).encode())]
        nursery.start_soon(_one, runtime, route, req, tokens, headers, samples)

    async with trio.open_nursery() as nursery:
        start = trio.current_time()
        end = start + duration
        next_burst = start if traffic.burst else end
        next_arrival = start + rng.expovariate(traffic.rate)
        while min(next_burst, next_arrival) < end:
            if next_burst <= next_arrival:
                await sleep_until(next_burst)
                for _ in range(traffic.burst):
                    arrive(nursery)
                next_burst += traffic.burst_every
            else:
                await sleep_until(next_arrival)
                arrive(nursery)
                next_arrival += rng.expovariate(traffic.rate)
    return samples


def _routes(runtime: Runtime, traffic: TrafficSpec) -> list[tuple[str, Node, RouteSettings]]:
    """What the traffic goes to: the named routes, else every chat route."""
    table = runtime.table
    names = traffic.routes or tuple(
        n for n in table.route_names() if runtime.settings_for(_node(runtime, n)).batch is None
    )
    if not names:
        raise ValueError("the config has no chat route to send traffic to")
    return [(n, node := _node(runtime, n), runtime.settings_for(node)) for n in names]


def _node(runtime: Runtime, name: str) -> Node:
    node = runtime.table.lookup(name)
    if node is None:
        raise ValueError(f"traffic: routes: {name!r} is not a route or provider:model target")
    return node


class _Requests:
    """The requests of a traffic shape, made once each (route, prompt size, stream or
    not) and shared by every request like it, with their estimated tokens: requests
    are immutable, and the engine keeps what it learns of one in its trace."""

    def __init__(self, traffic: TrafficSpec) -> None:
        self._traffic = traffic
        self._texts: dict[int, str] = {}
        self._made: dict[tuple[str, int, bool], tuple[GatewayRequest, int]] = {}

    def get(self, route: str, words: int, stream: bool) -> tuple[GatewayRequest, int]:
        key = (route, words, stream)
        made = self._made.get(key)
        if made is None:
            text = self._texts.get(words)
            if text is None:
                text = self._texts[words] = " ".join(f"w{i % 97}" for i in range(words))
            req = GatewayRequest(
                model=route,
                messages=(Message(role="user", content=text),),
                stream=stream,
                include_usage=True,
                max_tokens=self._traffic.max_tokens,
            )
            made = self._made[key] = (req, request_tokens(req))
        return made


async def _one(
    runtime: Runtime,
    route: tuple[str, Node, RouteSettings],
    req: GatewayRequest,
    tokens: int,
    headers: list[tuple[bytes, bytes]],
    samples: list[Sample],
) -> None:
    """One request, as the chat handler makes it, minus HTTP."""
    name, node, settings = route
    start = trio.current_time()
    trace = RequestTrace(route=name)
    options = RequestOptions(
        deadline=start + settings.timeout,
        retries=settings.retries,
        first_token_timeout=settings.first_token_timeout,
        headers=headers,
        tokens=tokens,
        resume_max=settings.resume_max,
        stream_deadline=start + settings.stream_timeout,
    )
    routed = RoutedRequest(node, req, trace, options)
    engine = runtime.engine
    ttft: float | None = None
    usage: Usage | None = None
    error: str | None = None
    try:
        if req.stream:
            async with engine.stream(routed) as chunks:
                async for batch in chunks:
                    if ttft is None:
                        ttft = trio.current_time() - start
                    usage = next((c.usage for c in batch if c.usage is not None), usage)
        else:
            usage = (await engine.complete(routed)).usage
    except GatewayError as exc:
        error = type(exc).__name__
    cost = None
    if error is None and usage is not None and trace.target is not None:
        cost = engine.prices.cost(trace.target, usage)
    samples.append(
        Sample(
            route=name,
            latency=trio.current_time() - start,
            ttft=ttft,
            ok=error is None,
            attempts=trace.attempts,
            hedges=trace.hedges,
            retries=trace.retries,
            resumes=len(trace.resumes),
            cost=cost,
            error=error,
        )
    )
