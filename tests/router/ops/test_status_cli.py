"""``llm-router status`` against a running daemon over loopback: the text, the raw JSON,
and an address that answers something other than the status (exit code 1, with why)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import orjson
import trio

from router.ops._cli import main
from router.ops._status import show_status

if TYPE_CHECKING:
    import pytest

    from tests.conftest import RouterFactory

CONFIG = '[providers.sim]\nkind = "simulated"\n\n[routes.chat]\nfallback = ["sim:echo"]\n'


async def test_status_prints_the_routes_and_targets_of_a_ready_daemon(
    start_router: RouterFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with start_router(CONFIG) as url:
        assert await trio.to_thread.run_sync(main, ["status", "--url", f"{url}/"]) == 0
        text = capsys.readouterr().out
        assert "routes: chat" in text
        assert "ready    yes" in text
        header, *rows = text.split("\n\n", 1)[1].splitlines()
        assert header.split()[:2] == ["target", "circuit"]
        assert any(r.split()[:2] == ["sim:echo", "closed"] for r in rows), rows
        code = await trio.to_thread.run_sync(main, ["status", "--url", url, "--json"])
        assert code == 0
        state = orjson.loads(capsys.readouterr().out)
        assert state["ready"] is True
        assert state["rules"]["routes"] == ["chat"]


async def test_an_address_that_is_not_the_daemon_says_what_it_answered(
    start_router: RouterFactory, capsys: pytest.CaptureFixture[str]
) -> None:
    async with start_router(CONFIG) as url:
        code = await trio.to_thread.run_sync(show_status, f"{url}/elsewhere", "unused-key")
    assert code == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"llm-router status: {url}/elsewhere answered HTTP 404\n"
    assert "unused-key" not in captured.err
