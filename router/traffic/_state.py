"""Keeping what must outlive the process: the spend of client keys' budgets.

A budget per month that a restart set back to zero would not be a budget. With
``server.state_file`` set, the spend is read at start and written soon after it
changes: a charge wakes the writer, which writes at once and then at most once every
``SAVE_EVERY`` seconds (charges in between are written together), and once more at
exit. So a SIGKILL loses at most the charges of the last second or so (plus the time a
write takes). Each write goes to a temporary file, is flushed to disk (``fsync``) and
renamed over the old one, and the folder is synced: a crash or a power cut leaves the
last complete state, never half of one. File I/O runs in a worker thread, off the event
loop; a charge only sets an event.

A file that cannot be read or does not parse stops the daemon at start with the reason
(`StateFileError`): starting from zero would silently refill every budget. A missing
file is a first start.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
import trio

from rules import ConfigError

if TYPE_CHECKING:
    from ._budgets import Budgets

__all__ = ["SAVE_EVERY", "StateFile", "StateFileError"]

log = logging.getLogger("llm_router")

#: The least time between two writes, in seconds: about the spend a SIGKILL can lose.
SAVE_EVERY = 1.0


class StateFileError(ConfigError):
    """``server.state_file`` exists but cannot be read or does not parse."""


class StateFile:
    """The spend of ``budgets``, kept in ``path``.

    Creating it makes ``budgets`` tell it of every charge (`Budgets.on_change`).
    """

    def __init__(self, path: str, budgets: Budgets) -> None:
        self.path = Path(path)
        self.budgets = budgets
        self._saved: dict[str, Any] | None = None
        self._changed = trio.Event()
        self._failing = False  # the last write failed (logged once per run of failures)
        budgets.on_change = self._note

    def _note(self) -> None:
        self._changed.set()  # the hot path: an attribute check when already set

    def load(self) -> None:
        """Read the saved spend; nothing to read (no file) is a first start.

        Raises:
            StateFileError: the file cannot be read, is not JSON, or does not hold what
                :meth:`save` writes. Nothing is loaded then.
        """
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise self._refuse(f"cannot be read ({exc.strerror or exc})") from None
        try:
            data = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            what = "is empty" if not raw.strip() else f"is not valid JSON ({exc})"
            raise self._refuse(f"{what}; it may have been truncated") from None
        if not isinstance(data, dict) or not isinstance(data.get("budgets"), dict):
            raise self._refuse('does not hold {"budgets": {...}}')
        try:
            self.budgets.load(data["budgets"])
        except ValueError as exc:
            raise self._refuse(str(exc)) from None
        self._saved = self.budgets.dump()

    def _refuse(self, problem: str) -> StateFileError:
        return StateFileError(
            f"server.state_file: {self.path} {problem}. Refusing to start, which would "
            "reset every budget's spend; repair the file, or move it aside to start "
            "from zero."
        )

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Save soon after each change, at most once every SAVE_EVERY seconds; once
        more when cancelled."""
        try:
            task_status.started()
            while True:
                await self._changed.wait()
                self._changed = trio.Event()
                if not await self.save():
                    self._changed.set()  # try again after the pause
                await trio.sleep(SAVE_EVERY)
        finally:
            with trio.CancelScope(shield=True), trio.move_on_after(5):
                await self.save()

    async def save(self) -> bool:
        """Write the spend if it changed since the last write. False: the write failed
        (and was logged)."""
        spend = self.budgets.dump()
        if spend == self._saved:
            return True
        if not await self._store(orjson.dumps({"budgets": spend})):
            return False
        self._saved = spend
        return True

    async def _store(self, data: bytes) -> bool:
        return await trio.to_thread.run_sync(self._write, data)

    def _write(self, data: bytes) -> bool:
        tmp = self.path.with_name(f".{self.path.name}.tmp")
        try:
            with tmp.open("wb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            os.replace(tmp, self.path)
            _sync_folder(self.path.parent)
        except OSError as exc:
            if not self._failing:
                log.error("state file %s could not be written: %s", self.path, exc)
            self._failing = True
            return False
        if self._failing:
            log.warning("state file %s written again", self.path)
        self._failing = False
        return True


def _sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX: the directory entry is its data)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
