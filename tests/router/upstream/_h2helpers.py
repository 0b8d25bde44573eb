"""What the HTTP/2 pool's tests share: requests, a running pool, and the ways to reach
the fake server (loopback TCP for h2c, TLS with ALPN, or memory streams for the mock
clock)."""

from __future__ import annotations

import ssl
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
import trio
import trio.testing
import trustme

from adapters import UpstreamRequest

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from router import H2Pool
    from tests.fakes.h2_upstream import H2Upstream

__all__ = ["fetch", "in_memory", "over_tcp", "over_tls", "post", "running"]


def post(url: str, body: bytes = b"{}", *, tag: str = "", **headers: str) -> UpstreamRequest:
    fields = [("content-type", "application/json"), ("x-tag", tag), *headers.items()]
    return UpstreamRequest("POST", f"{url}/v1/chat/completions", tuple(fields), body)


async def fetch(pool: H2Pool, req: UpstreamRequest) -> tuple[int, bytes]:
    async with pool.request(req) as response:
        return response.status, await response.aread()


@asynccontextmanager
async def running(pool: H2Pool) -> AsyncIterator[H2Pool]:
    async with trio.open_nursery() as nursery:
        await nursery.start(pool.run)
        yield pool
        await pool.aclose()


@asynccontextmanager
async def over_tcp(server: H2Upstream) -> AsyncIterator[str]:
    """``server`` on 127.0.0.1 in plain TCP: h2c with prior knowledge."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, server.handle, 0, host="127.0.0.1"))
        yield f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def in_memory(handle: Any) -> AsyncIterator[str]:
    """Each connection the pool opens is a memory stream pair served by ``handle``."""
    async with trio.open_nursery() as nursery:

        async def connect(host: str, port: int) -> trio.abc.Stream:
            client, server = trio.testing.memory_stream_pair()
            nursery.start_soon(handle, server)
            return client

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(trio, "open_tcp_stream", connect)
            yield "http://upstream.test"
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def over_tls(handle: Any, alpn: list[str]) -> AsyncIterator[tuple[str, ssl.SSLContext]]:
    """``handle`` behind TLS offering ``alpn``; yields the URL and a client context."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_context)
    server_context.set_alpn_protocols(alpn)
    client_context = ssl.create_default_context()
    ca.configure_trust(client_context)
    async with trio.open_nursery() as nursery:
        serve = partial(trio.serve_ssl_over_tcp, handle, 0, server_context, host="127.0.0.1")
        listeners = await nursery.start(serve)
        port = listeners[0].transport_listener.socket.getsockname()[1]
        yield f"https://127.0.0.1:{port}", client_context
        nursery.cancel_scope.cancel()
