"""Fetching image URLs for providers that need the bytes, when the operator allows it.

Gemini, Bedrock and Ollama take images only inline. A client's ``http(s)`` image URL is
fetched by the daemon only with ``server.fetch_images = true``: otherwise any client
could make the daemon request whatever a URL names (server-side request forgery), and
the adapter answers with a clear error instead.

Even then a fetch reaches only public addresses: the host is resolved once, every
address it resolves to must be public (or inside ``server.fetch_images_allow``), and the
connection goes to a checked address, never through a second lookup (so a name that
answers differently the second time, DNS rebinding, gains nothing). Redirects are
followed, at most :data:`MAX_REDIRECTS`, each checked the same way. A fetch is bounded
in time and size, and whatever goes wrong the client gets one message, so that errors
tell nothing about what listens where. A fetch failure is the client's error (400),
never the target's.
"""

from __future__ import annotations

import base64
import ipaddress
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

import attrs
import h11
import trio

from adapters import ImagePart, InvalidRequest

from ._tls import SYSTEM, ClientTLS

if TYPE_CHECKING:
    from adapters import GatewayRequest

__all__ = [
    "FETCH_FAILED",
    "MAX_IMAGE_BYTES",
    "ImageFetcher",
    "inline_images",
    "is_public",
    "wants_fetch",
]

log = logging.getLogger("llm_router")

#: Most image bytes fetched for one request, all its images together.
MAX_IMAGE_BYTES = 20 * 1024 * 1024
#: Seconds for all of one image's fetch: lookups, connects, redirects and body.
FETCH_TIMEOUT = 10.0
MAX_REDIRECTS = 3
#: The one answer to every failed fetch, whatever the cause.
FETCH_FAILED = "an image URL is not allowed or could not be fetched"

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


class _Refused(Exception):
    """Why a fetch failed, for the log only."""


def wants_fetch(req: GatewayRequest) -> bool:
    """Whether ``req`` has an image given by an http(s) URL."""
    return any(
        isinstance(part, ImagePart) and part.url.startswith(("http://", "https://"))
        for message in req.messages
        if isinstance(message.content, tuple)
        for part in message.content
    )


def _embedded(address: Address) -> Address | None:
    """The IPv4 address an IPv6 one stands for (mapped, 6to4, NAT64), if any."""
    if isinstance(address, ipaddress.IPv4Address):
        return None
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public(address: Address) -> bool:
    """Whether ``address`` is a public unicast one: not loopback, private, link-local,
    shared (100.64/10), multicast, reserved or unspecified, nor an IPv6 form of one."""
    inner = _embedded(address)
    if inner is not None:  # what the connection reaches
        return is_public(inner)
    return address.is_global and not (
        address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or address.is_loopback
        or address.is_link_local
        or address.is_private
    )


@attrs.define
class ImageFetcher:
    """Fetches image URLs to public addresses, and to ``allow`` (CIDR strings)."""

    allow: Sequence[str] = ()
    timeout: float = FETCH_TIMEOUT
    max_bytes: int = MAX_IMAGE_BYTES
    _networks: tuple[Network, ...] = attrs.field(init=False)
    #: The system's trust store, shared with every provider without ``tls``.
    tls: ClientTLS = attrs.field(default=SYSTEM, kw_only=True)

    def __attrs_post_init__(self) -> None:
        self._networks = tuple(ipaddress.ip_network(n, strict=False) for n in self.allow)

    def allowed(self, address: Address) -> bool:
        """Whether a fetch may connect to ``address``."""
        inner = _embedded(address)
        return any(
            a in network
            for a in (address, inner)
            if a is not None
            for network in self._networks
            if a.version == network.version
        ) or is_public(address)

    async def fetch(self, url: str, budget: int | None = None) -> tuple[str, bytes]:
        """The content type and bytes of the image at ``url``, at most ``budget`` bytes.

        Raises:
            InvalidRequest: with :data:`FETCH_FAILED`, whatever the cause.
        """
        budget = self.max_bytes if budget is None else budget
        try:
            with trio.move_on_at(self._give_up_at()):
                for _ in range(MAX_REDIRECTS + 1):
                    kind, data, location = await self._get(url, budget)
                    if location is None:
                        return kind, data
                    url = urljoin(url, location)
                raise _Refused("too many redirects")
            raise _Refused("no answer in time")
        except Exception as exc:  # refused, unreachable, TLS, HTTP, malformed URL: all alike
            log.info("image fetch refused or failed: %r", exc)  # repr: no raw control chars
            raise InvalidRequest(FETCH_FAILED, param="messages") from None

    def _give_up_at(self) -> float:
        """When a fetch gives up: after ``timeout``, or just before the attempt's own
        deadline (a first-token time shorter than ``timeout``), so that a slow image is
        the client's failure and never a timeout of the target."""
        now = trio.current_time()
        outer = trio.current_effective_deadline()
        if outer >= now + self.timeout:
            return now + self.timeout
        return max(now, outer - min(0.5, (outer - now) / 10))

    async def _get(self, url: str, budget: int) -> tuple[str, bytes, str | None]:
        """One GET: (content type, body, None), or a redirect's ("", b"", location)."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise _Refused("not an http(s) URL")
        tls = parts.scheme == "https"
        port = parts.port or (443 if tls else 80)
        stream: trio.abc.Stream = await self._connect(parts.hostname, port)
        try:
            if tls:
                context = await self.tls.context()  # built once, off the loop
                stream = trio.SSLStream(stream, context, server_hostname=parts.hostname)
            return await _exchange(stream, parts.netloc.rpartition("@")[2], url, budget)
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    async def _connect(self, host: str, port: int) -> trio.SocketStream:
        """A connection to a checked address of ``host``: every address it has must be
        allowed, and the one connected to is one of them (no second lookup)."""
        infos = await trio.socket.getaddrinfo(host, port, type=trio.socket.SOCK_STREAM)
        for *_, sockaddr in infos:
            address = ipaddress.ip_address(str(sockaddr[0]).partition("%")[0])
            if not self.allowed(address):
                raise _Refused(f"{host} resolves to {address}, which is not allowed")
        error: OSError = OSError(f"{host} has no address")
        for family, type_, proto, _, sockaddr in infos:
            sock = trio.socket.socket(family, type_, proto)
            try:
                await sock.connect(sockaddr)
            except OSError as exc:
                sock.close()
                error = exc
                continue
            except BaseException:
                sock.close()
                raise
            return trio.SocketStream(sock)
        raise error


async def _exchange(
    stream: trio.abc.Stream, host: str, url: str, budget: int
) -> tuple[str, bytes, str | None]:
    parts = urlsplit(url)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    conn = h11.Connection(h11.CLIENT)
    headers = [
        ("host", host),
        ("accept", "image/*"),
        ("accept-encoding", "identity"),
        ("connection", "close"),
    ]
    await stream.send_all(
        (conn.send(h11.Request(method="GET", target=target, headers=headers)) or b"")
        + (conn.send(h11.EndOfMessage()) or b"")
    )
    response = None
    kind = ""
    data: list[bytes] = []
    size = 0
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(bytes(await stream.receive_some(65536)))
        elif isinstance(event, h11.Response):
            response = event
            found = dict(event.headers)
            if event.status_code in _REDIRECTS and b"location" in found:
                return "", b"", found[b"location"].decode("latin-1")
            kind = found.get(b"content-type", b"").decode("latin-1").split(";")[0].strip()
            if event.status_code != 200 or not kind.startswith("image/"):
                raise _Refused(f"HTTP {event.status_code}, {kind or 'no type'}")
        elif isinstance(event, h11.Data):
            size += len(event.data)
            if size > budget:
                raise _Refused(f"larger than {budget} bytes")
            data.append(bytes(event.data))
        elif isinstance(event, h11.EndOfMessage) and response is not None:
            return kind, b"".join(data), None
        elif not isinstance(event, h11.InformationalResponse):
            raise _Refused(f"unexpected {type(event).__name__}")


async def inline_images(req: GatewayRequest, fetcher: ImageFetcher) -> GatewayRequest:
    """``req`` with every http(s) image URL replaced by a ``data:`` URL of its bytes.

    Raises:
        InvalidRequest: an image was not allowed, could not be fetched, is too large
            (all of a request's images together), or is not an image.
    """
    budget = fetcher.max_bytes
    messages = []
    for message in req.messages:
        if isinstance(message.content, tuple):
            parts = []
            for part in message.content:
                if isinstance(part, ImagePart) and part.url.startswith(("http://", "https://")):
                    kind, data = await fetcher.fetch(part.url, budget)
                    budget -= len(data)
                    url = f"data:{kind};base64,{base64.b64encode(data).decode()}"
                    part = ImagePart(url, part.detail)
                parts.append(part)
            message = attrs.evolve(message, content=tuple(parts))
        messages.append(message)
    return attrs.evolve(req, messages=tuple(messages))
