"""LiteLLM as the daemon's client: ``litellm.completion`` with ``model="openai/<route>"``
and ``api_base`` at the daemon, for chat, streaming, tools and a Pydantic
``response_format``, with an OpenAI target and an Anthropic one behind the route.

LiteLLM fetches a price map from the internet when imported unless told to use its
local copy; it is told so here, before the import, and its telemetry is off."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING, Any

import openai
import pytest
import trio

from tests.router.http._clients import ECHO, EVENT, TARGETS, TOOL, Event, fakes_config

os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
os.environ["LITELLM_TELEMETRY"] = "False"
litellm = pytest.importorskip("litellm")
litellm.telemetry = False

if TYPE_CHECKING:
    from tests.conftest import RouterFactory

pytestmark = [
    pytest.mark.parametrize("target", TARGETS),
    # Its own types, as Pydantic reads them: LiteLLM's, not the daemon's answers.
    pytest.mark.filterwarnings("ignore:Items? .* (is|are) using the `ReadOnly` qualifier"),
]
HI: Any = [{"role": "user", "content": "hi there"}]


def complete(url: str, route: str, **options: Any) -> Any:
    """``litellm.completion`` of ``route`` at the daemon, without retries of its own; a
    stream as the list of its chunks. Its HTTP client is closed after (LiteLLM would
    otherwise keep one of its own, open, for the life of the process)."""
    with openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0) as client:
        answer = litellm.completion(
            model=f"openai/{route}",
            api_base=f"{url}/v1",
            api_key="unused",
            num_retries=0,
            messages=HI,
            client=client,
            **options,
        )
        return list(answer) if options.get("stream") else answer


async def test_chat_and_stream(start_router: RouterFactory, target: str) -> None:
    async with fakes_config() as config, start_router(config) as url:
        answer = await trio.to_thread.run_sync(lambda: complete(url, target))
        chunks = await trio.to_thread.run_sync(lambda: complete(url, target, stream=True))
    assert answer.choices[0].message.content == ECHO
    assert answer.choices[0].finish_reason == "stop"
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == ECHO
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_tool_calls(start_router: RouterFactory, target: str) -> None:
    async with fakes_config() as config, start_router(config) as url:
        answer = await trio.to_thread.run_sync(
            lambda: complete(url, f"{target}-tools", tools=[TOOL])
        )
        chunks = await trio.to_thread.run_sync(
            lambda: complete(url, f"{target}-tools", tools=[TOOL], stream=True)
        )
    rebuilt = litellm.stream_chunk_builder(chunks, messages=HI)
    for message in (answer.choices[0].message, rebuilt.choices[0].message):
        (call,) = message.tool_calls
        assert call.function.name == "get_weather"
        assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert answer.choices[0].finish_reason == "tool_calls"


async def test_response_format(start_router: RouterFactory, target: str) -> None:
    async with fakes_config() as config, start_router(config) as url:
        answer = await trio.to_thread.run_sync(lambda: complete(url, target, response_format=Event))
    assert Event.model_validate_json(answer.choices[0].message.content) == EVENT
