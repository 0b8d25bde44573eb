"""Reasoning across formats, in the pure codecs: DeepSeek's and vLLM's
``reasoning_content`` (and vLLM's newer ``reasoning``) read and written back whole and
streamed, with ``system_fingerprint`` and ``service_tier``; ``reasoning_effort`` as an
Anthropic thinking budget."""

from __future__ import annotations

from typing import Any

import pytest

from adapters import UnsupportedParameter
from adapters._anthropic_request import THINKING_BUDGETS, request_to_wire
from adapters._openai_request import request_from_wire
from adapters._openai_response import (
    chunk_from_wire,
    chunk_to_wire,
    response_from_wire,
    response_to_wire,
)

ANSWER: dict[str, Any] = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "deepseek-reasoner",
    "system_fingerprint": "fp_1",
    "service_tier": "default",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "4",
                "refusal": None,
                "reasoning_content": "2+2",
            },
            "logprobs": None,
            "finish_reason": "stop",
        }
    ],
}


@pytest.mark.parametrize("name", ["reasoning_content", "reasoning"])
def test_whole_answers_keep_reasoning_and_identity(name: str) -> None:
    message = {**ANSWER["choices"][0]["message"]}
    message[name] = message.pop("reasoning_content")
    raw = {**ANSWER, "choices": [{**ANSWER["choices"][0], "message": message}]}
    assert response_to_wire(response_from_wire(raw)) == ANSWER


@pytest.mark.parametrize("name", ["reasoning_content", "reasoning"])
def test_chunks_keep_reasoning_and_identity(name: str) -> None:
    chunk = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "system_fingerprint": "fp_1",
        "service_tier": "flex",
        "choices": [{"index": 0, "delta": {name: "hmm"}, "logprobs": None, "finish_reason": None}],
    }
    out = chunk_to_wire(chunk_from_wire(chunk))
    assert out["choices"][0]["delta"] == {"reasoning_content": "hmm"}
    assert (out["system_fingerprint"], out["service_tier"]) == ("fp_1", "flex")
    assert chunk_from_wire(chunk).has_content  # a reasoning piece commits the stream


def _anthropic(**fields: Any) -> dict[str, Any]:
    body = {"model": "r", "messages": [{"role": "user", "content": "hi"}], **fields}
    return request_to_wire(request_from_wire(body), "claude", 4096)


@pytest.mark.parametrize(("effort", "budget"), sorted(THINKING_BUDGETS.items()))
def test_reasoning_effort_is_a_thinking_budget(effort: str, budget: int) -> None:
    body = _anthropic(reasoning_effort=effort, max_completion_tokens=50)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == budget + 50 > budget
    roomy = _anthropic(reasoning_effort=effort, max_completion_tokens=10_000)
    assert roomy["max_tokens"] == 10_000


def test_no_effort_no_thinking() -> None:
    assert "thinking" not in _anthropic(reasoning_effort="none")
    assert "thinking" not in _anthropic()
    with pytest.raises(UnsupportedParameter) as refused:
        _anthropic(reasoning_effort="extreme")
    assert refused.value.param == "reasoning_effort"
