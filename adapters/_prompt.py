"""A conversation as one prompt string, for APIs that take text, not messages.

TGI's native ``/generate`` and Replicate's language models take a ``prompt``: the
chat template is the caller's to apply (TGI) or the model's own, around one user turn
(Replicate's ``prompt`` and ``system_prompt``). The templates here are the common
published ones, chosen by the operator (``template``):

* ``chatml``: ``<|im_start|>{role}\\n{text}<|im_end|>\\n`` per turn (Qwen, many others);
* ``llama3``: ``<|start_header_id|>{role}<|end_header_id|>\\n\\n{text}<|eot_id|>``
  after ``<|begin_of_text|>`` (Meta Llama 3);
* ``plain``: ``System: ...``, ``User: ...``, ``Assistant: ...`` paragraphs.

Each ends by opening the assistant's turn; a trailing assistant message (a prefill) is
left open instead, so the model continues it. Only text travels: images and tool calls
have no place in a prompt and are refused (the kinds say so in their capabilities, so
routing skips them for such requests).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from ._errors import UnsupportedCapability

if TYPE_CHECKING:
    from ._types import Message

__all__ = ["TEMPLATES", "Template", "render", "split_system", "text_of"]

Template = Literal["chatml", "llama3", "plain"]
TEMPLATES: tuple[Template, ...] = ("chatml", "llama3", "plain")

_PLAIN_ROLES = {"system": "System", "user": "User", "assistant": "Assistant", "tool": "Tool"}


def text_of(message: Message, kind: str) -> str:
    """The text of ``message``. Raises UnsupportedCapability for images or tool calls."""
    if message.has_images:
        raise UnsupportedCapability(f"{kind} takes text only: no images")
    if message.tool_calls or message.role == "tool":
        raise UnsupportedCapability(f"{kind} takes text only: no tool calls")
    return message.text()


def split_system(messages: tuple[Message, ...], kind: str) -> tuple[str, list[Message]]:
    """The system (and developer) messages' text joined, and the other messages."""
    system = [text_of(m, kind) for m in messages if m.role in ("system", "developer")]
    return "\n\n".join(system), [m for m in messages if m.role not in ("system", "developer")]


def _role(message: Message) -> str:
    return "system" if message.role == "developer" else message.role


def render(messages: tuple[Message, ...], template: Template, kind: str) -> str:
    """The conversation in ``template``, ending where the assistant speaks next.

    Raises:
        UnsupportedCapability: a message holds an image or a tool call.
    """
    turns = [(_role(m), text_of(m, kind)) for m in messages]
    prefill = turns.pop()[1] if turns and turns[-1][0] == "assistant" else None
    if template == "chatml":
        out = "".join(f"<|im_start|>{role}\n{text}<|im_end|>\n" for role, text in turns)
        return out + "<|im_start|>assistant\n" + (prefill or "")
    if template == "llama3":
        out = "<|begin_of_text|>" + "".join(
            f"<|start_header_id|>{role}<|end_header_id|>\n\n{text}<|eot_id|>"
            for role, text in turns
        )
        return out + "<|start_header_id|>assistant<|end_header_id|>\n\n" + (prefill or "")
    out = "".join(f"{_PLAIN_ROLES.get(role, role)}: {text}\n\n" for role, text in turns)
    return out + "Assistant:" + (f" {prefill}" if prefill else "")
