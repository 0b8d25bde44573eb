"""Image URLs fetched for providers that need bytes: public addresses only, bounded.

A fetch to a refused address must not even connect: each refusal is checked against a
listener on that address, which records every connection it is offered.
"""

from __future__ import annotations

import base64
import ipaddress
import socket
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from adapters import GatewayRequest, ImagePart, InvalidRequest, Message, TextPart
from router.upstream._images import (
    FETCH_FAILED,
    ImageFetcher,
    inline_images,
    is_public,
    wants_fetch,
)
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
LOOPBACK = ImageFetcher(["127.0.0.1/32"])


def _redirect(location: str) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
    return 302, [(b"location", location.encode())], b""


async def images(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """``/cat.png`` an image, ``/page.html`` not; ``/to?u=URL`` redirects to URL,
    ``/hop/N`` redirects N times before the image."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    path, query = scope["path"], scope["query_string"].decode()
    status, headers, body = 200, [(b"content-type", b"image/png")], PNG
    if path == "/page.html":
        headers = [(b"content-type", b"text/html")]
    elif path == "/to":
        status, headers, body = _redirect(query.removeprefix("u="))
    elif path.startswith("/hop/"):
        n = int(path.removeprefix("/hop/"))
        status, headers, body = _redirect(f"/hop/{n - 1}" if n > 1 else "/cat.png")
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@attrs.define
class Listener:
    """A socket that records what each connection offered to it sends."""

    port: int = 0
    received: list[bytes] = attrs.Factory(list)
    probed: trio.Event = attrs.Factory(trio.Event)

    async def handle(self, stream: trio.SocketStream) -> None:
        data = await stream.receive_some(65536)
        self.received.append(bytes(data))
        if data == b"probe":
            self.probed.set()
        await stream.aclose()

    async def offered(self, host: str) -> list[bytes]:
        """Every connection before now: a probe connection queues behind them all."""
        probe = await trio.open_tcp_stream(host, self.port)
        await probe.send_all(b"probe")
        await self.probed.wait()
        await probe.aclose()
        return self.received[:-1]


@asynccontextmanager
async def listening(*hosts: str) -> AsyncIterator[Listener]:
    """A :class:`Listener` on one port of each of ``hosts`` (those the system has)."""
    listeners: list[trio.SocketListener] = []
    listener = Listener()
    for host in hosts:
        try:
            listeners += await trio.open_tcp_listeners(listener.port, host=host)
        except OSError:
            continue  # no IPv6 loopback here
        listener.port = listeners[0].socket.getsockname()[1]
    async with trio.open_nursery() as nursery:
        for each in listeners:
            nursery.start_soon(trio.serve_listeners, listener.handle, [each])
        yield listener
        nursery.cancel_scope.cancel()


def asking(*urls: str) -> GatewayRequest:
    images = tuple(ImagePart(url, "low") for url in urls)
    content: tuple[TextPart | ImagePart, ...] = (TextPart("what is this?"), *images)
    return GatewayRequest(model="m", messages=(Message(role="user", content=content),))


async def refused(fetcher: ImageFetcher, url: str) -> None:
    with pytest.raises(InvalidRequest) as caught:
        await inline_images(asking(url), fetcher)
    assert caught.value.message == FETCH_FAILED


async def test_an_image_url_becomes_a_data_url() -> None:
    async with running(images) as base:
        req = asking(f"{base}/cat.png")
        assert wants_fetch(req)
        inlined = await inline_images(req, LOOPBACK)
    content = inlined.messages[0].content
    assert isinstance(content, tuple)
    part = content[1]
    assert isinstance(part, ImagePart)
    assert part.url == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert part.detail == "low"
    assert not wants_fetch(inlined)


async def test_what_is_not_an_image_is_refused() -> None:
    async with running(images) as base:
        await refused(LOOPBACK, f"{base}/page.html")


def test_data_urls_need_no_fetch() -> None:
    assert not wants_fetch(asking("data:image/png;base64,AA=="))


INTERNAL_FORMS = [
    "127.0.0.1",
    "localhost",
    "2130706433",  # decimal
    "127.1",  # short
    "0x7f000001",  # hex
    "0177.0.0.1",  # octal
    "0.0.0.0",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",  # IPv4-mapped
    "[::ffff:7f00:1]",
]


@pytest.mark.parametrize("host", INTERNAL_FORMS)
async def test_loopback_in_any_spelling_is_refused_unconnected(host: str) -> None:
    async with listening("127.0.0.1", "::1") as listener:
        await refused(ImageFetcher(), f"http://{host}:{listener.port}/cat.png")
        assert await listener.offered("127.0.0.1") == []


@pytest.mark.parametrize(
    "address",
    [
        "10.1.2.3",
        "172.16.0.1",
        "192.168.1.1",
        "169.254.169.254",  # cloud metadata
        "100.64.0.1",  # shared (carrier-grade NAT)
        "224.0.0.1",
        "240.0.0.1",
        "255.255.255.255",
        "0.0.0.0",
        "192.0.2.1",
        "fe80::1",
        "fc00::1",
        "fd12:3456::1",
        "ff02::1",
        "::",
        "::1",
        "::ffff:10.0.0.1",
        "64:ff9b::a00:1",  # NAT64 of 10.0.0.1
        "2002:a00:1::1",  # 6to4 of 10.0.0.1
        "2001:db8::1",
    ],
)
def test_special_addresses_are_not_public(address: str) -> None:
    assert not is_public(ipaddress.ip_address(address))
    assert not ImageFetcher().allowed(ipaddress.ip_address(address))


@pytest.mark.parametrize(
    "address", ["8.8.8.8", "1.1.1.1", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
)
def test_public_addresses_are(address: str) -> None:
    assert is_public(ipaddress.ip_address(address))


def test_the_allow_list_opens_networks() -> None:
    fetcher = ImageFetcher(["10.0.0.0/8", "fd00::/8"])
    assert fetcher.allowed(ipaddress.ip_address("10.9.8.7"))
    assert fetcher.allowed(ipaddress.ip_address("::ffff:10.9.8.7"))
    assert fetcher.allowed(ipaddress.ip_address("fd00::5"))
    assert not fetcher.allowed(ipaddress.ip_address("192.168.0.1"))


async def test_a_redirect_is_checked_like_the_first_url() -> None:
    async with listening("127.0.0.2") as inside, running(images) as base:
        await refused(LOOPBACK, f"{base}/to?u=http://127.0.0.2:{inside.port}/cat.png")
        assert await inside.offered("127.0.0.2") == []


async def test_redirects_are_followed_up_to_three() -> None:
    async with running(images) as base:
        inlined = await inline_images(asking(f"{base}/hop/3"), LOOPBACK)
        await refused(LOOPBACK, f"{base}/hop/4")
    assert inlined.messages[0].content[1].url.startswith("data:image/png")  # type: ignore[index,union-attr]


async def test_all_images_of_a_request_share_the_size_cap() -> None:
    fetcher = ImageFetcher(["127.0.0.1/32"], max_bytes=len(PNG) * 2 - 1)
    async with running(images) as base:
        await inline_images(asking(f"{base}/cat.png"), fetcher)  # fine alone, not twice
        with pytest.raises(InvalidRequest, match=FETCH_FAILED):
            await inline_images(asking(f"{base}/cat.png", f"{base}/cat.png"), fetcher)


async def silent(stream: trio.SocketStream) -> None:
    await trio.sleep_forever()


async def test_a_silent_server_is_given_up_on(autojump_clock: trio.testing.MockClock) -> None:
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, silent, listeners)
        start = trio.current_time()
        await refused(LOOPBACK, f"http://127.0.0.1:{port}/cat.png")
        assert trio.current_time() - start == 10.0
        nursery.cancel_scope.cancel()


async def test_a_fetch_gives_up_before_the_attempt_does(
    autojump_clock: trio.testing.MockClock,
) -> None:
    """A slow image must fail as the client's error, not time the target's attempt out."""
    async with trio.open_nursery() as nursery:
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, silent, listeners)
        start = trio.current_time()
        with trio.move_on_after(3) as attempt:
            await refused(LOOPBACK, f"http://127.0.0.1:{port}/cat.png")
        assert not attempt.cancelled_caught
        assert trio.current_time() - start == 2.7
        with trio.move_on_after(20):
            await refused(LOOPBACK, f"http://127.0.0.1:{port}/cat.png")
        assert trio.current_time() - start == 12.7
        nursery.cancel_scope.cancel()


async def test_closed_and_open_ports_fail_alike() -> None:
    async with running(images) as base:
        closed = socket.socket()
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        closed.close()
        await refused(LOOPBACK, f"http://127.0.0.1:{port}/cat.png")
        await refused(LOOPBACK, f"{base}/page.html")
        await refused(LOOPBACK, "http://127.0.0.1:99999/cat.png")  # no such port


class Resolver(trio.abc.HostnameResolver):
    """A name server answering ``img.test`` with each of ``answers`` in turn."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.asked = 0

    async def getaddrinfo(self, host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        self.asked += 1
        addresses = self.answers.pop(0)
        return [
            (
                socket.AF_INET6 if ":" in a else socket.AF_INET,
                socket.SOCK_STREAM,
                6,
                "",
                (a, port, 0, 0) if ":" in a else (a, port),
            )
            for a in addresses
        ]

    async def getnameinfo(self, *args: Any) -> Any:
        raise NotImplementedError


async def test_a_name_with_any_internal_address_is_refused() -> None:
    async with listening("127.0.0.1") as listener:
        trio.socket.set_custom_hostname_resolver(Resolver(["8.8.8.8", "127.0.0.1"]))
        try:
            await refused(ImageFetcher(), f"http://img.test:{listener.port}/cat.png")
        finally:
            trio.socket.set_custom_hostname_resolver(None)
        assert await listener.offered("127.0.0.1") == []


async def test_the_checked_address_is_the_one_connected_to() -> None:
    """DNS rebinding: a second lookup would answer 127.0.0.2; there is none."""
    async with listening("127.0.0.2") as inside, running(images) as base:
        port = base.rpartition(":")[2]
        resolver = Resolver(["127.0.0.1"], ["127.0.0.2"])
        trio.socket.set_custom_hostname_resolver(resolver)
        try:
            await inline_images(asking(f"http://img.test:{port}/cat.png"), LOOPBACK)
        finally:
            trio.socket.set_custom_hostname_resolver(None)
        assert resolver.asked == 1
        assert await inside.offered("127.0.0.2") == []
