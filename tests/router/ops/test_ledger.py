"""The ledger's writer on trio's MockClock: the first row is written at once, the rest in
one batch per ``flush_every``; a stuck disk drops rows past the bound (counted, logged
once) and never blocks :meth:`Ledger.record`; a failed write keeps its rows; the last
rows are written when the writer is cancelled; a switch sends each row to one file.

The SQLite calls run inline (``offload``), so the virtual clock stands still while they
run and every time asserted is exact.
"""

from __future__ import annotations

import logging
import sqlite3
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing
from prometheus_client import CollectorRegistry, generate_latest

from router.ops._ledger import Ledger
from router.ops._usage_db import COLUMNS, UsageDbError

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path


async def inline(fn: Callable[..., Any], *args: Any) -> Any:
    return fn(*args)


def row(n: int) -> tuple[object, ...]:
    values: dict[str, object] = dict.fromkeys(COLUMNS)
    values.update(
        ts=1_800_000_000.0 + n, request_id=f"r{n}", endpoint="chat", status=200, latency_ms=1.0
    )
    values.update(attempts=1, resumes=0)
    return tuple(values[c] for c in COLUMNS)


def ids(db: Path) -> list[str]:
    connection = sqlite3.connect(db)
    try:
        return [r for (r,) in connection.execute("SELECT request_id FROM requests ORDER BY id")]
    finally:
        connection.close()


async def test_the_first_row_goes_at_once_the_next_together_after_the_pause(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    db = tmp_path / "usage.db"
    ledger = Ledger(str(db), flush_every=1.0, offload=inline)
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.run)
        ledger.record(row(0))
        await trio.testing.wait_all_tasks_blocked()
        assert ids(db) == ["r0"]  # a quiet ledger writes at once
        await trio.sleep(0.25)
        ledger.record(row(1))
        await trio.sleep(0.25)
        ledger.record(row(2))
        await trio.sleep(0.49)
        assert trio.current_time() == pytest.approx(0.99)
        assert ids(db) == ["r0"]  # the rest wait out the pause ...
        assert ledger.pending == 2
        await trio.sleep(0.01)
        await trio.testing.wait_all_tasks_blocked()
        assert ids(db) == ["r0", "r1", "r2"]  # ... and go in one batch at 1.0
        assert ledger.written == 3
        ledger.record(row(3))
        nursery.cancel_scope.cancel()
    assert ids(db) == ["r0", "r1", "r2", "r3"]  # written on the way out


async def test_a_stuck_disk_drops_rows_past_the_bound_and_never_blocks(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "usage.db"
    disk = trio.Event()

    async def stuck(fn: Callable[..., Any], *args: Any) -> Any:
        await disk.wait()  # a write that takes as long as the test says
        return fn(*args)

    ledger = Ledger(str(db), flush_every=1.0, max_rows=3, offload=stuck)
    registry = CollectorRegistry()
    registry.register(ledger.collector())
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.run)
        for n in range(6):
            ledger.record(row(n))  # returns at once whatever the disk does
            await trio.sleep(0.5)
        assert trio.current_time() == 3.0
        assert ledger.pending == 3  # one batch being written and those queued behind it
        assert ledger.dropped == 3
        drops = [r for r in caplog.records if "dropped" in r.getMessage()]
        assert len(drops) == 1  # logged once per run of drops
        metrics = generate_latest(registry).decode()
        assert "llm_router_usage_rows_dropped_total 3.0" in metrics
        assert "llm_router_usage_rows_pending 3.0" in metrics
        disk.set()
        await trio.sleep(2)
        assert ids(db) == ["r0", "r1", "r2"]
        assert ledger.pending == 0
        nursery.cancel_scope.cancel()


async def test_a_failed_write_keeps_its_rows_for_the_next(
    tmp_path: Path, autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "usage.db"
    failures = [sqlite3.OperationalError("database is locked")] * 2

    async def flaky(fn: Callable[..., Any], *args: Any) -> Any:
        if fn.__name__ == "insert" and failures:
            raise failures.pop()
        return fn(*args)

    ledger = Ledger(str(db), flush_every=1.0, offload=flaky)
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.run)
        ledger.record(row(0))
        await trio.sleep(0.5)
        ledger.record(row(1))
        await trio.sleep(1.0)
        assert ids(db) == []
        assert ledger.failures == 2
        assert ledger.pending == 2
        await trio.sleep(1.0)
        assert ids(db) == ["r0", "r1"]  # in their order, once the file takes them
        nursery.cancel_scope.cancel()
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # logged once per run of failures
    assert "database is locked" in errors[0].getMessage()


async def test_a_switch_sends_each_row_to_one_file(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    ledger = Ledger(str(old), flush_every=1.0, offload=inline)
    async with trio.open_nursery() as nursery:
        await nursery.start(ledger.run)
        ledger.record(row(0))
        await trio.sleep(0.1)
        ledger.record(row(1))  # waits out the pause ...
        await ledger.switch(str(new))  # ... but belongs to the old file
        ledger.record(row(2))
        with pytest.raises(UsageDbError, match="does not exist"):
            await ledger.switch(str(tmp_path / "missing" / "x.db"))
        ledger.record(row(3))  # a refused switch changed nothing
        await ledger.switch(None)
        ledger.record(row(4))  # no file: nothing recorded
        assert not ledger.enabled
        nursery.cancel_scope.cancel()
    assert ids(old) == ["r0", "r1"]
    assert ids(new) == ["r2", "r3"]
