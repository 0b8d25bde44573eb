"""What ``llm-router simulate`` prints: per route figures, as a table or as JSON.

Latency is the time to a whole answer (a stream's last token) of the requests that got
one; TTFT is the time to a stream's first token. A failed request counts in the error
ratio, not in the latencies. Cost is the priced usage of the answers, per 1000
requests (None when no target on the route has a price).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

import attrs

from ._simulate import Sample

__all__ = ["RouteFigures", "Run", "figures", "quantile", "render_json", "render_table"]


@attrs.frozen
class RouteFigures:
    """One route's figures over a run."""

    requests: int
    errors: float  # the share of requests that failed
    latency: tuple[float, float, float] | None  # p50, p95, p99 of the answered
    ttft: tuple[float, float, float] | None  # the same for streams
    attempts: float  # per request
    hedges: int
    retries: int
    resumes: int
    cost_per_1k: float | None


@attrs.frozen
class Run:
    """One config's run: its label (the file) and its routes' figures."""

    label: str
    routes: dict[str, RouteFigures]
    samples: Sequence[Sample] = attrs.field(eq=False, repr=False)


def quantile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile of sorted values (nearest rank, as latency SLOs count)."""
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def _three(values: list[float]) -> tuple[float, float, float] | None:
    if not values:
        return None
    values.sort()
    return (quantile(values, 0.5), quantile(values, 0.95), quantile(values, 0.99))


def figures(samples: Sequence[Sample], order: Sequence[str] = ()) -> dict[str, RouteFigures]:
    """Each route's figures: the routes of ``order`` first, in that order."""
    by_route: dict[str, list[Sample]] = {r: [] for r in order}
    for s in samples:
        by_route.setdefault(s.route, []).append(s)
    out = {}
    for route, group in by_route.items():
        n = len(group)
        if n == 0:
            continue
        costs = [s.cost for s in group if s.cost is not None]
        out[route] = RouteFigures(
            requests=n,
            errors=sum(not s.ok for s in group) / n,
            latency=_three([s.latency for s in group if s.ok]),
            ttft=_three([s.ttft for s in group if s.ok and s.ttft is not None]),
            attempts=sum(s.attempts for s in group) / n,
            hedges=sum(s.hedges for s in group),
            retries=sum(s.retries for s in group),
            resumes=sum(s.resumes for s in group),
            cost_per_1k=sum(costs) / n * 1000 if costs else None,
        )
    return out


_HEADER = (
    "route",
    "config",
    "requests",
    "errors",
    "p50",
    "p95",
    "p99",
    "ttft p50",
    "ttft p95",
    "ttft p99",
    "attempts",
    "hedges",
    "retries",
    "resumes",
    "$/1k req",
)


def render_table(runs: Sequence[Run]) -> str:
    """One row per route and config; with two configs, a route's rows are together."""
    rows = [list(_HEADER)]
    names = list(dict.fromkeys(r for run in runs for r in run.routes))
    for name in sorted(names, key=names.index):
        for i, run in enumerate(runs):
            f = run.routes.get(name)
            label = name if i == 0 else ""
            if f is None:
                rows.append([label, run.label, "0", *["-"] * (len(_HEADER) - 3)])
                continue
            rows.append(
                [
                    label,
                    run.label,
                    str(f.requests),
                    f"{f.errors:.2%}",
                    *_times(f.latency),
                    *_times(f.ttft),
                    f"{f.attempts:.2f}",
                    str(f.hedges),
                    str(f.retries),
                    str(f.resumes),
                    "-" if f.cost_per_1k is None else f"{f.cost_per_1k:.4f}",
                ]
            )
    if len(runs) == 1:  # one config: its column says nothing
        rows = [row[:1] + row[2:] for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=False)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _times(three: tuple[float, float, float] | None) -> list[str]:
    if three is None:
        return ["-", "-", "-"]
    return [_duration(t) for t in three]


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f}ms"
    return f"{seconds:.2f}s"


def render_json(runs: Sequence[Run], header: dict[str, Any]) -> str:
    """The figures for machines: seconds as numbers, one object per config."""

    def route(f: RouteFigures) -> dict[str, Any]:
        data = attrs.asdict(f)
        for key in ("latency", "ttft"):
            three = data.pop(key)
            names = ("p50", "p95", "p99")
            data[key] = None if three is None else dict(zip(names, three, strict=False))
        return data

    body = {
        **header,
        "configs": [
            {"config": run.label, "routes": {n: route(f) for n, f in run.routes.items()}}
            for run in runs
        ],
    }
    return json.dumps(body, indent=2)
