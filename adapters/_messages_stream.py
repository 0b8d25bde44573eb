"""Any provider's streamed answer -> Anthropic's SSE event sequence (the Messages
ingress's stream out): :class:`MessagesStreamEncoder`. Whole answers and errors are
:mod:`._anthropic_response`. Pure: bytes out for chunks in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._anthropic_response import (
    error_event,
    message_id,
    messages_usage_to_wire,
    sse_event,
    stop_reason_to_wire,
)
from ._types import ChatChunk, Usage

if TYPE_CHECKING:
    from ._errors import GatewayError

__all__ = ["MessagesStreamEncoder"]

#: The key of a text block among the held ones (tool calls go by their OpenAI index).
_TEXT = "text"


class MessagesStreamEncoder:
    """OpenAI-shaped ChatChunks (from any provider) -> Anthropic's SSE event sequence.

    ``message_start`` goes out with the first chunk, with its ``start_usage`` (an
    Anthropic upstream's input and cache counts) or 0 (OpenAI-shaped streams report
    usage only at the end); :meth:`close` sends ``message_delta`` with the stop reason
    and the whole usage (input and cache counts included), then ``message_stop``.

    Text and each tool call become content blocks, and Anthropic's blocks come one
    after another (start, deltas, stop, then the next) while an OpenAI-shaped stream
    may interleave them: a call's arguments may go on after a later call, or text,
    has started. So one block streams live at a time, and what comes for any other
    block (text, other calls) is held, per block in the order the blocks began, until
    the open block may stop: a text block any time (later text goes to a new one), a
    call once its arguments are a whole JSON object (all that can follow it is
    whitespace, or text that makes them invalid anyway, and is not sent). Then the
    held blocks follow, each whole, and the first one that may not stop yet streams
    on live. Upstreams that send one block after another thus stream with no delay;
    :meth:`close` stops the open block and sends what is still held. An error drops
    what is held: the answer is lost anyway.
    """

    def __init__(self, fallback_id: str = "") -> None:
        #: The message's id if the upstream gives none (unique, from the caller).
        self._fallback_id = fallback_id
        self._started = False
        self._closed = False
        self._open: str | int | None = None  # _TEXT or the open call's OpenAI index
        self._next_block = 0  # the open block's index, or the next one's
        # Blocks held while a call is open: their start and the pieces of their deltas.
        self._held: dict[str | int, tuple[dict[str, Any], list[str]]] = {}
        self._arguments = ""  # the open call's so far
        self._stopped: set[int] = set()  # the calls whose blocks are stopped
        self._finish: str | None = None
        self._refused = False  # a refusal came: that is the stop reason
        self._stop_sequence: str | None = None
        self._usage = Usage()

    def feed(self, chunk: ChatChunk) -> bytes:
        if self._closed:
            return b""
        out = bytearray()
        if not self._started:
            self._started = True
            out += self._message_start(chunk.id, chunk.model, chunk.start_usage)
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # Anthropic has one answer per message
            d = choice.delta
            text = (d.content or "") + (d.refusal or "")
            if d.refusal:
                self._refused = True
            if text:
                out += self._piece(_TEXT, {"type": "text", "text": ""}, text)
            for call in d.tool_calls:
                start = {
                    "type": "tool_use",
                    "id": call.id or f"toolu_{call.index}",
                    "name": call.name or "",
                    "input": {},
                }
                out += self._piece(call.index, start, call.arguments or "")
            if choice.finish_reason:
                self._finish = choice.finish_reason
                self._stop_sequence = choice.stop_sequence
        if chunk.usage is not None:
            self._usage = chunk.usage
        return bytes(out)

    def resume_at(self, block: int, text_open: bool) -> None:
        """Go on with a message whose start and blocks before ``block`` were sent by
        someone else (a passed-through stream that broke): text goes on in block
        ``block`` if it is an open text block, else opens it."""
        self._started = True
        self._next_block = block
        self._open = _TEXT if text_open else None

    def close(self) -> bytes:
        """The end of a complete answer: the open block's stop, the held blocks, each
        whole, then the stop reason, usage and ``message_stop``."""
        if self._closed:
            return b""
        out = bytearray()
        if not self._started:
            self._started = True
            out += self._message_start("", "", None)
        out += self._close_block()
        for key, (start, pieces) in self._held.items():
            out += self._open_block(key, start)
            out += self._delta(key, "".join(pieces))
            out += self._close_block()
        self._held.clear()
        self._closed = True
        usage = messages_usage_to_wire(self._usage)
        out += sse_event(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": self._stop_reason(), "stop_sequence": self._stop_sequence},
                "usage": usage,
            },
        )
        out += sse_event("message_stop", {"type": "message_stop"})
        return bytes(out)

    def _stop_reason(self) -> str:
        if self._refused:
            return "refusal"
        if self._stop_sequence is not None:
            return "stop_sequence"
        return stop_reason_to_wire(self._finish)

    def error_event(self, err: GatewayError) -> bytes:
        """A mid-stream failure; nothing more is sent after it, nor what is held."""
        self._closed = True
        self._held.clear()
        return error_event(err)

    def _piece(self, key: str | int, start: dict[str, Any], piece: str) -> bytes:
        """One piece of block ``key`` (text or a call): live to the open block, else
        held; either may let the open block stop and the held ones follow."""
        if key == self._open:
            if key != _TEXT:
                self._arguments += piece
            return self._delta(key, piece) + self._advance()
        if key in self._stopped:
            return b""  # after a whole JSON object: whitespace, or invalid anyway
        self._held.setdefault(key, (start, []))[1].append(piece)
        return self._advance()

    def _advance(self) -> bytes:
        """While the open block may stop and blocks are held: stop it, open the next."""
        out = bytearray()
        while self._held and self._may_stop():
            out += self._close_block()
            key = next(iter(self._held))
            start, pieces = self._held.pop(key)
            out += self._open_block(key, start)
            self._arguments = "".join(pieces) if key != _TEXT else ""
            out += self._delta(key, "".join(pieces))
        return bytes(out)

    def _may_stop(self) -> bool:
        if self._open is None or self._open == _TEXT:
            return True
        if not self._arguments.rstrip().endswith("}"):
            return False  # the cheap test first: parsed on every piece while others wait
        try:
            return isinstance(orjson.loads(self._arguments), dict)
        except orjson.JSONDecodeError:
            return False

    def _message_start(self, id_: str, model: str, usage: Usage | None) -> bytes:
        message: dict[str, Any] = {
            "id": message_id(id_, self._fallback_id),
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            # What the upstream said up front (Anthropic does), else 0 until the end.
            "usage": messages_usage_to_wire(usage or Usage()),
        }
        return sse_event("message_start", {"type": "message_start", "message": message})

    def _open_block(self, key: str | int, block: dict[str, Any]) -> bytes:
        self._open = key
        event = {"type": "content_block_start", "index": self._next_block, "content_block": block}
        return sse_event("content_block_start", event)

    def _delta(self, key: str | int, piece: str) -> bytes:
        if not piece:
            return b""
        delta = (
            {"type": "text_delta", "text": piece}
            if key == _TEXT
            else {"type": "input_json_delta", "partial_json": piece}
        )
        event = {"type": "content_block_delta", "index": self._next_block, "delta": delta}
        return sse_event("content_block_delta", event)

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        if self._open != _TEXT:
            self._stopped.add(int(self._open))
        self._open = None
        index = self._next_block
        self._next_block += 1
        return sse_event("content_block_stop", {"type": "content_block_stop", "index": index})
