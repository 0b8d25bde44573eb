"""The benchmark's soak: minutes of steady mixed load, the router's memory and descriptors.

Unlike ``tests/soak/run.py`` (``nox -s soak``: hostile clients against the simulated
provider, pass or fail), this runs the benchmark's own load (half streams, half plain,
keep-alive) through the real upstream pool at a fixed concurrency and reports the
trend: RSS at the start, after warm-up and at the end, its slope per million requests,
and the descriptor range. The warm-up rule and the flatness bound are the soak's own,
imported from it.
"""

from __future__ import annotations

import statistics
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from _load import LoadSpec, run_loadgen
from _model import FAST, Soak
from _servers import router_url, servers, short_error

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # tests/soak/run.py is a script: import it from the root
    sys.path.append(str(ROOT))
from tests.soak.run import allowed_growth, fds, rss_mb, rss_quarters  # noqa: E402

if TYPE_CHECKING:
    from _model import Run
    from _servers import Context

SOAK_CONCURRENCY = 64
SOAK_INTERVAL_S = 10.0
SOAK_STREAM_SHARE = 0.5


def bench_soak(ctx: Context, run: Run, duration: float) -> None:
    """Load for ``duration`` seconds; sample RSS and descriptors every 10 s."""
    samples: list[tuple[float, float, int]] = []
    interval = min(SOAK_INTERVAL_S, max(duration / 4, 0.5))  # short runs: still 4+ samples
    soak = Soak(SOAK_CONCURRENCY, interval, duration / 4, samples, None)
    try:
        with servers(FAST, ctx) as s:
            assert s.router is not None
            pid = s.router.pid
            due = 0.0

            def tick(elapsed: float) -> None:
                nonlocal due
                if elapsed >= due:
                    samples.append((elapsed, rss_mb(pid), fds(pid)))
                    due += interval

            spec = LoadSpec(
                router_url(s.router_port), SOAK_CONCURRENCY, duration, mix=SOAK_STREAM_SHARE
            )
            soak.result = run_loadgen(spec, ctx.load_cpus, pid, on_tick=tick)
            samples.append((duration, rss_mb(pid), fds(pid)))
    except RuntimeError as exc:
        soak.error = short_error(exc)
    run.soak = soak
    print(soak_line(soak), flush=True)


def trend(soak: Soak) -> dict[str, float | bool | None]:
    """RSS at start, after warm-up and at the end; slope; flatness; descriptor range."""
    samples = soak.samples
    r = soak.result
    if len(samples) < 4 or r is None:
        return {}
    load_s = samples[-1][0]
    warm = [x for x in samples if x[0] >= soak.warmup_s]
    q2, q4 = rss_quarters(samples, load_s)
    slope = None
    if len(warm) >= 2 and r["rps"] > 0:
        fit = statistics.linear_regression([t for t, _, _ in warm], [m for _, m, _ in warm])
        slope = fit.slope * 1e6 / r["rps"]  # MB per second x seconds per million requests
    return {
        "rss_start": samples[0][1],
        "rss_warm": warm[0][1] if warm else None,
        "rss_end": samples[-1][1],
        "slope_mb_per_m": slope,
        "q2": q2,
        "q4": q4,
        "flat": q4 - q2 <= allowed_growth(q2),
        "allowed": allowed_growth(q2),
        "fds_min": min(f for _, _, f in samples),
        "fds_max": max(f for _, _, f in samples),
    }


def soak_line(soak: Soak) -> str:
    """One stdout line."""
    if soak.result is None:
        return f"soak   failed: {soak.error}"
    t = trend(soak)
    if not t:
        return "soak   too short for a trend"
    return (
        f"soak   {soak.result['requests']} requests, RSS {t['rss_start']:.1f} -> "
        f"{t['rss_warm']:.1f} -> {t['rss_end']:.1f} MB, slope "
        f"{t['slope_mb_per_m'] or 0:+.2f} MB per million, fds {t['fds_min']}-{t['fds_max']}"
    )
