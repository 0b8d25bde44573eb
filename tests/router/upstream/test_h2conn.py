"""One HTTP/2 connection: cancellation, flow control, pings and idle deadlines, the
handshake, resets and protocol errors, and its death, against the HTTP/2 server of
tests/fakes/h2_upstream.py."""

from __future__ import annotations

import pytest
import trio
import trio.testing
from h2.errors import ErrorCodes

from adapters import NetworkError, StreamError, Timeout
from router import H2Pool
from router.upstream import _h2conn
from router.upstream._h2conn import STREAM_WINDOW
from tests.fakes.h2_upstream import H2Upstream, Reply, Request, answer
from tests.router.upstream._h2helpers import fetch, in_memory, over_tcp, post, running


async def test_a_cancelled_stream_is_reset_and_the_others_carry_on() -> None:
    release = trio.Event()

    async def respond(request: Request, reply: Reply) -> None:
        await reply.head(200)
        await reply.data(b"first ")
        if request.headers["x-tag"] == "doomed":
            await trio.sleep_forever()
        await release.wait()
        await reply.data(b"last", end=True)

    server = H2Upstream(respond)
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        bodies: dict[str, bytes] = {}
        cancel = trio.CancelScope()

        async def one(tag: str) -> None:
            async with pool.request(post(url, tag=tag)) as response:
                async for data in response.aiter_bytes():
                    bodies[tag] = bodies.get(tag, b"") + data
                    if tag == "doomed":
                        cancel.cancel()

        async def doomed() -> None:
            with cancel:
                await one("doomed")

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one, "a")
            nursery.start_soon(doomed)
            nursery.start_soon(one, "b")
            with trio.fail_after(5):  # a hang guard: the server must see the reset
                await server.reset.wait()
            release.set()
        assert await fetch(pool, post(url)) == (200, b"first last")
    assert bodies == {"a": b"first last", "doomed": b"first ", "b": b"first last"}
    doomed_id = next(r.stream_id for r in server.requests if r.headers["x-tag"] == "doomed")
    assert server.resets == [(0, doomed_id, ErrorCodes.CANCEL)]
    assert len(server.connections) == 1


async def test_a_response_beyond_both_windows_flows_with_backpressure() -> None:
    """Two 10 MiB bodies (past the 4 MiB stream and 16 MiB connection windows); the
    server gets no further than a stream's window ahead of a reader that waits."""
    size = 10 * 1024 * 1024
    replies: list[Reply] = []

    async def respond(request: Request, reply: Reply) -> None:
        replies.append(reply)
        await reply.head(200)
        await reply.data(bytes(range(256)) * (size // 256), end=True)

    server = H2Upstream(respond)
    async with (
        in_memory(server.handle) as url,
        running(H2Pool()) as pool,
        pool.request(post(url)) as slow,
        pool.request(post(url)) as fast,
    ):
        await trio.testing.wait_all_tasks_blocked()
        assert [reply.sent for reply in replies] == [STREAM_WINDOW, STREAM_WINDOW]
        assert len(await fast.aread()) == size
        assert replies[0].sent == STREAM_WINDOW  # the unread one still waits
        body = await slow.aread()
        assert slow.complete
    assert body == bytes(range(256)) * (size // 256)
    assert len(server.connections) == 1


async def test_a_request_body_beyond_the_servers_window_waits_for_window_updates() -> None:
    body = bytes(range(256)) * 4096  # 1 MiB, 16 times the server's 64 KiB window
    server = H2Upstream(initial_window=65535)
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        assert await fetch(pool, post(url, body)) == (200, b"hello")
    assert server.requests[0].body == body
    assert server.requests[0].headers["content-length"] == str(len(body))


async def test_an_idle_connection_is_pinged_then_closed_after_keepalive(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = H2Upstream()
    pool = H2Pool(ping_interval=30, ping_timeout=10, keepalive=100)
    async with in_memory(server.handle) as url, running(pool):
        assert await fetch(pool, post(url)) == (200, b"hello")
        await trio.sleep(99)
        assert server.pings == 3  # at 30, 60 and 90 s: each answered
        assert server.connections[0].closed_at is None
        await trio.sleep(2)
        assert server.connections[0].closed_at == 100
        assert pool.connections == 0
        assert await fetch(pool, post(url)) == (200, b"hello")
    assert len(server.connections) == 2


async def test_a_connection_that_does_not_answer_a_ping_is_closed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = H2Upstream()
    pool = H2Pool(ping_interval=30, ping_timeout=10, keepalive=300)
    async with in_memory(server.handle) as url, running(pool):
        assert await fetch(pool, post(url)) == (200, b"hello")
        server.connections[0].frozen = True  # reads and drops all: no PING answer
        await trio.sleep(45)
        assert server.connections[0].closed_at == 40  # pinged at 30, given up at 40
        assert pool.connections == 0
        assert await fetch(pool, post(url)) == (200, b"hello")
    assert len(server.connections) == 2


async def test_no_settings_from_the_server_is_a_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async def silent(stream: trio.abc.Stream) -> None:
        while await stream.receive_some(65536):
            pass

    async with in_memory(silent) as url, running(H2Pool(connect_timeout=3)) as pool:
        with pytest.raises(Timeout, match="no HTTP/2 SETTINGS within 3 s"):
            await fetch(pool, post(url))
        assert trio.current_time() == 3


async def test_connection_death_fails_each_stream_by_how_far_it_got() -> None:
    got_head = trio.Event()
    both_in = trio.Event()

    async def respond(request: Request, reply: Reply) -> None:
        if request.headers["x-tag"] == "started":
            await reply.head(200)
            await reply.data(b"part")
            got_head.set()
        else:
            both_in.set()
        await trio.sleep_forever()

    server = H2Upstream(respond)
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        errors: dict[str, Exception] = {}
        pieces: list[bytes] = []

        async def read_started() -> None:
            async with pool.request(post(url, tag="started")) as response:
                async for data in response.aiter_bytes():
                    pieces.append(data)

        async def started() -> None:
            with pytest.raises(StreamError, match="closed the connection mid-body") as caught:
                await read_started()
            errors["started"] = caught.value

        async def waiting() -> None:
            with pytest.raises(NetworkError, match="closed the connection") as caught:
                await fetch(pool, post(url, tag="waiting"))
            errors["waiting"] = caught.value

        async with trio.open_nursery() as nursery:
            nursery.start_soon(started)
            nursery.start_soon(waiting)
            await got_head.wait()
            await both_in.wait()
            await server.connections[0].close()
        assert pieces == [b"part"]
        assert set(errors) == {"started", "waiting"}
        assert type(errors["waiting"]) is NetworkError
        server.handler = answer()
        assert await fetch(pool, post(url)) == (200, b"hello")  # a new connection
    assert len(server.connections) == 2


async def test_resets_from_the_server() -> None:
    refused: set[str] = set()

    async def respond(request: Request, reply: Reply) -> None:
        tag = request.headers["x-tag"]
        if tag == "refuse-once" and tag not in refused:
            refused.add(tag)
            await reply.reset(ErrorCodes.REFUSED_STREAM)  # not processed: safe to send again
        elif tag == "before-head":
            await reply.reset(ErrorCodes.INTERNAL_ERROR)
        elif tag == "mid-body":
            await reply.head(200)
            await reply.data(b"part")
            await reply.reset(ErrorCodes.INTERNAL_ERROR)
        else:
            await answer()(request, reply)

    server = H2Upstream(respond)
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        assert await fetch(pool, post(url, tag="refuse-once")) == (200, b"hello")
        with pytest.raises(NetworkError, match=r"reset the stream before answering \(INTERNAL"):
            await fetch(pool, post(url, tag="before-head"))
        with pytest.raises(StreamError, match=r"reset the stream mid-body \(INTERNAL_ERROR\)"):
            await fetch(pool, post(url, tag="mid-body"))
        assert await fetch(pool, post(url)) == (200, b"hello")
    assert len(server.connections) == 1


async def test_a_request_while_a_ping_is_unanswered_waits_for_a_live_connection(
    autojump_clock: trio.testing.MockClock,
) -> None:
    server = H2Upstream()
    pool = H2Pool(ping_interval=30, ping_timeout=10, keepalive=300)
    async with in_memory(server.handle) as url, running(pool):
        assert await fetch(pool, post(url)) == (200, b"hello")
        server.connections[0].frozen = True
        await trio.sleep(35)  # the PING went out at 30
        assert await fetch(pool, post(url)) == (200, b"hello")
        assert trio.current_time() == 40  # not sent on the silent connection
    assert len(server.connections) == 2
    assert [r.connection for r in server.requests] == [0, 1]


async def test_a_body_waits_for_the_window_a_settings_change_opens() -> None:
    body = b"x" * 100_000
    server = H2Upstream(initial_window=0)
    async with in_memory(server.handle) as url, running(H2Pool()) as pool:
        results: list[tuple[int, bytes]] = []

        async def one() -> None:
            results.append(await fetch(pool, post(url, body)))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            assert server.requests == []  # not a byte of the body could go
            await server.connections[0].update_settings(initial_window_size=65535)
    assert results == [(200, b"hello")]
    assert server.requests[0].body == body


async def test_a_protocol_error_closes_the_connection_without_quoting() -> None:
    async def respond(request: Request, reply: Reply) -> None:
        if request.headers["x-tag"] == "break":
            await reply.conn.send_raw(b"\x00\x00\x01\x00\x00\x00\x00\x00\x00x")  # DATA on 0
        await answer()(request, reply)

    server = H2Upstream(respond)
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        with pytest.raises(NetworkError, match=r"broke the HTTP/2 protocol \(\w+\)$"):
            await fetch(pool, post(url, tag="break"))
        assert await fetch(pool, post(url)) == (200, b"hello")
    assert len(server.connections) == 2


async def test_a_connection_running_out_of_stream_ids_is_replaced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Stream ids past 5 count as the last ones: stream 7 is this connection's last.
    monkeypatch.setattr(_h2conn, "_LAST_STREAM_ID", _h2conn._STREAM_ID_MARGIN + 5)
    server = H2Upstream()
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        for _ in range(5):
            assert await fetch(pool, post(url)) == (200, b"hello")
    assert [(r.connection, r.stream_id) for r in server.requests] == [
        (0, 1),
        (0, 3),
        (0, 5),
        (0, 7),
        (1, 1),
    ]
