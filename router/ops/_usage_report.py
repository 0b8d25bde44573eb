"""What the usage ledger says: figures per group over a time range, and budgets' spend.

Blocking SQL on a reader connection (:func:`~._usage_db.open_reader`); the ``usage``
command calls it directly, the daemon from a worker thread. Each group gets requests,
errors (status 400 and up, 499 included), tokens, cost and the median latency (the
nearest-rank p50, by a window function: no rows are fetched to compute it).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

__all__ = ["GROUPS", "figures", "parse_when", "spend_in_periods"]

#: What ``--by`` may name, and the SQL that groups by it.
GROUPS = {
    "key": "key",
    "route": "route",
    "target": "target",
    "model": "model",
    "endpoint": "endpoint",
    "day": "date(ts, 'unixepoch')",
}
_FIGURES = """
    COUNT(*),
    COALESCE(SUM(status >= 400), 0),
    COALESCE(SUM(tokens_in), 0),
    COALESCE(SUM(tokens_out), 0),
    COALESCE(SUM(tokens_cached), 0),
    COALESCE(SUM(tokens_reasoning), 0),
    COALESCE(SUM(cost_usd), 0.0)
"""
_NAMES = (
    "requests",
    "errors",
    "tokens_in",
    "tokens_out",
    "tokens_cached",
    "tokens_reasoning",
    "cost_usd",
)
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhdw])")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}


def figures(
    connection: sqlite3.Connection,
    by: Sequence[str] = (),
    since: float | None = None,
    until: float | None = None,
) -> list[dict[str, Any]]:
    """One dict per group (the ``by`` names, then the figures and ``p50_latency_ms``),
    sorted by group; without ``by``, one dict for every row in the range.

    Raises:
        KeyError: a name of ``by`` is not in GROUPS.
        sqlite3.Error: the file cannot be read.
    """
    groups = [f"{GROUPS[name]} AS g{i}" for i, name in enumerate(by)]
    names = [f"g{i}" for i in range(len(by))]
    where, params = _range(since, until)
    select = ", ".join([*groups, _FIGURES])
    group = f"GROUP BY {', '.join(names)} ORDER BY {', '.join(names)}" if names else ""
    rows = connection.execute(f"SELECT {select} FROM requests {where} {group}", params)
    results: dict[tuple[Any, ...], dict[str, Any]] = {}
    for row in rows:
        values = tuple(row[: len(by)])
        result = dict(zip(by, values, strict=True))
        result.update(zip(_NAMES, row[len(by) :], strict=True))
        result["cost_usd"] = round(result["cost_usd"], 8)
        result["p50_latency_ms"] = None
        results[values] = result
    exprs = [GROUPS[name] for name in by]
    for *values, p50 in connection.execute(_median(groups, exprs, where), params):
        if tuple(values) in results:
            results[tuple(values)]["p50_latency_ms"] = p50
    found = list(results.values())
    if not by and found and found[0]["requests"] == 0:
        found[0]["p50_latency_ms"] = None
    return found


def _median(groups: list[str], exprs: list[str], where: str) -> str:
    """Each group's nearest-rank median latency: the row ranked ceil(n / 2)."""
    partition = f"PARTITION BY {', '.join(exprs)}" if exprs else ""
    columns = ", ".join([*groups, "latency_ms"])
    names = [f"g{i}" for i in range(len(exprs))]
    return f"""
        SELECT {", ".join([*names, "latency_ms"])} FROM (
            SELECT {columns},
                ROW_NUMBER() OVER ({partition} ORDER BY latency_ms) AS n,
                COUNT(*) OVER ({partition}) AS c
            FROM requests {where}
        ) WHERE n = (c + 1) / 2
    """


def _range(since: float | None, until: float | None) -> tuple[str, list[float]]:
    clauses, params = [], []
    if since is not None:
        clauses.append("ts >= ?")
        params.append(since)
    if until is not None:
        clauses.append("ts < ?")
        params.append(until)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def spend_in_periods(
    connection: sqlite3.Connection, day_start: float, month_start: float
) -> dict[str, tuple[float, float]]:
    """USD each key spent since ``day_start`` and since ``month_start`` (the budget
    periods a restart must not forget)."""
    rows = connection.execute(
        """
        SELECT key, SUM(CASE WHEN ts >= ? THEN cost_usd ELSE 0 END), SUM(cost_usd)
        FROM requests WHERE ts >= ? AND key IS NOT NULL AND cost_usd > 0 GROUP BY key
        """,
        (day_start, month_start),
    )
    return {key: (float(day), float(month)) for key, day, month in rows}


def parse_when(text: str, now: float) -> float:
    """A point in time: ``today`` (UTC midnight), a duration back from ``now`` (``7d``,
    ``24h``, ``30m``, ``2w``), or an ISO date or date-time (UTC unless it says).

    Raises:
        ValueError: none of these.
    """
    text = text.strip()
    if text == "today":
        day = datetime.fromtimestamp(now, tz=UTC).date()
        return datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()
    if match := _DURATION.fullmatch(text):
        return now - float(match.group(1)) * _SECONDS[match.group(2)]
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not a date (2026-12-01, 2026-12-01T08:00), a duration back from "
            "now (7d, 24h, 30m, 2w) or 'today'"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()
