"""A reload that changes who may call says so loudly (WARNING), over loopback: keys
enabled, changed, and disabled."""

from __future__ import annotations

import logging
from functools import partial
from typing import TYPE_CHECKING

import httpx2
import trio

from router import run_daemon

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

CONFIG = """
[server]
listen = ["127.0.0.1:0"]
access_log = false
watch = false
api_keys = [{keys}]

[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]
"""


def warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    found = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    caplog.clear()
    return found


async def test_auth_changes_are_logged_as_warnings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    for name in ("A", "B", "C"):
        monkeypatch.setenv(f"CLIENT_KEY_{name}", f"client-key-{name.lower()}")
    path = tmp_path / "router.toml"
    path.write_text(CONFIG.format(keys=""))
    caplog.set_level(logging.INFO, logger="llm_router")
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, str(path)))
        async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:

            async def reload(keys: str) -> list[str]:
                path.write_text(CONFIG.format(keys=keys))
                assert (await client.post("/admin/reload")).json()["changed"] is True
                return warnings(caplog)

            assert await reload('"env:CLIENT_KEY_A", "env:CLIENT_KEY_B"') == [
                "reload (request): client keys enabled: 2 key(s)"
            ]
            assert await reload('"env:CLIENT_KEY_A", "env:CLIENT_KEY_C"') == [
                "reload (request): client keys changed: 1 key(s) added, 1 removed, 2 in force"
            ]
            # The order of the keys is no change of who may call.
            assert await reload('"env:CLIENT_KEY_C", "env:CLIENT_KEY_A"') == []
            assert await reload("") == [
                "reload (request): client keys disabled: every caller is let in (2 key(s) removed)"
            ]
        nursery.cancel_scope.cancel()
