"""The benchmark's Markdown report, its targets, and its stdout summary."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _model import Point, Result, Run

NOTES_HEADING = "## Notes"
NOTES_PLACEHOLDER = (
    "_Hand-written history (what changed, what the numbers meant). The report writer keeps "
    "everything from this heading to the end of the file._\n"
)


@dataclass(frozen=True)
class Target:
    """One target from the issue, with the measured value and whether it is met."""

    name: str
    goal: str
    measured: str
    ok: bool | None  # None: not measured


def fmt_rate(value: float | None) -> str:
    """Format req/s."""
    return "-" if value is None else f"{value:,.0f}"


def fmt_ms(value: float | None) -> str:
    """Format milliseconds with sensible precision."""
    if value is None:
        return "-"
    return f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"


def fmt_mb(value: float | None) -> str:
    """Format MB."""
    return "-" if value is None else f"{value:.1f}"


def _pair(result: Result | None, a: str, b: str) -> str:
    """Format two millisecond fields as ``a / b``."""
    if not result:
        return "-"
    return f"{fmt_ms(result[a])} / {fmt_ms(result[b])}"


def _rps(result: Result | None) -> float | None:
    return None if not result else float(result["rps"])


def targets(run: Run) -> list[Target]:
    """Evaluate the issue's targets against the router's numbers."""
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


def _verdict(ok: bool | None) -> str:
    return "n/a" if ok is None else ("pass" if ok else "**FAIL**")


def render(run: Run, notes: str | None) -> str:
    """Return the whole Markdown report."""
    parts = [_header(run), _machine(run), _method(run), _targets(run), _ceiling(run)]
    parts += [_scenario_table(run, points) for points in _by_scenario(run.points)]
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
        "(asyncio, raw sockets), which also measures TTFB = time from sending the request "
        "to the first complete SSE chunk.",
        "- The upstream is `tests/bench/upstream.py` (asyncio, hand-rolled HTTP/1.1); alone "
        "it serves tens of thousands of req/s, so it is never the bottleneck.",
        "- Direct = the load tool against the upstream; router = the same load through "
        "`python -m router serve` configured with one OpenAI-compatible provider pointing "
        "at that upstream. Added p50 = router p50 - direct p50 at the same concurrency.",
        "- Router RSS: VmRSS from `/proc/PID/status` sampled every 20 ms during each run "
        "(peak shown), and VmHWM at the end. Start: spawn to first 200 on `/healthz`.",
    ]
    if cpu_peak is not None:
        warn = (
            " (**saturated: stream numbers may be the generator's limit**)"
            if cpu_peak > 0.9
            else ""
        )
        lines.append(f"- The Python load generator used at most {cpu_peak:.0%} of its core{warn}.")
    return "\n".join(lines) + "\n"


def _targets(run: Run) -> str:
    if run.direct_only:
        return "## Targets\n\nNot evaluated: `--direct-only` run (no router).\n"
    rows = "\n".join(
        f"| {t.name} | {t.goal} | {t.measured} | {_verdict(t.ok)} |" for t in targets(run)
    )
    return (
        f"## Targets\n\n| target | goal | measured | result |\n| --- | --- | --- | --- |\n{rows}\n"
    )


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
    rows = [_row(p) for p in points]
    text = f"### {sc.title}\n\n"
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
            f"{_verdict(t.ok).strip('*'):8} {t.name}: {t.measured} ({t.goal})" for t in targets(run)
        ]
    return "\n".join(lines)
