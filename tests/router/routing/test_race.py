"""The race policy as transcripts: events in, commands out, no loop and no clock.

Each test feeds :class:`Race` what happened (with the time it happened) and checks the
commands it gives back, the way h11 and mitmproxy test their state machines.
"""

from __future__ import annotations

import math

import pytest

from adapters import InvalidRequest, ProviderInternalError, Timeout
from router.routing._failures import DEFAULT_ON
from router.routing._race import Lost, Race, SetTimer, Start, Won


def boom() -> ProviderInternalError:
    return ProviderInternalError("boom", upstream_status=500)


def test_a_plain_fallback_starts_one_candidate_per_failure() -> None:
    race = Race(3, DEFAULT_ON)
    assert not race.concurrent
    assert race.start(0.0) == [Start(0), SetTimer(None)]
    assert race.failed(0, boom(), 1.0) == [Start(1), SetTimer(None)]
    assert race.failed(1, boom(), 2.0) == [Start(2), SetTimer(None)]
    commands = race.failed(2, boom(), 3.0)
    assert commands[0] == SetTimer(None)
    assert isinstance(commands[1], Lost)
    assert len(race.errors) == 3
    assert (race.fallbacks, race.hedges, race.done) == (2, 0, True)


def test_a_failure_the_node_must_not_move_on_from_ends_the_race() -> None:
    race = Race(3, DEFAULT_ON)
    race.start(0.0)
    bad = InvalidRequest("no")
    assert race.failed(0, bad, 0.5) == [SetTimer(None), Lost(bad)]
    assert race.failed(1, boom(), 0.6) == []  # over: later events change nothing


def test_the_hedge_timer_starts_the_next_and_rearms_while_hedges_are_left() -> None:
    race = Race(3, DEFAULT_ON, delay=0.25, max_hedges=2, permit=lambda: True)
    assert race.concurrent
    assert race.start(0.0) == [Start(0), SetTimer(0.25)]
    assert race.timer_fired(0.25) == [Start(1, hedge=True), SetTimer(0.5)]
    assert race.timer_fired(0.5) == [Start(2, hedge=True), SetTimer(None)]
    assert race.answered(2, 0.75) == [SetTimer(None), Won(2)]
    assert (race.hedges, race.won_by_hedge) == (2, True)


def test_a_failure_rearms_the_hedge_timer_from_its_own_time() -> None:
    race = Race(3, DEFAULT_ON, delay=0.25, max_hedges=1, permit=lambda: True)
    race.start(0.0)
    assert race.failed(0, boom(), 0.125) == [Start(1), SetTimer(0.375)]
    assert race.timer_fired(0.375) == [Start(2, hedge=True), SetTimer(None)]
    assert race.answered(1, 1.125) == [SetTimer(None), Won(1)]
    assert (race.fallbacks, race.hedges, race.won_by_hedge) == (1, 1, False)


def test_two_failures_in_one_instant_start_two_candidates() -> None:
    """The bug a shared failure event had: the second failure was lost."""
    race = Race(4, DEFAULT_ON, delay=1.0, max_hedges=1, permit=lambda: True)
    race.start(0.0)
    assert race.timer_fired(1.0) == [Start(1, hedge=True), SetTimer(None)]
    assert race.failed(0, boom(), 2.0) == [Start(2), SetTimer(None)]
    assert race.failed(1, boom(), 2.0) == [Start(3), SetTimer(None)]
    assert race.fallbacks == 2


def test_a_refused_hedge_stops_hedging_but_not_fallbacks() -> None:
    asked: list[float] = []

    def permit() -> bool:
        asked.append(1.0)
        return False

    race = Race(3, DEFAULT_ON, delay=0.25, max_hedges=2, permit=permit)
    race.start(0.0)
    assert race.timer_fired(0.25) == [SetTimer(None)]
    assert len(asked) == 1
    assert race.failed(0, boom(), 5.0) == [Start(1), SetTimer(None)]  # no timer: no hedges
    assert race.timer_fired(6.0) == [SetTimer(None)]
    assert len(asked) == 1  # the budget is not asked again


def test_the_last_failure_waits_for_those_still_running() -> None:
    race = Race(2, DEFAULT_ON, delay=0.25, max_hedges=1, permit=lambda: True)
    race.start(0.0)
    race.timer_fired(0.25)
    assert race.failed(1, Timeout("slow"), 1.0) == [SetTimer(None)]  # 0 still runs
    commands = race.failed(0, boom(), 2.0)
    assert isinstance(commands[-1], Lost)
    assert race.errors[0].message == "slow"


def test_a_late_answer_is_ignored() -> None:
    race = Race(2, DEFAULT_ON, delay=0.25, max_hedges=1, permit=lambda: True)
    race.start(0.0)
    race.timer_fired(0.25)
    assert race.answered(0, 1.0) == [SetTimer(None), Won(0)]
    assert race.answered(1, 1.0) == []
    assert race.winner == 0


def test_a_race_needs_a_candidate() -> None:
    with pytest.raises(ValueError, match="at least one"):
        Race(0, DEFAULT_ON)


def test_without_hedges_the_timer_is_never_set() -> None:
    race = Race(2, DEFAULT_ON, delay=math.inf, max_hedges=0)
    assert race.start(0.0) == [Start(0), SetTimer(None)]
    assert race.timer_fired(10.0) == [SetTimer(None)]
