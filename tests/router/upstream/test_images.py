"""Image URLs fetched for providers that need bytes: over loopback, bounded."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from adapters import GatewayRequest, ImagePart, InvalidRequest, Message, TextPart
from router import HttpxTransport
from router.upstream._images import inline_images, wants_fetch
from tests.fakes.openai_upstream import running

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64


async def images(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    kind = b"image/png" if scope["path"] == "/cat.png" else b"text/html"
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", kind)]})
    await send({"type": "http.response.body", "body": PNG})


def asking(url: str) -> GatewayRequest:
    content = (TextPart("what is this?"), ImagePart(url, "low"))
    return GatewayRequest(model="m", messages=(Message(role="user", content=content),))


async def test_an_image_url_becomes_a_data_url() -> None:
    transport = HttpxTransport()
    async with running(images) as base:
        req = asking(f"{base}/cat.png")
        assert wants_fetch(req)
        inlined = await inline_images(req, transport)
    await transport.aclose()
    content = inlined.messages[0].content
    assert isinstance(content, tuple)
    part = content[1]
    assert isinstance(part, ImagePart)
    assert part.url == "data:image/png;base64," + base64.b64encode(PNG).decode()
    assert part.detail == "low"
    assert not wants_fetch(inlined)


async def test_what_is_not_an_image_is_refused() -> None:
    transport = HttpxTransport()
    async with running(images) as base:
        with pytest.raises(InvalidRequest, match="could not be fetched"):
            await inline_images(asking(f"{base}/page.html"), transport)
    await transport.aclose()


def test_data_urls_need_no_fetch() -> None:
    assert not wants_fetch(asking("data:image/png;base64,AA=="))
