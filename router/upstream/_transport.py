"""The one small interface between adapters' requests and the network.

Two implementations: :class:`~router._pool.H11Pool`, the lean pool on the data path,
and :class:`HttpxTransport` on httpx2, for what the lean pool does not do (HTTP/2,
proxies) and for work off the hot path. Both raise only our taxonomy's errors: a
foreign exception never leaves a transport, and one that may quote the request (a
header value, so a key) is not quoted, nor chained.
"""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager, aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Protocol

import httpx2
import trio

from adapters import NetworkError, StreamError, Timeout, UpstreamRequest

if TYPE_CHECKING:
    from collections.abc import AsyncGenerator, AsyncIterator

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
    """The same interface over an ``httpx2.AsyncClient``.

    Args:
        max_connections: Pool size.
        keepalive: Seconds an idle connection is kept.
        connect_timeout: Seconds to connect. Reads are bounded by the caller's scopes.
        http2: Negotiate HTTP/2 where the upstream offers it.
    """

    def __init__(
        self,
        *,
        max_connections: int = 100,
        keepalive: float = 90.0,
        connect_timeout: float = 5.0,
        http2: bool = False,
    ) -> None:
        self._client = httpx2.AsyncClient(
            limits=httpx2.Limits(
                max_connections=max_connections,
                max_keepalive_connections=max_connections,
                keepalive_expiry=keepalive,
            ),
            timeout=httpx2.Timeout(None, connect=connect_timeout),
            http2=http2,
            trust_env=False,
            follow_redirects=False,
        )

    @asynccontextmanager
    async def request(self, req: UpstreamRequest) -> AsyncIterator[UpstreamResponse]:
        try:
            request = self._client.build_request(
                req.method, req.url, headers=list(req.headers), content=req.body
            )
            response = await self._client.send(request, stream=True)
        except httpx2.TimeoutException as exc:
            raise Timeout(f"upstream request timed out: {type(exc).__name__}") from exc
        except (httpx2.LocalProtocolError, httpx2.InvalidURL, ValueError, TypeError) as exc:
            # Their text quotes what could not be sent (a header value: a key).
            raise NetworkError(unsendable(exc)) from None
        except httpx2.TransportError as exc:
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
        await self._client.aclose()


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
