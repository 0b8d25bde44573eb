"""The Anthropic Messages wire format <-> the unified types, both directions.

Used twice, like :mod:`._openai_wire`:

* by the ``anthropic`` adapter: :func:`request_to_wire` (our request out to Anthropic)
  and :func:`response_from_wire` (its answer in);
* by the Anthropic ingress (``POST /v1/messages``): :func:`messages_request_from_wire`
  (a client's request in), :func:`messages_response_to_wire` and
  :class:`MessagesStreamEncoder` (any provider's answer out, in Anthropic's shape), and
  :func:`error_to_wire` / :func:`error_event` (any failure out).

Pure functions over parsed JSON values. Decisions where the formats do not line up:

* System and developer messages are all hoisted, in order, into the top-level
  ``system`` (joined by a blank line): the classic API has no system turn mid-conversation.
* OpenAI allows temperature up to 2, Anthropic up to 1: values are clamped, not rescaled.
* Tool-call arguments that are not a JSON object (models sometimes produce broken JSON)
  travel as ``{"_raw": "<text>"}``, so the conversation can go on.
* A conversation whose first turn is the assistant's gets a minimal ``"."`` user turn
  first; empty text blocks and empty turns are dropped (Anthropic rejects them).
* Ingress: ``top_k``, ``metadata``, ``thinking`` and ``service_tier`` have no OpenAI
  equivalent and are dropped; ``tool_result.is_error`` becomes an ``"Error: "`` prefix.
"""

from __future__ import annotations

import base64
import binascii
from typing import TYPE_CHECKING, Any

import orjson

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
    ContentPart,
    GatewayRequest,
    GatewayResponse,
    ImagePart,
    Message,
    TextPart,
    Tool,
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
    "messages_request_from_wire",
    "messages_response_to_wire",
    "request_to_wire",
    "response_from_wire",
    "stop_reason_to_wire",
    "usage_from_wire",
]

_MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
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


# -- adapter: our request out ----------------------------------------------------------


def request_to_wire(req: GatewayRequest, model: str, default_max_tokens: int) -> dict[str, Any]:
    """GatewayRequest -> an Anthropic Messages body for ``model``.

    Raises:
        InvalidRequest: something Anthropic cannot take (``n > 1``, a bad image URL,
            a tool result without its call's id, a tool schema that is not an object).
    """
    if int(req.extra.get("n") or 1) != 1:
        raise InvalidRequest("anthropic answers one choice per request; 'n' must be 1", param="n")
    body: dict[str, Any] = {"model": model, "max_tokens": req.max_tokens or default_max_tokens}
    system = [m.text() for m in req.messages if m.role in ("system", "developer")]
    if any(system):
        body["system"] = "\n\n".join(s for s in system if s)
    body["messages"] = _turns(req.messages)
    if req.stream:
        body["stream"] = True
    if req.temperature is not None:
        body["temperature"] = min(max(req.temperature, 0.0), 1.0)
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    if req.tools:
        body["tools"] = [_tool_to_wire(t, i) for i, t in enumerate(req.tools)]
        choice = _tool_choice_to_wire(req.tool_choice)
        if req.extra.get("parallel_tool_calls") is False and choice.get("type") != "none":
            choice["disable_parallel_tool_use"] = True
        if choice != {"type": "auto"}:
            body["tool_choice"] = choice
    user = req.extra.get("user")
    if isinstance(user, str):
        body["metadata"] = {"user_id": user}
    # Everything else in ``extra`` (seed, response_format, logprobs, ...) has no
    # Anthropic equivalent in the classic API and is dropped.
    return body


def _turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for i, m in enumerate(messages):
        if m.role in ("system", "developer"):
            continue
        role = "assistant" if m.role == "assistant" else "user"
        blocks = _blocks_to_wire(m, i)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # Tool results must open the user turn that answers the calls.
        turn["content"].sort(key=lambda b: b["type"] != "tool_result")
    if turns and turns[0]["role"] == "assistant":
        turns.insert(0, {"role": "user", "content": [{"type": "text", "text": "."}]})
    if turns and turns[-1]["role"] == "assistant":
        last = turns[-1]["content"][-1]
        if last["type"] == "text":  # a prefill may not end in whitespace
            last["text"] = last["text"].rstrip()
            if not last["text"]:
                turns[-1]["content"].pop()
                if not turns[-1]["content"]:
                    turns.pop()
    return turns


def _blocks_to_wire(m: Message, index: int) -> list[dict[str, Any]]:
    where = f"messages[{index}]"
    parts: tuple[ContentPart, ...]
    if m.content is None:
        parts = ()
    elif isinstance(m.content, str):
        parts = (TextPart(m.content),)
    else:
        parts = m.content
    blocks = [_part_to_wire(p, f"{where}.content[{j}]") for j, p in enumerate(parts)]
    blocks = [b for b in blocks if b["type"] != "text" or b["text"]]
    if m.role == "tool":
        if not m.tool_call_id:
            raise InvalidRequest(
                f"'{where}.tool_call_id' is required on tool messages",
                param=f"{where}.tool_call_id",
            )
        result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id}
        if blocks and all(b["type"] == "text" for b in blocks):
            result["content"] = "".join(b["text"] for b in blocks)
        elif blocks:
            result["content"] = blocks
        return [result]
    for call in m.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _input(call.arguments)}
        )
    return blocks


def _input(arguments: str) -> dict[str, Any]:
    """JSON-text arguments -> the object Anthropic wants (see the module docstring)."""
    if not arguments.strip():
        return {}
    try:
        value = orjson.loads(arguments)
    except orjson.JSONDecodeError:
        return {"_raw": arguments}
    return value if isinstance(value, dict) else {"_raw": arguments}


def _part_to_wire(p: ContentPart, where: str) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    url = p.url
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if sep and encoding == "base64" and media_type in _MEDIA_TYPES:
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }
        raise InvalidRequest(
            f"'{where}': anthropic takes base64 data URLs of "
            + ", ".join(sorted(_MEDIA_TYPES))
            + " images only",
            param=where,
        )
    raise InvalidRequest(f"'{where}': an image URL must be http(s) or a data: URL", param=where)


def _tool_to_wire(t: Tool, index: int) -> dict[str, Any]:
    schema = dict(t.parameters) if t.parameters is not None else {"type": "object"}
    schema.setdefault("type", "object")
    if schema["type"] != "object":
        raise InvalidRequest(
            f"'tools[{index}]': anthropic needs parameters whose type is 'object'",
            param=f"tools[{index}]",
        )
    out: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        out["description"] = t.description
    out["input_schema"] = schema
    if t.strict is not None:
        out["strict"] = t.strict
    return out


def _tool_choice_to_wire(choice: str | Mapping[str, Any] | None) -> dict[str, Any]:
    if choice is None or choice == "auto":
        return {"type": "auto"}
    if choice == "required":
        return {"type": "any"}
    if choice == "none":
        return {"type": "none"}
    if not isinstance(choice, str):
        fn = choice.get("function")
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            return {"type": "tool", "name": fn["name"]}
    raise InvalidRequest(
        "'tool_choice' must be 'auto', 'required', 'none' or a function", param="tool_choice"
    )


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


# -- ingress: a client's request in -----------------------------------------------------


def messages_request_from_wire(body: Any) -> GatewayRequest:
    """A client's parsed Anthropic Messages body -> GatewayRequest.

    Raises:
        InvalidRequest: naming the offending parameter.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string", param="model")
    max_tokens = body.get("max_tokens")
    if type(max_tokens) is not int or max_tokens < 1:
        raise InvalidRequest("'max_tokens' is required: a positive integer", param="max_tokens")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    messages: list[Message] = []
    system = _system_from_wire(body.get("system"))
    if system:
        messages.append(Message("system", system))
    for i, raw in enumerate(raw_messages):
        messages.extend(_messages_from_wire(raw, i))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    stop = body.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise InvalidRequest("'stop_sequences' must be an array of strings", param="stop_sequences")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    extra: dict[str, Any] = {}
    tool_choice = _tool_choice_from_wire(body.get("tool_choice"), extra)
    return GatewayRequest(
        model=model,
        messages=tuple(messages),
        stream=stream,
        include_usage=True,  # Anthropic clients always get usage
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stop=tuple(stop or ()),
        tools=tuple(_tool_from_wire(t, i) for i, t in enumerate(tools or ())),
        tool_choice=tool_choice,
        extra=extra,
    )


def _number(body: Mapping[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{key}' must be a number", param=key)
    return float(value)


def _system_from_wire(raw: Any) -> str:
    if raw is None or isinstance(raw, str):
        return raw or ""
    if isinstance(raw, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in raw
    ):
        return "\n\n".join(b["text"] for b in raw if b["text"])
    raise InvalidRequest("'system' must be a string or an array of text blocks", param="system")


def _messages_from_wire(raw: Any, index: int) -> list[Message]:
    """One Anthropic turn -> one Message, or (user turns with tool results) several."""
    where = f"messages[{index}]"
    if not isinstance(raw, dict) or raw.get("role") not in ("user", "assistant"):
        raise InvalidRequest(f"'{where}' must be a user or assistant message", param=where)
    role = raw["role"]
    content = raw.get("content")
    if isinstance(content, str):
        return [Message(role, content)]
    if not isinstance(content, list):
        raise InvalidRequest(f"'{where}.content' must be a string or an array", param=where)
    parts: list[ContentPart] = []
    calls: list[ToolCall] = []
    results: list[Message] = []
    for j, block in enumerate(content):
        at = f"{where}.content[{j}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(TextPart(block["text"]))
        elif kind == "image":
            parts.append(_image_from_wire(block, at))
        elif kind in ("thinking", "redacted_thinking") and role == "assistant":
            continue  # OpenAI-shaped upstreams have no place for them
        elif kind == "tool_use" and role == "assistant":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise InvalidRequest(f"'{at}' must have an id and a name", param=at)
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=arguments))
        elif kind == "tool_result" and role == "user":
            text, images = _tool_result_from_wire(block, at)
            results.append(Message("tool", text, tool_call_id=block["tool_use_id"]))
            parts.extend(images)  # OpenAI tool messages take text only: images follow
        else:
            raise InvalidRequest(f"'{at}': unsupported content block {kind!r}", param=at)
    if role == "assistant":
        text = "".join(p.text for p in parts if isinstance(p, TextPart))
        return [Message("assistant", text or None, tool_calls=tuple(calls))]
    out = results
    if len(parts) == 1 and isinstance(parts[0], TextPart):
        out.append(Message("user", parts[0].text))
    elif parts or not results:
        out.append(Message("user", tuple(parts)))
    return out


def _image_from_wire(block: Mapping[str, Any], at: str) -> ImagePart:
    source = block.get("source")
    if isinstance(source, dict):
        if source.get("type") == "url" and isinstance(source.get("url"), str):
            return ImagePart(source["url"])
        if source.get("type") == "base64" and isinstance(source.get("data"), str):
            media_type = source.get("media_type")
            if media_type not in _MEDIA_TYPES:
                raise InvalidRequest(f"'{at}.source.media_type' is not supported", param=at)
            try:
                base64.b64decode(source["data"], validate=True)
            except binascii.Error:
                raise InvalidRequest(f"'{at}.source.data' is not base64", param=at) from None
            return ImagePart(f"data:{media_type};base64,{source['data']}")
    raise InvalidRequest(f"'{at}' must have a base64 or url source", param=at)


def _tool_result_from_wire(block: Mapping[str, Any], at: str) -> tuple[str, list[ImagePart]]:
    if not isinstance(block.get("tool_use_id"), str):
        raise InvalidRequest(f"'{at}.tool_use_id' is required", param=at)
    content = block.get("content")
    images: list[ImagePart] = []
    if content is None:
        text = ""
    elif isinstance(content, str):
        text = content
    elif isinstance(content, list):
        texts = []
        for k, inner in enumerate(content):
            kind = inner.get("type") if isinstance(inner, dict) else None
            if kind == "text" and isinstance(inner.get("text"), str):
                texts.append(inner["text"])
            elif kind == "image":
                images.append(_image_from_wire(inner, f"{at}.content[{k}]"))
            else:
                raise InvalidRequest(f"'{at}.content[{k}]': unsupported block", param=at)
        text = "\n".join(texts)
    else:
        raise InvalidRequest(f"'{at}.content' must be a string or an array", param=at)
    if block.get("is_error") is True:
        text = "Error: " + text
    return text, images


def _tool_from_wire(raw: Any, index: int) -> Tool:
    at = f"tools[{index}]"
    if (
        not isinstance(raw, dict)
        or raw.get("type", "custom") != "custom"
        or not isinstance(raw.get("name"), str)
    ):
        raise InvalidRequest(f"'{at}' must be a custom tool with a name", param=at)
    schema = raw.get("input_schema")
    if not isinstance(schema, dict):
        raise InvalidRequest(f"'{at}.input_schema' must be an object", param=at)
    strict = raw.get("strict")
    return Tool(
        name=raw["name"],
        description=raw.get("description"),
        parameters=schema,
        strict=strict if isinstance(strict, bool) else None,
    )


def _tool_choice_from_wire(raw: Any, extra: dict[str, Any]) -> str | dict[str, Any] | None:
    if raw is None:
        return None
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind in ("auto", "any", "tool", "none"):
        if raw.get("disable_parallel_tool_use") is True:
            extra["parallel_tool_calls"] = False
        if kind == "tool":
            if not isinstance(raw.get("name"), str):
                raise InvalidRequest("'tool_choice.name' is required", param="tool_choice")
            return {"type": "function", "function": {"name": raw["name"]}}
        return {"auto": "auto", "any": "required", "none": "none"}[kind]
    raise InvalidRequest("'tool_choice.type' must be auto, any, tool or none", param="tool_choice")


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
            {"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c.arguments)}
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


class MessagesStreamEncoder:
    """OpenAI-shaped ChatChunks (from any provider) -> Anthropic's SSE event sequence.

    ``message_start`` goes out with the first chunk (input tokens 0: OpenAI-shaped
    streams report usage only at the end); text and each tool call become content
    blocks, opened and closed in order; :meth:`close` sends ``message_delta`` with the
    stop reason and the real usage, then ``message_stop``.
    """

    def __init__(self) -> None:
        self._started = False
        self._closed = False
        self._open: tuple[str, int] | None = None  # ("text" | "tool", our tool index)
        self._next_block = 0
        self._tool_blocks: dict[int, int] = {}  # OpenAI tool_calls index -> block index
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
                if self._open is None or self._open[0] != "text":
                    out += self._close_block()
                    out += self._open_block(("text", 0), {"type": "text", "text": ""})
                out += self._delta({"type": "text_delta", "text": text})
            for call in d.tool_calls:
                block = self._tool_blocks.get(call.index)
                if block is None:
                    out += self._close_block()
                    start = {
                        "type": "tool_use",
                        "id": call.id or f"toolu_{call.index}",
                        "name": call.name or "",
                        "input": {},
                    }
                    block = self._next_block
                    self._tool_blocks[call.index] = block
                    out += self._open_block(("tool", call.index), start)
                if call.arguments:
                    delta = {"type": "input_json_delta", "partial_json": call.arguments}
                    out += self._delta(delta, block)
            if choice.finish_reason:
                self._finish = choice.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        return bytes(out)

    def close(self) -> bytes:
        """The end of a complete answer: close the last block, stop reason, usage, stop."""
        if self._closed:
            return b""
        out = bytearray()
        if not self._started:
            self._started = True
            out += self._message_start("", "")
        out += self._close_block()
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
        """A mid-stream failure; nothing more is sent after it."""
        self._closed = True
        return error_event(err)

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

    def _open_block(self, kind: tuple[str, int], block: dict[str, Any]) -> bytes:
        self._open = kind
        event = {"type": "content_block_start", "index": self._next_block, "content_block": block}
        return _sse("content_block_start", event)

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        at = self._next_block if index is None else index
        return _sse(
            "content_block_delta", {"type": "content_block_delta", "index": at, "delta": delta}
        )

    def _close_block(self) -> bytes:
        if self._open is None:
            return b""
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
