"""The report's sections for TLS and HTTP/2 targets, held streams, overload, cold start and
the soak; each with its targets beside its numbers."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from _fmt import Target, fmt_mb, fmt_ms, fmt_rate, fmt_share, fmt_statuses, target_rows
from _soak import trend

if TYPE_CHECKING:
    from collections.abc import Callable

    from _model import Measured, Result, Run, Soak

HELD_THROUGHPUT_SHARE = 0.90
#: RSS after a burst of held streams, as a share of the idle RSS, that is back.
HELD_RSS_BACK = 1.20
HELD_RSS_BURST = 2000
#: The router's RSS is read this long after a held point's clients are all gone.
HELD_SETTLE_S = 5.0
TLS_SHARE = 0.90
HEALTHZ_MAX_MS = 50.0


def _rate(run: Run, upstream: str, stream: bool, c: int) -> float | str | None:
    """The router's req/s at that point; the failure text if it failed; None if not run."""
    p = run.find(upstream, stream, c)
    if p is None:
        return None
    if p.router is None:
        return f"failed: {p.error}" if p.error else None
    return float(p.router["rps"])


def _ratio(
    name: str,
    goal: str,
    value: float | str | None,
    base: float | str | None,
    floor: float,
) -> Target:
    """A target met when ``value`` is at least ``floor`` times ``base`` (a failed
    measurement, given as its text, misses it)."""
    if isinstance(value, str) or isinstance(base, str):
        return Target(name, goal, value if isinstance(value, str) else f"base {base}", False)
    if value is None or not base:
        return Target(name, goal, "not measured", None)
    share = value / base
    measured = f"{fmt_rate(value)}/s = {share:.0%} of {fmt_rate(base)}/s"
    return Target(name, goal, measured, share >= floor)


def proto_targets(run: Run) -> list[Target]:
    """TLS within 10 % of plain HTTP at c=16; HTTP/2 at c=256 no slower than HTTP/1.1."""
    out = []
    if "tls" in run.groups:
        out.append(
            _ratio(
                "TLS upstream: non-stream req/s c=16 vs plain HTTP c=16",
                "≥ 90 % of plain",
                _rate(run, "fast-tls", False, 16),
                _rate(run, "fast", False, 16),
                TLS_SHARE,
            )
        )
    if "h2" in run.groups:
        out.append(
            _ratio(
                "HTTP/2 upstream: non-stream req/s c=256 vs HTTP/1.1 over TLS c=256",
                "≥ 100 %",
                _rate(run, "fast-h2", False, 256),
                _rate(run, "fast-tls", False, 256),
                1.0,
            )
        )
    return out


def section_targets(run: Run) -> list[Target]:
    """Every later section's targets, for the summary table."""
    return held_targets(run) + cold_targets(run) + soak_targets(run)


# -- held streams -----------------------------------------------------------------------


def _conn_errors(r: dict[str, Any]) -> int:
    return int(r["connect_errors"] + r["read_errors"] + r["timeouts"])


def held_targets(run: Run) -> list[Target]:
    """The held-stream targets, over every concurrency measured."""
    if "held" not in run.groups:
        return []
    done = [(m.label, m.result) for m in run.held if m.result is not None]
    failed = [m.label for m in run.held if m.result is None]

    def every_c(name: str, cell: Callable[[Result], str], ok: Callable[[Result], bool]) -> Target:
        measured = ", ".join(f"{label}: {cell(r)}" for label, r in done)
        if failed:
            measured += ("; " if measured else "") + "failed at " + ", ".join(failed)
        met = None if not run.held else not failed and all(ok(r) for _, r in done)
        return Target(name, "0 at every c", measured or "not measured", met)

    out = [
        every_c(
            "Held streams: connection errors (refused, reset, timed out)",
            lambda r: str(_conn_errors(r)),
            lambda r: _conn_errors(r) == 0,
        ),
        every_c(
            "Held streams: accepted streams ending without `data: [DONE]`",
            lambda r: str(r["incomplete"]),
            lambda r: r["incomplete"] == 0,
        ),
    ]
    rates = {m.concurrency: m.result["rps"] for m in run.held if m.result is not None}
    for c in (1000, 2000):
        name = f"Held streams/s at c={c} vs c=256"
        out.append(_ratio(name, "≥ 90 %", rates.get(c), rates.get(256), HELD_THROUGHPUT_SHARE))
    told = every_c(
        "Held streams: clients served (first byte) or told 503 within 100 ms",
        lambda r: fmt_share(r["told_100ms"]),
        lambda r: r["told_100ms"] == 1.0,
    )
    out.append(dataclasses.replace(told, goal="100 % at every c"))
    out.append(_rss_back(run))
    return out


def _rss_back(run: Run) -> Target:
    """The router's RSS after the burst of 2,000 held streams, against its idle RSS."""
    name = f"RSS back within 20 % of idle after the burst of {HELD_RSS_BURST:,} streams"
    goal = f"≤ 120 % of idle, {HELD_SETTLE_S:g} s after the clients left"
    m = next((m for m in run.held if m.concurrency == HELD_RSS_BURST), None)
    if m is None:
        return Target(name, goal, "not measured", None)
    idle, after = m.extra.get("idle_rss_mb"), m.extra.get("after_rss_mb")
    if m.error or not idle or after is None:
        return Target(name, goal, f"failed: {m.error}" if m.error else "not measured", False)
    share = after / idle
    measured = f"{fmt_mb(idle)} → {fmt_mb(after)} MB ({share:.0%})"
    return Target(name, goal, measured, share <= HELD_RSS_BACK)


def _idle_after(m: Measured) -> str:
    return f"{fmt_mb(m.extra.get('idle_rss_mb'))} → {fmt_mb(m.extra.get('after_rss_mb'))}"


def held_section(run: Run) -> str:
    """The held-stream table."""
    if "held" not in run.groups or not run.held:
        return ""
    head = [
        "c",
        "streams/s",
        "conn errors: connect / reset / timeout",
        "incomplete",
        "503",
        "other statuses",
        "open at end",
        "first byte p50 / p99 / max ms",
        "told ≤ 100 ms",
        "router CPU",
        "router peak RSS MB",
        "router RSS MB idle → after",
        "client CPU",
    ]
    rows = []
    for m in run.held:
        r = m.result
        if r is None:
            rows.append(f"| {m.concurrency} | **failed**: {m.error} |" + " - |" * (len(head) - 2))
            continue
        rows.append(
            "| "
            + " | ".join(
                [
                    str(m.concurrency),
                    fmt_rate(r["rps"]),
                    f"{r['connect_errors']} / {r['read_errors']} / {r['timeouts']}",
                    str(r["incomplete"]),
                    str(r["status_503"]),
                    fmt_statuses({k: n for k, n in r["statuses"].items() if k != "503"}),
                    str(r["cut"]),
                    f"{fmt_ms(r['ttfb_p50_ms'])} / {fmt_ms(r['ttfb_p99_ms'])} / "
                    f"{fmt_ms(r['ttfb_max_ms'])}",
                    fmt_share(r["told_100ms"]),
                    fmt_share(r["router_cpu"]),
                    fmt_mb(r["rss_peak_mb"]),
                    _idle_after(m),
                    fmt_share(r["client_cpu"]),
                ]
            )
            + " |"
        )
    return (
        "## Held streams\n\n"
        f"Slow streams (first event after 50 ms, then 5 ms apart, 20 events), each client "
        f"on its own keep-alive connection, all connecting at once; a fresh router per row "
        f"with `[server] backlog = 4096`; {run.held_duration_s:g} s per row, no warm-up "
        "(the connection burst is part of it). After a 503 a client waits its "
        "Retry-After (1 s) and asks again. First byte and told are timed from the "
        "request's start (the connect, for a connection's first request). The router's "
        f"RSS *after* is read {HELD_SETTLE_S:g} s after the row's clients have all gone; "
        "*idle* is its RSS at start, after one plain and one streamed request.\n\n"
        + "| " + " | ".join(head) + " |\n|" + " --- |" * len(head) + "\n"
        + "\n".join(rows) + "\n\n" + target_rows(held_targets(run))
    )  # fmt: skip


# -- overload ---------------------------------------------------------------------------


def overload_section(run: Run) -> str:
    """The overload point."""
    if "overload" not in run.groups or not run.overload:
        return ""
    m = run.overload[0]
    sat = m.extra.get("saturation_c")
    text = (
        "## Overload\n\n"
        "Non-stream, fast upstream, the router with `[server] max_in_flight = "
        f"{m.extra.get('max_in_flight')}`, {m.concurrency} clients with a 2 s timeout that "
        "ask again at once after a 503 (the worst case: they ignore Retry-After). "
    )
    text += (
        f"In this run the fast non-stream rows stop growing at c={sat}: {m.concurrency:,} "
        f"clients are {m.concurrency / sat:.0f}x that (and twice a fixed 512).\n\n"
        if sat
        else "The fast non-stream rows were not measured in this run.\n\n"
    )
    head = (
        "| answered 200 /s | 503 share | 200 p50 / p99 ms | 503 p50 / p99 ms | timeouts "
        "| conn errors | other statuses | router CPU | router peak RSS MB |"
    )
    r = m.result
    if r is None:
        return text + f"**Failed**: {m.error}\n"
    share = r["status_503"] / r["attempts"] if r["attempts"] else None
    cells = [
        fmt_rate(r["rps"]),
        fmt_share(share),
        f"{fmt_ms(r['p50_ms'])} / {fmt_ms(r['p99_ms'])}",
        f"{fmt_ms(r['p50_503_ms'])} / {fmt_ms(r['p99_503_ms'])}",
        str(r["timeouts"]),
        str(r["connect_errors"] + r["read_errors"]),
        fmt_statuses({k: n for k, n in r["statuses"].items() if k != "503"}),
        fmt_share(r["router_cpu"]),
        fmt_mb(r["rss_peak_mb"]),
    ]
    return text + head + "\n|" + " --- |" * len(cells) + "\n| " + " | ".join(cells) + " |\n"


# -- cold start -------------------------------------------------------------------------


def cold_targets(run: Run) -> list[Target]:
    """Every client of either burst served or told 503 (no connection error, timeout or
    other status); /healthz under 50 ms throughout."""
    if "cold" not in run.groups:
        return []
    if not run.cold:
        return [Target("Cold start", "measured", "not measured", None)]
    fails, probes = [], []
    ok_fail, ok_probe = True, True
    for m in run.cold:
        if m.result is None:
            fails.append(f"{m.label}: failed")
            probes.append(f"{m.label}: -")
            ok_fail = ok_probe = False
            continue
        told = int((m.result.get("statuses") or {}).get("503", 0))
        failed = m.result["errors"] - told
        served = m.result["requests"]
        fails.append(f"{m.label}: {served} served, {told} told 503, {failed} failed")
        ok_fail = ok_fail and failed == 0
        worst = (m.extra.get("probes") or {}).get("max_ms")
        failed_probes = (m.extra.get("probes") or {}).get("errors", 0)
        probes.append(
            f"{m.label}: {fmt_ms(worst)} ms"
            + (f", {failed_probes} failed" if failed_probes else "")
        )
        ok_probe = ok_probe and worst is not None and worst < HEALTHZ_MAX_MS and not failed_probes
    return [
        Target("Cold start: 500 new clients at once, each served or told 503 at once",
               "0 failed", ", ".join(fails), ok_fail),
        Target("Cold start: `GET /healthz` during the burst (slowest probe)", "< 50 ms",
               ", ".join(probes), ok_probe),
    ]  # fmt: skip


def cold_section(run: Run) -> str:
    """The cold-start table."""
    if "cold" not in run.groups or not run.cold:
        return ""
    rows = [_cold_row(m) for m in run.cold]
    return (
        "## Cold start\n\n"
        "A freshly started router (no upstream connection yet), then 500 clients at once, "
        "each on a new connection with one non-stream request (30 s timeout); meanwhile "
        "`GET /healthz` on a new connection every 10 ms from a separate process. The TLS "
        "row opens every upstream connection with a TLS handshake inside the burst.\n\n"
        "| upstream | failed (connect / reset / timeout / statuses) | total s | p50 / p99 ms "
        "| probes | /healthz p99 / max ms | router peak RSS MB |\n"
        "| --- | --- | --- | --- | --- | --- | --- |\n"
        + "\n".join(rows) + "\n\n" + target_rows(cold_targets(run))
    )  # fmt: skip


def _cold_row(m: Measured) -> str:
    r = m.result
    if r is None:
        return f"| {m.label} | **failed**: {m.error} | - | - | - | - | - |"
    p = m.extra.get("probes") or {}
    kinds = f"{r['connect_errors']} / {r['read_errors']} / {r['timeouts']} / "
    kinds += fmt_statuses(r.get("statuses"))
    if r["incomplete"]:
        kinds += f", {r['incomplete']} incomplete"
    return (
        f"| {m.label} | {r['errors']} ({kinds}) | {r['elapsed_s']:.2f} | "
        f"{fmt_ms(r['p50_ms'])} / {fmt_ms(r['p99_ms'])} | {p.get('attempts', '-')} | "
        f"{fmt_ms(p.get('p99_ms'))} / {fmt_ms(p.get('max_ms'))} | {fmt_mb(r['rss_peak_mb'])} |"
    )


# -- soak -------------------------------------------------------------------------------


def soak_section(run: Run) -> str:
    """The soak's trend."""
    soak = run.soak
    if "soak" not in run.groups or soak is None:
        return ""
    text = (
        "## Soak\n\n"
        f"c={soak.concurrency} keep-alive clients, half streams and half plain requests, "
        "fast upstream, for the whole run; the router's VmRSS and open descriptors "
        f"(`/proc/PID/fd`) every {soak.interval_s:g} s. Warm-up is the first quarter; "
        "flat means the last quarter's median RSS is within max(4 MB, 5 %) of the second "
        "quarter's (the bound of `tests/soak/run.py`).\n\n"
    )
    r = soak.result
    t = trend(soak)
    if r is None or not t:
        return text + f"**Failed**: {soak.error or 'too few samples'}\n"
    slope = t["slope_mb_per_m"]
    cells = [
        f"{samples_s(soak):.0f}",
        f"{r['requests']:,}",
        fmt_rate(r["rps"]),
        str(r["errors"]),
        f"{fmt_mb(t['rss_start'])} / {fmt_mb(t['rss_warm'])} / {fmt_mb(t['rss_end'])}",
        "-" if slope is None else f"{slope:+.2f}",
        f"{fmt_mb(t['q2'])} → {fmt_mb(t['q4'])} ({'flat' if t['flat'] else '**growing**'})",
        f"{t['fds_min']} / {t['fds_max']}",
    ]
    series = ", ".join(f"{x[1]:.1f}" for x in soak.samples)
    return (
        text
        + "| seconds | requests | req/s | errors | RSS MB start / after warm-up / end "
        "| MB per million requests | median RSS Q2 → Q4 | descriptors min / max |\n"
        + "|" + " --- |" * len(cells) + "\n| " + " | ".join(cells) + " |\n\n"
        + f"RSS MB at each sample: {series}.\n"
    )  # fmt: skip


def soak_targets(run: Run) -> list[Target]:
    """The soak's own flatness bound (``tests/soak/run.py``), applied to this load."""
    if "soak" not in run.groups or run.soak is None:
        return []
    t = trend(run.soak)
    name = "Soak: median RSS, last quarter vs second quarter"
    goal = "≤ max(4 MB, 5 %) more"
    if not t:
        return [Target(name, goal, run.soak.error or "too few samples", False)]
    measured = f"{fmt_mb(t['q2'])} → {fmt_mb(t['q4'])} MB (allowed +{fmt_mb(t['allowed'])})"
    return [Target(name, goal, measured, bool(t["flat"]))]


def samples_s(soak: Soak) -> float:
    """The soak's length, from its last sample."""
    return float(soak.samples[-1][0]) if soak.samples else 0.0


# -- failures ---------------------------------------------------------------------------


def failures(run: Run) -> list[str]:
    """Every measurement that failed, one line each."""
    out = [
        f"{p.scenario.upstream.name} {'stream' if p.scenario.stream else 'plain'} "
        f"c={p.concurrency}: {p.error}"
        for p in run.points
        if p.error
    ]
    out += [f"held {m.label}: {m.error}" for m in run.held if m.error]
    out += [f"overload {m.label}: {m.error}" for m in run.overload if m.error]
    out += [f"cold {m.label}: {m.error}" for m in run.cold if m.error]
    out += [f"embed {m.label}: {m.error}" for m in run.embed if m.error]
    out += [f"hooks {m.label}: {m.error}" for m in run.hooks if m.error]
    out += [f"simulate {m.label}: {m.error}" for m in run.simulate if m.error]
    if run.soak and run.soak.error:
        out.append(f"soak: {run.soak.error}")
    return out
