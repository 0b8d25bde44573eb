"""Any provider's answer -> an OpenAI Responses ``response`` object (the ingress's way out).

A response repeats its request's settings (instructions, tools, text format, metadata:
``GatewayRequest.echo``), lists its output as items (a ``message`` holding the text,
then a ``function_call`` item per tool call) and says how it ended: ``completed``, or
``incomplete`` with the reason (the token limit, a content filter). Nothing is stored:
``store`` is always false. Identifiers and the creation time come from the caller, so
these stay pure functions. The stream of events is :mod:`._responses_stream`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._errors import RateLimitExceeded

if TYPE_CHECKING:
    from ._errors import GatewayError
    from ._types import GatewayRequest, GatewayResponse, Usage

__all__ = [
    "call_item",
    "error_code",
    "item_id",
    "output_text",
    "responses_response_to_wire",
    "skeleton",
    "status_of",
    "usage_to_wire",
]

#: finish_reason -> why a response is incomplete (others complete it).
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter"}
#: What a request repeats from its echo when the client did not say (OpenAI's defaults).
_DEFAULTS: dict[str, Any] = {
    "instructions": None,
    "max_output_tokens": None,
    "parallel_tool_calls": True,
    "reasoning": {"effort": None, "summary": None},
    "temperature": None,
    "text": {"format": {"type": "text"}},
    "tool_choice": "auto",
    "tools": [],
    "top_p": None,
    "metadata": {},
}


def responses_response_to_wire(
    resp: GatewayResponse, req: GatewayRequest, response_id: str, created_at: int
) -> dict[str, Any]:
    """GatewayResponse (from any provider) -> a Responses API ``response`` object.

    Args:
        resp: The answer.
        req: Its request, whose ``echo`` the response repeats.
        response_id: ``resp_...``, unique; the items' ids are made from it.
        created_at: Unix seconds.
    """
    choice = resp.choices[0] if resp.choices else None
    finish = choice.finish_reason if choice is not None else None
    status, incomplete = status_of(finish)
    output: list[dict[str, Any]] = []
    if choice is not None:
        text = choice.message.text()
        content = [output_text(text)] if text else []
        if choice.message.refusal:
            content.append({"type": "refusal", "refusal": choice.message.refusal})
        if content:
            output.append(
                {
                    "type": "message",
                    "id": item_id("msg", response_id, 0),
                    "status": status,
                    "role": "assistant",
                    "content": content,
                }
            )
        output.extend(
            call_item(item_id("fc", response_id, len(output)), c.id, c.name, c.arguments)
            for c in choice.message.tool_calls
        )
    body = skeleton(req, response_id, created_at, resp.model or req.model)
    body.update(
        status=status,
        incomplete_details=incomplete,
        output=output,
        usage=usage_to_wire(resp.usage),
    )
    return body


def skeleton(req: GatewayRequest, response_id: str, created_at: int, model: str) -> dict[str, Any]:
    """A response in progress: its settings and no output yet."""
    echo = {**_DEFAULTS, **req.echo}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": "in_progress",
        "background": False,
        "error": None,
        "incomplete_details": None,
        "model": model,
        "output": [],
        "previous_response_id": None,
        "store": False,  # stateless: nothing is kept, whatever the request said
        "truncation": "disabled",
        "usage": None,
        **echo,
    }


def status_of(finish_reason: str | None) -> tuple[str, dict[str, str] | None]:
    """A finish reason -> the response's status and its ``incomplete_details``."""
    reason = _INCOMPLETE.get(finish_reason or "")
    if reason is None:
        return "completed", None
    return "incomplete", {"reason": reason}


def item_id(prefix: str, response_id: str, index: int) -> str:
    """An output item's id: unique within and across responses (``msg_...``, ``fc_...``)."""
    return f"{prefix}_{response_id.removeprefix('resp_')}_{index}"


def output_text(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def call_item(
    id_: str, call_id: str, name: str, arguments: str, status: str = "completed"
) -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": id_,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def usage_to_wire(usage: Usage | None) -> dict[str, Any] | None:
    """Our usage -> the Responses shape, with the cache and reasoning details (0 where
    the upstream reported none)."""
    if usage is None:
        return None
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {
            "cached_tokens": usage.cache_read_tokens,
            "cache_write_tokens": usage.cache_write_tokens,
        },
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
        "total_tokens": usage.total_tokens,
    }


def error_code(err: GatewayError) -> str:
    """A failure's ``response.error.code``: one of the codes the Responses API defines."""
    return "rate_limit_exceeded" if isinstance(err, RateLimitExceeded) else "server_error"
