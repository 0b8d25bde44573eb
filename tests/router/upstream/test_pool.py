"""The h11 keep-alive pool against a real loopback server of our own."""

from __future__ import annotations

import ssl
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import h11
import pytest
import trio
import trustme

from adapters import NetworkError, StreamError, Timeout, UpstreamRequest
from router import H11Pool

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from typing import Literal, TypeAlias

    # What a scripted connection does next: send an h11 event, write raw bytes, or
    # "close" the connection / "hang" reading until the client goes away.
    Step: TypeAlias = h11.Event | bytes | Literal["close", "hang"]


class Server:
    """A tiny HTTP/1.1 server whose per-connection behaviour each test scripts."""

    def __init__(self, respond: Callable[[h11.Request, bytes], list[Step]]) -> None:
        self.respond = respond
        self.connections = 0
        self.requests = 0
        self.closed = trio.Event()
        self.open_streams: list[trio.abc.Stream] = []

    async def handle(self, stream: trio.abc.Stream) -> None:
        self.connections += 1
        self.open_streams.append(stream)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = None, b""
                while True:
                    event = conn.next_event()
                    if event is h11.NEED_DATA:
                        data = await stream.receive_some(65536)
                        if not data:
                            self.closed.set()
                            return
                        conn.receive_data(bytes(data))  # TLS streams give bytearrays
                    elif isinstance(event, h11.Request):
                        request = event
                    elif isinstance(event, h11.Data):
                        body += event.data
                    elif isinstance(event, h11.EndOfMessage):
                        break
                self.requests += 1
                assert request is not None
                for item in self.respond(request, body):
                    if item == "close":
                        await stream.aclose()
                        self.closed.set()
                        return
                    if item == "hang":  # read until the client goes away
                        while await stream.receive_some(65536):
                            pass
                        self.closed.set()
                        return
                    if isinstance(item, bytes):
                        await stream.send_all(item)  # raw bytes, for broken bodies
                    else:
                        await stream.send_all(conn.send(item) or b"")
                if conn.our_state is h11.MUST_CLOSE:
                    await stream.aclose()
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            self.closed.set()


def ok(body: bytes = b"hello") -> Callable[[h11.Request, bytes], list[Step]]:
    def respond(request: h11.Request, _: bytes) -> list[Step]:
        headers = [("content-length", str(len(body)))]
        return [
            h11.Response(status_code=200, headers=headers),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ]

    return respond


@asynccontextmanager
async def serving(server: Server) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        port = listeners[0].socket.getsockname()[1]
        yield f"http://127.0.0.1:{port}"
        nursery.cancel_scope.cancel()


def post(url: str, body: bytes = b"{}") -> UpstreamRequest:
    return UpstreamRequest(
        "POST", f"{url}/v1/chat/completions", (("content-type", "application/json"),), body
    )


async def test_keep_alive_reuses_one_connection() -> None:
    server = Server(ok())
    async with serving(server) as url:
        pool = H11Pool()
        for _ in range(3):
            async with pool.request(post(url)) as response:
                assert response.status == 200
                assert await response.aread() == b"hello"
        await pool.aclose()
    assert server.requests == 3
    assert server.connections == 1


async def test_host_and_length_headers_sent() -> None:
    seen: list[h11.Request] = []

    def respond(request: h11.Request, body: bytes) -> list[Step]:
        seen.append(request)
        assert body == b'{"a": 1}'
        return ok()(request, body)

    async with serving(Server(respond)) as url:
        pool = H11Pool()
        async with pool.request(post(url, b'{"a": 1}')) as response:
            await response.aread()
        await pool.aclose()
    headers = dict(seen[0].headers)
    assert headers[b"host"] == url.removeprefix("http://").encode()
    assert headers[b"content-length"] == b"8"
    assert seen[0].target == b"/v1/chat/completions"


async def test_dead_idle_connection_is_replaced_not_replayed() -> None:
    calls = 0

    def respond(request: h11.Request, body: bytes) -> list[Step]:
        nonlocal calls
        calls += 1
        # answer, then close the connection the pool keeps idle
        return [*ok()(request, body), "close"]

    server = Server(respond)
    async with serving(server) as url:
        pool = H11Pool()
        async with pool.request(post(url)) as response:
            await response.aread()
        await server.closed.wait()  # the idle connection is dead now
        async with pool.request(post(url)) as response:
            assert await response.aread() == b"hello"
        await pool.aclose()
    assert calls == 2  # each request sent exactly once
    assert server.connections == 2


async def test_unread_body_closes_the_connection() -> None:
    server = Server(ok(b"x" * 100_000))
    async with serving(server) as url:
        pool = H11Pool()
        async with pool.request(post(url)) as response:
            assert response.status == 200  # body left unread
        assert pool.idle == 0
        async with pool.request(post(url)) as response:
            assert len(await response.aread()) == 100_000
        assert pool.idle == 1
        await pool.aclose()
    assert server.connections == 2


async def test_cancelled_request_closes_its_connection() -> None:
    arrived = trio.Event()

    def respond(request: h11.Request, body: bytes) -> list[Step]:
        arrived.set()
        return ["hang"]

    server = Server(respond)
    async with serving(server) as url:
        pool = H11Pool()
        async with trio.open_nursery() as nursery:

            async def request() -> None:
                async with pool.request(post(url)) as response:
                    await response.aread()

            nursery.start_soon(request)
            await arrived.wait()
            nursery.cancel_scope.cancel()
        assert pool.in_use == 0
        assert pool.idle == 0
        with trio.fail_after(10):  # a hang guard: the server must see the close
            await server.closed.wait()
        await pool.aclose()


async def test_body_cut_short_is_a_stream_error() -> None:
    def respond(request: h11.Request, body: bytes) -> list[Step]:
        head = b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n"
        return [head + b"only part", "close"]

    async with serving(Server(respond)) as url:
        pool = H11Pool()
        with pytest.raises(StreamError, match=r"ended early|closed"):
            async with pool.request(post(url)) as response:
                await response.aread()
        await pool.aclose()


async def test_chunked_pieces_already_buffered_come_as_one() -> None:
    pieces = [b"data: %d\n\n" % i for i in range(20)]

    def respond(request: h11.Request, body: bytes) -> list[Step]:
        head = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
        chunks = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in pieces)
        return [head + chunks + b"0\r\n\r\n"]

    async with serving(Server(respond)) as url:
        pool = H11Pool()
        async with pool.request(post(url)) as response:
            reads = [data async for data in response.aiter_bytes()]
        await pool.aclose()
    assert b"".join(reads) == b"".join(pieces)
    assert len(reads) < len(pieces)


async def test_connection_cap_queues_requests() -> None:
    release = trio.Event()
    in_flight = 0
    peak = 0

    async def slow_handle(stream: trio.SocketStream) -> None:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await release.wait()
        in_flight -= 1
        await Server(ok()).handle(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, slow_handle, 0, host="127.0.0.1"))
        url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        pool = H11Pool(max_connections=2)

        async def one() -> None:
            async with pool.request(post(url)) as response:
                await response.aread()

        async with trio.open_nursery() as clients:
            for _ in range(5):
                clients.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            assert pool.in_use == 2
            release.set()
        assert peak <= 2
        await pool.aclose()
        nursery.cancel_scope.cancel()


async def test_connect_refused_is_a_network_error() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: refused
        pool = H11Pool()
        with pytest.raises(NetworkError, match="cannot connect"):
            async with pool.request(post(f"http://127.0.0.1:{port}")):
                pass


async def test_connect_timeout(autojump_clock: trio.testing.MockClock) -> None:
    async def never(host: str, port: int) -> trio.SocketStream:
        await trio.sleep_forever()
        raise AssertionError

    pool = H11Pool(connect_timeout=3.0)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(trio, "open_tcp_stream", never)
        with pytest.raises(Timeout, match="timed out"):
            async with pool.request(post("http://example.invalid")):
                pass
    assert trio.current_time() == pytest.approx(3.0)


async def test_tls_to_an_https_upstream() -> None:
    """TLS through trio's SSL streams, verified against a test CA."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    server = Server(ok(b"secret hello"))

    async def handle(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await server.handle(stream)

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(trio.serve_ssl_over_tcp, handle, 0, server_context, host="127.0.0.1")
        )
        port = listeners[0].transport_listener.socket.getsockname()[1]
        pool = H11Pool(ssl_context=client_context)
        for _ in range(2):
            async with pool.request(post(f"https://127.0.0.1:{port}")) as response:
                assert await response.aread() == b"secret hello"
        await pool.aclose()
        untrusting = H11Pool()  # the system's trust store does not know the test CA
        with pytest.raises(NetworkError, match=r"TLS handshake .* certificate verify failed"):
            async with untrusting.request(post(f"https://127.0.0.1:{port}")):
                pass
        nursery.cancel_scope.cancel()
    assert server.connections == 2  # one kept alive for both requests, one refused
