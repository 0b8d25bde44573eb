"""The HTTP/2 pool: streams multiplexed, stream limits honoured (bursts, changes, the
connection cap), GOAWAY retries, the HTTP/1.1 fallback, and its lifecycle, against the
HTTP/2 server of tests/fakes/h2_upstream.py."""

from __future__ import annotations

import math
from functools import partial

import h11
import pytest
import trio
import trio.testing
from h2.errors import ErrorCodes

from adapters import NetworkError, StreamError
from router import H2Pool
from tests.fakes.h2_upstream import H2Upstream, Reply, Request, answer
from tests.router.upstream._h2helpers import fetch, in_memory, over_tcp, over_tls, post, running


async def test_a_request_before_run_is_refused() -> None:
    with pytest.raises(RuntimeError, match=r"run\(\) is not running"):
        async with H2Pool().request(post("http://127.0.0.1:9")):
            pass


async def test_concurrent_requests_share_one_connection() -> None:
    everyone_in = trio.Event()

    async def respond(request: Request, reply: Reply) -> None:
        if len(server.requests) == 20:
            everyone_in.set()
        await everyone_in.wait()  # all 20 streams are open at once
        await reply.head(200)
        await reply.data(request.headers["x-tag"].encode(), end=True)

    server = H2Upstream(respond)
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        results: dict[str, tuple[int, bytes]] = {}

        async def one(tag: str) -> None:
            results[tag] = await fetch(pool, post(url, tag=tag))

        async with trio.open_nursery() as nursery:
            for i in range(20):
                nursery.start_soon(one, str(i))
    assert results == {str(i): (200, str(i).encode()) for i in range(20)}
    assert len(server.connections) == 1
    assert server.peak == 20


async def test_tls_negotiates_h2_by_alpn() -> None:
    server = H2Upstream(answer(b"secret hello"))
    async with (
        over_tls(server.handle, ["h2"]) as (url, context),
        running(H2Pool(ssl_context=context)) as pool,
    ):
        for _ in range(2):
            assert await fetch(pool, post(url)) == (200, b"secret hello")
    assert len(server.connections) == 1
    assert server.requests[0].headers[":scheme"] == "https"


@pytest.mark.parametrize("burst", [150, 500])
async def test_a_burst_after_idle_past_the_stream_limit_all_succeeds(
    autojump_clock: trio.testing.MockClock, burst: int
) -> None:
    """The failure this pool exists for: 150 requests after 7 s idle got 100 x 502."""
    server = H2Upstream(max_concurrent_streams=100)
    async with in_memory(server.handle) as url, running(H2Pool()) as pool:
        assert await fetch(pool, post(url)) == (200, b"hello")
        await trio.sleep(7)
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await fetch(pool, post(url)))[0])

        async with trio.open_nursery() as nursery:
            for _ in range(burst):
                nursery.start_soon(one)
    assert statuses == [200] * burst
    assert server.protocol_errors == 0  # h2 refuses a client past its limit that way
    assert server.peak == 100
    assert len(server.connections) == math.ceil(burst / 100)


async def test_past_the_connection_cap_requests_queue_and_all_succeed() -> None:
    full = trio.Event()

    async def respond(request: Request, reply: Reply) -> None:
        if reply.conn.active == 10:
            full.set()
        await full.wait()  # the first ten are open at once, then all flow
        await answer()(request, reply)

    server = H2Upstream(respond, max_concurrent_streams=10)
    async with over_tcp(server) as url, running(H2Pool(max_connections=1)) as pool:
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await fetch(pool, post(url)))[0])

        async with trio.open_nursery() as nursery:
            for _ in range(60):
                nursery.start_soon(one)
    assert statuses == [200] * 60
    assert len(server.connections) == 1
    assert server.peak == 10
    assert server.protocol_errors == 0


async def test_a_lower_stream_limit_mid_life_is_honoured() -> None:
    release = trio.Event()

    async def respond(request: Request, reply: Reply) -> None:
        if request.headers["x-tag"] == "first":
            await reply.conn.update_settings(max_concurrent_streams=2)
        else:
            await release.wait()
        await answer()(request, reply)

    server = H2Upstream(respond)
    async with in_memory(server.handle) as url, running(H2Pool(max_connections=1)) as pool:
        assert await fetch(pool, post(url, tag="first")) == (200, b"hello")
        server.peak = 0
        statuses: list[int] = []

        async def one() -> None:
            statuses.append((await fetch(pool, post(url)))[0])

        async with trio.open_nursery() as nursery:
            for _ in range(10):
                nursery.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            assert server.connections[0].active == 2  # the others wait in the pool
            release.set()
    assert statuses == [200] * 10
    assert server.peak == 2
    assert server.protocol_errors == 0
    assert len(server.connections) == 1


async def test_streams_past_a_goaway_are_sent_again_and_the_others_finish() -> None:
    async def respond(request: Request, reply: Reply) -> None:
        await reply.head(200)
        if request.connection == 0:
            await reply.conn.goaway_sent.wait()  # answer across the GOAWAY
        await reply.data(b"to " + request.headers["x-tag"].encode())
        await reply.data(b"!", end=True)

    server = H2Upstream(respond, goaway_after=4)
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        results: dict[str, tuple[int, bytes]] = {}

        async def one(tag: str) -> None:
            results[tag] = await fetch(pool, post(url, tag=tag))

        async with trio.open_nursery() as nursery:
            for i in range(10):
                nursery.start_soon(one, str(i))
    assert results == {str(i): (200, f"to {i}!".encode()) for i in range(10)}
    first = [r.headers["x-tag"] for r in server.requests if r.connection == 0]
    assert len(first) == 4  # answered on the connection that went away
    skipped = {r.headers["x-tag"] for r in server.unprocessed if r.connection == 0}
    assert len(skipped) == 6
    # each request was processed exactly once: the skipped ones on later connections
    assert sorted(r.headers["x-tag"] for r in server.requests) == sorted(map(str, range(10)))
    assert {r.headers["x-tag"] for r in server.requests if r.connection > 0} == skipped
    assert server.connections[0].closed_at is not None


async def test_connect_refused_fails_every_waiting_request() -> None:
    with trio.socket.socket() as sock:
        await sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"  # bound, never listening
        async with running(H2Pool()) as pool:
            failures: list[Exception] = []

            async def one() -> None:
                with pytest.raises(NetworkError, match="cannot connect") as caught:
                    await fetch(pool, post(url))
                failures.append(caught.value)

            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(one)
            assert pool.connections == 0
    assert len(failures) == 5
    assert len({id(exc) for exc in failures}) == 5  # one exception each, not one shared


async def h11_only(stream: trio.abc.Stream, seen: list[bytes]) -> None:
    """An HTTP/1.1 server that answers what is not HTTP/1.1 with a 400, as most do."""
    conn = h11.Connection(h11.SERVER)
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                if not (data := await stream.receive_some(65536)):
                    return
                conn.receive_data(bytes(data))
            elif isinstance(event, h11.Request):
                seen.append(event.http_version)
            elif isinstance(event, h11.EndOfMessage):
                head = h11.Response(status_code=200, headers=[("content-length", "5")])
                body = (head, h11.Data(data=b"h1 ok"), h11.EndOfMessage())
                await stream.send_all(b"".join(conn.send(e) or b"" for e in body))
                conn.start_next_cycle()
    except h11.RemoteProtocolError:
        await stream.send_all(b"HTTP/1.1 400 Bad Request\r\nconnection: close\r\n\r\n")
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await stream.aclose()


async def test_an_origin_whose_tls_picks_http11_is_served_over_http11() -> None:
    seen: list[bytes] = []
    async with (
        over_tls(partial(h11_only, seen=seen), ["http/1.1"]) as (url, context),
        running(H2Pool(ssl_context=context)) as pool,
    ):
        for _ in range(3):
            assert await fetch(pool, post(url)) == (200, b"h1 ok")
        assert pool.connections == 0
    assert seen == [b"1.1"] * 3


async def test_an_http_origin_without_h2c_is_served_over_http11() -> None:
    seen: list[bytes] = []
    async with trio.open_nursery() as nursery:
        handle = partial(h11_only, seen=seen)
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        url = f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        async with running(H2Pool()) as pool:
            for _ in range(2):
                assert await fetch(pool, post(url)) == (200, b"h1 ok")
        nursery.cancel_scope.cancel()
    assert seen == [b"2.0", b"1.1", b"1.1"]  # the h2c preface once, then HTTP/1.1


async def test_aclose_ends_run_and_fails_what_is_open() -> None:
    async def respond(request: Request, reply: Reply) -> None:
        await reply.head(200)
        await trio.sleep_forever()

    server = H2Upstream(respond)
    pool = H2Pool()
    async with over_tcp(server) as url, trio.open_nursery() as nursery:
        await nursery.start(pool.run)

        async def closed_while_reading() -> None:
            async with pool.request(post(url)) as response:
                nursery.start_soon(pool.aclose)
                await response.aread()

        with pytest.raises(StreamError, match="connection was closed mid-body"):
            await closed_while_reading()
    with pytest.raises(RuntimeError, match="not running"):
        await fetch(pool, post(url))


@pytest.mark.parametrize("when", ["while queued", "as it is handed a stream"])
async def test_a_request_cancelled_in_the_queue_gives_its_place_back(
    autojump_clock: trio.testing.MockClock, when: str
) -> None:
    release = trio.Event()

    async def respond(request: Request, reply: Reply) -> None:
        if request.headers["x-tag"] == "first":
            await release.wait()
        await answer()(request, reply)

    server = H2Upstream(respond, max_concurrent_streams=1)
    queued = trio.CancelScope()
    async with in_memory(server.handle) as url, running(H2Pool(max_connections=1)) as pool:

        async def first() -> None:
            async with pool.request(post(url, tag="first")) as response:
                await response.aread()
                if when != "while queued":
                    queued.cancel()  # then this stream's end hands it the slot

        async def second() -> None:
            with queued:
                await fetch(pool, post(url, tag="queued"))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(first)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(second)
            await trio.testing.wait_all_tasks_blocked()
            if when == "while queued":
                queued.cancel()
                await trio.testing.wait_all_tasks_blocked()
            release.set()
        with trio.fail_after(5):  # a leaked slot would leave this waiting forever
            assert await fetch(pool, post(url, tag="after")) == (200, b"hello")
    assert [r.headers["x-tag"] for r in server.requests] == ["first", "after"]
    assert server.protocol_errors == 0


async def test_requests_waiting_when_the_pool_closes_fail() -> None:
    async def respond(request: Request, reply: Reply) -> None:
        await trio.sleep_forever()

    server = H2Upstream(respond, max_concurrent_streams=1)
    pool = H2Pool(max_connections=1)
    failures: list[Exception] = []
    async with in_memory(server.handle) as url, trio.open_nursery() as nursery:
        await nursery.start(pool.run)

        async def one() -> None:
            with pytest.raises(NetworkError) as caught:
                await fetch(pool, post(url))
            failures.append(caught.value)

        async with trio.open_nursery() as clients:
            clients.start_soon(one)
            clients.start_soon(one)
            await trio.testing.wait_all_tasks_blocked()
            await pool.aclose()
    assert sorted(str(exc) for exc in failures) == [
        "the connection was closed",  # the one on the wire
        "the upstream connection pool is closed",  # the one in the queue
    ]


async def test_a_server_that_refuses_every_stream_is_given_up_on() -> None:
    async def respond(request: Request, reply: Reply) -> None:
        await reply.reset(ErrorCodes.REFUSED_STREAM)

    server = H2Upstream(respond)
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        with pytest.raises(NetworkError, match="did not take the request in 10 tries"):
            await fetch(pool, post(url))
    assert len(server.requests) == 10


async def test_a_goaway_on_an_idle_connection_closes_it() -> None:
    server = H2Upstream()
    async with in_memory(server.handle) as url, running(H2Pool()) as pool:
        assert await fetch(pool, post(url)) == (200, b"hello")
        await server.connections[0].goaway(last_stream_id=1)
        await trio.testing.wait_all_tasks_blocked()
        assert server.connections[0].closed_at is not None
        assert pool.connections == 0
        assert await fetch(pool, post(url)) == (200, b"hello")
    assert len(server.connections) == 2


async def test_misuse_is_refused() -> None:
    pool = H2Pool()
    async with running(pool):
        with pytest.raises(RuntimeError, match="runs once"):
            await pool.run()
        with pytest.raises(NetworkError, match="not an http"):
            await fetch(pool, post("ftp://example.com"))


async def test_a_new_connection_resumes_the_tls_session_of_the_last() -> None:
    """After a GOAWAY the next connection to the origin resumes the TLS session."""
    server = H2Upstream(goaway_after=1)
    resumed: list[bool] = []

    async def handle(stream: trio.SSLStream[trio.SocketStream]) -> None:
        await stream.do_handshake()
        resumed.append(stream.session_reused)
        await server.handle(stream)

    async with (
        over_tls(handle, ["h2"]) as (url, context),
        running(H2Pool(ssl_context=context)) as pool,
    ):
        for _ in range(3):
            assert await fetch(pool, post(url)) == (200, b"hello")
    assert resumed == [False, True, True]


async def test_the_streams_of_a_lost_connection_fail_as_one_incident() -> None:
    """A hundred streams on one connection that drops are one loss, not a hundred
    upstream faults: their errors share an incident, which a breaker counts once."""
    everyone_in = trio.Event()

    async def respond(request: Request, reply: Reply) -> None:
        if len(server.requests) == 8:
            everyone_in.set()
        await everyone_in.wait()
        await reply.conn.close()  # the peer drops the connection under every stream

    server = H2Upstream(respond)
    errors: list[NetworkError] = []
    async with over_tcp(server) as url, running(H2Pool()) as pool:

        async def one(tag: str) -> None:
            with pytest.raises(NetworkError) as caught:
                await fetch(pool, post(url, tag=tag))
            errors.append(caught.value)

        async with trio.open_nursery() as nursery:
            for i in range(8):
                nursery.start_soon(one, str(i))
    assert len(errors) == 8
    assert errors[0].incident is not None
    assert all(err.incident is errors[0].incident for err in errors)
