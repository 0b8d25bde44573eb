"""What the daemon reads back from its usage ledger: the ``usage`` part of
``/admin/status``, and budgets' spend at start.

Both read in a worker thread, on a connection of their own (WAL: readers never wait
for the writer). The status figures cover today (UTC) and the last 24 hours, in total
and per client key; a disk too slow to answer within STATUS_WAIT seconds makes the
section say so instead of holding the status page.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import trio

from ._usage_db import open_reader
from ._usage_report import figures, parse_when, spend_in_periods

if TYPE_CHECKING:
    from ..traffic._budgets import Budgets
    from ._ledger import Ledger

__all__ = ["STATUS_WAIT", "recover_spend", "usage_status"]

log = logging.getLogger("llm_router")

#: Seconds ``/admin/status`` waits for the ledger's figures.
STATUS_WAIT = 2.0


async def usage_status(ledger: Ledger, now: float) -> dict[str, Any]:
    """``{"usage": ...}`` for ``/admin/status``, or nothing without a ledger."""
    path = ledger.path
    if path is None:
        return {}
    section: dict[str, Any] = {
        "path": path,
        "rows_written": ledger.written,
        "rows_pending": ledger.pending,
        "rows_dropped": ledger.dropped,
    }
    with trio.move_on_after(STATUS_WAIT):
        section.update(await trio.to_thread.run_sync(_figures, path, now, abandon_on_cancel=True))
        return {"usage": section}
    section["error"] = f"the ledger did not answer within {STATUS_WAIT:g}s"
    return {"usage": section}


def _figures(path: str, now: float) -> dict[str, Any]:
    try:
        connection = open_reader(path)
    except Exception as exc:  # UsageDbError: no row written yet, say
        return {"error": str(exc)}
    try:
        spans = {"today": parse_when("today", now), "last_24h": now - 86_400}
        found: dict[str, Any] = {}
        for name, since in spans.items():
            total = figures(connection, (), since)[0]
            keys = figures(connection, ("key",), since)
            total["by_key"] = {_key(k.pop("key")): k for k in keys}
            found[name] = total
        return found
    except Exception as exc:  # sqlite3.Error: a damaged file
        return {"error": f"the ledger cannot be read ({exc})"}
    finally:
        connection.close()


def _key(name: str | None) -> str:
    return "-" if name is None else name


async def recover_spend(path: str, budgets: Budgets) -> None:
    """Budgets' spend in their current day and month, from the ledger's rows: what was
    charged up to a SIGKILL is charged still (each key keeps the larger of the state
    file's count and the ledger's).

    Raises:
        UsageDbError: the file exists but cannot be read.
    """
    now, day_start, month_start = budgets.periods()

    def read() -> dict[str, tuple[float, float]]:
        connection = open_reader(path)
        try:
            return spend_in_periods(connection, day_start, month_start)
        finally:
            connection.close()

    spend = await trio.to_thread.run_sync(read)
    budgets.recover(spend, now)
    if spend:
        log.info("budgets: spend of %d key(s) this month recovered from %s", len(spend), path)
