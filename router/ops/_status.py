"""``llm-router status``: a running daemon's ``/admin/status``, for a person."""

from __future__ import annotations

import sys
from typing import Any

import httpx2
import orjson

__all__ = ["render_status", "show_status"]


def show_status(url: str, admin_key: str | None = None, *, as_json: bool = False) -> int:
    """Print the daemon's state; 0 if it answered and is ready, 1 otherwise."""
    headers = {"x-admin-key": admin_key} if admin_key else {}
    try:
        response = httpx2.get(
            f"{url.rstrip('/')}/admin/status", headers=headers, timeout=5.0, trust_env=False
        )
    except httpx2.HTTPError as exc:
        print(f"llm-router status: cannot reach {url}: {exc}", file=sys.stderr)
        return 1
    if response.status_code != 200:
        print(f"llm-router status: {url} answered HTTP {response.status_code}", file=sys.stderr)
        return 1
    state = response.json()
    if as_json:
        print(orjson.dumps(state, option=orjson.OPT_INDENT_2).decode())
    else:
        print(render_status(state))
    return 0 if state.get("ready") else 1


def render_status(state: dict[str, Any]) -> str:
    rules = state.get("rules", {})
    lines = [
        f"rules    {rules.get('digest', '?')[:12]}  loaded {rules.get('loaded_at', '?')}  "
        f"routes: {', '.join(rules.get('routes', []))}",
        f"ready    {'yes' if state.get('ready') else 'NO: every target is behind an open circuit'}",
    ]
    reload = state.get("reload")
    if reload:
        counts = reload.get("counts", {})
        lines.append(
            f"reloads  {counts.get('success', 0)} ok, {counts.get('failure', 0)} refused, "
            f"{counts.get('unchanged', 0)} unchanged; last {reload.get('last_attempt') or 'never'}"
        )
        for error in reload.get("last_errors", []):
            lines.append(f"  refused: {error}")
        if reload.get("restart_needed"):
            lines.append(f"  restart needed for: {', '.join(reload['restart_needed'])}")
    worker = state.get("worker")
    if worker:
        lines.append(
            f"worker   {worker.get('index')} of {worker.get('of')} (pid {worker.get('pid')}):"
            " this worker's state; each worker keeps its own"
        )
    budget = state.get("hedge_budget")
    if budget:
        lines.append(
            f"hedges   {budget.get('tokens', 0):.1f} of {budget.get('burst', 0):g} in hand"
        )
    overload = state.get("overload")
    if overload:
        lines.append(_overload_line(overload))
    usage = state.get("usage")
    if usage:
        lines.append(_usage_line(usage))
    shared = state.get("shared_state")
    if shared:
        why = f" ({shared['reason']})" if shared.get("reason") else ""
        lines.append(
            f"shared   {shared.get('url')}: {shared.get('state')} since {shared.get('since')}{why}"
        )
    lines.append("")
    header = ("target", "circuit", "in flight", "ok", "failed", "latency", "p90", "last error")
    rows = [header]
    for name, target in {**state.get("targets", {}), **state.get("routes", {})}.items():
        rows.append(
            (
                name,
                str(target.get("state", "-")),
                str(target.get("in_flight", 0)),
                str(target.get("successes", 0)),
                str(target.get("failures", 0)),
                _ms(target.get("latency_estimate")),
                _ms(target.get("latency_p90")),
                (target.get("last_error") or "")[:60],
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    for row in rows:
        lines.append(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )
    for provider, dynamic in state.get("dynamic_targets", {}).items():
        lines.append(
            f"{provider}: {dynamic.get('kept', 0)} more target(s) asked for directly "
            f"(kept up to {dynamic.get('limit', '?')}, {dynamic.get('dropped', 0)} forgotten); "
            f"recent: {', '.join(dynamic.get('recent', {})) or '-'}"
        )
    return "\n".join(lines)


def _overload_line(overload: dict[str, Any]) -> str:
    """Connections, requests in flight and loop lag against their limits; refusals."""

    def of(value: object, limit: object) -> str:
        return f"{value}/{limit}" if limit else f"{value}"

    refused = overload.get("refused", {})
    shed = ", ".join(f"{n} {reason}" for reason, n in refused.items() if n) or "none"
    return (
        f"load     connections {of(overload.get('connections', 0), overload.get('max_connections'))}"
        f", in flight {of(overload.get('in_flight', 0), overload.get('max_in_flight'))}"
        f", loop lag {overload.get('loop_lag_ms', 0):g} ms"
        f", queue wait {overload.get('queue_delay_ms', 0):g} ms"
        f" (limit {overload.get('overload_lag_ms', 0):g} ms)"
        f"{', overloaded' if overload.get('overloaded') else ''}; refused: {shed}"
    )


def _usage_line(usage: dict[str, Any]) -> str:
    """The ledger's figures for today and the last 24 hours, or why there are none."""
    spans = []
    for name, label in (("today", "today"), ("last_24h", "last 24h")):
        figures = usage.get(name)
        if figures:
            spans.append(
                f"{label} {figures.get('requests', 0)} requests "
                f"({figures.get('errors', 0)} errors), ${figures.get('cost_usd', 0):.4f}"
            )
    if usage.get("error"):
        spans.append(str(usage["error"]))
    if usage.get("rows_dropped"):
        spans.append(f"{usage['rows_dropped']} rows dropped")
    return f"usage    {'; '.join(spans) or '-'}"


def _ms(seconds: object) -> str:
    return f"{float(seconds) * 1000:.0f} ms" if isinstance(seconds, int | float) else "-"
