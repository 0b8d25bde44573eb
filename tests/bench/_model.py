"""The benchmark's data: upstream kinds, scenarios, measured points, router starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Result = dict[str, Any]
STREAM_EVENTS = 20  # events the fake upstream sends per stream (before [DONE])


@dataclass(frozen=True)
class Upstream:
    """One fake upstream process: how long it waits before answering and between events."""

    name: str
    delay_ms: float
    chunk_delay_ms: float

    @property
    def label(self) -> str:
        """Human-readable description."""
        if not self.delay_ms and not self.chunk_delay_ms:
            return "fast upstream (0 ms)"
        text = f"slow upstream ({self.delay_ms:g} ms"
        if self.chunk_delay_ms:
            text += f"; streams +{self.chunk_delay_ms:g} ms between events"
        return text + ")"


@dataclass(frozen=True)
class Scenario:
    """A request kind against one upstream, measured at several concurrencies."""

    upstream: Upstream
    stream: bool
    concurrencies: tuple[int, ...]

    @property
    def title(self) -> str:
        """Section title."""
        kind = "Streams (20 chunks)" if self.stream else "Non-stream"
        return f"{kind}, {self.upstream.label}"

    def floor_s(self) -> float:
        """The upstream's own minimum time per request, in seconds."""
        events = self.upstream.chunk_delay_ms * STREAM_EVENTS if self.stream else 0.0
        return (self.upstream.delay_ms + events) / 1000.0

    def cap(self, concurrency: int) -> float | None:
        """Little's-law ceiling on req/s at ``concurrency``, if the upstream waits at all."""
        floor = self.floor_s()
        return concurrency / floor if floor > 0 else None


@dataclass
class Point:
    """One concurrency level of one scenario: direct and through-the-router results."""

    scenario: Scenario
    concurrency: int
    direct: Result | None
    router: Result | None

    @property
    def added_p50_ms(self) -> float | None:
        """Router p50 minus direct p50 at the same concurrency."""
        if not self.direct or not self.router:
            return None
        if self.direct["p50_ms"] is None or self.router["p50_ms"] is None:
            return None
        return float(self.router["p50_ms"] - self.direct["p50_ms"])


@dataclass
class RouterStart:
    """One router process: spawn-to-healthy time and memory."""

    upstream: str
    start_s: float
    idle_rss_mb: float | None
    hwm_mb: float | None = None


@dataclass
class Run:
    """Everything one invocation measured."""

    meta: dict[str, str]
    duration_s: float
    warmup_s: float
    direct_only: bool
    quick: bool
    points: list[Point] = field(default_factory=list)
    starts: list[RouterStart] = field(default_factory=list)
    #: req/s of the fixed-answer hypercorn app on the router's core, by concurrency.
    ceiling: dict[int, float] = field(default_factory=dict)

    def find(self, upstream: str, stream: bool, concurrency: int) -> Point | None:
        """Return the point for this upstream, kind and concurrency, if measured."""
        for p in self.points:
            sc = p.scenario
            if (sc.upstream.name, sc.stream, p.concurrency) == (upstream, stream, concurrency):
                return p
        return None
