"""Our request -> an Anthropic Messages body (the ``anthropic`` adapter's way out).

A client's Messages request in is :mod:`._messages_request`; answers, streams and errors
both ways are :mod:`._anthropic_response`. Pure functions over parsed JSON values.
Decisions where the formats do not line up:

* System and developer messages are all hoisted, in order, into the top-level
  ``system`` (joined by a blank line): the classic API has no system turn mid-conversation.
* OpenAI allows temperature up to 2, Anthropic up to 1: values are clamped, not rescaled.
* Tool-call arguments that are not a JSON object (models sometimes produce broken JSON)
  travel as ``{"_raw": "<text>"}``, so the conversation can go on.
* ``reasoning_effort`` is an extended-thinking budget (:data:`THINKING_BUDGETS`).
* A conversation whose first turn is the assistant's gets a minimal ``"."`` user turn
  first; empty text blocks and empty turns are dropped (Anthropic rejects them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson

from ._errors import (
    InvalidRequest,
    UnsupportedParameter,
)
from ._passthrough import refuse_part
from ._types import (
    ContentPart,
    GatewayRequest,
    Message,
    TextPart,
    Tool,
    WirePart,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = ["MEDIA_TYPES", "THINKING_BUDGETS", "request_to_wire", "tool_input"]

#: The image types Anthropic takes.
MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


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
    top_k = req.extra.get("top_k")
    if type(top_k) is int:
        body["top_k"] = top_k
    _thinking(body, req.extra.get("reasoning_effort"))
    # Everything else in ``extra`` (seed, logprobs, ...) has no Anthropic equivalent: the
    # router refuses it before translating (``adapters._fields``); the adapter turns
    # ``response_format`` into a forced tool first (``adapters._structured``).
    return body


#: OpenAI's ``reasoning_effort`` as an Anthropic extended-thinking budget: LiteLLM's
#: documented mapping (low 1024, medium 2048, high 4096), ``minimal`` at Anthropic's
#: least budget (1024) and ``none`` no thinking at all.
THINKING_BUDGETS: Mapping[str, int] = {"minimal": 1024, "low": 1024, "medium": 2048, "high": 4096}


def _thinking(body: dict[str, Any], effort: Any) -> None:
    """``reasoning_effort`` as ``thinking``. Anthropic wants ``max_tokens`` above the
    budget (the budget is part of it), where OpenAI's limit counts reasoning too: a
    limit at or under the budget gets the budget added, so that the answer keeps the
    room the client gave it.

    Raises:
        UnsupportedParameter: an effort that has no budget here.
    """
    if effort is None or effort == "none":
        return
    budget = THINKING_BUDGETS.get(effort) if isinstance(effort, str) else None
    if budget is None:
        raise UnsupportedParameter(
            f"anthropic has no thinking budget for reasoning_effort {effort!r}",
            param="reasoning_effort",
        )
    body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if body["max_tokens"] <= budget:
        body["max_tokens"] += budget


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
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.name,
                "input": tool_input(call.arguments),
            }
        )
    return blocks


def tool_input(arguments: str) -> dict[str, Any]:
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
    if isinstance(p, WirePart):
        refuse_part(p, "anthropic")
    url = p.url
    if url.startswith(("http://", "https://")):
        return {"type": "image", "source": {"type": "url", "url": url}}
    if url.startswith("data:"):
        header, sep, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if sep and encoding == "base64" and media_type in MEDIA_TYPES:
            return {
                "type": "image",
                "source": {"type": "base64", "media_type": media_type, "data": data},
            }
        raise InvalidRequest(
            f"'{where}': anthropic takes base64 data URLs of "
            + ", ".join(sorted(MEDIA_TYPES))
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
