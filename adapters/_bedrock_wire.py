"""Bedrock Converse JSON <-> the unified types: requests out, answers and errors in.

Pure functions over parsed JSON values, used by :mod:`adapters._bedrock`. The rules
follow PROVIDERS.md §5 and §9: system prompts go to the top-level ``system`` list,
OpenAI ``tool`` messages become ``toolResult`` blocks of a user turn, adjacent turns of
one role merge (Converse insists on alternation and on a user turn first), images must
be inline bytes, and ``"none"`` as tool choice has no Bedrock equivalent.
"""

from __future__ import annotations

import base64
import binascii
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import orjson

from ._base import error_for_status, retry_after
from ._errors import (
    AuthenticationFailed,
    ContentFiltered,
    ContextLengthExceeded,
    GatewayError,
    InvalidRequest,
    NotFound,
    Overloaded,
    ProviderInternalError,
    RateLimitExceeded,
    SerializationError,
    Timeout,
    UnsupportedCapability,
)
from ._passthrough import refuse_part
from ._types import (
    Choice,
    GatewayRequest,
    GatewayResponse,
    ImagePart,
    Message,
    TextPart,
    ToolCall,
    Usage,
    WirePart,
)

if TYPE_CHECKING:
    from ._base import Headers

__all__ = [
    "error_from_wire",
    "finish_reason",
    "request_to_wire",
    "response_from_wire",
    "tool_use_id",
    "usage_from_wire",
]

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "guardrail_intervened": "content_filter",
    "content_filtered": "content_filter",
    # malformed_model_output / malformed_tool_use: no usable answer part; "stop".
}
_IMAGE_FORMATS = {"png": "png", "jpeg": "jpeg", "jpg": "jpeg", "gif": "gif", "webp": "webp"}
_BAD_ID_CHARS = re.compile(r"[^a-zA-Z0-9_.:-]")
# A conversation must open with a user turn; this stands in when the client's opens
# with the assistant (PROVIDERS.md §9.2).
_OPENER = "(conversation start)"
_AUTH_TYPES = frozenset(
    {
        "AccessDeniedException",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "IncompleteSignatureException",
        "ExpiredTokenException",
        "MissingAuthenticationTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)
_CONTEXT_WORDING = (
    "too long",
    "too many input tokens",
    "context window",
    "context length",
    "maximum context",
    "exceeds the maximum",
)


# -- requests ---------------------------------------------------------------------------


def request_to_wire(req: GatewayRequest) -> dict[str, Any]:
    """GatewayRequest -> a Converse body (the model id travels in the URL).

    Raises:
        UnsupportedCapability: an ``http(s)`` image URL (Bedrock wants the bytes).
        InvalidRequest: an image format Bedrock does not take, or ``n`` > 1.
    """
    n = req.extra.get("n")
    if n is not None and n != 1:
        raise InvalidRequest("Bedrock returns one choice per request; 'n' must be 1", param="n")
    system = [{"text": m.text()} for m in req.messages if m.role in ("system", "developer")]
    body: dict[str, Any] = {"messages": _turns(req.messages)}
    if system := [s for s in system if s["text"]]:
        body["system"] = system
    inference: dict[str, Any] = {}
    if req.max_tokens is not None:
        inference["maxTokens"] = req.max_tokens
    if req.temperature is not None:  # OpenAI allows 0-2; Converse rejects above 1: clamp
        inference["temperature"] = min(max(req.temperature, 0.0), 1.0)
    if req.top_p is not None:
        inference["topP"] = min(max(req.top_p, 0.0), 1.0)
    if stop := [s for s in req.stop if s]:
        inference["stopSequences"] = stop
    if inference:
        body["inferenceConfig"] = inference
    if tool_config := _tool_config(req, body["messages"]):
        body["toolConfig"] = tool_config
    # ``response_format`` was made a forced tool by the adapter (``._structured``):
    # Converse's own ``outputConfig.textFormat`` is for a few recent models only.
    return body


def _turns(messages: tuple[Message, ...]) -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = []
    for m in messages:
        if m.role in ("system", "developer"):
            continue
        role = "assistant" if m.role == "assistant" else "user"
        blocks = _blocks(m)
        if not blocks:
            continue  # Converse rejects empty turns; an empty one says nothing anyway
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        if turn["role"] == "user":  # results must come first, right after the calls
            turn["content"].sort(key=lambda b: "toolResult" not in b)
    if not turns or turns[0]["role"] != "user":
        turns.insert(0, {"role": "user", "content": [{"text": _OPENER}]})
    return turns


def _blocks(m: Message) -> list[dict[str, Any]]:
    if m.role == "tool":
        return [_tool_result(m)]
    blocks: list[dict[str, Any]] = []
    if isinstance(m.content, str):
        if m.content:
            blocks.append({"text": m.content})
    elif m.content is not None:
        for part in m.content:
            if isinstance(part, TextPart):
                if part.text:  # empty text blocks are rejected
                    blocks.append({"text": part.text})
            elif isinstance(part, WirePart):
                refuse_part(part, "bedrock")
            else:
                blocks.append({"image": _image(part)})
    for call in m.tool_calls if m.role == "assistant" else ():
        use = {"toolUseId": tool_use_id(call.id), "name": call.name, "input": _input(call)}
        blocks.append({"toolUse": use})
    return blocks


def _input(call: ToolCall) -> Any:
    """A call's JSON-text arguments as the object Converse wants."""
    if not call.arguments.strip():
        return {}
    try:
        value = orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        value = None
    # Models sometimes produce invalid JSON; the history must still be sendable.
    return value if isinstance(value, dict) else {"_raw": call.arguments}


def _tool_result(m: Message) -> dict[str, Any]:
    text = m.text()
    content: dict[str, Any]
    try:
        value = orjson.loads(text) if text else {}
    except orjson.JSONDecodeError:
        value = None
    content = {"json": value} if isinstance(value, dict) else {"text": text}
    result = {"toolUseId": tool_use_id(m.tool_call_id or ""), "content": [content]}
    return {"toolResult": {**result, "status": "success"}}


def tool_use_id(call_id: str) -> str:
    """A client's tool-call id in Bedrock's alphabet (``[a-zA-Z0-9_.:-]{1,64}``).

    The same id always maps the same way, so a call and its result still match.
    """
    return _BAD_ID_CHARS.sub("_", call_id)[:64] or "call_0"


def _image(part: ImagePart) -> dict[str, Any]:
    url = part.url
    if not url.startswith("data:"):
        raise UnsupportedCapability(
            "Bedrock takes images as bytes, not URLs; send a data: URL (the daemon "
            "fetches image URLs itself only when server.fetch_images = true)",
            param="messages",
        )
    meta, sep, data = url[5:].partition(",")
    media, *params = meta.split(";")
    subtype = media.lower().removeprefix("image/") if media.lower().startswith("image/") else ""
    fmt = _IMAGE_FORMATS.get(subtype)
    if not sep or fmt is None:
        raise InvalidRequest(
            "Bedrock takes png, jpeg, gif or webp images as data:image/...;base64 URLs",
            param="messages",
        )
    if "base64" in params:
        encoded = "".join(data.split())
        try:
            base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidRequest(
                "an image data: URL holds invalid base64", param="messages"
            ) from exc
    else:
        encoded = base64.b64encode(unquote_to_bytes(data)).decode()
    return {"format": fmt, "source": {"bytes": encoded}}


def _tool_config(req: GatewayRequest, turns: list[dict[str, Any]]) -> dict[str, Any] | None:
    tools = [_tool_spec(t.name, t.description, t.parameters) for t in req.tools]
    used = {b["toolUse"]["name"] for turn in turns for b in turn["content"] if "toolUse" in b}
    has_blocks = bool(used) or any("toolResult" in b for t in turns for b in t["content"])
    choice = req.tool_choice
    if isinstance(choice, dict) and choice.get("type") == "none":
        choice = "none"
    if choice == "none" and not has_blocks:
        return None  # no equivalent to "none": sending no tools comes closest
    if not tools and has_blocks:
        # Converse requires toolConfig whenever the history holds tool blocks.
        tools = [_tool_spec(name, None, None) for name in sorted(used)]
    if not tools:
        return None
    config: dict[str, Any] = {"tools": tools}
    if choice == "auto":
        config["toolChoice"] = {"auto": {}}
    elif choice == "required":
        config["toolChoice"] = {"any": {}}
    elif isinstance(choice, dict):
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else choice.get("name")
        if isinstance(name, str):
            config["toolChoice"] = {"tool": {"name": name}}
    return config


def _tool_spec(name: str, description: str | None, parameters: Any) -> dict[str, Any]:
    spec: dict[str, Any] = {"name": name}
    if description:
        spec["description"] = description
    schema = dict(parameters) if parameters else {"type": "object", "properties": {}}
    spec["inputSchema"] = {"json": schema}
    return {"toolSpec": spec}


# -- responses --------------------------------------------------------------------------


def finish_reason(stop_reason: Any, has_calls: bool = False) -> str:
    """A Converse ``stopReason`` -> OpenAI's ``finish_reason``."""
    if has_calls and stop_reason in (None, "end_turn", "tool_use"):
        return "tool_calls"
    return _FINISH.get(str(stop_reason), "stop")


def usage_from_wire(raw: Any) -> Usage | None:
    """Converse ``usage``; prompt tokens count cache reads and writes, as OpenAI's do."""
    if not isinstance(raw, dict):
        return None
    prompt = sum(
        int(raw.get(k) or 0)
        for k in ("inputTokens", "cacheReadInputTokens", "cacheWriteInputTokens")
    )
    return Usage(prompt_tokens=prompt, completion_tokens=int(raw.get("outputTokens") or 0))


def response_from_wire(raw: Any, *, id: str, model: str) -> GatewayResponse:
    """A parsed Converse response -> GatewayResponse.

    Raises:
        SerializationError: the body is not a Converse response.
    """
    try:
        blocks = raw["output"]["message"]["content"]
        texts: list[str] = []
        calls: list[ToolCall] = []
        for block in blocks:
            if "text" in block:
                texts.append(str(block["text"]))
            elif "toolUse" in block:
                use = block["toolUse"]
                arguments = orjson.dumps(use.get("input") or {}).decode()
                calls.append(ToolCall(str(use["toolUseId"]), str(use["name"]), arguments))
            # reasoningContent, citations and the like have no OpenAI place: left out.
        message = Message(
            role="assistant",
            content="".join(texts) if texts or not calls else None,
            tool_calls=tuple(calls),
        )
        choice = Choice(0, message, finish_reason(raw.get("stopReason"), bool(calls)))
        usage = usage_from_wire(raw.get("usage"))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SerializationError(f"not a Bedrock Converse response: {exc!r}") from exc
    return GatewayResponse(id=id, model=model, created=0, choices=(choice,), usage=usage)


# -- errors -----------------------------------------------------------------------------


def error_from_wire(status: int, error_type: str, message: str, headers: Headers) -> GatewayError:
    """A Bedrock (or AWS front-end) error -> the taxonomy, by its type name first.

    ``error_type`` is the short name from ``x-amzn-ErrorType`` or the body's ``__type``.
    """
    lowered = message.lower()
    wait = retry_after(headers)
    cls: type[GatewayError] | None = None
    if error_type in (
        "ThrottlingException",
        "ServiceQuotaExceededException",
        "TooManyRequestsException",
    ):
        cls = RateLimitExceeded
    elif error_type in _AUTH_TYPES:
        cls = AuthenticationFailed
    elif error_type == "ResourceNotFoundException":
        cls = NotFound
    elif error_type in ("ModelNotReadyException", "ServiceUnavailableException"):
        cls = Overloaded
    elif error_type == "ModelTimeoutException":
        cls = Timeout
    elif error_type in ("InternalServerException", "ModelErrorException"):
        cls = ProviderInternalError
    elif error_type == "ValidationException" or status == 400:
        if any(w in lowered for w in _CONTEXT_WORDING):
            cls = ContextLengthExceeded
        elif "content filter" in lowered or "guardrail" in lowered or "blocked" in lowered:
            cls = ContentFiltered
        else:
            cls = InvalidRequest
    if cls is None:
        return error_for_status(status, message, code=error_type or None, headers=headers)
    return cls(message, upstream_status=status, retry_after=wait)
