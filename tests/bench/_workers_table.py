"""The report's ``Workers`` section (measured by ``_workers.py``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from _fmt import fmt_ms, fmt_rate

if TYPE_CHECKING:
    from _model import Run

CONCURRENCY = 64


def workers_section(run: Run) -> str:
    """The table: req/s and latency by worker count, and the gain of the second."""
    if "workers" not in run.groups or not run.workers:
        return ""
    rows = []
    base = run.workers[0].result["rps"] if run.workers[0].result else None
    for m in run.workers:
        r = m.result
        if r is None:
            rows.append(f"| `{m.label}` | **failed**: {m.error} | | | |")
            continue
        gain = f"{r['rps'] / base:.2f}x" if base else "-"
        rows.append(
            f"| `{m.label}` | {fmt_rate(r['rps'])} | {fmt_ms(r['p50_ms'])} | "
            f"{fmt_ms(r['p99_ms'])} | {gain} |"
        )
    return (
        "## Workers\n\n"
        f"Non-stream, fast upstream, c={CONCURRENCY}, a fresh router per row started with "
        "`serve --workers N` and not pinned: it shares the machine's CPUs with the "
        "upstream and the load generator. On a 2-core machine the second worker competes "
        "with the load for a core, and on a machine loaded by other work these figures "
        "are noisy: compare rows of one run only.\n\n"
        "| workers | req/s | p50 ms | p99 ms | vs 1 worker |\n| --- | --- | --- | --- | --- |\n"
        + "\n".join(rows)
        + "\n"
    )
