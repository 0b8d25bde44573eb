"""TLS and HTTP proxies in front of a fake upstream, each recording what it saw.

- :class:`TLSFront` terminates TLS with a certificate of a throwaway CA (trustme) and
  pipes the bytes to a plain-http fake; per connection it records whether the TLS
  session was resumed and the client certificate shown, and every SNI name asked for.
  It can require a client certificate (mutual TLS) and cap the TLS version.
- :class:`ConnectProxy` answers ``CONNECT host:port`` (or refuses with a scripted
  status) and then pipes bytes, recording each target and ``Proxy-Authorization``.
- :class:`ForwardProxy` takes absolute-form requests (``POST http://host/path``),
  recording target and ``Proxy-Authorization``, and relays each to the origin.

Both proxies reach every origin on 127.0.0.1 whatever its host name (the port is the
origin's): a test can name its upstream ``upstream.test`` (so SNI and the certificate
check use a real name) while nothing leaves the machine, and a router that resolved
or dialled the name itself would fail.
"""

from __future__ import annotations

import contextlib
import ssl
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import attrs
import h11
import trio

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable

    import trustme

__all__ = ["Accepted", "ConnectProxy", "ForwardProxy", "TLSFront", "serving", "serving_tls"]

_READ = 65536


@attrs.define
class Accepted:
    """One TLS connection the front accepted."""

    resumed: bool
    version: str | None
    client_subject: str | None  # the client certificate's common name, if one was shown


class TLSFront:
    """TLS in front of ``127.0.0.1:target_port``.

    Args:
        ca: Issues the server's certificate, for ``names``.
        client_ca: If set, a client certificate issued by it is required.
        maximum_version: Caps the TLS version (``ssl.TLSVersion.TLSv1_2``).
        alpn: Protocols the server selects from (None: no ALPN).
    """

    def __init__(
        self,
        ca: trustme.CA,
        target_port: int,
        *,
        names: tuple[str, ...] = ("127.0.0.1", "upstream.test"),
        client_ca: trustme.CA | None = None,
        maximum_version: ssl.TLSVersion | None = None,
        alpn: list[str] | None = None,
    ) -> None:
        self.target_port = target_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert(*names).configure_cert(self.context)
        if client_ca is not None:
            self.context.verify_mode = ssl.CERT_REQUIRED
            client_ca.configure_trust(self.context)
        if maximum_version is not None:
            self.context.maximum_version = maximum_version
        if alpn is not None:
            self.context.set_alpn_protocols(alpn)
        self.context.sni_callback = self._sni
        self.accepted: list[Accepted] = []
        self.selected_alpn: list[str | None] = []
        self.refused: list[str] = []  # handshakes that failed, by reason
        self.server_names: list[str | None] = []

    def _sni(self, _obj: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        self.server_names.append(name)

    @property
    def resumed(self) -> list[bool]:
        return [a.resumed for a in self.accepted]

    async def handle(self, stream: trio.SSLStream[trio.SocketStream]) -> None:
        try:
            await stream.do_handshake()
        except trio.BrokenResourceError as exc:
            cause = exc.__cause__
            self.refused.append(getattr(cause, "reason", None) or type(cause).__name__)
            # Send the TLS alert OpenSSL wrote, as real servers do ("certificate
            # required"); trio drops it when a handshake fails.
            alert = stream._outgoing.read()
            if alert:
                with contextlib.suppress(trio.BrokenResourceError):
                    await stream.transport_stream.send_all(alert)
            await trio.aclose_forcefully(stream.transport_stream)
            return
        peer = stream.getpeercert()
        subject = None
        if peer:
            names = [v for rdn in peer["subject"] for k, v in rdn if k == "commonName"]
            subject = names[0] if names else ""
        self.accepted.append(Accepted(stream.session_reused, stream.version(), subject))
        self.selected_alpn.append(stream.selected_alpn_protocol())
        await _pipe_to(stream, self.target_port, b"")


class ConnectProxy:
    """A CONNECT proxy: tunnels to ``127.0.0.1:<the target's port>``.

    Args:
        refuse: Answer every CONNECT with this status instead (407: credentials).
    """

    def __init__(self, *, refuse: int | None = None) -> None:
        self.refuse = refuse
        self.targets: list[str] = []
        self.authorizations: list[str | None] = []

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        request = await _next_request(conn, stream)
        if request is None:
            return
        self.targets.append(request.target.decode())
        self.authorizations.append(_header(request, b"proxy-authorization"))
        if request.method != b"CONNECT" or self.refuse is not None:
            status = self.refuse or 405
            head = [("content-length", "0"), ("proxy-authenticate", 'Basic realm="test"')]
            await stream.send_all(conn.send(h11.Response(status_code=status, headers=head)))
            await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
            await stream.aclose()
            return
        port = int(request.target.decode().rpartition(":")[2])
        await stream.send_all(conn.send(h11.Response(status_code=200, headers=[])) or b"")
        await _pipe_to(stream, port, conn.trailing_data[0])


class ForwardProxy:
    """A forwarding proxy for plain http: absolute-form requests, relayed whole."""

    def __init__(self) -> None:
        self.targets: list[str] = []
        self.authorizations: list[str | None] = []
        self.connections = 0

    async def handle(self, stream: trio.SocketStream) -> None:
        self.connections += 1
        client = h11.Connection(h11.SERVER)
        while True:
            request = await _next_request(client, stream)
            if request is None:
                return
            body = await _read_body(client, stream)
            self.targets.append(request.target.decode())
            self.authorizations.append(_header(request, b"proxy-authorization"))
            url = urlsplit(request.target.decode())
            assert url.port is not None, "absolute form with the origin's port"
            headers = [(k, v) for k, v in request.headers if k != b"proxy-authorization"]
            path = (url.path or "/") + (f"?{url.query}" if url.query else "")
            status, answer_headers, answer = await _relay(
                url.port, h11.Request(method=request.method, target=path, headers=headers), body
            )
            kept = [
                (k, v)
                for k, v in answer_headers
                if k not in (b"content-length", b"transfer-encoding", b"connection")
            ]
            kept.append((b"content-length", str(len(answer)).encode()))
            await stream.send_all(client.send(h11.Response(status_code=status, headers=kept)))
            await stream.send_all(client.send(h11.Data(data=answer)) or b"")
            await stream.send_all(client.send(h11.EndOfMessage()) or b"")
            client.start_next_cycle()


@asynccontextmanager
async def serving(handler: Callable[[trio.SocketStream], Awaitable[None]]) -> AsyncIterator[int]:
    """Serve ``handler`` on 127.0.0.1:0; yields the port."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handler, 0, host="127.0.0.1"))
        yield listeners[0].socket.getsockname()[1]
        nursery.cancel_scope.cancel()


@asynccontextmanager
async def serving_tls(
    handler: Callable[[trio.SSLStream[trio.SocketStream]], Awaitable[None]],
    context: ssl.SSLContext,
) -> AsyncIterator[int]:
    """Serve ``handler`` over TLS on 127.0.0.1:0; yields the port."""
    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            partial(
                trio.serve_ssl_over_tcp,
                handler,
                0,
                context,
                host="127.0.0.1",
                https_compatible=True,
            )
        )
        yield listeners[0].transport_listener.socket.getsockname()[1]
        nursery.cancel_scope.cancel()


async def _next_request(conn: h11.Connection, stream: trio.abc.Stream) -> h11.Request | None:
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            try:
                data = await stream.receive_some(_READ)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return None
            conn.receive_data(bytes(data))
        elif isinstance(event, h11.Request):
            return event
        else:
            return None  # closed


async def _read_body(conn: h11.Connection, stream: trio.abc.Stream) -> bytes:
    parts = []
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(_READ)))
        elif isinstance(event, h11.Data):
            parts.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage) or event is h11.PAUSED:
            return b"".join(parts)
        else:
            raise AssertionError(f"unexpected {event!r}")


async def _relay(
    port: int, request: h11.Request, body: bytes
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    """One request to 127.0.0.1:port, on a connection of its own; the whole answer."""
    async with await trio.open_tcp_stream("127.0.0.1", port) as upstream:
        conn = h11.Connection(h11.CLIENT)
        await upstream.send_all(
            b"".join(
                (
                    conn.send(request) or b"",
                    conn.send(h11.Data(data=body)) or b"",
                    conn.send(h11.EndOfMessage()) or b"",
                )
            )
        )
        response = None
        while response is None:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await upstream.receive_some(_READ)))
            elif isinstance(event, h11.Response):
                response = event
        answer = await _read_body(conn, upstream)
        return response.status_code, list(response.headers), answer


async def _pipe_to(stream: trio.abc.Stream, port: int, first: bytes) -> None:
    """Pipe ``stream`` to and from 127.0.0.1:port (``first``: bytes already read)."""
    try:
        upstream = await trio.open_tcp_stream("127.0.0.1", port)
    except OSError:
        await trio.aclose_forcefully(stream)
        return
    async with upstream, trio.open_nursery() as nursery:

        async def copy(source: trio.abc.Stream, sink: trio.abc.Stream) -> None:
            try:
                while data := await source.receive_some(_READ):
                    await sink.send_all(data)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass
            nursery.cancel_scope.cancel()  # one side ended: the whole pipe ends

        if first:
            await upstream.send_all(first)
        nursery.start_soon(copy, stream, upstream)
        nursery.start_soon(copy, upstream, stream)
    await trio.aclose_forcefully(stream)


def _header(request: h11.Request, name: bytes) -> str | None:
    return next((v.decode() for k, v in request.headers if k == name), None)
