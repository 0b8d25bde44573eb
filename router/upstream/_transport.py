"""The one small interface between adapters' requests and the network.

Three implementations: :class:`~router.upstream._pool.H11Pool`, the lean HTTP/1.1 pool on
the data path; :class:`~router.upstream._h2pool.H2Pool` for ``pool.http2``; and
:class:`HttpxTransport` on httpx2, for ``pool.transport = "httpx"`` and work off the hot
path (health probes). Both raise only our taxonomy's errors: a
foreign exception never leaves a transport, and one that may quote the request (a
header value, so a key) is not quoted, nor chained.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Protocol
from urllib.parse import urlsplit

import httpx2
import trio

from adapters import NetworkError, StreamError, Timeout, UpstreamRequest

from ._connect import tls_problem
from ._tls import HTTPX_H1, HTTPX_H2, SYSTEM

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

    from rules import ProxyURL

    from ._proxy import ProxyRoutes
    from ._tls import ClientTLS

__all__ = ["HttpxTransport", "Transport", "UpstreamResponse", "unsendable"]


class UpstreamResponse:
    """An upstream's status and headers, with the body still to be read, once."""

    __slots__ = ("_body", "complete", "headers", "status")

    def __init__(
        self, status: int, headers: list[tuple[str, str]], body: AsyncGenerator[bytes]
    ) -> None:
        self.status = status
        self.headers = headers
        self._body = body
        self.complete = False

    async def aiter_bytes(self) -> AsyncGenerator[bytes]:
        """The body's bytes as they arrive. Raises StreamError if it breaks."""
        async with aclosing(self._body) as body:
            async for data in body:
                yield data
        self.complete = True

    async def aread(self) -> bytes:
        return b"".join([data async for data in self.aiter_bytes()])


class Transport(Protocol):
    def request(self, req: UpstreamRequest) -> AbstractAsyncContextManager[UpstreamResponse]:
        """Send ``req``; the context yields the response while its body is readable."""
        ...

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Background work of the transport's connections (reported started once
        requests may be sent); returns after :meth:`aclose`, or at once if none."""
        ...

    async def aclose(self) -> None: ...


class HttpxTransport:
    """The same interface over ``httpx2.AsyncClient``.

    One client per proxy an origin goes through (most providers: one), made on first
    use with the provider's TLS context (``verify=``): httpx2 never builds one of its
    own, which would cost ~40 ms on the event loop per client.

    Args:
        max_connections: Pool size.
        keepalive: Seconds an idle connection is kept.
        connect_timeout: Seconds to connect. Reads are bounded by the caller's scopes.
        http2: Negotiate HTTP/2 where the upstream offers it.
        tls: The provider's TLS contexts; the system's trust store (shared) if None.
        proxy: The provider's proxies (None: direct connections).
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive: float = 90.0,
        connect_timeout: float = 5.0,
        http2: bool = False,
        tls: ClientTLS | None = None,
        proxy: ProxyRoutes | None = None,
    ) -> None:
        self._limits = httpx2.Limits(
            max_connections=max_connections,
            max_keepalive_connections=max_connections,
            keepalive_expiry=keepalive,
        )
        self._timeout = httpx2.Timeout(None, connect=connect_timeout)
        self._http2 = http2
        self._tls = tls or SYSTEM
        self._proxy = proxy
        self._clients: dict[ProxyURL | None, httpx2.AsyncClient] = {}

    async def _client(self, url: str) -> httpx2.AsyncClient:
        proxy = None
        if self._proxy is not None:
            parts = urlsplit(url)
            port = parts.port or (443 if parts.scheme == "https" else 80)
            proxy = self._proxy.for_origin(parts.scheme, parts.hostname or "", port)
        client = self._clients.get(proxy)
        if client is None:
            # httpx2 sets its ALPN list on the context it is given: one of our own,
            # with that same list, so the setting changes nothing shared.
            context = await self._tls.context(HTTPX_H2 if self._http2 else HTTPX_H1)
            client = self._clients.setdefault(
                proxy,
                httpx2.AsyncClient(
                    limits=self._limits,
                    timeout=self._timeout,
                    http2=self._http2,
                    verify=context,
                    proxy=_httpx_proxy(proxy),
                    trust_env=False,
                    follow_redirects=False,
                ),
            )
        return client

    @asynccontextmanager
    async def request(self, req: UpstreamRequest) -> AsyncIterator[UpstreamResponse]:
        try:
            client = await self._client(req.url)
            request = client.build_request(
                req.method, req.url, headers=list(req.headers), content=req.body
            )
            response = await client.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            raise Timeout(f"upstream request timed out: {type(exc).__name__}") from exc
        except (httpx2.LocalProtocolError, httpx2.InvalidURL, ValueError, TypeError) as exc:
            # Their text quotes what could not be sent (a header value: a key).
            raise NetworkError(unsendable(exc)) from None
        except httpx2.ProxyError as exc:
            raise NetworkError(f"the proxy refused the tunnel: {exc}") from exc
        except httpx2.TransportError as exc:
            problem = tls_problem(exc)
            if problem is not None:
                raise NetworkError(f"upstream TLS failed: {problem}") from exc
            raise NetworkError(f"upstream connection failed: {exc!r}") from exc
        except Exception as exc:
            raise NetworkError(unsendable(exc)) from None
        try:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in response.headers.raw]
            yield UpstreamResponse(response.status_code, headers, _body(response))
        finally:
            await response.aclose()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()  # httpx2 keeps no task of its own

    async def aclose(self) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


def _httpx_proxy(proxy: ProxyURL | None) -> httpx2.Proxy | None:
    if proxy is None:
        return None
    auth = (proxy.username, proxy.password) if proxy.username or proxy.password else None
    return httpx2.Proxy(str(proxy), auth=auth)


def unsendable(exc: BaseException) -> str:
    """What to say of a request that could not be sent, without quoting the exception."""
    return (
        f"the request could not be sent ({type(exc).__name__}): a header or the URL"
        " is not valid HTTP (a provider secret with a stray character?)"
    )


async def _body(response: httpx2.Response) -> AsyncGenerator[bytes]:
    try:
        async for data in response.aiter_raw():
            yield data
    except httpx2.TransportError as exc:
        raise StreamError(f"upstream body broke: {exc!r}") from exc
    except Exception as exc:  # a decoder's or the pool's own: not ours to pass on
        raise StreamError(f"upstream body broke: {type(exc).__name__}") from None
