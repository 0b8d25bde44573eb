"""What a web page can make a browser do to the daemon: nothing, unless the operator opts in.

Cross-site requests (an ``Origin`` not in ``server.cors_origins``) are refused before
anything runs; a ``Host`` that is not the loopback's own (DNS rebinding) gets 421; listed
origins get CORS headers and preflight answers; clients without ``Origin`` are unaffected.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2
import pytest
import trio

from adapters import provider_kinds
from router.http._origin import _host_allowed, refuse_websocket
from rules import ConfigError, load_config

if TYPE_CHECKING:
    from pathlib import Path

    from tests.conftest import RouterFactory
    from tests.fakes.openai_upstream import FakeOpenAI

CHAT = b'{"model": "chat", "messages": [{"role": "user", "content": "hi"}]}'


def config(upstream: str, server: str = "") -> str:
    return f"""
[server]
{server}

[providers.up]
kind = "openai_compatible"
base_url = "{upstream}"

[routes.chat]
fallback = ["up:gpt"]
"""


async def test_cross_site_posts_are_refused_before_anything_runs(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    """A page's ``fetch(url, {method: "POST", body})`` is a simple request (text/plain, no
    preflight): without the check it spent the operator's key and reloaded the rules."""
    evil = {"origin": "https://evil.example", "content-type": "text/plain;charset=UTF-8"}
    async with (
        start_router(config(fake_openai.url)) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        chat = await client.post("/v1/chat/completions", content=CHAT, headers=evil)
        messages = await client.post("/v1/messages", content=CHAT, headers=evil)
        reload = await client.post("/admin/reload", headers=evil)
        status = await client.get("/admin/status", headers={"origin": "null"})
        plain = await client.post("/v1/chat/completions", content=CHAT)  # no Origin: served
    assert chat.status_code == 403
    assert chat.json()["error"]["type"] == "permission_error"
    assert chat.json()["error"]["code"] == "origin_not_allowed"
    assert "https://evil.example" in chat.json()["error"]["message"]
    assert "access-control-allow-origin" not in chat.headers
    assert messages.status_code == 403  # in Anthropic's shape on its endpoint
    assert messages.json() == {
        "type": "error",
        "error": {"type": "permission_error", "message": messages.json()["error"]["message"]},
    }
    assert reload.status_code == 403
    assert status.status_code == 403  # a sandboxed or file:// page sends "null"
    assert plain.status_code == 200
    assert len(fake_openai.received) == 1  # only the request without an Origin went up


async def test_a_rebound_host_is_refused_on_loopback(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    """DNS rebinding: evil.example resolves to 127.0.0.1, the page then reads
    ``/admin/status`` same-origin. Its requests name evil.example in ``Host``."""
    toml = config(fake_openai.url, 'allowed_hosts = ["router.internal", "proxy.example:8443"]')
    async with (
        start_router(toml) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        port = url.rpartition(":")[2]

        async def status(host: str) -> int:
            response = await client.get("/admin/status", headers={"host": host})
            return response.status_code

        rebound = await client.get("/admin/status", headers={"host": f"evil.example:{port}"})
        chat = await client.post(
            "/v1/messages", content=CHAT, headers={"host": f"evil.example:{port}"}
        )
        served = {
            host: await status(host)
            for host in (
                f"localhost:{port}",
                "LOCALHOST",
                f"127.0.0.1:{port}",
                f"[::1]:{port}",
                f"app.localhost:{port}",
                f"router.internal:{port}",
                "proxy.example:8443",
                "proxy.example:9999",
                "localhost.evil.example",
            )
        }
    assert rebound.status_code == 421
    assert rebound.json()["error"]["code"] == "host_not_allowed"
    assert "server.allowed_hosts" in rebound.json()["error"]["message"]
    assert chat.status_code == 421
    assert chat.json()["type"] == "error"  # Anthropic's shape on its endpoint
    assert served == {
        f"localhost:{port}": 200,
        "LOCALHOST": 200,
        f"127.0.0.1:{port}": 200,
        f"[::1]:{port}": 200,
        f"app.localhost:{port}": 200,
        f"router.internal:{port}": 200,
        "proxy.example:8443": 200,
        "proxy.example:9999": 421,  # the entry names its port
        "localhost.evil.example": 421,
    }
    assert fake_openai.received == []


async def test_allowed_origins_get_cors_headers_and_preflights(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = config(fake_openai.url, 'cors_origins = ["http://localhost:5173"]')
    app = "http://localhost:5173"
    async with (
        start_router(toml) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        preflight = await client.options(
            "/v1/chat/completions",
            headers={
                "origin": app,
                "access-control-request-method": "POST",
                "access-control-request-headers": "authorization,content-type,x-stainless-os",
                "access-control-request-private-network": "true",
            },
        )
        chat = await client.post(
            "/v1/chat/completions",
            content=CHAT,
            headers={"origin": app, "content-type": "application/json"},
        )
        other = await client.options(
            "/v1/chat/completions",
            headers={"origin": "http://localhost:5174", "access-control-request-method": "POST"},
        )
    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-origin"] == app
    assert preflight.headers["vary"] == "origin"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = {h.strip() for h in preflight.headers["access-control-allow-headers"].split(",")}
    assert {"authorization", "content-type", "x-api-key", "anthropic-version"} <= allowed
    assert "x-stainless-os" in allowed  # what the page's SDK asked for
    assert preflight.headers["access-control-max-age"] == "600"
    assert preflight.headers["access-control-allow-private-network"] == "true"
    assert chat.status_code == 200
    assert chat.headers["access-control-allow-origin"] == app
    assert "x-router-target" in chat.headers["access-control-expose-headers"]
    assert chat.headers["x-router-target"] == "up:gpt"
    assert other.status_code == 403
    assert len(fake_openai.received) == 1


async def test_a_wildcard_origin_serves_any_page(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    toml = config(fake_openai.url, 'cors_origins = ["*"]')
    async with (
        start_router(toml) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        models = await client.get("/v1/models", headers={"origin": "https://any.example"})
    assert models.status_code == 200
    assert models.headers["access-control-allow-origin"] == "https://any.example"


async def test_clients_without_origin_keep_any_content_type(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    """``curl -d`` sends ``application/x-www-form-urlencoded``; SDKs send JSON. Neither is a
    browser (no Origin), so the body is read as JSON whatever the type says."""
    async with (
        start_router(config(fake_openai.url)) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        form = await client.post(
            "/v1/chat/completions",
            content=CHAT,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
    assert form.status_code == 200


@pytest.mark.parametrize(
    ("host", "local", "allowed", "served"),
    [
        (b"anything.example", "10.0.0.5", (), True),  # a public address: no check until set
        (b"anything.example", "10.0.0.5", ("router.example",), False),
        (b"router.example:80", "10.0.0.5", ("router.example",), True),
        (b"localhost:8080", "10.0.0.5", ("router.example",), True),
        (b"10.0.0.5:8080", "10.0.0.5", ("router.example",), True),  # the address it reached
        (b"10.0.0.6:8080", "10.0.0.5", ("router.example",), False),
        (b"10.0.0.5", "::ffff:10.0.0.5", ("router.example",), True),
        (b"anything.example", "127.0.0.1", ("*",), True),
        (b"localhost.:8080", "127.0.0.1", (), True),
        (b"127.9.9.9", "127.0.0.1", (), True),
        (b"[::ffff:127.0.0.1]:80", "::1", (), True),
        (b"10.0.0.1:8080", "127.0.0.1", (), False),
        (b"anything.example", "::ffff:127.0.0.1", (), False),  # a dual-stack socket
        (b"anything.example", "/run/router.sock", (), True),  # not an IP: no check until set
        (b"", "127.0.0.1", (), True),  # HTTP/1.0 may give no name: nothing to rebind
    ],
)
def test_host_rules(host: bytes, local: str, allowed: tuple[str, ...], served: bool) -> None:
    assert _host_allowed(host, local, allowed) is served


async def test_a_websocket_handshake_gets_a_json_400(start_router: RouterFactory) -> None:
    """It used to be a bare 500 (the app ignored the ``websocket`` scope)."""
    toml = config("http://127.0.0.1:9")
    async with start_router(toml) as url:
        host, _, port = url.removeprefix("http://").rpartition(":")
        stream = await trio.open_tcp_stream(host, int(port))
        async with stream:
            await stream.send_all(
                b"GET /v1/realtime HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                b"Sec-WebSocket-Version: 13\r\n\r\n"
            )
            raw = b""
            while b"\r\n\r\n" not in raw or not raw.endswith(b"}"):
                chunk = await stream.receive_some()
                if not chunk:
                    break
                raw += chunk
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 ")
    assert b"content-type: application/json" in head.lower()
    assert b"WebSockets are not served" in body


@pytest.mark.parametrize(
    ("setting", "error"),
    [
        (
            'cors_origins = ["https://ok.example", "http://localhost:3000/"]',
            'server.cors_origins[1]: "http://localhost:3000/" is not an origin like',
        ),
        ('cors_origins = ["null"]', 'server.cors_origins[0]: "null" is not an origin'),
        (
            'allowed_hosts = ["https://router.example"]',
            'server.allowed_hosts[0]: "https://router.example" is not a host name',
        ),
    ],
)
def test_bad_entries_are_refused_at_load(tmp_path: Path, setting: str, error: str) -> None:
    path = tmp_path / "router.toml"
    path.write_text(config("http://127.0.0.1:9", setting))
    with pytest.raises(ConfigError) as caught:
        load_config(str(path), kinds=provider_kinds())
    assert caught.value.errors[0].startswith(error)


async def test_a_server_without_the_response_extension_gets_a_plain_refusal() -> None:
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await refuse_websocket({"type": "websocket", "extensions": {}}, receive, send)
    assert sent == [{"type": "websocket.close", "code": 1008}]
