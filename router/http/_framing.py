"""HTTP framing for the ASGI app: reading bodies, answering JSON and errors, the
response headers that say what happened, and the lifespan protocol."""

from __future__ import annotations

import math
import os
import re
from typing import TYPE_CHECKING, Any

import orjson

from adapters import GatewayError, InvalidRequest

from ._anthropic_ingress import AnthropicIngress

if TYPE_CHECKING:
    from ..routing._request import RequestTrace
    from ._openai_ingress import Ingress

__all__ = [
    "FORBIDDEN",
    "id_headers",
    "JSON",
    "MethodNotAllowed",
    "SSE_HEADERS",
    "INTERNAL",
    "ClientGone",
    "Sending",
    "PayloadTooLarge",
    "lifespan",
    "error_json",
    "not_found",
    "read_body",
    "refuse",
    "make_request_id",
    "send_error",
    "send_internal_error",
    "send_json",
    "send_method_not_allowed",
    "trace_headers",
]

Scope = dict[str, Any]

JSON = (b"content-type", b"application/json")
SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


class Sending:
    """An ASGI ``send`` that knows whether the response has begun.

    ``started`` turns true once ``http.response.start`` was accepted: before that, a
    request that failed in any way can still be answered (hypercorn refuses bad
    headers by raising from ``send`` and keeps waiting for a response).
    """

    __slots__ = ("_send", "started")

    def __init__(self, send: Any) -> None:
        self._send = send
        self.started = False

    async def __call__(self, message: dict[str, Any]) -> None:
        await self._send(message)
        if not self.started and message["type"] == "http.response.start":
            self.started = True


class ClientGone(Exception):
    """The client disconnected before its request was read."""


class PayloadTooLarge(InvalidRequest):
    status_hint = 413
    code = "request_too_large"


class MethodNotAllowed(InvalidRequest):
    status_hint = 405
    code = "method_not_allowed"


def error_json(
    message: str, kind: str = "invalid_request_error", code: str | None = None
) -> dict[str, Any]:
    """An error body in OpenAI's shape, all four keys present (its SDKs read each)."""
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}


FORBIDDEN = error_json(
    "admin endpoints answer on loopback or with the admin key", "permission_error"
)


async def read_body(scope: Scope, receive: Any, limit: int) -> bytes:
    """The whole request body. Raises PayloadTooLarge past ``limit`` bytes."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        data = message.get("body", b"")
        size += len(data)
        if size > limit:
            raise PayloadTooLarge(f"the request body is larger than {limit} bytes")
        chunks.append(data)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def lifespan(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def make_request_id(scope: Scope) -> str:
    for name, value in scope["headers"]:
        if name == b"x-request-id":
            candidate: str = value.decode("latin-1")
            if REQUEST_ID.fullmatch(candidate):
                return candidate
    return os.urandom(16).hex()


def trace_headers(trace: RequestTrace, request_id: str) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-request-id", request_id.encode()),
        (b"x-router-route", trace.route.encode()),
        (b"x-router-target", (trace.target or "").encode()),
        (b"x-router-attempts", b"%d" % trace.attempts),
    ]
    if trace.arm is not None:
        headers.append((b"x-router-arm", trace.arm.encode()))
    if trace.hedges:
        headers.append((b"x-router-hedges", b"%d" % trace.hedges))
    if trace.cache is not None:
        headers.append((b"x-router-cache", trace.cache.encode()))
    if trace.rule is not None:
        headers.append((b"x-router-rule", trace.rule.encode()))
    return headers


def id_headers(codec: Ingress | None, request_id: str) -> list[tuple[bytes, bytes]]:
    """The request id under the name ``codec``'s SDK reads, besides ``x-request-id``
    (Anthropic's reads ``request-id``: its ``_request_id``)."""
    if isinstance(codec, AnthropicIngress):
        return [(b"request-id", request_id.encode())]
    return []


async def send_error(
    send: Any,
    codec: Ingress,
    err: GatewayError,
    trace: RequestTrace,
    request_id: str,
    *,
    close: bool = False,
) -> None:
    """``err`` in the client's format; ``close`` ends the connection after it."""
    headers = [JSON, *trace_headers(trace, request_id), *id_headers(codec, request_id)]
    if close:
        headers.append((b"connection", b"close"))
    if err.retry_after is not None:
        headers.append((b"retry-after", str(max(1, math.ceil(err.retry_after))).encode()))
    body = codec.error(err)
    headers.append((b"content-length", b"%d" % len(body)))
    await send({"type": "http.response.start", "status": codec.status(err), "headers": headers})
    await send({"type": "http.response.body", "body": body})


INTERNAL = GatewayError("internal error in the router; the log has the details")


async def send_internal_error(send: Any, codec: Ingress | None, request_id: str | None) -> None:
    """A 500 in the client's format (OpenAI's shape outside the chat paths), with no
    header taken from the request's state, which may be what failed."""
    body = codec.error(INTERNAL) if codec is not None else orjson.dumps(INTERNAL.to_openai())
    headers = [JSON, (b"content-length", b"%d" % len(body))]
    if request_id is not None:
        headers.append((b"x-request-id", request_id.encode()))
        headers += id_headers(codec, request_id)
    await send({"type": "http.response.start", "status": 500, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def refuse(send: Any, codec: Ingress, err: GatewayError) -> None:
    """``err`` in the client's format, before a request was read."""
    body = codec.error(err)
    headers = [JSON, (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": codec.status(err), "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def send_json(
    send: Any, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = orjson.dumps(payload)
    headers = [JSON, (b"content-length", b"%d" % len(body)), *(headers or ())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def not_found(path: str) -> dict[str, Any]:
    return error_json(f"no such endpoint: {path}", code="unknown_url")


async def send_method_not_allowed(send: Any, path: str, allow: str) -> None:
    """405 with the ``allow`` header HTTP requires, the body in OpenAI's shape."""
    body = error_json(f"{path} takes {allow} only", code="method_not_allowed")
    await send_json(send, 405, body, [(b"allow", allow.encode())])
