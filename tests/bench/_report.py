"""The benchmark's Markdown report, its targets, and its stdout summary."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from _embed import embed_section
from _fmt import Target, fmt_mb, fmt_ms, fmt_rate, target_rows, verdict
from _hooks import hooks_section
from _sections import (
    cold_section,
    failures,
    held_section,
    overload_section,
    proto_targets,
    section_targets,
    soak_section,
)
from _shared_table import shared_section
from _simulate_bench import simulate_section, simulate_targets
from _workers_table import workers_section

if TYPE_CHECKING:
    from _model import Point, Result, Run

__all__ = ["extract_notes", "failures", "render", "summary", "summary_line", "targets"]

NOTES_HEADING = "## Notes"
#: What ``run.py`` measures when ``--only`` is not given (keep in step with it).
DEFAULT_GROUPS = (
    "base",
    "tls",
    "h2",
    "held",
    "overload",
    "cold",
    "embed",
    "workers",
    "shared",
    "hooks",
    "simulate",
)
GROUPS_TEXT = (
    "- Scenario groups (`--only`, comma-separated; all but `soak` by default, `all` for "
    "every one): `base` (the ceiling and the plain-HTTP tables), `tls` and `h2` "
    "(non-stream c=16 and c=256, streams c=64 against the fast upstream over HTTPS and "
    "over HTTP/2), `held` (the slow streams held by 256, 1,000, 2,000 and 5,000 clients "
    "at once, a fresh router with `[server] backlog = 4096` for each, 10 s each with the "
    "connection burst counted: streams/s, connection errors, incomplete streams, 503s, "
    "first byte p50/p99/max, router CPU and RSS, and the share of clients given their "
    "first byte or a 503 within 100 ms), `overload` (non-stream at c=1,024 with "
    "`[server] max_in_flight = 256` and a 2 s client timeout, clients asking again at "
    "once after a 503: req/s, 503 share, p99 of answers and of 503s), `cold` (a freshly "
    "started router, 500 new clients at once against the TLS upstream and then plain "
    "HTTP, `GET /healthz` every 10 ms meanwhile from another process: failures, total "
    "time, p50/p99, probe p99/max), `embed` (`POST /v1/embeddings` at c=16, a fresh "
    'router without and then with the route\'s `batch = { max = 64, wait = "5ms" }`: '
    "req/s, p50/p99, requests per upstream call), `workers` (non-stream c=64 through a "
    "fresh router started with `--workers 1` and then `--workers 2`, not pinned), "
    "`shared` (one router without `server.shared_state`, one with it on a local "
    "`redis-server`, two on one Redis: non-stream c=16 and c=256, req/s, added p50 and "
    "router CPU per request), `hooks` (c=16 without and with a `pii` and a `regex` "
    "content hook: short and 1 KiB-prompt requests and streams, the router's CPU per "
    "request), `simulate` (the shipped `router.toml` served by the daemon under 90 s of "
    "`rate=10/s,stream=0.3,prompt=50` over loopback, against `llm-router simulate` on "
    "the same traffic: p50/p99 of latency and TTFT per route) and `soak` (`--soak-duration`, 600 s by default: "
    "c=64, half streams, the router's RSS and descriptors every 10 s; RSS at start, "
    "after warm-up and at the end, its slope per million requests, the descriptor range)."
)
NOTES_PLACEHOLDER = (
    "_Hand-written history (what changed, what the numbers meant). The report writer keeps "
    "everything from this heading to the end of the file._\n"
)


def _pair(result: Result | None, a: str, b: str) -> str:
    """Format two millisecond fields as ``a / b``."""
    if not result:
        return "-"
    return f"{fmt_ms(result[a])} / {fmt_ms(result[b])}"


def _rps(result: Result | None) -> float | None:
    return None if not result else float(result["rps"])


def targets(run: Run) -> list[Target]:
    """Evaluate the issues' targets against the router's numbers, for the groups run."""
    out = base_targets(run) if "base" in run.groups else []
    return out + proto_targets(run) + section_targets(run) + simulate_targets(run)


def base_targets(run: Run) -> list[Target]:
    """The foundation issue's targets (plain HTTP rows)."""
    out: list[Target] = []
    c16 = run.find("fast", False, 16)
    rps16 = _rps(c16.router) if c16 else None
    out.append(_at_least("Non-stream req/s, c=16, fast upstream", rps16, 1200, "≥ 1,200 req/s"))
    c1 = run.find("fast", False, 1)
    added = c1.added_p50_ms if c1 else None
    out.append(
        Target(
            "Added p50 latency at c=1 (router p50 - direct p50)",
            "≤ 1.0 ms",
            f"{fmt_ms(added)} ms" if added is not None else "not measured",
            None if added is None else added <= 1.0,
        )
    )
    for name in ("fast", "slow"):
        out.append(_scaling(run, name))
    c64 = run.find("fast", True, 64)
    out.append(
        _at_least(
            "Streams/s at c=64, fast upstream", _rps(c64.router) if c64 else None, 400, "≥ 400/s"
        )
    )
    peaks = [p.router["rss_peak_mb"] for p in run.points if p.router and p.router["rss_peak_mb"]]
    peaks += [s.hwm_mb for s in run.starts if s.hwm_mb is not None]
    peak = max(peaks) if peaks else None
    out.append(
        Target(
            "Router peak RSS (all runs)",
            "≤ 80 MB",
            "not measured" if peak is None else f"{peak:.1f} MB",
            None if peak is None else peak <= 80,
        )
    )
    start = max((s.start_s for s in run.starts), default=None)
    out.append(
        Target(
            "Start: spawn to first 200 on /healthz (slowest start)",
            "≤ 1 s",
            "not measured" if start is None else f"{start:.2f} s",
            None if start is None else start <= 1.0,
        )
    )
    return out


def _at_least(name: str, value: float | None, floor: float, goal: str) -> Target:
    """A target met when ``value`` is at least ``floor``."""
    measured = "not measured" if value is None else f"{fmt_rate(value)}/s"
    return Target(name, goal, measured, None if value is None else value >= floor)


def _scaling(run: Run, upstream: str) -> Target:
    """c=256 keeps ≥ 70 % of the c=16 rate and ≥ 1,000 req/s (non-stream)."""
    label = "fast upstream" if upstream == "fast" else "50 ms upstream"
    name = f"Non-stream c=256 vs c=16, {label}"
    goal = "≥ 70 % of c=16 and ≥ 1,000 req/s"
    lo, hi = run.find(upstream, False, 16), run.find(upstream, False, 256)
    r16 = _rps(lo.router) if lo else None
    r256 = _rps(hi.router) if hi else None
    if r256 is None:
        return Target(name, goal, "not measured", None)
    if not r16:
        return Target(name, goal, f"{fmt_rate(r256)}/s (c=16 not measured)", None)
    ratio = r256 / r16
    measured = f"{fmt_rate(r256)}/s = {ratio:.0%} of {fmt_rate(r16)}/s"
    return Target(name, goal, measured, ratio >= 0.70 and r256 >= 1000)


def render(run: Run, notes: str | None) -> str:
    """Return the whole Markdown report."""
    parts = [_header(run), _machine(run), _method(run), _targets(run), _ceiling(run)]
    parts += [_scenario_table(run, points) for points in _by_scenario(run.points)]
    parts += [held_section(run), overload_section(run), cold_section(run), embed_section(run)]
    parts.append(shared_section(run))
    parts.append(hooks_section(run))
    parts.append(simulate_section(run))
    parts.append(soak_section(run))
    parts.append(workers_section(run))
    parts.append(_starts(run))
    parts.append(f"{NOTES_HEADING}\n\n{(notes or NOTES_PLACEHOLDER).strip()}\n")
    return "\n".join(parts)


def _ceiling(run: Run) -> str:
    """The fixed-answer app's rate on the router's core, and the router's share of it."""
    if not run.ceiling:
        return ""
    rows = []
    for c, ceiling in sorted(run.ceiling.items()):
        point = run.find("fast", False, c)
        routed = _rps(point.router) if point else None
        share = f"{routed / ceiling:.2f}" if routed and ceiling else "-"
        rows.append(f"| {c} | {fmt_rate(ceiling)} | {fmt_rate(routed)} | {share} |")
    return (
        "## Ceiling\n\nA fixed-answer raw ASGI app on one hypercorn-trio worker, on the "
        "router's core, in this run: nothing built on hypercorn can beat it here. The "
        "router's share of it is what carries over between machines.\n\n"
        "| concurrency | ceiling req/s | router req/s (fast, non-stream) | share |\n"
        "| --- | --- | --- | --- |\n" + "\n".join(rows) + "\n"
    )


def _header(run: Run) -> str:
    m = run.meta
    mode = " --quick" if run.quick else ""
    mode += " --direct-only" if run.direct_only else ""
    if run.groups and run.groups != DEFAULT_GROUPS:
        mode += " --only " + ",".join(run.groups)
    return (
        "# llm-router benchmarks\n\n"
        f"Measured {m['date']} at git `{m['git']}` by `python tests/bench/run.py{mode}`; "
        "regenerate with `nox -s bench` (or the command above). Everything above "
        f"`{NOTES_HEADING}` is rewritten on each run.\n"
    )


def _machine(run: Run) -> str:
    m = run.meta
    rows = [
        ("CPUs (nproc)", m["nproc"]),
        ("CPU model", m["cpu"]),
        ("Kernel", m["kernel"]),
        ("Python", m["python"]),
        ("trio / hypercorn / h11 / httpx2", m["libs"]),
        ("Load tools", m["tools"]),
    ]
    body = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return f"## Machine\n\n| | |\n| --- | --- |\n{body}\n"


def _method(run: Run) -> str:
    m = run.meta
    cpu_peak = max(
        (
            r["client_cpu"]
            for p in run.points
            for r in (p.direct, p.router)
            if r and r["client_cpu"]
        ),
        default=None,
    )
    lines = [
        "## Method\n",
        f"- Pinning: {m['pinning']}.",
        f"- Each point: {run.warmup_s:g} s warm-up (discarded), then {run.duration_s:g} s "
        "measured, with N keep-alive connections each sending the next request as soon as "
        "the previous answer ends (closed loop).",
        f"- Non-stream load: {m['nonstream_tool']}. Streams: `tests/bench/loadgen.py` "
        "(asyncio, raw sockets), which also measures TTFB = time from the request's start "
        "(sending it; the connect, for a connection's first request) to the first complete "
        "SSE chunk.",
        "- The upstream is `tests/bench/upstream.py` (asyncio, hand-rolled HTTP/1.1); alone "
        "it serves tens of thousands of req/s, so it is never the bottleneck.",
        "- Direct = the load tool against the upstream; router = the same load through "
        "`python -m router serve` configured with one OpenAI-compatible provider pointing "
        "at that upstream. Added p50 = router p50 - direct p50 at the same concurrency.",
        "- TLS rows: the same upstream serving HTTPS (`--tls`, a throwaway CA made with "
        "`trustme` per run); the router's provider has `base_url = "
        '"https://localhost:PORT/v1"` and trusts the CA through `tls = { ca_file = ... }`. '
        "HTTP/2 rows: `tests/bench/upstream_h2.py` "
        "(the `h2` library on asyncio, TLS with ALPN h2, 100 concurrent streams per "
        "connection, the same answers) and `pool = { http2 = true }`; measured through the "
        "router only.",
        "- Held streams, overload, cold start and soak: `tests/bench/loadgen.py` too, "
        "counting apart connection errors (refused, reset, timed out), streams that ended "
        "without `data: [DONE]` (incomplete: never a success), 503 answers (the daemon's "
        "overload refusal, a correct answer) and other statuses; each section says how its "
        "clients behave.",
        "- Router RSS: VmRSS from `/proc/PID/status` sampled every 20 ms during each run "
        "(peak shown), and VmHWM at the end; router CPU: its user + system time over the "
        "run's wall time (1.0 = its core busy). Start: spawn to first 200 on `/healthz`.",
        GROUPS_TEXT + f" This run: {', '.join(run.groups) or 'base'}.",
    ]
    if cpu_peak is not None:
        warn = (
            " (**saturated: stream numbers may be the generator's limit**)"
            if cpu_peak > 0.9
            else ""
        )
        lines.append(f"- The Python load generator used at most {cpu_peak:.0%} of its core{warn}.")
    for proto, name in (("https", "HTTPS"), ("h2", "HTTP/2")):
        peak = max(
            (
                p.router.get("upstream_cpu") or 0.0
                for p in run.points
                if p.router and p.scenario.upstream.proto == proto
            ),
            default=None,
        )
        if peak is not None:
            lines.append(
                f"- The {name} fake upstream used at most {peak:.0%} of the load core while "
                "the router was loaded" + (" (**it may be the limit**)." if peak > 0.6 else ".")
            )
    return "\n".join(lines) + "\n"


def _targets(run: Run) -> str:
    if run.direct_only:
        return "## Targets\n\nNot evaluated: `--direct-only` run (no router).\n"
    return "## Targets\n\n" + target_rows(targets(run))


def _by_scenario(points: list[Point]) -> list[list[Point]]:
    """Group points by scenario, keeping order."""
    groups: dict[object, list[Point]] = {}
    for p in points:
        groups.setdefault(p.scenario, []).append(p)
    return list(groups.values())


def _scenario_table(run: Run, points: list[Point]) -> str:
    sc = points[0].scenario
    head = [
        "c",
        "direct req/s",
        "router req/s",
        "direct p50 / p99 ms",
        "router p50 / p99 ms",
        "added p50 ms",
    ]
    if sc.stream:
        head += ["direct TTFB p50 / p99 ms", "router TTFB p50 / p99 ms"]
    head += ["router peak RSS MB", "errors direct / router"]
    rows = [_row(p) if p.error is None else _failed_row(p, len(head)) for p in points]
    text = f"### {sc.title}\n\n"
    if sc.upstream.proto == "h2":
        text += (
            "Through the router only: the load tools speak HTTP/1.1, so there is no "
            "direct column.\n\n"
        )
    if sc.floor_s() > 0:
        text += (
            f"Each request takes at least {sc.floor_s() * 1000:g} ms upstream, so req/s ≤ "
            f"c x {1 / sc.floor_s():.3g} (Little's law).\n\n"
        )
    text += "| " + " | ".join(head) + " |\n|" + " --- |" * len(head) + "\n"
    return text + "\n".join(rows) + "\n"


def _row(p: Point) -> str:
    d, r = p.direct, p.router
    cells = [
        str(p.concurrency),
        fmt_rate(_rps(d)),
        fmt_rate(_rps(r)),
        _pair(d, "p50_ms", "p99_ms"),
        _pair(r, "p50_ms", "p99_ms"),
        fmt_ms(p.added_p50_ms),
    ]
    if p.scenario.stream:
        cells += [_pair(d, "ttfb_p50_ms", "ttfb_p99_ms"), _pair(r, "ttfb_p50_ms", "ttfb_p99_ms")]
    errors = f"{d['errors'] if d else '-'} / {r['errors'] if r else '-'}"
    cells += [fmt_mb(r["rss_peak_mb"] if r else None), errors]
    return "| " + " | ".join(cells) + " |"


def _failed_row(p: Point, width: int) -> str:
    """A row for a point the router could not be measured at."""
    cells = [str(p.concurrency), f"**failed**: {p.error}"] + ["-"] * (width - 2)
    return "| " + " | ".join(cells) + " |"


def _starts(run: Run) -> str:
    if not run.starts:
        return "## Router start\n\nNot measured (`--direct-only`).\n"
    rows = "\n".join(
        f"| {s.upstream} | {s.start_s:.3f} | {fmt_mb(s.idle_rss_mb)} | {fmt_mb(s.hwm_mb)} |"
        for s in run.starts
    )
    return (
        "## Router start\n\n| router for upstream | spawn → /healthz 200 (s) | idle RSS MB | "
        f"VmHWM at end MB |\n| --- | --- | --- | --- |\n{rows}\n"
    )


def extract_notes(text: str) -> str | None:
    """Return what follows the ``## Notes`` heading of an existing report, if any."""
    m = re.search(rf"^{re.escape(NOTES_HEADING)}[ \t]*$", text, re.M)
    if not m:
        return None
    notes = text[m.end() :].strip("\n")
    return notes or None


def summary_line(p: Point) -> str:
    """One compact stdout line for a point."""
    sc = p.scenario
    kind = "stream" if sc.stream else "plain "
    text = f"{sc.upstream.name:4} {kind} c={p.concurrency:<3}"
    if p.error:
        return f"{text} failed: {p.error}"
    text += f" direct {fmt_rate(_rps(p.direct)):>7}/s p50 {fmt_ms(_p50(p.direct)):>6} ms"
    if p.router:
        text += f" | router {fmt_rate(_rps(p.router)):>6}/s p50 {fmt_ms(_p50(p.router)):>6} ms"
        text += f" (+{fmt_ms(p.added_p50_ms)}) rss {fmt_mb(p.router['rss_peak_mb'])} MB"
        if sc.stream:
            text += f" ttfb p50 {fmt_ms(p.router['ttfb_p50_ms'])} ms"
    return text


def _p50(result: Result | None) -> float | None:
    return None if not result else result["p50_ms"]


def summary(run: Run) -> str:
    """The stdout summary printed at the end."""
    lines = ["--- summary ---", *(summary_line(p) for p in run.points)]
    lines += [f"router start ({s.upstream}): {s.start_s:.3f} s" for s in run.starts]
    if not run.direct_only:
        lines += [
            f"{verdict(t.ok).strip('*'):8} {t.name}: {t.measured} ({t.goal})" for t in targets(run)
        ]
    return "\n".join(lines)
