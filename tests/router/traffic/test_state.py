"""The state file: spend kept across restarts, written whole, damaged files survived."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
import trio

from router.traffic._budgets import Budgets
from router.traffic._state import StateFile
from rules import Budget

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

DAY = Budget(usd=1.0, per="day")
NOON = 1_800_000_000.0  # 2027-01-15T08:00:00Z


async def test_saved_spend_is_loaded_and_rolls_over(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    before = Budgets(lambda: NOON)
    before.configure("team", DAY)
    before.charge("team", 0.75)
    await StateFile(str(path), before).save()
    after = Budgets(lambda: NOON + 60)
    after.configure("team", DAY)
    StateFile(str(path), after).load()
    assert after.remaining("team") == 0.25
    tomorrow = Budgets(lambda: NOON + 86_400)
    tomorrow.configure("team", DAY)
    StateFile(str(path), tomorrow).load()
    assert tomorrow.remaining("team") == 1.0  # a new day: the saved day does not count


async def test_a_damaged_file_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(b"{not json")
    budgets = Budgets(lambda: NOON)
    StateFile(str(path), budgets).load()  # logged, not raised
    assert budgets.dump() == {}
    path.write_bytes(orjson.dumps({"budgets": {"a": {"day": "x"}, "b": {"day_usd": -1}}}))
    StateFile(str(path), budgets).load()
    assert budgets.dump() == {}


async def test_run_saves_changes_on_a_timer_and_at_exit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Real time (the writes are real file I/O in a thread): a short period for the test.
    monkeypatch.setattr("router.traffic._state.SAVE_EVERY", 0.01)
    path = tmp_path / "state.json"
    budgets = Budgets(lambda: NOON)
    state = StateFile(str(path), budgets)

    def saved() -> float | None:
        if not path.exists():
            return None
        return float(orjson.loads(path.read_bytes())["budgets"]["team"]["day_usd"])

    async with trio.open_nursery() as nursery:
        nursery.start_soon(state.run)
        budgets.charge("team", 0.5)
        with trio.fail_after(10):  # a hang guard
            while saved() != 0.5:  # noqa: ASYNC110 - waiting on a worker thread's file
                await trio.sleep(0.01)
        budgets.charge("team", 0.25)
        nursery.cancel_scope.cancel()  # exit: the last change is saved too
    assert saved() == 0.75
    leftovers = await trio.to_thread.run_sync(lambda: list(tmp_path.glob(".*.tmp")))
    assert leftovers == []  # written by rename, nothing left behind
