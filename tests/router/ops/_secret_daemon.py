"""A daemon whose keys live in ``file:`` secrets, for the secret-reload tests."""

from __future__ import annotations

from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import httpx2
import trio

from router import run_daemon

if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from pathlib import Path

__all__ = ["CONFIG", "HI", "chat", "daemon", "write_secret"]

HI = {"model": "chat", "messages": [{"role": "user", "content": "hi"}]}

CONFIG = """
[server]
access_log = false
watch = false
api_keys = ["file:secrets/client.key"]

[providers.up]
kind = "openai"
base_url = "{url}"
api_key = "file:secrets/up.key"

[routes.chat]
fallback = ["up:gpt-4o"]
"""


@asynccontextmanager
async def daemon(path: Path) -> AsyncIterator[httpx2.AsyncClient]:
    async with trio.open_nursery() as nursery:
        binds = await nursery.start(partial(run_daemon, str(path), "127.0.0.1:0"))
        async with httpx2.AsyncClient(base_url=binds[0], trust_env=False) as client:
            yield client
        nursery.cancel_scope.cancel()


def write_secret(path: Path, value: str) -> None:
    path.write_text(value + "\n")
    path.chmod(0o600)


async def chat(client: httpx2.AsyncClient, key: str) -> int:
    headers = {"authorization": f"Bearer {key}"}
    response = await client.post("/v1/chat/completions", json=HI, headers=headers)
    return response.status_code
