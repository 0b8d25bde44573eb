"""A route's content hooks, applied to what goes up and what comes back.

Every text of a request (each message's text, on every ingress; the inputs of an
embeddings request) goes through the route's hooks before anything else sees it: the
cache key, the upstream. Each answer's text goes through them before the client gets
it; a stream's text through a :class:`~rules.TextStream` per choice, which holds back
the few characters a pattern split across two chunks needs.

A request on a route with hooks is always translated, never passed through in the
client's own format: every text the upstream gets, and every text the client gets,
has been through the hooks (a part only a passthrough carries is refused, naming it).

A refusal is :class:`ContentBlocked` (400, ``content_blocked``, naming the hook).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from adapters import (
    ChatChunk,
    ChunkChoice,
    Delta,
    GatewayRequest,
    InvalidRequest,
    Message,
    TextPart,
    UnsupportedParameter,
)
from rules import Blocked, TextStream, apply_hooks

if TYPE_CHECKING:
    from collections.abc import Sequence

    from adapters import EmbeddingRequest, GatewayResponse
    from rules import TextHook

__all__ = [
    "AnswerScreen",
    "ContentBlocked",
    "answer_text",
    "request_text",
    "screen_answer",
    "screen_embeddings",
    "screen_request",
]


class ContentBlocked(InvalidRequest):
    """A content hook refused the request or its answer (``[hooks.NAME]``).

    Whose fault: the content's, by the operator's policy; no other target can help,
    so routing never moves on from it.
    """

    code = "content_blocked"

    @classmethod
    def from_blocked(cls, exc: Blocked) -> ContentBlocked:
        return cls(str(exc), param=None)


def _message(hooks: Sequence[TextHook], message: Message, direction: str) -> Message:
    content = message.content
    if isinstance(content, str):
        new = apply_hooks(hooks, content, direction)
        return message if new == content else attrs.evolve(message, content=new)
    if not content:
        return message
    parts = tuple(
        attrs.evolve(p, text=apply_hooks(hooks, p.text, direction))
        if isinstance(p, TextPart)
        else p
        for p in content
    )
    return attrs.evolve(message, content=parts) if parts != content else message


def screen_request(hooks: Sequence[TextHook], req: GatewayRequest) -> GatewayRequest:
    """``req`` through ``hooks`` (unchanged when there are none).

    Raises:
        ContentBlocked: a hook refused a text.
    """
    if not hooks:
        return req
    if req.raw is not None and req.raw.untranslated:
        # The screened request is translated (its body is not sent as it came): a part
        # with no unified form would be lost, so it is refused instead.
        where = req.raw.untranslated[0]
        raise UnsupportedParameter(
            f"'{where}' cannot be sent on a route with content hooks: they read the "
            "translated request, which has no form for it",
            param=where,
        )
    try:
        messages = tuple(_message(hooks, m, "request") for m in req.messages)
    except Blocked as exc:
        raise ContentBlocked.from_blocked(exc) from None
    return attrs.evolve(req, messages=messages, raw=None)


def screen_embeddings(hooks: Sequence[TextHook], req: EmbeddingRequest) -> EmbeddingRequest:
    """An embeddings request's texts through ``hooks`` (token arrays, which have no
    text to read, go as they are).

    Raises:
        ContentBlocked: a hook refused a text.
    """
    if not hooks or req.token_input:
        return req
    try:
        inputs = tuple(apply_hooks(hooks, text, "request") for text in req.texts())
    except Blocked as exc:
        raise ContentBlocked.from_blocked(exc) from None
    return attrs.evolve(req, inputs=inputs)


def screen_answer(hooks: Sequence[TextHook], resp: GatewayResponse) -> GatewayResponse:
    """A whole answer's texts through ``hooks``.

    Raises:
        ContentBlocked: a hook refused the answer.
    """
    if not hooks:
        return resp
    try:
        choices = tuple(
            attrs.evolve(c, message=_message(hooks, c.message, "response")) for c in resp.choices
        )
    except Blocked as exc:
        raise ContentBlocked.from_blocked(exc) from None
    return attrs.evolve(resp, choices=choices, raw=None)


class AnswerScreen:
    """A streamed answer through the hooks: :meth:`feed` each batch, send what it
    returns; :meth:`close` at the end gives what was still held back.

    A choice's held text goes out with its ``finish_reason``. Both raise
    ContentBlocked when a hook refuses the answer.
    """

    def __init__(self, hooks: Sequence[TextHook]) -> None:
        self._hooks = hooks
        self._streams: dict[int, TextStream] = {}
        self._last: ChatChunk | None = None

    def feed(self, batch: list[ChatChunk]) -> list[ChatChunk]:
        try:
            return [c for c in (self._chunk(chunk) for chunk in batch) if c is not None]
        except Blocked as exc:
            raise ContentBlocked.from_blocked(exc) from None

    def _chunk(self, chunk: ChatChunk) -> ChatChunk | None:
        self._last = chunk
        if not chunk.choices:
            return chunk
        choices = []
        for choice in chunk.choices:
            stream = self._streams.get(choice.index)
            if stream is None:
                stream = self._streams[choice.index] = TextStream(self._hooks, "response")
            content = choice.delta.content or ""
            text = stream.feed(content) if content else ""
            if choice.finish_reason is not None:
                text += stream.flush()
                del self._streams[choice.index]
            if text != content:
                # Built, not evolved: this runs for every chunk of every hooked stream.
                d = choice.delta
                delta = Delta(d.role, text or None, d.tool_calls, d.refusal)
                choice = ChunkChoice(
                    choice.index, delta, choice.finish_reason, choice.stop_sequence, choice.logprobs
                )
            if _empty(choice):
                continue  # all its text held back: nothing to send yet
            choices.append(choice)
        if not choices and chunk.usage is None:
            return None
        return ChatChunk(
            chunk.id, chunk.model, chunk.created, tuple(choices), chunk.usage, chunk.start_usage
        )

    def close(self) -> list[ChatChunk]:
        """What is still held back of a stream that ended without a finish reason."""
        last, self._last = self._last, None
        try:
            rest = [(i, s.flush()) for i, s in sorted(self._streams.items())]
        except Blocked as exc:
            raise ContentBlocked.from_blocked(exc) from None
        self._streams.clear()
        choices = tuple(ChunkChoice(i, Delta(content=text)) for i, text in rest if text)
        if last is None or not choices:
            return []
        return [ChatChunk(last.id, last.model, last.created, choices)]


def _empty(choice: ChunkChoice) -> bool:
    d = choice.delta
    return not (
        d.content or d.role or d.tool_calls or d.refusal or choice.finish_reason or choice.logprobs
    )


def request_text(req: GatewayRequest | EmbeddingRequest) -> str:
    """A request's texts, one ``role: text`` line per message (an embeddings request's
    inputs, one a line), for the access log."""
    if isinstance(req, GatewayRequest):
        return "\n".join(f"{m.role}: {m.text()}" for m in req.messages)
    return "" if req.token_input else "\n".join(req.texts())


def answer_text(resp: GatewayResponse) -> str:
    """A whole answer's text (each choice's), for the access log."""
    return "\n".join(c.message.text() for c in resp.choices)
