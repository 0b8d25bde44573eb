"""``llm-router usage``: the usage ledger's figures, for a person or as JSON.

``llm-router usage --config router.toml --since 7d --by key --by model`` answers "who
spent what, on which model, last week": one line per key and model with requests,
errors, tokens, cost and the median latency, then the total. It reads the file the
config names (``server.usage_db``), read-only, while the daemon writes it.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import orjson

from adapters import provider_kinds
from rules import ConfigError, load_config

from ._usage_db import open_reader
from ._usage_report import GROUPS, figures, parse_when

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

__all__ = ["add_usage_command", "render_usage", "show_usage"]

_HEADER = ("requests", "errors", "tokens in", "tokens out", "cached", "cost USD", "p50 ms")
_FIELDS = ("requests", "errors", "tokens_in", "tokens_out", "tokens_cached", "cost_usd")


def add_usage_command(commands: Any) -> None:
    """The ``usage`` subcommand and its options."""
    usage = commands.add_parser("usage", help="requests, tokens and spend from server.usage_db")
    usage.add_argument("--config", default="router.toml", help="default: ./router.toml")
    usage.add_argument(
        "--since", help="from: 2026-12-01, 2026-12-01T08:00, today, or back from now: 7d, 24h"
    )
    usage.add_argument("--until", help="up to (not including), in the same forms")
    usage.add_argument(
        "--by",
        action="append",
        choices=list(GROUPS),
        default=[],
        help="group by this (repeat for several: --by key --by model)",
    )
    usage.add_argument("--json", action="store_true", help="JSON instead of a table")


def show_usage(args: argparse.Namespace) -> int:
    """Print the figures ``args`` ask for; 1 (with the reason) when they cannot be had."""
    by: Sequence[str] = list(dict.fromkeys(args.by))  # a name given twice groups once
    now = time.time()
    try:
        since = parse_when(args.since, now) if args.since else None
        until = parse_when(args.until, now) if args.until else None
    except ValueError as exc:
        print(f"llm-router usage: {exc}", file=sys.stderr)
        return 2
    try:
        path = load_config(args.config, kinds=provider_kinds()).server.usage_db
        if path is None:
            raise ConfigError(f"{args.config}: server.usage_db is not set: nothing is recorded")
        connection = open_reader(path)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    try:
        groups = figures(connection, by, since, until)
        total = figures(connection, (), since, until)[0]
    finally:
        connection.close()
    if args.json:
        report = {
            "since": _iso(since),
            "until": _iso(until),
            "by": list(by),
            "groups": groups,
            "total": total,
        }
        print(orjson.dumps(report, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_usage(by, groups, total, since, until))
    return 0


def render_usage(
    by: Sequence[str],
    groups: list[dict[str, Any]],
    total: dict[str, Any],
    since: float | None = None,
    until: float | None = None,
) -> str:
    """A table: one line per group, then the total."""
    span = f"from {_iso(since) or 'the first row'} to {_iso(until) or 'now'}"
    header = (*by, *_HEADER)
    rows = [header]
    for group in groups:
        rows.append((*(_name(group[name]) for name in by), *_cells(group)))
    if by:
        rows.append(("total", *([""] * (len(by) - 1)), *_cells(total)))
    else:
        rows.append(_cells(total))
    numeric = len(by)  # columns from here on are numbers: right-aligned
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = [span]
    for row in rows:
        cells = [
            cell.rjust(width) if i >= numeric else cell.ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _cells(values: dict[str, Any]) -> tuple[str, ...]:
    counts = [str(values[field]) for field in _FIELDS[:5]]
    p50 = values["p50_latency_ms"]
    return (
        *counts,
        f"{values['cost_usd']:.4f}",
        "-" if p50 is None else f"{p50:.0f}",
    )


def _name(value: object) -> str:
    return "-" if value is None else str(value)


def _iso(when: float | None) -> str | None:
    if when is None:
        return None
    return datetime.fromtimestamp(when, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
