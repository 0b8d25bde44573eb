"""The OpenAI Chat Completions wire format <-> the unified types, both directions.

Used twice: by the OpenAI ingress (a client's JSON in, our answer out) and by the
``openai`` adapter (our request out to an upstream, its answer in). Pure functions over
already-parsed JSON values; malformed input raises :class:`InvalidRequest` on the way in
from a client and :class:`SerializationError` on the way in from an upstream.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

import orjson

from ._errors import GatewayError, InvalidRequest, SerializationError
from ._types import (
    ChatChunk,
    Choice,
    ChunkChoice,
    ContentPart,
    Delta,
    GatewayRequest,
    GatewayResponse,
    ImagePart,
    Message,
    Role,
    TextPart,
    Tool,
    ToolCall,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "chunk_from_wire",
    "chunk_to_wire",
    "request_from_wire",
    "request_to_wire",
    "response_from_wire",
    "response_to_wire",
]

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool"})
# Fields that GatewayRequest models; everything else in a request travels in ``extra``.
_MODELLED = frozenset(
    {
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "tools",
        "tool_choice",
    }
)


# -- requests ---------------------------------------------------------------------------


def request_from_wire(body: Any) -> GatewayRequest:
    """A client's parsed JSON body -> GatewayRequest.

    Raises:
        InvalidRequest: naming the offending parameter.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string", param="model")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InvalidRequest("'messages' must be a non-empty array", param="messages")
    messages = tuple(_message_from_wire(m, i) for i, m in enumerate(raw_messages))
    stream = body.get("stream")
    if stream is None:
        stream = False
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    options = body.get("stream_options")
    if options is None:
        options = {}
    if not isinstance(options, dict):
        raise InvalidRequest("'stream_options' must be an object", param="stream_options")
    limit_name = "max_tokens"
    if body.get("max_completion_tokens") is not None:
        limit_name = "max_completion_tokens"
    max_tokens = body.get(limit_name)
    if max_tokens is not None and (type(max_tokens) is not int or max_tokens < 1):
        raise InvalidRequest(f"'{limit_name}' must be a positive integer", param=limit_name)
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    return GatewayRequest(
        model=model,
        messages=messages,
        stream=stream,
        include_usage=bool(options.get("include_usage")),
        temperature=_number(body, "temperature"),
        top_p=_number(body, "top_p"),
        max_tokens=max_tokens,
        stop=_stop(body.get("stop")),
        tools=tuple(_tool_from_wire(t, i) for i, t in enumerate(tools or ())),
        tool_choice=body.get("tool_choice"),
        extra={k: v for k, v in body.items() if k not in _MODELLED},
        limit_name=limit_name,
    )


def request_to_wire(req: GatewayRequest, model: str) -> dict[str, Any]:
    """GatewayRequest -> an OpenAI request body for ``model`` (the upstream's own id)."""
    body: dict[str, Any] = dict(req.extra)
    body["model"] = model
    body["messages"] = [_message_to_wire(m) for m in req.messages]
    if req.stream:
        body["stream"] = True
        if req.include_usage:
            body["stream_options"] = {"include_usage": True}
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.max_tokens is not None:
        # OpenAI's reasoning models refuse the older name; keep the one the client used.
        body[req.limit_name] = req.max_tokens
    if req.stop:
        body["stop"] = list(req.stop)
    if req.tools:
        body["tools"] = [_tool_to_wire(t) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = req.tool_choice
    return body


def _number(body: Mapping[str, Any], key: str) -> float | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidRequest(f"'{key}' must be a number", param=key)
    return float(value)


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(s, str) for s in value):
        return tuple(value)
    raise InvalidRequest("'stop' must be a string or an array of strings", param="stop")


def _message_from_wire(raw: Any, index: int) -> Message:
    where = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise InvalidRequest(f"'{where}' must be an object", param=where)
    role = raw.get("role")
    if role not in _ROLES:
        raise InvalidRequest(
            f"'{where}.role' must be one of {', '.join(sorted(_ROLES))}", param=f"{where}.role"
        )
    content = raw.get("content")
    parsed: str | tuple[ContentPart, ...] | None
    if content is None or isinstance(content, str):
        parsed = content
    elif isinstance(content, list):
        parsed = tuple(_part_from_wire(p, f"{where}.content[{i}]") for i, p in enumerate(content))
    else:
        raise InvalidRequest(f"'{where}.content' must be a string or an array", param=where)
    raw_calls = raw.get("tool_calls")
    if raw_calls is not None and not isinstance(raw_calls, list):
        raise InvalidRequest(f"'{where}.tool_calls' must be an array", param=f"{where}.tool_calls")
    tool_calls = tuple(
        _tool_call_from_wire(c, f"{where}.tool_calls[{i}]", InvalidRequest)
        for i, c in enumerate(raw_calls or ())
    )
    return Message(
        role=cast("Role", role),
        content=parsed,
        name=raw.get("name"),
        tool_calls=tool_calls,
        tool_call_id=raw.get("tool_call_id"),
    )


def _part_from_wire(raw: Any, where: str) -> ContentPart:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if kind == "text" and isinstance(raw.get("text"), str):
        return TextPart(raw["text"])
    if kind == "image_url":
        image = raw.get("image_url")
        if isinstance(image, str):
            return ImagePart(image)
        if isinstance(image, dict) and isinstance(image.get("url"), str):
            return ImagePart(image["url"], image.get("detail"))
    raise InvalidRequest(
        f"'{where}' must be a text or image_url content part", param=where.split(".")[0]
    )


def _tool_from_wire(raw: Any, index: int) -> Tool:
    fn = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise InvalidRequest(
            f"'tools[{index}]' must be a function tool with a name", param=f"tools[{index}]"
        )
    return Tool(
        name=fn["name"],
        description=fn.get("description"),
        parameters=fn.get("parameters"),
        strict=fn.get("strict"),
    )


def _tool_call_from_wire(raw: Any, where: str, error: type[GatewayError]) -> ToolCall:
    fn = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise error(f"'{where}' must be a function call with a name", param=where)
    arguments = fn.get("arguments") or ""
    if not isinstance(arguments, str):  # some hosts send an object; the wire wants JSON text
        arguments = orjson.dumps(arguments).decode()
    return ToolCall(id=str(raw.get("id") or ""), name=fn["name"], arguments=arguments)


def _message_to_wire(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if m.content is None or isinstance(m.content, str):
        out["content"] = m.content
    else:
        out["content"] = [_part_to_wire(p) for p in m.content]
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [_tool_call_to_wire(c) for c in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def _part_to_wire(p: ContentPart) -> dict[str, Any]:
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    image: dict[str, Any] = {"url": p.url}
    if p.detail is not None:
        image["detail"] = p.detail
    return {"type": "image_url", "image_url": image}


def _tool_to_wire(t: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        fn["description"] = t.description
    if t.parameters is not None:
        fn["parameters"] = t.parameters
    if t.strict is not None:
        fn["strict"] = t.strict
    return {"type": "function", "function": fn}


def _tool_call_to_wire(c: ToolCall) -> dict[str, Any]:
    return {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}


# -- responses --------------------------------------------------------------------------


def response_from_wire(raw: Any) -> GatewayResponse:
    """An upstream's parsed ``chat.completion`` -> GatewayResponse.

    Raises:
        SerializationError: the body is not a chat completion.
    """
    try:
        choices = tuple(
            Choice(
                index=c.get("index", i),
                message=_answer_from_wire(c["message"]),
                finish_reason=c.get("finish_reason"),
            )
            for i, c in enumerate(raw["choices"])
        )
        return GatewayResponse(
            id=str(raw.get("id") or ""),
            model=str(raw.get("model") or ""),
            created=int(raw.get("created") or 0),
            choices=choices,
            usage=_usage_from_wire(raw.get("usage")),
            system_fingerprint=raw.get("system_fingerprint"),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SerializationError(f"not a chat completion: {exc!r}") from exc


def response_to_wire(resp: GatewayResponse) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": resp.id,
        "object": "chat.completion",
        "created": resp.created,
        "model": resp.model,
        "choices": [
            {
                "index": c.index,
                "message": _message_to_wire(c.message),
                "logprobs": None,
                "finish_reason": c.finish_reason,
            }
            for c in resp.choices
        ],
    }
    if resp.usage is not None:
        out["usage"] = _usage_to_wire(resp.usage)
    if resp.system_fingerprint is not None:
        out["system_fingerprint"] = resp.system_fingerprint
    return out


def _answer_from_wire(raw: Mapping[str, Any]) -> Message:
    content = raw.get("content")
    if content is not None and not isinstance(content, str):
        raise TypeError("message.content must be a string or null")
    calls = tuple(
        _tool_call_from_wire(c, "tool_calls", SerializationError)
        for c in raw.get("tool_calls") or ()
    )
    return Message(role="assistant", content=content, tool_calls=calls)


def _usage_from_wire(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    return Usage(
        prompt_tokens=int(raw.get("prompt_tokens") or 0),
        completion_tokens=int(raw.get("completion_tokens") or 0),
    )


def _usage_to_wire(u: Usage) -> dict[str, int]:
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    }


# -- stream chunks ----------------------------------------------------------------------


def chunk_from_wire(raw: Any) -> ChatChunk:
    """An upstream's parsed ``chat.completion.chunk`` -> ChatChunk.

    Raises:
        SerializationError: the event is not a chunk.
    """
    try:
        return ChatChunk(
            id=str(raw.get("id") or ""),
            model=str(raw.get("model") or ""),
            created=int(raw.get("created") or 0),
            choices=tuple(_chunk_choice_from_wire(c) for c in raw.get("choices") or ()),
            usage=_usage_from_wire(raw.get("usage")),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SerializationError(f"not a chat completion chunk: {exc!r}") from exc


def _chunk_choice_from_wire(raw: Mapping[str, Any]) -> ChunkChoice:
    d = raw.get("delta") or {}
    calls = tuple(
        ToolCallDelta(
            index=int(c.get("index", 0)),
            id=c.get("id"),
            name=(c.get("function") or {}).get("name"),
            arguments=(c.get("function") or {}).get("arguments"),
        )
        for c in d.get("tool_calls") or ()
    )
    return ChunkChoice(
        index=int(raw.get("index", 0)),
        delta=Delta(
            role=d.get("role"), content=d.get("content"), tool_calls=calls, refusal=d.get("refusal")
        ),
        finish_reason=raw.get("finish_reason"),
    )


def chunk_to_wire(chunk: ChatChunk) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": chunk.id,
        "object": "chat.completion.chunk",
        "created": chunk.created,
        "model": chunk.model,
        "choices": [_chunk_choice_to_wire(c) for c in chunk.choices],
    }
    if chunk.usage is not None:
        out["usage"] = _usage_to_wire(chunk.usage)
    return out


def _chunk_choice_to_wire(c: ChunkChoice) -> dict[str, Any]:
    delta: dict[str, Any] = {}
    d = c.delta
    if d.role is not None:
        delta["role"] = d.role
    if d.content is not None:
        delta["content"] = d.content
    if d.refusal is not None:
        delta["refusal"] = d.refusal
    if d.tool_calls:
        delta["tool_calls"] = [_tool_call_delta_to_wire(t) for t in d.tool_calls]
    return {"index": c.index, "delta": delta, "logprobs": None, "finish_reason": c.finish_reason}


def _tool_call_delta_to_wire(t: ToolCallDelta) -> dict[str, Any]:
    out: dict[str, Any] = {"index": t.index}
    if t.id is not None:
        out["id"] = t.id
        out["type"] = "function"
    fn: dict[str, Any] = {}
    if t.name is not None:
        fn["name"] = t.name
    if t.arguments is not None:
        fn["arguments"] = t.arguments
    if fn:
        out["function"] = fn
    return out
