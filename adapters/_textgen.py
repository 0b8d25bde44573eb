"""Answers of text-generation APIs (a prompt in, text out) in the unified types.

TGI's native API, Replicate's predictions and RunPod's native jobs answer with text
and little else: no message, often no id. These build the one-choice answer and the
stream chunks every such adapter gives; an empty id and model are filled in by the
layers above (the ingress names the answer, the upstream names the model).
"""

from __future__ import annotations

from ._types import ChatChunk, Choice, ChunkChoice, Delta, GatewayResponse, Message, Usage

__all__ = ["finish_chunk", "start_chunk", "text_chunk", "text_response", "usage_chunk"]


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
