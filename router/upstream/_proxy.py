"""HTTP proxies: which one an origin goes through, and the CONNECT tunnel to https ones.

A provider's ``proxy`` (``rules.ProxySetting``) becomes :class:`ProxyRoutes` when the
provider is built: an explicit URL serves http and https origins alike; ``"env"`` reads
``HTTPS_PROXY``/``HTTP_PROXY``/``NO_PROXY`` (either case) then, once. An https origin is
reached through a ``CONNECT host:port`` tunnel, with TLS to the origin inside it (the
proxy sees neither the request nor the key); a plain http origin is forwarded: the
request goes to the proxy with its absolute URL as the target.

The proxy's password goes only into ``Proxy-Authorization``; no message or log line
holds it (a :class:`~rules.ProxyURL` prints as ``http://HOST:PORT``).
"""

from __future__ import annotations

import base64
import ipaddress
import urllib.request
from typing import TYPE_CHECKING

import attrs
import h11

from adapters import NetworkError
from rules import ConfigError, FieldError, ProxyURL, SecretRef

if TYPE_CHECKING:
    from collections.abc import Mapping

    import trio

    from rules import ProxySetting

__all__ = ["ProxyRoutes", "authority", "open_tunnel", "proxy_authorization", "proxy_routes"]

_READ_SIZE = 4096
_MAX_HEAD = 64 * 1024


@attrs.frozen
class ProxyRoutes:
    """The proxy of each scheme, and the ``NO_PROXY`` entries that bypass them.

    Attributes:
        http: For plain http origins (forwarded).
        https: For https origins (a CONNECT tunnel).
        no_proxy: ``NO_PROXY``'s entries (``"env"`` only; an explicit proxy has none).
    """

    http: ProxyURL | None
    https: ProxyURL | None
    no_proxy: tuple[str, ...] = ()

    def for_origin(self, scheme: str, host: str, port: int | None = None) -> ProxyURL | None:
        """The proxy to reach ``scheme://host:port`` through; None: connect directly."""
        proxy = self.https if scheme == "https" else self.http
        if proxy is None or bypassed(host, port, self.no_proxy):
            return None
        return proxy


def bypassed(host: str, port: int | None, no_proxy: tuple[str, ...]) -> bool:
    """Whether ``NO_PROXY`` (as curl reads it) sends ``host`` direct: ``*`` is every
    host; ``example.com`` and ``.example.com`` are that domain and its subdomains; an
    IP address or CIDR block matches addresses; ``:PORT`` narrows an entry to a port."""
    host = host.lower().strip("[]").rstrip(".")
    for entry in no_proxy:
        if entry == "*":
            return True
        name, want = entry, None
        if entry.count(":") == 1 or entry.startswith("["):  # host:port, [v6]:port
            head, _, tail = entry.rpartition(":")
            if tail.isdigit() and head:
                name, want = head, int(tail)
        if want is not None and want != port:
            continue
        name = name.lower().strip("[]").removeprefix("*").lstrip(".").rstrip(".")
        try:
            if ipaddress.ip_address(host) in ipaddress.ip_network(name, strict=False):
                return True
            continue
        except ValueError:
            pass
        if name and (host == name or host.endswith("." + name)):
            return True
    return False


def proxy_routes(
    name: str, setting: ProxySetting | None, secrets: Mapping[SecretRef, str] | None = None
) -> ProxyRoutes | None:
    """The routes for provider ``name``'s ``proxy`` (None: no proxy).

    Args:
        secrets: Secret values read already; a reference missing from it is read here.

    Raises:
        ConfigError: the secret cannot be read, or it (or a variable ``"env"`` reads)
            is not an ``http://HOST:PORT`` URL. Never quotes the URL.
    """
    where = f"providers.{name}.proxy"
    if setting is None:
        return None
    if isinstance(setting, ProxyURL):
        return ProxyRoutes(setting, setting)
    if isinstance(setting, SecretRef):
        value = (secrets or {}).get(setting)
        if value is None:
            try:
                value = setting.resolve()
            except ConfigError as exc:
                raise ConfigError(tuple(f"{where}: {e}" for e in exc.errors)) from None
        url = _parse(value, f"{where}: secret {setting}")
        return ProxyRoutes(url, url)
    found = urllib.request.getproxies_environment()  # lower case wins, as curl has it
    http = _parse(found["http"], f"{where}: HTTP_PROXY") if found.get("http") else None
    https = _parse(found["https"], f"{where}: HTTPS_PROXY") if found.get("https") else None
    no_proxy = tuple(e.strip() for e in found.get("no", "").split(",") if e.strip())
    return ProxyRoutes(http, https, no_proxy)


def _parse(value: str, what: str) -> ProxyURL:
    # A bare HOST:PORT in a variable is as curl and urllib read it: http://HOST:PORT.
    text = value if "://" in value else f"http://{value}"
    try:
        return ProxyURL.parse(text)
    except FieldError as exc:
        raise ConfigError(f"{what}: {exc.message}") from None


def proxy_authorization(proxy: ProxyURL) -> str | None:
    """The ``Proxy-Authorization`` value for the URL's user and password, if any."""
    if not proxy.username and not proxy.password:
        return None
    token = base64.b64encode(f"{proxy.username}:{proxy.password}".encode()).decode("ascii")
    return f"Basic {token}"


def authority(host: str, port: int) -> str:
    """``host:port``, an IPv6 address in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


async def open_tunnel(stream: trio.abc.Stream, proxy: ProxyURL, host: str, port: int) -> None:
    """Ask the proxy on ``stream`` for a tunnel to ``host:port``.

    Raises:
        NetworkError: the proxy refused (naming its status: 407 wants credentials),
            closed the connection, or did not answer in HTTP.
        trio.BrokenResourceError, OSError: the connection to the proxy broke.
    """
    target = authority(host, port)
    conn = h11.Connection(h11.CLIENT, max_incomplete_event_size=_MAX_HEAD)
    headers = [("host", target)]
    auth = proxy_authorization(proxy)
    if auth is not None:
        headers.append(("proxy-authorization", auth))
    request = conn.send(h11.Request(method="CONNECT", target=target, headers=headers)) or b""
    await stream.send_all(request + (conn.send(h11.EndOfMessage()) or b""))
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(_READ_SIZE)
                if not data:
                    raise NetworkError(
                        f"proxy {proxy} closed the connection before answering CONNECT"
                    )
                conn.receive_data(bytes(data))
            elif isinstance(event, h11.Response):
                break
            elif not isinstance(event, h11.InformationalResponse):
                raise NetworkError(f"proxy {proxy} did not answer CONNECT in HTTP")
    except h11.RemoteProtocolError:
        raise NetworkError(f"proxy {proxy} did not answer CONNECT in HTTP") from None
    if not 200 <= event.status_code < 300:
        status = f"HTTP {event.status_code} {event.reason.decode('latin-1', 'replace')[:80]}"
        hint = " (the proxy wants credentials: http://user:password@HOST:PORT)"
        raise NetworkError(
            f"proxy {proxy} refused the tunnel to {target}: {status.strip()}"
            + (hint if event.status_code == 407 else "")
        )
    if conn.trailing_data[0]:
        raise NetworkError(f"proxy {proxy} sent bytes of its own into the tunnel to {target}")
