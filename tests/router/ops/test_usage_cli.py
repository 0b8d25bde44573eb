"""``llm-router usage`` on a filled ledger: the table (groups, then the total), the JSON
report, the time range it reads, and a time it cannot read refused with exit code 2."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING

import orjson

from router.ops._cli import main
from router.ops._usage_db import insert, open_writer
from tests.router.ops.test_usage_db import row

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC).timestamp()
DAY = 86_400.0


def ledger(tmp_path: Path) -> Path:
    """A config naming a ledger with four rows on 2027-03-10 and one two days before."""
    db = tmp_path / "usage.db"
    writer = open_writer(str(db))
    insert(
        writer,
        [
            row(NOW - 1, "team", "a", 10, tokens_in=5, tokens_out=1, cost_usd=0.5),
            row(NOW - 2, "team", "a", 30, tokens_in=5, tokens_out=1, cost_usd=0.5),
            row(NOW - 3, "team", "a", 20, status=502, outcome="upstream_error"),
            row(NOW - 4, "team", "b", 40, cost_usd=2.0, tokens_cached=7),
            row(NOW - 2 * DAY, None, "b", 50, cost_usd=1.0),
        ],
    )
    writer.close()
    config = tmp_path / "router.toml"
    config.write_text(
        f'[server]\nusage_db = "{db}"\n\n[providers.sim]\nkind = "simulated"\n\n'
        '[routes.chat]\nfallback = ["sim:echo"]\n'
    )
    return config


def test_the_table_has_a_line_per_group_then_the_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(ledger(tmp_path))
    args = ["usage", "--config", config, "--by", "key", "--by", "model", "--by", "key"]
    assert main([*args, "--since", "2027-03-01", "--until", "2027-04-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "from 2027-03-01T00:00:00Z to 2027-04-01T00:00:00Z"
    # key given twice groups once; a keyless row shows "-"; numbers are right-aligned
    assert lines[1].split() == [
        *("key", "model", "requests", "errors", "tokens", "in", "tokens", "out"),
        *("cached", "cost", "USD", "p50", "ms"),
    ]
    assert lines[2].split() == ["-", "b", "1", "0", "0", "0", "0", "1.0000", "50"]
    assert lines[3].split() == ["team", "a", "3", "1", "10", "2", "0", "1.0000", "20"]
    assert lines[4].split() == ["team", "b", "1", "0", "0", "0", "7", "2.0000", "40"]
    assert lines[5].split() == ["total", "5", "1", "10", "2", "7", "4.0000", "30"]
    assert len(lines) == 6


def test_without_groups_only_the_total_over_the_range(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(ledger(tmp_path))
    assert main(["usage", "--config", config, "--since", "2027-03-10"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "from 2027-03-10T00:00:00Z to now"
    assert lines[2].split() == ["4", "1", "10", "2", "7", "3.0000", "20"]
    assert main(["usage", "--config", config, "--until", "2000-01-01"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "from the first row to 2000-01-01T00:00:00Z"
    assert lines[2].split() == ["0", "0", "0", "0", "0", "0.0000", "-"]  # no median of nothing


def test_the_json_report_carries_the_range_groups_and_total(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = str(ledger(tmp_path))
    assert main(["usage", "--config", config, "--by", "day", "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert (report["since"], report["until"], report["by"]) == (None, None, ["day"])
    assert [(g["day"], g["requests"]) for g in report["groups"]] == [
        ("2027-03-08", 1),
        ("2027-03-10", 4),
    ]
    assert report["total"]["requests"] == 5
    assert report["total"]["cost_usd"] == 4.0
    assert report["total"]["p50_latency_ms"] == 30


def test_a_time_it_cannot_read_is_refused_before_the_file_is_opened(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = str(tmp_path / "absent.toml")  # not read: the time fails first
    assert main(["usage", "--config", missing, "--since", "last week"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("llm-router usage: ")
    assert "7d" in err  # the message shows a form that works
    assert main(["usage", "--config", missing, "--until", "soon"]) == 2
