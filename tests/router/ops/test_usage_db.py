"""The ledger's file: a versioned schema in WAL mode; paths ``check`` refuses, with the
key path; a file of a newer version or of another program refused, never rewritten;
the report's groups, medians and time forms."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from router.ops._cli import main
from router.ops._usage_db import (
    COLUMNS,
    VERSION,
    UsageDbError,
    check_path,
    insert,
    open_reader,
    open_writer,
)
from router.ops._usage_report import figures, parse_when, spend_in_periods
from router.ops._usage_row import endpoint_of

if TYPE_CHECKING:
    from pathlib import Path

NOW = datetime(2027, 3, 10, 12, 0, tzinfo=UTC).timestamp()


def row(
    ts: float, key: str | None, model: str, latency: float, **more: object
) -> tuple[object, ...]:
    values: dict[str, object] = dict.fromkeys(COLUMNS)
    values.update(ts=ts, request_id="r", endpoint="chat", key=key, route="chat", status=200)
    values.update(target=f"up:{model}", model=model, latency_ms=latency, attempts=1, resumes=0)
    values.update(more)
    return tuple(values[c] for c in COLUMNS)


def test_a_new_file_is_in_wal_mode_at_the_current_version(tmp_path: Path) -> None:
    db = tmp_path / "usage.db"
    open_writer(str(db)).close()
    connection = sqlite3.connect(db)
    try:
        assert connection.execute("PRAGMA user_version").fetchone()[0] == VERSION == 1
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        columns = [r[1] for r in connection.execute("PRAGMA table_info(requests)")]
    finally:
        connection.close()
    assert columns == ["id", *COLUMNS]
    open_writer(str(db)).close()  # opened again: nothing to migrate, nothing lost


def test_a_newer_or_foreign_file_is_refused_and_left_alone(tmp_path: Path) -> None:
    newer = tmp_path / "newer.db"
    open_writer(str(newer)).close()
    connection = sqlite3.connect(newer)
    connection.execute("PRAGMA user_version = 7")
    connection.close()
    foreign = tmp_path / "foreign.db"
    connection = sqlite3.connect(foreign)
    connection.execute("CREATE TABLE requests (x)")
    connection.close()
    for path, words in ((newer, "newer llm-router (schema 7"), (foreign, "unknown shape")):
        before = path.read_bytes()
        with pytest.raises(UsageDbError, match=r"server\.usage_db: .*" + words.replace("(", r"\(")):
            open_writer(str(path))
        assert path.read_bytes() == before
    with pytest.raises(UsageDbError, match="newer"):
        open_reader(str(newer))
    not_sqlite = tmp_path / "notes.txt"
    not_sqlite.write_text("not a database, but long enough to have a header " * 4)
    with pytest.raises(UsageDbError, match="cannot be"):
        check_path(str(not_sqlite))


def test_check_names_the_key_path_of_a_usage_db_it_cannot_create(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "router.toml"
    for db, problem in (
        (tmp_path / "missing" / "usage.db", "its folder"),
        (tmp_path, "is a folder"),
    ):
        config.write_text(
            f'[server]\nusage_db = "{db}"\n\n[providers.sim]\nkind = "simulated"\n\n'
            '[routes.chat]\nfallback = ["sim:echo"]\n'
        )
        assert main(["check", str(config)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"server.usage_db: {db}")
        assert problem in err
    good = tmp_path / "usage.db"
    config.write_text(config.read_text().replace(f'"{tmp_path}"', f'"{good}"'))
    assert main(["check", str(config)]) == 0
    assert not good.exists()  # check creates nothing


def test_figures_group_sum_and_take_the_nearest_rank_median(tmp_path: Path) -> None:
    db = str(tmp_path / "usage.db")
    writer = open_writer(db)
    day = 86_400.0
    insert(
        writer,
        [
            row(NOW - 1, "team", "a", 10, tokens_in=5, tokens_out=1, cost_usd=0.5),
            row(NOW - 2, "team", "a", 30, tokens_in=5, tokens_out=1, cost_usd=0.5),
            row(NOW - 3, "team", "a", 20, status=502, outcome="upstream_error"),
            row(NOW - 4, "team", "b", 40, cost_usd=2.0),
            row(NOW - 2 * day, None, "b", 50, cost_usd=1.0),
        ],
    )
    writer.close()
    reader = open_reader(db)
    try:
        by_key_model = figures(reader, ("key", "model"))
        assert [(g["key"], g["model"]) for g in by_key_model] == [
            (None, "b"),  # no client keys configured: NULL sorts first
            ("team", "a"),
            ("team", "b"),
        ]
        team_a = by_key_model[1]
        assert (team_a["requests"], team_a["errors"]) == (3, 1)
        assert (team_a["tokens_in"], team_a["tokens_out"]) == (10, 2)
        assert team_a["cost_usd"] == 1.0
        assert team_a["p50_latency_ms"] == 20  # of 10, 20, 30
        (total,) = figures(reader)
        assert total["requests"] == 5
        assert total["p50_latency_ms"] == 30  # of 10 .. 50
        (recent,) = figures(reader, since=NOW - day)
        assert recent["requests"] == 4
        assert recent["p50_latency_ms"] == 20  # of 10, 20, 30, 40: the 2nd
        days = figures(reader, ("day",), until=NOW)
        assert [(d["day"], d["requests"]) for d in days] == [("2027-03-08", 1), ("2027-03-10", 4)]
        (nothing,) = figures(reader, since=NOW + 1)
        assert (nothing["requests"], nothing["p50_latency_ms"]) == (0, None)
        spend = spend_in_periods(reader, NOW - 3.5, NOW - 3 * day)
        assert spend == {"team": (1.0, 3.0)}  # keyless rows charge no budget
    finally:
        reader.close()


def test_times_are_dates_durations_back_or_today() -> None:
    assert parse_when("7d", NOW) == NOW - 7 * 86_400
    assert parse_when("24h", NOW) == NOW - 86_400
    assert parse_when("30m", NOW) == NOW - 1800
    assert parse_when("2w", NOW) == NOW - 14 * 86_400
    assert parse_when("today", NOW) == NOW - 12 * 3600
    assert parse_when("2027-03-01", NOW) == datetime(2027, 3, 1, tzinfo=UTC).timestamp()
    assert parse_when("2027-03-01T08:00+01:00", NOW) == parse_when("2027-03-01T07:00", NOW)
    with pytest.raises(ValueError, match="7d"):
        parse_when("last week", NOW)


@pytest.mark.parametrize(
    ("path", "endpoint"),
    [
        ("/v1/chat/completions", "chat"),
        ("/chat/completions", "chat"),
        ("/v1/messages", "messages"),
        ("/v1/responses", "responses"),
        ("/v1/embeddings", "embeddings"),
        ("/embeddings", "embeddings"),
    ],
)
def test_an_endpoint_is_named_by_its_path(path: str, endpoint: str) -> None:
    assert endpoint_of(path) == endpoint


def test_usage_says_why_it_has_nothing_to_report(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "router.toml"
    body = '[providers.sim]\nkind = "simulated"\n\n[routes.chat]\nfallback = ["sim:echo"]\n'
    config.write_text(body)
    assert main(["usage", "--config", str(config)]) == 1
    assert "server.usage_db is not set" in capsys.readouterr().err
    db = tmp_path / "usage.db"
    config.write_text(f'[server]\nusage_db = "{db}"\n\n{body}')
    assert main(["usage", "--config", str(config), "--by", "key"]) == 1
    assert f"server.usage_db: {db} does not exist" in capsys.readouterr().err
