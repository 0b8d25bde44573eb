"""The usage ledger: one row per request in SQLite (``server.usage_db``), written in
batches by a task of its own, never on the request path.

A request's end costs one tuple appended to an in-memory queue (:meth:`Ledger.record`).
The writer task wakes on the first row, writes every queued row in one transaction in a
worker thread (``trio.to_thread.run_sync``), then pauses ``flush_every`` seconds so the
rows of busy seconds go together; so a SIGKILL loses at most the rows of the last pause.
The queue is bounded (``max_rows``, the batch being written included): a disk that is
slow or a file another process keeps locked never blocks a request and never grows
memory without bound. Rows past the bound are dropped, counted
(``llm_router_usage_rows_dropped_total``) and logged once per run of drops. A write that
fails keeps its rows at the head of the queue for the next try.

The daemon runs :meth:`Ledger.run` in its top nursery; it flushes a last time when
cancelled (SIGTERM's end). A reload flushes too (:meth:`Ledger.switch`), and a reload
that changes the path opens the new file first: rows recorded before the switch go to
the old file, rows after it to the new one, each row to exactly one.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import TYPE_CHECKING, Any, Protocol

import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from ._usage_db import insert, open_writer

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric

__all__ = ["FLUSH_EVERY", "MAX_ROWS", "Ledger", "Offload"]

log = logging.getLogger("llm_router")

#: Seconds between two writes (at most): about the rows a SIGKILL can lose.
FLUSH_EVERY = 1.0
#: Rows held in memory at most (queued and being written): some seconds at full load.
MAX_ROWS = 20_000
#: Seconds the last flush at exit may take before its rows are given up.
EXIT_FLUSH = 5.0

Row = tuple[object, ...]


class Offload(Protocol):
    """How blocking work runs: ``trio.to_thread.run_sync`` (tests run it inline)."""

    async def __call__(self, fn: Callable[..., Any], *args: Any) -> Any: ...


class Ledger:
    """Rows of finished requests, on their way to ``path``.

    Args:
        path: The SQLite file; None records nothing (until :meth:`switch` gives one).
        flush_every: Seconds between writes.
        max_rows: Rows held in memory at most; more are dropped and counted.
        offload: Runs the blocking SQLite calls (one worker thread at a time by default).
    """

    def __init__(
        self,
        path: str | None,
        *,
        flush_every: float = FLUSH_EVERY,
        max_rows: int = MAX_ROWS,
        offload: Offload | None = None,
    ) -> None:
        self.path = path
        self._flush_every = flush_every
        self._max_rows = max_rows
        self._offload = offload or self._in_thread
        self._limiter = trio.CapacityLimiter(1)  # writes are serial anyway
        self._rows: deque[Row] = deque()
        self._writing = 0  # rows of the batch being written now
        self._wake = trio.Event()
        self._lock = trio.Lock()  # one writer of the connection at a time
        self._connection: sqlite3.Connection | None = None
        self.written = 0
        self.dropped = 0
        self.failures = 0  # writes that failed (their rows were kept)
        self._dropping = False  # logged once per run of drops
        self._failing = False  # logged once per run of failures

    async def _in_thread(self, fn: Callable[..., Any], *args: Any) -> Any:
        # Abandoned if cancelled (only the last flush at exit is): a disk that hangs
        # must not hold the daemon's exit beyond EXIT_FLUSH.
        return await trio.to_thread.run_sync(
            fn, *args, limiter=self._limiter, abandon_on_cancel=True
        )

    @property
    def enabled(self) -> bool:
        return self.path is not None

    def record(self, row: Row) -> None:
        """Queue one request's row (the request path: no I/O, no await)."""
        if self.path is None:
            return
        if len(self._rows) + self._writing >= self._max_rows:
            self.dropped += 1
            if not self._dropping:
                self._dropping = True
                log.error(
                    "usage ledger %s: %d rows wait to be written; rows are dropped until "
                    "the disk catches up (llm_router_usage_rows_dropped_total counts them)",
                    self.path,
                    self._max_rows,
                )
            return
        self._rows.append(row)
        self._wake.set()

    @property
    def pending(self) -> int:
        """Rows in memory: queued, or in the batch being written."""
        return len(self._rows) + self._writing

    async def open(self) -> None:
        """Open (or create) the file, off the event loop.

        Raises:
            UsageDbError: the file cannot be opened, created or brought up to date.
        """
        if self.path is not None and self._connection is None:
            self._connection = await self._offload(open_writer, self.path)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Write rows as they come, at most once every ``flush_every`` seconds; once
        more when cancelled (bounded by EXIT_FLUSH)."""
        try:
            task_status.started()
            while True:
                await self._wake.wait()
                self._wake = trio.Event()
                await self.flush()
                await trio.sleep(self._flush_every)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(EXIT_FLUSH):
                await self.flush()
                await self._close()

    async def flush(self) -> bool:
        """Write every queued row now. False: the write failed (rows kept, logged)."""
        async with self._lock:
            return await self._flush()

    async def _flush(self) -> bool:
        if not self._rows or self.path is None:
            return True
        batch = list(self._rows)
        self._rows.clear()
        self._writing = len(batch)
        try:
            if self._connection is None:
                self._connection = await self._offload(open_writer, self.path)
            await self._offload(insert, self._connection, batch)
        except Exception as exc:  # sqlite3.Error, UsageDbError, OSError: kept for later
            self._rows.extendleft(reversed(batch))
            self.failures += 1
            if not self._failing:
                self._failing = True
                log.error("usage ledger %s: rows could not be written: %s", self.path, exc)
            self._wake.set()  # try again after the pause
            return False
        finally:
            self._writing = 0
        self.written += len(batch)
        if self._failing:
            log.warning("usage ledger %s: written again", self.path)
        self._failing = False
        self._dropping = False
        return True

    async def switch(self, path: str | None) -> None:
        """A reload: write what is queued to the current file, and from now on record to
        ``path`` (None: stop recording). The new file is opened before anything changes.

        Raises:
            UsageDbError: ``path`` cannot be used (nothing changed then).
        """
        async with self._lock:
            if path == self.path:
                await self._flush()
                return
            new = None if path is None else await self._offload(open_writer, path)
            await self._flush()  # rows recorded until now belong to the old file
            if self._rows:  # the old file failed: its rows go to the new one
                log.warning(
                    "usage ledger: %d row(s) meant for %s go to %s",
                    len(self._rows),
                    self.path,
                    path,
                )
            old, self._connection, self.path = self._connection, new, path
            if old is not None:
                await self._offload(old.close)
            if path is None:
                self._rows.clear()
            log.info("usage ledger: recording to %s", path or "nowhere (usage_db unset)")

    async def _close(self) -> None:
        async with self._lock:
            if self._connection is not None:
                connection, self._connection = self._connection, None
                await self._offload(connection.close)

    def collector(self) -> Collector:
        """The ledger's metrics, read at scrape time."""
        return _LedgerCollector(self)


class _LedgerCollector(Collector):
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        ledger = self._ledger
        counters = (
            ("llm_router_usage_rows_written", "Usage ledger rows written.", ledger.written),
            (
                "llm_router_usage_rows_dropped",
                "Usage ledger rows dropped because too many waited to be written.",
                ledger.dropped,
            ),
            (
                "llm_router_usage_write_failures",
                "Usage ledger writes that failed (their rows were kept for the next).",
                ledger.failures,
            ),
        )
        for name, documentation, value in counters:
            yield CounterMetricFamily(name, documentation, value=value)
        yield GaugeMetricFamily(
            "llm_router_usage_rows_pending", "Usage ledger rows not written yet.", ledger.pending
        )
