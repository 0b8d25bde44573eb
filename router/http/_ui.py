"""``GET /admin/ui``: the status page, one self-contained HTML file of package data.

The page (``router/http/ui/status.html``) carries its own style and script: no build
step, no CDN, nothing fetched but ``/admin/events`` from the same origin. Its
Content-Security-Policy allows exactly the inline script and style it ships (by their
SHA-256), so text shown on it (a reload's error, a target's last error) can never run
as code, and no other site may frame it.
"""

from __future__ import annotations

import base64
import hashlib
import re
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["PAGE", "page", "send_page"]

#: The page, inside the ``router.http`` package.
PAGE = "ui/status.html"

_INLINE = re.compile(rb"<(script|style)>(.*?)</\1>", re.DOTALL)


@cache
def page() -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The page's bytes and its response headers (read once)."""
    body = resources.files("router.http").joinpath(PAGE).read_bytes()
    sources: dict[bytes, list[bytes]] = {b"script": [], b"style": []}
    for kind, content in _INLINE.findall(body):
        digest = base64.b64encode(hashlib.sha256(content).digest())
        sources[kind].append(b"'sha256-%s'" % digest)
    policy = b"; ".join(
        [
            b"default-src 'none'",
            b"script-src " + b" ".join(sources[b"script"]),
            b"style-src " + b" ".join(sources[b"style"]),
            b"connect-src 'self'",
            b"img-src data:",
            b"base-uri 'none'",
            b"form-action 'none'",
            b"frame-ancestors 'none'",
        ]
    )
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-length", b"%d" % len(body)),
        (b"content-security-policy", policy),
        (b"cache-control", b"no-store"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
    ]
    return body, headers


async def send_page(send: Any) -> None:
    body, headers = page()
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
