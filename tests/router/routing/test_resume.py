"""The pure parts of resuming: what counts as delivered, the prefill request, and the
splice of a regenerated answer (split anywhere)."""

from __future__ import annotations

from contextlib import aclosing
from typing import TYPE_CHECKING

import pytest

from adapters import ChatChunk, ChunkChoice, Delta, StreamError, ToolCallDelta, Usage
from router.routing._resume import Delivered, Seamed, Spliced

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator


def chunk(content: str | None = None, *, role: bool = False, finish: bool = False) -> ChatChunk:
    delta = Delta(role="assistant" if role else None, content=content)
    return ChatChunk("x", "m", 7, (ChunkChoice(0, delta, "stop" if finish else None),))


def test_delivered_text_and_resumability() -> None:
    delivered = Delivered()
    assert not delivered.resumable  # nothing sent yet: nothing to resume
    delivered.note([chunk(role=True), chunk("Hello "), chunk("world")])
    assert (delivered.text, delivered.resumable, delivered.id) == ("Hello world", True, "x")
    delivered.note([chunk(finish=True)])
    assert not delivered.resumable  # finished: nothing left to resume


def test_a_tool_call_in_flight_is_never_resumed() -> None:
    delivered = Delivered()
    call = ToolCallDelta(index=0, id="c1", name="f", arguments='{"a"')
    delivered.note([ChatChunk("x", "m", 0, (ChunkChoice(0, Delta(tool_calls=(call,))),))])
    assert not delivered.resumable


def test_a_continuation_is_restamped_and_loses_its_role_chunk() -> None:
    delivered = Delivered()
    delivered.note([chunk("a")])
    other = [
        ChatChunk("y", "m2", 99, (ChunkChoice(0, Delta(role="assistant")),)),
        ChatChunk("y", "m2", 99, (ChunkChoice(0, Delta(content="b")),)),
    ]
    [only] = delivered.restamp(other)
    assert (only.id, only.created, only.model, only.choices[0].delta.content) == (
        "x",
        7,
        "m2",
        "b",
    )


async def test_a_prefilled_continuation_does_not_repeat_the_delivered_whitespace() -> None:
    async def source() -> AsyncGenerator[list[ChatChunk]]:
        yield [chunk(" upon")]
        yield [chunk(" a time")]

    async with aclosing(source()) as batches:
        got = [
            c.choices[0].delta.content async for batch in Seamed(batches, "Once ") for c in batch
        ]
    assert got == ["upon", " a time"]


async def _spliced(pieces: list[str], delivered: str) -> str:
    async def source() -> AsyncGenerator[list[ChatChunk]]:
        yield [chunk(role=True)]
        for piece in pieces:
            yield [chunk(piece)]

    out: list[str] = []
    async with aclosing(source()) as batches:
        async for batch in Spliced(batches, delivered):
            out += [c.choices[0].delta.content or "" for c in batch]
    return "".join(out)


@pytest.mark.parametrize("cut", range(len("Hello brave new world") + 1))
async def test_a_regenerated_answer_is_spliced_after_the_delivered_text(cut: int) -> None:
    answer = "Hello brave new world"
    pieces = [answer[:cut], answer[cut:]] if 0 < cut < len(answer) else [answer]
    assert await _spliced(pieces, "Hello brave ") == "new world"


async def test_a_regenerated_answer_that_differs_is_refused() -> None:
    with pytest.raises(StreamError, match="diverged"):
        await _spliced(["Hello ", "there"], "Hello brave ")


def test_usage_after_a_resume_adds_what_the_broken_attempts_consumed() -> None:
    delivered = Delivered()
    delivered.note([chunk("12345678")])  # 8 characters: 2 tokens
    delivered.broke(prompt_tokens=10)
    delivered.note([chunk("abcd")])  # 1 more token before a second break
    delivered.broke(prompt_tokens=10)
    final = ChatChunk("y", "m", 0, (), Usage(prompt_tokens=12, completion_tokens=30))
    [restamped] = delivered.restamp([final])
    assert restamped.usage == Usage(prompt_tokens=32, completion_tokens=33)


def test_a_resumed_usage_keeps_the_continuations_details() -> None:
    delivered = Delivered()
    delivered.note([chunk("12345678")])
    delivered.broke(prompt_tokens=10)
    usage = Usage(12, 30, cache_read_tokens=8, cache_write_tokens=2, reasoning_tokens=5)
    [restamped] = delivered.restamp([ChatChunk("y", "m", 0, (), usage)])
    assert restamped.usage == Usage(
        22, 32, cache_read_tokens=8, cache_write_tokens=2, reasoning_tokens=5
    )
