"""OpenAI-shaped ChatChunks (from any provider) -> the Responses API's stream of events.

The sequence the SDKs expect: ``response.created`` and ``response.in_progress``; for
each output item ``response.output_item.added``, its content (a message's
``response.content_part.added``, ``response.output_text.delta``... then
``response.output_text.done`` and ``response.content_part.done``; a function call's
``response.function_call_arguments.delta``... then ``.done``) and
``response.output_item.done``; at last ``response.completed`` (or
``response.incomplete``) holding the whole response. Every event has its
``sequence_number``, counting from 0.

Events name their item by ``output_index``, so items may be in progress side by side:
text arriving after a call began goes on into the open message, and a call's arguments
may go on after another call began, as OpenAI-shaped streams may interleave them. No
event is held back; every item is finished at the end, in output order.

A stream that breaks ends with ``response.failed`` (the response so far, its error)
and then an ``error`` event, carrying its fields flat as the API reference documents
them and nested under ``error`` as OpenAI sends them, on which the official SDKs
raise: never a cut stream that reads as a complete answer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ._responses_response import (
    call_item,
    error_code,
    item_id,
    output_text,
    skeleton,
    status_of,
    usage_to_wire,
)

if TYPE_CHECKING:
    from ._errors import GatewayError
    from ._types import ChatChunk, GatewayRequest, ToolCallDelta, Usage

__all__ = ["ResponsesStreamEncoder"]


@attrs.define
class _Part:
    kind: str  # "output_text" or "refusal"
    text: str = ""

    def to_wire(self) -> dict[str, Any]:
        if self.kind == "refusal":
            return {"type": "refusal", "refusal": self.text}
        return output_text(self.text)


@attrs.define
class _MessageItem:
    id: str
    index: int
    parts: list[_Part] = attrs.field(factory=list)

    def to_wire(self, status: str) -> dict[str, Any]:
        content = [p.to_wire() for p in self.parts]
        return {
            "type": "message",
            "id": self.id,
            "status": status,
            "role": "assistant",
            "content": content,
        }


@attrs.define
class _CallItem:
    id: str
    index: int
    call_id: str
    name: str
    arguments: str = ""

    def to_wire(self, status: str) -> dict[str, Any]:
        return call_item(self.id, self.call_id, self.name, self.arguments, status)


class ResponsesStreamEncoder:
    """One response's events, fed with its chunks.

    Args:
        req: The request (its ``echo`` goes into every response snapshot).
        response_id: ``resp_...``; the items' ids are made from it.
        created_at: Unix seconds.
    """

    def __init__(self, req: GatewayRequest, response_id: str, created_at: int) -> None:
        self._req = req
        self._id = response_id
        self._created_at = created_at
        self._model = req.model
        self._seq = 0
        self._started = False
        self._closed = False
        self._items: list[_MessageItem | _CallItem] = []
        self._message: _MessageItem | None = None
        self._calls: dict[int, _CallItem] = {}  # by the chunks' tool-call index
        self._finish: str | None = None
        self._usage: Usage | None = None

    def feed(self, chunk: ChatChunk) -> bytes:
        if self._closed:
            return b""
        out = bytearray()
        if not self._started:
            self._model = chunk.model or self._model
            out += self._start()
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # a response has one answer
            d = choice.delta
            if d.content:
                out += self._text("output_text", d.content)
            if d.refusal:
                out += self._text("refusal", d.refusal)
            for call in d.tool_calls:
                out += self._call(call)
            if choice.finish_reason:
                self._finish = choice.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        return bytes(out)

    def close(self) -> bytes:
        """The end of a whole answer: every item finished, then the response."""
        if self._closed:
            return b""
        self._closed = True
        out = bytearray(self._start() if not self._started else b"")
        status, incomplete = status_of(self._finish)
        output = []
        for item in self._items:
            if isinstance(item, _MessageItem):
                out += self._end_part(item)
                done = item.to_wire(status)  # cut short by the token limit: incomplete
            else:
                out += self._event(
                    "response.function_call_arguments.done",
                    item_id=item.id,
                    output_index=item.index,
                    name=item.name,
                    arguments=item.arguments,
                )
                done = item.to_wire("completed")
            output.append(done)
            out += self._event("response.output_item.done", output_index=item.index, item=done)
        response = self._response(status, output)
        response.update(incomplete_details=incomplete, usage=usage_to_wire(self._usage))
        kind = "response.completed" if status == "completed" else "response.incomplete"
        out += self._event(kind, response=response)
        return bytes(out)

    def error_event(self, err: GatewayError) -> bytes:
        """A broken stream's end: ``response.failed``, then ``error``; nothing after."""
        if self._closed:
            return b""
        self._closed = True
        out = bytearray(self._start() if not self._started else b"")
        output = [item.to_wire("incomplete") for item in self._items]
        response = self._response("failed", output)
        response["error"] = {"code": error_code(err), "message": err.message}
        out += self._event("response.failed", response=response)
        nested = {
            "type": err.error_type,
            "code": err.code,
            "message": err.message,
            "param": err.param,
        }
        out += self._event(
            "error", code=err.code, message=err.message, param=err.param, error=nested
        )
        return bytes(out)

    # -- items ----------------------------------------------------------------------

    def _text(self, kind: str, piece: str) -> bytes:
        out = bytearray()
        message = self._message
        if message is None:
            index = len(self._items)
            message = self._message = _MessageItem(item_id("msg", self._id, index), index)
            self._items.append(message)
            added = message.to_wire("in_progress")
            out += self._event("response.output_item.added", output_index=index, item=added)
        if not message.parts or message.parts[-1].kind != kind:
            out += self._end_part(message)
            message.parts.append(_Part(kind))
            out += self._event(
                "response.content_part.added",
                item_id=message.id,
                output_index=message.index,
                content_index=len(message.parts) - 1,
                part=message.parts[-1].to_wire(),
            )
        part = message.parts[-1]
        part.text += piece
        where = {
            "item_id": message.id,
            "output_index": message.index,
            "content_index": len(message.parts) - 1,
        }
        if kind == "refusal":
            out += self._event("response.refusal.delta", **where, delta=piece)
        else:
            out += self._event("response.output_text.delta", **where, delta=piece, logprobs=[])
        return bytes(out)

    def _end_part(self, message: _MessageItem) -> bytes:
        """Finish the message's last part (each part is finished once, when the next
        begins or at the end)."""
        if not message.parts:
            return b""
        part = message.parts[-1]
        where = {
            "item_id": message.id,
            "output_index": message.index,
            "content_index": len(message.parts) - 1,
        }
        if part.kind == "refusal":
            done = self._event("response.refusal.done", **where, refusal=part.text)
        else:
            done = self._event("response.output_text.done", **where, text=part.text, logprobs=[])
        return done + self._event("response.content_part.done", **where, part=part.to_wire())

    def _call(self, delta: ToolCallDelta) -> bytes:
        out = bytearray()
        call = self._calls.get(delta.index)
        if call is None:
            index = len(self._items)
            # The call id goes out now and may not change: one the stream lacks is made.
            call_id = delta.id or f"call_{self._id.removeprefix('resp_')}_{index}"
            call = _CallItem(item_id("fc", self._id, index), index, call_id, delta.name or "")
            self._calls[delta.index] = call
            self._items.append(call)
            added = call.to_wire("in_progress")
            out += self._event("response.output_item.added", output_index=index, item=added)
        elif delta.name and not call.name:
            call.name = delta.name
        if delta.arguments:
            call.arguments += delta.arguments
            out += self._event(
                "response.function_call_arguments.delta",
                item_id=call.id,
                output_index=call.index,
                delta=delta.arguments,
            )
        return bytes(out)

    # -- framing --------------------------------------------------------------------

    def _start(self) -> bytes:
        self._started = True
        created = self._event("response.created", response=self._response("in_progress"))
        return created + self._event("response.in_progress", response=self._response("in_progress"))

    def _response(self, status: str, output: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        response = skeleton(self._req, self._id, self._created_at, self._model)
        response["status"] = status
        response["output"] = output or []
        return response

    def _event(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
