"""Opening connections to upstream origins: TCP, then TLS.

One :class:`Dialer` per pool. Its TLS context is built once (never per connection: a
context with the system's trust store costs ~40 ms of CPU to build), and every error is
ours: :class:`~adapters.Timeout` past ``connect_timeout``, else
:class:`~adapters.NetworkError`.
"""

from __future__ import annotations

import ssl

import trio

from adapters import NetworkError, Timeout

__all__ = ["Dialer"]


class Dialer:
    """Opens streams to origins for one pool.

    Args:
        connect_timeout: Seconds for TCP and the TLS handshake together.
        ssl_context: For https origins. None: the system's trust store, built on first
            use.
    """

    def __init__(
        self, *, connect_timeout: float, ssl_context: ssl.SSLContext | None = None
    ) -> None:
        self.connect_timeout = connect_timeout
        self._ssl_context = ssl_context

    @property
    def ssl_context(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    async def open(self, scheme: str, host: str, port: int) -> trio.abc.Stream:
        """A connected stream to ``scheme://host:port``, TLS done for https.

        Raises:
            Timeout: past ``connect_timeout``.
            NetworkError: refused, unreachable, or the TLS handshake failed.
        """
        where = f"{host}:{port}"
        try:
            with trio.fail_after(self.connect_timeout):
                tcp = await trio.open_tcp_stream(host, port)
                if scheme != "https":
                    return tcp
                tls = trio.SSLStream(tcp, self.ssl_context, server_hostname=host)
                try:
                    await tls.do_handshake()
                except BaseException:  # refused, timed out or cancelled: no socket left open
                    tcp.socket.close()
                    raise
                return tls
        except trio.TooSlowError as exc:
            raise Timeout(f"connecting to {where} timed out") from exc
        except (OSError, trio.BrokenResourceError) as exc:
            raise NetworkError(f"cannot connect to {where}: {exc}") from exc
