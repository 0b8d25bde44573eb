"""How many requests run at once: a limit learned from the event loop's lag.

A saturated trio loop runs every runnable task once per scheduler pass, so a pass lasts
as long as one step of every request in progress. Start 500 requests at once and each
pass is hundreds of milliseconds: every request, ``/healthz`` included, waits that long
for each of its steps, and none finishes sooner for the crowd. Serving fewer at once
costs no throughput (the core is busy either way) and keeps every pass short.

:class:`ConcurrencyLimit` is that number: additive increase while the loop keeps up and
the limit is what holds requests back (doubling when the loop is idle, less as its lag
nears the target, like TCP's slow start), multiplicative decrease when a pass runs past
:data:`LAG_TARGET` (TCP's congestion window, Envoy's adaptive concurrency filter, on the
loop's lag instead of a latency gradient). Held streams, idle between chunks, cost the
loop little, so the limit grows to thousands of them; a burst of fast requests, all
runnable at once, holds it near what one short pass can carry.

:class:`LagProbe` turns a timer's lateness into the two readings the daemon acts on:
the latest (for the limit, which must react within a pass or two) and the sustained one
(the least of the last :data:`SUSTAINED` readings, for refusing outright: one slow
moment, a collection or a big JSON body, must not refuse the requests after it).

:class:`QueueDelay` is the other reading, the one a client feels: how long each request
waited inside the daemon before it was admitted (from its connection's accept, or its
first bytes on a kept-alive connection). The lag probe misses saturation by a crowd: with
hundreds of tasks runnable each pass is long but the sleeping probe is late by one pass
only, while a request needs a dozen passes to be admitted and waits ten times as long.
Its test is on a window's mean wait: past a target, the daemon is overloaded (a standing
queue, not a burst draining) until a window's mean is back under it.

All are pure: the daemon feeds them readings (:mod:`._overload`).
"""

from __future__ import annotations

import collections

import attrs

__all__ = [
    "FLOOR",
    "INITIAL",
    "LAG_TARGET",
    "MIN_SAMPLES",
    "PROBE_INTERVAL",
    "SUSTAINED",
    "ConcurrencyLimit",
    "LagProbe",
    "QueueDelay",
]

#: How often the lag probe wakes; its lateness is the loop's lag.
PROBE_INTERVAL = 0.01
#: Probes in a row that must all be late to refuse outright (200 ms of saturation).
SUSTAINED = 20
#: A pass longer than this is a loop that carries too much at once. A request needs
#: about half a dozen passes (accept, read, parse, answer, write), so this keeps an
#: answer that costs nothing, such as ``/healthz``, within tens of milliseconds.
LAG_TARGET = 0.005
#: Requests in progress at start, and the least the limit falls to.
INITIAL = 64
FLOOR = 32
#: Admissions in a window below which its mean wait says nothing.
MIN_SAMPLES = 8
#: Decrease on a late probe, and the probes after it that cannot decrease it again
#: (the requests already started need a few passes to finish and shorten the pass).
DECREASE = 0.75
COOLDOWN = 3


@attrs.define
class ConcurrencyLimit:
    """Requests that may be in progress at once, learned from the loop's lag.

    Attributes:
        target: Lateness of the probe past which the limit shrinks, seconds.
        value: The limit now (a float, so that small increases accumulate).
    """

    target: float = LAG_TARGET
    value: float = float(INITIAL)
    _cooldown: int = 0

    @property
    def limit(self) -> int:
        return int(self.value)

    def observe(self, lateness: float, *, held_back: bool) -> None:
        """Adjust to one probe: ``lateness`` of the timer, and whether the limit kept
        a request waiting since the last probe (growing an unused limit proves nothing).
        """
        if lateness > self.target:
            if self._cooldown == 0:
                self.value = max(float(FLOOR), self.value * DECREASE)
                self._cooldown = COOLDOWN
            else:
                self._cooldown -= 1
            return
        self._cooldown = 0
        if held_back:
            headroom = 1.0 - max(0.0, lateness) / self.target
            self.value += max(1.0, self.value * headroom)


@attrs.define
class LagProbe:
    """The loop's lag from a timer's lateness.

    Attributes:
        latest: The last reading, seconds.
        sustained: The least of the last :data:`SUSTAINED` readings, seconds.
    """

    latest: float = 0.0
    _recent: collections.deque[float] = attrs.field(
        factory=lambda: collections.deque([0.0] * SUSTAINED, maxlen=SUSTAINED)
    )

    @property
    def sustained(self) -> float:
        return min(self._recent)

    def record(self, lateness: float) -> None:
        self.latest = max(0.0, lateness)
        self._recent.append(self.latest)


@attrs.define
class QueueDelay:
    """How long requests wait in the daemon before they are admitted, over windows.

    The verdict is taken once per window of ``interval`` from the mean wait of the
    requests admitted in it: a mean past ``target`` is a standing queue (a burst
    draining lasts less than a window; one slow request among many does not move the
    mean). A window runs on until it holds :data:`MIN_SAMPLES` admissions, unless none
    came for an interval: a few slow requests on a quiet daemon are no evidence. CoDel tests the least wait of a window instead; here requests on a free
    place are admitted at once beside a queue that waits seconds, and the least wait
    would only ever see them.

    Attributes:
        target: A mean wait past this over a window is overload.
        interval: The window, seconds.
        latest: The last request's wait, seconds.
        overloaded: The verdict of the last window.
    """

    target: float
    interval: float
    latest: float = 0.0
    overloaded: bool = False
    _start: float = 0.0
    _sum: float = 0.0
    _count: int = 0
    _last: float = 0.0

    def record(self, delay: float, now: float) -> None:
        """One admitted request waited ``delay`` seconds (``now`` on trio's clock)."""
        self.expire(now)
        self._last = now
        self.latest = max(0.0, delay)
        self._sum += self.latest
        self._count += 1

    def expire(self, now: float) -> None:
        """Close the window once it is over and holds :data:`MIN_SAMPLES` admissions
        (a saturated daemon may admit fewer per interval: the window then runs on), or
        none came for an interval (no evidence: not overloaded); take its verdict."""
        if now - self._start < self.interval:
            return
        count = self._count
        if count >= MIN_SAMPLES:
            self.overloaded = self._sum / count > self.target
        elif now - self._last >= self.interval:
            self.overloaded = False
        else:
            return
        self._start, self._sum, self._count = now, 0.0, 0
