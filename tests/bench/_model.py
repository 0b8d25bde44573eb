"""The benchmark's data: upstream kinds, scenarios, measured points, router starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Result = dict[str, Any]
STREAM_EVENTS = 20  # events the fake upstream sends per stream (before [DONE])


@dataclass(frozen=True)
class Upstream:
    """One fake upstream process: how long it waits before answering and between events,
    and how the router reaches it: ``http``, ``https`` (HTTP/1.1 over TLS) or ``h2``
    (HTTP/2 over TLS)."""

    name: str
    delay_ms: float
    chunk_delay_ms: float
    proto: str = "http"

    @property
    def tls(self) -> bool:
        """Whether it serves TLS."""
        return self.proto != "http"

    @property
    def label(self) -> str:
        """Human-readable description."""
        over = {"http": "", "https": ", HTTPS", "h2": ", HTTP/2 over TLS"}[self.proto]
        if not self.delay_ms and not self.chunk_delay_ms:
            return f"fast upstream (0 ms{over})"
        text = f"slow upstream ({self.delay_ms:g} ms"
        if self.chunk_delay_ms:
            text += f"; streams +{self.chunk_delay_ms:g} ms between events"
        return text + over + ")"


FAST = Upstream("fast", 0.0, 0.0)
SLOW = Upstream("slow", 50.0, 5.0)
FAST_TLS = Upstream("fast-tls", 0.0, 0.0, "https")
FAST_H2 = Upstream("fast-h2", 0.0, 0.0, "h2")


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
    error: str | None = None  # why the router was not measured (it failed)

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
class Measured:
    """One router measurement of the later scenarios, or why there is none."""

    label: str  # what was loaded (e.g. "c=1000", "TLS upstream")
    concurrency: int
    result: Result | None
    error: str | None = None
    extra: Result = field(default_factory=dict)  # scenario-specific numbers


@dataclass
class Soak:
    """The soak: load, and the router's memory and descriptors every ``interval_s``."""

    concurrency: int
    interval_s: float
    warmup_s: float
    samples: list[tuple[float, float, int]]  # (seconds into the load, RSS MB, descriptors)
    result: Result | None
    error: str | None = None


@dataclass
class Run:
    """Everything one invocation measured."""

    meta: dict[str, str]
    duration_s: float
    warmup_s: float
    direct_only: bool
    quick: bool
    groups: tuple[str, ...] = ()  # the scenario groups asked for (--only)
    points: list[Point] = field(default_factory=list)
    starts: list[RouterStart] = field(default_factory=list)
    #: req/s of the fixed-answer hypercorn app on the router's core, by concurrency.
    ceiling: dict[int, float] = field(default_factory=dict)
    held: list[Measured] = field(default_factory=list)
    overload: list[Measured] = field(default_factory=list)
    cold: list[Measured] = field(default_factory=list)
    embed: list[Measured] = field(default_factory=list)
    workers: list[Measured] = field(default_factory=list)  # by --workers N
    shared: list[Measured] = field(default_factory=list)
    hooks: list[Measured] = field(default_factory=list)
    simulate: list[Measured] = field(default_factory=list)  # by route, and "all"
    #: The content hooks' own CPU per request by mode, in microseconds.
    hook_costs: dict[str, float] = field(default_factory=dict)
    soak: Soak | None = None
    held_duration_s: float = 0.0

    def find(self, upstream: str, stream: bool, concurrency: int) -> Point | None:
        """Return the point for this upstream, kind and concurrency, if measured."""
        for p in self.points:
            sc = p.scenario
            if (sc.upstream.name, sc.stream, p.concurrency) == (upstream, stream, concurrency):
                return p
        return None
