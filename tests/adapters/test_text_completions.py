"""Legacy text completions: the request read, the body sent to each OpenAI-format kind,
and the stream decoder (in any chunking, whole or cut)."""

from __future__ import annotations

from itertools import pairwise
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adapters import (
    InvalidRequest,
    StreamError,
    TextCompleter,
    TextStreamDecoder,
    UnsupportedCapability,
    adapter_factory,
    text_request_from_wire,
)

EVENTS = [
    {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
     "choices": [{"text": "Hel", "index": 0, "logprobs": None, "finish_reason": None}]},
    {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m",
     "choices": [{"text": "lo", "index": 0, "logprobs": None, "finish_reason": "stop"}]},
    {"id": "cmpl-1", "object": "text_completion", "created": 1, "model": "m", "choices": [],
     "usage": {"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4}},
]  # fmt: skip
WIRE = b"".join(b"data: " + orjson.dumps(e) + b"\n\n" for e in EVENTS) + b"data: [DONE]\n\n"


def test_the_request_is_read_for_what_the_gateway_needs() -> None:
    req = text_request_from_wire(
        {"model": "r", "prompt": ["ab", "cdef"], "max_tokens": 8, "n": 2, "best_of": 3,
         "stream": True, "stream_options": {"include_usage": True}, "echo": True}
    )  # fmt: skip
    assert (req.stream, req.include_usage, req.max_tokens) == (True, True, 8)
    assert (req.choices, req.prompts, req.prompt_chars, req.prompt_tokens) == (3, 2, 6, 0)
    tokens = text_request_from_wire({"model": "r", "prompt": [[1, 2], [3]]})
    assert (tokens.prompt_tokens, tokens.prompts, tokens.max_tokens) == (3, 2, 16)


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"model": "r"}, "prompt"),
        ({"model": "r", "prompt": [[]]}, "prompt"),
        ({"model": "r", "prompt": [True]}, "prompt"),
        ({"model": "r", "prompt": "a", "max_tokens": -1}, "max_tokens"),
        ({"model": "r", "prompt": "a", "stop": [1]}, "stop"),
        ({"model": "r", "prompt": "a", "temperature": "hot"}, "temperature"),
        ({"model": "r", "prompt": "a", "suffix": 3}, "suffix"),
        ({"model": "r", "prompt": "a", "stream_options": []}, "stream_options"),
    ],
)
def test_a_malformed_request_names_its_parameter(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        text_request_from_wire(body)
    assert refused.value.param == param


def _adapter(kind: str, **settings: Any) -> Any:
    return adapter_factory(kind)("p", {"base_url": "https://host/v1", **settings})


def test_openai_format_kinds_get_the_body_with_the_model_replaced() -> None:
    req = text_request_from_wire({"model": "route", "prompt": "hi", "stream": True, "x": 1})
    openai = _adapter("openai", api_key="k").text_completion_request(req, "davinci-002")
    assert openai.url == "https://host/v1/completions"
    assert orjson.loads(openai.body) == {
        "model": "davinci-002",
        "prompt": "hi",
        "stream": True,
        "x": 1,
        "stream_options": {"include_usage": True},  # OpenAI takes it: usage for charging
    }
    compatible = _adapter("openai_compatible").text_completion_request(req, "m")
    assert "stream_options" not in orjson.loads(compatible.body)  # may not take it
    azure = _adapter("azure", api_key="k", api_version="2024-10-21")
    sent = azure.text_completion_request(req, "dep")
    assert sent.url == "https://host/v1/openai/deployments/dep/completions?api-version=2024-10-21"
    assert "model" not in orjson.loads(sent.body)


def test_kinds_without_the_api_say_so() -> None:
    req = text_request_from_wire({"model": "route", "prompt": "hi"})
    with pytest.raises(UnsupportedCapability):
        _adapter("groq").text_completion_request(req, "llama")
    assert not isinstance(_adapter("anthropic", api_key="k"), TextCompleter)


def test_a_whole_stream_keeps_each_event_and_reads_usage() -> None:
    decoder = TextStreamDecoder()
    chunks = decoder.feed(WIRE) + decoder.close()
    assert b"".join(c.raw or b"" for c in chunks) + b"data: [DONE]\n\n" == WIRE
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "Hello"
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 4


@given(st.lists(st.integers(min_value=1, max_value=len(WIRE) - 1), max_size=6))
def test_any_chunking_gives_the_same_chunks(cuts: list[int]) -> None:
    bounds = [0, *sorted(set(cuts)), len(WIRE)]
    decoder = TextStreamDecoder()
    chunks = [c for a, b in pairwise(bounds) for c in decoder.feed(WIRE[a:b])]
    chunks += decoder.close()
    whole = TextStreamDecoder()
    assert chunks == whole.feed(WIRE) + whole.close()


@pytest.mark.parametrize(
    "wire",
    [
        b"data: " + orjson.dumps(EVENTS[0]) + b"\n\n",  # cut before its finish
        b'data: {"error": {"message": "boom", "type": "server_error"}}\n\n',
        b"data: {not json}\n\n",
    ],
)
def test_a_cut_or_failed_stream_raises(wire: bytes) -> None:
    decoder = TextStreamDecoder()
    with pytest.raises(StreamError):  # noqa: PT012 (raised by the feed or the close)
        decoder.feed(wire)
        decoder.close()
