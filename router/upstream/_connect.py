"""Opening connections to upstream origins: TCP (through a proxy if set), then TLS.

One :class:`Dialer` per pool, the one place a pool's connections are opened. It never
builds a TLS context on the event loop: its :class:`~._tls.ClientTLS` has them built
already (or builds a missing one in a worker thread). It keeps the last TLS session
of each origin and offers it on the next connection there, so a new connection to a
known host resumes (no certificate chain sent and checked again; one round trip fewer
with TLS 1.2). TLS 1.3 sends its session tickets after the handshake, so the session
worth keeping exists only once a response has been read: the pool hands it back with
:meth:`Dialer.keep_session` when a connection goes back to the pool or is closed.

Every error is ours: :class:`~adapters.Timeout` past ``connect_timeout``, else
:class:`~adapters.NetworkError`, which says when TLS was what failed
(``certificate verify failed: ...``), never a bare "cannot connect".
"""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import trio

from adapters import NetworkError, Timeout

from ._proxy import authority, open_tunnel
from ._tls import SYSTEM, ClientTLS

if TYPE_CHECKING:
    from rules import ProxyURL

    from ._proxy import ProxyRoutes
    from ._tls import ALPN

__all__ = ["Dialer", "tls_problem"]

#: Origins whose session is kept, at most (a provider talks to one or two).
MAX_SESSIONS = 64


class Dialer:
    """Opens streams to origins for one pool.

    Args:
        connect_timeout: Seconds for TCP, the proxy's tunnel and the TLS handshake
            together.
        tls: The provider's TLS contexts (None: the system's trust store, shared).
        ssl_context: A context to use as it is, instead of ``tls`` (tests).
        proxy: Which proxy each origin goes through (None: none).
    """

    def __init__(
        self,
        *,
        connect_timeout: float,
        tls: ClientTLS | None = None,
        ssl_context: ssl.SSLContext | None = None,
        proxy: ProxyRoutes | None = None,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.tls = ClientTLS.fixed(ssl_context) if ssl_context is not None else tls or SYSTEM
        self.proxy = proxy
        self._sessions: dict[tuple[ALPN, str, int], ssl.SSLSession] = {}

    def forwarding_proxy(self, scheme: str, host: str, port: int) -> ProxyURL | None:
        """The proxy a plain http request to ``host`` is forwarded through: the request
        then goes on a connection :meth:`open` made to the proxy, with its absolute URL
        as the target (and ``Proxy-Authorization``). None for https (a tunnel, which is
        :meth:`open`'s own business) or a direct connection."""
        if scheme == "https" or self.proxy is None:
            return None
        return self.proxy.for_origin(scheme, host, port)

    async def open(
        self, scheme: str, host: str, port: int, *, alpn: ALPN = None
    ) -> trio.abc.Stream:
        """A connected stream to ``scheme://host:port``, TLS done for https.

        Args:
            alpn: The ALPN protocols to offer (``("h2", "http/1.1")``); read the choice
                from ``stream.selected_alpn_protocol()``. None: no ALPN.

        Raises:
            Timeout: past ``connect_timeout``.
            NetworkError: refused, unreachable, the proxy refused the tunnel, or the
                TLS handshake failed (the message says why).
        """
        proxy = self.proxy.for_origin(scheme, host, port) if self.proxy is not None else None
        where = authority(host, port) + (f" through proxy {proxy}" if proxy else "")
        context = await self.tls.context(alpn) if scheme == "https" else None
        try:
            with trio.fail_after(self.connect_timeout):
                if proxy is None:
                    tcp = await trio.open_tcp_stream(host, port)
                else:
                    tcp = await trio.open_tcp_stream(proxy.host, proxy.port)
                try:
                    if context is None:
                        return tcp
                    if proxy is not None:
                        await open_tunnel(tcp, proxy, host, port)
                    return await self._handshake(tcp, context, host, port, alpn)
                except BaseException:  # refused, timed out or cancelled: no socket left open
                    tcp.socket.close()
                    raise
        except trio.TooSlowError as exc:
            raise Timeout(f"connecting to {where} timed out") from exc
        except (OSError, trio.BrokenResourceError) as exc:
            problem = tls_problem(exc)
            if problem is not None:
                raise NetworkError(f"TLS handshake with {where} failed: {problem}") from exc
            raise NetworkError(f"cannot connect to {where}: {exc}") from exc

    async def _handshake(
        self, tcp: trio.SocketStream, context: ssl.SSLContext, host: str, port: int, alpn: ALPN
    ) -> trio.SSLStream[trio.SocketStream]:
        stream = trio.SSLStream(tcp, context, server_hostname=host)
        session = self._sessions.get((alpn, host, port))
        if session is not None:
            try:
                stream.session = session
            except ValueError:  # from another context (a test's fixed one changed)
                self._sessions.pop((alpn, host, port), None)
        await stream.do_handshake()
        return stream

    def keep_session(
        self, stream: trio.abc.Stream, host: str, port: int, *, alpn: ALPN = None
    ) -> bool:
        """Keep ``stream``'s TLS session for the next connection to ``host:port``.

        Call it once a response has been read on the stream (TLS 1.3 tickets come
        after the handshake), when the connection goes back to the pool or is closed.
        A session that cannot be resumed (TLS 1.3 before its ticket) is not kept.

        Returns:
            Whether a session was kept.
        """
        if not isinstance(stream, trio.SSLStream):
            return False
        try:
            session = stream.session
        except trio.NeedHandshakeError:
            return False
        if session is None or not (session.has_ticket or session.id):
            return False
        if not session.has_ticket and stream.version() == "TLSv1.3":
            return False
        key = (alpn, host, port)
        if key not in self._sessions and len(self._sessions) >= MAX_SESSIONS:
            del self._sessions[next(iter(self._sessions))]
        self._sessions[key] = session
        return True


def tls_problem(exc: BaseException) -> str | None:
    """What went wrong in TLS, if TLS is what broke ``exc``: trio wraps the SSLError of
    a failed handshake or read in a BrokenResourceError, which httpx2 wraps again (as
    the context, not the cause, of its own)."""
    error: BaseException | None = exc
    for _ in range(8):
        if error is None or isinstance(error, ssl.SSLError):
            break
        error = error.__cause__ or error.__context__
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        reason = error.reason or type(error).__name__
        hint = _HINTS.get(reason, "")
        return reason.lower().replace("_", " ") + (f" ({hint})" if hint else "")
    return None


_HINTS = {
    "WRONG_VERSION_NUMBER": "is it plain http:// rather than https://?",
    "TLSV13_ALERT_CERTIFICATE_REQUIRED": "the upstream wants a client certificate: tls.cert_file",
    "SSLV3_ALERT_HANDSHAKE_FAILURE": "no protocol or cipher in common, or a client certificate is missing",
    "SSLV3_ALERT_BAD_CERTIFICATE": "the upstream refused our client certificate",
    "TLSV1_ALERT_UNKNOWN_CA": "the upstream does not trust our client certificate's CA",
    "UNEXPECTED_EOF_WHILE_READING": "the upstream hung up mid-TLS: does it want a client"
    " certificate (tls.cert_file), or speak TLS at all?",
}
