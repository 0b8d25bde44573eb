"""A Responses request's ``input`` items -> chat messages.

Message items keep their role; ``function_call`` items join the assistant message
before them (or start one), so a turn's text and its calls are one chat message, as
chat targets want them; ``function_call_output`` items become tool messages.
``reasoning`` items a client sends back are left out: they are a model's hidden state,
which no chat target takes. Items that point at state kept on the server
(``item_reference``) and parts this gateway cannot carry (files, audio, an image by
file id) are refused, naming where they are.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from ._errors import InvalidRequest, UnsupportedParameter
from ._types import ContentPart, ImagePart, Message, TextPart, ToolCall

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._types import Role

__all__ = ["input_from_wire"]

#: Item types a client may send back that need state on the server.
_STATEFUL_ITEMS = frozenset({"item_reference", "compaction"})
_ROLES = frozenset({"user", "assistant", "system", "developer"})


def input_from_wire(raw: Any) -> list[Message]:
    """A Responses request's ``input`` (a string, or a list of items) -> chat messages.

    Raises:
        InvalidRequest: naming the offending item (``UnsupportedParameter`` for an item
            or part this gateway does not serve).
    """
    if isinstance(raw, str):
        return [Message("user", raw)]
    if not isinstance(raw, list) or not raw:
        raise InvalidRequest("'input' must be a string or a non-empty array", param="input")
    messages: list[Message] = []
    for i, item in enumerate(raw):
        where = f"input[{i}]"
        if not isinstance(item, dict):
            raise InvalidRequest(f"'{where}' must be an object", param=where)
        kind = item.get("type", "message")
        if kind == "message":
            messages.append(_message_from_wire(item, where))
        elif kind == "function_call":
            call = _call_from_wire(item, where)
            last = messages[-1] if messages else None
            if last is not None and last.role == "assistant":
                messages[-1] = Message(
                    "assistant", last.content, tool_calls=(*last.tool_calls, call)
                )
            else:
                messages.append(Message("assistant", None, tool_calls=(call,)))
        elif kind == "function_call_output":
            messages.append(_output_from_wire(item, where))
        elif kind == "reasoning":
            continue  # a model's hidden state: no chat target takes it back
        elif isinstance(kind, str) and kind in _STATEFUL_ITEMS:
            raise UnsupportedParameter(
                f"'{where}': {kind!r} items need state on the server, which this gateway "
                "does not keep",
                param=f"{where}.type",
            )
        else:
            raise UnsupportedParameter(
                f"'{where}': input items of type {kind!r} are not supported "
                "(message, function_call, function_call_output and reasoning are)",
                param=f"{where}.type",
            )
    return messages


def _message_from_wire(item: Mapping[str, Any], where: str) -> Message:
    raw_role = item.get("role")
    if not isinstance(raw_role, str) or raw_role not in _ROLES:
        raise InvalidRequest(
            f"'{where}.role' must be one of {', '.join(sorted(_ROLES))}", param=f"{where}.role"
        )
    role = cast("Role", raw_role)
    content = item.get("content")
    if isinstance(content, str):
        return Message(role, content)
    if not isinstance(content, list):
        raise InvalidRequest(
            f"'{where}.content' must be a string or an array", param=f"{where}.content"
        )
    parts = [_part_from_wire(p, role, f"{where}.content[{j}]") for j, p in enumerate(content)]
    if role == "assistant":
        return Message("assistant", "".join(p.text for p in parts if isinstance(p, TextPart)))
    return Message(role, tuple(parts))


def _part_from_wire(raw: Any, role: str, where: str) -> ContentPart:
    kind = raw.get("type") if isinstance(raw, dict) else None
    if role == "assistant":
        if kind == "output_text" and isinstance(raw.get("text"), str):
            return TextPart(raw["text"])
        if kind == "refusal" and isinstance(raw.get("refusal"), str):
            return TextPart(raw["refusal"])
        raise InvalidRequest(
            f"'{where}' must be an output_text or refusal part (assistant content)", param=where
        )
    if kind == "input_text" and isinstance(raw.get("text"), str):
        return TextPart(raw["text"])
    if kind == "input_image":
        url = raw.get("image_url")
        if isinstance(url, str):
            detail = raw.get("detail")
            return ImagePart(url, detail if isinstance(detail, str) else None)
        if raw.get("file_id") is not None:
            raise UnsupportedParameter(
                f"'{where}.file_id' is not supported: this gateway stores no files "
                "(send the image as a URL or a data: URL in 'image_url')",
                param=f"{where}.file_id",
            )
        raise InvalidRequest(f"'{where}.image_url' must be a URL", param=where)
    if kind in ("input_file", "input_audio"):
        raise UnsupportedParameter(
            f"'{where}': {kind} parts are not supported (input_text and input_image are)",
            param=f"{where}.type",
        )
    raise InvalidRequest(f"'{where}' must be an input_text or input_image part", param=where)


def _call_from_wire(item: Mapping[str, Any], where: str) -> ToolCall:
    for name in ("call_id", "name", "arguments"):
        if not isinstance(item.get(name), str):
            raise InvalidRequest(f"'{where}.{name}' must be a string", param=f"{where}.{name}")
    return ToolCall(id=item["call_id"], name=item["name"], arguments=item["arguments"])


def _output_from_wire(item: Mapping[str, Any], where: str) -> Message:
    call_id = item.get("call_id")
    if not isinstance(call_id, str):
        raise InvalidRequest(f"'{where}.call_id' must be a string", param=f"{where}.call_id")
    output = item.get("output")
    if isinstance(output, str):
        return Message("tool", output, tool_call_id=call_id)
    if not isinstance(output, list):
        raise InvalidRequest(
            f"'{where}.output' must be a string or an array", param=f"{where}.output"
        )
    texts: list[str] = []
    for j, part in enumerate(output):
        at = f"{where}.output[{j}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "input_text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        else:  # chat tool messages take text only
            raise UnsupportedParameter(
                f"'{at}': a function call's output may hold only input_text parts here",
                param=at,
            )
    return Message("tool", "\n".join(texts), tool_call_id=call_id)
