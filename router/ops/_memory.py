"""Memory housekeeping: a full garbage collection, and the freed heap given back to the
system, once a burst of load is over or when the loop is quiet.

Why the daemon needs it: :func:`~._daemon._tune_gc` sets the youngest generation's
threshold to 100,000 for throughput, and that count is net (allocations less
deallocations of container objects). Serving frees nearly everything it allocates by
reference counting, so in steady serving the count creeps and a cyclic collection runs
a few times per million requests; in a soak of hundreds of thousands of requests none ran
at all. What dies in reference cycles stays: each closed client connection leaves about
fifty objects in cycles (the protocol objects of the connection and its socket). A burst
of held streams does pass the threshold while its connections are alive, so they are
promoted to the older generations, where nothing ever collects them once they die (the
next collection of generation 1 is 50 young collections away). Measured after 2,000 held
streams: about 50,000 objects of dead connections left, collected in 100-200 ms by one
full collection.

The policy (:class:`Housekeeping`) is pure: fed the time, the load (client connections
held) and how many objects were allocated since the last full collection, it says when
to run one. :class:`MemoryKeeper` samples once a second in the daemon's nursery and
carries it out: ``gc.collect()``, then ``malloc_trim(0)`` where glibc has it (the freed
pages in the C heap go back to the system; elsewhere a no-op).
"""

from __future__ import annotations

import ctypes
import gc
import logging
import os
import time
from typing import TYPE_CHECKING, Literal

import attrs
import trio

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["Housekeeping", "MemoryKeeper", "Why", "pending_objects", "rss_bytes", "trimmer"]

log = logging.getLogger("llm_router")

#: Why a collection runs: a burst of connections is over; the loop is quiet and one is
#: due; one is overdue, however busy the loop.
Why = Literal["burst over", "quiet", "overdue"]
#: How often the keeper samples the load.
TICK_S = 1.0


@attrs.define
class Housekeeping:
    """When to run a full collection, as a function of the samples it is fed.

    A burst: the connections peaked at ``burst`` or more since the last collection and
    have stayed at or below ``fall`` of that peak for ``settle`` seconds. Otherwise a
    collection is due ``period`` seconds after the last one, once at least
    ``min_pending`` objects were allocated since (an idle daemon collects nothing), and
    runs on the first sample with fewer than ``burst`` connections: a full collection
    walks every live object, which is long while a crowd is served. Past ``longest``
    seconds it runs anyway.
    """

    burst: int = 100
    fall: float = 0.25
    settle: float = 2.0
    period: float = 120.0
    longest: float = 900.0
    min_pending: int = 10_000
    _last: float = 0.0
    _peak: int = 0
    _low_since: float | None = None

    def start(self, now: float) -> None:
        """The clock starts: the first collection is due ``period`` from ``now``."""
        self._last = now

    def sample(self, now: float, load: int, pending: int) -> Why | None:
        """One sample: connections held and objects allocated since the last full
        collection. Returns why to collect now, or None."""
        self._peak = max(self._peak, load)
        if self._peak >= self.burst and load <= self._peak * self.fall:
            if self._low_since is None:
                self._low_since = now
            if now - self._low_since >= self.settle:
                return "burst over"
        else:
            self._low_since = None
        if pending < self.min_pending:
            return None
        waited = now - self._last
        if waited >= self.longest:
            return "overdue"
        if waited >= self.period and load < self.burst:
            return "quiet"
        return None

    def collected(self, now: float, load: int) -> None:
        """A collection ran at ``now``: the next burst is measured from ``load``."""
        self._last = now
        self._peak = load
        self._low_since = None


def pending_objects() -> int:
    """Container objects allocated (net) since the last full collection, estimated from
    the collector's counters: the youngest count, plus a threshold's worth for each
    younger collection since (what they kept went on to an older generation)."""
    count0, count1, count2 = gc.get_count()
    threshold0, threshold1, _ = gc.get_threshold()
    return count0 + threshold0 * (count1 + threshold1 * count2)


def trimmer() -> Callable[[], bool] | None:
    """glibc's ``malloc_trim(0)``: freed pages of the C heap go back to the system. None
    where the C library has none (musl, macOS)."""
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols: its C library's
        trim = libc.malloc_trim
    except (OSError, AttributeError, TypeError):  # TypeError: no CDLL(None) on Windows
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int

    def malloc_trim() -> bool:
        return bool(trim(0))

    return malloc_trim


def rss_bytes() -> int | None:
    """The process's resident memory, from ``/proc/self/statm``; None elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class MemoryKeeper:
    """Runs :class:`Housekeeping`'s collections in the daemon, and reports them.

    Args:
        load: Client connections held now.
        policy: When to collect (defaults: :class:`Housekeeping`'s).
        trim: Gives freed heap back (:func:`trimmer`'s, found once); None: none.
    """

    def __init__(
        self,
        load: Callable[[], int],
        policy: Housekeeping | None = None,
        trim: Callable[[], bool] | None = None,
    ) -> None:
        self.load = load
        self.policy = policy or Housekeeping()
        self.trim = trim
        self.collections = 0
        self.last: dict[str, object] | None = None

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Sample once a second; collect when the policy says so. Runs until cancelled."""
        self.policy.start(trio.current_time())
        task_status.started()
        while True:
            await trio.sleep(TICK_S)
            now = trio.current_time()
            why = self.policy.sample(now, self.load(), pending_objects())
            if why is not None:
                self.housekeep(why, now)

    def housekeep(self, why: Why, now: float) -> None:
        """One full collection and a trim, on the loop (the collector needs it); the
        pause is measured and kept for the status page."""
        started = time.perf_counter()
        freed = gc.collect()
        collected = time.perf_counter()
        trimmed = self.trim() if self.trim is not None else None
        done = time.perf_counter()
        self.policy.collected(now, self.load())
        self.collections += 1
        rss = rss_bytes()
        self.last = {
            "reason": why,
            "unreachable_objects": freed,
            "collect_ms": round((collected - started) * 1000, 2),
            "trim_ms": round((done - collected) * 1000, 2) if trimmed is not None else None,
            "trimmed": trimmed,
            "rss_after_mb": None if rss is None else round(rss / 2**20, 1),
        }
        log.debug("memory housekeeping (%s): %s", why, self.last)

    def status(self) -> dict[str, object]:
        """For ``/admin/status``: collections run, the last one, resident memory now."""
        rss = rss_bytes()
        return {
            "collections": self.collections,
            "last": self.last,
            "rss_mb": None if rss is None else round(rss / 2**20, 1),
            "trim": self.trim is not None,
        }
