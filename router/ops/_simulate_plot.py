"""``simulate --plot``: the latency CDFs of every route, as one self-contained SVG.

Written by hand (no plotting library): a log-scaled time axis, since a latency tail
spans decades, and one line per route and config, the second config's dashed. Each
line has at most :data:`POINTS` points, whatever the number of requests.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING
from xml.sax.saxutils import escape

from ._simulate_report import quantile

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._simulate_report import Run

__all__ = ["POINTS", "render_svg"]

POINTS = 200
_W, _H = 760, 440
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 200, 20, 50
_COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b")


def render_svg(runs: Sequence[Run], title: str = "Latency CDF") -> str:
    """The CDFs of the answered requests' latencies, per route and config."""
    lines: list[tuple[str, int, bool, list[float]]] = []  # label, colour, dashed, sorted
    routes = list(dict.fromkeys(r for run in runs for r in run.routes))
    for k, run in enumerate(runs):
        for route in routes:
            values = sorted(s.latency for s in run.samples if s.route == route and s.ok)
            if values:
                label = route if len(runs) == 1 else f"{route} ({run.label})"
                lines.append((label, routes.index(route), k > 0, values))
    everything = [v for *_, values in lines for v in (values[0], values[-1])]
    low = max(1e-4, min(everything, default=0.01))
    high = max(everything, default=1.0)
    lo, hi = math.floor(math.log10(low)), math.ceil(math.log10(high))
    hi = max(hi, lo + 1)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def x(seconds: float) -> float:
        return _LEFT + (math.log10(max(seconds, low)) - lo) / (hi - lo) * plot_w

    def y(share: float) -> float:
        return _TOP + (1 - share) * plot_h

    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H}" '
        f'viewBox="0 0 {_W} {_H}" font-family="sans-serif" font-size="12">',
        f"<title>{escape(title)}</title>",
        f'<rect width="{_W}" height="{_H}" fill="white"/>',
    ]
    for decade in range(lo, hi + 1):
        px = x(10.0**decade)
        out.append(
            f'<line x1="{px:.1f}" y1="{_TOP}" x2="{px:.1f}" y2="{_TOP + plot_h}" stroke="#ddd"/>'
        )
        out.append(
            f'<text x="{px:.1f}" y="{_TOP + plot_h + 16}" text-anchor="middle">'
            f"{_tick(10.0**decade)}</text>"
        )
    for share in (0.0, 0.25, 0.5, 0.75, 0.9, 1.0):
        py = y(share)
        out.append(
            f'<line x1="{_LEFT}" y1="{py:.1f}" x2="{_LEFT + plot_w}" y2="{py:.1f}" stroke="#eee"/>'
        )
        out.append(f'<text x="{_LEFT - 6}" y="{py + 4:.1f}" text-anchor="end">{share:g}</text>')
    out.append(
        f'<rect x="{_LEFT}" y="{_TOP}" width="{plot_w}" height="{plot_h}" '
        'fill="none" stroke="#888"/>'
    )
    out.append(
        f'<text x="{_LEFT + plot_w / 2}" y="{_H - 12}" text-anchor="middle">'
        "latency (log scale)</text>"
    )
    for i, (label, colour, dashed, values) in enumerate(lines):
        n = len(values)
        picks = sorted({min(n - 1, round(j * (n - 1) / (POINTS - 1))) for j in range(POINTS)})
        points = " ".join(f"{x(values[j]):.1f},{y((j + 1) / n):.1f}" for j in picks)
        stroke = _COLOURS[colour % len(_COLOURS)]
        dash = ' stroke-dasharray="6 4"' if dashed else ""
        out.append(
            f'<polyline fill="none" stroke="{stroke}" stroke-width="1.5"{dash} points="{points}">'
            f"<title>{escape(label)}: p50 {_tick(quantile(values, 0.5))}, "
            f"p99 {_tick(quantile(values, 0.99))}</title></polyline>"
        )
        ly = _TOP + 10 + i * 18
        lx = _LEFT + plot_w + 12
        out.append(
            f'<line x1="{lx}" y1="{ly}" x2="{lx + 24}" y2="{ly}" stroke="{stroke}" '
            f'stroke-width="2"{dash}/>'
        )
        out.append(f'<text x="{lx + 30}" y="{ly + 4}">{escape(label)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _tick(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.3g}ms"
    return f"{seconds:.3g}s"
