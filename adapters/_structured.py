"""OpenAI ``response_format`` (JSON mode, Structured Outputs) for upstreams that have no
such field but can be made to answer through a forced tool (Anthropic, Bedrock).

The technique (PROVIDERS.md §9.10): the request gets one more tool, whose input schema
is the client's JSON schema (for ``json_object``, any object), and ``tool_choice``
forces it; the model's call of that tool *is* the answer. On the way back, the call's
input becomes the message's text and the finish reason ``stop``, so that
``client.chat.completions.parse``, instructor and the like read JSON content, as
from OpenAI. Pure: a request in, a request out; an answer, or stream chunks, in and out.

When the client also gave tools, the model may still call them: ``tool_choice`` then
becomes "call some tool" (``required``), and a call of the client's tools stays a tool
call. A client that named one function in ``tool_choice`` keeps its choice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from ._decoded import carried_through
from ._errors import InvalidRequest, UnsupportedParameter
from ._types import (
    ChatChunk,
    Choice,
    ChunkChoice,
    GatewayRequest,
    GatewayResponse,
    Message,
    Tool,
    ToolCallDelta,
)

__all__ = ["JsonTool", "JsonToolDecoder", "json_tool", "json_tool_answer"]

#: The tool's name when the schema's own name cannot serve (json_object, a clash).
DEFAULT_NAME = "json_response"
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_-]{0,63}")
_ANY_OBJECT: Mapping[str, Any] = {"type": "object"}


@attrs.frozen
class JsonTool:
    """The forced tool that stands for a ``response_format``."""

    name: str
    schema: Mapping[str, Any]
    description: str

    def request(self, req: GatewayRequest) -> GatewayRequest:
        """``req`` with the tool added and chosen, and no ``response_format`` left."""
        tool = Tool(name=self.name, description=self.description, parameters=self.schema)
        extra = {k: v for k, v in req.extra.items() if k != "response_format"}
        choice = req.tool_choice
        if not req.tools or choice == "none":
            # Only ours may be called (the client's, if any, stay declared for the
            # history that may use them), once.
            choice = {"type": "function", "function": {"name": self.name}}
            extra["parallel_tool_calls"] = False
        elif choice is None or choice in ("auto", "required"):
            choice = "required"  # a tool of the client's, or the answer through ours
        return attrs.evolve(req, tools=(*req.tools, tool), tool_choice=choice, extra=extra)


def json_tool(req: GatewayRequest, provider: str) -> JsonTool | None:
    """The forced tool for ``req``'s ``response_format``; None when it asks for none
    (absent, or ``{"type": "text"}``).

    Raises:
        InvalidRequest: a malformed ``response_format``.
        UnsupportedParameter: a schema whose root is not an object (a tool's input is
            always one): routing moves on to a target that takes it.
    """
    fmt = req.extra.get("response_format")
    if fmt is None:
        return None
    kind = fmt.get("type") if isinstance(fmt, Mapping) else None
    if kind == "text":
        return None
    taken = {t.name for t in req.tools}
    if kind == "json_object":
        name = DEFAULT_NAME if DEFAULT_NAME not in taken else DEFAULT_NAME + "_"
        return JsonTool(name, _ANY_OBJECT, "Give your whole answer as this tool's input.")
    spec = fmt.get("json_schema") if kind == "json_schema" else None
    if not isinstance(spec, Mapping) or not isinstance(spec.get("name"), str):
        raise InvalidRequest(
            "'response_format' must be text, json_object, or json_schema with a "
            "'json_schema' object that has a 'name'",
            param="response_format",
        )
    schema = spec.get("schema")
    if schema is None:
        schema = _ANY_OBJECT
    if not isinstance(schema, Mapping) or schema.get("type", "object") != "object":
        raise UnsupportedParameter(
            f"{provider} answers with a JSON schema only when its root is an object",
            param="response_format",
        )
    name = spec["name"]
    if not _NAME.fullmatch(name) or name in taken:
        name = DEFAULT_NAME if DEFAULT_NAME not in taken else DEFAULT_NAME + "_"
    description = spec.get("description")
    if not isinstance(description, str) or not description:
        description = f"Give your whole answer as this tool's input: a {spec['name']} object."
    return JsonTool(name, schema, description)


def json_tool_answer(resp: GatewayResponse, name: str) -> GatewayResponse:
    """An answer whose call of the tool ``name`` became its text (and finish ``stop``,
    unless other tool calls remain)."""
    return attrs.evolve(resp, choices=tuple(_choice(c, name) for c in resp.choices))


def _choice(choice: Choice, name: str) -> Choice:
    m = choice.message
    ours = [c for c in m.tool_calls if c.name == name]
    if not ours:
        return choice
    others = tuple(c for c in m.tool_calls if c.name != name)
    finish = choice.finish_reason
    if finish == "tool_calls" and not others:
        finish = "stop"
    message = Message("assistant", ours[0].arguments or "{}", tool_calls=others)
    return Choice(choice.index, message, finish)


class JsonToolDecoder:
    """A stream decoder's chunks with the calls of the tool ``name`` turned into text.

    The call's argument pieces become content deltas as they come (the JSON streams as
    the answer's text); the other calls keep going as tool calls, numbered from 0 among
    themselves; a ``tool_calls`` finish becomes ``stop`` when no other call was made.
    """

    def __init__(self, inner: Any, name: str) -> None:
        self._inner = inner
        self._name = name
        self._ours: set[int] = set()  # the tool indexes of our calls
        self._others: dict[int, int] = {}  # another call's index -> its new index
        self._texts = 0  # pieces of our call's input sent

    @property
    def buffered(self) -> int:
        return int(getattr(self._inner, "buffered", 0))

    def feed(self, data: bytes) -> list[ChatChunk]:
        with carried_through(self._chunks):
            return self._chunks(self._inner.feed(data))

    def close(self) -> list[ChatChunk]:
        with carried_through(self._chunks):
            return self._chunks(self._inner.close())

    def _chunks(self, chunks: list[ChatChunk]) -> list[ChatChunk]:
        return [self._chunk(c) for c in chunks]

    def _chunk(self, chunk: ChatChunk) -> ChatChunk:
        if not chunk.choices:
            return chunk
        return attrs.evolve(chunk, choices=tuple(self._choice(c) for c in chunk.choices))

    def _choice(self, choice: ChunkChoice) -> ChunkChoice:
        d = choice.delta
        if not d.tool_calls and choice.finish_reason is None:
            return choice
        text = d.content or ""
        calls: list[ToolCallDelta] = []
        for call in d.tool_calls:
            if call.name == self._name and call.index not in self._others:
                self._ours.add(call.index)
            if call.index in self._ours:
                text += call.arguments or ""
                self._texts += bool(call.arguments)
                continue
            index = self._others.setdefault(call.index, len(self._others))
            calls.append(attrs.evolve(call, index=index))
        finish = choice.finish_reason
        if finish is not None and self._ours and not self._others:
            if not self._texts:
                text += "{}"  # a call without input: an empty object
            if finish == "tool_calls":
                finish = "stop"
        delta = attrs.evolve(d, content=text or None, tool_calls=tuple(calls))
        return ChunkChoice(choice.index, delta, finish)
