"""Live per-target state: latency estimates, in-flight counts, breakers.

It is kept in a :class:`TargetRegistry` keyed by target name ("provider/model"), which
the daemon holds for its whole life: a config reload compiles new routes but finds the
same latency history and breaker states, so a reload neither forgets a broken target
nor makes a slow one look new.

Nothing here reads a clock; callers pass ``now`` and measured durations in.
"""

from __future__ import annotations

import bisect
import math
from collections import OrderedDict, deque
from functools import partial
from itertools import islice
from typing import TYPE_CHECKING

import attrs

from ._breaker import CircuitBreaker

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = ["DYNAMIC_TARGETS", "LatencyStats", "TargetRegistry", "TargetState"]

#: Dynamic targets (a ``provider:model`` no route names, asked for by a client) whose
#: live state is kept per provider; past it the least recently used idle one is dropped.
DYNAMIC_TARGETS = 1000
#: Dynamic targets `/admin/status` shows one by one, per provider (the most recent).
SHOWN_DYNAMIC = 20


class LatencyStats:
    """A decaying latency estimate (EWMA) and a window of recent latencies.

    Successes update the estimate with their latency (for streams, the time to first
    token) and enter the window that :meth:`quantile` reads. Failures only update the
    estimate, with a penalised sample::

        sample = max(seconds, clamp(failure_penalty * estimate, failure_floor, failure_ceiling))

    so a target that fails fast does not look fast: each failure in a row multiplies
    the estimate by about ``1 - alpha + alpha * failure_penalty`` (1.3 by default) and
    never leaves it below ``failure_floor``. The ceiling keeps a long outage from
    growing the estimate so far that a recovered target needs hundreds of successes to
    look usable again. Failures stay out of the window: a hedge delay must come from
    the answers that arrived, not from errors.

    Args:
        alpha: Weight of a new sample in the EWMA, in (0, 1].
        window: Successful latencies kept for quantiles.
        failure_penalty: Multiplier of the current estimate for a failure's sample.
        failure_floor: Smallest sample a failure contributes, in seconds.
        failure_ceiling: Largest penalty a failure contributes, in seconds.
        min_samples: Successes needed before :meth:`quantile` answers.

    Raises:
        ValueError: ``alpha`` outside (0, 1], or a window or min_samples below 1.
    """

    def __init__(
        self,
        alpha: float = 0.3,
        window: int = 200,
        failure_penalty: float = 2.0,
        failure_floor: float = 1.0,
        failure_ceiling: float = 60.0,
        min_samples: int = 20,
    ) -> None:
        if not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha:g}")
        if window < 1 or min_samples < 1:
            raise ValueError(
                f"window and min_samples must be at least 1, got {window}, {min_samples}"
            )
        self.alpha = alpha
        self.failure_penalty = failure_penalty
        self.failure_floor = failure_floor
        self.failure_ceiling = failure_ceiling
        self.min_samples = min_samples
        self._estimate: float | None = None
        self._window: deque[float] = deque(maxlen=window)
        # The window's values in order, kept as they come and go: a hedge decision reads
        # a quantile on every hedged request, and sorting the window each time costs more.
        self._ordered: list[float] = []
        self.count = 0  # successful samples observed, ever

    def observe(self, seconds: float) -> None:
        """A success that took ``seconds`` (streams: time to the first token)."""
        self._update(seconds)
        window, ordered = self._window, self._ordered
        if len(window) == window.maxlen:
            del ordered[bisect.bisect_left(ordered, window[0])]  # about to leave the window
        window.append(seconds)
        bisect.insort(ordered, seconds)
        self.count += 1

    def observe_failure(self, seconds: float) -> None:
        """A failure after ``seconds``: the estimate takes the penalised sample."""
        penalty = self.failure_penalty * (self._estimate or 0.0)
        penalty = min(max(penalty, self.failure_floor), self.failure_ceiling)
        self._update(max(seconds, penalty))

    def estimate(self) -> float | None:
        """The EWMA in seconds; None before any sample."""
        return self._estimate

    def quantile(self, q: float) -> float | None:
        """The nearest-rank ``q`` quantile of the recent successes; None until ``min_samples``.

        Raises:
            ValueError: ``q`` outside [0, 1].
        """
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {q:g}")
        ordered = self._ordered
        if len(ordered) < self.min_samples:
            return None
        rank = max(math.ceil(q * len(ordered)), 1)
        return ordered[rank - 1]

    def _update(self, sample: float) -> None:
        if self._estimate is None:
            self._estimate = sample  # the first sample is the best guess, not alpha * it
        else:
            self._estimate += self.alpha * (sample - self._estimate)


@attrs.define(eq=False)
class TargetState:
    """Everything the engine tracks for one target, shared by every route that names it."""

    name: str
    breaker: CircuitBreaker
    stats: LatencyStats
    in_flight: int = 0
    successes: int = 0
    failures: int = 0
    last_error: str | None = None
    resumed: int = 0  # broken streams (of other targets) this one finished
    #: Its provider's dynamic targets when it is one of them (see TargetRegistry).
    lru: OrderedDict[str, None] | None = attrs.field(default=None, repr=False)

    def record_success(self, now: float, seconds: float) -> None:
        """An attempt answered after ``seconds``: feeds the latency stats and the breaker."""
        self.successes += 1
        self.stats.observe(seconds)
        self.breaker.record_success(now)

    def record_failure(self, now: float, seconds: float, error: str) -> None:
        """An attempt failed after ``seconds`` with ``error`` (a short description)."""
        self.failures += 1
        self.last_error = error
        self.stats.observe_failure(seconds)
        self.breaker.record_failure(now)

    def snapshot(self, now: float) -> dict[str, object]:
        """The target for ``/admin/status``: plain JSON-ready values."""
        return {
            **self.breaker.snapshot(now),
            "in_flight": self.in_flight,
            "successes": self.successes,
            "failures": self.failures,
            "resumed": self.resumed,
            "last_error": self.last_error,
            "latency_estimate": self.stats.estimate(),
            "latency_p90": self.stats.quantile(0.9),
            "latency_samples": self.stats.count,
        }


class TargetRegistry:
    """Target name -> :class:`TargetState`, created on first use; outlives config reloads.

    The targets of the rules in force (and route names) are named by :meth:`retain` and
    kept for as long as they are configured. Any other ``provider:model`` is dynamic: a
    client may invent any number of them, so at most ``dynamic_limit`` per provider are
    kept; a new one past that drops the provider's least recently used dynamic target
    with no attempt in flight (its latency history and breaker start afresh if it is
    asked for again). A provider with a ``models`` list never gets past it.

    Args:
        circuit_factory: Makes the breaker of a target seen for the first time;
            :meth:`configure_breakers` replaces it (and re-tunes the existing breakers).
        stats_factory: Makes the latency stats of a new target.
        dynamic_limit: Dynamic targets kept per provider.
    """

    def __init__(
        self,
        circuit_factory: Callable[[], CircuitBreaker],
        stats_factory: Callable[[], LatencyStats] = LatencyStats,
        dynamic_limit: int = DYNAMIC_TARGETS,
    ) -> None:
        self.circuit_factory = circuit_factory
        self.stats_factory = stats_factory
        self.dynamic_limit = dynamic_limit
        self._targets: dict[str, TargetState] = {}
        self._configured: frozenset[str] = frozenset()
        # provider -> its dynamic targets, least recently used first
        self._dynamic: dict[str, OrderedDict[str, None]] = {}
        self._dropped: dict[str, int] = {}  # provider -> dynamic targets dropped

    def get(self, target: str) -> TargetState:
        """The live state of ``target``, created (closed, no samples) if new."""
        state = self._targets.get(target)
        if state is None:
            state = TargetState(target, self.circuit_factory(), self.stats_factory())
            self._targets[target] = state
            provider, colon, _ = target.partition(":")
            if colon and target not in self._configured:
                state.lru = self._admit(provider, target)
        elif state.lru is not None:
            state.lru.move_to_end(target)
        return state

    def _admit(self, provider: str, target: str) -> OrderedDict[str, None]:
        lru = self._dynamic.setdefault(provider, OrderedDict())
        excess = len(lru) + 1 - self.dynamic_limit
        if excess > 0:
            # Ones in flight stay: at most the requests in flight go past the limit.
            idle = (name for name in lru if self._targets[name].in_flight == 0)
            for name in list(islice(idle, excess)):
                del lru[name], self._targets[name]
                self._dropped[provider] = self._dropped.get(provider, 0) + 1
        lru[target] = None
        return lru

    def configure_breakers(self, failures: int, successes: int, open_for: float) -> None:
        """New circuit thresholds (``[defaults.circuit]`` of a reload) for every target,
        existing ones included; their live state (open since, failures in a row) stays.

        Raises:
            ValueError: as :class:`CircuitBreaker`.
        """
        for state in self._targets.values():
            state.breaker.configure(failures, successes, open_for)
        self.circuit_factory = partial(CircuitBreaker, failures, successes, open_for)

    def retain(self, names: Iterable[str]) -> None:
        """The targets and routes configured now (at start and on each reload): keep
        their state for good, and drop every other (dynamic ones included).

        An attempt still running on a dropped target keeps its own reference, so its
        verdict lands on the old object harmlessly.
        """
        keep = self._configured = frozenset(names)
        for name in [name for name in self._targets if name not in keep]:
            del self._targets[name]
        for state in self._targets.values():
            state.lru = None
        self._dynamic.clear()

    def snapshot(self, now: float) -> dict[str, dict[str, object]]:
        """Every target's :meth:`TargetState.snapshot`, by name, sorted; dynamic ones
        only in :meth:`dynamic_snapshot`."""
        return {
            name: state.snapshot(now)
            for name, state in sorted(self._targets.items())
            if state.lru is None
        }

    def dynamic_snapshot(self, now: float) -> dict[str, dict[str, object]]:
        """Per provider: how many dynamic targets are kept, the limit, how many were
        dropped, and the most recently used ones (a few) by name."""
        report: dict[str, dict[str, object]] = {}
        for provider in sorted(self._dynamic.keys() | self._dropped.keys()):
            lru = self._dynamic.get(provider, OrderedDict())
            recent = islice(reversed(lru), SHOWN_DYNAMIC)
            report[provider] = {
                "kept": len(lru),
                "limit": self.dynamic_limit,
                "dropped": self._dropped.get(provider, 0),
                "recent": {name: self._targets[name].snapshot(now) for name in recent},
            }
        return report

    def __len__(self) -> int:
        return len(self._targets)

    def __contains__(self, target: object) -> bool:
        return target in self._targets
