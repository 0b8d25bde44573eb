"""Secrets on reload: read off the event loop, within a deadline."""

from __future__ import annotations

import os
import threading
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import trio
import trio.testing

from adapters import provider_kinds
from router.ops import _secrets
from router.ops._secrets import resolve_secrets
from rules import parse_config
from tests.router.ops._secret_daemon import CONFIG, chat, daemon, write_secret

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

    import pytest

    from tests.fakes.openai_upstream import FakeOpenAI


@asynccontextmanager
async def fifo(path: Path, value: str, after: float | None = None) -> AsyncIterator[Path]:
    """A FIFO at ``path``; a writer feeds it ``value`` when the block ends (or after
    ``after`` seconds, for code that would block the event loop on it)."""
    os.mkfifo(path)
    release = threading.Event()

    def writer() -> None:
        release.wait(after)
        with open(path, "w") as pipe:  # blocks until a reader (an abandoned thread) opens
            pipe.write(value + "\n")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(partial(trio.to_thread.run_sync, writer))
        try:
            yield path
        finally:
            release.set()


async def test_a_fifo_secret_times_out_without_blocking(
    tmp_path: Path, autojump_clock: trio.testing.MockClock
) -> None:
    # The clock jumps only once the loop has been idle for real: the other secrets'
    # reads (in threads, which the clock cannot see) finish long before that.
    autojump_clock.autojump_threshold = 0.5
    async with fifo(tmp_path / "key", "sK-fifo-0a1b2c3d") as key:
        text = CONFIG.format(url="http://x/v1").replace("secrets/up.key", str(key))
        config = parse_config(text, kinds=provider_kinds())
        start = trio.current_time()
        found = await resolve_secrets(config)
        assert trio.current_time() - start == _secrets.READ_TIMEOUT == 5.0
    assert found.unreadable[-1] == (
        f"providers.up.api_key: secret file:{key}: not read within 5s (a FIFO with no writer?)"
    )


async def test_a_reload_into_a_fifo_secret_is_refused_while_serving(
    tmp_path: Path, fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_secrets, "READ_TIMEOUT", 0.5)
    (tmp_path / "secrets").mkdir()
    write_secret(tmp_path / "secrets/client.key", "cK-7f3a9e1b-old")
    up_key = tmp_path / "secrets/up.key"
    write_secret(up_key, "uK-5d2c8a4f-old")
    path = tmp_path / "router.toml"
    path.write_text(CONFIG.format(url=fake_openai.url))
    async with daemon(path) as client:
        up_key.unlink()
        # Were the loop blocked on the FIFO, the writer would end the wait after 5 s
        # and the reload would succeed with what it wrote.
        async with fifo(up_key, "uK-from-the-fifo", after=5):
            with trio.fail_after(3):
                answer = (await client.post("/admin/reload")).json()
            assert answer["ok"] is False
            assert answer["errors"] == [
                "providers.up.api_key: secret file:secrets/up.key: not read within"
                " 0.5s (a FIFO with no writer?)"
            ]
            assert (await client.get("/healthz")).status_code == 200
            assert await chat(client, "cK-7f3a9e1b-old") == 200  # the old rules serve on
