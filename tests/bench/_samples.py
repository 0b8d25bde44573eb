"""What a load run measured, raw, and its summary.

Raw samples (lists of times, counters) merge across load processes by concatenation, so
several ``loadgen.py`` processes give one result with true percentiles; the summary is
computed once, from the merged samples.

An *attempt* is one request, from its start (the connect for the first request on a
new connection, else the moment it is sent) to its end. It is *told* when the client
first learns its fate: the first body bytes of a 200 (for a stream: its first event) or
the head of a 503. Everything is recorded when it happens, if that is inside the
measured window; an attempt still open when the run ends is *cut* (neither a success
nor an error) and, if it had been waiting 100 ms or more, counts as not told in time.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

TOLD_WITHIN_S = 0.1
#: The counted failures, each its own field: what a load tool can tell apart.
FAILURES = ("connect_errors", "read_errors", "timeouts", "incomplete", "other_status")


@dataclass
class Samples:
    """One run's raw measurements (seconds)."""

    ok: list[float] = field(default_factory=list)  # whole answers, attempt start to end
    firsts: list[float] = field(default_factory=list)  # first body bytes of 200 answers
    refused: list[float] = field(default_factory=list)  # 503 answers, start to head
    told: list[float] = field(default_factory=list)  # start to first bytes or 503
    untold: int = 0  # attempts that ended (or were cut) untold after >= 100 ms
    connect_errors: int = 0  # refused, reset or timed out while connecting (TLS included)
    read_errors: int = 0  # the connection closed or reset before the answer was whole
    timeouts: int = 0  # no whole answer within the client timeout
    incomplete: int = 0  # a 200 stream that ended without its ``data: [DONE]``
    other_status: int = 0  # any status but 200 and 503
    statuses: dict[str, int] = field(default_factory=dict)  # every non-200 answer, by status
    cut: int = 0  # open when the run ended
    cpu_s: float = 0.0  # the load processes' CPU time
    wall_s: float = 0.0  # the longest load process's wall time
    elapsed_s: float = 0.0  # first attempt start to last attempt end (burst runs)

    def to_json(self) -> dict[str, Any]:
        """Plain data for a JSON line."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Samples:
        """Inverse of :meth:`to_json`."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def merge(parts: list[Samples]) -> Samples:
    """Samples of load processes that ran side by side, as one."""
    out = Samples()
    for p in parts:
        out.ok += p.ok
        out.firsts += p.firsts
        out.refused += p.refused
        out.told += p.told
        for name in ("untold", *FAILURES, "cut"):
            setattr(out, name, getattr(out, name) + getattr(p, name))
        for status, n in p.statuses.items():
            out.statuses[status] = out.statuses.get(status, 0) + n
        out.cpu_s += p.cpu_s
        out.wall_s = max(out.wall_s, p.wall_s)
        out.elapsed_s = max(out.elapsed_s, p.elapsed_s)
    return out


def percentile_ms(values: list[float], q: float) -> float | None:
    """Return the ``q`` quantile of ``values`` (seconds) in milliseconds, or None."""
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000.0


def told_share(s: Samples) -> float | None:
    """Share of attempts told (first bytes or a 503) within 100 ms of their start."""
    total = len(s.told) + s.untold
    if not total:
        return None
    return sum(1 for t in s.told if t <= TOLD_WITHIN_S) / total


def summarise(s: Samples, connections: int, duration: float) -> dict[str, Any]:
    """The result dict of a run measured over ``duration`` seconds.

    ``errors`` counts every attempt that was not a whole 200 (503s included);
    ``status_503`` and the failure kinds are also given one by one.
    """
    failures = {name: getattr(s, name) for name in FAILURES}
    attempts = len(s.ok) + len(s.refused) + sum(failures.values())
    return {
        "tool": "loadgen",
        "connections": connections,
        "requests": len(s.ok),
        "errors": attempts - len(s.ok),
        "duration_s": duration,
        "rps": len(s.ok) / duration if duration > 0 else 0.0,
        "p50_ms": percentile_ms(s.ok, 0.50),
        "p99_ms": percentile_ms(s.ok, 0.99),
        "max_ms": percentile_ms(s.ok, 1.0),
        "ttfb_p50_ms": percentile_ms(s.firsts, 0.50),
        "ttfb_p99_ms": percentile_ms(s.firsts, 0.99),
        "ttfb_max_ms": percentile_ms(s.firsts, 1.0),
        "status_503": len(s.refused),
        "p50_503_ms": percentile_ms(s.refused, 0.50),
        "p99_503_ms": percentile_ms(s.refused, 0.99),
        **failures,
        "statuses": dict(sorted(s.statuses.items())),
        "attempts": attempts,
        "cut": s.cut,
        "told_100ms": told_share(s),
        "elapsed_s": s.elapsed_s,
        "client_cpu": s.cpu_s / s.wall_s if s.wall_s > 0 else None,
    }
