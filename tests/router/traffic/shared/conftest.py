"""A real ``redis-server`` on a free loopback port, for the shared-state tests.

Skipped only where ``redis-server`` is not installed (CI installs it: ``.ci/run``).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from functools import partial
from typing import TYPE_CHECKING

import pytest
import trio

if TYPE_CHECKING:
    import ssl
    from collections.abc import AsyncIterator
    from pathlib import Path

REDIS = shutil.which("redis-server")


class RedisServer:
    """One redis-server process that can be stopped and started again on its port.

    With ``tls`` (a context trusting its certificate) it is reached by TLS only: the
    options that give it its certificate are among ``extra``.
    """

    def __init__(self, folder: Path, *extra: str, tls: ssl.SSLContext | None = None) -> None:
        self.folder = folder
        self.extra = list(extra)  # more redis-server options
        self.tls = tls
        with socket.socket() as probe:  # redis takes no port 0: a free one, released
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        assert REDIS is not None
        port = (
            ["--port", "0", "--tls-port", str(self.port)]
            if self.tls
            else ["--port", str(self.port)]
        )
        args = [REDIS, *port, "--bind", "127.0.0.1", "--save", ""]
        args += ["--appendonly", "no", "--dir", str(self.folder), *self.extra]
        self.process = await trio.to_thread.run_sync(partial(_spawn, args))
        with trio.fail_after(10):
            while True:
                try:
                    stream: trio.abc.Stream = await trio.open_tcp_stream("127.0.0.1", self.port)
                except OSError:
                    await trio.sleep(0.02)  # not listening yet
                    continue
                if self.tls is not None:
                    stream = trio.SSLStream(stream, self.tls, server_hostname="127.0.0.1")
                await stream.send_all(b"PING\r\n")
                reply = await stream.receive_some(100)
                await stream.aclose()
                if reply.startswith((b"+PONG", b"-NOAUTH")):
                    return
                await trio.sleep(0.02)  # loading

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(args, stdout=subprocess.DEVNULL)


@pytest.fixture
async def redis_server(tmp_path: Path) -> AsyncIterator[RedisServer]:
    if REDIS is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    await server.start()
    try:
        yield server
    finally:
        server.stop()
