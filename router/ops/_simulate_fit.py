"""Providers' simulation profiles fitted from the usage ledger (``server.usage_db``).

``llm-router simulate --fit`` plays each provider as its own traffic showed it, instead
of with the defaults: for every provider with rows in the ledger, the median and 99th
percentile of its time to first token (the whole latency for answers without one), the
share of attempts on it that did not answer, and its output rate (tokens after the
first one, over the time they took). A ``[simulate.providers.NAME]`` table in the
config still wins: it is what the operator says.

:func:`fit` is pure (rows in, profiles out); :func:`fit_ledger` reads the file.
"""

from __future__ import annotations

import sqlite3
import statistics
from collections import defaultdict
from typing import TYPE_CHECKING, NamedTuple

from rules import SimulatedLatency, SimulateProfile

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["LedgerRow", "fit", "fit_ledger"]

#: Fewer answers than this say too little about a provider: it keeps its defaults.
MIN_ANSWERS = 20
#: A latency (seconds) never fitted below this, as the simulated model needs one.
FLOOR = 0.001


class LedgerRow(NamedTuple):
    """What fitting reads of one ledger row."""

    target: str | None  # ``provider:model`` that answered (None: none did)
    targets: str | None  # every target tried, comma separated
    latency_ms: float
    ttft_ms: float | None
    tokens_out: int | None


def _provider(target: str) -> str:
    return target.split(":", 1)[0]


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def fit(rows: Iterable[LedgerRow]) -> dict[str, SimulateProfile]:
    """A profile for every provider with at least :data:`MIN_ANSWERS` answers."""
    first: dict[str, list[float]] = defaultdict(list)
    rates: dict[str, list[float]] = defaultdict(list)
    failed: dict[str, int] = defaultdict(int)
    for row in rows:
        answered = _provider(row.target) if row.target else None
        for tried in filter(None, (row.targets or "").split(",")):
            if _provider(tried) != answered:
                failed[_provider(tried)] += 1  # tried, and the answer came from elsewhere
        if answered is None:
            continue
        ttft = row.ttft_ms if row.ttft_ms is not None else row.latency_ms
        first[answered].append(max(ttft / 1000, FLOOR))
        rest = (row.latency_ms - ttft) / 1000
        if row.ttft_ms is not None and row.tokens_out and row.tokens_out > 1 and rest > 0:
            rates[answered].append((row.tokens_out - 1) / rest)
    profiles = {}
    for name, times in first.items():
        if len(times) < MIN_ANSWERS:
            continue
        median = statistics.median(times)
        latency = SimulatedLatency(median=median, p99=max(_quantile(times, 0.99), median))
        attempts = len(times) + failed[name]
        profiles[name] = SimulateProfile(
            latency=latency,
            error_rate=failed[name] / attempts,
            tokens_per_second=statistics.median(rates[name]) if rates[name] else 200.0,
        )
    return profiles


def fit_ledger(path: str) -> Mapping[str, SimulateProfile]:
    """:func:`fit` over every request row of the ledger at ``path`` (read only).

    Raises:
        ValueError: the file is not a readable usage ledger.
    """
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
            cursor = db.execute(
                "SELECT target, targets, latency_ms, ttft_ms, tokens_out FROM requests"
            )
            return fit(LedgerRow(*row) for row in cursor)
    except sqlite3.Error as exc:
        raise ValueError(f"cannot read the usage ledger {path}: {exc}") from exc
