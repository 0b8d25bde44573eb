"""The Dialer and the pools over it: TLS session resumption, ALPN, TLS errors that say so.

A TLS server of our own (:class:`tests.fakes.tunnels.TLSFront`, in front of a plain
HTTP server) reports per accepted connection whether its session was resumed.
"""

from __future__ import annotations

import ssl
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import h11
import pytest
import trio
import trustme

from adapters import NetworkError, UpstreamRequest
from router import H11Pool, HttpxTransport
from router.upstream._connect import Dialer
from router.upstream._tls import ClientTLS
from tests.fakes.tunnels import TLSFront, serving, serving_tls
from tests.router.upstream.test_pool import Server, ok

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from tests.fakes.openai_upstream import FakeOpenAI
    from tests.router.upstream.test_pool import Step


def closing(respond: Callable[[h11.Request, bytes], list[Step]]) -> Callable[..., list[Step]]:
    """Answers with ``Connection: close``: every request needs a new connection."""

    def answer(request: h11.Request, body: bytes) -> list[Step]:
        steps = respond(request, body)
        head = steps[0]
        assert isinstance(head, h11.Response)
        steps[0] = h11.Response(
            status_code=head.status_code, headers=[*head.headers, (b"connection", b"close")]
        )
        return steps

    return answer


@asynccontextmanager
async def tls_upstream(front_of: Callable[[int], TLSFront]) -> AsyncIterator[tuple[str, TLSFront]]:
    """A plain HTTP server (new connection per request) behind a TLS front."""
    async with serving(Server(closing(ok())).handle) as port:
        front = front_of(port)
        async with serving_tls(front.handle, front.context) as tls_port:
            yield f"https://127.0.0.1:{tls_port}", front


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


def post(url: str) -> UpstreamRequest:
    return UpstreamRequest("POST", f"{url}/v1/chat/completions", (), b"{}")


@pytest.mark.parametrize(
    "version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2], ids=["tls1.3", "tls1.2"]
)
async def test_new_connections_resume_the_last_session(version: ssl.TLSVersion) -> None:
    ca = trustme.CA()
    async with tls_upstream(lambda port: TLSFront(ca, port, maximum_version=version)) as (
        url,
        front,
    ):
        pool = H11Pool(ssl_context=trusting(ca))
        for _ in range(4):
            async with pool.request(post(url)) as response:
                assert await response.aread() == b"hello"
        await pool.aclose()
    assert front.resumed == [False, True, True, True]
    assert {a.version for a in front.accepted} == {version.name.replace("v1_", "v1.")}


async def test_tls12_without_tickets_resumes_by_session_id() -> None:
    """A server that issues no tickets keeps sessions by id (TLS 1.2 only). The pool
    closes a connection without a close_notify, which OpenSSL takes for a fatal error
    that drops the session from the server's cache, unless told to ignore it, as
    nginx does (SSL_OP_IGNORE_UNEXPECTED_EOF)."""
    ca = trustme.CA()

    def front_of(port: int) -> TLSFront:
        front = TLSFront(ca, port, maximum_version=ssl.TLSVersion.TLSv1_2)
        front.context.options |= ssl.OP_NO_TICKET | ssl.OP_IGNORE_UNEXPECTED_EOF
        return front

    async with tls_upstream(front_of) as (url, front):
        pool = H11Pool(ssl_context=trusting(ca))
        for _ in range(3):
            async with pool.request(post(url)) as response:
                await response.aread()
        await pool.aclose()
    assert front.resumed == [False, True, True]


async def test_sessions_are_kept_per_origin() -> None:
    ca = trustme.CA()
    pool = H11Pool(ssl_context=trusting(ca))
    async with (
        tls_upstream(lambda port: TLSFront(ca, port)) as (one, first),
        tls_upstream(lambda port: TLSFront(ca, port)) as (two, second),
    ):
        for url in (one, two, one, two):
            async with pool.request(post(url)) as response:
                await response.aread()
    await pool.aclose()
    assert first.resumed == [False, True]
    assert second.resumed == [False, True]  # a first visit there is a full handshake


async def test_a_session_before_its_ticket_is_not_kept() -> None:
    """TLS 1.3 sends tickets after the handshake: the session of a connection that has
    read nothing yet cannot be resumed, and is not kept in place of a good one."""
    ca = trustme.CA()
    async with tls_upstream(lambda port: TLSFront(ca, port)) as (url, front):
        port = int(url.rpartition(":")[2])
        dialer = Dialer(connect_timeout=5, ssl_context=trusting(ca))
        for _ in range(2):
            stream = await dialer.open("https", "127.0.0.1", port)
            dialer.keep_session(stream, "127.0.0.1", port)  # nothing read yet
            await stream.aclose()
    assert front.resumed == [False, False]


async def test_alpn_is_offered_when_asked_for() -> None:
    ca = trustme.CA()
    tls = ClientTLS(lambda alpn: _alpn_context(ca, alpn), "test")
    async with tls_upstream(lambda port: TLSFront(ca, port, alpn=["h2", "http/1.1"])) as (
        url,
        front,
    ):
        port = int(url.rpartition(":")[2])
        dialer = Dialer(connect_timeout=5, tls=tls)
        h2 = await dialer.open("https", "127.0.0.1", port, alpn=("h2", "http/1.1"))
        assert isinstance(h2, trio.SSLStream)
        assert h2.selected_alpn_protocol() == "h2"
        plain = await dialer.open("https", "127.0.0.1", port)
        assert isinstance(plain, trio.SSLStream)
        assert plain.selected_alpn_protocol() is None
        for stream in (h2, plain):
            await stream.aclose()
    assert front.selected_alpn == ["h2", None]


def _alpn_context(ca: trustme.CA, alpn: tuple[str, ...] | None) -> ssl.SSLContext:
    context = trusting(ca)
    if alpn:
        context.set_alpn_protocols(list(alpn))
    return context


async def test_httpx_sets_its_alpn_on_a_context_of_its_own() -> None:
    """httpx2 sets ALPN on the context it is given, per connection: were it the h11
    pool's, the h11 pool would offer what httpx2 set (and get http/1.1 chosen)."""
    ca = trustme.CA()
    tls = ClientTLS(lambda alpn: _alpn_context(ca, alpn), "test")
    async with tls_upstream(lambda port: TLSFront(ca, port, alpn=["http/1.1"])) as (
        url,
        front,
    ):
        httpx = HttpxTransport(tls=tls, http2=True)
        pool = H11Pool(tls=tls)
        for transport in (httpx, pool, httpx, pool):
            async with transport.request(post(url)) as response:
                assert response.status == 200
                await response.aread()
        await httpx.aclose()
        await pool.aclose()
    assert front.selected_alpn == ["http/1.1", None, "http/1.1", None]


async def test_a_context_is_never_built_per_connection() -> None:
    ca = trustme.CA()
    built: list[object] = []

    def build(alpn: tuple[str, ...] | None) -> ssl.SSLContext:
        built.append(alpn)
        return trusting(ca)

    tls = ClientTLS(build, "test")
    async with tls_upstream(lambda port: TLSFront(ca, port)) as (url, front):
        pool = H11Pool(tls=tls)

        async def one() -> None:
            async with pool.request(post(url)) as response:
                await response.aread()

        async with trio.open_nursery() as nursery:
            for _ in range(20):
                nursery.start_soon(one)
        await pool.aclose()
    assert len(front.accepted) == 20
    assert built == [None]


# --- TLS failures say so -------------------------------------------------------------


async def test_an_untrusted_certificate_says_certificate_verify_failed() -> None:
    ca = trustme.CA()
    async with tls_upstream(lambda port: TLSFront(ca, port)) as (url, _):
        pool = H11Pool(ssl_context=trusting(trustme.CA()))  # another CA
        with pytest.raises(NetworkError) as caught:
            async with pool.request(post(url)):
                pass
    message = str(caught.value)
    assert message.startswith("TLS handshake with 127.0.0.1:")
    assert "certificate verify failed: unable to get local issuer certificate" in message


async def test_a_name_mismatch_says_certificate_verify_failed() -> None:
    ca = trustme.CA()
    async with tls_upstream(lambda port: TLSFront(ca, port, names=("elsewhere.test",))) as (
        url,
        _,
    ):
        pool = H11Pool(ssl_context=trusting(ca))
        with pytest.raises(NetworkError, match="certificate verify failed: IP address mismatch"):
            async with pool.request(post(url)):
                pass


async def test_a_missing_client_certificate_says_so() -> None:
    ca, client_ca = trustme.CA(), trustme.CA()
    async with tls_upstream(lambda port: TLSFront(ca, port, client_ca=client_ca)) as (url, _):
        pool = H11Pool(ssl_context=trusting(ca))
        with pytest.raises(NetworkError, match=r"TLS .*certificate required") as caught:
            async with pool.request(post(url)) as response:
                await response.aread()
    assert "tls.cert_file" in str(caught.value)


async def test_plain_http_behind_an_https_url_says_so(fake_openai: FakeOpenAI) -> None:
    pool = H11Pool()
    https = fake_openai.url.replace("http://", "https://")
    with pytest.raises(NetworkError, match=r"wrong version number .*plain http"):
        async with pool.request(post(https)):
            pass


async def test_httpx_says_certificate_verify_failed_too() -> None:
    ca = trustme.CA()
    async with tls_upstream(lambda port: TLSFront(ca, port)) as (url, _):
        transport = HttpxTransport(tls=ClientTLS.fixed(trusting(trustme.CA())))
        with pytest.raises(NetworkError, match="TLS failed: certificate verify failed"):
            async with transport.request(post(url)):
                pass
        await transport.aclose()
