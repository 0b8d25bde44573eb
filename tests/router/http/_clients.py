"""What the client-library tests share: the OpenAI and Anthropic fakes behind one daemon
config, the routes to each, and the model the structured-output tests ask for.

Each library is the client of a running daemon, over its real HTTP, and is run as its
users run it: sync calls in a worker thread (``trio.to_thread``) beside the daemon on
trio's loop. Every route has an OpenAI target and an Anthropic one, so an answer is
tested as passed through and as translated both ways.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import pydantic

from tests.fakes._base import running
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

__all__ = ["ECHO", "EVENT", "TARGETS", "TOOL", "Attendee", "Event", "fakes_config"]

#: The route names: each has a plain model and a ``-tools`` one that calls a tool.
TARGETS = ["gpt", "claude"]
#: What both fakes answer "hi there": an echo.
ECHO = "echo: hi there"
#: The tool both fakes' ``tool-caller`` calls, with ``{"city": "Paris"}``.
TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather by city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}


class Attendee(pydantic.BaseModel):
    name: str
    age: int


class Event(pydantic.BaseModel):
    """What structured output is asked for; the fakes fill it with the simplest values."""

    title: str
    attendees: list[Attendee]
    online: bool


#: The event the fakes answer for :class:`Event`.
EVENT = Event(title="text", attendees=[Attendee(name="text", age=1)], online=True)


@asynccontextmanager
async def fakes_config() -> AsyncIterator[str]:
    """The fakes running, and a config routing ``gpt``/``gpt-tools`` to the OpenAI one
    and ``claude``/``claude-tools`` to the Anthropic one (its key: ``ANTHROPIC_TEST_KEY``)."""
    async with (
        running(FakeOpenAI(structured=True)) as openai_url,
        running(FakeAnthropic()) as claude_url,
    ):
        yield f"""
[defaults]
retries = 0

[providers.oa]
kind = "openai"
base_url = "{openai_url}/v1"

[providers.claude]
kind = "anthropic"
base_url = "{claude_url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[routes.gpt]
fallback = ["oa:gpt-4o"]

[routes.gpt-tools]
fallback = ["oa:tool-caller"]

[routes.claude]
fallback = ["claude:claude-sonnet"]

[routes.claude-tools]
fallback = ["claude:tool-caller"]
"""
