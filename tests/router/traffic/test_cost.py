"""Prices, costs against hand-computed values, and budgets on an injected UTC clock."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest

from adapters import Usage
from router.traffic._budgets import Budgets, BudgetState
from router.traffic._cost import SHIPPED_PRICES, PriceTable, normalise_model
from rules import Budget, Price


def at(text: str) -> float:
    """Seconds since the epoch of an ISO UTC time such as ``2025-03-14T23:59:30``."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


class Clock:
    def __init__(self, text: str) -> None:
        self.now = at(text)

    def __call__(self) -> float:
        return self.now


# --- prices and costs ----------------------------------------------------------------


def test_cost_of_gpt_4o_mini_by_hand() -> None:
    cost = PriceTable().cost("openai:gpt-4o-mini", Usage(1000, 500))
    assert cost == pytest.approx(1000 * 0.15 / 1e6 + 500 * 0.60 / 1e6, abs=1e-12)
    assert cost == pytest.approx(0.00045, abs=1e-12)


@pytest.mark.parametrize(
    ("target", "prompt", "completion", "usd"),
    [
        # 1M in at $2.50 + 1M out at $10.00
        ("openai:gpt-4o", 1_000_000, 1_000_000, 12.50),
        # 2,000 * 3 / 1e6 + 1,000 * 15 / 1e6 = 0.006 + 0.015
        ("anthropic:claude-sonnet-4", 2000, 1000, 0.021),
        # 10,000 * 15 / 1e6 + 2,000 * 75 / 1e6 = 0.15 + 0.15
        ("anthropic:claude-opus-4", 10_000, 2000, 0.30),
        # 123 * 0.55 / 1e6 + 4,567 * 2.19 / 1e6 = 0.00006765 + 0.01000173
        ("deepseek:deepseek-reasoner", 123, 4567, 0.01006938),
        # 1e6 * 0.05 / 1e6 + 0
        ("groq:llama-3.1-8b-instant", 1_000_000, 0, 0.05),
        ("gemini:gemini-2.5-pro", 0, 0, 0.0),
    ],
)
def test_costs_by_hand(target: str, prompt: int, completion: int, usd: float) -> None:
    assert PriceTable().cost(target, Usage(prompt, completion)) == pytest.approx(usd, abs=1e-12)


def test_cache_reads_and_writes_at_their_own_rates() -> None:
    table = PriceTable({"m": Price(2.0, 8.0, cache_read=0.5, cache_write=3.0)})
    # 1,000 prompt tokens: 600 read from the cache, 100 written to it, 300 neither.
    usage = Usage(1000, 200, cache_read_tokens=600, cache_write_tokens=100)
    usd = (300 * 2.0 + 600 * 0.5 + 100 * 3.0 + 200 * 8.0) / 1e6
    assert table.cost("p:m", usage) == pytest.approx(usd, abs=1e-15)


def test_unset_cache_rates_are_the_input_price_and_a_quarter_more_for_writes() -> None:
    table = PriceTable({"m": Price(2.0, 8.0)})
    usage = Usage(1000, 200, cache_read_tokens=600, cache_write_tokens=100)
    usd = (300 * 2.0 + 600 * 2.0 + 100 * 2.5 + 200 * 8.0) / 1e6
    assert table.cost("p:m", usage) == pytest.approx(usd, abs=1e-15)


def test_shipped_cache_rates() -> None:
    # claude-sonnet-4: $3 in, reads $0.30, writes $3.75, $15 out.
    usage = Usage(10_000, 1000, cache_read_tokens=8000, cache_write_tokens=1000)
    usd = (1000 * 3.0 + 8000 * 0.30 + 1000 * 3.75 + 1000 * 15.0) / 1e6
    assert PriceTable().cost("anthropic:claude-sonnet-4", usage) == pytest.approx(usd, abs=1e-15)
    # gpt-4o-mini: cached input at $0.075, half the input price.
    usage = Usage(1000, 0, cache_read_tokens=1000)
    assert PriceTable().cost("openai:gpt-4o-mini", usage) == pytest.approx(7.5e-5, abs=1e-15)


def test_cache_counts_beyond_the_prompt_are_capped_by_it() -> None:
    table = PriceTable({"m": Price(2.0, 8.0, cache_read=0.5, cache_write=3.0)})
    usage = Usage(100, 0, cache_read_tokens=80, cache_write_tokens=80)  # an upstream's garbage
    assert table.cost("p:m", usage) == pytest.approx((80 * 0.5 + 20 * 3.0) / 1e6, abs=1e-15)


def test_negative_usage_counts_as_zero() -> None:
    assert PriceTable().cost("openai:gpt-4o", Usage(-5, 1000)) == pytest.approx(0.01, abs=1e-12)


def test_estimate_uses_prompt_and_output_prices() -> None:
    table = PriceTable()
    # 1,000 * 0.80 / 1e6 + 4,096 * 4.00 / 1e6
    assert table.estimate("anthropic:claude-3-5-haiku", 1000, 4096) == pytest.approx(
        0.0008 + 0.016384, abs=1e-12
    )
    assert table.estimate("nowhere:mystery-model", 1000, 4096) is None
    with pytest.raises(ValueError, match="at least 0"):
        table.estimate("openai:gpt-4o", -1, 10)


def test_estimate_ranks_targets_by_output_price_too() -> None:
    table = PriceTable()
    # Same input price (0.10): nano's output is dearer than mistral-small's.
    nano = table.estimate("openai:gpt-4.1-nano", 1000, 1000)
    small = table.estimate("mistral:mistral-small", 1000, 1000)
    assert nano is not None
    assert small is not None
    assert small < nano


def test_shipped_prices_are_per_million_and_as_briefed() -> None:
    assert SHIPPED_PRICES["gpt-4o"] == Price(2.50, 10.00, cache_read=1.25)
    assert SHIPPED_PRICES["claude-3-haiku"] == Price(0.25, 1.25, cache_read=0.03, cache_write=0.30)
    assert SHIPPED_PRICES["command-r-plus"] == Price(2.50, 10.00)
    assert PriceTable().price("ai21:jamba-large-1.7") == Price(2.00, 8.00)
    assert PriceTable().price("ai21:jamba-mini") == Price(0.20, 0.40)
    # Chat models charge more for output; embedding models have none.
    assert all(p.input <= p.output for p in SHIPPED_PRICES.values() if p.output)
    assert SHIPPED_PRICES["text-embedding-3-small"] == Price(0.02, 0.0)


def test_embedding_models_are_priced_by_their_input() -> None:
    table = PriceTable()
    assert table.cost("openai:text-embedding-3-small", Usage(1_000_000)) == 0.02
    assert table.price("bedrock:amazon.titan-embed-text-v2:0") == Price(0.02, 0.0)
    assert table.price("gemini:models/gemini-embedding-001") == Price(0.15, 0.0)


def test_unknown_model_has_no_price() -> None:
    table = PriceTable()
    assert table.price("openai:gpt-99-ultra") is None
    assert table.cost("sim:echo", Usage(10, 10)) is None
    assert table.price("ollama:llama3.1:8b") is None
    # A shipped key only matches at a word boundary: command-r7b is not command-r.
    assert table.price("cohere:command-r7b-12-2024") is None
    assert table.price("x:") is None


# --- override precedence -------------------------------------------------------------


def test_override_precedence() -> None:
    table = PriceTable(
        {
            "azure:gpt-4o": Price(1.0, 2.0),
            "gpt-4o": Price(3.0, 4.0),
        }
    )
    assert table.price("azure:gpt-4o") == Price(1.0, 2.0)  # provider:model override
    assert table.price("openai:gpt-4o") == Price(3.0, 4.0)  # model override over shipped
    assert table.price("openai:gpt-4o-mini") == SHIPPED_PRICES["gpt-4o-mini"]  # shipped


def test_model_override_beats_shipped_and_covers_variants() -> None:
    table = PriceTable({"claude-3-5-haiku": Price(0.5, 2.5)})
    assert table.price("anthropic:claude-3-5-haiku") == Price(0.5, 2.5)
    # The normalised match prefers an override to a shipped key of the same length.
    assert table.price("bedrock:anthropic.claude-3-5-haiku-20241022-v1:0") == Price(0.5, 2.5)


def test_provider_override_covers_its_variants_only() -> None:
    table = PriceTable({"bedrock:claude-3-5-haiku": Price(1.0, 5.0)})
    assert table.price("bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0") == Price(1.0, 5.0)
    assert table.price("anthropic:claude-3-5-haiku-20241022") == SHIPPED_PRICES["claude-3-5-haiku"]


def test_exact_override_of_a_dated_id_applies_to_it_alone() -> None:
    table = PriceTable({"gpt-4o-2024-05-13": Price(5.0, 15.0)})
    assert table.price("openai:gpt-4o-2024-05-13") == Price(5.0, 15.0)
    assert table.price("openai:gpt-4o-2024-08-06") == SHIPPED_PRICES["gpt-4o"]


def test_longer_shipped_key_beats_shorter_override() -> None:
    table = PriceTable({"gpt-4o": Price(9.0, 9.0)})
    assert table.price("openai:gpt-4o-mini-2024-07-18") == SHIPPED_PRICES["gpt-4o-mini"]
    assert table.price("openai:gpt-4o-2024-08-06") == Price(9.0, 9.0)


def test_override_prices_an_unknown_model() -> None:
    table = PriceTable({"ollama:llama3.1:8b": Price(0.0, 0.0), "my-finetune": Price(1.0, 1.0)})
    assert table.cost("ollama:llama3.1:8b", Usage(1000, 1000)) == 0.0
    assert table.price("openai:my-finetune") == Price(1.0, 1.0)
    assert table.price("my-finetune") == Price(1.0, 1.0)  # a bare model id as target


# --- normalisation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "normalised", "key"),
    [
        ("gpt-4o-2024-08-06", "gpt-4o", "gpt-4o"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano", "gpt-4.1-nano"),
        ("claude-3-5-haiku-20241022", "claude-3-5-haiku", "claude-3-5-haiku"),
        ("claude-3-5-sonnet-latest", "claude-3-5-sonnet", "claude-3-5-sonnet"),
        ("mistral-large-latest", "mistral-large", "mistral-large"),
        ("anthropic.claude-3-5-haiku-20241022-v1:0", "claude-3-5-haiku", "claude-3-5-haiku"),
        # Bedrock cross-region inference profiles
        ("us.anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet", "claude-3-7-sonnet"),
        ("eu.anthropic.claude-3-5-sonnet-20240620-v1:0", "claude-3-5-sonnet", "claude-3-5-sonnet"),
        ("global.anthropic.claude-sonnet-4-20250514-v1:0", "claude-sonnet-4", "claude-sonnet-4"),
        (
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-opus-4-20250514-v1:0",
            "claude-opus-4",
            "claude-opus-4",
        ),
        ("cohere.command-r-plus-v1:0", "command-r-plus", "command-r-plus"),
        # Vertex
        ("claude-3-5-sonnet-v2@20241022", "claude-3-5-sonnet", "claude-3-5-sonnet"),
        ("models/gemini-2.5-flash", "gemini-2.5-flash", "gemini-2.5-flash"),
        ("accounts/fireworks/models/deepseek-reasoner", "deepseek-reasoner", "deepseek-reasoner"),
        (
            "meta-llama/llama-3.3-70b-versatile",
            "llama-3.3-70b-versatile",
            "llama-3.3-70b-versatile",
        ),
        ("GPT-4o-Mini", "gpt-4o-mini", "gpt-4o-mini"),
        # Prefix matches at a word boundary, longest first
        ("claude-opus-4-1-20250805", "claude-opus-4-1", "claude-opus-4"),
        ("gemini-2.5-flash-lite", "gemini-2.5-flash-lite", "gemini-2.5-flash-lite"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("mistral-small-2503", "mistral-small-2503", "mistral-small"),
        ("o4-mini-2025-04-16", "o4-mini", "o4-mini"),
    ],
)
def test_normalised_match(model: str, normalised: str, key: str) -> None:
    assert normalise_model(model) == normalised
    assert PriceTable().price(f"provider:{model}") == SHIPPED_PRICES[key]


def test_mini_is_not_priced_as_its_bigger_sibling() -> None:
    table = PriceTable()
    assert table.price("openai:gpt-4o-mini-2024-07-18") == Price(0.15, 0.60, cache_read=0.075)
    assert table.price("openai:gpt-4.1-mini-2025-04-14") == Price(0.40, 1.60, cache_read=0.10)


def test_bedrock_cost_by_hand() -> None:
    # 2,000 * 0.80 / 1e6 + 300 * 4.00 / 1e6 = 0.0016 + 0.0012
    cost = PriceTable().cost(
        "bedrock:us.anthropic.claude-3-5-haiku-20241022-v1:0", Usage(2000, 300)
    )
    assert cost == pytest.approx(0.0028, abs=1e-12)


# --- budgets -------------------------------------------------------------------------


def test_key_without_budget() -> None:
    budgets = Budgets(Clock("2025-03-14T12:00:00"))
    assert budgets.remaining("free") is None
    assert budgets.resets_in("free") is None
    assert not budgets.exhausted("free")
    budgets.charge("free", 1000.0)
    assert not budgets.exhausted("free")
    assert budgets.spent("free") == 1000.0
    assert budgets.remaining("free") is None


def test_charges_until_exhausted() -> None:
    budgets = Budgets(Clock("2025-03-14T12:00:00"))
    budgets.configure("team", Budget(usd=1.0, per="day"))
    assert budgets.remaining("team") == 1.0
    budgets.charge("team", 0.25)
    budgets.charge("team", 0.5)
    assert budgets.remaining("team") == pytest.approx(0.25, abs=1e-12)
    assert not budgets.exhausted("team")
    budgets.charge("team", 0.5)  # in flight when it ran out: overshoots
    assert budgets.remaining("team") == 0.0
    assert budgets.exhausted("team")
    assert budgets.spent("team") == pytest.approx(1.25, abs=1e-12)


def test_exactly_spent_is_exhausted() -> None:
    budgets = Budgets(Clock("2025-03-14T12:00:00"))
    budgets.configure("k", Budget(usd=0.5, per="month"))
    budgets.charge("k", 0.5)
    assert budgets.exhausted("k")


def test_day_budget_rolls_over_at_utc_midnight() -> None:
    clock = Clock("2025-03-14T23:59:30")
    budgets = Budgets(clock)
    budgets.configure("k", Budget(usd=2.0, per="day"))
    budgets.charge("k", 2.0)
    assert budgets.exhausted("k")
    assert budgets.resets_in("k") == 30.0
    clock.now = at("2025-03-14T23:59:59.5")
    assert budgets.exhausted("k")
    assert budgets.resets_in("k") == 0.5
    clock.now = at("2025-03-15T00:00:00")
    assert not budgets.exhausted("k")
    assert budgets.remaining("k") == 2.0
    assert budgets.resets_in("k") == 86_400.0
    budgets.charge("k", 0.5)
    assert budgets.remaining("k") == 1.5


def test_month_budget_rolls_over_on_the_first() -> None:
    clock = Clock("2025-01-31T23:00:00")
    budgets = Budgets(clock)
    budgets.configure("k", Budget(usd=10.0, per="month"))
    budgets.charge("k", 10.0)
    assert budgets.exhausted("k")
    assert budgets.resets_in("k") == 3600.0
    clock.now = at("2025-02-01T00:00:00")
    assert budgets.remaining("k") == 10.0
    # February 2025 has 28 days.
    assert budgets.resets_in("k") == 28 * 86_400.0
    budgets.charge("k", 4.0)
    clock.now = at("2025-02-15T12:00:00")  # a new day, the same month
    assert budgets.remaining("k") == 6.0
    assert budgets.resets_in("k") == 13.5 * 86_400


def test_month_budget_rolls_over_at_new_year() -> None:
    clock = Clock("2024-12-31T23:59:00")
    budgets = Budgets(clock)
    budgets.configure("k", Budget(usd=1.0, per="month"))
    budgets.charge("k", 1.0)
    assert budgets.resets_in("k") == 60.0
    clock.now = at("2025-01-01T00:00:00")
    assert budgets.remaining("k") == 1.0


def test_periods_are_utc_whatever_the_local_zone(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Etc/GMT-14")  # UTC+14, like Kiritimati
    time.tzset()
    try:
        clock = Clock("2025-03-14T20:00:00")  # already the 15th at UTC+14
        budgets = Budgets(clock)
        budgets.configure("k", Budget(usd=1.0, per="day"))
        budgets.charge("k", 1.0)
        assert budgets.resets_in("k") == 4 * 3600.0
        clock.now = at("2025-03-14T23:59:59")
        assert budgets.exhausted("k")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_clock_stepping_back_does_not_refill() -> None:
    clock = Clock("2025-03-15T00:00:05")
    budgets = Budgets(clock)
    budgets.configure("k", Budget(usd=1.0, per="day"))
    budgets.charge("k", 1.0)
    clock.now = at("2025-03-14T23:59:58")
    assert budgets.exhausted("k")
    # It waits for the end of the later day.
    assert budgets.resets_in("k") == 86_402.0


def test_reconfiguring_keeps_the_spend() -> None:
    budgets = Budgets(Clock("2025-03-14T12:00:00"))
    budgets.charge("k", 0.75)  # charged before it had a budget
    budgets.configure("k", Budget(usd=1.0, per="day"))
    assert budgets.remaining("k") == 0.25
    budgets.configure("k", Budget(usd=5.0, per="month"))
    assert budgets.remaining("k") == 4.25
    budgets.configure("k", None)
    assert budgets.remaining("k") is None
    assert not budgets.exhausted("k")


def test_month_spend_spans_days() -> None:
    clock = Clock("2025-03-14T12:00:00")
    budgets = Budgets(clock)
    budgets.configure("k", Budget(usd=1.0, per="month"))
    budgets.charge("k", 0.5)
    clock.now = at("2025-03-20T12:00:00")
    budgets.charge("k", 0.5)
    assert budgets.exhausted("k")
    assert budgets.snapshot()["k"].spent_day == 0.5
    assert budgets.snapshot()["k"].spent_month == 1.0


def test_bad_charges_are_refused() -> None:
    budgets = Budgets(Clock("2025-03-14T12:00:00"))
    for usd in (-0.01, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="finite amount"):
            budgets.charge("k", usd)
    assert budgets.snapshot() == {}


def test_snapshot() -> None:
    clock = Clock("2025-03-14T18:00:00")
    budgets = Budgets(clock)
    budgets.configure("capped", Budget(usd=1.0, per="day"))
    budgets.charge("capped", 0.25)
    budgets.charge("open", 3.0)
    budgets.remaining("asked-only")  # a read does not create an entry
    assert budgets.snapshot() == {
        "capped": BudgetState(
            budget=Budget(usd=1.0, per="day"),
            spent_day=0.25,
            spent_month=0.25,
            remaining=0.75,
            resets_in=6 * 3600.0,
        ),
        "open": BudgetState(
            budget=None, spent_day=3.0, spent_month=3.0, remaining=None, resets_in=None
        ),
    }
    assert list(budgets.snapshot()) == ["capped", "open"]


def test_default_clock_is_the_wall_clock() -> None:
    budgets = Budgets()
    budgets.configure("k", Budget(usd=1.0, per="day"))
    resets_in = budgets.resets_in("k")
    assert resets_in is not None
    assert 0 < resets_in <= 86_400
