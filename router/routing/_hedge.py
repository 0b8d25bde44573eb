"""Hedging: race the candidates of one node in one nursery.

The first candidate starts at once. The next starts when one running fails (that is a
fallback, not a hedge) or when ``delay`` passes with nothing answered (a hedge, if the
node has hedges left and the budget grants one). The first good answer wins; the
others are cancelled at once, which closes their upstream connections. An answer that
arrives after the winner is discarded. A failure that must not fall back (a bad
request) ends the race with that error.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol, TypeVar

import trio

from adapters import GatewayError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from rules import Node

    from ._attempt import Served

__all__ = ["HedgeEvents", "run_hedged"]

T = TypeVar("T")


class HedgeEvents(Protocol):
    """What a race reports, for metrics: failures that started the next candidate, and
    whether the winner was started as a hedge."""

    def fallback(self) -> None: ...

    def won(self, by_hedge: bool) -> None: ...


async def run_hedged(
    candidates: Sequence[Node],
    run: Callable[[Node], Awaitable[Served[T]]],
    on: frozenset[str],
    delay: float,
    max_hedges: int,
    permit: Callable[[], bool],
    discard: Callable[[T], Awaitable[None]],
    events: HedgeEvents | None = None,
) -> Served[T]:
    """The first good answer among ``candidates``, started as described above.

    Args:
        candidates: In the order to try them.
        run: Runs one candidate to an answer (or raises GatewayError).
        on: The failure reasons that move on to the next candidate.
        delay: Seconds without an answer before a hedge starts.
        max_hedges: Hedges this node may start.
        permit: Asks the hedge budget for one hedge.
        discard: Releases an answer that came after the winner's.
        events: Told of fallbacks and of the winner's origin.

    Raises:
        GatewayError: the fatal failure, or the combination of every failure.
    """
    from ._engine import combine, falls_back  # the engine's own failure rules

    winner: list[tuple[Served[T], bool]] = []  # the answer, and whether a hedge gave it
    errors: list[GatewayError] = []
    fatal: list[GatewayError] = []
    failed = trio.Event()
    running = 0
    discards: list[Served[T]] = []

    async with trio.open_nursery() as nursery:

        async def attempt(child: Node, hedged: bool) -> None:
            nonlocal running, failed
            try:
                served = await run(child)
            except GatewayError as exc:
                errors.append(exc)
                if not falls_back(exc, on):
                    fatal.append(exc)
                    nursery.cancel_scope.cancel()
                failed.set()
                return
            finally:
                running -= 1
            if winner:
                discards.append(served)  # a late answer: released below
                return
            winner.append((served, hedged))
            nursery.cancel_scope.cancel()

        hedges = 0
        hedged = False
        for index, child in enumerate(candidates):
            running += 1
            nursery.start_soon(attempt, child, hedged)
            if index == len(candidates) - 1:
                break
            # Wait for a failure (start the next at once) or for the hedge delay.
            while True:
                with trio.move_on_after(delay if hedges < max_hedges else float("inf")):
                    await failed.wait()
                if failed.is_set():
                    failed = trio.Event()
                    hedged = False
                    if events is not None:
                        events.fallback()
                    break
                if hedges < max_hedges and permit():
                    hedges += 1
                    hedged = True
                    break
                hedges = max_hedges  # the budget said no: no more hedges, only fallbacks
    for served in discards:
        await discard(served.value)
    if winner:
        if events is not None:
            events.won(winner[0][1])
        return winner[0][0]
    if fatal:
        raise fatal[0]
    raise combine(errors)
