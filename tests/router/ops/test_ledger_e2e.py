"""The usage ledger over loopback: the daemon serving the official OpenAI SDK against a
fake upstream writes one row per request (chat, stream, embeddings, an error), shows
the figures in ``/admin/status``, and ``llm-router usage`` reports them."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

import httpx2
import openai
import orjson
import pytest
import trio

from router.ops._cli import main
from router.ops._usage_db import BUSY_TIMEOUT

if TYPE_CHECKING:
    from pathlib import Path

    from openai.types.chat import ChatCompletionMessageParam

    from tests.conftest import RouterFactory
    from tests.fakes.openai_upstream import FakeOpenAI

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi there"}]


def config(url: str, db: Path) -> str:
    return f"""
[server]
usage_db = "{db}"
access_log = false

[defaults]
retries = 0

[providers.up]
kind = "openai"
base_url = "{url}"

[routes.chat]
fallback = ["up:fail-500", "up:gpt-4o-mini"]

[routes.broken]
fallback = ["up:fail-500"]

[routes.embed]
fallback = ["up:text-embedding-3-small"]

[prices]
"up:gpt-4o-mini" = {{ input = 1_000_000, output = 2_000_000 }}
"up:text-embedding-3-small" = {{ input = 1_000_000, output = 0 }}

[keys.team]
secret = "env:TEAM_KEY"
"""


@pytest.fixture(autouse=True)
def team_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEAM_KEY", "team-key-1")


def rows(db: Path) -> list[dict[str, Any]]:
    connection = sqlite3.connect(db)
    connection.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in connection.execute("SELECT * FROM requests ORDER BY id")]
    finally:
        connection.close()


async def ask_four(url: str) -> None:
    """A chat, a stream, embeddings and an error, with the team's key."""
    async with openai.AsyncOpenAI(
        base_url=f"{url}/v1", api_key="team-key-1", max_retries=0
    ) as client:
        await client.chat.completions.create(model="chat", messages=HI)
        stream = await client.chat.completions.create(
            model="chat", messages=HI, stream=True, stream_options={"include_usage": True}
        )
        async for _ in stream:
            pass
        await client.embeddings.create(model="embed", input=["one", "two"])
        with pytest.raises(openai.APIStatusError) as failed:
            await client.chat.completions.create(model="broken", messages=HI)
        assert failed.value.status_code == 502
    await recorded(url, 4)


async def recorded(url: str, count: int) -> None:
    """Wait until ``count`` rows are recorded: a request's row is recorded just after its
    last byte, and stopping the daemon by cancellation (as tests do; SIGTERM drains
    first) must not overtake the last one."""
    with trio.fail_after(30):  # a hang guard
        while True:
            usage = (await admin_status(url))["usage"]
            if usage["rows_written"] + usage["rows_pending"] == count:
                return
            await trio.sleep(0.01)


async def written(url: str, count: int, within: float = 30) -> None:
    """Wait until ``count`` rows are written (``within``: a hang guard)."""
    with trio.fail_after(within):
        while True:
            if (await admin_status(url))["usage"]["rows_written"] >= count:
                return
            await trio.sleep(0.05)


async def admin_status(url: str) -> dict[str, Any]:
    async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
        state: dict[str, Any] = (await raw.get("/admin/status")).json()
    return state


async def test_a_row_per_request_chat_stream_embeddings_and_an_error(
    start_router: RouterFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "usage.db"
    async with start_router(config(fake_openai.url, db)) as url:
        await ask_four(url)
        spent = (await admin_status(url))["traffic"]["budgets"]["team"]["spent_day"]
    # The daemon stopped: its last rows were written on the way out.
    chat, stream, embed, error = rows(db)
    for row in (chat, stream, embed, error):
        assert row["key"] == "team"  # the key's name, never its secret
        assert row["request_id"]
        assert row["latency_ms"] > 0
    assert "team-key-1" not in db.read_bytes().decode("latin-1")
    assert chat["endpoint"] == stream["endpoint"] == "chat"
    for row in (chat, stream):
        assert row["route"] == "chat"
        assert row["status"] == 200
        assert row["outcome"] == "ok"
        assert row["target"] == "up:gpt-4o-mini"
        assert row["model"] == "gpt-4o-mini"
        assert row["targets"] == "up:fail-500,up:gpt-4o-mini"  # tried in order
        assert row["attempts"] == 2
        assert (row["tokens_in"], row["tokens_out"]) == fake_openai.USAGE
        assert (row["tokens_cached"], row["tokens_reasoning"]) == fake_openai.DETAILS
        assert row["cost_usd"] > 0
    assert chat["ttft_ms"] is None
    assert stream["ttft_ms"] is not None
    assert embed["endpoint"] == "embeddings"
    assert embed["target"] == "up:text-embedding-3-small"
    assert embed["tokens_out"] == 0
    assert embed["tokens_in"] > 0
    assert embed["cost_usd"] == pytest.approx(embed["tokens_in"])  # a dollar a token
    assert error["route"] == "broken"
    assert error["status"] == 502
    assert error["outcome"] == "upstream_error"
    assert error["target"] is None
    assert error["targets"] == "up:fail-500"
    assert error["error"]
    assert error["cost_usd"] is None
    assert sum(r["cost_usd"] or 0 for r in (chat, stream, embed, error)) == pytest.approx(spent)


async def test_admin_status_shows_today_and_the_last_day_by_key(
    start_router: RouterFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    db = tmp_path / "usage.db"
    async with start_router(config(fake_openai.url, db)) as url:
        state = await admin_status(url)
        assert state["usage"]["path"] == str(db)
        await ask_four(url)
        await written(url, 4)
        state = await admin_status(url)
        spent = state["traffic"]["budgets"]["team"]["spent_day"]
    usage = state["usage"]
    assert usage["rows_dropped"] == 0
    for span in ("today", "last_24h"):
        figures = usage[span]
        assert figures["requests"] == 4
        assert figures["errors"] == 1
        assert figures["cost_usd"] == pytest.approx(spent)
        team = figures["by_key"]["team"]
        assert team["requests"] == 4
        assert team["cost_usd"] == pytest.approx(spent)
        assert team["p50_latency_ms"] > 0


async def test_usage_reports_spend_by_key_and_model_last_week(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    db = tmp_path / "usage.db"
    async with start_router(config(fake_openai.url, db)) as url:
        await ask_four(url)
    path = str(tmp_path / "router.toml")
    capsys.readouterr()
    week = ["usage", "--config", path, "--since", "7d", "--by", "key", "--by", "model"]
    assert main([*week, "--json"]) == 0
    report = orjson.loads(capsys.readouterr().out)
    assert report["by"] == ["key", "model"]
    groups = {(g["key"], g["model"]): g for g in report["groups"]}
    assert set(groups) == {
        ("team", None),  # the error: no target answered
        ("team", "gpt-4o-mini"),
        ("team", "text-embedding-3-small"),
    }
    chats = groups[("team", "gpt-4o-mini")]
    assert chats["requests"] == 2
    assert chats["errors"] == 0
    assert chats["tokens_in"] == 2 * fake_openai.USAGE[0]
    assert chats["tokens_out"] == 2 * fake_openai.USAGE[1]
    assert groups[("team", None)]["errors"] == 1
    total = report["total"]
    assert total["requests"] == 4
    assert total["cost_usd"] == pytest.approx(sum(g["cost_usd"] for g in report["groups"]))
    assert total["p50_latency_ms"] > 0

    assert main(week) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].startswith("from ")
    assert table[1].split() == [
        "key", "model", "requests", "errors", "tokens", "in", "tokens", "out", "cached",
        "cost", "USD", "p50", "ms",
    ]  # fmt: skip
    line = next(x for x in table if "gpt-4o-mini" in x).split()
    assert line[:6] == ["team", "gpt-4o-mini", "2", "0", "14", "10"]
    assert line[7] == f"{chats['cost_usd']:.4f}"
    assert table[-1].split()[:2] == ["total", "4"]

    # Nothing after now; a date that is not one is refused with the forms it takes.
    assert main(["usage", "--config", path, "--since", "2999-01-01", "--json"]) == 0
    assert orjson.loads(capsys.readouterr().out)["total"]["requests"] == 0
    assert main(["usage", "--config", path, "--since", "last week"]) == 2
    assert "7d" in capsys.readouterr().err


async def test_a_locked_ledger_holds_no_request(
    start_router: RouterFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    """Another process holds the file's write lock: requests are answered all the same,
    their rows wait in memory, and are written once the lock is let go."""
    db = tmp_path / "usage.db"
    async with start_router(config(fake_openai.url, db)) as url:
        locker = sqlite3.connect(db, isolation_level=None, timeout=0)
        locker.execute("BEGIN EXCLUSIVE")
        try:
            await ask_four(url)  # answered while nothing can be written
            usage = (await admin_status(url))["usage"]
            assert usage["rows_written"] == 0
            assert usage["rows_pending"] == 4
            assert locker.execute("SELECT COUNT(*) FROM requests").fetchone()[0] == 0
        finally:
            locker.execute("ROLLBACK")
            locker.close()
        await written(url, 4, within=3 * BUSY_TIMEOUT)
    assert len(rows(db)) == 4


async def test_a_reload_flushes_and_moves_the_ledger_to_its_new_file(
    start_router: RouterFactory, fake_openai: FakeOpenAI, tmp_path: Path
) -> None:
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    toml = config(fake_openai.url, old).replace("[server]", "[server]\nwatch = false")
    path = tmp_path / "router.toml"

    async def reload(db: Path) -> httpx2.Response:
        path.write_text(toml.replace(str(old), str(db)))
        async with httpx2.AsyncClient(base_url=url, trust_env=False) as raw:
            return await raw.post("/admin/reload")

    async with (
        start_router(toml) as url,
        openai.AsyncOpenAI(base_url=f"{url}/v1", api_key="team-key-1", max_retries=0) as client,
    ):
        await client.chat.completions.create(model="chat", messages=HI)
        refused = await reload(tmp_path / "missing" / "usage.db")
        assert refused.status_code == 422
        assert "server.usage_db" in refused.json()["errors"][0]
        await client.chat.completions.create(model="chat", messages=HI)
        assert (await reload(new)).status_code == 200
        assert len(rows(old)) == 2  # a reload writes what waits
        await client.chat.completions.create(model="chat", messages=HI)
        assert (await admin_status(url))["usage"]["path"] == str(new)
        await recorded(url, 3)
    assert len(rows(new)) == 1
    assert len(rows(old)) == 2
