"""Holds on a budget: what requests in flight may cost, set aside until they are charged."""

from __future__ import annotations

import pytest

from adapters import (
    ChatChunk,
    Choice,
    ChunkChoice,
    Delta,
    GatewayRequest,
    GatewayResponse,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from router.traffic._budgets import Budgets
from router.traffic._tokens import answer_usage, chunk_chars, stream_usage
from rules import Budget

NOON = 1_800_000_000.0  # 2027-01-15T08:00:00Z


def budgets() -> Budgets:
    b = Budgets(lambda: NOON)
    b.configure("team", Budget(usd=1.0, per="day"))
    return b


def test_holds_count_against_what_is_left_until_settled() -> None:
    b = budgets()
    first = b.reserve("team", 0.4)
    second = b.reserve("team", 0.4)
    assert not b.exhausted("team")  # $0.20 left once both are counted at their worst
    third = b.reserve("team", 0.4)
    assert b.exhausted("team")
    assert b.remaining("team") == 1.0  # nothing spent yet
    assert b.snapshot()["team"].reserved == pytest.approx(1.2)
    first.settle(0.1)  # it cost less than its worst case
    assert b.spent("team") == 0.1
    assert b.reserved("team") == pytest.approx(0.8)
    assert not b.exhausted("team")  # 0.9 left, 0.8 held: 0.1 free
    second.release()  # it failed: nothing charged
    assert b.reserved("team") == pytest.approx(0.4)
    third.settle(None)  # not priced: nothing charged either
    assert b.reserved("team") == 0.0
    assert b.spent("team") == 0.1


def test_a_hold_ends_once() -> None:
    b = budgets()
    hold = b.reserve("team", 0.5)
    hold.settle(0.25)
    hold.release()  # the `finally` after a settle: nothing more
    hold.settle(0.25)
    assert b.spent("team") == 0.25
    assert b.reserved("team") == 0.0
    assert "team" not in {k for k, s in b.snapshot().items() if s.reserved}


def test_many_holds_leave_no_residue() -> None:
    b = budgets()
    holds = [b.reserve("team", 0.1) for _ in range(10)]
    for hold in holds:
        hold.release()
    assert b.reserved("team") == 0.0  # exactly: 0.1 added and taken ten times is not
    assert not b.exhausted("team")


def test_a_hold_must_be_a_finite_amount() -> None:
    b = budgets()
    for usd in (-1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="reservation"):
            b.reserve("team", usd)


def test_charges_tell_the_listener() -> None:
    b = budgets()
    told: list[None] = []
    b.on_change = lambda: told.append(None)
    b.charge("team", 0.0)  # nothing changed
    b.reserve("team", 0.5).settle(0.25)
    assert len(told) == 1


REQ = GatewayRequest(model="m", messages=(Message(role="user", content="12345678"),))


def test_usage_counted_from_an_answer_that_reported_none() -> None:
    call = ToolCall(id="c", name="get_weather", arguments='{"city":"Paris"}')
    message = Message(role="assistant", content="hello", tool_calls=(call,))
    resp = GatewayResponse("r", "m", 0, (Choice(0, message, "stop"),))
    # 8 prompt characters: 2 tokens; 5 + 11 + 16 answer characters: 8 tokens.
    assert answer_usage(REQ, resp) == Usage(2, 8)
    reported = GatewayResponse("r", "m", 0, (), usage=Usage(7, 5))
    assert answer_usage(REQ, reported) == Usage(7, 5)


def test_usage_counted_from_a_stream_that_reported_none() -> None:
    chunks = [
        ChatChunk("r", "m", 0, (ChunkChoice(0, Delta(role="assistant", content="")),)),
        ChatChunk("r", "m", 0, (ChunkChoice(0, Delta(content="hello")),)),
        ChatChunk("r", "m", 0, (ChunkChoice(0, Delta(refusal="no")),)),
        ChatChunk(
            "r",
            "m",
            0,
            (ChunkChoice(0, Delta(tool_calls=(ToolCallDelta(0, "c", "f", "{}"),))),),
        ),
        ChatChunk("r", "m", 0, (ChunkChoice(0, Delta(), "stop"),)),
    ]
    assert chunk_chars(chunks) == 5 + 2 + 1 + 2
    assert stream_usage(REQ, 10) == Usage(2, 3)
    assert stream_usage(REQ, 0) == Usage(2, 0)  # no answer: the prompt still counts


def test_recovered_spend_keeps_the_larger_count_of_the_periods_it_was_taken_in() -> None:
    now = [NOON]
    b = Budgets(lambda: now[0])
    b.configure("team", Budget(usd=1.0, per="day"))
    b.configure("ops", Budget(usd=10.0, per="month"))
    b.charge("ops", 4.0)  # the state file counted more than the ledger holds
    changes: list[None] = []
    b.on_change = lambda: changes.append(None)
    at, day, month = b.periods()
    assert (at, day, month) == (NOON, NOON - 8 * 3600, NOON - 14 * 86_400 - 8 * 3600)
    b.recover({"team": (1.5, 2.5), "ops": (1.0, 3.0), "bad": (float("nan"), 1.0)}, at)
    assert b.spent("team") == 1.5
    assert b.exhausted("team")  # spent before a restart: still spent
    assert b.snapshot()["team"].spent_month == 2.5
    assert b.spent("ops") == 4.0  # the larger count wins
    assert "bad" not in b.snapshot()
    assert len(changes) == 1  # the state file learns of it
    # Figures of yesterday, applied after midnight, charge nothing to today.
    later = Budgets(lambda: now[0])
    now[0] = NOON + 86_400
    later.recover({"team": (1.5, 2.5)}, at)
    assert later.snapshot()["team"].spent_day == 0.0
    assert later.snapshot()["team"].spent_month == 2.5  # the same month still
