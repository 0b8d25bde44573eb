"""What a request will cost in tokens, before the upstream says: for the rate windows
(the client key's and the targets') and for ranking targets by price."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from adapters import GatewayRequest

__all__ = ["CHARS_PER_TOKEN", "estimate_tokens", "request_tokens"]

CHARS_PER_TOKEN = 4


def estimate_tokens(prompt_chars: int, max_tokens: int | None, default_output: int = 256) -> int:
    """Tokens to charge before the call: the prompt at ~4 characters per token (rounded
    up) plus the output allowance (``max_tokens``, or ``default_output`` when the client
    set none).

    Four characters per token is OpenAI's rule of thumb for English; code and non-Latin
    scripts use more tokens per character, and answers usually stop before
    ``max_tokens``. The windows correct the charge once the upstream reports its usage
    (:meth:`RateLimiter.reconcile <router.traffic._window.RateLimiter.reconcile>`).
    """
    prompt = -(-max(prompt_chars, 0) // CHARS_PER_TOKEN)
    output = max_tokens if max_tokens is not None else default_output
    return prompt + max(output, 0)


def request_tokens(req: GatewayRequest, with_output: bool = True) -> int:
    """:func:`estimate_tokens` for ``req``: its messages' text, and its ``max_tokens``
    (or the default allowance) unless ``with_output`` is False (the prompt alone)."""
    prompt_chars = sum(len(m.text()) for m in req.messages)
    return estimate_tokens(prompt_chars, req.max_tokens if with_output else 0)
