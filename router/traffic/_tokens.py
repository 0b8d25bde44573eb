"""What a request will cost in tokens, before the upstream says: for the rate windows
(the client key's and the targets') and for ranking targets by price."""

from __future__ import annotations

__all__ = ["CHARS_PER_TOKEN", "estimate_tokens"]

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
