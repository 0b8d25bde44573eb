"""A Redis with a password and a unix socket: AUTH with the password, reached by
``unix://``; a wrong password keeps the link degraded and is never shown."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from router.traffic.shared._link import SharedLink
from rules import RedisURL, SharedState

from .conftest import REDIS, RedisServer

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

PASSWORD = "s3cret-redis-pass"


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[RedisServer]:
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    sock = tmp_path / "r.sock"
    server = RedisServer(tmp_path, "--requirepass", PASSWORD, "--unixsocket", str(sock))
    await server.start()
    try:
        yield server
    finally:
        server.stop()


async def first_state(link: SharedLink) -> dict[str, object]:
    async with trio.open_nursery() as nursery:
        await nursery.start(link.run)
        state = link.snapshot()
        nursery.cancel_scope.cancel()
    return state


@pytest.mark.parametrize("over", ["tcp", "unix"])
async def test_the_password_opens_it(guarded: RedisServer, over: str) -> None:
    url = guarded.url if over == "tcp" else f"unix://{guarded.folder / 'r.sock'}?db=1"
    link = SharedLink(SharedState(RedisURL.parse(url), timeout=2.0), PASSWORD)
    assert (await first_state(link))["state"] == "ok"


async def test_a_wrong_password_is_refused_and_never_shown(
    guarded: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    link = SharedLink(SharedState(RedisURL.parse(guarded.url), timeout=2.0), "wrong-pass-123")
    state = await first_state(link)
    assert state["state"] == "degraded"
    assert "WRONGPASS" in str(state["reason"])
    assert "wrong-pass" not in str(state) + caplog.text
    assert PASSWORD not in str(state) + caplog.text
