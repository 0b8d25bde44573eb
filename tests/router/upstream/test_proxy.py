"""HTTP proxies: CONNECT tunnels for https, forwarding for http, NO_PROXY, the settings.

The proxies are fakes of our own on loopback (:mod:`tests.fakes.tunnels`) that record
what they were asked; the upstream is named ``upstream.test``, which only the proxies
know how to reach, so a request that did not go through the proxy fails.
"""

from __future__ import annotations

import base64
import ssl
from typing import TYPE_CHECKING

import pytest
import trio
import trustme

from adapters import NetworkError, UpstreamRequest
from router import H2Pool, H11Pool, HttpxTransport
from router.upstream._proxy import ProxyRoutes, bypassed, proxy_routes
from router.upstream._tls import ClientTLS
from rules import ConfigError, ProxyURL, SecretRef
from tests.fakes.h2_upstream import H2Upstream
from tests.fakes.tunnels import ConnectProxy, ForwardProxy, TLSFront, serving, serving_tls
from tests.router.upstream.test_pool import Server, ok

if TYPE_CHECKING:
    from router import Transport

BASIC = "Basic " + base64.b64encode(b"user:p@ss").decode()


def post(url: str) -> UpstreamRequest:
    return UpstreamRequest("POST", f"{url}/v1/chat/completions", (), b"{}")


def trusting(ca: trustme.CA) -> ClientTLS:
    """Contexts that trust ``ca`` (one per ALPN list, as the system's are)."""

    def build(alpn: tuple[str, ...] | None) -> ssl.SSLContext:
        context = ssl.create_default_context()
        ca.configure_trust(context)
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context

    return ClientTLS(build, "test")


def via(port: int, userinfo: str = "user:p%40ss@") -> ProxyRoutes:
    proxy = ProxyURL.parse(f"http://{userinfo}127.0.0.1:{port}")
    return ProxyRoutes(proxy, proxy)


async def twice(transport: Transport, url: str) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(transport.run)  # an HTTP/2 pool's connection tasks
        for _ in range(2):
            async with transport.request(post(url)) as response:
                assert response.status == 200
                assert await response.aread() == b"hello"
        await transport.aclose()


# --- through the proxies ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["h11", "httpx"])
async def test_https_goes_through_a_connect_tunnel(kind: str) -> None:
    ca = trustme.CA()
    proxy = ConnectProxy()
    async with serving(Server(ok()).handle) as origin:
        front = TLSFront(ca, origin)
        async with (
            serving_tls(front.handle, front.context) as tls_port,
            serving(proxy.handle) as proxy_port,
        ):
            transport: Transport = (
                H11Pool(tls=trusting(ca), proxy=via(proxy_port))
                if kind == "h11"
                else HttpxTransport(tls=trusting(ca), proxy=via(proxy_port))
            )
            await twice(transport, f"https://upstream.test:{tls_port}")
    assert proxy.targets == [f"upstream.test:{tls_port}"]  # one tunnel, kept alive
    assert proxy.authorizations == [BASIC]
    assert front.server_names == ["upstream.test"]  # TLS to the origin, by its name
    assert len(front.accepted) == 1


async def test_http2_goes_through_a_connect_tunnel_and_speaks_h2() -> None:
    ca = trustme.CA()
    proxy = ConnectProxy()
    h2_origin = H2Upstream()
    async with serving(h2_origin.handle) as origin:
        front = TLSFront(ca, origin, alpn=["h2"])
        async with (
            serving_tls(front.handle, front.context) as tls_port,
            serving(proxy.handle) as proxy_port,
        ):
            pool = H2Pool(tls=trusting(ca), proxy=via(proxy_port))
            await twice(pool, f"https://upstream.test:{tls_port}")
    assert proxy.targets == [f"upstream.test:{tls_port}"]
    assert proxy.authorizations == [BASIC]
    assert front.selected_alpn == ["h2"]
    assert len(h2_origin.requests) == 2  # both over HTTP/2, on the one tunnel
    assert len(h2_origin.connections) == 1


@pytest.mark.parametrize("kind", ["h11", "httpx", "h2"])
async def test_http_is_forwarded_in_absolute_form(kind: str) -> None:
    """An HTTP/2 pool too: a forwarding proxy speaks HTTP/1.1, so it is used for it."""
    proxy = ForwardProxy()
    async with serving(Server(ok()).handle) as origin, serving(proxy.handle) as proxy_port:
        transport: Transport = (
            H11Pool(proxy=via(proxy_port))
            if kind == "h11"
            else HttpxTransport(proxy=via(proxy_port))
            if kind == "httpx"
            else H2Pool(proxy=via(proxy_port))
        )
        await twice(transport, f"http://upstream.test:{origin}")
    target = f"http://upstream.test:{origin}/v1/chat/completions"
    assert proxy.targets == [target, target]
    assert proxy.authorizations == [BASIC, BASIC]
    assert proxy.connections == 1  # the connection to the proxy is kept alive


async def test_no_credentials_no_proxy_authorization() -> None:
    proxy = ForwardProxy()
    async with serving(Server(ok()).handle) as origin, serving(proxy.handle) as proxy_port:
        await twice(H11Pool(proxy=via(proxy_port, userinfo="")), f"http://upstream.test:{origin}")
    assert proxy.authorizations == [None, None]


@pytest.mark.parametrize("kind", ["h11", "httpx"])
async def test_a_refused_tunnel_names_the_proxy_status(kind: str) -> None:
    proxy = ConnectProxy(refuse=407)
    async with serving(proxy.handle) as proxy_port:
        transport: Transport = (
            H11Pool(proxy=via(proxy_port))
            if kind == "h11"
            else HttpxTransport(proxy=via(proxy_port))
        )
        with pytest.raises(NetworkError) as caught:
            async with transport.request(post("https://upstream.test:443")):
                pass
        await transport.aclose()
    message = str(caught.value)
    assert "407" in message
    assert "p@ss" not in message
    assert "p%40ss" not in message
    assert proxy.targets == ["upstream.test:443"]


async def test_the_h11_pool_says_which_proxy_refused_and_why() -> None:
    proxy = ConnectProxy(refuse=407)
    async with serving(proxy.handle) as proxy_port:
        pool = H11Pool(proxy=via(proxy_port))
        with pytest.raises(NetworkError) as caught:
            async with pool.request(post("https://upstream.test:443")):
                pass
    assert str(caught.value) == (
        f"proxy http://127.0.0.1:{proxy_port} refused the tunnel to upstream.test:443:"
        " HTTP 407 (the proxy wants credentials: http://user:password@HOST:PORT)"
    )


async def test_no_proxy_sends_a_host_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = ForwardProxy()
    async with serving(Server(ok()).handle) as origin, serving(proxy.handle) as proxy_port:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy_port}")
        monkeypatch.setenv("NO_PROXY", "localhost,127.0.0.1")
        routes = proxy_routes("up", "env")
        await twice(H11Pool(proxy=routes), f"http://127.0.0.1:{origin}")
        await twice(H11Pool(proxy=routes), f"http://upstream.test:{origin}")
    assert proxy.targets == [f"http://upstream.test:{origin}/v1/chat/completions"] * 2


# --- the settings -------------------------------------------------------------------


def test_an_explicit_proxy_serves_both_schemes_without_bypass() -> None:
    url = ProxyURL.parse("http://proxy.internal:3128")
    routes = proxy_routes("up", url)
    assert routes == ProxyRoutes(url, url)
    assert routes.for_origin("https", "localhost", 443) is url


def test_env_reads_the_standard_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "no_proxy", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://user:secret-pw@secure.internal:3128")
    monkeypatch.setenv("HTTP_PROXY", "plain.internal:8080")  # no scheme: http://
    monkeypatch.setenv("NO_PROXY", "internal.example, .corp.example ,10.0.0.0/8")
    routes = proxy_routes("up", "env")
    assert routes is not None
    assert routes.https == ProxyURL("secure.internal", 3128, "user", "secret-pw")
    assert routes.http == ProxyURL("plain.internal", 8080)
    assert routes.no_proxy == ("internal.example", ".corp.example", "10.0.0.0/8")
    assert routes.for_origin("https", "api.openai.com", 443) == routes.https
    assert routes.for_origin("https", "llm.corp.example", 443) is None
    assert routes.for_origin("http", "10.1.2.3", 80) is None


def test_lower_case_variables_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://upper.internal:1")
    monkeypatch.setenv("https_proxy", "http://lower.internal:2")
    routes = proxy_routes("up", "env")
    assert routes is not None
    assert routes.https == ProxyURL("lower.internal", 2)


def test_env_without_variables_is_direct(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    routes = proxy_routes("up", "env")
    assert routes is not None
    assert routes.for_origin("https", "api.openai.com", 443) is None


def test_a_bad_variable_names_it_but_not_its_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "socks5://user:secret-pw@proxy.internal:1080")
    with pytest.raises(ConfigError) as caught:
        proxy_routes("up", "env")
    (line,) = caught.value.errors
    assert line.startswith("providers.up.proxy: HTTPS_PROXY: only http:// proxies")
    assert "secret-pw" not in line


def test_a_secret_reference_holds_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    ref = SecretRef("env", "EGRESS_PROXY_URL")
    monkeypatch.setenv("EGRESS_PROXY_URL", "http://user:secret-pw@proxy.internal:3128")
    routes = proxy_routes("up", ref)
    assert routes is not None
    assert routes.https == ProxyURL("proxy.internal", 3128, "user", "secret-pw")
    read = {ref: "http://proxy.elsewhere:1"}  # read already, off the loop: used as is
    routes = proxy_routes("up", ref, read)
    assert routes is not None
    assert routes.https == ProxyURL("proxy.elsewhere", 1)


def test_a_bad_secret_url_names_the_reference_not_the_value() -> None:
    ref = SecretRef("env", "EGRESS_PROXY_URL")
    with pytest.raises(ConfigError) as caught:
        proxy_routes("up", ref, {ref: "https://user:secret-pw@proxy.internal"})
    (line,) = caught.value.errors
    assert line.startswith("providers.up.proxy: secret env:EGRESS_PROXY_URL: only http://")
    assert "secret-pw" not in line


def test_an_unset_secret_names_the_setting() -> None:
    with pytest.raises(ConfigError, match=r"^providers\.up\.proxy: secret env:LLM_ROUTER_UNSET"):
        proxy_routes("up", SecretRef("env", "LLM_ROUTER_UNSET"))


@pytest.mark.parametrize(
    ("host", "port", "no_proxy", "direct"),
    [
        ("api.openai.com", 443, (), False),
        ("api.openai.com", 443, ("*",), True),
        ("api.openai.com", 443, ("openai.com",), True),
        ("api.openai.com", 443, (".openai.com",), True),
        ("api.openai.com", 443, ("*.openai.com",), True),
        ("openai.com", 443, (".openai.com",), True),
        ("notopenai.com", 443, ("openai.com",), False),
        ("API.OpenAI.com", 443, ("openai.com",), True),
        ("api.openai.com", 443, ("openai.com:8443",), False),
        ("api.openai.com", 8443, ("openai.com:8443",), True),
        ("10.1.2.3", 80, ("10.0.0.0/8",), True),
        ("11.1.2.3", 80, ("10.0.0.0/8",), False),
        ("127.0.0.1", 80, ("127.0.0.1",), True),
        ("::1", 80, ("::1",), True),
        ("::1", 8080, ("[::1]:8080",), True),
        ("::1", 80, ("[::1]:8080",), False),
        ("fd00::5", 80, ("fd00::/8",), True),
        ("localhost", 80, ("127.0.0.1",), False),  # names are not resolved
    ],
)
def test_no_proxy_entries(host: str, port: int, no_proxy: tuple[str, ...], direct: bool) -> None:
    assert bypassed(host, port, no_proxy) is direct


@pytest.mark.parametrize(
    ("answer", "message"),
    [
        (b"", "closed the connection before answering CONNECT"),
        (b"SSH-2.0-OpenSSH_9.6\r\n\r\n", "did not answer CONNECT in HTTP"),
        (b"HTTP/1.1 200 OK\r\n\r\nearly", "sent bytes of its own into the tunnel"),
    ],
)
async def test_a_proxy_that_does_not_tunnel_properly(answer: bytes, message: str) -> None:
    async def handle(stream: trio.SocketStream) -> None:
        await stream.receive_some(65536)  # the CONNECT
        await stream.send_all(answer)
        await stream.aclose()

    async with serving(handle) as proxy_port:
        pool = H11Pool(proxy=via(proxy_port))
        with pytest.raises(NetworkError, match=message):
            async with pool.request(post("https://upstream.test:443")):
                pass
