"""The admin key, for clients beyond loopback: ``Bearer`` in any case, and a compare
whose time says nothing of the key's length."""

from __future__ import annotations

import hmac
from typing import TYPE_CHECKING, Any

import httpx2
import pytest

from adapters import provider_kinds
from router import App
from router.ops._assemble import build_runtime
from rules import parse_config
from tests.fakes.openai_upstream import running

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

ADMIN_KEY = "adm-4e1f9c2b7a65d0e3"
CONFIG = """
[providers.sim]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo"]
"""


class FromAfar:
    """The app as a client beyond loopback reaches it (a daemon listening on 0.0.0.0)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            scope = {**scope, "client": ("192.0.2.7", 40000)}
        await self.app(scope, receive, send)


@pytest.fixture
async def admin() -> AsyncIterator[httpx2.AsyncClient]:
    config = parse_config(CONFIG, kinds=provider_kinds())
    app = App(build_runtime(config).runtime, admin_key=ADMIN_KEY)
    async with running(FromAfar(app)) as url, httpx2.AsyncClient(base_url=url) as client:
        yield client


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": f"Bearer {ADMIN_KEY}"},
        {"authorization": f"bearer {ADMIN_KEY}"},
        {"authorization": f"BEARER  {ADMIN_KEY}"},
        {"x-admin-key": ADMIN_KEY},
        {"x-admin-key": f"bearer {ADMIN_KEY}"},
    ],
)
async def test_the_admin_key_opens_admin_endpoints(
    admin: httpx2.AsyncClient, headers: dict[str, str]
) -> None:
    assert (await admin.get("/admin/status", headers=headers)).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"authorization": f"Bearer {ADMIN_KEY}x"},
        {"authorization": f"Bearer {ADMIN_KEY[:-1]}"},
        {"authorization": f"Basic {ADMIN_KEY}"},
    ],
)
async def test_anything_else_is_refused(admin: httpx2.AsyncClient, headers: dict[str, str]) -> None:
    assert (await admin.get("/admin/status", headers=headers)).status_code == 403


async def test_the_compare_sees_equal_lengths_whatever_is_presented(
    admin: httpx2.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Comparing the key itself would take time in proportion to the shorter of the two
    (and return at once on a length mismatch): digests are always 32 bytes."""
    lengths: list[tuple[int, int]] = []
    compare = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        lengths.append((len(a), len(b)))
        return compare(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module _admin uses
    for presented in ("x", ADMIN_KEY[:5], ADMIN_KEY, ADMIN_KEY * 3):
        await admin.get("/admin/status", headers={"authorization": f"Bearer {presented}"})
    assert lengths == [(32, 32)] * 4
