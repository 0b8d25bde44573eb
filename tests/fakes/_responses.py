"""OpenAI's ``POST /v1/responses`` for the fake OpenAI server, in the documented format.

The fake's script (its models, failures and stream cuts) answers in Chat Completions;
this module serves the same script as the Responses API does: the ``response`` object,
or its named events (``response.created``, ``response.output_item.added``,
``response.content_part.added``, ``response.output_text.delta``..., the ``.done``
events, ``response.completed``, or ``response.incomplete`` for an answer cut short;
``error`` for an in-band error). The request's ``input`` (a string, or message items
with ``input_text`` parts) stands in for the chat messages the script reads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs
import orjson

from tests.fakes._base import Chunks, Cut, Received, Reply, sse

if TYPE_CHECKING:
    from tests.fakes._base import Answer
    from tests.fakes.openai_upstream import FakeOpenAI

__all__ = ["responses"]

RESPONSE_ID = "resp_fake1"
MESSAGE_ID = "msg_fake1"


def responses(fake: FakeOpenAI, got: Received) -> Answer:
    """The fake's answer to a Responses request."""
    missing = [name for name in ("model", "input") if name not in got.body]
    if missing:
        return fake.invalid(f"Missing required parameter: '{missing[0]}'.")
    as_chat = attrs.evolve(got, body={**got.body, "messages": _messages(got.body["input"])})
    stream = bool(got.body.get("stream"))
    answer = fake.scripted(str(got.body["model"]), as_chat, stream=stream)
    if isinstance(answer, Reply) and answer.status == 200:
        return attrs.evolve(answer, body=_response(fake, got.body, answer.body))
    if isinstance(answer, Chunks):
        events = _Events(fake, got.body)
        parts = [p if isinstance(p, Cut) else events.convert(p) for p in answer.parts]
        return Chunks(answer.stream, parts)
    return answer


def _messages(input_: Any) -> list[dict[str, Any]]:
    if isinstance(input_, str):
        return [{"role": "user", "content": input_}]
    out: list[dict[str, Any]] = []
    for item in input_:
        content = item.get("content")
        if isinstance(content, list):
            texts = [p.get("text", "") for p in content if p.get("type") == "input_text"]
            content = " ".join(texts)
        if item.get("role") in ("user", "assistant", "system", "developer") and content:
            out.append({"role": item["role"], "content": content})
    return out or [{"role": "user", "content": "hello"}]


def _usage(chat: dict[str, Any] | None) -> dict[str, Any] | None:
    if not chat:
        return None
    return {
        "input_tokens": chat["prompt_tokens"],
        "input_tokens_details": {"cached_tokens": 3},
        "output_tokens": chat["completion_tokens"],
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": chat["prompt_tokens"] + chat["completion_tokens"],
    }


def _object(
    body: dict[str, Any],
    model: str,
    status: str,
    output: list[dict[str, Any]],
    usage: dict[str, Any] | None,
) -> dict[str, Any]:
    """A ``response`` object, echoing the request's settings as OpenAI does."""
    incomplete = None
    if status == "incomplete":
        incomplete = {"reason": "max_output_tokens"}
    return {
        "id": RESPONSE_ID,
        "object": "response",
        "created_at": 1700000000,
        "status": status,
        "error": None,
        "incomplete_details": incomplete,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "model": model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": body.get("truncation", "disabled"),
        "metadata": body.get("metadata", {}),
        "usage": usage,
        "x_openai": {"only": "openai"},  # a field no translation makes
    }


def _status(finish: str | None) -> str:
    return "incomplete" if finish in ("length", "content_filter") else "completed"


def _text_item(text: str, status: str = "completed") -> dict[str, Any]:
    part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
    return {
        "type": "message",
        "id": MESSAGE_ID,
        "status": status,
        "role": "assistant",
        "content": [part],
    }


def _call_item(call: dict[str, Any], arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": "fc_" + call["id"],
        "call_id": call["id"],
        "name": call["function"]["name"],
        "arguments": arguments,
        "status": status,
    }


def _response(fake: FakeOpenAI, body: dict[str, Any], chat: dict[str, Any]) -> dict[str, Any]:
    """The chat answer the script gave, as a ``response`` object."""
    choice = chat["choices"][0]
    message = choice["message"]
    output = [_call_item(c, c["function"]["arguments"]) for c in message.get("tool_calls") or ()]
    if message.get("content"):
        output.insert(0, _text_item(message["content"]))
    status = _status(choice["finish_reason"])
    return _object(body, chat["model"], status, output, _usage(chat.get("usage")))


class _Events:
    """The script's chat chunks, each turned into the Responses events it stands for."""

    def __init__(self, fake: FakeOpenAI, body: dict[str, Any]) -> None:
        self._fake = fake
        self._body = body
        self._seq = 0
        self._model = ""
        self._text: str | None = None  # the open message's text so far
        self._call: dict[str, Any] | None = None  # the open function call
        self._arguments = ""
        self._output: list[dict[str, Any]] = []

    def _event(self, kind: str, **fields: Any) -> bytes:
        event = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return sse(event, kind)

    def convert(self, part: bytes) -> bytes:
        if not part.startswith(b"data: {"):
            return part if part != b"data: [DONE]\n\n" else b""  # garbage stays garbage
        try:
            chunk = orjson.loads(part.removeprefix(b"data: "))
        except orjson.JSONDecodeError:
            return part
        if "error" in chunk:
            error = chunk["error"]
            return self._event("error", code=error.get("code"), message=error["message"])
        out = b""
        if not self._model:
            self._model = chunk["model"]
            response = _object(self._body, self._model, "in_progress", [], None)
            out += self._event("response.created", response=response)
        for choice in chunk.get("choices") or ():
            out += self._delta(choice["delta"])
            if choice.get("finish_reason"):
                out += self._close() + self._end(choice["finish_reason"])
        return out

    def _delta(self, delta: dict[str, Any]) -> bytes:
        out = b""
        if delta.get("content"):
            if self._text is None:
                self._text = ""
                item = {**_text_item(""), "status": "in_progress", "content": []}
                out += self._event("response.output_item.added", output_index=0, item=item)
                part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
                out += self._event(
                    "response.content_part.added",
                    item_id=MESSAGE_ID,
                    output_index=0,
                    content_index=0,
                    part=part,
                )
            self._text += delta["content"]
            out += self._event(
                "response.output_text.delta",
                item_id=MESSAGE_ID,
                output_index=0,
                content_index=0,
                delta=delta["content"],
                logprobs=[],
            )
        for call in delta.get("tool_calls") or ():
            if call.get("id"):
                self._call = call
                item = _call_item(call, "", "in_progress")
                out += self._event("response.output_item.added", output_index=0, item=item)
            arguments = call.get("function", {}).get("arguments") or ""
            if arguments and self._call is not None:
                self._arguments += arguments
                out += self._event(
                    "response.function_call_arguments.delta",
                    item_id="fc_" + self._call["id"],
                    output_index=0,
                    delta=arguments,
                )
        return out

    def _close(self) -> bytes:
        out = b""
        if self._text is not None:
            part = _text_item(self._text)["content"][0]
            at = {"item_id": MESSAGE_ID, "output_index": 0, "content_index": 0}
            out += self._event("response.output_text.done", **at, text=self._text, logprobs=[])
            out += self._event("response.content_part.done", **at, part=part)
            item = _text_item(self._text)
            out += self._event("response.output_item.done", output_index=0, item=item)
            self._output.append(item)
        if self._call is not None:
            item = _call_item(self._call, self._arguments)
            out += self._event("response.output_item.done", output_index=0, item=item)
            self._output.append(item)
        return out

    def _end(self, finish: str) -> bytes:
        status = _status(finish)
        usage = _usage(self._fake.usage())
        response = _object(self._body, self._model, status, self._output, usage)
        return self._event(f"response.{status}", response=response)
