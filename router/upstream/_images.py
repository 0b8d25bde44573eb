"""Fetching image URLs for providers that need the bytes, when the operator allows it.

Gemini, Bedrock and Ollama take images only inline. A client's ``http(s)`` image URL is
fetched by the daemon only with ``server.fetch_images = true``: otherwise any client
could make the daemon request whatever a URL names (server-side request forgery), and
the adapter answers with a clear error instead. Fetches go through httpx2, off the data
path, bounded in size and time.
"""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import attrs
import trio

from adapters import ImagePart, InvalidRequest, UpstreamRequest

if TYPE_CHECKING:
    from adapters import GatewayRequest

    from ._transport import HttpxTransport

__all__ = ["MAX_IMAGE_BYTES", "inline_images", "wants_fetch"]

MAX_IMAGE_BYTES = 20 * 1024 * 1024
FETCH_TIMEOUT = 10.0


def wants_fetch(req: GatewayRequest) -> bool:
    """Whether ``req`` has an image given by an http(s) URL."""
    return any(
        isinstance(part, ImagePart) and part.url.startswith(("http://", "https://"))
        for message in req.messages
        if isinstance(message.content, tuple)
        for part in message.content
    )


async def inline_images(req: GatewayRequest, transport: HttpxTransport) -> GatewayRequest:
    """``req`` with every http(s) image URL replaced by a ``data:`` URL of its bytes.

    Raises:
        InvalidRequest: an image could not be fetched, is too large, or is not an image.
    """
    messages = []
    for message in req.messages:
        if isinstance(message.content, tuple):
            parts = [
                ImagePart(await _fetch(part.url, transport), part.detail)
                if isinstance(part, ImagePart) and part.url.startswith(("http://", "https://"))
                else part
                for part in message.content
            ]
            message = attrs.evolve(message, content=tuple(parts))
        messages.append(message)
    return attrs.evolve(req, messages=tuple(messages))


async def _fetch(url: str, transport: HttpxTransport) -> str:
    request = UpstreamRequest("GET", url, (("accept", "image/*"),), b"")
    with trio.move_on_after(FETCH_TIMEOUT):
        async with transport.request(request) as response:
            kind = dict(response.headers).get("content-type", "").split(";")[0].strip()
            if response.status != 200 or not kind.startswith("image/"):
                raise InvalidRequest(
                    f"image {url} could not be fetched (HTTP {response.status}, {kind or 'no type'})",
                    param="messages",
                )
            data = b""
            async for piece in response.aiter_bytes():
                data += piece
                if len(data) > MAX_IMAGE_BYTES:
                    raise InvalidRequest(f"image {url} is larger than 20 MiB", param="messages")
        return f"data:{kind};base64,{base64.b64encode(data).decode()}"
    raise InvalidRequest(f"image {url} took longer than {FETCH_TIMEOUT:g}s", param="messages")
