"""The state file: spend kept across restarts, written whole and soon, damage refused."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import orjson
import pytest
import trio
import trio.testing

from router.traffic._budgets import Budgets
from router.traffic._state import SAVE_EVERY, StateFile, StateFileError
from rules import Budget, ConfigError

if TYPE_CHECKING:
    from pathlib import Path

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


def test_no_file_is_a_first_start(tmp_path: Path) -> None:
    budgets = Budgets(lambda: NOON)
    StateFile(str(tmp_path / "state.json"), budgets).load()
    assert budgets.dump() == {}


GOOD = {"day": [2027, 1, 15], "day_usd": 0.5, "month": [2027, 1], "month_usd": 0.5}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (b"", "is empty"),
        (orjson.dumps({"budgets": {"team": GOOD}})[:-9], "is not valid JSON"),  # truncated
        (b"{not json", "is not valid JSON"),
        (b"[1, 2]", 'does not hold {"budgets": {...}}'),
        (b'{"budgets": 3}', 'does not hold {"budgets": {...}}'),
        (orjson.dumps({"budgets": {"ok": GOOD, "team": {"day": "x"}}}), "'team' does not parse"),
        (orjson.dumps({"budgets": {"team": {**GOOD, "day_usd": -1}}}), "'team' has a negative"),
    ],
    ids=["empty", "truncated", "garbage", "a-list", "no-budgets", "bad-entry", "negative"],
)
def test_a_damaged_file_is_refused_naming_the_file_and_the_problem(
    tmp_path: Path, content: bytes, problem: str
) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(content)
    budgets = Budgets(lambda: NOON)
    with pytest.raises(StateFileError) as refused:
        StateFile(str(path), budgets).load()
    message = str(refused.value)
    assert f"server.state_file: {path} " in message
    assert problem in message
    assert "Refusing to start" in message
    assert isinstance(refused.value, ConfigError)  # `serve` and `check` report it, exit 1
    assert budgets.dump() == {}  # nothing half-loaded


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_bytes(orjson.dumps({"budgets": {}}))
    path.chmod(0)
    with pytest.raises(StateFileError, match="cannot be read"):
        StateFile(str(path), Budgets(lambda: NOON)).load()


def test_a_folder_in_its_place_is_refused(tmp_path: Path) -> None:
    (tmp_path / "state.json").mkdir()
    with pytest.raises(StateFileError, match="cannot be read"):
        StateFile(str(tmp_path / "state.json"), Budgets(lambda: NOON)).load()


async def test_writes_follow_charges_at_most_once_a_second(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    budgets = Budgets(lambda: NOON)
    state = StateFile("unused.json", budgets)
    writes: list[tuple[float, float]] = []

    async def store(data: bytes) -> bool:  # in place of the worker thread's file write
        writes.append((trio.current_time(), orjson.loads(data)["budgets"]["team"]["day_usd"]))
        return True

    monkeypatch.setattr(state, "_store", store)
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        await trio.sleep(3)
        assert writes == []  # nothing changed, nothing written
        budgets.charge("team", 0.5)  # t=3: written at once
        await trio.sleep(0.25)
        budgets.charge("team", 0.125)  # t=3.25 and 3.5: written together, a second on
        await trio.sleep(0.25)
        budgets.charge("team", 0.125)
        await trio.sleep(10)
        budgets.charge("team", 0.0)  # no change: nothing to write
        await trio.sleep(1)
        budgets.charge("team", 0.25)  # t=14.5: at exit, before the next second is up
        nursery.cancel_scope.cancel()
    assert writes == [(3.0, 0.5), (3.0 + SAVE_EVERY, 0.75), (14.5, 1.0)]
    assert SAVE_EVERY == 1.0  # what docs/configuration.md promises


async def test_a_failed_write_is_tried_again(
    autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    budgets = Budgets(lambda: NOON)
    state = StateFile("unused.json", budgets)
    tries: list[float] = []

    async def store(data: bytes) -> bool:
        tries.append(trio.current_time())
        return len(tries) > 2  # the disk is full twice, then has room

    monkeypatch.setattr(state, "_store", store)
    async with trio.open_nursery() as nursery:
        await nursery.start(state.run)
        budgets.charge("team", 0.5)
        await trio.sleep(10)
        nursery.cancel_scope.cancel()
    assert tries == [0.0, 1.0, 2.0]  # then written: nothing more to do, at exit neither


async def test_a_write_is_whole_and_durable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    path = tmp_path / "state.json"
    budgets = Budgets(lambda: NOON)
    budgets.charge("team", 0.5)
    assert await StateFile(str(path), budgets).save()
    assert orjson.loads(path.read_bytes())["budgets"]["team"]["day_usd"] == 0.5
    assert len(synced) == 2  # the new file's bytes, then the folder's entry for it
    leftovers = await trio.to_thread.run_sync(lambda: list(tmp_path.glob(".*.tmp")))
    assert leftovers == []  # written by rename, nothing left behind


async def test_a_write_that_fails_keeps_the_old_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    budgets = Budgets(lambda: NOON)
    budgets.charge("team", 0.5)
    state = StateFile(str(path), budgets)
    assert await state.save()
    (tmp_path / ".state.json.tmp").mkdir()  # the temporary file cannot be made
    budgets.charge("team", 0.25)
    assert not await state.save()  # logged, not raised
    assert orjson.loads(path.read_bytes())["budgets"]["team"]["day_usd"] == 0.5
