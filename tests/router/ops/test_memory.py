"""Memory housekeeping: one full collection and a trim once a burst is over, deferred
while the loop is busy, none while idle; cyclic garbage the daemon's collector settings
leave in the oldest generation is freed by it; ``/admin/status`` reports it."""

from __future__ import annotations

import gc
import platform
import warnings
import weakref
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from router.ops._daemon import _tune_gc
from router.ops._memory import Housekeeping, MemoryKeeper, pending_objects, trimmer
from tests.router.ops.test_reload import daemon, status, write

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from router.ops._memory import Why


class Load:
    """Connections held, as a schedule over time: ``(from, connections)`` steps."""

    def __init__(self, *steps: tuple[float, int]) -> None:
        self.steps = steps
        self.t0 = trio.current_time()

    def __call__(self) -> int:
        now = trio.current_time() - self.t0
        return [n for at, n in self.steps if at <= now][-1]


class Trims:
    """A trim that notes when it ran (relative to the start)."""

    def __init__(self) -> None:
        self.t0 = trio.current_time()
        self.at: list[float] = []

    def __call__(self) -> bool:
        self.at.append(trio.current_time() - self.t0)
        return True


async def run_for(keeper: MemoryKeeper, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(keeper.run)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


def sampled(policy: Housekeeping, steps: list[tuple[int, int]]) -> list[tuple[int, Why]]:
    """The policy fed one sample a second: ``(load, pending)`` each; when it said to
    collect, and why (a collection resets what it counts)."""
    policy.start(0.0)
    said = []
    for now, (load, pending) in enumerate(steps, start=1):
        why = policy.sample(float(now), load, pending)
        if why is not None:
            said.append((now, why))
            policy.collected(float(now), load)
    return said


@pytest.fixture
def daemon_gc() -> Iterator[None]:
    """The collector as the daemon sets it (``_tune_gc``), restored after.

    Earlier tests' garbage is collected first, its ResourceWarnings silenced: what they
    left unclosed (a client library's event loop, say) is theirs, not this test's."""
    thresholds = gc.get_threshold()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()
    _tune_gc()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


async def test_a_burst_that_ends_gets_one_collection_and_one_trim(
    autojump_clock: trio.testing.MockClock,
) -> None:
    trims = Trims()
    load = Load((0, 3), (10, 2000), (30, 40), (40, 0))
    keeper = MemoryKeeper(load, trim=trims)
    await run_for(keeper, 100.5)
    # The fall to 40 (2% of the peak) is seen at 30 s and lasts the 2 s settle.
    assert trims.at == [32.0]
    assert keeper.collections == 1
    assert keeper.last is not None
    assert keeper.last["reason"] == "burst over"
    assert keeper.last["trimmed"] is True


def test_a_busy_loop_defers_it_until_the_load_falls_or_it_is_overdue() -> None:
    busy = Housekeeping()
    # 500 connections at all times, garbage piling up: not before 900 s.
    assert sampled(busy, [(500, 50_000)] * 1000) == [(900, "overdue")]
    falls = Housekeeping()
    # Due at 120 s, while 500 connections are held: it waits for them to go.
    steps = [(500, 50_000)] * 299 + [(60, 50_000)] * 10
    assert sampled(falls, steps) == [(300, "quiet")]


def test_a_burst_that_only_dips_is_not_over() -> None:
    policy = Housekeeping()
    # Down to 30% of the peak (not 25%), and to 20% for one second only.
    steps = [(1000, 0)] * 5 + [(300, 0)] * 10 + [(200, 0)] + [(1000, 0)] * 10
    assert sampled(policy, steps) == []


def test_idle_steady_state_does_not_collect_every_tick() -> None:
    idle = Housekeeping()
    assert sampled(idle, [(0, 50)] * 3600) == []  # an hour: no garbage worth a pause
    serving = Housekeeping()
    # A few connections and garbage accumulating: once per period, not every tick.
    said = sampled(serving, [(10, 20_000)] * 600)
    assert said == [(120, "quiet"), (240, "quiet"), (360, "quiet"), (480, "quiet"), (600, "quiet")]


def test_a_small_peak_is_no_burst() -> None:
    assert sampled(Housekeeping(), [(99, 0)] * 10 + [(0, 0)] * 10) == []


async def test_cyclic_garbage_in_the_oldest_generation_is_freed_after_a_burst(
    daemon_gc: None, autojump_clock: trio.testing.MockClock
) -> None:
    class Node:
        other: Node

    node = Node()
    node.other = Node()
    node.other.other = node  # a cycle, as a closed connection's protocol objects make
    alive = weakref.ref(node)
    gc.collect(1)  # alive at a young collection: it goes to the oldest generation
    assert any(o is node for o in gc.get_objects(2))
    del node
    gc.collect(1)  # only a full collection would see it is garbage
    assert alive() is not None
    keeper = MemoryKeeper(Load((0, 0), (5, 500), (10, 0)), trim=Trims())
    await run_for(keeper, 30)
    assert keeper.collections == 1
    assert alive() is None


def test_pending_counts_what_younger_collections_moved_on(daemon_gc: None) -> None:
    gc.collect()
    before = pending_objects()
    kept: list[list[int]] = [[] for _ in range(1000)]
    assert pending_objects() >= before + 1000
    gc.collect(0)  # what it kept went on to generation 1: still pending a full one
    assert pending_objects() >= 100_000
    gc.collect()
    assert pending_objects() < 1000
    del kept


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc_trim is glibc's")
def test_the_trim_is_glibcs_malloc_trim() -> None:
    trim = trimmer()
    assert trim is not None
    assert trim() in (True, False)


async def test_status_reports_memory(tmp_path: Path) -> None:
    config = tmp_path / "router.toml"
    write(config)
    async with daemon(config) as client:
        memory = (await status(client))["memory"]
    assert memory["collections"] == 0
    assert memory["last"] is None
    if platform.system() == "Linux":
        assert memory["rss_mb"] > 10
    assert memory["trim"] is (trimmer() is not None)


def test_a_keeper_without_trim_reports_none() -> None:
    keeper = MemoryKeeper(lambda: 0)
    keeper.housekeep("quiet", 0.0)
    assert keeper.last is not None
    assert keeper.last["trim_ms"] is None
    assert keeper.last["trimmed"] is None
    assert keeper.status()["collections"] == 1
