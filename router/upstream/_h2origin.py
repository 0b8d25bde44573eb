"""An HTTP/2 pool's origins: their connections and the requests waiting for a stream."""

from __future__ import annotations

import collections
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from adapters import GatewayError

    from ._h2conn import H2Connection

__all__ = ["Origin", "Waiter"]

#: What a server is assumed to allow per connection until one says (RFC 9113 §6.5.2's
#: recommended minimum).
_DEFAULT_STREAMS = 100


class Waiter:
    """A request waiting for a stream: the connection it gets, or why it gets none."""

    __slots__ = ("conn", "event", "failure", "http1")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.conn: H2Connection | None = None
        self.failure: GatewayError | None = None
        self.http1 = False


class Origin:
    """Scheme, host and port, with their connections and the requests waiting for one."""

    __slots__ = (
        "authority",
        "conns",
        "dialing",
        "hint",
        "host",
        "http1",
        "port",
        "retry_at",
        "scheme",
        "waiters",
    )

    def __init__(self, scheme: str, host: str, port: int | None) -> None:
        default_port = 443 if scheme == "https" else 80
        self.scheme = scheme
        self.host = host
        self.port = port or default_port
        self.authority = host if self.port == default_port else f"{host}:{self.port}"
        self.conns: list[H2Connection] = []
        self.waiters: collections.deque[Waiter] = collections.deque()
        self.dialing = 0
        self.hint = _DEFAULT_STREAMS  # the last stream limit a server gave
        self.http1 = False  # the server does not speak HTTP/2: H11Pool, for good
        self.retry_at = 0.0

    def alive(self) -> bool:
        """Whether a connection is open or opening (one that closed is on its way out)."""
        return any(not conn.closed for conn in self.conns)

    def free_connection(self) -> H2Connection | None:
        """The oldest connection with a free stream: new streams pack the first ones,
        so the others go idle and close after a burst."""
        for conn in self.conns:
            if conn.free:
                return conn
        return None
