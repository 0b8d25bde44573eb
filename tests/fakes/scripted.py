"""A scripted in-process upstream for engine tests on trio's MockClock.

:class:`Scripted` implements the engine's ``Upstream`` protocol. What each model does
on each attempt is a :class:`Step` (wait, then answer, fail, or stream chunk by chunk),
and every attempt is recorded with its start time, as is every attempt that was
cancelled and every stream context that was closed, so a test asserts exact virtual
times for hedge starts, backoff, Retry-After and breaker probes.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Callable, Mapping, Sequence
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import trio

from adapters import (
    Capabilities,
    ChatChunk,
    ChunkChoice,
    Delta,
    EmbeddingInput,
    EmbeddingRequest,
    EmbeddingResponse,
    GatewayError,
    GatewayRequest,
    GatewayResponse,
    InvalidRequest,
    Message,
    ProviderInternalError,
    Usage,
    provider_kinds,
)
from router.routing._engine import Engine
from router.routing._request import RequestOptions
from rules import compile_routes, parse_config

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from rules import Defaults, Node

__all__ = [
    "REQ",
    "SEED",
    "Plan",
    "Scripted",
    "Step",
    "boom",
    "engine_for",
    "spelled",
    "options",
    "rules_of",
    "texts",
]

REQ = GatewayRequest(model="r", messages=(Message(role="user", content="hi"),))


@attrs.frozen
class Step:
    """One attempt on a model.

    Attributes:
        latency: Seconds until the answer or ``error`` (streams: until the context
            opens and the role chunk comes).
        error: Raised after ``latency`` (streams: on entering the context).
        gaps: Streams: the wait before each content chunk.
        broken: Streams: raised after the content chunks (a break mid-stream).
        words: Streams: the content of each chunk (default ``{upstream}{i}``); a request
            whose last message is an assistant prefill gets the words after it.
    """

    latency: float = 0.0
    error: GatewayError | None = None
    gaps: tuple[float, ...] = (0.0,)
    broken: GatewayError | None = None
    words: tuple[str, ...] = ()


#: What a model does: always the same step, steps in order (the last repeats), or a
#: function drawing each attempt's step.
Plan = Step | Sequence[Step] | Callable[[], Step]


def _raise(error: GatewayError) -> GatewayError:
    return copy.copy(error)  # the engine writes `upstream` on what it catches


@attrs.define(eq=False)
class Scripted:
    """An upstream whose models follow their plans; it records what happened when.

    Attributes:
        started: ``(model, time)`` at each attempt's start.
        cancelled: ``(model, time)`` of each attempt cancelled before it ended.
        closed: ``(model, time)`` of each stream context closed (for any reason).
        probed: The time of each health probe.
    """

    name: str
    plans: dict[str, Plan]
    kind: str = "scripted"
    started: list[tuple[str, float]] = attrs.field(factory=list)
    cancelled: list[tuple[str, float]] = attrs.field(factory=list)
    closed: list[tuple[str, float]] = attrs.field(factory=list)
    probe_error: GatewayError | None = None  # what a health probe raises, if anything
    probed: list[float] = attrs.field(factory=list)
    #: Models that cannot take images.
    blind: frozenset[str] = frozenset()
    #: Every request streamed, as received (to check prefills).
    requests: list[GatewayRequest] = attrs.field(factory=list)
    #: Every embeddings call, as received (a combined call is one).
    embedded: list[EmbeddingRequest] = attrs.field(factory=list)
    #: Whether its models say they continue a prefill, and whether they refuse one
    #: (with a 400, as some models do) though they say so.
    prefill: bool = True
    refuses_prefill: bool = False
    _calls: dict[str, int] = attrs.field(factory=dict)

    def capabilities(self, model: str) -> Capabilities:
        return Capabilities(vision=model not in self.blind, prefill=self.prefill)

    def _step(self, model: str) -> Step:
        self.started.append((model, trio.current_time()))
        plan = self.plans[model]
        n = self._calls[model] = self._calls.get(model, 0) + 1
        if isinstance(plan, Step):
            return plan
        if callable(plan):
            return plan()
        return plan[min(n, len(plan)) - 1]

    async def complete(self, req: GatewayRequest, model: str) -> GatewayResponse:
        step = self._step(model)
        ended = False
        try:
            await trio.sleep(step.latency)
            ended = True
        finally:
            if not ended:
                self.cancelled.append((model, trio.current_time()))
        if step.error is not None:
            raise _raise(step.error)
        return GatewayResponse(id=self.name, model=model, created=0, choices=())

    async def embed(self, req: EmbeddingRequest, model: str) -> EmbeddingResponse:
        """Each input's vector spells it (:func:`spelled`); the usage is the inputs'
        characters (or tokens), reported as a total."""
        step = self._step(model)
        self.embedded.append(req)
        ended = False
        try:
            await trio.sleep(step.latency)
            ended = True
        finally:
            if not ended:
                self.cancelled.append((model, trio.current_time()))
        if step.error is not None:
            raise _raise(step.error)
        return EmbeddingResponse(
            model=model,
            vectors=tuple(spelled(i) for i in req.inputs),
            usage=Usage(sum(len(i) for i in req.inputs)),
        )

    @asynccontextmanager
    async def stream(
        self, req: GatewayRequest, model: str
    ) -> AsyncIterator[AsyncIterator[list[ChatChunk]]]:
        step = self._step(model)
        self.requests.append(req)
        words = list(step.words or (f"{self.name}{i}" for i in range(len(step.gaps))))
        last = req.messages[-1]
        if last.role == "assistant" and self.refuses_prefill:
            raise InvalidRequest("this model does not take a final assistant message")
        if last.role == "assistant":  # a prefill: go on after it
            prefix = last.text()
            while words and prefix.startswith(words[0]):
                prefix = prefix.removeprefix(words.pop(0))
        try:
            await trio.sleep(step.latency)
            if step.error is not None:
                raise _raise(step.error)

            async def chunks() -> AsyncGenerator[list[ChatChunk]]:
                yield [_chunk(self.name, model, Delta(role="assistant"))]
                for word, gap in zip(words, step.gaps, strict=False):
                    await trio.sleep(gap)
                    yield [_chunk(self.name, model, Delta(content=word))]
                if step.broken is not None:
                    raise _raise(step.broken)

            async with aclosing(chunks()) as iterator:
                yield iterator
        finally:
            self.closed.append((model, trio.current_time()))

    async def probe(self) -> None:
        self.probed.append(trio.current_time())
        await trio.lowlevel.checkpoint()
        if self.probe_error is not None:
            raise _raise(self.probe_error)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()

    async def aclose(self) -> None:
        await trio.lowlevel.checkpoint()


def spelled(item: EmbeddingInput) -> tuple[float, ...]:
    """A scripted embedding: the input's characters (or tokens) as numbers, so a test
    can tell which input a vector belongs to."""
    return tuple(float(ord(c)) for c in item) if isinstance(item, str) else tuple(map(float, item))


def _chunk(name: str, model: str, delta: Delta) -> ChatChunk:
    return ChatChunk(name, model, 0, (ChunkChoice(0, delta),))


def texts(batch: Sequence[ChatChunk] | None) -> list[str | None]:
    """The content of each chunk in a batch."""
    return [c.choices[0].delta.content for c in batch or ()]


def rules_of(toml: str, providers: str = "abc") -> tuple[Mapping[str, Node], Defaults]:
    """The compiled routes and the ``[defaults]`` of a config with providers a, b, c.

    ``toml`` holds the routes, and may start with the ``[defaults]`` table.
    """
    header = "".join(f'[providers.{p}]\nkind = "simulated"\n' for p in providers)
    head, sep, rest = toml.partition("[routes.")
    config = parse_config(head + header + sep + rest, kinds=provider_kinds())
    return compile_routes(config).routes, config.defaults


SEED = 7


def engine_for(
    defaults_toml: str, a: Plan, b: Plan | None = None
) -> tuple[Scripted, Scripted, Engine, Mapping[str, Node]]:
    """Upstreams a and b (b answers in 0.5 s unless told), and an engine seeded with
    :data:`SEED`, over the routes ``r`` (fallback a:m, b:m) and ``solo`` (a:m alone)."""
    routes, defaults = rules_of(
        defaults_toml + '[routes.r]\nfallback = ["a:m", "b:m"]\n[routes.solo]\nfallback = ["a:m"]\n'
    )
    up_a, up_b = Scripted("a", {"m": a}), Scripted("b", {"m": b or Step(latency=0.5)})
    engine = Engine({"a": up_a, "b": up_b}, defaults, rng=random.Random(SEED))
    return up_a, up_b, engine, routes


def options(
    deadline: float = 1000.0,
    retries: int = 0,
    first_token_timeout: float = 15.0,
    headers: Mapping[str, str] | None = None,
    stream_deadline: float | None = None,
) -> RequestOptions:
    raw = [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    return RequestOptions(
        deadline, retries, first_token_timeout, raw, stream_deadline=stream_deadline
    )


def boom(status: int = 500) -> GatewayError:
    return ProviderInternalError(f"boom {status}", upstream_status=status)
