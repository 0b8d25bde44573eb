"""A fake Cohere v2 Chat API: ``POST /v2/chat``, SSE streams of typed events.

Wants ``Authorization: Bearer <key>`` (401 ``{"id", "message": "invalid api token"}``
otherwise). Behaviour is scripted by the model name:

- any model: an answer echoing the last user text; streamed as ``message-start``,
  ``content-start``, one ``content-delta`` per word, ``content-end``, ``message-end``
  (``finish_reason`` and ``usage`` with ``billed_units`` and ``tokens``), each an SSE
  event named by its type;
- ``tool-caller``: a ``tool-plan-delta``, then a ``get_weather`` call with arguments
  in pieces (``tool-call-start`` / ``-delta`` / ``-end``), ``TOOL_CALL``;
- ``*-vision-*`` models: the answer says how many images they got; other models
  refuse images with a 400, as Cohere's text models do;
- ``long``: ``MAX_TOKENS``;
- ``fail-400``, ``fail-401``, ``fail-404``, ``fail-429``, ``fail-500``, ``fail-503``,
  ``fail-ctx`` ("too many tokens"): that status with ``{"id", "message"}``;
- the shared stream cuts (:mod:`tests.fakes._base`); ``error-mid-stream`` ends with
  ``message-end`` and ``finish_reason: ERROR``.

``POST /v2/embed`` (``model``, ``texts`` up to 96, a required ``input_type``;
``output_dimension`` only for ``embed-v4`` models) answers float vectors by type
(:mod:`tests.fakes._vectors`) with ``meta.billed_units.input_tokens``. ``GET /v1/models``
lists models.
"""

from __future__ import annotations

from typing import Any

import attrs

from tests.fakes._base import (
    ARGUMENT_PIECES,
    Answer,
    FakeServer,
    Received,
    Reply,
    Stream,
    echo,
    sse,
    trailing_assistant_text,
    words,
)
from tests.fakes._vectors import fake_tokens, fake_vector

__all__ = ["FakeCohere"]

ID = "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
_ERRORS = {
    "400": (400, "invalid request: 'temperature' must be between 0 and 1"),
    "401": (401, "invalid api token"),
    "404": (404, "model 'fail-404' not found, make sure the correct model ID was used"),
    "429": (429, "You are using a Trial key, which is limited to 10 API calls / minute."),
    "500": (500, "internal server error, this has been reported to our developers"),
    "503": (503, "service unavailable"),
    "ctx": (
        400,
        "too many tokens: total number of tokens in the prompt cannot exceed 128000 - "
        "received 140000. Try using a shorter prompt",
    ),
}


def _last_user(messages: list[dict[str, Any]]) -> tuple[str, int]:
    for message in reversed(messages):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, str):
                return echo([content]), 0
            images = sum(1 for p in content if p["type"] == "image_url")
            return echo([p["text"] for p in content if p["type"] == "text"], images), images
    return "hello", 0


def _usage(output: int) -> dict[str, Any]:
    return {
        "billed_units": {"input_tokens": 5.0, "output_tokens": float(output)},
        "tokens": {"input_tokens": 71.0, "output_tokens": float(output)},
    }


def _event(event: dict[str, Any]) -> bytes:
    return sse(event, event=event["type"])


def _message(**fields: Any) -> dict[str, Any]:
    return {"message": fields}


_CALL = {"id": "get_weather_k1", "type": "function"}


@attrs.define
class FakeCohere(FakeServer):
    api_key: str = "cohere-fake-key"

    def answer(self, got: Received) -> Answer:
        if got.headers.get("authorization", "") != f"Bearer {self.api_key}":
            return Reply(401, {"id": "e-auth", "message": "invalid api token"})
        if got.method == "GET" and got.path == "/v1/models":
            model = {"name": "command-a-03-2025", "endpoints": ["chat"]}
            return Reply(200, {"models": [model]})
        if got.method == "POST" and got.path == "/v2/embed":
            return self.embed(got)
        if got.method != "POST" or got.path != "/v2/chat":
            return Reply(404, {"id": "e-404", "message": "not found"})
        model = got.body["model"]
        if _last_user(got.body["messages"])[1] and "vision" not in model:
            message = f"invalid request: model '{model}' does not support image inputs"
            return Reply(400, {"id": "e-2", "message": message})
        return self.scripted(model, got, stream=bool(got.body.get("stream")))

    def embed(self, got: Received) -> Answer:
        body = got.body
        model, texts = body.get("model"), body.get("texts")
        if not isinstance(model, str) or not isinstance(texts, list) or not 0 < len(texts) <= 96:
            return self.invalid("invalid request: texts must hold between 1 and 96 strings")
        if body.get("input_type") is None:
            return self.invalid("invalid request: input_type is required for embed v3 and later")
        size = body.get("output_dimension")
        if size is not None and not model.startswith("embed-v4"):
            return self.invalid(f"invalid request: output_dimension is not supported by {model}")
        scripted = self.embedding_script(model, got)
        if scripted is not None:
            return scripted
        tokens = float(sum(fake_tokens(t) for t in texts))
        answer = {
            "id": ID,
            "embeddings": {"float": [fake_vector(t, size) for t in texts]},
            "texts": texts,
            "meta": {"api_version": {"version": "2"}, "billed_units": {"input_tokens": tokens}},
            "response_type": "embeddings_by_type",
        }
        return Reply(200, answer)

    def failure(self, code: str, got: Received) -> Reply:
        status, message = _ERRORS[code]
        return Reply(status, {"id": "e-1", "message": message})

    def invalid(self, message: str) -> Reply:
        return Reply(400, {"id": "e-2", "message": message})

    def prefill(self, got: Received) -> str | None:
        return trailing_assistant_text(got)

    def continues(self, got: Received) -> bool:
        return False  # Cohere documents no continuation: it answers anew

    def reply(self, model: str, got: Received) -> Reply:
        if model == "tool-caller":
            function = {"name": "get_weather", "arguments": '{"city":"Paris"}'}
            message: dict[str, Any] = {
                "role": "assistant",
                "tool_plan": "I will look up the weather in Paris.",
                "tool_calls": [{**_CALL, "function": function}],
            }
            finish = "TOOL_CALL"
        else:
            text = self.answer_text(model, got, _last_user(got.body["messages"])[0])
            message = {"role": "assistant", "content": [{"type": "text", "text": text}]}
            finish = "MAX_TOKENS" if model == "long" else "COMPLETE"
        return Reply(
            200, {"id": ID, "finish_reason": finish, "message": message, "usage": _usage(4)}
        )

    def stream(self, model: str, got: Received) -> Stream:
        start = _message(role="assistant", content=[], tool_plan="", tool_calls=[])
        head = [_event({"id": ID, "type": "message-start", "delta": start})]
        if model == "tool-caller":
            head.append(
                _event({"type": "tool-plan-delta", "delta": _message(tool_plan="I will look.")})
            )
            call = {**_CALL, "function": {"name": "get_weather", "arguments": ""}}
            head.append(
                _event({"type": "tool-call-start", "index": 0, "delta": _message(tool_calls=call)})
            )
            kind = "tool-call"
            deltas: list[dict[str, Any]] = [
                {"tool_calls": {"function": {"arguments": p}}} for p in ARGUMENT_PIECES
            ]
            finish = "TOOL_CALL"
        else:
            content = _message(content={"type": "text", "text": ""})
            head.append(_event({"type": "content-start", "index": 0, "delta": content}))
            text = self.answer_text(model, got, _last_user(got.body["messages"])[0])
            deltas = [{"content": {"text": w}} for w in words(text)]
            kind = "content"
            finish = "MAX_TOKENS" if model == "long" else "COMPLETE"
        pieces = [
            _event({"type": f"{kind}-delta", "index": 0, "delta": _message(**d)}) for d in deltas
        ]

        def end(finish: str) -> list[bytes]:
            usage = {"finish_reason": finish, "usage": _usage(4)}
            return [
                _event({"type": f"{kind}-end", "index": 0}),
                _event({"type": "message-end", "delta": usage}),
            ]

        return Stream(head, pieces, end(finish), error=b"".join(end("ERROR")))
