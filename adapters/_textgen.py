"""Answers of text-generation APIs (a prompt in, text out) in the unified types.

TGI's native API, Replicate's predictions and RunPod's native jobs answer with text
and little else: no message, often no id. These build the one-choice answer and the
stream chunks every such adapter gives; an empty id and model are filled in by the
layers above (the ingress names the answer, the upstream names the model).
"""

from __future__ import annotations

from ._decoded import carried, carrying
from ._errors import StreamError
from ._sse import SSEDecoder, SSEEvent
from ._types import ChatChunk, Choice, ChunkChoice, Delta, GatewayResponse, Message, Usage

__all__ = [
    "TextEventDecoder",
    "finish_chunk",
    "start_chunk",
    "text_chunk",
    "text_response",
    "usage_chunk",
]


def text_response(
    text: str, finish: str = "stop", usage: Usage | None = None, id: str = ""
) -> GatewayResponse:
    choice = Choice(index=0, message=Message("assistant", text), finish_reason=finish)
    return GatewayResponse(id=id, model="", created=0, choices=(choice,), usage=usage)


def _chunk(delta: Delta, finish: str | None = None, id: str = "") -> ChatChunk:
    return ChatChunk(id, "", 0, (ChunkChoice(0, delta, finish),))


def start_chunk(id: str = "") -> ChatChunk:
    """The first chunk: the assistant's role, no text yet."""
    return _chunk(Delta(role="assistant", content=""), id=id)


def text_chunk(text: str, id: str = "") -> ChatChunk:
    return _chunk(Delta(content=text), id=id)


def finish_chunk(finish: str, id: str = "") -> ChatChunk:
    return _chunk(Delta(), finish, id=id)


def usage_chunk(usage: Usage, id: str = "") -> ChatChunk:
    return ChatChunk(id, "", 0, (), usage)


class TextEventDecoder:
    """An SSE stream of text pieces -> chunks, whole once its last event came.

    A subclass turns an event into chunks (:meth:`_event`), opens the answer once with
    :meth:`_start`, and sets ``_done`` at its stream's last event (events after it are
    not read); :attr:`INCOMPLETE` says what a stream cut before it lacks.
    """

    INCOMPLETE = "the stream ended before its last event"

    def __init__(self) -> None:
        self._sse = SSEDecoder()
        self._started = False
        self._done = False

    @property
    def buffered(self) -> int:
        return self._sse.buffered

    def feed(self, data: bytes) -> list[ChatChunk]:
        return self._chunks(self._sse.feed(data))

    def close(self) -> list[ChatChunk]:
        chunks = self._chunks(self._sse.close())
        if not self._done:
            raise carried(StreamError(self.INCOMPLETE), chunks)
        return chunks

    def _start(self, out: list[ChatChunk]) -> None:
        if not self._started:
            self._started = True
            out.append(start_chunk())

    def _chunks(self, events: list[SSEEvent]) -> list[ChatChunk]:
        out: list[ChatChunk] = []
        with carrying(out):
            for event in events:
                if not self._done:
                    self._event(event, out)
        return out

    def _event(self, event: SSEEvent, out: list[ChatChunk]) -> None:
        """Put the chunks of ``event`` on ``out``. Raises StreamError."""
        raise NotImplementedError
