"""``GET /v1/models`` and ``/v1/models/{id}`` through both official SDKs."""

from __future__ import annotations

from typing import TYPE_CHECKING

import anthropic
import httpx2
import openai
import pytest

from tests.conftest import openai_client

if TYPE_CHECKING:
    from tests.conftest import RouterFactory

CONFIG = """
[providers.sim]
kind = "simulated"
models = ["echo", "slow/v2"]

[providers.other]
kind = "simulated"

[routes.chat]
fallback = ["sim:echo", "other:backup"]
"""


async def test_openai_sdk_retrieves_routes_targets_and_listed_models(
    start_router: RouterFactory,
) -> None:
    async with start_router(CONFIG) as url, openai_client(url) as client:
        listed = {m.id: m.owned_by for m in (await client.models.list()).data}
        assert listed == {
            "chat": "llm-router",
            "other:backup": "other",
            "sim:echo": "sim",
            "sim:slow/v2": "sim",
        }
        route = await client.models.retrieve("chat")
        assert (route.id, route.owned_by, route.object) == ("chat", "llm-router", "model")
        target = await client.models.retrieve("sim:slow/v2")  # a "/" in the id
        assert (target.id, target.owned_by) == ("sim:slow/v2", "sim")
        direct = await client.models.retrieve("other:anything")  # any model of a provider
        assert direct.owned_by == "other"
        with pytest.raises(openai.NotFoundError) as caught:
            await client.models.retrieve("sim:unlisted")  # sim lists its models
        assert caught.value.code == "model_not_found"
        with pytest.raises(openai.NotFoundError):
            await client.models.retrieve("nowhere")


async def test_anthropic_sdk_lists_and_retrieves_in_its_own_shape(
    start_router: RouterFactory,
) -> None:
    async with start_router(CONFIG) as url:
        client = anthropic.AsyncAnthropic(base_url=url, api_key="unused", max_retries=0)
        try:
            page = await client.models.list()
            assert [m.id for m in page.data][:2] == ["chat", "other:backup"]
            assert page.has_more is False
            one = await client.models.retrieve("sim:echo")
            assert (one.id, one.type) == ("sim:echo", "model")
            with pytest.raises(anthropic.NotFoundError) as caught:
                await client.models.retrieve("nowhere")
            assert "not a route" in str(caught.value)
        finally:
            await client.close()


async def test_only_get_is_allowed_on_a_model(start_router: RouterFactory) -> None:
    async with start_router(CONFIG) as url, httpx2.AsyncClient(base_url=url) as http:
        answer = await http.post("/v1/models/chat")
    assert answer.status_code == 405
