"""Rate limits of providers and targets, as routing sees them.

``limits = { rpm, tpm }`` on a provider is one window for all its models; ``model_limits``
gives a model its own. An attempt takes a request and its estimated tokens from each
window that applies; when one is full the target is skipped like an unavailable one
(another target serves, or the client gets a 429 whose Retry-After is the shortest
wait). After the answer, the estimate is corrected with the usage the upstream
reported. The providers' own rate-limit headers (OpenAI ``x-ratelimit-*``, Anthropic
``anthropic-ratelimit-*``) close a window before the provider answers 429.

An estimate counts a request's ``max_tokens`` in full, and a client may ask for any
number: until its usage is known a request holds at most a quarter of a window's tpm
(``HOLD_SHARE``), so one request asking for a million tokens cannot fill a provider's
window for everyone else while it runs, nor (a stream, whose usage the window never
learns) for the minute after.

``concurrency`` and ``adaptive`` bound the requests in flight as well (a `Gate` each,
see :mod:`._adaptive`): an attempt enters with :meth:`TargetLimits.admit` and leaves
with :meth:`TargetLimits.leave`, whatever its outcome.
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import TYPE_CHECKING

from adapters import GatewayError, RateLimitExceeded, provider_spec

from ..upstream._upstream import HTTPUpstream
from ._adaptive import Gate, GateState, Ticket
from .shared._windows import SharedTaken

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from rules import Config, ProviderConfig, ProviderLimits, Target

    from ..upstream._upstream import Upstream
    from ._window import RateLimiter
    from .shared._windows import SharedWindows

__all__ = ["HOLD_SHARE", "TargetLimited", "TargetLimits", "observe_headers"]

#: One request holds at most 1/HOLD_SHARE of a window's tpm until its usage is known.
HOLD_SHARE = 4
#: The ceiling of an adaptive bound without ``concurrency`` nor a connection pool.
DEFAULT_CEILING = 100


class TargetLimited(RateLimitExceeded):
    """The target's own window (ours, or the provider's as its headers told) is full."""

    code = "target_rate_limited"


class TargetLimits:
    """The windows of the providers and targets in force, over one RateLimiter."""

    def __init__(self, limiter: RateLimiter) -> None:
        self.limiter = limiter
        self._limited: frozenset[str] = frozenset()
        self._noted: set[str] = set()
        self._tpm: dict[str, int] = {}  # the tpm of each window that has one
        self._limits: dict[str, tuple[int | None, int | None]] = {}  # rpm, tpm by window
        #: The windows on the shared Redis (``server.shared_state``), if any.
        self.shared: SharedWindows | None = None
        self._gates: dict[str, Gate] = {}  # provider or target -> its bound in flight

    def configure(self, config: Config) -> None:
        """Apply the limits of a (re)loaded config.

        A limit that stays (changed or not) keeps its window and what the provider's
        headers said; a removed limit, or a removed provider, is forgotten whole, its
        header-learned block included, so nothing of it is enforced any more (later
        headers of a provider still in the config are honoured again from scratch).
        """
        limited: set[str] = set()
        tpm: dict[str, int] = {}
        self._limits = {}
        gates: dict[str, Gate] = {}
        for name, provider in config.providers.items():
            windows = {f"{name}:{m}": limits for m, limits in provider.model_limits.items()}
            if provider.limits is not None:
                windows[name] = provider.limits
            for key, limits in windows.items():
                if limits.concurrency is not None or limits.adaptive:
                    gates[key] = self._gate(key, limits, provider)
                self.limiter.configure(key, limits.rpm, limits.tpm)
                self._limits[key] = (limits.rpm, limits.tpm)
                limited.add(key)
                if limits.tpm is not None:
                    tpm[key] = limits.tpm
        self._tpm = tpm
        self._gates = gates
        gone = (self._limited - limited) | (self._noted - config.providers.keys())
        for key in gone:
            self.limiter.forget(key)
            self._noted.discard(key)
        self._limited = frozenset(limited)

    def take(self, target: Target, tokens: int) -> list[str]:
        """Take one request and ``tokens`` from each window of ``target``.

        Returns:
            The windows taken from (hand them to :meth:`settle` or :meth:`give_back`).

        Raises:
            TargetLimited: a window is full; nothing is taken.
        """
        taken: list[str] = []
        for key in (target.provider, str(target)):
            if key not in self._limited and key not in self._noted:
                continue  # the hot path of an unlimited target: two set lookups
            wait = self.limiter.acquire(key, self._held(key, tokens))
            if wait is not None:
                for done in taken:
                    self.limiter.release(done, self._held(done, tokens))
                raise TargetLimited(
                    f"{target} is at its rate limit ({key})", upstream=str(target), retry_after=wait
                )
            taken.append(key)
        return taken

    async def acquire(self, target: Target, tokens: int) -> list[str]:
        """:meth:`take`, on the shared windows while shared state is up (one round
        trip for all the target's windows); a provider's own headers are this daemon's.

        Raises:
            TargetLimited: a window is full; nothing is taken.
        """
        shared = self.shared
        if shared is None or not shared.link.ok:
            return self.take(target, tokens)
        windows = []
        for key in (target.provider, str(target)):
            if key in self._noted and (wait := self.limiter.blocked_for(key)) is not None:
                raise TargetLimited(
                    f"{target} is at its rate limit ({key})", upstream=str(target), retry_after=wait
                )
            if key in self._limited:
                rpm, tpm = self._limits[key]
                windows.append((key, rpm, tpm, self._held(key, tokens)))
        if not windows:
            return []
        taken, index, wait = await shared.take(windows)
        if taken is not None:
            return taken
        if index >= 0:
            full = windows[index][0]
            raise TargetLimited(
                f"{target} is at its rate limit ({full})", upstream=str(target), retry_after=wait
            )
        return self.take(target, tokens)  # Redis did not answer: this daemon's windows

    def _gate(self, key: str, limits: ProviderLimits, provider: ProviderConfig) -> Gate:
        """The gate of ``key``: the one in force (what it learned kept), else a new one."""
        pool = getattr(provider, "pool", None)
        ceiling = limits.concurrency or int(getattr(pool, "max_connections", DEFAULT_CEILING))
        gate = self._gates.get(key)
        if gate is None:
            return Gate(ceiling, limits.adaptive, self.limiter.clock)
        gate.reconfigure(ceiling, limits.adaptive)
        return gate

    def admit(self, target: Target) -> list[Ticket]:
        """Enter the bounds in flight of ``target`` and its provider (none: nothing).

        Raises:
            TargetLimited: a bound is full, or held by the upstream's Retry-After.
        """
        if not self._gates:
            return []
        tickets: list[Ticket] = []
        for key in (target.provider, str(target)):
            gate = self._gates.get(key)
            if gate is None:
                continue
            entered = gate.enter()
            if not isinstance(entered, Ticket):
                self.leave(tickets, None)
                raise TargetLimited(
                    f"{target} is at its limit of requests at once ({key})",
                    upstream=str(target),
                    retry_after=entered,
                )
            tickets.append(entered)
        return tickets

    def leave(
        self, tickets: Sequence[Ticket], error: GatewayError | None, ok: bool = False
    ) -> None:
        """The attempt ended: ``ok``, or with ``error`` (None: cancelled or never sent)."""
        limited = isinstance(error, RateLimitExceeded) and not isinstance(error, TargetLimited)
        outcome = "ok" if ok else "rate_limited" if limited else "other"
        retry_after = error.retry_after if error is not None else None
        for ticket in tickets:
            ticket.gate.leave(ticket, outcome, retry_after)

    def gates(self) -> dict[str, GateState]:
        """Each bound in flight as it is now, for ``/admin/status`` and metrics."""
        return {key: gate.state() for key, gate in self._gates.items()}

    def settle(self, taken: Sequence[str], estimated: int, actual: int | None) -> None:
        """Correct the estimate with the usage the upstream reported."""
        if actual is None:
            return
        if isinstance(taken, SharedTaken):
            if self.shared is not None:
                self.shared.settle(taken, [actual] * len(taken))
            return
        for key in taken:
            self.limiter.reconcile(key, self._held(key, estimated), actual)

    def give_back(self, taken: Sequence[str], tokens: int) -> None:
        """An attempt that never reached the upstream returns what it took."""
        if isinstance(taken, SharedTaken):
            if self.shared is not None:
                self.shared.give_back(taken)
            return
        for key in taken:
            self.limiter.release(key, self._held(key, tokens))

    def _held(self, key: str, tokens: int) -> int:
        """What a request estimated at ``tokens`` holds in ``key``'s window."""
        tpm = self._tpm.get(key)
        return tokens if tpm is None else min(tokens, max(tpm // HOLD_SHARE, 1))

    def observe(self, provider: str, kind: str, headers: Sequence[tuple[str, str]]) -> None:
        """An upstream's answer: its rate-limit headers, if its kind sends any."""
        try:
            parse = provider_spec(kind).rate_limits
        except KeyError:
            return
        if parse is None:
            return
        seen = parse(headers, datetime.now(UTC))
        if seen is None:
            return
        if seen.remaining_requests == 0:  # a 429 foretold: the adaptive bounds step back
            for key, gate in self._gates.items():
                if key == provider or key.startswith(f"{provider}:"):
                    gate.exhausted(seen.reset_after)
        self._noted.add(provider)
        self.limiter.note_upstream(
            provider, seen.remaining_requests, seen.remaining_tokens, seen.reset_after
        )


def observe_headers(upstreams: Mapping[str, Upstream], limits: TargetLimits) -> None:
    """Let every HTTP upstream report its answers' headers to the windows."""
    for name, upstream in upstreams.items():
        if isinstance(upstream, HTTPUpstream) and upstream.on_headers is None:
            upstream.on_headers = partial(limits.observe, name, upstream.kind)
