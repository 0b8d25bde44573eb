"""Leaf attempts: one target, its circuit breaker, its retries, its live state.

A leaf asks the target's breaker first (an open circuit fails at once, so the node
moves on), then calls the upstream. A fast failure that another try can fix (5xx,
overloaded, 429, a connection reset before any answer) is retried on the same target
after a backoff with full jitter, or after the upstream's Retry-After when it gave one
and it fits; a slow failure (a timeout, a stream that broke after it started) is not:
retrying a silent target only multiplies the wait. Every outcome feeds the target's
breaker and latency statistics, which outlive the request (and a reload).

A stream's verdict comes later than its attempt: the attempt ends at the first content
chunk (its latency is measured there), but the target has served only when the stream
ends complete, and a break after that is its failure. Such an attempt hands back a
:class:`Verdict` for whoever reads the stream to settle.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs
import trio

from adapters import (
    AuthenticationFailed,
    GatewayError,
    NetworkError,
    NoHealthyTarget,
    ProviderInternalError,
    RateLimitExceeded,
    UnsupportedCapability,
)

from ..traffic._targetlimits import TargetLimited
from ..upstream._upstream import Upstream
from ._backoff import fits, retry_delay
from ._failures import Unsupported
from ._request import AttemptRecord
from ._stats import TargetState

if TYPE_CHECKING:
    import random
    from collections.abc import Mapping

    from rules import Backoff, Target

    from ..traffic._adaptive import Ticket
    from ..traffic._targetlimits import TargetLimits
    from ._request import RequestTrace
    from ._stats import TargetRegistry

__all__ = ["Call", "CircuitOpen", "LeafRunner", "Served", "Verdict", "attempt_result"]

T = TypeVar("T")

# Failures that count against a target's circuit; a bad request or a refusal does not.
_BREAKER_REASONS = frozenset({"timeout", "network", "server_error", "overloaded"})


def attempt_result(exc: GatewayError) -> str:
    """A failed attempt's result label: its fallback reason (timeout, network,
    server_error, overloaded, rate_limited, context_length), else ``auth_failed`` or
    ``rejected`` (the upstream refused the request itself)."""
    reason = exc.fallback_reason
    if reason is not None:
        return reason
    return "auth_failed" if isinstance(exc, AuthenticationFailed) else "rejected"


class AlreadyBroken(UnsupportedCapability):
    """The target broke the stream being resumed: the resume moves on to another."""

    code = "already_broken"


class CircuitOpen(NoHealthyTarget):
    """The target's circuit is open: it gets probes, not traffic, until it recovers."""

    code = "circuit_open"


@attrs.define(eq=False)
class Verdict:
    """The breaker's word on an attempt that is not over when it returns (a stream).

    Exactly one of :meth:`success`, :meth:`failure` or :meth:`release` counts; later
    calls do nothing. ``release`` (the stream was closed before it ended: a hedge lost,
    the client left) gives no verdict but frees a half-open probe slot.
    """

    runner: LeafRunner
    state: TargetState
    probe: bool
    done: bool = False

    @property
    def target(self) -> str:
        return self.state.name

    def success(self) -> None:
        """The stream ended complete."""
        if not self.done:
            self.done = True
            self.state.breaker.record_success(trio.current_time())
            self.state.successes += 1

    def failure(self, exc: GatewayError) -> None:
        """The stream broke with ``exc`` (counted if it is the target's fault)."""
        if not self.done:
            self.done = True
            self.runner.record_failure(self.state, exc, trio.current_time())

    def release(self) -> None:
        """No verdict after all."""
        if not self.done:
            self.done = True
            if self.probe:
                self.state.breaker.release_probe()


@attrs.frozen
class Served(Generic[T]):
    """An answer and the ``provider:model`` that gave it; ``verdict`` is still to give
    when the call's verdict comes later (a stream), and None for any other answer."""

    value: T
    target: str
    verdict: Verdict | None = None


@attrs.frozen
class Call(Generic[T]):
    """One kind of attempt (a whole answer, or a stream to its first chunk).

    ``discard`` releases an answer that arrived after another one had already won.
    """

    attempt: Callable[[Upstream, str], Awaitable[T]]
    discard: Callable[[T], Awaitable[None]]
    #: What the request needs of a target: images, tools.
    vision: bool = False
    tools: bool = False
    #: Tokens the request is estimated to use, for rate limits; and the real count of
    #: an answer, where it has one (a stream's comes after the attempt is over).
    tokens: int = 0
    used: Callable[[T], int | None] = lambda _: None
    #: Targets not to try (those that broke the stream being resumed).
    exclude: frozenset[str] = frozenset()
    #: A stream: the target has served only when it ends complete (see Verdict).
    verdict_later: bool = False
    #: The attempt for a candidate with nowhere else to go after it, when it differs
    #: (a whole answer: no first-token bound, the request's deadline only).
    final: Callable[[Upstream, str], Awaitable[T]] | None = None

    def elsewhere(self) -> Call[T]:
        """This call for a candidate that has others after it."""
        if self.final is None:
            return self
        # Not attrs.evolve: this runs for most requests, and evolve introspects.
        return Call(
            self.attempt,
            self.discard,
            vision=self.vision,
            tools=self.tools,
            tokens=self.tokens,
            used=self.used,
            exclude=self.exclude,
            verdict_later=self.verdict_later,
        )


def _check_capabilities(upstream: Upstream, model: str, call: Call[Any], name: str) -> None:
    """Raises UnsupportedCapability (which routing moves on from) if ``model`` lacks what
    the request needs."""
    if not (call.vision or call.tools):
        return
    caps = upstream.capabilities(model)
    missing = [
        what
        for what, needed, has in (
            ("images", call.vision, caps.vision),
            ("tools", call.tools, caps.tools),
        )
        if needed and not has
    ]
    if missing:
        raise UnsupportedCapability(f"{name} cannot take {' or '.join(missing)}", upstream=name)


class LeafRunner:
    """Runs attempts on leaf targets."""

    def __init__(
        self,
        upstreams: Mapping[str, Upstream],
        registry: TargetRegistry,
        backoff: Backoff,
        rng: random.Random,
        limits: TargetLimits | None = None,
    ) -> None:
        self.upstreams = upstreams
        self.registry = registry
        self.backoff = backoff
        self.rng = rng
        self.limits = limits

    async def run(
        self, target: Target, call: Call[T], trace: RequestTrace, deadline: float, retries: int
    ) -> Served[T]:
        """Attempt ``target`` (with up to ``retries`` retries of fast failures).

        Raises:
            CircuitOpen: the target's circuit is open.
            GatewayError: the last attempt's failure.
        """
        name = str(target)
        if name in call.exclude:
            raise AlreadyBroken(f"{name} broke this stream already", upstream=name)
        upstream = self.upstreams[target.provider]
        _check_capabilities(upstream, target.model, call, name)
        state = self.registry.get(name)
        tries = 0
        while True:
            now = trio.current_time()
            # Raises TargetLimited (routing moves on at once) when a window or bound is full.
            taken, tickets = await self._take(target, call.tokens)
            # In half-open, allow() hands out the one probe slot; only its holder frees it.
            probe = state.breaker.state(now) == "half_open"
            if not state.breaker.allow(now):
                if self.limits is not None:
                    self.limits.give_back(taken, call.tokens)
                    self.limits.leave(tickets, None)
                raise CircuitOpen(f"{name}: circuit open", upstream=name)
            trace.attempts += 1
            record = AttemptRecord(name, target.model, upstream, now, retry=tries > 0)
            trace.log.append(record)
            state.in_flight += 1
            try:
                attempt = call.attempt if call.final is None else call.final
                value = await attempt(upstream, target.model)
            except GatewayError as exc:
                exc.upstream = exc.upstream or name
                if tickets:
                    self.limits.leave(tickets, exc)  # type: ignore[union-attr]
                    tickets = []
                trace.errors.append(exc)
                record.result = attempt_result(exc)
                record.error = type(exc).__name__
                if isinstance(exc, Unsupported):
                    # Refused before anything was sent (a parameter the target cannot
                    # take): no word on the target's health, nothing of its limits used.
                    if probe:
                        state.breaker.release_probe()
                    if taken:
                        self.limits.give_back(taken, call.tokens)  # type: ignore[union-attr]
                else:
                    self.record_failure(state, exc, now)
                delay = self._retry_in(exc, state, tries, retries, deadline)
                if delay is None:
                    raise
            except BaseException as exc:  # cancelled (a hedge lost, the client left): no verdict
                record.result = "cancelled"
                record.error = type(exc).__name__
                if tickets:
                    self.limits.leave(tickets, None)  # type: ignore[union-attr]
                if probe:
                    state.breaker.release_probe()
                raise
            else:
                if self.limits is not None:
                    self.limits.settle(taken, call.tokens, call.used(value))
                    self.limits.leave(tickets, None, ok=True)
                state.stats.observe(trio.current_time() - now)
                if call.verdict_later:
                    return Served(value, name, Verdict(self, state, probe))
                state.breaker.record_success(trio.current_time())
                state.successes += 1
                return Served(value, name)
            finally:
                state.in_flight -= 1
                record.ended = trio.current_time()
            tries += 1
            trace.retries += 1
            await trio.sleep(delay)

    async def _take(self, target: Target, tokens: int) -> tuple[list[str], list[Ticket]]:
        """What an attempt holds of ``target``'s rate windows (shared ones on Redis while
        it is up) and bounds in flight."""
        if self.limits is None:
            return [], []
        taken = await self.limits.acquire(target, tokens)
        try:
            return taken, self.limits.admit(target)
        except TargetLimited:
            self.limits.give_back(taken, tokens)
            raise

    def record_failure(self, state: TargetState, exc: GatewayError, started: float) -> None:
        """Count ``exc`` against the target (if it is the target's fault)."""
        now = trio.current_time()
        if exc.fallback_reason in _BREAKER_REASONS:
            state.breaker.record_failure(now, exc.incident)
            state.stats.observe_failure(now - started)
            state.failures += 1
            state.last_error = f"{type(exc).__name__}: {exc.message}"
        else:  # it answered (a 4xx): alive, whatever it thought of the request
            state.breaker.record_success(now)

    def _retry_in(
        self, exc: GatewayError, state: TargetState, tries: int, retries: int, deadline: float
    ) -> float | None:
        """Seconds to wait before retrying the same target, or None not to."""
        if tries >= retries or not isinstance(
            exc, ProviderInternalError | RateLimitExceeded | NetworkError
        ):
            return None
        if state.breaker.state(trio.current_time()) == "open":
            return None  # this failure opened the circuit: move on, with the real error
        b = self.backoff
        delay = retry_delay(exc.retry_after, tries, b.initial, b.max, b.multiplier, self.rng)
        if delay is None or not fits(deadline, trio.current_time(), delay):
            return None
        return delay
