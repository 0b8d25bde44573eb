"""A RunPod job's ``output`` in each shape its workers give, whole and streamed: the
text, finish reason and token counts read from each, and every shape it cannot read
refused with an error that says so (a worker's own error as the provider's failure)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import ProviderInternalError, SerializationError, StreamError, Usage
from adapters._runpod_output import RunPodStreamDecoder, answer_from_output


def answer(output: Any) -> tuple[str, str | None, Usage | None]:
    resp = answer_from_output(output)
    return resp.choices[0].message.text(), resp.choices[0].finish_reason, resp.usage


def test_each_whole_output_shape_gives_its_text_finish_and_usage() -> None:
    assert answer({"text": "from text"}) == ("from text", "stop", None)
    assert answer({"output": "from output", "usage": {"input": 3}}) == (
        "from output",
        "stop",
        Usage(3, 0),
    )
    chat = {
        "object": "chat.completion",
        "choices": [{"message": {"role": "assistant", "content": "hi"}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
    assert answer(chat) == ("hi", "length", Usage(5, 1))
    empty_message = {"choices": [{"message": {"content": None}}]}
    assert answer(empty_message) == ("", "stop", None)
    completion = [
        {"choices": [{"text": "a"}]},
        {"choices": [{"text": "b", "finish_reason": "stop"}]},
    ]
    assert answer(completion) == ("ab", "stop", None)


@pytest.mark.parametrize(
    ("output", "error", "message"),
    [
        (42, SerializationError, "no text in a known shape"),
        ({"result": 1}, SerializationError, "no text in a known shape"),
        (
            {"choices": [{"tokens": ["a"]}], "usage": {"input": "many"}},
            SerializationError,
            "malformed",
        ),
        (
            {"error": "CUDA out of memory"},
            ProviderInternalError,
            "worker failed: CUDA out of memory",
        ),
    ],
)
def test_an_output_it_cannot_read_is_refused(
    output: Any, error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        answer_from_output(output)


def event(status: str, *outputs: Any, **more: Any) -> bytes:
    return orjson.dumps({"status": status, "stream": [{"output": o} for o in outputs], **more})


def texts(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def test_a_stream_of_parts_opens_once_then_ends_with_the_finish_and_usage() -> None:
    decoder = RunPodStreamDecoder()
    assert decoder.buffered == 0
    first = decoder.feed(event("IN_PROGRESS", {"choices": [{"tokens": ["he", "llo"]}]}, ""))
    assert first[0].choices[0].delta.role == "assistant"
    assert texts(first) == "hello"
    assert not decoder.finished
    last = {
        "choices": [{"tokens": ["!"], "finish_reason": "length"}],
        "usage": {"input": 4, "output": 3},
    }
    assert texts(decoder.feed(event("IN_PROGRESS", last))) == "!"
    assert decoder.feed(event("COMPLETED")) == []
    assert decoder.finished
    finish, usage = decoder.close()
    assert finish.choices[0].finish_reason == "length"
    assert usage.usage == Usage(4, 3)


def test_a_stream_of_openai_sse_text_is_decoded_as_openai_chunks() -> None:
    decoder = RunPodStreamDecoder()
    chunk = {
        "id": "c1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": "yo"}, "finish_reason": "stop"}
        ],
    }
    sse = f"data: {orjson.dumps(chunk).decode()}\n\n"
    got = decoder.feed(event("IN_PROGRESS", sse[:20]))  # an event cut anywhere
    assert decoder.buffered > 0
    got += decoder.feed(event("IN_PROGRESS", sse[20:], "data: [DONE]\n\n"))
    assert texts(got) == "yo"
    decoder.feed(event("COMPLETED"))
    assert decoder.close() == []


def test_a_stream_that_fails_or_stops_short_raises() -> None:
    with pytest.raises(StreamError, match=r"ended without its answer: worker crashed"):
        RunPodStreamDecoder().feed(event("FAILED", error="worker crashed"))
    with pytest.raises(StreamError, match=r"ended without its answer: timed_out"):
        RunPodStreamDecoder().feed(event("TIMED_OUT"))
    with pytest.raises(StreamError, match=r"unreadable stream part: .*known shape"):
        RunPodStreamDecoder().feed(event("IN_PROGRESS", 7))
    decoder = RunPodStreamDecoder()
    decoder.feed(event("IN_PROGRESS", "part"))
    with pytest.raises(StreamError, match=r"ended before the job completed"):
        decoder.close()
