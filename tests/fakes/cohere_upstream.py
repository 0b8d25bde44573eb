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
- ``error-mid-stream``: one word, then ``message-end`` with ``finish_reason: ERROR``;
- ``break-mid-stream``: two words, then the connection drops.

``GET /v1/models`` lists models. Requests are recorded.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from tests.fakes.azure_upstream import Received, lifespan, read_body, record, send_json
from tests.fakes.openai_upstream import UpstreamBroke

__all__ = ["FakeCohere"]

ID = "c14c80c3-18eb-4519-9460-6c92edd8cfb4"
_ERRORS = {
    "fail-400": (400, "invalid request: 'temperature' must be between 0 and 1"),
    "fail-401": (401, "invalid api token"),
    "fail-404": (404, "model 'fail-404' not found, make sure the correct model ID was used"),
    "fail-429": (429, "You are using a Trial key, which is limited to 10 API calls / minute."),
    "fail-500": (500, "internal server error, this has been reported to our developers"),
    "fail-503": (503, "service unavailable"),
    "fail-ctx": (
        400,
        "too many tokens: total number of tokens in the prompt cannot exceed 128000 - "
        "received 140000. Try using a shorter prompt",
    ),
}


def _text(content: Any) -> tuple[str, int]:
    if isinstance(content, str):
        return content, 0
    texts = [p["text"] for p in content if p["type"] == "text"]
    return " ".join(texts), sum(1 for p in content if p["type"] == "image_url")


def _usage(output: int) -> dict[str, Any]:
    return {
        "billed_units": {"input_tokens": 5.0, "output_tokens": float(output)},
        "tokens": {"input_tokens": 71.0, "output_tokens": float(output)},
    }


@attrs.define
class FakeCohere:
    api_key: str = "cohere-fake-key"
    received: list[Received] = attrs.field(factory=list)
    url: str = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await lifespan(receive, send)
            return
        got = record(scope, await read_body(receive))
        self.received.append(got)
        if got.headers.get("authorization", "") != f"Bearer {self.api_key}":
            await send_json(send, 401, {"id": "e-auth", "message": "invalid api token"})
            return
        if got.method == "GET" and got.path == "/v1/models":
            model = {"name": "command-a-03-2025", "endpoints": ["chat"]}
            await send_json(send, 200, {"models": [model]})
            return
        if got.method != "POST" or got.path != "/v2/chat":
            await send_json(send, 404, {"id": "e-404", "message": "not found"})
            return
        model = got.body["model"]
        if model in _ERRORS:
            status, message = _ERRORS[model]
            await send_json(send, status, {"id": "e-1", "message": message})
            return
        text, images = self._last_user(got.body["messages"])
        if images and "vision" not in model:
            message = f"invalid request: model '{model}' does not support image inputs"
            await send_json(send, 400, {"id": "e-2", "message": message})
            return
        if images:
            text += f" [{images} image(s)]"
        if got.body.get("stream"):
            await self._stream(send, model, text)
        else:
            await send_json(send, 200, self._answer(model, text))

    @staticmethod
    def _last_user(messages: list[dict[str, Any]]) -> tuple[str, int]:
        for message in reversed(messages):
            if message["role"] == "user":
                text, images = _text(message["content"])
                return f"echo: {text}", images
        return "hello", 0

    def _answer(self, model: str, text: str) -> dict[str, Any]:
        if model == "tool-caller":
            call = {
                "id": "get_weather_k1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
            }
            message: dict[str, Any] = {
                "role": "assistant",
                "tool_plan": "I will look up the weather in Paris.",
                "tool_calls": [call],
            }
            finish = "TOOL_CALL"
        else:
            message = {"role": "assistant", "content": [{"type": "text", "text": text}]}
            finish = "MAX_TOKENS" if model == "long" else "COMPLETE"
        return {"id": ID, "finish_reason": finish, "message": message, "usage": _usage(4)}

    async def _stream(self, send: Any, model: str, text: str) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/event-stream")],
            }
        )

        async def emit(event: dict[str, Any]) -> None:
            data = b"event: " + event["type"].encode() + b"\ndata: " + orjson.dumps(event)
            await send({"type": "http.response.body", "body": data + b"\n\n", "more_body": True})

        def message(**fields: Any) -> dict[str, Any]:
            return {"message": fields}

        await emit(
            {
                "id": ID,
                "type": "message-start",
                "delta": message(role="assistant", content=[], tool_plan="", tool_calls=[]),
            }
        )
        finish = "COMPLETE"
        if model == "tool-caller":
            await emit({"type": "tool-plan-delta", "delta": message(tool_plan="I will look.")})
            call = {
                "id": "get_weather_k1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": ""},
            }
            await emit({"type": "tool-call-start", "index": 0, "delta": message(tool_calls=call)})
            for piece in ('{"city"', ':"Par', 'is"}'):
                pieces = {"function": {"arguments": piece}}
                await emit(
                    {"type": "tool-call-delta", "index": 0, "delta": message(tool_calls=pieces)}
                )
            await emit({"type": "tool-call-end", "index": 0})
            finish = "TOOL_CALL"
        else:
            start = message(content={"type": "text", "text": ""})
            await emit({"type": "content-start", "index": 0, "delta": start})
            for i, word in enumerate(text.split(" ")):
                piece = word if i == 0 else " " + word
                delta = message(content={"text": piece})
                await emit({"type": "content-delta", "index": 0, "delta": delta})
                if model == "break-mid-stream" and i == 1:
                    raise UpstreamBroke("dropping the connection mid-stream")
                if model == "error-mid-stream":
                    finish = "ERROR"
                    break
            await emit({"type": "content-end", "index": 0})
            if model == "long":
                finish = "MAX_TOKENS"
        end = {"type": "message-end", "delta": {"finish_reason": finish, "usage": _usage(4)}}
        await emit(end)
        await send({"type": "http.response.body", "body": b""})
