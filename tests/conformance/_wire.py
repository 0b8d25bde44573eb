"""What a client gets, checked against its format's rules as it arrives: every JSON
answer and every stream chunk of the OpenAI chat ingress against the official OpenAI
OpenAPI schema (``data/openai_chat_schema.json``, a copy of its chat completion and
chunk schemas), and every ``/v1/messages`` stream against Anthropic's event sequence.

:class:`Checking` is an httpx2 transport for the official SDKs' clients: it reads what
the daemon sends as the SDK reads it, and notes each breach in :data:`PROBLEMS` (an
SDK would swallow an exception raised in its transport into its own error), which the
fixture of ``tests/conftest.py`` checks after every test.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2
import jsonschema
import orjson

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

__all__ = ["PROBLEMS", "Checking", "MessagesSequence", "chat_problems", "checked"]


def _nullable(schema: Any) -> Any:
    """``schema`` with OpenAPI 3.0's ``nullable: true`` (which the spec still uses in a
    few places) as JSON Schema says it: that, or null."""
    if isinstance(schema, list):
        return [_nullable(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _nullable(v) for k, v in schema.items() if k != "nullable"}
    if schema.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


_SPEC = _nullable(
    orjson.loads((Path(__file__).parent / "data" / "openai_chat_schema.json").read_bytes())
)


def _validator(name: str) -> jsonschema.Draft202012Validator:
    schema = {"$ref": f"#/components/schemas/{name}", "components": _SPEC["components"]}
    return jsonschema.Draft202012Validator(schema)


_ANSWER = _validator("CreateChatCompletionResponse")
_CHUNK = _validator("CreateChatCompletionStreamResponse")

#: Breaches seen since the last check (reset by the fixture of ``tests/conftest.py``).
PROBLEMS: list[str] = []
#: How many answers, chunks and Messages streams were checked (for tests of the check).
checked: dict[str, int] = {"answers": 0, "chunks": 0, "messages": 0}


def chat_problems(body: Any, *, chunk: bool) -> list[str]:
    """Where ``body`` breaks the OpenAI schema of an answer (or of a chunk)."""
    validator = _CHUNK if chunk else _ANSWER
    return [
        f"{'chunk' if chunk else 'answer'} at {'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(body)
    ]


class MessagesSequence:
    """Anthropic's event sequence for one message: ``message_start``; then per content
    block, in index order from 0, ``content_block_start``, its deltas, its
    ``content_block_stop`` (one block open at a time); ``message_delta``;
    ``message_stop`` last. ``ping`` and kinds of events added later may come anywhere;
    an ``error`` event ends the stream early."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._state = "before"  # before, message, block, delta, done
        self._next = 0  # the next block's index
        self._open: int | None = None

    def event(self, name: str, data: dict[str, Any]) -> None:
        if name == "ping":
            return
        if self._state == "done":
            self._bad(f"{name} after the stream ended")
            return
        if name == "error":
            self._state = "done"
            return
        if data.get("type") != name:
            self._bad(f"event {name} holds type {data.get('type')!r}")
        step = getattr(self, "_" + name, None)
        if step is not None:  # Anthropic may add kinds of events: clients skip them
            step(data)

    def end(self) -> None:
        if self._state != "done":
            self._bad("the stream ended without message_stop")

    def _message_start(self, data: dict[str, Any]) -> None:
        if self._state != "before":
            self._bad("a second message_start")
        message = data.get("message") or {}
        for key in ("id", "type", "role", "content", "model", "usage"):
            if key not in message:
                self._bad(f"message_start without message.{key}")
        self._state = "message"

    def _content_block_start(self, data: dict[str, Any]) -> None:
        if self._state != "message" or self._open is not None:
            self._bad(f"content_block_start {data.get('index')} while block {self._open} is open")
        if data.get("index") != self._next:
            self._bad(f"content_block_start {data.get('index')}, expected {self._next}")
        if not isinstance(data.get("content_block"), dict):
            self._bad("content_block_start without its block")
        self._open = data.get("index")
        self._next += 1

    def _content_block_delta(self, data: dict[str, Any]) -> None:
        if self._open is None or data.get("index") != self._open:
            self._bad(f"content_block_delta {data.get('index')} while {self._open} is open")

    def _content_block_stop(self, data: dict[str, Any]) -> None:
        if self._open is None or data.get("index") != self._open:
            self._bad(f"content_block_stop {data.get('index')} while {self._open} is open")
        self._open = None

    def _message_delta(self, data: dict[str, Any]) -> None:
        if self._state != "message" or self._open is not None:
            self._bad(f"message_delta with block {self._open} open")
        if "stop_reason" not in (data.get("delta") or {}) or "usage" not in data:
            self._bad("message_delta without stop_reason or usage")
        self._state = "delta"

    def _message_stop(self, data: dict[str, Any]) -> None:
        if self._state != "delta":
            self._bad("message_stop before message_delta")
        self._state = "done"

    def _bad(self, problem: str) -> None:
        self.problems.append(problem)


class _Events:
    """Server-sent events out of the bytes of a stream, as they come."""

    def __init__(self, each: Callable[[str, str], None]) -> None:
        self._each = each
        self._held = b""

    def feed(self, data: bytes) -> None:
        self._held += data.replace(b"\r\n", b"\n")
        while b"\n\n" in self._held:
            raw, self._held = self._held.split(b"\n\n", 1)
            name, lines = "message", []
            for line in raw.decode().split("\n"):
                if line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    lines.append(line[5:].removeprefix(" "))
            if lines:
                self._each(name, "\n".join(lines))


class _Chat:
    """An OpenAI chat stream: each chunk checked, and ``[DONE]`` last."""

    def __init__(self) -> None:
        self.done = False
        self.errored = False

    def event(self, _: str, data: str) -> None:
        if data == "[DONE]":
            self.done = True
            return
        body = orjson.loads(data)
        if "error" in body:  # the router's error event: the stream ends there
            self.errored = True
            return
        checked["chunks"] += 1
        PROBLEMS.extend(chat_problems(body, chunk=True))

    def end(self) -> None:
        if not (self.done or self.errored):
            PROBLEMS.append("a chat stream ended without [DONE]")


class _Tee(httpx2.AsyncByteStream):
    def __init__(self, inner: httpx2.AsyncByteStream, feed: Callable[[bytes], None], end: Any):
        self._inner, self._feed, self._end = inner, feed, end

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for piece in self._inner:
            self._feed(piece)
            yield piece
        self._end()

    async def aclose(self) -> None:
        await self._inner.aclose()


class Checking(httpx2.AsyncBaseTransport):
    """An httpx2 transport that checks the daemon's successful chat answers as the
    client reads them (see the module docstring)."""

    def __init__(self) -> None:
        self._inner = httpx2.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self._inner.handle_async_request(request)
        path = request.url.path
        kind = "chat" if path.endswith("/chat/completions") else None
        if path.endswith("/v1/messages"):
            kind = "messages"
        if kind is None or response.status_code != 200:
            return response
        if response.headers.get("content-type", "").startswith("text/event-stream"):
            return self._stream(request, response, kind)
        body = await response.aread()
        if kind == "chat":
            checked["answers"] += 1
            PROBLEMS.extend(chat_problems(orjson.loads(body), chunk=False))
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            content=body,
            request=request,
            extensions=response.extensions,
        )

    def _stream(
        self, request: httpx2.Request, response: httpx2.Response, kind: str
    ) -> httpx2.Response:
        assert isinstance(response.stream, httpx2.AsyncByteStream)
        if kind == "chat":
            chat = _Chat()
            events = _Events(chat.event)
            end = chat.end
        else:
            sequence = MessagesSequence()
            events = _Events(lambda name, data: sequence.event(name, orjson.loads(data)))

            def end() -> None:
                sequence.end()
                checked["messages"] += 1
                PROBLEMS.extend(f"/v1/messages: {p}" for p in sequence.problems)

        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tee(response.stream, events.feed, end),
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self._inner.aclose()
