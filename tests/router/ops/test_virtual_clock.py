"""The simulation's clock: virtual time that jumps to the next event, its own timers
interleaved with trio's deadlines, and cancellable like ``trio.sleep``."""

from __future__ import annotations

import math

import trio
import trio.testing

from router.ops._virtual_clock import VirtualClock, virtual_sleep


def run(clock: VirtualClock, fn: object) -> list[tuple[float, str]]:
    events: list[tuple[float, str]] = []

    async def main() -> None:
        await fn(clock, events)  # type: ignore[operator]

    trio.run(main, clock=clock)
    return events


def test_timers_and_trio_deadlines_wake_in_time_order() -> None:
    async def scenario(clock: VirtualClock, events: list[tuple[float, str]]) -> None:
        async def timer(at: float, name: str) -> None:
            await clock.sleep(at)
            events.append((trio.current_time(), name))

        async def trio_sleep(at: float, name: str) -> None:
            await trio.sleep(at)
            events.append((trio.current_time(), name))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(timer, 3.0, "timer 3")
            nursery.start_soon(trio_sleep, 2.0, "trio 2")
            nursery.start_soon(timer, 1.0, "timer 1")
            nursery.start_soon(trio_sleep, 4.5, "trio 4.5")

    assert run(VirtualClock(), scenario) == [
        (1.0, "timer 1"),
        (2.0, "trio 2"),
        (3.0, "timer 3"),
        (4.5, "trio 4.5"),
    ]


def test_a_timer_is_cancelled_by_a_trio_deadline_before_it() -> None:
    async def scenario(clock: VirtualClock, events: list[tuple[float, str]]) -> None:
        with trio.move_on_after(1.5) as scope:
            await clock.sleep(10.0)
        events.append((trio.current_time(), f"cancelled {scope.cancelled_caught}"))
        await clock.sleep(1.0)  # the cancelled timer does not wake anything at 10
        events.append((trio.current_time(), "next"))

    assert run(VirtualClock(), scenario) == [(1.5, "cancelled True"), (2.5, "next")]


def test_a_timer_before_the_deadline_wins() -> None:
    async def scenario(clock: VirtualClock, events: list[tuple[float, str]]) -> None:
        with trio.move_on_after(1.5) as scope:
            await clock.sleep(1.0)
        events.append((trio.current_time(), f"cancelled {scope.cancelled_caught}"))

    assert run(VirtualClock(), scenario) == [(1.0, "cancelled False")]


def test_same_instant_timers_wake_together_and_time_starts_where_asked() -> None:
    async def scenario(clock: VirtualClock, events: list[tuple[float, str]]) -> None:
        async def timer(name: str) -> None:
            await clock.sleep_until(105.0)
            events.append((trio.current_time(), name))

        async with trio.open_nursery() as nursery:
            for name in "abc":
                nursery.start_soon(timer, name)
        await clock.sleep_until(50.0)  # in the past: it wakes at once, time stays
        events.append((trio.current_time(), "past"))

    events = run(VirtualClock(start=100.0), scenario)
    assert sorted(events[:3]) == [(105.0, "a"), (105.0, "b"), (105.0, "c")]
    assert events[3] == (105.0, "past")


def test_virtual_sleep_falls_back_to_trio_sleep_on_another_clock() -> None:
    clock = trio.testing.MockClock(autojump_threshold=0)

    async def main() -> float:
        start = trio.current_time()
        await virtual_sleep(7.0)
        return trio.current_time() - start

    assert trio.run(main, clock=clock) == 7.0


def test_nothing_due_blocks_rather_than_jumping() -> None:
    clock = VirtualClock()
    assert clock.deadline_to_sleep_time(math.inf) > 3600
    assert clock.deadline_to_sleep_time(12.0) == 0.0
    assert clock.current_time() == 12.0
