"""sd_notify datagrams received on a test NOTIFY_SOCKET; socket-activation parsing."""

from __future__ import annotations

import logging
import os
import socket
import time
import uuid
from typing import TYPE_CHECKING

import pytest
import trio

from router.ops._systemd import Notifier, binds_for, listen_fds

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from trio.testing import MockClock


@pytest.fixture(params=["path", "abstract"])
def notify_socket(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Iterator[tuple[str, socket.socket]]:
    """``(NOTIFY_SOCKET value, the bound receiving socket)``, read non-blockingly."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.setblocking(False)
    if request.param == "path":
        name = str(tmp_path / "notify")
        sock.bind(name)
    else:
        name = f"@llm-router-test-{uuid.uuid4().hex}"
        sock.bind("\0" + name[1:])
    with sock:
        yield name, sock


def received(sock: socket.socket) -> list[str]:
    """Every datagram waiting on ``sock``."""
    messages = []
    while True:
        try:
            messages.append(sock.recv(4096).decode())
        except BlockingIOError:
            return messages


async def test_messages(notify_socket: tuple[str, socket.socket]) -> None:
    name, sock = notify_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": name})
    assert notifier.enabled
    notifier.ready("serving on 127.0.0.1:8080, rules 1a2b3c")
    notifier.stopping("draining 3 request(s)")
    notifier.status("reload refused:\nroutes.chat: unknown key")
    notifier.watchdog()
    assert received(sock) == [
        "READY=1\nSTATUS=serving on 127.0.0.1:8080, rules 1a2b3c",
        "STOPPING=1\nSTATUS=draining 3 request(s)",
        "STATUS=reload refused: routes.chat: unknown key",  # one line: STATUS= ends at \n
        "WATCHDOG=1",
    ]


async def test_reloading_carries_monotonic_usec(notify_socket: tuple[str, socket.socket]) -> None:
    name, sock = notify_socket
    before = time.clock_gettime(time.CLOCK_MONOTONIC)
    Notifier.from_env({"NOTIFY_SOCKET": name}).reloading("reloading (SIGHUP)")
    after = time.clock_gettime(time.CLOCK_MONOTONIC)
    [message] = received(sock)
    first, usec, status = message.split("\n")
    assert first == "RELOADING=1"
    assert status == "STATUS=reloading (SIGHUP)"
    key, value = usec.split("=")
    assert key == "MONOTONIC_USEC"
    assert value.isdigit()
    assert int(before * 1e6) - 1 <= int(value) <= int(after * 1e6) + 1


async def test_no_notify_socket_is_a_no_op() -> None:
    notifier = Notifier.from_env({"WATCHDOG_USEC": "30000000"})
    assert not notifier.enabled
    notifier.ready("x")
    notifier.reloading("x")
    notifier.stopping("x")
    notifier.status("x")
    notifier.watchdog()
    assert notifier.watchdog_interval() is None
    with trio.fail_after(1):
        await notifier.watchdog_loop()  # returns at once


async def test_send_failures_do_not_raise(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": str(tmp_path / "nobody-listens")})
    with caplog.at_level(logging.DEBUG, logger="llm_router"):
        notifier.ready("x")
    assert "sd_notify" in caplog.text


def test_unsupported_address_is_a_no_op() -> None:
    assert not Notifier.from_env({"NOTIFY_SOCKET": "vsock:2:1234"}).enabled


@pytest.mark.parametrize(
    ("environ", "interval"),
    [
        ({"WATCHDOG_USEC": "30000000"}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid())}, 15.0),
        ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "soon"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval(environ: dict[str, str], interval: float | None) -> None:
    notifier = Notifier.from_env({"NOTIFY_SOCKET": "/run/systemd/notify", **environ})
    assert notifier.watchdog_interval() == interval


async def test_watchdog_loop_pings_at_half_the_interval(
    autojump_clock: MockClock, notify_socket: tuple[str, socket.socket]
) -> None:
    name, sock = notify_socket
    notifier = Notifier.from_env({"NOTIFY_SOCKET": name, "WATCHDOG_USEC": "30000000"})
    start = trio.current_time()
    pings: list[float] = []
    async with trio.open_nursery() as nursery:
        nursery.start_soon(notifier.watchdog_loop)
        while len(pings) < 4:
            # The send is done before the sender sleeps again, so the datagram is
            # readable before the clock can jump: the time seen here is exact.
            await trio.lowlevel.wait_readable(sock)
            assert received(sock) == ["WATCHDOG=1"]
            pings.append(trio.current_time() - start)
        nursery.cancel_scope.cancel()
    assert pings == [0.0, 15.0, 30.0, 45.0]


def test_listen_fds() -> None:
    environ = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "a:b"}
    assert listen_fds(environ) == [3, 4]
    assert environ == {}  # as sd_listen_fds(unset_environment=1): children inherit nothing


@pytest.mark.parametrize(
    "environ",
    [
        {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1"},  # meant for another process
        {"LISTEN_FDS": "1"},
        {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "0"},
        {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "x"},
        {},
    ],
)
def test_not_activated(environ: dict[str, str]) -> None:
    assert listen_fds(environ) == []
    assert not any(key.startswith("LISTEN_") for key in environ)


def test_listen_fds_cleans_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "1")
    assert listen_fds() == [3]
    assert "LISTEN_PID" not in os.environ
    assert "LISTEN_FDS" not in os.environ


@pytest.mark.parametrize(
    ("listen", "activated", "binds"),
    [
        (["127.0.0.1:8080"], [], ["127.0.0.1:8080"]),
        (["[::1]:9000", "0.0.0.0:8080"], [], ["[::1]:9000", "0.0.0.0:8080"]),
        (["fd:3"], [], ["fd://3"]),
        (["127.0.0.1:8080"], [3, 4], ["fd://3", "fd://4"]),  # the default: the sockets
        (["fd:3"], [3], ["fd://3"]),
        (["fd:4"], [3, 4], ["fd://4"]),
        (["10.0.0.1:80"], [3], ["fd://3"]),  # activated sockets win, with a warning
    ],
)
def test_binds_for(listen: list[str], activated: list[int], binds: list[str]) -> None:
    assert binds_for(listen, activated) == binds


def test_ignored_listen_address_is_reported(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="llm_router"):
        binds_for(["127.0.0.1:8080"], [3])  # the default: nothing to report
        assert caplog.records == []
        binds_for(["10.0.0.1:80"], [3])
    assert "server.listen 10.0.0.1:80 ignored" in caplog.text
