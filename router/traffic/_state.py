"""Keeping what must outlive the process: the spend of client keys' budgets.

A budget per month that a restart set back to zero would not be a budget. With
``server.state_file`` set, the spend is read at start and written every few seconds
when it changed, and once more at exit, each time to a temporary file renamed over the
old one (a crash leaves the last complete state, never half of one). File I/O runs in a
worker thread, off the event loop.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import trio

if TYPE_CHECKING:
    from ._budgets import Budgets

__all__ = ["StateFile"]

log = logging.getLogger("llm_router")

SAVE_EVERY = 10.0


class StateFile:
    """The spend of ``budgets``, kept in ``path``."""

    def __init__(self, path: str, budgets: Budgets) -> None:
        self.path = Path(path)
        self.budgets = budgets
        self._saved: dict[str, Any] | None = None

    def load(self) -> None:
        """Read the saved spend, if there is any; a damaged file is reported and skipped."""
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error(
                "state file %s could not be read (%s): budgets start from zero", self.path, exc
            )
            return
        if isinstance(data, dict) and isinstance(data.get("budgets"), dict):
            self.budgets.load(data["budgets"])
            self._saved = self.budgets.dump()

    async def run(self) -> None:
        """Save when the spend changed, every SAVE_EVERY seconds; once more when cancelled."""
        try:
            while True:
                await trio.sleep(SAVE_EVERY)
                await self.save()
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.save()

    async def save(self) -> None:
        spend = self.budgets.dump()
        if spend == self._saved:
            return
        await trio.to_thread.run_sync(self._write, orjson.dumps({"budgets": spend}))
        self._saved = spend

    def _write(self, data: bytes) -> None:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("state file %s could not be written: %s", self.path, exc)
