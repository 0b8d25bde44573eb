"""Answers in the Anthropic Messages format <-> the unified response, both directions.

* the ``anthropic`` adapter: :func:`response_from_wire` (its answer in), with the stop
  reason and usage mappings its stream decoder shares;
* the Anthropic ingress (``POST /v1/messages``): :func:`messages_response_to_wire` and
  :class:`MessagesStreamEncoder` (any provider's answer out, in Anthropic's shape), and
  :func:`error_to_wire` / :func:`error_event` (any failure out).

Requests are in :mod:`._anthropic_request`. Pure functions over parsed JSON values.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._anthropic_request import tool_input
from ._errors import (
    ContentFiltered,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    NoHealthyTarget,
    NotFound,
    Overloaded,
    RateLimitExceeded,
    SerializationError,
    Timeout,
)
from ._types import (
    ChatChunk,
    Choice,
    GatewayResponse,
    Message,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "MessagesStreamEncoder",
    "anthropic_error_to_wire",
    "error_event",
    "error_to_wire",
    "finish_reason_from_wire",
    "messages_response_to_wire",
    "response_from_wire",
    "stop_reason_to_wire",
    "usage_from_wire",
]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",  # a long server-tool turn paused; the client may resend
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "function_call": "tool_use",
    "content_filter": "refusal",
}


def finish_reason_from_wire(stop_reason: Any) -> str:
    """Anthropic ``stop_reason`` -> OpenAI ``finish_reason`` (unknown ones -> ``stop``)."""
    return _FINISH.get(str(stop_reason), "stop")


def stop_reason_to_wire(finish_reason: str | None) -> str:
    """OpenAI ``finish_reason`` -> Anthropic ``stop_reason`` (unknown ones -> ``end_turn``)."""
    return _STOP.get(finish_reason or "stop", "end_turn")


def usage_from_wire(raw: Any) -> Usage | None:
    """Anthropic usage -> ours; cached input counts as prompt, as OpenAI counts it."""
    if not isinstance(raw, dict):
        return None
    prompt = sum(
        int(raw.get(k) or 0)
        for k in ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    )
    return Usage(prompt_tokens=prompt, completion_tokens=int(raw.get("output_tokens") or 0))


# -- adapter: Anthropic's answer in -----------------------------------------------------


def response_from_wire(raw: Any) -> GatewayResponse:
    """A parsed Anthropic ``message`` -> GatewayResponse.

    Raises:
        SerializationError: the body is not a message.
    """
    try:
        if raw.get("type") != "message" or not isinstance(raw["content"], list):
            raise TypeError("not a message object")
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in raw["content"]:
            kind = block["type"]
            if kind == "text":
                texts.append(str(block["text"]))
            elif kind == "tool_use":
                arguments = orjson.dumps(block.get("input") or {}).decode()
                calls.append(
                    ToolCall(id=str(block["id"]), name=str(block["name"]), arguments=arguments)
                )
            # thinking, redacted_thinking and server-tool blocks have no OpenAI place.
        text = "".join(texts)
        message = Message(
            role="assistant", content=text if text or not calls else None, tool_calls=tuple(calls)
        )
        finish = finish_reason_from_wire(raw.get("stop_reason"))
        return GatewayResponse(
            id=str(raw.get("id") or ""),
            model=str(raw.get("model") or ""),
            created=0,  # Anthropic gives no creation time
            choices=(Choice(index=0, message=message, finish_reason=finish),),
            usage=usage_from_wire(raw.get("usage")),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SerializationError(f"not an anthropic message: {exc!r}") from exc


# -- ingress: any provider's answer out -------------------------------------------------


def messages_response_to_wire(resp: GatewayResponse) -> dict[str, Any]:
    """GatewayResponse (from any provider) -> an Anthropic ``message`` object."""
    choice = resp.choices[0] if resp.choices else None
    content: list[dict[str, Any]] = []
    if choice is not None:
        text = choice.message.text()
        if text:
            content.append({"type": "text", "text": text})
        content.extend(
            {"type": "tool_use", "id": c.id, "name": c.name, "input": tool_input(c.arguments)}
            for c in choice.message.tool_calls
        )
    usage = resp.usage or Usage()
    return {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": resp.model,
        "content": content,
        "stop_reason": stop_reason_to_wire(choice.finish_reason if choice else None),
        "stop_sequence": None,
        "usage": {"input_tokens": usage.prompt_tokens, "output_tokens": usage.completion_tokens},
    }


def _sse(name: str, data: Mapping[str, Any]) -> bytes:
    return b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


#: The key of a text block among the held ones (tool calls go by their OpenAI index).
_TEXT = "text"


class MessagesStreamEncoder:
    """OpenAI-shaped ChatChunks (from any provider) -> Anthropic's SSE event sequence.

    ``message_start`` goes out with the first chunk (input tokens 0: OpenAI-shaped
    streams report usage only at the end); :meth:`close` sends ``message_delta`` with
    the stop reason and the real usage, then ``message_stop``.

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

    def __init__(self) -> None:
        self._started = False
        self._closed = False
        self._open: str | int | None = None  # _TEXT or the open call's OpenAI index
        self._next_block = 0  # the open block's index, or the next one's
        # Blocks held while a call is open: their start and the pieces of their deltas.
        self._held: dict[str | int, tuple[dict[str, Any], list[str]]] = {}
        self._arguments = ""  # the open call's so far
        self._stopped: set[int] = set()  # the calls whose blocks are stopped
        self._finish: str | None = None
        self._usage = Usage()

    def feed(self, chunk: ChatChunk) -> bytes:
        if self._closed:
            return b""
        out = bytearray()
        if not self._started:
            self._started = True
            out += self._message_start(chunk.id, chunk.model)
        for choice in chunk.choices:
            if choice.index != 0:
                continue  # Anthropic has one answer per message
            d = choice.delta
            text = (d.content or "") + (d.refusal or "")
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
            out += self._message_start("", "")
        out += self._close_block()
        for key, (start, pieces) in self._held.items():
            out += self._open_block(key, start)
            out += self._delta(key, "".join(pieces))
            out += self._close_block()
        self._held.clear()
        self._closed = True
        usage = {
            "input_tokens": self._usage.prompt_tokens,
            "output_tokens": self._usage.completion_tokens,
        }
        out += _sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop_reason_to_wire(self._finish), "stop_sequence": None},
                "usage": usage,
            },
        )
        out += _sse("message_stop", {"type": "message_stop"})
        return bytes(out)

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

    def _message_start(self, id_: str, model: str) -> bytes:
        message: dict[str, Any] = {
            "id": id_,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return _sse("message_start", {"type": "message_start", "message": message})

    def _open_block(self, key: str | int, block: dict[str, Any]) -> bytes:
        self._open = key
        event = {"type": "content_block_start", "index": self._next_block, "content_block": block}
        return _sse("content_block_start", event)

    def _delta(self, key: str | int, piece: str) -> bytes:
        if not piece:
            return b""
        delta = (
            {"type": "text_delta", "text": piece}
            if key == _TEXT
            else {"type": "input_json_delta", "partial_json": piece}
        )
        event = {"type": "content_block_delta", "index": self._next_block, "delta": delta}
        return _sse("content_block_delta", event)

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
        if self._open != _TEXT:
            self._stopped.add(int(self._open))
        self._open = None
        index = self._next_block
        self._next_block += 1
        return _sse("content_block_stop", {"type": "content_block_stop", "index": index})


# -- ingress: errors out ----------------------------------------------------------------


def _error_type(err: GatewayError) -> str:
    if isinstance(err, Overloaded | NoHealthyTarget):
        return "overloaded_error"
    if isinstance(err, RateLimitExceeded):
        return "rate_limit_error"
    if isinstance(err, NotFound):
        return "not_found_error"
    if isinstance(err, Timeout):
        return "timeout_error"
    if isinstance(err, InvalidRequest | ContentFiltered | ContextLengthExceeded):
        return "invalid_request_error"
    # An upstream's refused credential is the operator's problem, not the client's:
    # api_error, like every other upstream failure (PROVIDERS.md §9.13).
    if err.status_hint == 401:
        return "authentication_error"
    if err.status_hint == 403:
        return "permission_error"
    return "api_error"


def error_to_wire(err: GatewayError) -> dict[str, Any]:
    """Any GatewayError -> Anthropic's error body ``{"type":"error","error":{type,message}}``."""
    return {"type": "error", "error": {"type": _error_type(err), "message": err.message}}


def error_event(err: GatewayError) -> bytes:
    """A mid-stream failure as Anthropic's ``event: error``."""
    return _sse("error", error_to_wire(err))


#: The name under which :mod:`adapters` exports :func:`error_to_wire`.
anthropic_error_to_wire = error_to_wire
