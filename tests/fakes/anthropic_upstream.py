"""A fake Anthropic Messages API, served with :func:`tests.fakes.openai_upstream.running`.

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
- ``refuser``: stop reason ``refusal``; ``long``: stop reason ``max_tokens``;
- ``fail-400``, ``fail-401``, ``fail-403``, ``fail-404``, ``fail-429`` (with
  ``retry-after`` and ``anthropic-ratelimit-*`` headers), ``fail-500``, ``fail-529``
  (``overloaded_error``), ``fail-ctx`` ("prompt is too long");
- streams: ``break-mid-stream`` (the connection drops after two text deltas),
  ``error-mid-stream`` (an ``event: error`` overloaded after the first delta).

Every request is recorded (path, headers, query, JSON body) in :attr:`FakeAnthropic.received`.
"""

from __future__ import annotations

from typing import Any

import attrs
import orjson

from tests.fakes.openai_upstream import UpstreamBroke

KEY = "sk-ant-fake-key"
MSG_ID = "msg_01fake"
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
class Received:
    path: str
    headers: dict[str, str]
    query: str
    body: dict[str, Any]


@attrs.define
class FakeAnthropic:
    received: list[Received] = attrs.field(factory=list)
    url: str = ""
    key: str = KEY

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        payload = orjson.loads(body) if body else {}
        self.received.append(
            Received(scope["path"], headers, scope["query_string"].decode(), payload)
        )
        given = headers.get("x-api-key") or headers.get("authorization", "").removeprefix("Bearer ")
        if given != self.key:
            await _error(send, 401)
            return
        if "anthropic-version" not in headers:
            await _error(send, 400, "anthropic-version: header is required")
            return
        if scope["method"] == "GET" and scope["path"] == "/v1/models":
            models = {
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
            await _json(send, 200, models)
            return
        if scope["method"] != "POST" or scope["path"] != "/v1/messages":
            await _error(send, 404, f"{scope['method']} {scope['path']} not found")
            return
        if not isinstance(payload.get("max_tokens"), int):
            await _error(send, 400, "max_tokens: Field required")
            return
        model = payload["model"]
        if model == "fail-ctx":
            await _error(send, 400, "prompt is too long: 250000 tokens > 200000 maximum")
        elif model.startswith("fail-"):
            await _error(send, int(model[5:]))
        elif payload.get("stream"):
            await _stream(send, payload)
        else:
            await _json(send, 200, _message(payload))


def _answer(payload: dict[str, Any]) -> str:
    for message in reversed(payload["messages"]):
        if message["role"] != "user":
            continue
        content = message["content"]
        if isinstance(content, str):
            return f"echo: {content}"
        texts = [b["text"] for b in content if b["type"] == "text"]
        images = sum(1 for b in content if b["type"] == "image")
        if texts or images:
            return "echo: " + " ".join(texts) + (f" [{images} image(s)]" if images else "")
    return "hello"


def _stop_reason(model: str) -> str:
    return {"tool-caller": "tool_use", "refuser": "refusal", "long": "max_tokens"}.get(
        model, "end_turn"
    )


def _message(payload: dict[str, Any]) -> dict[str, Any]:
    model = payload["model"]
    if model == "tool-caller":
        content: list[dict[str, Any]] = [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": TOOL_ID, "name": "get_weather", "input": {"city": "Paris"}},
        ]
    elif model == "refuser":
        content = []
    else:
        content = [{"type": "text", "text": _answer(payload)}]
    return {
        "id": MSG_ID,
        "type": "message",
        "role": "assistant",
        "model": model + "-20250101",
        "content": content,
        "stop_reason": _stop_reason(model),
        "stop_sequence": None,
        "usage": USAGE,
    }


def event(name: str, data: dict[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps({"type": name, **data}) + b"\n\n"


def stream_events(model: str, text: str) -> list[bytes]:
    """The whole event sequence of one streamed answer (also a recorded test stream)."""
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
    out = [event("message_start", {"message": start}), event("ping", {})]
    index = 0
    if model != "refuser":
        first = "Let me check." if model == "tool-caller" else text
        out.append(
            event(
                "content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}
            )
        )
        words = first.split(" ")
        for i, word in enumerate(words):
            piece = word if i == 0 else " " + word
            out.append(
                event(
                    "content_block_delta",
                    {"index": 0, "delta": {"type": "text_delta", "text": piece}},
                )
            )
        out.append(event("content_block_stop", {"index": 0}))
        index = 1
    if model == "tool-caller":
        block = {"type": "tool_use", "id": TOOL_ID, "name": "get_weather", "input": {}}
        out.append(event("content_block_start", {"index": index, "content_block": block}))
        for piece in ("", '{"city"', ': "Par', 'is"}'):
            delta = {"type": "input_json_delta", "partial_json": piece}
            out.append(event("content_block_delta", {"index": index, "delta": delta}))
        out.append(event("ping", {}))
        out.append(event("content_block_stop", {"index": index}))
    final: dict[str, Any] = {"stop_reason": _stop_reason(model), "stop_sequence": None}
    out.append(event("message_delta", {"delta": final, "usage": {"output_tokens": 9}}))
    out.append(event("message_stop", {}))
    return out


async def _stream(send: Any, payload: dict[str, Any]) -> None:
    model = payload["model"]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream"), (b"request-id", b"req_fake")],
        }
    )
    for i, data in enumerate(stream_events(model, _answer(payload))):
        if model == "break-mid-stream" and i == 5:
            raise UpstreamBroke("dropping the connection mid-stream")
        if model == "error-mid-stream" and i == 4:
            error = {"error": {"type": "overloaded_error", "message": "Overloaded"}}
            await send({"type": "http.response.body", "body": event("error", error)})
            await send({"type": "http.response.body", "body": b""})
            return
        await send({"type": "http.response.body", "body": data, "more_body": True})
    await send({"type": "http.response.body", "body": b""})


async def _error(send: Any, status: int, message: str | None = None) -> None:
    kind, default = _ERRORS[status]
    headers = [(b"content-type", b"application/json"), (b"request-id", b"req_fake")]
    if status == 429:
        headers += [
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
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


async def _json(send: Any, status: int, body: Any) -> None:
    headers = [(b"content-type", b"application/json"), (b"request-id", b"req_fake")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})
