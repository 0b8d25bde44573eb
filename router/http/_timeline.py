"""The last 15 minutes, one sample a second: what the status page draws.

Each finished request is added to the current interval (:meth:`Timeline.record`); every
``step`` seconds :meth:`Timeline.tick` closes the interval into a :class:`Sample` (per
target: attempts, failures, p50/p99 latency, time to first token, and, read at that
moment, requests in flight and the circuit state; for the daemon: requests, hedges,
retries, resumes, cache hits and misses) and keeps it in a ring of ``span`` seconds.
A page opened now gets the whole ring at once, then each new sample as it closes.

Samples are encoded to JSON once, when they close, so any number of open pages cost
one encoding. Quantiles of an interval come from at most :data:`KEEP` latencies (a
uniform reservoir), so a burst costs bounded memory; the interval's counts stay exact.
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import attrs
import orjson
import trio

if TYPE_CHECKING:
    from rules import RouteTable

    from ..routing._request import RequestTrace
    from ._observer import Observer, RequestFacts

__all__ = ["CIRCUIT_CODES", "KEEP", "Gauges", "Sample", "Timeline", "TimelineObserver", "quantile"]

#: Latencies kept per target and interval for its quantiles.
KEEP = 512
#: Targets counted per interval at most: a client naming a new ``provider:model`` per
#: request must not grow an interval without bound (only configured ones are shown).
MAX_TARGETS = 256
#: The circuit state as one digit in a sample: closed, half open, open.
CIRCUIT_CODES = {"closed": 0, "half_open": 1, "open": 2}

#: Per target, what the app reads at the moment a sample closes: (in flight, circuit).
Gauges = Mapping[str, tuple[int, str]]


def quantile(values: list[float], q: float) -> float | None:
    """The nearest-rank ``q`` quantile of ``values`` (None when there are none)."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


@attrs.define
class _Interval:
    """One target's requests in the interval under way."""

    attempts: int = 0
    failures: int = 0
    latencies: list[float] = attrs.field(factory=list)
    ttfts: list[float] = attrs.field(factory=list)
    seen: int = 0  # latencies offered, for the reservoir
    seen_ttft: int = 0


@attrs.frozen
class Sample:
    """One closed interval.

    Attributes:
        t: Wall-clock time at its end, seconds since the epoch.
        targets: Per target: ``[attempts, failures, p50 ms, p99 ms, TTFT p50 ms,
            in flight, circuit]`` (quantiles None without data; circuit 0 closed,
            1 half open, 2 open).
        totals: ``[requests, hedges, retries, resumes, cache hits, cache misses]``.
        json: The sample as the page reads it: ``{"t", "x": targets, "g": totals}``.
    """

    t: float
    targets: dict[str, list[float | int | None]]
    totals: list[int]
    json: bytes = attrs.field(init=False)

    @json.default
    def _encode(self) -> bytes:
        # orjson's bytes keep the buffer they were written into: 4 KiB for a sample of
        # under 100 bytes (orjson 3.13). The ring keeps 900 samples, 3.7 MB of such
        # buffers, filled over a daemon's first 15 minutes; an exact copy is what stays.
        encoded = orjson.dumps({"t": round(self.t, 3), "x": self.targets, "g": self.totals})
        return bytes(memoryview(encoded))


class Timeline:
    """The ring of samples, the interval under way, and a wake-up for readers.

    Args:
        step: Seconds per sample.
        span: Seconds of samples kept.
        wall: The wall clock, for the samples' times (the page's axis).
        seed: Seeds the reservoir's choices (tests).
    """

    def __init__(
        self,
        step: float = 1.0,
        span: float = 900.0,
        wall: Callable[[], float] = time.time,
        seed: int | None = None,
    ) -> None:
        self.step = step
        self.span = span
        self.samples: deque[Sample] = deque(maxlen=max(1, round(span / step)))
        #: Samples closed so far, ever: a reader asks for those past the count it saw.
        self.closed_count = 0
        self.closed = False
        self._wall = wall
        self._random = random.Random(seed)
        self._targets: dict[str, _Interval] = {}
        self._totals = [0] * 6
        self._ticked = trio.Event()

    # -- the request path ---------------------------------------------------------------

    def record(self, trace: RequestTrace) -> None:
        """Count a finished request (called as it ends; never awaits)."""
        totals = self._totals
        totals[0] += 1
        totals[1] += trace.hedges
        totals[2] += sum(1 for attempt in trace.log if attempt.retry)
        totals[3] += len(trace.resumes)
        if trace.cache == "hit":
            totals[4] += 1
        elif trace.cache == "miss":
            totals[5] += 1
        for attempt in trace.log:
            interval = self._interval(attempt.target)
            if interval is None:
                continue
            interval.attempts += 1
            if attempt.result == "ok":
                interval.seen += 1
                self._keep(interval.latencies, interval.seen, attempt.ended - attempt.started)
            elif attempt.result != "cancelled":  # a hedge's loser or a client gone
                interval.failures += 1
        if trace.ttft is not None and trace.target is not None:
            interval = self._interval(trace.target)
            if interval is not None:
                interval.seen_ttft += 1
                self._keep(interval.ttfts, interval.seen_ttft, trace.ttft)

    def _interval(self, target: str) -> _Interval | None:
        interval = self._targets.get(target)
        if interval is None and len(self._targets) < MAX_TARGETS:
            interval = self._targets[target] = _Interval()
        return interval

    def _keep(self, kept: list[float], seen: int, value: float) -> None:
        """Reservoir sampling (Algorithm R): each value offered stays with chance
        ``KEEP / seen``, so the kept ones are a uniform sample of the interval."""
        if len(kept) < KEEP:
            kept.append(value)
            return
        slot = self._random.randrange(seen)
        if slot < KEEP:
            kept[slot] = value

    # -- closing samples ----------------------------------------------------------------

    def tick(self, gauges: Gauges) -> Sample:
        """Close the interval under way into a sample of the targets in ``gauges``
        (the rules in force), keep it, and wake the readers."""
        targets: dict[str, list[float | int | None]] = {}
        for name, (in_flight, circuit) in gauges.items():
            interval = self._targets.get(name) or _Interval()
            targets[name] = [
                interval.attempts,
                interval.failures,
                _ms(quantile(interval.latencies, 0.5)),
                _ms(quantile(interval.latencies, 0.99)),
                _ms(quantile(interval.ttfts, 0.5)),
                in_flight,
                CIRCUIT_CODES.get(circuit, 0),
            ]
        sample = Sample(self._wall(), targets, self._totals)
        self._targets = {}
        self._totals = [0] * 6
        self.samples.append(sample)
        self.closed_count += 1
        self._wake()
        return sample

    def since(self, count: int) -> list[Sample]:
        """The samples closed after the first ``count`` (those still in the ring)."""
        kept = len(self.samples)
        missed = min(self.closed_count - count, kept)
        return [self.samples[i] for i in range(kept - missed, kept)]  # the ring's end

    async def wait_past(self, count: int) -> bool:
        """Wait until more than ``count`` samples have closed; False once closed."""
        while self.closed_count <= count and not self.closed:
            await self._ticked.wait()
        return not self.closed

    def close(self) -> None:
        """The daemon stops: readers end their streams (they hold no drain open)."""
        self.closed = True
        self._wake()

    def _wake(self) -> None:
        self._ticked.set()
        self._ticked = trio.Event()

    async def run(
        self,
        gauges: Callable[[], Gauges],
        *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Close a sample every ``step`` seconds (on trio's clock) until cancelled.

        The ticks keep to a fixed grid: a late wake-up does not push the next one later.
        A loop stalled for more than a step starts a new grid from where it woke, rather
        than closing a burst of empty samples to catch up.
        """
        task_status.started()
        deadline = trio.current_time()
        while True:
            deadline += self.step
            await trio.sleep_until(deadline)
            now = trio.current_time()
            if now - deadline >= self.step:
                deadline = now
            self.tick(gauges())


def _ms(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds * 1000, 1)


class TimelineObserver:
    """Tells the timeline of each request's end, and everything to another observer."""

    def __init__(self, inner: Observer, timeline: Timeline) -> None:
        self.inner = inner
        self.timeline = timeline

    def started(self, trace: RequestTrace, table: RouteTable) -> None:
        self.inner.started(trace, table)

    def cache_lookup(self, trace: RequestTrace) -> None:
        self.inner.cache_lookup(trace)

    def ended(self, trace: RequestTrace, facts: RequestFacts) -> None:
        self.timeline.record(trace)
        self.inner.ended(trace, facts)

    def metrics_page(self) -> tuple[bytes, str] | None:
        return self.inner.metrics_page()
