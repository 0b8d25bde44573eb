"""What a request costs: the price table.

`PriceTable` turns a target (``provider:model``) and its token usage into US dollars,
from the ``[prices]`` overrides over `SHIPPED_PRICES`. What each client key may still
spend is :mod:`router.traffic._budgets`.

The shipped prices are list prices, USD per million tokens, as of 2025, check your
contract: override what differs under ``[prices]``. Pure: no I/O, no clock.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rules import Price

if TYPE_CHECKING:
    from collections.abc import Mapping

    from adapters import Usage

__all__ = ["SHIPPED_PRICES", "PriceTable", "normalise_model"]

PER_TOKENS = 1_000_000

#: Default prices, USD per million input / output tokens (and cached input, where the
#: provider reports it: OpenAI's cached input, Anthropic's cache reads and its 5-minute
#: cache writes), for
#: common models: list prices as of 2025, without batch or long-context rates. Check
#: your contract and override what differs under ``[prices]``. Keys are base model ids;
#: dated, versioned and vendor-prefixed ids find theirs through `normalise_model`.
SHIPPED_PRICES: Mapping[str, Price] = {
    # OpenAI
    "gpt-4o": Price(2.50, 10.00, cache_read=1.25),
    "gpt-4o-mini": Price(0.15, 0.60, cache_read=0.075),
    "gpt-4.1": Price(2.00, 8.00, cache_read=0.50),
    "gpt-4.1-mini": Price(0.40, 1.60, cache_read=0.10),
    "gpt-4.1-nano": Price(0.10, 0.40, cache_read=0.025),
    "o3-mini": Price(1.10, 4.40, cache_read=0.55),
    "o4-mini": Price(1.10, 4.40, cache_read=0.275),
    # Anthropic
    "claude-3-haiku": Price(0.25, 1.25, cache_read=0.03, cache_write=0.30),
    "claude-3-5-haiku": Price(0.80, 4.00, cache_read=0.08, cache_write=1.00),
    "claude-3-5-sonnet": Price(3.00, 15.00, cache_read=0.30, cache_write=3.75),
    "claude-3-7-sonnet": Price(3.00, 15.00, cache_read=0.30, cache_write=3.75),
    "claude-sonnet-4": Price(3.00, 15.00, cache_read=0.30, cache_write=3.75),
    "claude-3-opus": Price(15.00, 75.00, cache_read=1.50, cache_write=18.75),
    "claude-opus-4": Price(15.00, 75.00, cache_read=1.50, cache_write=18.75),
    # Google Gemini (the "lite" variants are listed so they do not take the full
    # models' prices by prefix)
    "gemini-2.0-flash": Price(0.10, 0.40),
    "gemini-2.0-flash-lite": Price(0.075, 0.30),
    "gemini-2.5-flash": Price(0.30, 2.50),
    "gemini-2.5-flash-lite": Price(0.10, 0.40),
    "gemini-2.5-pro": Price(1.25, 10.00),
    # Mistral
    "mistral-small": Price(0.10, 0.30),
    "mistral-large": Price(2.00, 6.00),
    # DeepSeek
    "deepseek-chat": Price(0.27, 1.10),
    "deepseek-reasoner": Price(0.55, 2.19),
    # Groq
    "llama-3.1-8b-instant": Price(0.05, 0.08),
    "llama-3.3-70b-versatile": Price(0.59, 0.79),
    # Cohere
    "command-r": Price(0.15, 0.60),
    "command-r-plus": Price(2.50, 10.00),
    # AI21 (Jamba; the "-1.7" and other versions match by prefix)
    "jamba-large": Price(2.00, 8.00),
    "jamba-mini": Price(0.20, 0.40),
    # Embeddings: input tokens only
    "text-embedding-3-small": Price(0.02, 0.0),
    "text-embedding-3-large": Price(0.13, 0.0),
    "text-embedding-ada-002": Price(0.10, 0.0),
    "gemini-embedding-001": Price(0.15, 0.0),
    "embed-v4.0": Price(0.12, 0.0),
    "embed-english-v3.0": Price(0.10, 0.0),
    "embed-multilingual-v3.0": Price(0.10, 0.0),
    "amazon.titan-embed-text-v2:0": Price(0.02, 0.0),
}

# Leading dotted segments of Bedrock ids: cross-region inference profiles
# (``us.``, ``eu.``, ``apac.``, ``global.``) and the model vendor (``anthropic.``).
_DOT_PREFIXES = frozenset(
    {
        "us",
        "us-gov",
        "eu",
        "apac",
        "global",
        "ca",
        "jp",
        "au",
        "anthropic",
        "meta",
        "mistral",
        "cohere",
        "amazon",
        "ai21",
        "deepseek",
        "openai",
        "google",
        "qwen",
        "writer",
    }
)
# Release suffixes, stripped from the end repeatedly: Bedrock ``-v1:0``, ``-latest``,
# OpenAI ``-2024-08-06``, Anthropic ``-20241022``.
_SUFFIX = re.compile(r"(?:-v\d+(?::[0-9a-z]+)*|-latest|-\d{4}-\d{2}-\d{2}|-\d{8})$")


def normalise_model(model: str) -> str:
    """A model id reduced to the form `SHIPPED_PRICES` is keyed by.

    Lower-cased; a Vertex ``@version`` dropped; everything up to the last ``/`` dropped
    (``models/``, ``accounts/fireworks/models/``, ``meta-llama/``, a Bedrock ARN's
    ``.../inference-profile/``); Bedrock's region and vendor prefixes (``us.``,
    ``global.``, ``anthropic.``, ...) dropped; then release suffixes (``-v1:0``,
    ``-latest``, ``-2024-08-06``, ``-20241022``). For example
    ``us.anthropic.claude-3-5-haiku-20241022-v1:0`` becomes ``claude-3-5-haiku``.
    """
    name = model.strip().lower().partition("@")[0].rpartition("/")[2]
    while True:
        head, dot, rest = name.partition(".")
        if not dot or head not in _DOT_PREFIXES or not rest:
            break
        name = rest
    while (stripped := _SUFFIX.sub("", name)) != name and stripped:
        name = stripped
    return name


def _is_prefix(key: str, name: str) -> bool:
    """``key`` is ``name`` or begins it at a word boundary (``gpt-4o`` begins
    ``gpt-4o-audio``, ``command-r`` does not begin ``command-r7b``)."""
    return name.startswith(key) and (len(name) == len(key) or not name[len(key)].isalnum())


#: Prices remembered by target before the memo starts over.
_MEMO_MAX = 4096


class PriceTable:
    """Prices for targets: the ``[prices]`` overrides over `SHIPPED_PRICES`.

    `price` looks a target ``provider:model`` up in this order, first hit wins:

    1. an override for ``provider:model`` exactly;
    2. an override for the model id exactly;
    3. a shipped price for the model id exactly;
    4. the longest key that begins the normalised model id (`normalise_model`) at a word
       boundary, among overrides for this provider (``provider:base-id``), bare
       overrides and shipped keys; at equal length an override beats a shipped price,
       and a provider's override beats a bare one. So ``gpt-4o-mini-2024-07-18`` takes
       ``gpt-4o-mini``'s price, not ``gpt-4o``'s, and an override for ``claude-3-5-haiku``
       also prices ``bedrock:anthropic.claude-3-5-haiku-20241022-v1:0``.

    An override written with a date (``gpt-4o-2024-05-13``) applies to that id only.
    The model id is everything after the first colon (Bedrock ids have colons of their
    own); a target without a colon is taken as a bare model id.

    Args:
        overrides: ``Config.prices``, keyed by ``provider:model`` or a model id.
    """

    def __init__(self, overrides: Mapping[str, Price] | None = None) -> None:
        self._overrides: dict[str, Price] = dict(overrides or {})
        # (key, rank, price) for stage 4, lower-cased; rank breaks length ties.
        self._shipped = [(key.lower(), 0, price) for key, price in SHIPPED_PRICES.items()]
        self._bare = [(key.lower(), 1, price) for key, price in self._overrides.items()]
        # Every answer is priced: remember each target's price (normalising a model id
        # costs ~10 µs). Clients may invent targets, so the memo starts over when full.
        self._memo: dict[str, Price | None] = {}

    def price(self, target: str) -> Price | None:
        """The price of ``target`` (``provider:model``), or None for an unknown model."""
        try:
            return self._memo[target]
        except KeyError:
            if len(self._memo) >= _MEMO_MAX:
                self._memo.clear()
            price = self._memo[target] = self._lookup(target)
            return price

    def _lookup(self, target: str) -> Price | None:
        provider, colon, model = target.partition(":")
        if not colon:
            provider, model = "", target
        elif (hit := self._overrides.get(target)) is not None:
            return hit
        if (hit := self._overrides.get(model)) is not None:
            return hit
        if (hit := SHIPPED_PRICES.get(model)) is not None:
            return hit
        name = normalise_model(model)
        if not name:
            return None
        own = (
            [
                (key[len(provider) + 1 :].lower(), 2, price)
                for key, price in self._overrides.items()
                if key.startswith(f"{provider}:")
            ]
            if provider
            else []
        )
        best: tuple[int, int, Price] | None = None
        for key, rank, price in (*own, *self._bare, *self._shipped):
            if key and _is_prefix(key, name) and (best is None or (len(key), rank) > best[:2]):
                best = (len(key), rank, price)
        return None if best is None else best[2]

    def cost(self, target: str, usage: Usage) -> float | None:
        """What ``usage`` cost at ``target``, in USD; None for an unknown model.

        The prompt's cache reads and writes are priced at their own rates
        (:class:`rules.Price`), the rest of it at the input price. Negative token counts
        (a broken upstream's) count as zero, and cache counts beyond the prompt are
        capped by it (reads first).
        """
        price = self.price(target)
        if price is None:
            return None
        prompt = max(0, usage.prompt_tokens)
        read = min(usage.cache_read_tokens, prompt)
        write = min(usage.cache_write_tokens, prompt - read)
        fresh = prompt - read - write
        cached = read * _read_rate(price) + write * _write_rate(price)
        return _dollars(price, fresh, max(0, usage.completion_tokens)) + cached / PER_TOKENS

    def estimate(self, target: str, prompt_tokens: int, max_output_tokens: int) -> float | None:
        """The most a request can cost at ``target``, in USD, to rank targets by price:
        ``prompt_tokens`` at the input price plus ``max_output_tokens`` at the output
        price. None for an unknown model.

        Raises:
            ValueError: a negative token count.
        """
        if prompt_tokens < 0 or max_output_tokens < 0:
            raise ValueError("token counts must be at least 0")
        price = self.price(target)
        return None if price is None else _dollars(price, prompt_tokens, max_output_tokens)


def _read_rate(price: Price) -> float:
    """USD per million prompt tokens read from a cache: ``cache_read``, else the input
    price (no discount assumed, so nothing is under-charged)."""
    return price.input if price.cache_read is None else price.cache_read


def _write_rate(price: Price) -> float:
    """USD per million prompt tokens written to a cache: ``cache_write``, else 1.25
    times the input price (Anthropic's rate for its 5-minute cache: Anthropic is the
    provider that reports cache writes)."""
    return price.input * 1.25 if price.cache_write is None else price.cache_write


def _dollars(price: Price, prompt_tokens: int, output_tokens: int) -> float:
    return (prompt_tokens * price.input + output_tokens * price.output) / PER_TOKENS
