"""The ``workers`` group: non-stream req/s at c=64 with ``serve --workers 1`` and ``2``.

The router is not pinned here (workers need the cores the other groups keep for the
router alone): it shares every CPU with the fast upstream and the load generator,
which stay on the load CPU. On a 2-core machine the second worker therefore competes
with the load for one core; the table says what one host gains, not what a core does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from _fmt import fmt_ms, fmt_rate
from _model import FAST, Measured
from _scenarios import measure
from _servers import router_url, servers, short_error
from _workers_table import CONCURRENCY

if TYPE_CHECKING:
    from _model import Run
    from _servers import Context

WORKERS = (1, 2)


def bench_workers(ctx: Context, run: Run) -> None:
    """One fresh router per worker count, unpinned, on the fast upstream."""
    for count in WORKERS:
        label = f"--workers {count}"
        try:
            with servers(FAST, ctx, router_args=("--workers", str(count)), pinned=False) as s:
                assert s.router is not None
                result = measure(router_url(s.router_port), False, CONCURRENCY, ctx, None)
                if s.router.poll() is not None:
                    raise RuntimeError(f"router exited with {s.router.returncode} under load")
            run.workers.append(Measured(label, CONCURRENCY, result))
        except RuntimeError as exc:
            run.workers.append(Measured(label, CONCURRENCY, None, short_error(exc)))
        measured = run.workers[-1]
        print(f"workers {label}: {summary_line_of(measured)}", flush=True)


def summary_line_of(m: Measured) -> str:
    if m.result is None:
        return f"failed: {m.error}"
    return f"{fmt_rate(m.result['rps'])} req/s, p50 {fmt_ms(m.result['p50_ms'])} ms"
