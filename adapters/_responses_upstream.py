"""OpenAI's own Responses answers, read for a passed-through ``/v1/responses`` request.

A Responses client whose target is OpenAI's API gets OpenAI's answer as it came (the
``response`` object, or each event of its stream). The router still needs what the
answer says in the unified form: its usage (budgets, cost, metrics, read from
``usage.input_tokens``/``output_tokens``), its text (answer validation, the text a
stream delivered), tool calls and how it ended. This module reads that much; the
raw answer rides along (``GatewayResponse.raw``, ``ChatChunk.raw``).

Pure: parsed JSON and event bytes in, unified types out.
"""

from __future__ import annotations

from typing import Any

import orjson

from ._decoded import carried, carrying
from ._errors import GatewayError, SerializationError, StreamError
from ._passthrough import sse_bytes
from ._responses_response import error_code
from ._sse import SSEDecoder, SSEEvent
from ._types import (
    ChatChunk,
    Choice,
    ChunkChoice,
    Delta,
    GatewayResponse,
    Message,
    ToolCall,
    ToolCallDelta,
    Usage,
)

__all__ = [
    "ResponsesEventDecoder",
    "passed_stream_failure",
    "responses_answer_from_wire",
    "responses_usage",
]


def responses_usage(raw: Any) -> Usage | None:
    """The Responses ``usage`` object in the unified form (None where there is none)."""
    if not isinstance(raw, dict):
        return None
    inputs = raw.get("input_tokens_details")
    outputs = raw.get("output_tokens_details")
    return Usage(
        prompt_tokens=_int(raw.get("input_tokens")),
        completion_tokens=_int(raw.get("output_tokens")),
        cache_read_tokens=_int(inputs.get("cached_tokens") if isinstance(inputs, dict) else 0),
        reasoning_tokens=_int(outputs.get("reasoning_tokens") if isinstance(outputs, dict) else 0),
    )


def _int(value: Any) -> int:
    return value if type(value) is int else 0


def _finish(response: dict[str, Any], called: bool) -> str:
    """A Responses status as a chat finish reason."""
    if response.get("status") == "incomplete":
        details = response.get("incomplete_details")
        reason = details.get("reason") if isinstance(details, dict) else None
        return "content_filter" if reason == "content_filter" else "length"
    return "tool_calls" if called else "stop"


def responses_answer_from_wire(raw: Any) -> GatewayResponse:
    """A whole Responses ``response`` object -> GatewayResponse carrying it as ``raw``."""
    if not isinstance(raw, dict):
        raise SerializationError("upstream sent a Responses answer that is not an object")
    texts: list[str] = []
    refusals: list[str] = []
    calls: list[ToolCall] = []
    for item in raw.get("output") or ():
        if not isinstance(item, dict):
            continue
        if item.get("type") == "message":
            for part in item.get("content") or ():
                if isinstance(part, dict) and part.get("type") == "output_text":
                    texts.append(str(part.get("text") or ""))
                elif isinstance(part, dict) and part.get("type") == "refusal":
                    refusals.append(str(part.get("refusal") or ""))
        elif item.get("type") == "function_call":
            calls.append(
                ToolCall(
                    str(item.get("call_id") or ""),
                    str(item.get("name") or ""),
                    str(item.get("arguments") or ""),
                )
            )
    message = Message(
        "assistant",
        "".join(texts) if texts or not (calls or refusals) else None,
        tool_calls=tuple(calls),
        refusal="".join(refusals) or None,
    )
    created = raw.get("created_at")
    return GatewayResponse(
        id=str(raw.get("id") or ""),
        model=str(raw.get("model") or ""),
        created=int(created) if isinstance(created, int | float) else 0,
        choices=(Choice(0, message, _finish(raw, bool(calls))),),
        usage=responses_usage(raw.get("usage")),
        service_tier=raw.get("service_tier") if isinstance(raw.get("service_tier"), str) else None,
        raw=raw,
    )


#: The events that end a Responses stream, and what each means.
_ENDS = frozenset({"response.completed", "response.incomplete"})


class ResponsesEventDecoder:
    """OpenAI's Responses event stream -> one chunk per event, its bytes as ``raw``.

    Text deltas become content, function-call argument deltas tool-call deltas, the
    final ``response.completed`` (or ``response.incomplete``) the finish reason and
    usage; every other event is a chunk with no choices that only carries its bytes.
    ``response.failed`` and ``error`` end the stream with StreamError.
    """

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._id = ""
        self._model = ""
        self._created = 0
        self._finished = False
        self._called = False
        #: A function call's output index -> its tool-call index.
        self._calls: dict[int, int] = {}

    def feed(self, data: bytes) -> list[ChatChunk]:
        return self._chunks(self._sse.feed(data))

    @property
    def buffered(self) -> int:
        return self._sse.buffered

    def close(self) -> list[ChatChunk]:
        chunks = self._chunks(self._sse.close())
        if not self._finished:
            incomplete = "upstream stream ended before the answer was complete"
            raise carried(StreamError(incomplete), chunks)
        return chunks

    def _chunks(self, events: list[SSEEvent]) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        with carrying(out):
            for event in events:
                out.append(self._chunk(event.event, event.data))
        return out

    def _chunk(self, name: str, data: str) -> ChatChunk:
        try:
            event = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise StreamError(f"upstream sent a malformed stream event: {exc}") from exc
        if not isinstance(event, dict):
            raise StreamError("upstream sent a stream event that is not an object")
        kind = str(event.get("type") or name)
        if kind in ("error", "response.failed"):
            raise StreamError(_failure(event))
        response = event.get("response")
        if isinstance(response, dict) and not self._id:
            self._id = str(response.get("id") or "")
            self._model = str(response.get("model") or "")
            created = response.get("created_at")
            self._created = int(created) if isinstance(created, int | float) else 0
        wire = sse_bytes(data, kind)
        choice: ChunkChoice | None = None
        usage: Usage | None = None
        if kind == "response.output_text.delta":
            choice = ChunkChoice(0, Delta(content=str(event.get("delta") or "")))
        elif kind == "response.refusal.delta":
            choice = ChunkChoice(0, Delta(refusal=str(event.get("delta") or "")))
        elif kind == "response.output_item.added":
            choice = self._call_start(event)
        elif kind == "response.function_call_arguments.delta":
            index = self._calls.get(_int(event.get("output_index")), 0)
            call = ToolCallDelta(index, arguments=str(event.get("delta") or ""))
            choice = ChunkChoice(0, Delta(tool_calls=(call,)))
        elif kind in _ENDS and isinstance(response, dict):
            self._finished = True
            usage = responses_usage(response.get("usage"))
            choice = ChunkChoice(0, Delta(), finish_reason=_finish(response, self._called))
        choices = (choice,) if choice is not None else ()
        return ChatChunk(self._id, self._model, self._created, choices, usage=usage, raw=wire)

    def _call_start(self, event: dict[str, Any]) -> ChunkChoice | None:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return None
        self._called = True
        index = len(self._calls)
        self._calls[_int(event.get("output_index"))] = index
        call = ToolCallDelta(index, str(item.get("call_id") or ""), str(item.get("name") or ""))
        return ChunkChoice(0, Delta(tool_calls=(call,)))


def _failure(event: dict[str, Any]) -> str:
    """What a failed Responses stream says went wrong."""
    error = event.get("error")
    response = event.get("response")
    if error is None and isinstance(response, dict):
        error = response.get("error")
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return f"upstream stream failed: {error['message']}"
    if isinstance(event.get("message"), str):
        return f"upstream stream failed: {event['message']}"
    return "upstream stream failed"


def passed_stream_failure(chunk: ChatChunk, err: GatewayError) -> bytes:
    """The end of a passed-through Responses stream that broke: ``response.failed``
    for the response OpenAI's events began (``chunk``: one of them), then ``error``."""
    response = {
        "id": chunk.id,
        "object": "response",
        "created_at": chunk.created,
        "model": chunk.model,
        "status": "failed",
        "error": {"code": error_code(err), "message": err.message},
        "output": [],
    }
    failed = {"type": "response.failed", "response": response}
    nested = {"type": err.error_type, "code": err.code, "message": err.message, "param": err.param}
    error = {
        "type": "error",
        "code": err.code,
        "message": err.message,
        "param": err.param,
        "error": nested,
    }
    return sse_bytes(orjson.dumps(failed).decode(), "response.failed") + sse_bytes(
        orjson.dumps(error).decode(), "error"
    )
