"""LangChain's ``ChatOpenAI`` as the daemon's client: chat, streaming, tools and
``with_structured_output`` (as a JSON schema and as a forced function call), with an
OpenAI target and an Anthropic one behind the route."""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Any

import pytest
import trio

from tests.router.http._clients import ECHO, EVENT, TARGETS, TOOL, Event, fakes_config

langchain_openai = pytest.importorskip("langchain_openai")

if TYPE_CHECKING:
    from tests.conftest import RouterFactory

pytestmark = pytest.mark.parametrize("target", TARGETS)


def chat(url: str, model: str) -> Any:
    """``ChatOpenAI`` pointed at the daemon, without retries of its own."""
    return langchain_openai.ChatOpenAI(
        model=model, base_url=f"{url}/v1", api_key="unused", max_retries=0
    )


async def test_chat_and_stream(start_router: RouterFactory, target: str) -> None:
    async with fakes_config() as config, start_router(config) as url:
        llm = chat(url, target)
        answer = await trio.to_thread.run_sync(llm.invoke, "hi there")
        chunks = await trio.to_thread.run_sync(lambda: list(llm.stream("hi there")))
    assert answer.content == ECHO
    assert len(chunks) > 2
    assert "".join(str(chunk.content) for chunk in chunks) == ECHO


async def test_tool_calls(start_router: RouterFactory, target: str) -> None:
    async with fakes_config() as config, start_router(config) as url:
        llm = chat(url, f"{target}-tools").bind_tools([TOOL])
        answer = await trio.to_thread.run_sync(llm.invoke, "weather in Paris?")
        chunks = await trio.to_thread.run_sync(lambda: list(llm.stream("weather in Paris?")))
    streamed = functools.reduce(operator.add, chunks)
    for message in (answer, streamed):
        assert [(c["name"], c["args"]) for c in message.tool_calls] == [
            ("get_weather", {"city": "Paris"})
        ]


@pytest.mark.parametrize("method", ["json_schema", "function_calling"])
async def test_structured_output(start_router: RouterFactory, target: str, method: str) -> None:
    async with fakes_config() as config, start_router(config) as url:
        llm = chat(url, target).with_structured_output(Event, method=method)
        event = await trio.to_thread.run_sync(llm.invoke, "Alice meets online.")
    assert event == EVENT
