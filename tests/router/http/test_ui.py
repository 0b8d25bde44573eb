"""``GET /admin/ui``: one self-contained page from the package, behind the admin rule."""

from __future__ import annotations

import base64
import hashlib
import re
from typing import TYPE_CHECKING

import httpx2
import pytest

from router.http._ui import page
from tests.fakes.openai_upstream import running
from tests.router.http.test_admin_key import ADMIN_KEY, FromAfar
from tests.router.http.test_events import make_app

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def local() -> AsyncIterator[httpx2.AsyncClient]:
    async with running(make_app()) as url, httpx2.AsyncClient(base_url=url) as client:
        yield client


async def test_the_page_is_served_with_a_policy_that_allows_only_its_own_code(
    local: httpx2.AsyncClient,
) -> None:
    response = await local.get("/admin/ui")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["x-frame-options"] == "DENY"
    html = response.content
    policy = response.headers["content-security-policy"]
    for kind in ("script", "style"):
        (inline,) = re.findall(rb"<%s>(.*?)</%s>" % (kind.encode(), kind.encode()), html, re.S)
        digest = base64.b64encode(hashlib.sha256(inline).digest()).decode()
        assert f"{kind}-src 'sha256-{digest}'" in policy
    assert "default-src 'none'" in policy
    assert "connect-src 'self'" in policy
    assert html == page()[0]


def test_the_page_fetches_nothing_from_elsewhere() -> None:
    html = page()[0].decode()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)
    assert "@import" not in html
    assert 'EventSource("events")' in html  # /admin/events, on the page's own origin
    assert "prefers-color-scheme: dark" in html


@pytest.mark.parametrize("path", ["/admin/ui", "/admin/events"])
async def test_beyond_loopback_the_page_and_its_events_need_the_admin_key(path: str) -> None:
    app = make_app()
    app.admin_key = ADMIN_KEY
    async with running(FromAfar(app)) as url, httpx2.AsyncClient(base_url=url) as client:
        assert (await client.get(path)).status_code == 403
        headers = {"x-admin-key": ADMIN_KEY}
        if path == "/admin/ui":
            assert (await client.get(path, headers=headers)).status_code == 200
        else:
            async with client.stream("GET", path, headers=headers) as response:
                assert response.status_code == 200


@pytest.mark.parametrize("path", ["/admin/ui", "/admin/events"])
async def test_other_methods_are_refused(local: httpx2.AsyncClient, path: str) -> None:
    response = await local.post(path)
    assert response.status_code == 405
    assert response.headers["allow"] == "GET"
