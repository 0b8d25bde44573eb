"""What a request costs, and how much each client key may still spend.

`PriceTable` turns a target (``provider:model``) and its token usage into US dollars,
from the ``[prices]`` overrides over `SHIPPED_PRICES`. `Budgets` keeps each client key's
spend in its current UTC day and month against its ``budget``.

The shipped prices are list prices, USD per million tokens, as of 2025, check your
contract: override what differs under ``[prices]``.

Both are pure: no I/O, and `Budgets` reads the wall clock only through the callable it
is given.
"""

from __future__ import annotations

import math
import re
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs

from rules import Budget, Price

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from adapters import Usage

__all__ = ["SHIPPED_PRICES", "BudgetState", "Budgets", "PriceTable", "normalise_model"]

PER_TOKENS = 1_000_000

#: Default prices, USD per million input / output tokens, for common models: list
#: prices as of 2025, without batch, cache or long-context rates. Check your contract
#: and override what differs under ``[prices]``. Keys are base model ids; dated,
#: versioned and vendor-prefixed ids find theirs through `normalise_model`.
SHIPPED_PRICES: Mapping[str, Price] = {
    # OpenAI
    "gpt-4o": Price(2.50, 10.00),
    "gpt-4o-mini": Price(0.15, 0.60),
    "gpt-4.1": Price(2.00, 8.00),
    "gpt-4.1-mini": Price(0.40, 1.60),
    "gpt-4.1-nano": Price(0.10, 0.40),
    "o3-mini": Price(1.10, 4.40),
    "o4-mini": Price(1.10, 4.40),
    # Anthropic
    "claude-3-haiku": Price(0.25, 1.25),
    "claude-3-5-haiku": Price(0.80, 4.00),
    "claude-3-5-sonnet": Price(3.00, 15.00),
    "claude-3-7-sonnet": Price(3.00, 15.00),
    "claude-sonnet-4": Price(3.00, 15.00),
    "claude-3-opus": Price(15.00, 75.00),
    "claude-opus-4": Price(15.00, 75.00),
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
        # Every answer is priced: remember each target's price (targets come from the
        # config, so the memo is bounded); normalising a model id costs ~10 µs.
        self._memo: dict[str, Price | None] = {}

    def price(self, target: str) -> Price | None:
        """The price of ``target`` (``provider:model``), or None for an unknown model."""
        try:
            return self._memo[target]
        except KeyError:
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

        Negative token counts (a broken upstream's) count as zero.
        """
        price = self.price(target)
        if price is None:
            return None
        return _dollars(price, max(0, usage.prompt_tokens), max(0, usage.completion_tokens))

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


def _dollars(price: Price, prompt_tokens: int, output_tokens: int) -> float:
    return (prompt_tokens * price.input + output_tokens * price.output) / PER_TOKENS


_Day = tuple[int, int, int]
_Month = tuple[int, int]


@attrs.frozen
class BudgetState:
    """One key's spending, as `Budgets.snapshot` reports it.

    Attributes:
        budget: The key's budget, or None.
        spent_day: USD spent in the current UTC day.
        spent_month: USD spent in the current UTC month.
        remaining: USD left in the budget's period (None: no budget).
        resets_in: Seconds until the budget's period ends (None: no budget).
    """

    budget: Budget | None
    spent_day: float
    spent_month: float
    remaining: float | None
    resets_in: float | None


@attrs.define
class _Spend:
    day: _Day = (0, 0, 0)
    day_usd: float = 0.0
    month: _Month = (0, 0)
    month_usd: float = 0.0


class Budgets:
    """Spend per client key in the current calendar period, against its budget.

    Periods are UTC calendar periods: a ``"day"`` budget covers one UTC date, a
    ``"month"`` budget one UTC year-month; spend starts again at zero when the period
    rolls over. Each key's spend is kept for both its day and its month, so a key
    charged before it had a budget, or whose budget changes from ``day`` to ``month`` on
    reload, is counted in full. Should the clock step back across a period's edge, the
    later period is kept (a clock step does not refill a budget).

    Spend is kept in memory only: it restarts at zero with the daemon.

    A request is let through while anything is left (`exhausted` is false) and charged
    when it has finished, so a budget can be overshot by the requests in flight when it
    runs out.

    Keys are client key names (``[keys.NAME]``), never the secrets.

    Args:
        clock: The wall clock, seconds since the epoch.
    """

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._budgets: dict[str, Budget] = {}
        self._spend: dict[str, _Spend] = {}

    def configure(self, key: str, budget: Budget | None) -> None:
        """Set ``key``'s budget (None: no budget). What it spent so far is kept."""
        if budget is None:
            self._budgets.pop(key, None)
        else:
            self._budgets[key] = budget

    def budget(self, key: str) -> Budget | None:
        """``key``'s budget, or None."""
        return self._budgets.get(key)

    def charge(self, key: str, usd: float) -> None:
        """Add ``usd`` to ``key``'s spend in the current day and month.

        Keys without a budget are counted too (for `snapshot`, and in case they get one).

        Raises:
            ValueError: a negative or non-finite amount.
        """
        if not math.isfinite(usd) or usd < 0:
            raise ValueError(f"a charge must be a finite amount of at least 0, got {usd!r}")
        spend = self._current(key, self._clock(), keep=True)
        spend.day_usd += usd
        spend.month_usd += usd

    def spent(self, key: str) -> float:
        """USD ``key`` spent in its budget's current period (the UTC day without one)."""
        return self._spent(key, self._current(key, self._clock()))

    def remaining(self, key: str) -> float | None:
        """USD ``key`` may still spend in the current period, never below 0; None when
        it has no budget."""
        return self._remaining(key, self._current(key, self._clock()))

    def exhausted(self, key: str) -> bool:
        """``key`` has a budget and nothing is left of it."""
        remaining = self.remaining(key)
        return remaining is not None and remaining <= 0

    def resets_in(self, key: str) -> float | None:
        """Seconds until ``key``'s budget period rolls over (for ``Retry-After``); None
        when it has no budget."""
        now = self._clock()
        return self._resets_in(key, self._current(key, now), now)

    def snapshot(self) -> dict[str, BudgetState]:
        """Every key with a budget or a charge, sorted by key, all at one reading of the
        clock."""
        now = self._clock()
        states = {}
        for key in sorted(self._budgets.keys() | self._spend.keys()):
            spend = self._current(key, now)
            states[key] = BudgetState(
                budget=self._budgets.get(key),
                spent_day=spend.day_usd,
                spent_month=spend.month_usd,
                remaining=self._remaining(key, spend),
                resets_in=self._resets_in(key, spend, now),
            )
        return states

    def _spent(self, key: str, spend: _Spend) -> float:
        budget = self._budgets.get(key)
        return spend.month_usd if budget is not None and budget.per == "month" else spend.day_usd

    def _remaining(self, key: str, spend: _Spend) -> float | None:
        budget = self._budgets.get(key)
        if budget is None:
            return None
        return max(0.0, budget.usd - self._spent(key, spend))

    def _resets_in(self, key: str, spend: _Spend, now: float) -> float | None:
        budget = self._budgets.get(key)
        if budget is None:
            return None
        if budget.per == "day":
            year, month, day = spend.day
            end = datetime(year, month, day, tzinfo=UTC).timestamp() + 86_400
        else:
            year, month = spend.month
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)
            end = datetime(year, month, 1, tzinfo=UTC).timestamp()
        return max(0.0, end - now)

    def dump(self) -> dict[str, dict[str, Any]]:
        """The spend of every key, as plain JSON values (to keep across restarts)."""
        return {
            key: {
                "day": list(s.day),
                "day_usd": s.day_usd,
                "month": list(s.month),
                "month_usd": s.month_usd,
            }
            for key, s in self._spend.items()
        }

    def load(self, data: Mapping[str, Any]) -> None:
        """Spend saved by :meth:`dump`; entries that do not parse are skipped. Periods
        that have rolled over since count as zero, as always."""
        for key, raw in data.items():
            try:
                day = (int(raw["day"][0]), int(raw["day"][1]), int(raw["day"][2]))
                month = (int(raw["month"][0]), int(raw["month"][1]))
                day_usd, month_usd = float(raw["day_usd"]), float(raw["month_usd"])
            except (KeyError, IndexError, TypeError, ValueError):
                continue
            if min(day_usd, month_usd) >= 0 and math.isfinite(day_usd + month_usd):
                self._spend[str(key)] = _Spend(day, day_usd, month, month_usd)

    def _current(self, key: str, now: float, *, keep: bool = False) -> _Spend:
        """``key``'s spend, rolled over to the periods ``now`` falls in; a key never
        charged gets a zero record, stored only when ``keep``."""
        when = datetime.fromtimestamp(now, tz=UTC)
        day: _Day = (when.year, when.month, when.day)
        month: _Month = (when.year, when.month)
        spend = self._spend.get(key)
        if spend is None:
            spend = _Spend(day=day, month=month)
            if keep:
                self._spend[key] = spend
        if day > spend.day:
            spend.day, spend.day_usd = day, 0.0
        if month > spend.month:
            spend.month, spend.month_usd = month, 0.0
        return spend
