"""``simulate --fit``: providers played as the usage ledger saw them."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from router.ops._cli import main
from router.ops._simulate_fit import MIN_ANSWERS, LedgerRow, fit, fit_ledger
from router.ops._usage_db import COLUMNS, insert, open_writer

if TYPE_CHECKING:
    from pathlib import Path

CONFIG = """
[providers.up]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "env:NO_KEY"

[providers.other]
kind = "openai"
base_url = "http://127.0.0.1:9/v1"
api_key = "env:NO_KEY"

[routes.chat]
fallback = ["up:m", "other:m"]
"""


def _row(
    target: str | None, targets: str, latency: float, ttft: float | None, out: int
) -> tuple[object, ...]:
    values = dict.fromkeys(COLUMNS)
    values.update(
        ts=0.0, request_id="r", endpoint="chat", status=200 if target else 502,
        target=target, targets=targets, latency_ms=latency, ttft_ms=ttft, tokens_out=out,
        attempts=len(targets.split(",")), resumes=0,
    )  # fmt: skip
    return tuple(values[c] for c in COLUMNS)


def _ledger(path: Path) -> str:
    """Up: 100 ms to its first token (p99 about 1 s), 50 tokens a second after it, one
    attempt in five failed (then answered by other)."""
    rows = []
    for i in range(100):
        ttft = 1000.0 if i == 99 else 100.0
        rows.append(_row("up:m", "up:m", ttft + 1000.0, ttft, 51))
    rows += [_row("other:m", "up:m,other:m", 300.0, None, 5) for _ in range(25)]
    connection = open_writer(str(path))
    try:
        insert(connection, rows)
    finally:
        connection.close()
    return str(path)


def test_profiles_are_fitted_from_answers_failures_and_rates(tmp_path: Path) -> None:
    profiles = fit_ledger(_ledger(tmp_path / "usage.db"))
    up = profiles["up"]
    assert up.latency.median == pytest.approx(0.1)
    assert up.latency.p99 == pytest.approx(1.0)
    assert up.error_rate == pytest.approx(25 / 125)
    assert up.tokens_per_second == pytest.approx(50.0)
    other = profiles["other"]
    assert other.latency.median == pytest.approx(0.3)  # no first-token time: the whole
    assert other.error_rate == 0.0
    assert other.tokens_per_second == 200.0  # no stream to measure: the default


def test_a_provider_with_few_answers_keeps_its_defaults() -> None:
    rows = [LedgerRow("up:m", "up:m", 100.0, None, 1)] * (MIN_ANSWERS - 1)
    assert fit(rows) == {}


def test_cli_fit_changes_the_figures_and_the_config_table_wins(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = _ledger(tmp_path / "usage.db")
    config = tmp_path / "router.toml"
    config.write_text(f'[server]\nusage_db = "{ledger}"\n' + CONFIG)
    args = ["simulate", "--config", str(config), "--duration", "2m", "--json"]

    def p50(*extra: str) -> float:
        assert main([*args, *extra]) == 0
        figures = json.loads(capsys.readouterr().out)["configs"][0]["routes"]["chat"]
        return float(figures["latency"]["p50"])

    defaults, fitted = p50(), p50("--fit")
    assert fitted != defaults
    pinned = '\n[simulate.providers.up]\nlatency = { median = "80ms", p99 = "600ms" }\n'
    config.write_text(config.read_text() + pinned)
    assert p50("--fit", ledger) != fitted


def test_cli_fit_without_a_ledger_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "router.toml"
    config.write_text(CONFIG)
    assert main(["simulate", "--config", str(config), "--fit"]) == 1
    assert "--fit needs a usage ledger" in capsys.readouterr().err
    assert main(["simulate", "--config", str(config), "--fit", str(tmp_path / "no.db")]) == 1
    assert "cannot read the usage ledger" in capsys.readouterr().err
