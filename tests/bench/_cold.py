"""Cold start: a fresh router (no upstream connection yet) meets a burst of new clients.

The router is started without the usual probe requests, so every upstream connection
(and, for the TLS upstream, every TLS handshake) happens inside the burst. While the
burst runs, a separate load process sends ``GET /healthz`` on a new connection every
10 ms, as an orchestrator's liveness probe would: its latency is how long the daemon
leaves the outside world waiting while it is swamped.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from _load import LoadSpec, run_loadgen, spawn_loadgen
from _model import FAST, FAST_TLS, Measured
from _servers import servers, short_error

if TYPE_CHECKING:
    from _model import Run, Upstream
    from _servers import Context

BURST = 500
PROBE_EVERY_S = 0.01
BURST_LIMIT_S = 60.0
REQUEST_TIMEOUT_S = 30.0


def bench_cold(ctx: Context, run: Run) -> None:
    """The burst against the TLS upstream, then against plain HTTP for comparison."""
    for up in (FAST_TLS, FAST):
        run.cold.append(cold_start(up, ctx))
        m = run.cold[-1]
        if m.result is None:
            print(f"cold   {m.label}: {m.error}", flush=True)
            continue
        r, probes = m.result, m.extra.get("probes") or {}
        print(
            f"cold   {m.label:13} {BURST} requests: failures {r['errors']}, "
            f"{r['elapsed_s']:.2f} s, p99 {r['p99_ms'] or 0:.0f} ms; /healthz max "
            f"{probes.get('max_ms') or 0:.1f} ms over {probes.get('requests', 0)} probes",
            flush=True,
        )


def cold_start(up: Upstream, ctx: Context) -> Measured:
    """One burst of :data:`BURST` one-request clients against a freshly started router."""
    label = "TLS upstream" if up.tls else "plain HTTP"
    try:
        with servers(up, ctx, probe=False) as s:
            assert s.router is not None
            base = f"http://127.0.0.1:{s.router_port}"
            probe_spec = LoadSpec(
                f"{base}/healthz", 1, BURST_LIMIT_S, every=PROBE_EVERY_S, method="GET"
            )
            probe = spawn_loadgen(probe_spec, ctx.load_cpus)
            try:
                time.sleep(0.1)  # a few idle probes first: the probe process is up
                burst = LoadSpec(
                    f"{base}/v1/chat/completions",
                    BURST,
                    BURST_LIMIT_S,
                    once=True,
                    timeout=REQUEST_TIMEOUT_S,
                )
                result = run_loadgen(burst, ctx.load_cpus, s.router.pid)
                probe.terminate()
                probes = probe.collect()
            finally:
                probe.stop()
        return Measured(label, BURST, result, extra={"probes": probes})
    except RuntimeError as exc:
        return Measured(label, BURST, None, short_error(exc))
