"""What a RunPod job's ``output`` says, in the shapes its workers give.

A handler returns (or yields) anything JSON; the common LLM workers give:

* the vLLM worker: the OpenAI answer itself (``chat.completion``), and for a stream the
  raw SSE text of OpenAI's chunks, in pieces that may cut an event anywhere;
* its earlier versions: ``{"choices": [{"tokens": ["..."]}], "usage": {"input": N,
  "output": M}}`` per yielded part (a list of them when aggregated);
* simple handlers: a string, or ``{"text": ...}`` / ``{"output": ...}``.

An output ``{"error": ...}`` is the worker's failure (the job itself COMPLETED).
"""

from __future__ import annotations

from typing import Any

from ._base import stream_event_object
from ._decoded import carried, carrying
from ._errors import ProviderInternalError, SerializationError, StreamError
from ._openai import OpenAIStreamDecoder
from ._textgen import finish_chunk, start_chunk, text_chunk, text_response, usage_chunk
from ._types import ChatChunk, GatewayResponse, Usage

__all__ = ["RunPodStreamDecoder", "answer_from_output"]

_FINAL = ("COMPLETED", "FAILED", "CANCELLED", "TIMED_OUT")


def _usage(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    if "completion_tokens" in raw or "prompt_tokens" in raw:
        return Usage(int(raw.get("prompt_tokens") or 0), int(raw.get("completion_tokens") or 0))
    if "output" in raw or "input" in raw:
        return Usage(int(raw.get("input") or 0), int(raw.get("output") or 0))
    return None


def _part(item: Any) -> tuple[str, str | None, Usage | None]:
    """``(text, finish reason or None, usage or None)`` of one output part.

    Raises:
        ProviderInternalError: the part is the worker's error.
        SerializationError: the part has no text in a known shape.
    """
    if isinstance(item, str):
        return item, None, None
    if not isinstance(item, dict):
        raise SerializationError("a RunPod job's output has no text in a known shape")
    if item.get("error"):
        error = item["error"]
        detail = error.get("message") if isinstance(error, dict) else error
        raise ProviderInternalError(f"the RunPod worker failed: {detail}")
    usage = _usage(item.get("usage"))
    choices = item.get("choices")
    if isinstance(choices, list) and choices and isinstance(choices[0], dict):
        choice = choices[0]
        message = choice.get("message")
        if isinstance(message, dict):
            text = message.get("content") or ""
        elif isinstance(choice.get("tokens"), list):
            text = "".join(str(t) for t in choice["tokens"])
        else:
            text = choice.get("text") or ""
        return str(text), choice.get("finish_reason"), usage
    for key in ("text", "output"):
        if isinstance(item.get(key), str):
            return item[key], None, usage
    raise SerializationError("a RunPod job's output has no text in a known shape")


def answer_from_output(output: Any) -> GatewayResponse:
    """A COMPLETED job's ``output`` as the answer. Raises SerializationError or
    ProviderInternalError (the worker's own error)."""
    parts = output if isinstance(output, list) else [output]
    texts: list[str] = []
    finish: str | None = None
    usage: Usage | None = None
    try:
        for item in parts:
            text, reason, part_usage = _part(item)
            texts.append(text)
            finish = reason or finish
            usage = part_usage or usage
    except (TypeError, ValueError) as exc:
        raise SerializationError(f"a RunPod job's output is malformed: {exc!r}") from exc
    return text_response("".join(texts), finish or "stop", usage)


class RunPodStreamDecoder:
    """``/stream/{job}`` answers, each fed whole, -> chunks.

    The parts are raw SSE text of OpenAI chunks (the vLLM worker: decoded by the
    OpenAI decoder, which checks that the answer is whole) or parts in the shapes of
    `answer_from_output` (one text chunk each; whole once the job is COMPLETED).
    """

    def __init__(self) -> None:
        self._sse: OpenAIStreamDecoder | None = None
        self._started = False
        self._status = ""
        self._usage: Usage | None = None
        self._finish: str | None = None

    @property
    def finished(self) -> bool:
        return self._status in _FINAL

    @property
    def buffered(self) -> int:
        return self._sse.buffered if self._sse is not None else 0

    def feed(self, data: bytes) -> list[ChatChunk]:
        raw = stream_event_object(data)
        self._status = str(raw.get("status") or "")
        out: list[ChatChunk] = []
        with carrying(out):
            for item in raw.get("stream") or ():
                self._item(item, out)
        if self._status in ("FAILED", "CANCELLED", "TIMED_OUT"):
            error = raw.get("error") or self._status.lower()
            failed = StreamError(f"the RunPod job ended without its answer: {error}")
            raise carried(failed, out)
        return out

    def _item(self, item: Any, out: list[ChatChunk]) -> None:
        """Put the chunks of one part of the stream on ``out``."""
        output = item.get("output") if isinstance(item, dict) else None
        if isinstance(output, str) and (self._sse is not None or _is_sse(output)):
            self._sse = self._sse or OpenAIStreamDecoder()
            out.extend(self._sse.feed(output.encode()))
            return
        try:
            text, finish, usage = _part(output)
        except (SerializationError, ProviderInternalError, TypeError, ValueError) as exc:
            raise StreamError(f"RunPod sent an unreadable stream part: {exc}") from exc
        if not self._started:
            self._started = True
            out.append(start_chunk())
        if text:
            out.append(text_chunk(text))
        self._finish = finish or self._finish
        self._usage = usage or self._usage

    def close(self) -> list[ChatChunk]:
        """Raises StreamError unless the job COMPLETED with a whole answer."""
        if self._status != "COMPLETED":
            raise StreamError("RunPod's stream ended before the job completed")
        if self._sse is not None:
            return self._sse.close()
        out = [finish_chunk(self._finish or "stop")]
        if self._usage is not None:
            out.append(usage_chunk(self._usage))
        return out


def _is_sse(text: str) -> bool:
    head = text.lstrip()
    return head.startswith(("data:", ":", "event:"))
