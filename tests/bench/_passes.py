"""The router with its scheduler passes counted: ``python tests/bench/_passes.py serve ...``.

Runs ``python -m router`` with a :class:`trio.abc.Instrument` that times every pass of
trio's run loop (from the end of one I/O wait to the start of the next: the work done
between two looks at the sockets) and counts the task steps in it. At exit it writes a
JSON summary to the file named by ``LLM_ROUTER_PASSES_OUT``: passes by duration, the
share of the run's busy time in each bucket, steps per pass, and the longest passes.
``tests/bench/passes.py`` drives it.
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import sys
import time
from typing import Any

import trio

#: Upper bounds of the duration buckets, seconds (the last one is open).
BUCKETS = (0.001, 0.005, 0.02, 0.1)


class Passes(trio.abc.Instrument):
    """Each pass's duration and task steps."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.steps = 0
        self.passes: list[tuple[float, int]] = []
        self.waited = 0.0
        self._wait_began = self.started

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps += 1

    def before_io_wait(self, timeout: float) -> None:
        now = time.perf_counter()
        self.passes.append((now - self.started, self.steps))
        self.steps = 0
        self._wait_began = now

    def after_io_wait(self, timeout: float) -> None:
        now = time.perf_counter()
        self.waited += now - self._wait_began
        self.started = now

    def summary(self) -> dict[str, Any]:
        busy = [p for p in self.passes if p[1]]
        work = sum(d for d, _ in busy) or 1.0
        buckets: dict[str, dict[str, float]] = {}
        low = 0.0
        for high in (*BUCKETS, float("inf")):
            inside = [(d, n) for d, n in busy if low <= d < high]
            label = f"<{high * 1000:g}ms" if high != float("inf") else f">={low * 1000:g}ms"
            buckets[label] = {
                "passes": len(inside),
                "time_share": round(sum(d for d, _ in inside) / work, 3),
                "mean_steps": round(sum(n for _, n in inside) / len(inside), 1) if inside else 0,
            }
            low = high
        longest = sorted(busy, reverse=True)[:10]
        return {
            "passes": len(busy),
            "busy_s": round(work, 2),
            "io_wait_s": round(self.waited, 2),
            "buckets": buckets,
            "longest_ms_steps": [(round(d * 1000, 1), n) for d, n in longest],
        }


def main() -> None:
    passes = Passes()
    run = trio.run

    def instrumented(*args: Any, **kwargs: Any) -> Any:
        kwargs["instruments"] = [*kwargs.get("instruments", ()), passes]
        return run(*args, **kwargs)

    trio.run = instrumented  # type: ignore[assignment]  # the daemon runs one trio.run
    out = os.environ["LLM_ROUTER_PASSES_OUT"]

    def write() -> None:
        with open(out, "w") as f:
            json.dump(passes.summary(), f)

    atexit.register(write)
    sys.argv = ["router", *sys.argv[1:]]
    runpy.run_module("router", run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
