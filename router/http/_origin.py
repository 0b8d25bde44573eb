"""What a browser, or an odd client, may do: ``Origin`` and ``Host`` checks, CORS, WebSockets.

A web page can make a visitor's browser send requests to the daemon: a cross-site
``text/plain`` POST needs no preflight, so without a check it runs a chat on the
operator's keys or reloads the rules; and a page whose name is rebound to 127.0.0.1
(DNS rebinding) can even read the answers, ``/admin/status`` included. So:

- A request with an ``Origin`` header (browsers send one on every cross-site request
  and every POST) is refused with 403 unless ``server.cors_origins`` lists it; a listed
  origin gets CORS headers, and its preflights (``OPTIONS`` with
  ``Access-Control-Request-Method``) get 204. Clients that are not browsers send no
  ``Origin`` and are not affected, whatever their ``Content-Type``.
- A connection that reached a loopback address must name ``localhost`` (or a
  ``*.localhost`` name, a loopback address, or the address it reached) in its
  ``Host``, with any port, or an entry of ``server.allowed_hosts``; otherwise 421. Once
  ``allowed_hosts`` is set, this holds on every address. A rebound name is never one of
  these (an address is no name to rebind), and a client of a daemon on a public address
  names whatever it likes until the operator says otherwise. The connection's own
  address decides, not ``server.listen``: ``--listen`` and inherited sockets override
  that.

Refusals are errors in the client's dialect (OpenAI's or Anthropic's shape by path).
A WebSocket handshake gets a JSON 400: nothing here speaks WebSocket.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from adapters import GatewayError, InvalidRequest

from ._framing import JSON
from ._openai_ingress import OPENAI

if TYPE_CHECKING:
    from rules import ServerConfig

    from ._openai_ingress import Ingress

__all__ = ["HostRefused", "OriginRefused", "admit", "refuse_websocket"]

Scope = dict[str, Any]
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class OriginRefused(GatewayError):
    status_hint = 403
    error_type = "permission_error"
    code = "origin_not_allowed"


class HostRefused(InvalidRequest):
    status_hint = 421
    code = "host_not_allowed"


#: Headers a browser's script may read from an answer.
EXPOSE = (
    b"x-request-id, request-id, x-router-route, x-router-target, x-router-attempts, x-router-arm, "
    b"x-router-hedges, x-router-cache, retry-after"
)
#: Request headers always allowed in a preflight (what the OpenAI and Anthropic SDKs send);
#: any other header a preflight asks for is allowed too, the origin being trusted.
ALLOW_HEADERS = (
    "authorization",
    "content-type",
    "x-api-key",
    "x-admin-key",
    "x-request-id",
    "anthropic-version",
    "anthropic-beta",
    "anthropic-dangerous-direct-browser-access",
    "openai-beta",
    "openai-organization",
    "openai-project",
    "traceparent",
)
PREFLIGHT_MAX_AGE = b"600"
_TOKENS = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*")


async def admit(scope: Scope, send: Any, server: ServerConfig, codec: Ingress | None) -> Any:
    """The ``send`` to answer ``scope`` with (adding CORS headers for an allowed origin),
    or None when the request was answered here: refused, or a preflight.

    Args:
        server: The settings in force (``cors_origins``, ``allowed_hosts``).
        codec: The client's dialect for errors (None: OpenAI's shape).
    """
    origin = host = requested_method = requested_headers = private_network = None
    for name, value in scope["headers"]:
        if name == b"origin":
            origin = value
        elif name == b"host":
            host = value
        elif name.startswith(b"access-control-request-"):
            if name == b"access-control-request-method":
                requested_method = value
            elif name == b"access-control-request-headers":
                requested_headers = value
            elif name == b"access-control-request-private-network":
                private_network = value
    if host is not None and not _host_allowed(host, _local_address(scope), server.allowed_hosts):
        shown = host.decode("latin-1")
        await _refuse(
            send,
            codec,
            HostRefused(
                f"Host {shown!r} is not served here; a name other than localhost must be "
                "listed in server.allowed_hosts"
            ),
        )
        return None
    if origin is None:
        return send
    if not _origin_allowed(origin, server.cors_origins):
        shown = origin.decode("latin-1")
        await _refuse(
            send,
            codec,
            OriginRefused(
                f"requests from the web page at {shown!r} are refused; "
                "server.cors_origins lists the origins allowed"
            ),
        )
        return None
    cors = [
        (b"access-control-allow-origin", origin),
        (b"vary", b"origin"),
        (b"access-control-expose-headers", EXPOSE),
    ]
    if scope["method"] == "OPTIONS" and requested_method is not None:
        cors += [
            (b"access-control-allow-methods", b"GET, POST, OPTIONS"),
            (b"access-control-allow-headers", _allow_headers(requested_headers)),
            (b"access-control-max-age", PREFLIGHT_MAX_AGE),
        ]
        if private_network == b"true":  # Chrome's Private Network Access
            cors.append((b"access-control-allow-private-network", b"true"))
        await send({"type": "http.response.start", "status": 204, "headers": cors})
        await send({"type": "http.response.body", "body": b""})
        return None

    async def send_with_cors(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            message = {**message, "headers": [*message.get("headers", ()), *cors]}
        await send(message)

    return send_with_cors


async def refuse_websocket(scope: Scope, receive: Any, send: Any) -> None:
    """A JSON 400 for a WebSocket handshake (the ASGI ``websocket.http.response``
    extension; without it, a plain refusal, which servers send as 403)."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return  # the client is gone already
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1008})
        return
    err = InvalidRequest(
        "WebSockets are not served here: use plain HTTP (POST /v1/chat/completions or "
        "/v1/messages, with stream: true for server-sent events)"
    )
    body = OPENAI.error(err)
    headers = [JSON, (b"content-length", b"%d" % len(body))]
    await send({"type": "websocket.http.response.start", "status": 400, "headers": headers})
    await send({"type": "websocket.http.response.body", "body": body})


async def _refuse(send: Any, codec: Ingress | None, err: GatewayError) -> None:
    codec = codec or OPENAI
    body = codec.error(err)
    headers = [JSON, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": codec.status(err), "headers": headers})
    await send({"type": "http.response.body", "body": body})


def _local_address(scope: Scope) -> str:
    """The address the connection reached ("" if not an IP: a unix socket, say)."""
    server = scope.get("server")
    return str(server[0]) if server is not None else ""


@lru_cache(maxsize=64)
def _ip(text: str) -> IPAddress | None:
    try:
        ip = ipaddress.ip_address(text.strip("[]").partition("%")[0])
    except ValueError:
        return None  # a name, or a unix socket path
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        return ip.ipv4_mapped  # a dual-stack socket's 127.0.0.1
    return ip


@lru_cache(maxsize=256)
def _host_allowed(host: bytes, local_address: str, allowed: tuple[str, ...]) -> bool:
    """Whether a ``Host`` header is served on a connection to ``local_address``
    (a bounded cache: the value is the client's)."""
    ours = _ip(local_address)
    if not allowed and (ours is None or not ours.is_loopback):
        return True
    text = host.decode("latin-1").strip().lower()
    if not text:
        return True  # no name given: nothing to rebind
    name, port = _split_host(text)
    if name == "localhost" or name.endswith(".localhost"):
        return True
    ip = _ip(name)
    if ip is not None and (ip.is_loopback or ip == ours):
        return True  # an address, not a name: nothing to rebind
    for entry in allowed:
        if entry == "*":
            return True
        entry_name, entry_port = _split_host(entry.lower())
        if entry_name == name and (entry_port is None or entry_port == port):
            return True
    return False


def _split_host(text: str) -> tuple[str, str | None]:
    """``name[:port]`` or ``[v6]:port`` -> (name without a trailing dot, port)."""
    if text.startswith("["):
        name, _, rest = text.partition("]")
        return name + "]", rest.removeprefix(":") or None
    name, colon, port = text.rpartition(":")
    if not colon or not port.isdigit():
        name, port = text, ""
    return name.rstrip("."), port or None


def _origin_allowed(origin: bytes, allowed: tuple[str, ...]) -> bool:
    text = origin.decode("latin-1").lower()
    return any(entry == "*" or entry.lower() == text for entry in allowed)


def _allow_headers(requested: bytes | None) -> bytes:
    names = list(ALLOW_HEADERS)
    if requested is not None:
        text = requested.decode("latin-1").strip().lower()
        if _TOKENS.fullmatch(text):
            names += [n.strip() for n in text.split(",") if n.strip() not in ALLOW_HEADERS]
    return ", ".join(names).encode()
