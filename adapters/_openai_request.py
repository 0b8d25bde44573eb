"""Requests in the OpenAI Chat Completions format <-> the unified request, both ways.

Used twice: by the OpenAI ingress (:func:`request_from_wire`, a client's JSON in) and
by the ``openai`` adapter (:func:`request_to_wire`, our request out to an upstream).
Answers and stream chunks are :mod:`._openai_response`. Pure functions over
already-parsed JSON values; malformed input from a client raises :class:`InvalidRequest`.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

import orjson

from ._errors import GatewayError, InvalidRequest
from ._passthrough import OPENAI
from ._types import (
    ContentPart,
    GatewayRequest,
    ImagePart,
    Message,
    RefusalPart,
    Role,
    TextPart,
    Tool,
    ToolCall,
    WireBody,
    WirePart,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "client_body",
    "for_reasoning_model",
    "is_reasoning_model",
    "message_to_wire",
    "number_param",
    "part_to_wire",
    "request_from_wire",
    "request_to_wire",
    "tool_call_from_wire",
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


def request_from_wire(body: Any) -> GatewayRequest:
    """A client's parsed JSON body -> GatewayRequest.

    Raises:
        InvalidRequest: naming the offending parameter.
    """
    body, model = client_body(body)
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
        temperature=number_param(body, "temperature"),
        top_p=number_param(body, "top_p"),
        max_tokens=max_tokens,
        stop=_stop(body.get("stop")),
        tools=tuple(_tool_from_wire(t, i) for i, t in enumerate(tools or ())),
        tool_choice=body.get("tool_choice"),
        extra={k: v for k, v in body.items() if k not in _MODELLED},
        limit_name=limit_name,
        # An openai, azure or OpenAI-compatible target gets the body as it came.
        raw=WireBody(OPENAI, body),
    )


#: OpenAI's reasoning models, by name: the o-series (``o1``, ``o3-mini``, ``o4-mini``,
#: ...) and ``gpt-5`` (``gpt-5-mini``, ``gpt-5.1``, ...), fine-tunes (``ft:o4-mini-...``)
#: included. They refuse ``max_tokens`` and take only ``max_completion_tokens``.
_REASONING_MODEL = re.compile(r"(?:ft:)?(?:o\d+(?:$|-)|gpt-5(?:$|[-.]))", re.IGNORECASE)


def is_reasoning_model(model: str) -> bool:
    """Whether ``model`` names one of OpenAI's reasoning models (see above)."""
    return _REASONING_MODEL.match(model) is not None


def for_reasoning_model(body: dict[str, Any], model: str) -> dict[str, Any]:
    """``body`` for OpenAI's own API (or Azure OpenAI): if ``model`` is a reasoning model
    (:func:`is_reasoning_model`), its token limit as ``max_completion_tokens``, the only
    name such a model takes, whichever name the client used (an Anthropic client's is
    ``max_tokens``). OpenAI-compatible hosts never get this: some know only
    ``max_tokens``, whatever their models are called."""
    if "max_tokens" not in body or not is_reasoning_model(model):
        return body
    body = dict(body)
    limit = body.pop("max_tokens")
    body.setdefault("max_completion_tokens", limit)
    return body


def request_to_wire(req: GatewayRequest, model: str) -> dict[str, Any]:
    """GatewayRequest -> an OpenAI request body for ``model`` (the upstream's own id).

    The token limit goes under the name the client used (an Anthropic client's is
    ``max_tokens``); :func:`for_reasoning_model` renames it for OpenAI's own models.
    """
    body: dict[str, Any] = dict(req.extra)
    body["model"] = model
    body["messages"] = [message_to_wire(m) for m in req.messages]
    if req.stream:
        body["stream"] = True
        if req.include_usage:
            body["stream_options"] = {"include_usage": True}
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.max_tokens is not None:
        body[req.limit_name] = req.max_tokens
    if req.stop:
        body["stop"] = list(req.stop)
    if req.tools:
        body["tools"] = [_tool_to_wire(t) for t in req.tools]
    if req.tool_choice is not None:
        body["tool_choice"] = req.tool_choice
    return body


def client_body(body: Any) -> tuple[dict[str, Any], str]:
    """A client's parsed body and its ``model``, in either ingress format.

    Raises:
        InvalidRequest: not a JSON object, or no model.
    """
    if not isinstance(body, dict):
        raise InvalidRequest("the request body must be a JSON object")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise InvalidRequest("'model' is required and must be a string", param="model")
    return body, model


def number_param(body: Mapping[str, Any], key: str) -> float | None:
    """A client's optional numeric parameter (a bool is not a number here)."""
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
    if not isinstance(role, str) or role not in _ROLES:
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
        tool_call_from_wire(c, f"{where}.tool_calls[{i}]", InvalidRequest)
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
    elif kind == "refusal" and isinstance(raw.get("refusal"), str):
        return RefusalPart(raw["refusal"])
    elif isinstance(kind, str) and kind not in ("text", "refusal"):
        # ``file``, ``input_audio``, a kind added later: OpenAI-format targets take it.
        return WirePart(OPENAI, raw, where)
    raise InvalidRequest(f"'{where}' is not a valid content part", param=where.split(".")[0])


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


def tool_call_from_wire(raw: Any, where: str, error: type[GatewayError]) -> ToolCall:
    fn = raw.get("function") if isinstance(raw, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise error(f"'{where}' must be a function call with a name", param=where)
    arguments = fn.get("arguments") or ""
    if not isinstance(arguments, str):  # some hosts send an object; the wire wants JSON text
        arguments = orjson.dumps(arguments).decode()
    return ToolCall(id=str(raw.get("id") or ""), name=fn["name"], arguments=arguments)


def message_to_wire(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role}
    if m.content is None or isinstance(m.content, str):
        out["content"] = m.content
    else:
        out["content"] = [part_to_wire(p) for p in m.content]
    if m.name is not None:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [_tool_call_to_wire(c) for c in m.tool_calls]
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def part_to_wire(p: ContentPart) -> dict[str, Any]:
    if isinstance(p, RefusalPart):
        return {"type": "refusal", "refusal": p.text}
    if isinstance(p, TextPart):
        return {"type": "text", "text": p.text}
    if isinstance(p, WirePart):
        return dict(p.part)  # refused before here unless the target speaks OpenAI's format
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
