"""systemd integration without libsystemd: readiness notifications and socket activation.

Notifications are the ``sd_notify`` protocol: one datagram of ``KEY=VALUE`` lines sent
to the ``AF_UNIX`` socket named by ``$NOTIFY_SOCKET`` (a filesystem path, or an abstract
socket when it starts with ``@``). The daemon sends ``READY=1`` once it listens with the
rules loaded, ``RELOADING=1`` (with ``MONOTONIC_USEC``) and ``READY=1`` around each
reload, ``STOPPING=1`` when it starts to drain, and ``WATCHDOG=1`` at half of
``WatchdogSec=``. A notification is a courtesy to the service manager, never a reason to
fail a request: sends do not block and never raise (failures are logged at debug).

Socket activation is ``sd_listen_fds``: systemd passes listening sockets as descriptors
3, 4, ... and names their number in ``$LISTEN_FDS`` for the process ``$LISTEN_PID``.
hypercorn binds an inherited socket as ``fd://N`` but does not read these variables, so
`listen_fds` does and `binds_for` maps ``server.listen`` to hypercorn's binds.

The rule for ``server.listen`` under socket activation: the activated sockets are used.
``fd:N`` entries pick among them; ``HOST:PORT`` entries are ignored, with a log line
saying so (the address is the ``.socket`` unit's ``ListenStream=``, not the file's).
Without activation, ``HOST:PORT`` is bound and ``fd:N`` is a descriptor inherited some
other way.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import TYPE_CHECKING

import trio

if TYPE_CHECKING:
    from collections.abc import Mapping, MutableMapping, Sequence

__all__ = ["DEFAULT_LISTEN", "SD_LISTEN_FDS_START", "Notifier", "binds_for", "listen_fds"]

log = logging.getLogger("llm_router")

#: The first descriptor systemd passes (``SD_LISTEN_FDS_START`` in sd-daemon.h).
SD_LISTEN_FDS_START = 3
#: ``server.listen`` when the file does not set it (see ``rules.ServerConfig``).
DEFAULT_LISTEN = ("127.0.0.1:8080",)

_LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


class Notifier:
    """Sends ``sd_notify`` messages to the service manager; does nothing outside systemd.

    Args:
        address: ``$NOTIFY_SOCKET``: an absolute path, or ``@name`` for an abstract
            socket. None (not under a ``Type=notify`` unit) makes every method a no-op.
        watchdog_usec: ``$WATCHDOG_USEC`` when the watchdog is meant for this process.
    """

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self._target: str | None = None
        if address and address.startswith("@"):
            # Abstract namespace: a leading NUL byte instead of "@" (Linux only).
            self._target = "\0" + address[1:]
        elif address and address.startswith("/"):
            self._target = address
        elif address:
            # systemd ≥ 254 may also pass "vsock:CID:PORT" (to VMs); not our case.
            log.warning("NOTIFY_SOCKET=%s is not a path or @name: not notifying", address)
        self._watchdog_usec = watchdog_usec if self._target is not None else None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> Notifier:
        """The notifier systemd asked for through the environment, or a no-op one.

        ``WATCHDOG_USEC`` counts only when ``WATCHDOG_PID`` is unset or is our pid, as
        in ``sd_watchdog_enabled``: a child that inherited the variables must not ping.
        """
        usec: int | None = None
        watchdog_pid = environ.get("WATCHDOG_PID", "")
        if not watchdog_pid or watchdog_pid.strip() == str(os.getpid()):
            try:
                usec = int(environ.get("WATCHDOG_USEC", ""))
            except ValueError:
                usec = None
            if usec is not None and usec <= 0:
                usec = None
        return cls(environ.get("NOTIFY_SOCKET") or None, usec)

    @property
    def enabled(self) -> bool:
        """Whether messages go anywhere."""
        return self._target is not None

    def ready(self, status: str) -> None:
        """Startup or a reload finished: the service is ready."""
        self._send(f"READY=1\nSTATUS={_one_line(status)}")

    def reloading(self, status: str) -> None:
        """A reload starts; ``READY=1`` (`ready`) must follow when it ends.

        ``MONOTONIC_USEC`` is CLOCK_MONOTONIC in microseconds (systemd compares it with
        its own clock to match this message to a reload request; ``Type=notify-reload``
        requires it).
        """
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        self._send(f"RELOADING=1\nMONOTONIC_USEC={usec}\nSTATUS={_one_line(status)}")

    def stopping(self, status: str) -> None:
        """Shutdown starts (draining)."""
        self._send(f"STOPPING=1\nSTATUS={_one_line(status)}")

    def status(self, text: str) -> None:
        """A line a person reads in ``systemctl status``."""
        self._send(f"STATUS={_one_line(text)}")

    def watchdog(self) -> None:
        """Tell the watchdog we are alive."""
        self._send("WATCHDOG=1")

    def send(self, message: str) -> None:
        """Any other message (``KEY=VALUE`` lines), as is."""
        self._send(message)

    def watchdog_interval(self) -> float | None:
        """Seconds between ``WATCHDOG=1`` pings (half of ``WatchdogSec=``), or None."""
        if self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 2 / 1_000_000

    async def watchdog_loop(self) -> None:
        """Ping the watchdog now and every `watchdog_interval` seconds until cancelled.

        Returns at once when there is no watchdog. It runs in the daemon's nursery, so a
        stuck event loop stops the pings and systemd restarts the service.
        """
        interval = self.watchdog_interval()
        if interval is None:
            return
        deadline = trio.current_time()
        while True:
            self.watchdog()
            # Deadlines, not sleeps: the period does not drift by the send's duration.
            deadline += interval
            await trio.sleep_until(deadline)

    def _send(self, message: str) -> None:
        if self._target is None:
            return
        try:
            # A socket per message, as sd_notify does: nothing to close at exit, and a
            # service manager that re-created its socket (daemon-reexec) is still found.
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.setblocking(False)
                sock.sendto(message.encode(), self._target)
        except OSError as exc:  # BlockingIOError (queue full) included: drop the message
            log.debug("sd_notify to %s failed: %s (%r)", self.address, exc, message)


def listen_fds(environ: MutableMapping[str, str] = os.environ) -> list[int]:
    """The sockets systemd passed us (socket activation), as ``sd_listen_fds(1)`` does.

    When ``LISTEN_PID`` is our pid and ``LISTEN_FDS`` is N, the descriptors are 3 to
    3+N-1. The ``LISTEN_*`` variables are removed from ``environ`` in every case (from
    the process environment when it is ``os.environ``), so no child inherits them.

    Returns:
        The descriptors, or an empty list when the process was not socket-activated.
    """
    pid = environ.get("LISTEN_PID", "")
    count = environ.get("LISTEN_FDS", "")
    for name in _LISTEN_VARS:
        environ.pop(name, None)
    try:
        if int(pid) != os.getpid():
            return []  # meant for another process (we inherited it)
        n = int(count)
    except ValueError:
        return []
    if n <= 0:
        return []
    return list(range(SD_LISTEN_FDS_START, SD_LISTEN_FDS_START + n))


def binds_for(listen: Sequence[str], activated: list[int]) -> list[str]:
    """hypercorn's ``bind`` list for ``server.listen`` (or ``--listen``).

    Args:
        listen: ``HOST:PORT``, ``[::1]:PORT`` or ``fd:N`` values.
        activated: `listen_fds`'s result.

    Returns:
        Without activation: ``HOST:PORT`` as is and ``fd:N`` as ``fd://N``. With
        activation: the ``fd:N`` entries as ``fd://N``, or every activated socket when
        there are none; ``HOST:PORT`` entries are ignored (and logged as such, unless
        ``listen`` is the default).
    """
    if not activated:
        return [_bind(address) for address in listen]
    fds = [_bind(address) for address in listen if address.startswith("fd:")]
    ignored = [address for address in listen if not address.startswith("fd:")]
    binds = fds or [f"fd://{fd}" for fd in activated]
    if ignored and tuple(listen) != DEFAULT_LISTEN:
        log.warning(
            "socket-activated: listening on %s; server.listen %s ignored"
            " (the .socket unit's ListenStream= sets the address)",
            ", ".join(binds),
            ", ".join(ignored),
        )
    unknown = [b for b in fds if not b[5:].isdigit() or int(b[5:]) not in activated]
    if unknown:
        log.warning(
            "server.listen names %s, but systemd passed fd %s",
            ", ".join(unknown),
            ", ".join(map(str, activated)),
        )
    return binds


def _bind(address: str) -> str:
    return f"fd://{address[3:]}" if address.startswith("fd:") else address


def _one_line(text: str) -> str:
    # A newline would end STATUS= and start a new (bogus) assignment.
    return " ".join(text.splitlines())
