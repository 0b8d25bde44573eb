"""pydantic-ai as the daemon's client: an ``Agent`` over its OpenAI model with the
provider's base URL at the daemon, for text (whole and streamed) and for
``output_type`` (an output tool it must call), with an OpenAI target and an Anthropic
one behind the route.

pydantic-ai runs on asyncio; its sync API (``run_sync``, ``run_stream_sync``) runs its
own loop, here in a worker thread (``trio.to_thread``) beside the daemon on trio's. Its
HTTP client keeps no idle connection, as that loop cannot close one after the test."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx2
import openai
import pytest
import trio

from tests.router.http._clients import ECHO, EVENT, TARGETS, Event, fakes_config

pydantic_ai = pytest.importorskip("pydantic_ai")
openai_models = pytest.importorskip("pydantic_ai.models.openai")
openai_provider = pytest.importorskip("pydantic_ai.providers.openai")

if TYPE_CHECKING:
    from tests.conftest import RouterFactory

pytestmark = pytest.mark.parametrize("target", TARGETS)


def agent(url: str, route: str, output_type: Any = str) -> Any:
    """An agent whose model is the daemon's ``route``; no retries of its own."""
    http = openai.DefaultAsyncHttpxClient(limits=httpx2.Limits(max_keepalive_connections=0))
    client = openai.AsyncOpenAI(
        base_url=f"{url}/v1", api_key="unused", max_retries=0, http_client=http
    )
    provider = openai_provider.OpenAIProvider(openai_client=client)
    model = openai_models.OpenAIChatModel(route, provider=provider)
    return pydantic_ai.Agent(model, output_type=output_type, retries=0)


async def test_text_and_stream(start_router: RouterFactory, target: str) -> None:
    def streamed(chat: Any) -> list[str]:
        with chat.run_stream_sync("hi there") as result:
            return list(result.stream_text(delta=True, debounce_by=None))

    async with fakes_config() as config, start_router(config) as url:
        chat = agent(url, target)
        answer = await trio.to_thread.run_sync(chat.run_sync, "hi there")
        pieces = await trio.to_thread.run_sync(streamed, chat)
    assert answer.output == ECHO
    assert len(pieces) > 1
    assert "".join(pieces) == ECHO


async def test_output_type(start_router: RouterFactory, target: str) -> None:
    async with fakes_config() as config, start_router(config) as url:
        chat = agent(url, target, Event)
        result = await trio.to_thread.run_sync(chat.run_sync, "Alice meets online.")
    assert result.output == EVENT
