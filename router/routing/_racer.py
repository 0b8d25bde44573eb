"""The trio loop that carries out a :class:`~router.routing._race.Race`.

A race that never has two candidates running (no hedging) runs each attempt in the
caller's task, one after the other: no nursery, nothing to cancel. A hedged race runs
its attempts in one nursery; each attempt reports its own outcome on a channel (so two
outcomes in one instant are two events, never one), the loop waits for the next
outcome or the hedge timer and feeds it to the policy, and the winner's answer ends the
nursery, which cancels the others and closes their upstream connections. An answer
that still arrives is released with ``discard``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs
import trio

from adapters import GatewayError

from ._race import Lost, Race, SetTimer, Start, Won

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from ._race import Command

__all__ = ["run_race"]

T = TypeVar("T")


@attrs.frozen
class _Outcome(Generic[T]):
    index: int
    value: T | None = None
    error: GatewayError | None = None


async def run_race(
    race: Race,
    run: Callable[[int], Awaitable[T]],
    discard: Callable[[T], Awaitable[None]],
) -> T:
    """The winning candidate's answer.

    Args:
        race: The policy; read its counters (hedges, fallbacks) afterwards.
        run: Runs candidate ``i`` to an answer, or raises GatewayError.
        discard: Releases an answer that lost (it came after the winner's).

    Raises:
        GatewayError: the failure the race ended with.
    """
    if not race.concurrent:
        return await _one_at_a_time(race, run)
    return await _concurrently(race, run, discard)


async def _one_at_a_time(race: Race, run: Callable[[int], Awaitable[T]]) -> T:
    commands = race.start(trio.current_time())
    while True:
        index = _carry_out_sequential(commands)
        try:
            value = await run(index)
        except GatewayError as exc:
            commands = race.failed(index, exc, trio.current_time())
            continue
        race.answered(index, trio.current_time())
        return value


def _carry_out_sequential(commands: list[Command]) -> int:
    """The candidate to run next; raises the race's failure if it is over."""
    for command in commands:
        if isinstance(command, Lost):
            raise command.error
        if isinstance(command, Start):
            return command.index
    raise AssertionError(f"a sequential race gave nothing to run: {commands}")


async def _concurrently(
    race: Race, run: Callable[[int], Awaitable[T]], discard: Callable[[T], Awaitable[None]]
) -> T:
    outcomes: trio.MemorySendChannel[_Outcome[T]]
    results: trio.MemoryReceiveChannel[_Outcome[T]]
    outcomes, results = trio.open_memory_channel(math.inf)
    answers: dict[int, T] = {}  # answers not taken by the race (yet)
    winner: list[T] = []
    lost: list[GatewayError] = []
    try:
        async with trio.open_nursery() as nursery:

            async def attempt(index: int) -> None:
                try:
                    value = await run(index)
                except GatewayError as exc:
                    outcomes.send_nowait(_Outcome(index, error=exc))
                else:
                    outcomes.send_nowait(_Outcome(index, value=value))

            timer: float | None = None
            commands = race.start(trio.current_time())
            while True:
                for command in commands:
                    if isinstance(command, Start):
                        nursery.start_soon(attempt, command.index)
                    elif isinstance(command, SetTimer):
                        timer = command.at
                    elif isinstance(command, Won):
                        winner.append(answers.pop(command.index))
                    elif isinstance(command, Lost):
                        lost.append(command.error)
                if winner or lost:
                    nursery.cancel_scope.cancel()
                    break
                with trio.move_on_at(math.inf if timer is None else timer):
                    outcome = await results.receive()
                    now = trio.current_time()
                    if outcome.error is not None:
                        commands = race.failed(outcome.index, outcome.error, now)
                    else:
                        answers[outcome.index] = outcome.value  # type: ignore[assignment]
                        commands = race.answered(outcome.index, now)
                    continue
                commands = race.timer_fired(trio.current_time())
    except BaseException:
        await _release([*winner, *_late(answers, results)], discard)
        raise
    await _release(_late(answers, results), discard)
    if lost:
        raise lost[0]
    return winner[0]


def _late(answers: dict[int, T], results: trio.MemoryReceiveChannel[_Outcome[T]]) -> list[T]:
    """Answers the race did not take: those that came in the same instant as the
    winner's, or before a cancellation from outside."""
    late = list(answers.values())
    while True:
        try:
            outcome = results.receive_nowait()
        except trio.WouldBlock:
            return late
        if outcome.error is None:
            late.append(outcome.value)  # type: ignore[arg-type]


async def _release(values: list[T], discard: Callable[[T], Awaitable[None]]) -> None:
    """Release answers nobody takes, even while being cancelled: no stream stays open."""
    with trio.CancelScope(shield=True):
        for value in values:
            await discard(value)
