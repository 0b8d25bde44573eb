"""HTTP/2 header blocks: what the pool sends for a request, and what it will not send."""

from __future__ import annotations

import pytest

from adapters import NetworkError, UpstreamRequest
from router import H2Pool
from tests.fakes.h2_upstream import H2Upstream
from tests.router.upstream._h2helpers import fetch, over_tcp, post, running


async def test_the_header_block_is_http2s() -> None:
    server = H2Upstream()
    req = UpstreamRequest(
        "POST",
        "",
        (
            ("Host", "api.example"),
            ("Connection", "keep-alive"),
            ("Keep-Alive", "timeout=5"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("TE", "trailers"),
            ("Content-Length", "999"),
            ("X-Api-Key", "sk-123"),
        ),
        b'{"a": 1}',
    )
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        req = UpstreamRequest(req.method, f"{url}/v1/x?y=1", req.headers, req.body)
        assert (await fetch(pool, req))[0] == 200
    assert server.requests[0].headers == {
        ":method": "POST",
        ":authority": "api.example",
        ":scheme": "http",
        ":path": "/v1/x?y=1",
        "te": "trailers",
        "x-api-key": "sk-123",
        "content-length": "8",
    }
    assert server.requests[0].body == b'{"a": 1}'


@pytest.mark.parametrize("value", ["sk-secret\r\n", "sk-secret\x00", "sk-secret ", "sk-ß"])
async def test_an_unsendable_header_is_a_network_error_that_does_not_quote_it(value: str) -> None:
    server = H2Upstream()
    async with over_tcp(server) as url, running(H2Pool()) as pool:
        with pytest.raises(NetworkError, match="could not be sent") as caught:
            await fetch(pool, post(url, authorization=f"Bearer {value}"))
        assert "sk-secret" not in str(caught.value)
        assert await fetch(pool, post(url)) == (200, b"hello")  # the pool carries on
    assert len(server.requests) == 1
