"""A fake Anthropic Messages API, on :mod:`tests.fakes._base`.

Faithful to PROVIDERS.md §2: ``POST /v1/messages`` and ``GET /v1/models``; it requires
``x-api-key`` (or ``Authorization: Bearer``) equal to :attr:`FakeAnthropic.key` and an
``anthropic-version`` header, and ``max_tokens`` in the body; errors come as
``{"type":"error","error":{type,message},"request_id"}`` with a ``request-id`` header;
streams are named SSE events with ``ping``s, ``input_json_delta`` pieces, and cumulative
``message_delta`` usage. It answers per the model asked for:

- any model: a text answer echoing the last user text, with ``[N image(s)]`` when the
  last user turn held images;
- ``tool-caller``: "Let me check." then a ``get_weather`` tool_use (arguments streamed
  in three pieces), stop reason ``tool_use``;
- ``refuser``: :data:`REFUSAL`, stop reason ``refusal``; ``long``: stop reason ``max_tokens``;
- ``stopper``: stop reason ``stop_sequence``, the request's first stop sequence (or ``END``);
- ``fail-400``, ``fail-401``, ``fail-403``, ``fail-404``, ``fail-429`` (with
  ``retry-after`` and ``anthropic-ratelimit-*`` headers), ``fail-500``, ``fail-529``
  (``overloaded_error``), ``fail-ctx`` ("prompt is too long");
- the shared stream cuts; ``error-mid-stream`` is an ``event: error`` overloaded;
- a final assistant message is continued (the shared prefill script); one whose text
  ends in whitespace is refused, as Anthropic does;
- ``thinker``: a ``thinking`` block (with its signature) before the text "Done", stop
  reason ``stop_sequence`` (``"END"``), usage with cache reads and writes, and a field
  the API might add one day (``future_field``);
- a forced ``tool_choice`` (``{"type": "tool", "name"}``, or ``any``: the first tool,
  but ``tool-caller`` keeps its own call) is obeyed: the answer is that tool's call alone,
  with an input its ``input_schema`` accepts (:func:`forced_tool`).
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

import attrs

from tests.fakes._base import Answer, FakeServer, Headers, Received, Reply, Stream, echo, sse, words
from tests.fakes.schema import instance

KEY = "sk-ant-fake-key"
MSG_ID = "msg_01fake"
#: What ``refuser`` says before its stop reason ``refusal``.
REFUSAL = "I can't help with that."
TOOL_ID = "toolu_01fake"
USAGE = {
    "input_tokens": 20,
    "output_tokens": 9,
    "cache_creation_input_tokens": 0,
    "cache_read_input_tokens": 5,
}
_ERRORS = {
    400: ("invalid_request_error", "temperature: range: 0..1"),
    401: ("authentication_error", "invalid x-api-key"),
    403: (
        "permission_error",
        "Your API key does not have permission to use the specified resource.",
    ),
    404: ("not_found_error", "model: claude-nope"),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit"),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}


@attrs.define
class FakeAnthropic(FakeServer):
    key: str = KEY

    HEADERS: ClassVar[Headers] = [(b"request-id", b"req_fake")]

    def answer(self, got: Received) -> Answer:
        given = got.headers.get("x-api-key") or got.headers.get("authorization", "")
        if given.removeprefix("Bearer ") != self.key:
            return self.failure("401", got)
        if "anthropic-version" not in got.headers:
            return _error(400, "anthropic-version: header is required")
        if got.method == "GET" and got.path == "/v1/models":
            return Reply(200, _MODELS)
        if got.method == "POST" and got.path == "/v1/messages/count_tokens":
            return _count(got.body)
        if got.method != "POST" or got.path != "/v1/messages":
            return _error(404, f"{got.method} {got.path} not found")
        if not isinstance(got.body.get("max_tokens"), int):
            return _error(400, "max_tokens: Field required")
        prefill = self.prefill(got)
        if prefill is not None and prefill != prefill.rstrip():
            return _error(400, "final assistant content cannot end with trailing whitespace")
        return self.scripted(got.body["model"], got, stream=bool(got.body.get("stream")))

    def failure(self, code: str, got: Received) -> Reply:
        if code == "ctx":
            return _error(400, "prompt is too long: 250000 tokens > 200000 maximum")
        return _error(int(code))

    def invalid(self, message: str) -> Reply:
        return _error(400, message)

    def prefill(self, got: Received) -> str | None:
        messages = got.body.get("messages") or []
        if not messages or messages[-1]["role"] != "assistant":
            return None
        content = messages[-1]["content"]
        if isinstance(content, str):
            return content
        return "".join(b["text"] for b in content if b["type"] == "text")

    def reply(self, model: str, got: Received) -> Reply:
        forced = forced_tool(got.body, any_tool=model != "tool-caller")
        if forced is not None:
            return Reply(200, _tool_message(model, *forced))
        if model == "thinker":
            return Reply(200, thought_message(model))
        return Reply(200, _message(got.body, self.answer_text(model, got, _answer(got.body))))

    def stream(self, model: str, got: Received) -> Stream:
        forced = forced_tool(got.body, any_tool=model != "tool-caller")
        if forced is not None:
            return tool_stream(model, *forced)
        if model == "thinker":
            return thought_stream(model)
        text = self.answer_text(model, got, _answer(got.body))
        return _stream(model, text, _stop_sequence(got.body))


def forced_tool(
    body: dict[str, Any], *, any_tool: bool = True
) -> tuple[str, dict[str, Any]] | None:
    """``(name, input)`` of the call a forced ``tool_choice`` makes: an input that the
    tool's ``input_schema`` accepts, as a model obliged to call it would give; with
    ``any_tool``, ``any`` forces the first tool (``tool-caller`` keeps its own call)."""
    choice, tools = body.get("tool_choice") or {}, body.get("tools") or []
    if any_tool and choice.get("type") == "any" and tools:  # the first will do
        choice = {"type": "tool", "name": tools[0]["name"]}
    if choice.get("type") != "tool":
        return None
    tool = next(t for t in tools if t["name"] == choice["name"])
    return tool["name"], instance(tool["input_schema"])


def _tool_message(model: str, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    block = {"type": "tool_use", "id": TOOL_ID, "name": name, "input": arguments}
    return {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "model": model + "-20250101",
        "content": [block],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": USAGE,
    }


def tool_stream(model: str, name: str, arguments: dict[str, Any]) -> Stream:
    """A forced call alone: its input streamed in three pieces."""
    start = {**_tool_message(model, name, {}), "content": [], "stop_reason": None}
    block = {"type": "tool_use", "id": TOOL_ID, "name": name, "input": {}}
    head = [
        event("message_start", {"message": start}),
        event("content_block_start", {"index": 0, "content_block": block}),
    ]
    text = json.dumps(arguments)
    third = max(len(text) // 3, 1)
    pieces = [
        event(
            "content_block_delta",
            {"index": 0, "delta": {"type": "input_json_delta", "partial_json": piece}},
        )
        for piece in (text[:third], text[third : 2 * third], text[2 * third :])
        if piece
    ]
    final = {"stop_reason": "tool_use", "stop_sequence": None}
    tail = [
        event("content_block_stop", {"index": 0}),
        event("message_delta", {"delta": final, "usage": {"output_tokens": 9}}),
        event("message_stop", {}),
    ]
    return Stream(head, pieces, tail)


_MODELS = {
    "data": [
        {
            "type": "model",
            "id": "claude-test",
            "display_name": "Claude Test",
            "created_at": "2025-01-01T00:00:00Z",
        }
    ],
    "has_more": False,
    "first_id": "claude-test",
    "last_id": "claude-test",
}


def _answer(payload: dict[str, Any]) -> str:
    for message in reversed(payload["messages"]):
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            return echo([content])
        texts = [b["text"] for b in content if b["type"] == "text"]
        images = sum(1 for b in content if b["type"] == "image")
        if texts or images:
            return echo(texts, images)
    return "hello"


def _stop_reason(model: str) -> str:
    stops = {"tool-caller": "tool_use", "refuser": "refusal", "long": "max_tokens"}
    return stops.get(model, "stop_sequence" if model == "stopper" else "end_turn")


def _stop_sequence(payload: dict[str, Any]) -> str | None:
    """``stopper`` ends at the request's first stop sequence, as if it had met it."""
    if payload["model"] != "stopper":
        return None
    return str((payload.get("stop_sequences") or ["END"])[0])


def _message(payload: dict[str, Any], text: str) -> dict[str, Any]:
    model = payload["model"]
    if model == "tool-caller":
        content: list[dict[str, Any]] = [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": TOOL_ID, "name": "get_weather", "input": {"city": "Paris"}},
        ]
    elif model == "refuser":
        content = [{"type": "text", "text": REFUSAL}]
    else:
        content = [{"type": "text", "text": text}]
    return {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "model": model + "-20250101",
        "content": content,
        "stop_reason": _stop_reason(model),
        "stop_sequence": _stop_sequence(payload),
        "usage": USAGE,
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return sse({"type": name, **data}, event=name)


def _stream(model: str, text: str, stop_sequence: str | None = None) -> Stream:
    start: dict[str, Any] = {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "model": model + "-20250101",
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": {**USAGE, "output_tokens": 1},
    }
    head = [event("message_start", {"message": start}), event("ping", {})]
    first = {"tool-caller": "Let me check.", "refuser": REFUSAL}.get(model, text)
    text_block = {"type": "text", "text": ""}
    head.append(event("content_block_start", {"index": 0, "content_block": text_block}))
    pieces = [
        event("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": w}})
        for w in words(first)
    ]
    tail = [event("content_block_stop", {"index": 0})]
    index = 1
    if model == "tool-caller":
        block = {"type": "tool_use", "id": TOOL_ID, "name": "get_weather", "input": {}}
        tail.append(event("content_block_start", {"index": index, "content_block": block}))
        for piece in ("", '{"city"', ': "Par', 'is"}'):
            delta = {"type": "input_json_delta", "partial_json": piece}
            tail.append(event("content_block_delta", {"index": index, "delta": delta}))
        tail.append(event("ping", {}))
        tail.append(event("content_block_stop", {"index": index}))
    final: dict[str, Any] = {"stop_reason": _stop_reason(model), "stop_sequence": stop_sequence}
    tail.append(event("message_delta", {"delta": final, "usage": {"output_tokens": 9}}))
    tail.append(event("message_stop", {}))
    error = {"error": {"type": "overloaded_error", "message": "Overloaded"}}
    return Stream(head, pieces, tail, error=event("error", error))


def stream_events(model: str, text: str) -> list[bytes]:
    """The whole event sequence of one streamed answer (also a recorded test stream)."""
    stream = _stream(model, text)
    return [*stream.head, *stream.pieces, *stream.tail]


def _count(body: dict[str, Any]) -> Reply:
    """``/v1/messages/count_tokens``: a count the tests can recompute (the messages' and
    tools' JSON over 3, plus 1000); models named ``fail-<status>`` fail with it."""
    if "max_tokens" in body:  # as Anthropic: the count takes no generation settings
        return _error(400, "max_tokens: Extra inputs are not permitted")
    model = str(body.get("model", ""))
    if model.startswith("fail-"):
        return _error(int(model.removeprefix("fail-")))
    return Reply(200, {"input_tokens": fake_count(body)})


def fake_count(body: dict[str, Any]) -> int:
    return 1000 + len(json.dumps([body.get("messages"), body.get("tools")])) // 3


def _error(status: int, message: str | None = None) -> Reply:
    kind, default = _ERRORS[status]
    headers: list[tuple[bytes, bytes]] = []
    if status == 429:
        headers = [
            (b"retry-after", b"7"),
            (b"anthropic-ratelimit-requests-limit", b"50"),
            (b"anthropic-ratelimit-requests-remaining", b"0"),
            (b"anthropic-ratelimit-requests-reset", b"2025-01-01T00:00:07Z"),
        ]
    body = {
        "type": "error",
        "error": {"type": kind, "message": message or default},
        "request_id": "req_fake",
    }
    return Reply(status, body, headers)


THOUGHT = {"type": "thinking", "thinking": "Let me think.", "signature": "sig-1"}
THOUGHT_USAGE = {**USAGE, "cache_creation_input_tokens": 4}


def thought_message(model: str) -> dict[str, Any]:
    return {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "model": model + "-20250101",
        "content": [THOUGHT, {"type": "text", "text": "Done"}],
        "stop_reason": "stop_sequence",
        "stop_sequence": "END",
        "usage": THOUGHT_USAGE,
        "future_field": {"kept": True},
    }


def thought_stream(model: str) -> Stream:
    start = {**thought_message(model), "content": [], "stop_reason": None, "stop_sequence": None}
    thinking = {"type": "thinking", "thinking": "", "signature": ""}
    head = [
        event("message_start", {"message": start}),
        event("content_block_start", {"index": 0, "content_block": thinking}),
        event(
            "content_block_delta",
            {"index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me think."}},
        ),
        event(
            "content_block_delta",
            {"index": 0, "delta": {"type": "signature_delta", "signature": "sig-1"}},
        ),
        event("content_block_stop", {"index": 0}),
        event("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
    ]
    pieces = [
        event("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "Done"}})
    ]
    final = {"stop_reason": "stop_sequence", "stop_sequence": "END"}
    tail = [
        event("content_block_stop", {"index": 1}),
        event("future_event", {"what": "a new kind of event"}),
        event("message_delta", {"delta": final, "usage": {"output_tokens": 9}}),
        event("message_stop", {}),
    ]
    return Stream(head, pieces, tail)
