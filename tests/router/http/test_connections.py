"""Client connections end when they should: hostile or careless clients can't pin them.

Raw sockets against the daemon, because what is tested is the connection itself: that
it is closed after ``Connection: close`` and HTTP/1.0 answers, after an idle keep-alive,
after a request that does not arrive within ``read_timeout``, and that a key is checked
before a body is read.
"""

from __future__ import annotations

import json
import os
import signal
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing

from router import run_daemon

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from tests.conftest import RouterFactory

CONFIG = """
[server]
{server}

[providers.sim]
kind = "simulated"
latency = {{ median = "1ms", p99 = "2ms" }}
tokens_per_second = 100000

[routes.chat]
fallback = ["sim:echo"]
"""

KEYED = 'api_keys = ["env:LLM_ROUTER_TEST_CLIENT_KEY"]'
BODY = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "hi"}]}).encode()


def _host_port(url: str) -> tuple[str, int]:
    host, port = url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


async def _connect(url: str) -> trio.SocketStream:
    return await trio.open_tcp_stream(*_host_port(url))


def _request(
    path: str = "/v1/chat/completions",
    body: bytes = BODY,
    *,
    version: str = "1.1",
    headers: str = "",
    length: int | None = None,
) -> bytes:
    head = (
        f"POST {path} HTTP/{version}\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body) if length is None else length}\r\n{headers}\r\n"
    )
    return head.encode() + body


async def _read_until_closed(stream: trio.SocketStream) -> bytes:
    """Everything the server sends until it closes the connection."""
    received = b""
    while chunk := await stream.receive_some(65536):
        received += chunk
    return received


async def _read_answer(stream: trio.SocketStream) -> bytes:
    """One whole answer with a content-length (the connection stays open)."""
    received = b""
    while b"\r\n\r\n" not in received:
        chunk = await stream.receive_some(65536)
        assert chunk, f"closed before an answer: {received!r}"
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
    while len(body) < length:
        body += await stream.receive_some(65536)
    return received


@pytest.mark.parametrize(
    ("version", "headers"), [("1.1", "connection: close\r\n"), ("1.0", "")], ids=["close", "1.0"]
)
async def test_connection_closed_after_the_answer(
    start_router: RouterFactory, version: str, headers: str
) -> None:
    async with start_router(CONFIG.format(server="")) as url, await _connect(url) as stream:
        await stream.send_all(_request(version=version, headers=headers))
        with trio.fail_after(5):
            received = await _read_until_closed(stream)
        assert received.startswith(b"HTTP/1.1 200"), received[:80]
        assert b'"content":' in received


async def test_idle_keepalive_connection_closed_after_a_chat_request(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_ROUTER_TEST_CLIENT_KEY", "sk-client-good")
    server = f'{KEYED}\nkeepalive_timeout = "0.2s"'
    async with start_router(CONFIG.format(server=server)) as url, await _connect(url) as stream:
        await stream.send_all(_request(headers="authorization: Bearer sk-client-good\r\n"))
        answer = await _read_answer(stream)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
        with trio.fail_after(5):  # closed once idle for keepalive_timeout
            assert await _read_until_closed(stream) == b""


async def test_a_keepalive_connection_the_client_ends_is_closed_at_once(
    start_router: RouterFactory,
) -> None:
    # Not held for keepalive_timeout, a descriptor and a max_connections place each:
    # found by the soak (tests/soak/run.py), as descriptors that did not come back.
    server = 'keepalive_timeout = "60s"'
    async with start_router(CONFIG.format(server=server)) as url, await _connect(url) as stream:
        await stream.send_all(_request())
        answer = await _read_answer(stream)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:80]
        # The server is done with the answer and waits for the next request (a client
        # that closes sooner races the server's own cleanup, which then closes it).
        await trio.testing.wait_all_tasks_blocked()
        await stream.send_eof()  # the client's end: the server reads EOF
        with trio.fail_after(5):
            assert await _read_until_closed(stream) == b""


async def test_key_is_checked_before_the_body_is_read(
    start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LLM_ROUTER_TEST_CLIENT_KEY", "sk-client-good")
    async with start_router(CONFIG.format(server=KEYED)) as url, await _connect(url) as stream:
        # Headers announce 4 MiB; not one byte of it is sent.
        await stream.send_all(_request(body=b"", length=4 * 1024 * 1024))
        with trio.fail_after(5):
            received = await _read_until_closed(stream)
        assert received.startswith(b"HTTP/1.1 401"), received[:80]
        assert b"connection: close" in received.lower()


async def test_withheld_body_gets_408_after_read_timeout(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock
) -> None:
    server = 'read_timeout = "3s"'
    async with start_router(CONFIG.format(server=server)) as url, await _connect(url) as stream:
        await stream.send_all(_request(length=len(BODY))[:-1])  # all but the last byte
        start = trio.current_time()
        received = await _read_until_closed(stream)
        assert received.startswith(b"HTTP/1.1 408"), received[:80]
        assert trio.current_time() - start == pytest.approx(3, abs=0.1)


async def test_withheld_headers_are_cut_after_read_timeout(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock
) -> None:
    server = 'read_timeout = "3s"\nkeepalive_timeout = "60s"'
    async with start_router(CONFIG.format(server=server)) as url, await _connect(url) as stream:
        start = trio.current_time()
        for piece in (b"POST /v1/chat/completions HTTP/1.1\r\n", b"host: 127.0.0.1\r\n"):
            await stream.send_all(piece)  # a header a second: slow, but never idle long
            await trio.sleep(1)
        received = await _read_until_closed(stream)
        assert received.startswith(b"HTTP/1.1 408"), received[:80]
        assert trio.current_time() - start == pytest.approx(3, abs=0.1)


class EndlessUpstream:
    """An OpenAI-compatible host whose stream never ends: 16 KiB events, as fast as
    they can be written, until the router hangs up (then ``hung_up`` is set)."""

    def __init__(self) -> None:
        self.hung_up = trio.Event()
        self.url = ""

    async def serve(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        self.url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}/v1"
        task_status.started()
        await trio.serve_listeners(self._handle, listeners)

    async def _handle(self, stream: trio.SocketStream) -> None:
        received = b""
        while b"\r\n\r\n" not in received:
            received += await stream.receive_some(65536)
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        delta = {"role": "assistant", "content": "x" * 16384}
        chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 0, "model": "m"}
        event = (
            b"data: " + json.dumps({**chunk, "choices": [{"index": 0, "delta": delta}]}).encode()
        )
        try:
            await stream.send_all(head)
            while True:
                await stream.send_all(event + b"\n\n")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.hung_up.set()


STUCK_CONFIG = """
[server]
drain_timeout = "5s"

[defaults]
stall_timeout = "2s"
timeout = "20s"

[providers.up]
kind = "openai_compatible"
base_url = "{url}"

[routes.chat]
fallback = ["up:m"]
"""


async def test_a_client_that_stops_reading_is_cut_and_its_upstream_closed(
    start_router: RouterFactory, autojump_clock: trio.abc.Clock
) -> None:
    upstream = EndlessUpstream()
    async with trio.open_nursery() as nursery:
        await nursery.start(upstream.serve)
        async with start_router(STUCK_CONFIG.format(url=upstream.url)) as url:
            body = json.dumps({**json.loads(BODY), "stream": True}).encode()
            async with await _connect(url) as stream:
                await stream.send_all(_request(body=body))
                assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 200")
                start = trio.current_time()
                # ... and never reads again: the router's writes fill the socket and stop.
                await upstream.hung_up.wait()
                # Cut after stall_timeout without progress, not at the 20 s deadline.
                assert trio.current_time() - start < 5
        nursery.cancel_scope.cancel()


async def test_drain_timeout_is_a_hard_bound_for_a_client_that_stops_reading(
    tmp_path: Path, autojump_clock: trio.abc.Clock
) -> None:
    upstream = EndlessUpstream()
    async with trio.open_nursery() as nursery:
        await nursery.start(upstream.serve)
        config = tmp_path / "router.toml"
        # The client is never cut for stalling here: only the drain can end it.
        config.write_text(STUCK_CONFIG.format(url=upstream.url).replace('"2s"', '"1h"'))
        daemon_done = trio.Event()

        async def daemon(task_status: trio.TaskStatus[list[str]]) -> None:
            await run_daemon(str(config), "127.0.0.1:0", task_status=task_status)
            daemon_done.set()

        binds = await nursery.start(daemon)
        body = json.dumps({**json.loads(BODY), "stream": True}).encode()
        async with await _connect(binds[0]) as stream:
            await stream.send_all(_request(body=body))
            assert (await stream.receive_some(65536)).startswith(b"HTTP/1.1 200")
            await trio.sleep(1)  # the router's writes fill the socket and block
            os.kill(os.getpid(), signal.SIGTERM)
            start = trio.current_time()
            await daemon_done.wait()
            assert trio.current_time() - start == pytest.approx(5, abs=0.5)  # drain_timeout
            assert upstream.hung_up.is_set()
        nursery.cancel_scope.cancel()


async def test_connections_past_max_connections_are_refused_at_once(
    start_router: RouterFactory,
) -> None:
    async with (
        start_router(CONFIG.format(server="max_connections = 2")) as url,
        await _connect(url) as first,
        await _connect(url) as second,
    ):
        for held in (first, second):  # both served, and kept alive
            await held.send_all(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            assert (await _read_answer(held)).startswith(b"HTTP/1.1 200")
        async with await _connect(url) as third:
            with trio.fail_after(5):
                refused = await _read_until_closed(third)
        assert refused.startswith(b"HTTP/1.1 503"), refused[:80]
        assert b"retry-after: 1" in refused
        assert b"max_connections" in refused


class _Steps(trio.abc.Instrument):
    """Counts the scheduler steps of the task named ``name``."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.count = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        if task.name == self.name:
            self.count += 1


async def test_a_burst_of_connections_is_accepted_in_batches() -> None:
    """Queued connections are taken many per wake-up, not one per scheduler pass."""
    import socket

    from router.http._intake import STARTS_PER_PASS, Intake, accept_forever
    from router.http._overload import Overload

    listening = socket.socket()
    listening.bind(("127.0.0.1", 0))
    listening.listen(256)
    listening.setblocking(False)
    clients = [socket.create_connection(listening.getsockname()) for _ in range(100)]
    accepted: list[trio.SocketStream] = []

    async def handle(
        stream: trio.SocketStream, settled: Callable[[], None] | None, arrived: object
    ) -> None:
        accepted.append(stream)
        if settled is not None:
            settled()  # answered: the place is free for the next connection
        await trio.lowlevel.checkpoint()

    steps = _Steps("accepting")
    trio.lowlevel.add_instrument(steps)
    try:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(
                accept_forever, listening, Intake(Overload()), handle, nursery, name="accepting"
            )
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
    finally:
        trio.lowlevel.remove_instrument(steps)
        for stream in accepted:
            stream.socket.close()
        for client in clients:
            client.close()
        listening.close()
    assert len(accepted) == 100
    # Taken in one step, started a batch a step: a handful, not one step per connection.
    most = 100 // STARTS_PER_PASS + 5
    assert steps.count <= most, f"{steps.count} scheduler steps to accept 100 connections"
