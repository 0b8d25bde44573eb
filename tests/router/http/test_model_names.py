"""Model names an upstream URL could misread are refused (400) before any upstream call,
in the client's format; a provider's ``models = [...]`` is all it serves."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
import pytest

from tests.fakes._base import running
from tests.fakes.gemini_upstream import FakeGemini

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RouterFactory

CONFIG = """
[providers.gem]
kind = "gemini"
base_url = "{url}/v1beta"
api_key = "env:GEM_TEST_KEY"

[providers.listed]
kind = "simulated"
latency = {{ median = "1ms", p99 = "2ms" }}
models = ["echo", "meta-llama/Llama-3.1-8B"]

[routes.chat]
fallback = ["gem:gemini-2.5-flash"]
"""

HOSTILE = [
    "gem:../../x",
    "gem:..",
    "gem:a/../b",
    "gem:./x",
    "gem:x?alt=sse",
    "gem:x#frag",
    "gem:x%2F..%2Fy",
    "gem:a b",
    "gem:a\tb",
    "gem:a\r\nx-injected: 1",
    "gem:a\nb",
    "gem:a\x00b",
    "gem:a\x7fb",
    "gem:a\u2028b",
    "gem:" + "m" * 513,
    "chat\r\n",
]

HI = [{"role": "user", "content": "hi"}]


@pytest.fixture
async def gemini(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[tuple[FakeGemini, str]]:
    fake = FakeGemini(key="gem-secret")
    monkeypatch.setenv("GEM_TEST_KEY", "gem-secret")
    async with running(fake) as url:
        yield fake, url


@pytest.mark.parametrize("model", HOSTILE)
async def test_a_hostile_model_is_400_in_either_format_and_reaches_no_upstream(
    start_router: RouterFactory, gemini: tuple[FakeGemini, str], model: str
) -> None:
    fake, upstream = gemini
    async with (
        start_router(CONFIG.format(url=upstream)) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        openai = await client.post("/v1/chat/completions", json={"model": model, "messages": HI})
        anthropic = await client.post(
            "/v1/messages", json={"model": model, "max_tokens": 5, "messages": HI}
        )
    assert openai.status_code == 400
    error = openai.json()["error"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] == "model"
    assert "not a valid model name" in error["message"]
    assert anthropic.status_code == 400
    assert anthropic.json()["type"] == "error"
    assert anthropic.json()["error"]["type"] == "invalid_request_error"
    assert fake.received == []  # the operator's key went nowhere


async def test_a_slash_stays_allowed_and_travels_as_one_segment(
    start_router: RouterFactory, gemini: tuple[FakeGemini, str]
) -> None:
    fake, upstream = gemini
    async with (
        start_router(CONFIG.format(url=upstream)) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        answer = await client.post(
            "/v1/chat/completions", json={"model": "gem:tuned/v1.5:beta", "messages": HI}
        )
    assert answer.status_code == 200
    assert [r.path for r in fake.received] == ["/v1beta/models/tuned%2Fv1.5%3Abeta:generateContent"]


async def test_a_provider_with_a_models_list_serves_only_those(
    start_router: RouterFactory, gemini: tuple[FakeGemini, str]
) -> None:
    _, upstream = gemini
    async with (
        start_router(CONFIG.format(url=upstream)) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        listed = await client.post(
            "/v1/chat/completions",
            json={"model": "listed:meta-llama/Llama-3.1-8B", "messages": HI},
        )
        invented = await client.post(
            "/v1/chat/completions", json={"model": "listed:gpt-5", "messages": HI}
        )
        models = await client.get("/v1/models")
        status = await client.get("/admin/status")
    assert listed.status_code == 200
    assert invented.status_code == 404
    assert invented.json()["error"]["code"] == "model_not_found"
    ids = [m["id"] for m in models.json()["data"]]
    assert ids == ["chat", "gem:gemini-2.5-flash", "listed:echo", "listed:meta-llama/Llama-3.1-8B"]
    assert "listed:gpt-5" not in status.text  # no state kept for a refused name
