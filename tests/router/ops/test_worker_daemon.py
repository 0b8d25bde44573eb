"""The daemon as one worker of ``serve --workers``, in this process: it serves on the
socket it is handed, says in /admin/status which worker answered, asks (through its
notify socket) for every other worker to reload when it is told to, and drains and
returns once the main process's lifeline ends."""

from __future__ import annotations

import os
import socket
import uuid
from functools import partial
from typing import TYPE_CHECKING

import httpx2
import trio

from router import run_daemon
from router.ops._listeners import open_listeners, url_of
from router.ops._worker import RELOAD_ALL, WorkerSpec

if TYPE_CHECKING:
    from pathlib import Path

    import pytest

CONFIG = """
[server]
listen = ["127.0.0.1:1"]  # not used: a worker serves on what it is handed
access_log = false
watch = false

[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]
"""


def received(sock: socket.socket) -> list[str]:
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


async def test_a_worker_serves_its_socket_and_leaves_with_its_main_process(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.setblocking(False)
    name = f"llm-router-test-{uuid.uuid4().hex}"
    notify.bind("\0" + name)
    monkeypatch.setenv("NOTIFY_SOCKET", "@" + name)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    path = tmp_path / "router.toml"
    path.write_text(CONFIG)
    (sockets,) = open_listeners(["127.0.0.1:0"], 1, 128)
    url = url_of(sockets[0])
    lifeline, held = os.pipe()
    # The daemon owns (and closes) what it is handed: copies of the sockets.
    spec = WorkerSpec(2, 3, tuple(os.dup(s.fileno()) for s in sockets), lifeline, ())
    try:
        with notify:
            async with trio.open_nursery() as nursery:
                await nursery.start(partial(run_daemon, str(path), worker=spec))
                async with httpx2.AsyncClient(base_url=url, trust_env=False) as client:
                    status = (await client.get("/admin/status")).json()
                    assert status["worker"]["index"] == 2
                    assert status["worker"]["of"] == 3
                    assert status["worker"]["pid"] == os.getpid()
                    ready = received(notify)
                    assert ready[-1].startswith("READY=1\nSTATUS=serving on ")
                    reload = await client.post("/admin/reload")
                    assert reload.status_code == 200, reload.text
                    assert received(notify)[-1] == RELOAD_ALL  # the others, through the main
                os.close(held)  # the main process is gone: the worker drains and returns
                held = -1
            assert received(notify)[-1] == "STATUS=drained; closing upstream connections"
    finally:
        if held != -1:
            os.close(held)
        for sock in sockets:
            sock.close()
