"""A broken stream resumed by prefill: the request that continues it, and the seam.

A prefill-capable target (``Capabilities.prefill``) is sent the original request plus
the text already delivered as a trailing assistant message (:func:`prefilled`); each
adapter writes that message in its provider's prefill form (Anthropic's and Bedrock's
last ``assistant`` message, Gemini's last ``model`` turn, vLLM's
``continue_final_message``, Mistral's ``prefix``), and the model's output is the rest of
the answer.

Anthropic refuses a final assistant text that ends in whitespace, so its adapter sends
the text without it. The model then usually starts the rest with that whitespace,
which the client already has: :class:`Seam` drops, from the start of the rest, the
whitespace the delivered text ended with, so the join is neither doubled nor lost.
It is harmless for targets that were sent the whitespace (they rarely repeat it).

Of the OpenAI-compatible hosts, vLLM continues a final assistant message given
``continue_final_message: true`` and ``add_generation_prompt: false``
(:func:`vllm_continue`), Mistral given ``prefix: true`` on it (:func:`mistral_prefix`),
Groq as it is ("assistant message prefilling"). OpenAI's Chat Completions answers it
anew, DeepSeek continues one only on its beta endpoint, and OpenRouter only for some of
the models behind it: their ``prefill`` is false unless the operator says otherwise.
"""

from __future__ import annotations

from typing import Any

import attrs

from ._types import GatewayRequest, Message

__all__ = ["Seam", "mistral_prefix", "prefilled", "vllm_continue"]

Body = dict[str, Any]


def prefilled(req: GatewayRequest, delivered: str) -> GatewayRequest:
    """``req`` with ``delivered`` appended as the start of the assistant's answer.

    If the client's request already ended with a prefill of its own (an assistant
    text), the answer continued it: the two become one message, since not every
    provider joins two assistant turns in a row.
    """
    last = req.messages[-1] if req.messages else None
    if last is not None and last.role == "assistant" and not (last.tool_calls or last.has_images):
        merged = Message("assistant", last.text() + delivered, name=last.name)
        return attrs.evolve(req, messages=(*req.messages[:-1], merged))
    return attrs.evolve(req, messages=(*req.messages, Message("assistant", delivered)))


@attrs.define
class Seam:
    """Joins a continuation onto the text delivered before a break.

    Feed it each piece of the continuation's text in order; it returns what to pass on.
    """

    #: The delivered text's trailing whitespace not yet matched by the continuation.
    pending: str

    @classmethod
    def after(cls, delivered: str) -> Seam:
        return cls(delivered[len(delivered.rstrip()) :])

    def feed(self, text: str) -> str:
        if not self.pending:
            return text
        matched = 0
        while matched < min(len(text), len(self.pending)):
            if text[matched] != self.pending[matched]:
                self.pending = ""
                return text[matched:]
            matched += 1
        self.pending = self.pending[matched:]
        if matched < len(text):  # the whitespace ran out before the piece did
            self.pending = ""
        return text[matched:]


def _ends_with_assistant(body: Body) -> bool:
    messages = body.get("messages")
    return (
        isinstance(messages, list)
        and bool(messages)
        and isinstance(messages[-1], dict)
        and messages[-1].get("role") == "assistant"
    )


def vllm_continue(body: Body) -> Body:
    """A Chat Completions body for vLLM: a trailing assistant message is continued, not
    followed by a new turn (``continue_final_message``, which vLLM refuses together
    with ``add_generation_prompt``). A client that set either keeps its choice."""
    if _ends_with_assistant(body) and not (
        "continue_final_message" in body or "add_generation_prompt" in body
    ):
        body = {**body, "continue_final_message": True, "add_generation_prompt": False}
    return body


def mistral_prefix(body: Body) -> Body:
    """A Chat Completions body for Mistral, which refuses a trailing assistant message
    unless it is marked ``prefix: true``, and then continues it."""
    if not _ends_with_assistant(body):
        return body
    *before, last = body["messages"]
    return {**body, "messages": [*before, {**last, "prefix": True}]}
