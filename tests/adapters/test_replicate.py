"""Replicate's less-used paths: the create request's inputs (a conversation as one
transcript, the sampling settings, a pinned version), model names it refuses, a
prediction's output or metrics it cannot read, a finish by length, a canceled
prediction, and events after the stream's end."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from adapters import (
    GatewayRequest,
    InvalidRequest,
    Message,
    ProviderInternalError,
    SerializationError,
)
from adapters._replicate import ReplicateAdapter

BASE = "https://api.replicate.com/v1"
REQ = GatewayRequest(model="m", messages=(Message("user", "hi"),))


def test_a_conversation_with_settings_becomes_the_inputs_of_a_pinned_version() -> None:
    adapter = ReplicateAdapter(BASE, "r8_k", max_tokens_input="max_new_tokens", cancel_after=0.2)
    req = GatewayRequest(
        model="m",
        messages=(
            Message("system", "be brief"),
            Message("user", "hi"),
            Message("assistant", "hello"),
            Message("user", "again"),
        ),
        max_tokens=5,
        temperature=0.2,
        top_p=0.5,
        stop=("END", "STOP"),
        extra={"seed": 11},
        stream=True,
    )
    request = adapter.build_request(req, "meta/llama:abc123")
    assert request.url == f"{BASE}/predictions"
    assert ("cancel-after", "1s") in request.headers  # at least a second
    assert not any(k == "prefer" for k, _ in request.headers)  # a stream does not wait
    body = orjson.loads(request.body)
    assert (body["version"], body["stream"]) == ("abc123", True)
    inputs = body["input"]
    assert inputs["system_prompt"] == "be brief"
    assert "hi" in inputs["prompt"]
    assert "again" in inputs["prompt"]  # the whole conversation, in one transcript
    assert (inputs["max_new_tokens"], inputs["temperature"], inputs["top_p"]) == (5, 0.2, 0.5)
    assert (inputs["stop_sequences"], inputs["seed"]) == ("END,STOP", 11)
    assert "r8_k" not in repr(adapter)


@pytest.mark.parametrize("model", ["llama", "meta/", "/llama", "meta/llama/extra"])
def test_a_model_that_is_not_owner_slash_name_is_refused(model: str) -> None:
    with pytest.raises(InvalidRequest, match='"owner/name" or "owner/name:version"'):
        ReplicateAdapter(BASE).build_request(REQ, model)


def prediction(status: str, **more: Any) -> bytes:
    return orjson.dumps({"id": "p1", "status": status, **more})


def test_a_prediction_that_ends_by_length_or_text_or_cancel() -> None:
    adapter = ReplicateAdapter(BASE)
    req = GatewayRequest(model="m", messages=(Message("user", "hi"),), max_tokens=2)
    metrics = {"input_token_count": 1, "output_token_count": 2}
    done = adapter.parse_job(
        req, "m", 200, (), prediction("succeeded", output="ab", metrics=metrics)
    )
    assert done.answer is not None
    assert done.answer.choices[0].message.content == "ab"  # a plain string output
    assert done.answer.choices[0].finish_reason == "length"  # it used every token asked
    assert done.poll is None  # no urls: nothing to follow
    unmetered = adapter.parse_job(REQ, "m", 200, (), prediction("succeeded", output=["x"]))
    assert unmetered.answer is not None
    assert unmetered.answer.usage is None
    canceled = adapter.parse_job(REQ, "m", 200, (), prediction("canceled"))
    assert isinstance(canceled.error, ProviderInternalError)
    assert canceled.error.message == "the prediction was canceled"
    failed = adapter.parse_job(REQ, "m", 200, (), prediction("failed"))
    assert isinstance(failed.error, ProviderInternalError)
    assert failed.error.message.endswith("no reason given")


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"output": [1, 2]}, "not text"),
        ({"output": {"text": "x"}}, "not text"),
        ({"output": "x", "metrics": {"output_token_count": "lots"}}, "malformed metrics"),
    ],
)
def test_a_prediction_it_cannot_read_is_refused(more: dict[str, Any], message: str) -> None:
    with pytest.raises(SerializationError, match=message):
        ReplicateAdapter(BASE).parse_job(REQ, "m", 200, (), prediction("succeeded", **more))


def test_the_answer_comes_only_through_the_prediction_and_the_probe_asks_the_account() -> None:
    adapter = ReplicateAdapter(BASE, "r8_k")
    with pytest.raises(SerializationError, match="read through parse_job"):
        adapter.parse_response(200, (), b"{}")
    probe = adapter.probe_request()
    assert (probe.method, probe.url) == ("GET", f"{BASE}/account")
    assert ("authorization", "Bearer r8_k") in probe.headers


def test_events_after_the_streams_end_are_ignored() -> None:
    decoder = ReplicateAdapter(BASE).stream_decoder()
    chunks = decoder.feed(
        b"event: output\ndata: a\n\nevent: done\ndata: {}\n\nevent: output\ndata: late\n\n"
    )
    chunks += decoder.close()
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "a"
