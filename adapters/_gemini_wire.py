"""The Gemini API wire format (``generateContent``) <-> the unified types.

Pure functions over parsed JSON. The request side follows PROVIDERS.md §3.2 and the
pitfalls of §9: system and developer messages become ``systemInstruction``; roles are
``user``/``model``, adjacent same-role turns merged (Gemini insists on alternation) and a
user turn put first when the history starts with the assistant; tool results become
``functionResponse`` parts of a user turn, named after the call they answer (Gemini
matches results by name and order, not by id); images are inline bytes only.

The response side maps ``finishReason`` per §9.11 and ``usageMetadata`` per §9.12, and
gives each ``functionCall`` an id when Gemini did not (``call_<n>``, counted per answer).
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_to_bytes

import orjson

from ._errors import ContentFiltered, InvalidRequest, SerializationError, UnsupportedCapability
from ._passthrough import refuse_part
from ._types import (
    Choice,
    GatewayRequest,
    GatewayResponse,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCall,
    Usage,
    WirePart,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "answer_parts",
    "created_from_wire",
    "finish_reason",
    "prompt_blocked",
    "request_to_wire",
    "response_from_wire",
    "usage_from_wire",
]

#: Sent as the first turn when a history starts with the assistant: Gemini refuses a
#: ``model`` turn first ("multiturn requests alternate between user and model").
LEADING_USER_TEXT = "Continue."

_FILTERED = frozenset(
    {
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
        "IMAGE_SAFETY",
        "IMAGE_PROHIBITED_CONTENT",
        "IMAGE_RECITATION",
    }
)
_CHOICE_MODES = {"auto": "AUTO", "required": "ANY", "none": "NONE"}


# -- requests ---------------------------------------------------------------------------


def request_to_wire(req: GatewayRequest, model: str) -> dict[str, Any]:
    """GatewayRequest -> a ``generateContent`` body (the model goes in the URL).

    Raises:
        InvalidRequest: a message Gemini cannot take (a tool result answering no call,
            arguments that are not a JSON object, a malformed ``data:`` URL).
        UnsupportedCapability: an ``http(s)`` image URL (Gemini takes bytes only).
    """
    system: list[dict[str, Any]] = []
    contents: list[dict[str, Any]] = []
    names: dict[str, str] = {}  # tool-call id -> function name, latest call wins
    for i, m in enumerate(req.messages):
        if m.role in ("system", "developer"):
            # Gemini has one system instruction; a mid-conversation one is hoisted.
            system.extend({"text": t} for t in _texts(m))
            continue
        if m.role == "assistant":
            for call in m.tool_calls:
                names[call.id] = call.name
            _append(contents, "model", _assistant_parts(m, i))
        elif m.role == "tool":
            _append(contents, "user", [_function_response(m, i, names)])
        else:
            _append(contents, "user", _user_parts(m, i))
    if not contents:
        raise InvalidRequest(
            "Gemini needs at least one user or assistant message", param="messages"
        )
    if contents[0]["role"] == "model":
        contents.insert(0, {"role": "user", "parts": [{"text": LEADING_USER_TEXT}]})
    body: dict[str, Any] = {"contents": contents}
    if system:
        body["systemInstruction"] = {"parts": system}
    if req.tools:
        body["tools"] = [{"functionDeclarations": [_declaration(t) for t in req.tools]}]
        if req.tool_choice is not None:
            body["toolConfig"] = {"functionCallingConfig": _tool_choice(req.tool_choice)}
    config = _generation_config(req)
    if config:
        body["generationConfig"] = config
    return body


def _append(contents: list[dict[str, Any]], role: str, parts: list[dict[str, Any]]) -> None:
    if not parts:  # e.g. an assistant message with neither text nor calls
        return
    if contents and contents[-1]["role"] == role:
        contents[-1]["parts"].extend(parts)
    else:
        contents.append({"role": role, "parts": parts})


def _texts(m: Message) -> list[str]:
    if m.content is None:
        return []
    if isinstance(m.content, str):
        return [m.content] if m.content else []
    return [p.text for p in m.content if isinstance(p, TextPart) and p.text]


def _user_parts(m: Message, index: int) -> list[dict[str, Any]]:
    if m.content is None or isinstance(m.content, str):
        return [{"text": m.content}] if m.content else []
    parts: list[dict[str, Any]] = []
    for p in m.content:
        if isinstance(p, TextPart):
            if p.text:  # Gemini refuses empty text parts
                parts.append({"text": p.text})
        elif isinstance(p, WirePart):
            refuse_part(p, "gemini")
        else:
            parts.append(_image(p, index))
    return parts


def _image(p: ImagePart, index: int) -> dict[str, Any]:
    where = f"messages[{index}]"
    if p.url.startswith(("http://", "https://")):
        # fileData takes only Files-API or GCS URIs, never an arbitrary web URL.
        raise UnsupportedCapability(
            "the Gemini API takes images as bytes, not http(s) URLs; send a data: URL, "
            "or let the daemon fetch image URLs by setting server.fetch_images = true",
            param=where,
        )
    if not p.url.startswith("data:"):
        raise InvalidRequest(
            f"'{where}' has an image URL that is neither data: nor http(s)", param=where
        )
    header, sep, payload = p.url[5:].partition(",")
    mime, _, params = header.partition(";")
    if not sep or not mime:
        raise InvalidRequest(f"'{where}' has a malformed data: URL", param=where)
    if "base64" in params.split(";"):
        data = "".join(payload.split())  # line breaks are allowed inside data: URLs
        try:
            base64.b64decode(data, validate=True)
        except binascii.Error:
            raise InvalidRequest(
                f"'{where}' has invalid base64 in its data: URL", param=where
            ) from None
    else:
        data = base64.b64encode(unquote_to_bytes(payload)).decode()
    return {"inlineData": {"mimeType": mime, "data": data}}


def _assistant_parts(m: Message, index: int) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = [{"text": t} for t in _texts(m)]
    for call in m.tool_calls:
        parts.append({"functionCall": {"name": call.name, "args": _arguments(call, index)}})
    return parts


def _arguments(call: ToolCall, index: int) -> dict[str, Any]:
    if not call.arguments.strip():
        return {}
    try:
        args = orjson.loads(call.arguments)
    except orjson.JSONDecodeError:
        args = None
    if not isinstance(args, dict):
        where = f"messages[{index}].tool_calls"
        raise InvalidRequest(
            f"'{where}': the arguments of {call.name!r} must be a JSON object for Gemini",
            param=where,
        )
    return args


def _function_response(m: Message, index: int, names: Mapping[str, str]) -> dict[str, Any]:
    name = names.get(m.tool_call_id or "") or m.name
    if not name:
        where = f"messages[{index}]"
        raise InvalidRequest(
            f"'{where}' answers tool call {m.tool_call_id!r}, which no earlier assistant "
            "message made; Gemini needs the function's name",
            param=where,
        )
    # functionResponse.response must be an object; "output" is Gemini's convention.
    return {"functionResponse": {"name": name, "response": {"output": m.text()}}}


def _declaration(t: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name}
    if t.description is not None:
        out["description"] = t.description
    if t.parameters:
        # Plain JSON Schema; ``parameters`` would want Gemini's OpenAPI subset.
        out["parametersJsonSchema"] = t.parameters
    return out


def _tool_choice(choice: str | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str) and choice in _CHOICE_MODES:
        return {"mode": _CHOICE_MODES[choice]}
    fn = choice.get("function") if not isinstance(choice, str) else None
    if isinstance(fn, dict) and isinstance(fn.get("name"), str):
        return {"mode": "ANY", "allowedFunctionNames": [fn["name"]]}
    raise InvalidRequest(
        "'tool_choice' must be auto, required, none or a function", param="tool_choice"
    )


def _generation_config(req: GatewayRequest) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if req.temperature is not None:
        config["temperature"] = req.temperature
    if req.top_p is not None:
        config["topP"] = req.top_p
    if req.max_tokens is not None:
        config["maxOutputTokens"] = req.max_tokens
    if req.stop:
        config["stopSequences"] = list(req.stop)
    extra = req.extra
    for ours, theirs in (
        ("n", "candidateCount"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("top_k", "topK"),
    ):
        if extra.get(ours) is not None:
            config[theirs] = extra[ours]
    fmt = extra.get("response_format")
    if isinstance(fmt, dict):
        if fmt.get("type") == "json_object":
            config["responseMimeType"] = "application/json"
        elif fmt.get("type") == "json_schema":
            config["responseMimeType"] = "application/json"
            schema = (fmt.get("json_schema") or {}).get("schema")
            if schema is not None:
                config["responseJsonSchema"] = schema
    # Everything else OpenAI-only (user, logit_bias, ...) is refused before translation
    # (``adapters._fields``).
    return config


# -- responses --------------------------------------------------------------------------


def response_from_wire(raw: Any) -> GatewayResponse:
    """A parsed ``GenerateContentResponse`` -> GatewayResponse.

    Raises:
        ContentFiltered: Gemini blocked the prompt (``promptFeedback.blockReason``).
        SerializationError: the body is not a GenerateContentResponse.
    """
    if not isinstance(raw, dict):
        raise SerializationError("not a GenerateContentResponse: not a JSON object")
    blocked = prompt_blocked(raw)
    if blocked is not None:
        raise blocked
    try:
        candidates = raw["candidates"]
        if not isinstance(candidates, list) or not candidates:
            raise ValueError("no candidates")
        counter = [0]
        choices = []
        for i, c in enumerate(candidates):
            text, calls = answer_parts((c.get("content") or {}).get("parts") or (), counter)
            choices.append(
                Choice(
                    index=int(c.get("index", i)),
                    message=Message("assistant", text, tool_calls=tuple(calls)),
                    # A whole answer is finished even if Gemini left the reason out.
                    finish_reason=finish_reason(c.get("finishReason") or "STOP", bool(calls)),
                )
            )
        return GatewayResponse(
            id=str(raw.get("responseId") or ""),
            model=str(raw.get("modelVersion") or ""),
            created=created_from_wire(raw),
            choices=tuple(choices),
            usage=usage_from_wire(raw.get("usageMetadata")),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise SerializationError(f"not a GenerateContentResponse: {exc!r}") from exc


def prompt_blocked(raw: Mapping[str, Any]) -> ContentFiltered | None:
    """The error for a response whose prompt Gemini refused, else None."""
    feedback = raw.get("promptFeedback")
    if raw.get("candidates") or not isinstance(feedback, dict):
        return None
    reason = feedback.get("blockReason")
    if not reason:
        return None
    message = f"Gemini blocked the prompt ({reason})"
    if feedback.get("blockReasonMessage"):
        message += f": {feedback['blockReasonMessage']}"
    return ContentFiltered(message, upstream_status=200)


def answer_parts(parts: Any, counter: list[int]) -> tuple[str | None, list[ToolCall]]:
    """Text (None if there is none) and tool calls of a candidate's ``parts``.

    ``counter`` numbers the ids synthesised for calls without one, across one answer.
    Thought summaries (``thought: true``) are the model's reasoning, not its answer.
    """
    texts: list[str] = []
    calls: list[ToolCall] = []
    for part in parts:
        if part.get("thought"):
            continue
        if isinstance(part.get("text"), str):
            texts.append(part["text"])
        fc = part.get("functionCall")
        if isinstance(fc, dict):
            call_id = fc.get("id") or f"call_{counter[0]}"
            counter[0] += 1
            args = orjson.dumps(fc.get("args") or {}).decode()
            calls.append(ToolCall(id=str(call_id), name=str(fc["name"]), arguments=args))
    return ("".join(texts) if texts else None), calls


def finish_reason(raw: Any, has_calls: bool) -> str | None:
    """Gemini's ``finishReason`` -> OpenAI's; None while a candidate is unfinished."""
    if not raw:
        return None
    if raw == "MAX_TOKENS":
        return "length"
    if raw in _FILTERED:
        return "content_filter"
    # STOP, and the rest (OTHER, LANGUAGE, MALFORMED_FUNCTION_CALL, ...): no better fit.
    return "tool_calls" if has_calls else "stop"


def usage_from_wire(raw: Any) -> Usage | None:
    if not isinstance(raw, dict):
        return None
    prompt = int(raw.get("promptTokenCount") or 0) + int(raw.get("toolUsePromptTokenCount") or 0)
    completion = int(raw.get("candidatesTokenCount") or 0) + int(raw.get("thoughtsTokenCount") or 0)
    return Usage(prompt_tokens=prompt, completion_tokens=completion)


def created_from_wire(raw: Mapping[str, Any]) -> int:
    """``createTime`` (RFC 3339, sent on some surfaces) in Unix seconds, else 0."""
    value = raw.get("createTime")
    if not isinstance(value, str):
        return 0
    try:
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp())
    except ValueError:
        return 0
