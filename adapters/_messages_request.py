"""A client's Anthropic Messages request -> ours (the ``POST /v1/messages`` ingress).

The reverse of :mod:`._anthropic_request`, with the same format decisions; in addition
``metadata.user_id`` becomes ``user`` and ``top_k`` is kept for the kinds that take it,
while ``thinking``, ``service_tier`` and the like have no unified form (which kinds
refuse what is :mod:`._fields`), and ``tool_result.is_error`` becomes an ``"Error: "``
prefix.

The body itself travels with the request (``GatewayRequest.raw``): an ``anthropic``
target gets it as it came, every field included (:mod:`._passthrough`). Content blocks
of a kind the unified request has no form for (``document``, ``search_result``, server
tool results, kinds added later) and server tools (``web_search_...``) are left out of
the unified request and named in ``raw.untranslated``: a target of another format
refuses them by name, an Anthropic target gets them.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any

import orjson

from ._anthropic_request import MEDIA_TYPES
from ._errors import (
    InvalidRequest,
)
from ._openai_request import client_body, number_param
from ._passthrough import ANTHROPIC
from ._types import (
    ContentPart,
    GatewayRequest,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCall,
    WireBody,
)

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence


__all__ = ["messages_request_from_wire"]


def messages_request_from_wire(
    body: Any, headers: Sequence[tuple[bytes, bytes]] = ()
) -> GatewayRequest:
    """A client's parsed Anthropic Messages body (and its request headers) ->
    GatewayRequest. Its ``anthropic-beta`` header goes on with the body to Anthropic
    targets.

    Raises:
        InvalidRequest: naming the offending parameter.
    """
    body, model = client_body(body)
    untranslated: list[str] = []
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
        messages.extend(_messages_from_wire(raw, i, untranslated))
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise InvalidRequest("'stream' must be a boolean", param="stream")
    stop = body.get("stop_sequences")
    if stop is not None and not (isinstance(stop, list) and all(isinstance(s, str) for s in stop)):
        raise InvalidRequest("'stop_sequences' must be an array of strings", param="stop_sequences")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise InvalidRequest("'tools' must be an array", param="tools")
    extra: dict[str, Any] = _extra_from_wire(body)
    tool_choice = _tool_choice_from_wire(body.get("tool_choice"), extra)
    unified_tools = []
    for i, t in enumerate(tools or ()):
        if isinstance(t, dict) and t.get("type", "custom") != "custom" and "name" in t:
            untranslated.append(f"tools[{i}]")  # a server tool: Anthropic runs it
        else:
            unified_tools.append(_tool_from_wire(t, i))
    return GatewayRequest(
        model=model,
        messages=tuple(messages),
        stream=stream,
        include_usage=True,  # Anthropic clients always get usage
        temperature=number_param(body, "temperature"),
        top_p=number_param(body, "top_p"),
        max_tokens=max_tokens,
        stop=tuple(stop or ()),
        tools=tuple(unified_tools),
        tool_choice=tool_choice,
        extra=extra,
        raw=WireBody(ANTHROPIC, body, tuple(untranslated), _beta(headers)),
    )


#: What an ``anthropic-beta`` value may hold: feature names, commas, spaces.
_BETA = re.compile(r"[A-Za-z0-9._, -]*")


def _beta(headers: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[str, str], ...]:
    values = [v for k, v in headers if k.lower() == b"anthropic-beta"]
    if not values:
        return ()
    value = b",".join(values).decode("latin-1")
    if _BETA.fullmatch(value) is None:  # never echoed: a header may hold anything
        raise InvalidRequest("the anthropic-beta header must list feature names")
    return (("anthropic-beta", value),)


def _extra_from_wire(body: Mapping[str, Any]) -> dict[str, Any]:
    """The fields that have an OpenAI form, in it: ``metadata.user_id`` is ``user``,
    ``top_k`` stays (Gemini's ``topK``). Which kinds take which is :mod:`._fields`."""
    extra: dict[str, Any] = {}
    metadata = body.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        extra["user"] = metadata["user_id"]
    top_k = body.get("top_k")
    if top_k is not None:
        if type(top_k) is not int or top_k < 1:
            raise InvalidRequest("'top_k' must be a positive integer", param="top_k")
        extra["top_k"] = top_k
    return extra


def _system_from_wire(raw: Any) -> str:
    if raw is None or isinstance(raw, str):
        return raw or ""
    if isinstance(raw, list) and all(
        isinstance(b, dict) and b.get("type") == "text" and isinstance(b.get("text"), str)
        for b in raw
    ):
        return "\n\n".join(b["text"] for b in raw if b["text"])
    raise InvalidRequest("'system' must be a string or an array of text blocks", param="system")


#: Content blocks the unified request holds (in their places); other kinds are the
#: Anthropic format's own, left to a same-format target.
_KNOWN_BLOCKS = frozenset(
    {"text", "image", "thinking", "redacted_thinking", "tool_use", "tool_result"}
)


def _messages_from_wire(raw: Any, index: int, untranslated: list[str]) -> list[Message]:
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
        elif isinstance(kind, str) and kind not in _KNOWN_BLOCKS:
            untranslated.append(at)  # a document, a server tool's result, ...
        elif kind == "tool_result" and role == "user":
            text, images = _tool_result_from_wire(block, at, untranslated)
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
            if not isinstance(media_type, str) or media_type not in MEDIA_TYPES:
                raise InvalidRequest(f"'{at}.source.media_type' is not supported", param=at)
            try:
                base64.b64decode(source["data"], validate=True)
            except binascii.Error:
                raise InvalidRequest(f"'{at}.source.data' is not base64", param=at) from None
            return ImagePart(f"data:{media_type};base64,{source['data']}")
    raise InvalidRequest(f"'{at}' must have a base64 or url source", param=at)


def _tool_result_from_wire(
    block: Mapping[str, Any], at: str, untranslated: list[str]
) -> tuple[str, list[ImagePart]]:
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
            elif isinstance(kind, str) and kind not in _KNOWN_BLOCKS:
                untranslated.append(f"{at}.content[{k}]")
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
