"""The listening sockets of ``serve --workers N``, bound once by the main process.

Each ``HOST:PORT`` gets one socket per worker, all bound to the same address with
``SO_REUSEPORT``: the kernel then hands each new connection to one of them by a hash of
its addresses, so connections spread evenly over the workers. One socket shared by all
workers spreads them badly: every worker's event loop wakes for each connection and
the first to run takes the whole listen queue (the accept loop takes up to 64 per
wake-up), so one worker may hold most of a burst of connections while another idles.
Measured with wrk's 64 keep-alive clients on two workers (2 cores): one shared
socket split them 13/51 three times out of three; ``SO_REUSEPORT`` 29/35 to 35/29.

The main process keeps every socket open for its whole life: a worker that dies leaves
the connections waiting in its socket's queue to the worker that replaces it (same
index, same socket), instead of having them reset as closing a ``SO_REUSEPORT``
socket would.

Socket-activated or inherited sockets (``fd:N``) cannot be multiplied: each is shared
by every worker as it is.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING

from hypercorn.utils import repr_socket_addr

if TYPE_CHECKING:
    from collections.abc import Sequence

__all__ = ["open_listeners", "url_of"]


def open_listeners(
    binds: Sequence[str], count: int, backlog: int
) -> list[tuple[socket.socket, ...]]:
    """Listening sockets for ``count`` workers: element ``i`` holds worker ``i+1``'s
    socket for each bind, in order.

    Args:
        binds: hypercorn binds (`binds_for`): ``HOST:PORT``, ``[v6]:PORT`` or ``fd://N``.

    Raises:
        OSError: an address cannot be bound (in use, not ours), or ``fd://N`` is not a socket.
    """
    columns: list[list[socket.socket]] = []
    try:
        for bind in binds:
            if bind.startswith("fd://"):
                sock = socket.socket(fileno=int(bind[5:]))
                sock.listen(backlog)
                columns.append([sock] * count)
                continue
            host, port = _address(bind)
            first = _reuse_port_socket(host, port, backlog)
            columns.append([first])
            port = first.getsockname()[1]  # port 0: the one the kernel chose, for all
            for _ in range(count - 1):
                columns[-1].append(_reuse_port_socket(host, port, backlog))
    except BaseException:
        for column in columns:
            for sock in set(column):
                sock.close()
        raise
    return [tuple(column[i] for column in columns) for i in range(count)]


def url_of(sock: socket.socket) -> str:
    return f"http://{repr_socket_addr(sock.family, sock.getsockname())}"


def _address(bind: str) -> tuple[str, int]:
    host, _, port = bind.rpartition(":")
    return host.strip("[]"), int(port)


def _reuse_port_socket(host: str, port: int, backlog: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except BaseException:
        sock.close()
        raise
    return sock
