"""A fake OpenAI Chat Completions server, served by hypercorn on 127.0.0.1:0.

It answers per the model asked for, so one server plays many scripted upstreams:

- any model: a normal answer echoing the last user message (streamed if asked, with
  usage when ``stream_options.include_usage`` is set);
- ``tool-caller``: a ``get_weather`` tool call (arguments streamed in pieces);
- ``fail-500`` / ``fail-503`` / ``fail-400`` / ``fail-401`` / ``fail-429``: that error,
  in OpenAI's error shape (429 with ``retry-after``);
- ``break-mid-stream``: two content chunks, then the connection drops;
- ``no-done``: a stream that ends after its finish chunk without ``[DONE]``;
- ``truncated``: a stream that ends cleanly with neither finish nor ``[DONE]``;
- ``silent``: accepts the request and never answers; sets :attr:`disconnected` when
  its client goes away;
- ``fail-ctx``: a 400 ``context_length_exceeded``; ``flaky-429``: a 429 with
  ``retry-after-ms: 50`` on its first call, answers after; ``toggle-*``: 500 while
  :attr:`FakeOpenAI.down`, answers otherwise (``GET /v1/models`` follows it too);
- ``last-call``: a normal answer whose rate-limit headers say no request is left for
  30 s;
- streams: ``break-before-content`` (the connection drops after the role chunk),
  ``malformed`` (a chunk of garbage after the first content), ``stall-mid-stream``
  (two content chunks, then silence).

Every request is recorded (path, headers, JSON body) in :attr:`FakeOpenAI.received`.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import orjson
import trio
from hypercorn.config import Config
from hypercorn.trio import serve

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@attrs.define
class Received:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


class UpstreamBroke(Exception):
    """Raised inside the app to make hypercorn drop the connection mid-body."""


@attrs.define
class FakeOpenAI:
    received: list[Received] = attrs.field(factory=list)
    url: str = ""
    #: Set when a ``silent`` request's client (the router) went away.
    disconnected: trio.Event = attrs.field(factory=trio.Event)
    #: Set when any request arrived.
    request_seen: trio.Event = attrs.field(factory=trio.Event)
    #: While True, ``toggle-*`` models and ``GET /v1/models`` answer 500.
    down: bool = False
    #: Requests per model so far.
    calls: dict[str, int] = attrs.field(factory=dict)

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
        if scope["method"] == "GET":  # the model list: what health probes ask for
            self.received.append(Received(scope["path"], headers, {}))
            await _json(send, 500 if self.down else 200, {"object": "list", "data": []})
            return
        payload = orjson.loads(body)
        self.received.append(Received(scope["path"], headers, payload))
        self.request_seen.set()
        model = payload["model"]
        self.calls[model] = self.calls.get(model, 0) + 1
        if model == "fail-ctx":
            message = "This model's maximum context length is 8192 tokens."
            error = {
                "message": message,
                "type": "invalid_request_error",
                "param": "messages",
                "code": "context_length_exceeded",
            }
            await _json(send, 400, {"error": error})
        elif model == "flaky-429" and self.calls[model] == 1:
            limited = {
                "error": {
                    "message": "Rate limit reached.",
                    "type": "rate_limit_error",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            }
            await _json(send, 429, limited, [(b"retry-after-ms", b"50")])
        elif model.startswith("toggle-") and self.down:
            await _error(send, 500, "")
        elif model.startswith("fail-"):
            key = headers.get("authorization", "").removeprefix("Bearer ")
            await _error(send, int(model[5:]), key)
        elif model == "silent":
            while (await receive())["type"] != "http.disconnect":
                pass
            self.disconnected.set()
        elif payload.get("stream"):
            await _stream(send, payload)
        else:
            # ``last-call``: answers, but says (as OpenAI does) that no request is left.
            spent = [
                (b"x-ratelimit-remaining-requests", b"0"),
                (b"x-ratelimit-reset-requests", b"30s"),
            ]
            await _json(send, 200, _completion(payload), spent if model == "last-call" else None)


def _answer(payload: dict[str, Any]) -> str:
    for message in reversed(payload["messages"]):
        if message["role"] == "user":
            content = message["content"]
            if isinstance(content, list):
                texts = [p["text"] for p in content if p["type"] == "text"]
                images = sum(1 for p in content if p["type"] == "image_url")
                return " ".join(texts) + (f" [{images} image(s)]" if images else "")
            return f"echo: {content}"
    return "hello"


_USAGE = {"prompt_tokens": 7, "completion_tokens": 5, "total_tokens": 12}
_CALL = {"id": "call_abc", "type": "function", "function": {"name": "get_weather"}}


def _completion(payload: dict[str, Any]) -> dict[str, Any]:
    if payload["model"] == "tool-caller":
        call = {**_CALL, "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
        message: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [call]}
        finish = "tool_calls"
    else:
        message = {"role": "assistant", "content": _answer(payload)}
        finish = "stop"
    return {
        "id": "chatcmpl-fake1",
        "object": "chat.completion",
        "created": 1700000000,
        "model": payload["model"] + "-2024-08-06",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": _USAGE,
    }


def _chunk(payload: dict[str, Any], delta: dict[str, Any], finish: str | None = None) -> bytes:
    chunk = {
        "id": "chatcmpl-fake1",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": payload["model"] + "-2024-08-06",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


async def _stream(send: Any, payload: dict[str, Any]) -> None:
    model = payload["model"]
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream")],
        }
    )

    async def emit(data: bytes) -> None:
        await send({"type": "http.response.body", "body": data, "more_body": True})

    await emit(_chunk(payload, {"role": "assistant", "content": ""}))
    if model == "break-before-content":
        raise UpstreamBroke("dropping the connection before any content")
    if model in ("malformed", "stall-mid-stream"):
        await emit(_chunk(payload, {"content": "first"}))
        if model == "malformed":
            await emit(b"data: {this is not json}\n\n")
            await send({"type": "http.response.body", "body": b""})
            return
        await emit(_chunk(payload, {"content": " second"}))
        await trio.sleep_forever()  # silent until the router gives up
    if model == "tool-caller":
        await emit(
            _chunk(
                payload,
                {
                    "tool_calls": [
                        {"index": 0, **_CALL, "function": {"name": "get_weather", "arguments": ""}}
                    ]
                },
            )
        )
        for piece in ('{"city"', ':"Par', 'is"}'):
            await emit(
                _chunk(payload, {"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
            )
        finish = "tool_calls"
    else:
        words = _answer(payload).split(" ")
        for i, word in enumerate(words):
            await emit(_chunk(payload, {"content": word if i == 0 else " " + word}))
            if model == "break-mid-stream" and i == 1:
                raise UpstreamBroke("dropping the connection mid-stream")
        finish = "stop"
    if model == "truncated":
        await send({"type": "http.response.body", "body": b""})
        return
    await emit(_chunk(payload, {}, finish))
    if payload.get("stream_options", {}).get("include_usage"):
        usage = {
            "id": "chatcmpl-fake1",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": model,
            "choices": [],
            "usage": _USAGE,
        }
        await emit(b"data: " + orjson.dumps(usage) + b"\n\n")
    tail = b"" if model == "no-done" else b"data: [DONE]\n\n"
    await send({"type": "http.response.body", "body": tail})


async def _error(send: Any, status: int, key: str) -> None:
    kinds = {
        400: ("invalid_request_error", "invalid_value", "Invalid value for 'temperature'."),
        # OpenAI masks most of the key it echoes; this fake echoes it whole, the worst case.
        401: ("invalid_request_error", "invalid_api_key", f"Incorrect API key provided: {key}."),
        429: ("rate_limit_error", "rate_limit_exceeded", "Rate limit reached."),
        500: ("server_error", None, "The server had an error."),
        503: ("server_error", None, "The engine is currently overloaded."),
    }
    kind, code, message = kinds[status]
    headers = [(b"content-type", b"application/json")]
    if status == 429:
        headers.append((b"retry-after", b"2"))
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


async def _json(
    send: Any, status: int, body: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), *(extra or [])],
        }
    )
    await send({"type": "http.response.body", "body": orjson.dumps(body)})


@asynccontextmanager
async def running(app: Any) -> AsyncIterator[str]:
    """Serve ``app`` on 127.0.0.1:0 for the block; yields its ``http://host:port``."""
    config = Config()
    config.bind = ["127.0.0.1:0"]
    config.accesslog = None
    config.graceful_timeout = 0.1
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(serve, app, config, shutdown_trigger=stop.wait))
        try:
            yield binds[0]
        finally:
            stop.set()
