"""What a request will cost in tokens, before the upstream says: for the rate windows
(the client key's and the targets'), for ranking targets by price and for the worst
case a budget holds; and what an answer cost when the upstream does not say (a stream
without ``stream_options.include_usage``, a host that sends no usage), counted from
its text, so that every answer is charged."""

from __future__ import annotations

from typing import TYPE_CHECKING

from adapters import Usage

if TYPE_CHECKING:
    from collections.abc import Iterable

    from adapters import ChatChunk, EmbeddingRequest, GatewayRequest, GatewayResponse, TextRequest

__all__ = [
    "CHARS_PER_TOKEN",
    "RESERVE_OUTPUT",
    "answer_usage",
    "chunk_chars",
    "embedding_tokens",
    "estimate_tokens",
    "request_tokens",
    "stream_usage",
    "text_request_tokens",
    "text_tokens",
]

CHARS_PER_TOKEN = 4

#: The output a budget holds for a request that sets no ``max_tokens`` (until its real
#: cost is known): a long answer's worth. Providers' own defaults are larger (OpenAI's
#: is the model's whole output limit), but a hold only matters while the request is in
#: flight and only near the end of a budget.
RESERVE_OUTPUT = 4096


def text_tokens(chars: int) -> int:
    """Tokens of ``chars`` characters of text, at ~4 characters a token (rounded up)."""
    return -(-max(chars, 0) // CHARS_PER_TOKEN)


def estimate_tokens(prompt_chars: int, max_tokens: int | None, default_output: int = 256) -> int:
    """Tokens to charge before the call: the prompt at ~4 characters per token (rounded
    up) plus the output allowance (``max_tokens``, or ``default_output`` when the client
    set none).

    Four characters per token is OpenAI's rule of thumb for English; code and non-Latin
    scripts use more tokens per character, and answers usually stop before
    ``max_tokens``. The windows correct the charge once the upstream reports its usage
    (:meth:`RateLimiter.reconcile <router.traffic._window.RateLimiter.reconcile>`).
    """
    prompt = text_tokens(prompt_chars)
    output = max_tokens if max_tokens is not None else default_output
    return prompt + max(output, 0)


def request_tokens(req: GatewayRequest, with_output: bool = True) -> int:
    """:func:`estimate_tokens` for ``req``: its messages' text, and its ``max_tokens``
    (or the default allowance) unless ``with_output`` is False (the prompt alone)."""
    prompt_chars = sum(len(m.text()) for m in req.messages)
    return estimate_tokens(prompt_chars, req.max_tokens if with_output else 0)


def embedding_tokens(req: EmbeddingRequest) -> int:
    """Tokens an embeddings request will use, before the upstream says: its texts at
    ~4 characters a token, its token arrays as they are. Embeddings have no output."""
    return sum(len(i) if isinstance(i, tuple) else text_tokens(len(i)) for i in req.inputs)


def text_request_tokens(req: TextRequest, with_output: bool = True) -> int:
    """Tokens a text completion may use: its prompt (text at ~4 characters a token,
    token arrays as they are) and, unless ``with_output`` is False, ``max_tokens`` for
    each completion it generates (``best_of`` or ``n`` per prompt)."""
    prompt = text_tokens(req.prompt_chars) + req.prompt_tokens
    output = max(req.max_tokens, 0) * req.choices * req.prompts
    return prompt + (output if with_output else 0)


def chunk_chars(chunks: Iterable[ChatChunk]) -> int:
    """Characters of answer in ``chunks``: text, refusals, tool names and arguments."""
    total = 0
    for chunk in chunks:
        for choice in chunk.choices:
            delta = choice.delta
            total += len(delta.content or "") + len(delta.refusal or "")
            for call in delta.tool_calls:
                total += len(call.name or "") + len(call.arguments or "")
    return total


def stream_usage(req: GatewayRequest, streamed_chars: int) -> Usage:
    """What a stream that reported no usage consumed, estimated: the prompt and the
    characters of answer that were streamed."""
    return Usage(request_tokens(req, with_output=False), text_tokens(streamed_chars))


def answer_usage(req: GatewayRequest, resp: GatewayResponse) -> Usage:
    """The usage ``resp`` reported, or else an estimate from the prompt and its text."""
    if resp.usage is not None:
        return resp.usage
    chars = 0
    for choice in resp.choices:
        message = choice.message
        chars += len(message.text())
        for call in message.tool_calls:
            chars += len(call.name) + len(call.arguments)
    return Usage(request_tokens(req, with_output=False), text_tokens(chars))
