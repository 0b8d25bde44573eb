"""Virtual time for ``simulate``: a trio clock that jumps to the next event, with
cheap timers for the simulated providers and the traffic.

Like trio's ``MockClock`` with autojump, it never waits in real time: when no task
can run, time moves to the next thing due. Two things are cheaper, and they are most
of a simulated request's cost on ``MockClock``:

- its time is a number, not a reading of the real clock scaled (``current_time`` is
  called dozens of times a request);
- :meth:`VirtualClock.sleep` parks the task on the clock's own timer heap and the
  clock wakes it, where ``trio.sleep`` opens a cancel scope, registers its deadline
  and wakes by raising and catching ``Cancelled`` (and takes a second pass of the run
  loop to do it). It is cancellable like ``trio.sleep``: a hedge that lost, a
  timeout, the end of the run take the task off the heap.

The engine's own deadlines, timeouts, backoff sleeps and hedge timers stay trio's
cancel scopes, on this clock's time: only the providers' and the traffic's waits use
the heap. The run loop asks a clock how long it may block only when no task can run;
that is when this one moves time (to the earlier of its next timer and trio's next
deadline) and wakes its due timers. A run with this clock is for simulations only:
there is no real I/O to wait for, and a task that waits on anything but time and
other tasks would wait forever.
"""

from __future__ import annotations

import heapq
import math
from itertools import count

import trio

__all__ = ["VirtualClock", "virtual_sleep"]

#: What the run loop may block for when nothing at all is due (a deadlock: nothing
#: would ever wake). One day, as trio's own ceiling.
_NOTHING_DUE = 86400.0


class VirtualClock(trio.abc.Clock):
    """A clock for ``trio.run(..., clock=VirtualClock())`` that starts at ``start``."""

    def __init__(self, start: float = 0.0) -> None:
        self._now = start
        # (when, order, task or None once its sleep was cancelled); order keeps ties FIFO.
        self._timers: list[tuple[float, int, list[trio.lowlevel.Task | None]]] = []
        self._order = count()

    def start_clock(self) -> None:
        """Nothing to start: time moves only when the run loop idles."""

    def current_time(self) -> float:
        return self._now

    def deadline_to_sleep_time(self, deadline: float) -> float:
        """Called by the run loop when no task can run, with trio's next deadline: time
        jumps to the next event, and the timers due then are woken."""
        timers = self._timers
        while timers and timers[0][2][0] is None:
            heapq.heappop(timers)  # cancelled sleeps
        if timers and timers[0][0] <= deadline:
            when = timers[0][0]
            self._now = max(self._now, when)
            while timers and timers[0][0] <= when:
                task = heapq.heappop(timers)[2][0]
                if task is not None:
                    trio.lowlevel.reschedule(task)
            return 0.0
        if deadline == math.inf:
            return _NOTHING_DUE
        self._now = max(self._now, deadline)
        return 0.0

    async def sleep_until(self, when: float) -> None:
        """Wait until ``when`` on this clock (a checkpoint, cancellable)."""
        slot: list[trio.lowlevel.Task | None] = [trio.lowlevel.current_task()]
        heapq.heappush(self._timers, (when, next(self._order), slot))

        def abort(_: object) -> trio.lowlevel.Abort:
            slot[0] = None
            return trio.lowlevel.Abort.SUCCEEDED

        await trio.lowlevel.wait_task_rescheduled(abort)

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` on this clock."""
        await self.sleep_until(self._now + seconds)


async def virtual_sleep(seconds: float) -> None:
    """``seconds`` on the run's :class:`VirtualClock`, or ``trio.sleep`` on any other
    clock (a simulation run inside a test on ``MockClock``)."""
    clock = trio.lowlevel.current_clock()
    if isinstance(clock, VirtualClock):
        await clock.sleep(seconds)
    else:
        await trio.sleep(seconds)
