"""The format rules every answer of the suite is held to (``_wire.py``): the checks
themselves catch what they are for, and they run on each kind's answers."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.conformance._wire import PROBLEMS, MessagesSequence, chat_problems, checked
from tests.conformance.conftest import kinds

if TYPE_CHECKING:
    from tests.conformance._case import ProviderCase
    from tests.conformance.conftest import Gateway

ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "m",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "hi", "refusal": None},
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
}
CHUNK: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "m",
    "choices": [{"index": 0, "delta": {"content": "hi"}, "logprobs": None, "finish_reason": None}],
}


def test_the_openai_schema_holds_answers_and_chunks_to_it() -> None:
    assert chat_problems(ANSWER, chunk=False) == []
    assert chat_problems(CHUNK, chunk=True) == []
    message = {"role": "assistant", "content": "hi"}  # no refusal: the schema wants it
    no_refusal = {**ANSWER, "choices": [{**ANSWER["choices"][0], "message": message}]}
    assert chat_problems(no_refusal, chunk=False)
    assert chat_problems({**ANSWER, "created": "now"}, chunk=False)
    assert chat_problems({**CHUNK, "object": "chat.completion"}, chunk=True)
    odd = {**CHUNK["choices"][0], "finish_reason": "tired"}
    assert chat_problems({**CHUNK, "choices": [odd]}, chunk=True)


def _sequence(*events: tuple[str, dict[str, Any]]) -> list[str]:
    sequence = MessagesSequence()
    start = {"id": "m", "type": "message", "role": "assistant", "content": [], "model": "c"}
    sequence.event("message_start", {"type": "message_start", "message": {**start, "usage": {}}})
    for name, data in events:
        sequence.event(name, {"type": name, **data})
    sequence.end()
    return sequence.problems


def _block(index: int) -> list[tuple[str, dict[str, Any]]]:
    return [
        ("content_block_start", {"index": index, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": "x"}}),
        ("content_block_stop", {"index": index}),
    ]


END = [
    ("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 1}}),
    ("message_stop", {}),
]


def test_anthropics_event_sequence() -> None:
    assert _sequence(*_block(0), ("ping", {}), *_block(1), *END) == []
    late = ("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": "y"}})
    assert _sequence(*_block(0), late, *END)  # a delta after its block's stop
    opened = _block(0)[:2]
    assert _sequence(*opened, *_block(1), ("content_block_stop", {"index": 0}), *END)
    assert _sequence(*_block(1), *END)  # blocks count from 0
    assert _sequence(*_block(0))  # no message_stop
    assert _sequence(*_block(0), *END, *_block(1))  # after the end


@kinds()
async def test_each_kinds_answers_are_checked(gateway: Gateway, case: ProviderCase) -> None:
    before = dict(checked)
    async with gateway(case) as served, served.anthropic() as client:
        await served.client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}]
        )
        await served.stream("chat")
        async with client.messages.stream(
            model="chat", max_tokens=50, messages=[{"role": "user", "content": "one two"}]
        ) as stream:
            await stream.get_final_message()
    assert checked["answers"] == before["answers"] + 1
    assert checked["chunks"] > before["chunks"]
    assert checked["messages"] == before["messages"] + 1
    assert PROBLEMS == []
