"""instructor as the daemon's client: ``from_openai`` with a ``response_model`` (a forced
tool call, its default mode), whole and as a stream of partial objects, with an OpenAI target and an Anthropic one behind the route."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import pytest
import trio

from tests.router.http._clients import EVENT, TARGETS, Event, fakes_config

instructor = pytest.importorskip("instructor")

if TYPE_CHECKING:
    from tests.conftest import RouterFactory

pytestmark = pytest.mark.parametrize("target", TARGETS)
ASK: Any = [{"role": "user", "content": "Alice meets online."}]


def patched(url: str, mode: Any) -> Any:
    """instructor over the official SDK pointed at the daemon, without retries."""
    client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0)
    return instructor.from_openai(client, mode=mode)


async def test_response_model(start_router: RouterFactory, target: str) -> None:
    async with fakes_config() as config, start_router(config) as url:
        client = patched(url, instructor.Mode.TOOLS)
        event = await trio.to_thread.run_sync(
            lambda: client.chat.completions.create(
                model=target, messages=ASK, response_model=Event, max_retries=0
            )
        )
    assert event.model_dump() == EVENT.model_dump()  # its class is instructor's subclass


async def test_partial_stream(start_router: RouterFactory, target: str) -> None:
    async with fakes_config() as config, start_router(config) as url:
        client = patched(url, instructor.Mode.TOOLS)
        partials = await trio.to_thread.run_sync(
            lambda: list(
                client.chat.completions.create_partial(
                    model=target, messages=ASK, response_model=Event, max_retries=0
                )
            )
        )
    assert len(partials) > 1
    assert partials[-1].model_dump() == EVENT.model_dump()
