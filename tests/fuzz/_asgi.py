"""A hand-made ASGI client for the app, and the checks of what it answered.

:class:`Exchange` plays one HTTP request against the app with no socket: it hands the
body over in the chunks given, then (as hypercorn does) reports ``http.disconnect``
only once the answer is complete, or at a chosen point to play a client that leaves.
:func:`check_answer` checks that what the app sent is one well-formed HTTP response,
with a sane status, in the client's format.
"""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING, Any

import orjson
import trio

if TYPE_CHECKING:
    from collections.abc import Callable

__all__ = ["ENDLESS", "INGRESS", "SANE", "Exchange", "check_answer"]

#: Paths of the chat ingresses, by client format.
INGRESS = {
    "/v1/chat/completions": "openai",
    "/chat/completions": "openai",
    "/v1/messages": "anthropic",
    "/v1/responses": "responses",
    "/v1/completions": "completions",
}
#: Endless streams: a client reads some of it and leaves (``/admin/events``).
ENDLESS = frozenset({"/admin/events"})
#: Every status a request may get: never a 500 (a router bug), no other 5xx than the
#: upstream's (502, 503, 504) and Anthropic's overloaded (529).
SANE = frozenset({200, 204, 400, 401, 403, 404, 405, 408, 413, 421, 422, 429, 502, 503, 504})
_TOKEN = re.compile(rb"[!#$%&'*+.^_`|~0-9a-z-]+")
_BAD_VALUE = re.compile(rb"[\x00\r\n]")


class Exchange:
    """One request's ASGI messages, both ways.

    Args:
        body: The request body, in the chunks the app is to receive.
        leave_after: Report a disconnect once this many messages were sent (None: when
            the answer is complete, as a patient client does).
        leave_in_body: Report a disconnect where the rest of the body would come.
    """

    def __init__(
        self, body: list[bytes], leave_after: int | None = None, *, leave_in_body: bool = False
    ) -> None:
        self.body = list(body) or [b""]
        self.leave_after = leave_after
        self.leave_in_body = leave_in_body
        self.sent: list[dict[str, Any]] = []
        self.gone = trio.Event()

    async def receive(self) -> dict[str, Any]:
        if self.body and not self.gone.is_set():
            chunk = self.body.pop(0)
            more = bool(self.body) or self.leave_in_body
            return {"type": "http.request", "body": chunk, "more_body": more}
        if self.leave_in_body:
            self.gone.set()
        await self.gone.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: dict[str, Any]) -> None:
        assert not self.complete, f"a message after the answer was complete: {message}"
        self.sent.append(message)
        if self.complete or (self.leave_after is not None and len(self.sent) >= self.leave_after):
            self.gone.set()
        await trio.lowlevel.checkpoint()

    @property
    def complete(self) -> bool:
        """The last body message was sent."""
        if not self.sent:
            return False
        last = self.sent[-1]
        return last["type"] == "http.response.body" and not last.get("more_body", False)


def check_answer(scope: dict[str, Any], sent: list[dict[str, Any]]) -> None:
    """One well-formed response to ``scope``, with a sane status, in the client's format."""
    assert sent, "no answer"
    start, *bodies = sent
    assert start["type"] == "http.response.start", start
    status = start["status"]
    assert status in SANE, f"status {status}: {sent}"
    headers = start.get("headers", [])
    for name, value in headers:
        assert isinstance(name, bytes), name
        assert _TOKEN.fullmatch(name), name
        assert isinstance(value, bytes), (name, value)
        assert not _BAD_VALUE.search(value), (name, value)
    assert bodies, "no body message"
    for message in bodies:
        assert message["type"] == "http.response.body", message
        assert isinstance(message.get("body", b""), bytes)
    fields = {name.lower(): value for name, value in headers}
    if scope["path"] in ENDLESS and status == 200:
        assert fields[b"content-type"].startswith(b"text/event-stream"), fields
        check_named_events(b"".join(m.get("body", b"") for m in bodies))
        return
    assert all(m.get("more_body", False) for m in bodies[:-1]), "more_body False too early"
    assert not bodies[-1].get("more_body", False), "the body never ended"
    body = b"".join(m.get("body", b"") for m in bodies)
    if b"content-length" in fields:
        assert int(fields[b"content-length"]) == len(body)
    if status == 204:
        assert body == b""
        return
    client = INGRESS.get(scope["path"])
    if fields.get(b"content-type", b"").startswith(b"text/event-stream"):
        assert status == 200
        assert client is not None, "a stream off the chat paths"
        STREAM_CHECKS[client](body)
        return
    if scope["path"] == "/metrics" and status == 200:
        return  # the Prometheus text format
    if scope["path"] == "/admin/ui" and status == 200:
        assert fields.get(b"content-type", b"").startswith(b"text/html"), fields
        assert body.lstrip().lower().startswith(b"<!doctype html>"), body[:80]
        return
    assert fields.get(b"content-type") == b"application/json", fields
    answer = orjson.loads(body)
    if status >= 400:
        if client is None:  # the other endpoints: OpenAI's shape, loosely
            assert isinstance(answer["error"]["message"], str), answer
        else:
            check_error(client, answer)
    elif client == "openai":
        assert answer["object"] == "chat.completion", answer
        assert isinstance(answer["choices"], list)
    elif client == "anthropic":
        assert answer["type"] == "message", answer
        assert isinstance(answer["content"], list)
    elif client == "responses":
        assert answer["object"] == "response", answer
        assert answer["status"] in ("completed", "incomplete"), answer
        assert isinstance(answer["output"], list)
    elif client == "completions":
        assert answer["object"] == "text_completion", answer
        assert isinstance(answer["choices"], list)


def check_error(client: str, answer: Any) -> None:
    """An error body in the client's own format."""
    if client == "anthropic":
        assert answer["type"] == "error", answer
        error = answer["error"]
    else:
        error = answer["error"]
    assert isinstance(error["message"], str), answer
    assert isinstance(error["type"], str), answer


def check_named_events(body: bytes) -> None:
    """Whole ``event:``/``data:`` events (a ``retry:`` line first), each data one JSON
    object: what a reader has of an endless stream when it leaves."""
    text = body.decode()
    if text.startswith("retry: "):
        text = text.split("\n", 1)[1]
    for event in text.split("\n\n")[:-1]:
        name_line, data_line = event.split("\n")
        assert name_line.startswith("event: "), event
        assert isinstance(orjson.loads(data_line.removeprefix("data: ")), dict), event


def check_openai_stream(body: bytes, kind: str = "chat.completion.chunk") -> None:
    """``data:`` events of chunks, ended by ``[DONE]`` or by one error event."""
    events = body.decode().split("\n\n")
    assert events[-1] == "", "the stream does not end with a whole event"
    events = events[:-1]
    assert events, "an empty stream"
    for event in events[:-1]:
        assert event.startswith("data: "), event
        chunk = orjson.loads(event.removeprefix("data: "))
        assert chunk["object"] == kind, chunk
    last = events[-1].removeprefix("data: ")
    if last != "[DONE]":
        check_error("openai", orjson.loads(last))


def check_anthropic_stream(body: bytes) -> None:
    """Named events whose data says the same type: ``message_start`` first, and
    ``message_stop`` or one ``error`` event last."""
    events = body.decode().split("\n\n")
    assert events[-1] == "", "the stream does not end with a whole event"
    names = []
    for event in events[:-1]:
        name_line, data_line = event.split("\n")
        name = name_line.removeprefix("event: ")
        data = orjson.loads(data_line.removeprefix("data: "))
        assert data["type"] == name, event
        names.append(name)
        if name == "error":
            check_error("anthropic", data)
    assert names, "an empty stream"
    assert names[-1] in ("message_stop", "error"), names
    assert names[0] == "message_start" or names == ["error"], names


#: The events that end a Responses stream: its completion, or a failure then ``error``.
_RESPONSES_ENDS = ("response.completed", "response.incomplete", "error")


def check_responses_stream(body: bytes) -> None:
    """Named events whose data says the same type, numbered from 0: ``response.created``
    first, then ``response.completed`` / ``.incomplete``, or ``response.failed`` and
    ``error``, last."""
    events = body.decode().split("\n\n")
    assert events[-1] == "", "the stream does not end with a whole event"
    names = []
    for number, event in enumerate(events[:-1]):
        name_line, data_line = event.split("\n")
        name = name_line.removeprefix("event: ")
        data = orjson.loads(data_line.removeprefix("data: "))
        assert data["type"] == name, event
        assert data["sequence_number"] == number, event
        names.append(name)
    assert names[:2] == ["response.created", "response.in_progress"], names
    assert names[-1] in _RESPONSES_ENDS, names
    if names[-1] == "error":
        assert names[-2] == "response.failed", names


STREAM_CHECKS: dict[str, Callable[[bytes], None]] = {
    "openai": check_openai_stream,
    "anthropic": check_anthropic_stream,
    "responses": check_responses_stream,
    "completions": partial(check_openai_stream, kind="text_completion"),
}
