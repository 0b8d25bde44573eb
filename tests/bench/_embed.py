"""The ``embed`` group: ``POST /v1/embeddings`` through the router at c=16, one short
text per request, with and without the route's ``batch`` (concurrent requests to one
target combined into one upstream call), and its report section.

The fast upstream answers each call at once with a 256-dimension vector per input. Each
row is a fresh router; after the load the row reads ``/admin/status`` for how many
upstream calls the batcher made for how many requests.
"""

from __future__ import annotations

import http.client
import json
from typing import TYPE_CHECKING

from _fmt import fmt_mb, fmt_ms, fmt_rate, fmt_share
from _load import LoadSpec, run_loadgen
from _model import FAST, Measured
from _servers import servers, short_error

if TYPE_CHECKING:
    from _model import Run
    from _servers import Context

__all__ = ["EMBED_BODY", "EMBED_CONCURRENCY", "bench_embed", "embed_section"]

EMBED_CONCURRENCY = 16
EMBED_BODY = '{"model":"embed","input":"the quick brown fox jumps over the lazy dog"}'
#: The issue's example: up to 64 inputs a call, waiting at most 5 ms for more.
BATCH = '{ max = 64, wait = "5ms" }'
ROWS = (("without batch", ""), (f"batch = {BATCH}", f"batch = {BATCH}\n"))


def _route(batch: str) -> str:
    return f'[routes.embed]\nfallback = ["up:bench-model"]\n{batch}'


def _batches(port: int) -> dict[str, int] | None:
    """The batcher's counts from ``/admin/status`` (None: no batched route ran)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", "/admin/status")
        status = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    counts: dict[str, int] | None = status.get("traffic", {}).get("embedding_batches")
    return counts


def bench_embed(ctx: Context, run: Run) -> None:
    """Measure each row on its own router (loadgen: one POST body for every request)."""
    c = EMBED_CONCURRENCY
    for label, batch in ROWS:
        try:
            with servers(FAST, ctx, routes=_route(batch)) as s:
                assert s.router is not None
                url = f"http://127.0.0.1:{s.router_port}/v1/embeddings"
                spec = LoadSpec(url, c, ctx.duration, ctx.warmup, body=EMBED_BODY)
                result = run_loadgen(spec, ctx.load_cpus, s.router.pid)
                counts = _batches(s.router_port) if batch else None
            run.embed.append(Measured(label, c, result, extra={"batches": counts}))
        except RuntimeError as exc:
            run.embed.append(Measured(label, c, None, short_error(exc)))
        print(embed_line(run.embed[-1]), flush=True)


def _per_call(m: Measured) -> str:
    counts = m.extra.get("batches")
    if not counts or not counts.get("calls"):
        return "1" if m.result is not None else "-"
    return f"{counts['requests'] / counts['calls']:.1f}"


def embed_line(m: Measured) -> str:
    """One stdout line for an embeddings row."""
    r = m.result
    if r is None:
        return f"embed  {m.label}: {m.error}"
    return (
        f"embed  {m.label:34} {r['rps']:7.0f} req/s p50 {fmt_ms(r['p50_ms'])} ms, "
        f"requests per upstream call {_per_call(m)}, errors {r['errors']}"
    )


def embed_section(run: Run) -> str:
    """The embeddings rows (empty when the group did not run)."""
    if "embed" not in run.groups or not run.embed:
        return ""
    text = (
        "## Embeddings\n\n"
        f"`POST /v1/embeddings` through the router at c={EMBED_CONCURRENCY}, one short text "
        "per request, the fast upstream answering each call at once (a 256-dimension vector "
        "per input); each row a fresh router. Requests per upstream call: from the "
        "batcher's counts in `/admin/status` (1 without `batch`).\n\n"
        "| route | req/s | p50 / p99 ms | requests per upstream call | router CPU "
        "| router peak RSS MB | errors |\n| --- | --- | --- | --- | --- | --- | --- |\n"
    )
    rows = []
    for m in run.embed:
        r = m.result
        if r is None:
            rows.append(f"| {m.label} | **failed**: {m.error} | - | - | - | - | - |")
            continue
        cells = [
            m.label,
            fmt_rate(r["rps"]),
            f"{fmt_ms(r['p50_ms'])} / {fmt_ms(r['p99_ms'])}",
            _per_call(m),
            fmt_share(r["router_cpu"]),
            fmt_mb(r["rss_peak_mb"]),
            str(r["errors"]),
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return text + "\n".join(rows) + "\n"
