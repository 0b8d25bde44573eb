"""OpenAI content parts the unified request has no form for (``file``, ``input_audio``)
and an earlier answer's ``refusal`` part, through the daemon's OpenAI ingress: an
OpenAI target gets them as sent, a target of another format refuses them with 400
``unsupported_parameter`` naming the part, and routing moves on past it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.conftest import openai_client
from tests.fakes.anthropic_upstream import FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI, running

if TYPE_CHECKING:
    from tests.conftest import RouterFactory

FILE: dict[str, Any] = {
    "type": "file",
    "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="},
}
AUDIO: dict[str, Any] = {
    "type": "input_audio",
    "input_audio": {"data": "UklGRg==", "format": "wav"},
}
REFUSED: dict[str, Any] = {"type": "refusal", "refusal": "I cannot help with that."}


def _messages(part: dict[str, Any]) -> list[Any]:
    return [
        {"role": "user", "content": "hello"},
        {"role": "assistant", "content": [REFUSED]},
        {"role": "user", "content": [{"type": "text", "text": "read this"}, part]},
    ]


def _toml(claude: str, oa: str) -> str:
    return f"""
[defaults]
retries = 0

[providers.claude]
kind = "anthropic"
base_url = "{claude}"
api_key = "env:ANTHROPIC_TEST_KEY"

[providers.oa]
kind = "openai"
base_url = "{oa}"

[routes.both]
fallback = ["claude:claude-sonnet", "oa:gpt-4o"]

[routes.claude-only]
fallback = ["claude:claude-sonnet"]
"""


@pytest.mark.parametrize("part", [FILE, AUDIO], ids=["file", "input_audio"])
async def test_parts_only_openai_takes_reach_it_and_move_routing_on(
    start_router: RouterFactory, fake_openai: FakeOpenAI, part: dict[str, Any]
) -> None:
    claude = FakeAnthropic()
    async with (
        running(claude) as claude_url,
        start_router(_toml(claude_url, fake_openai.url)) as url,
        openai_client(url) as client,
    ):
        answered = await client.chat.completions.with_raw_response.create(
            model="both", messages=_messages(part)
        )
        with pytest.raises(openai.BadRequestError) as refused:
            await client.chat.completions.create(model="claude-only", messages=_messages(part))
    assert answered.headers["x-router-target"] == "oa:gpt-4o"
    assert fake_openai.received[0].body["messages"] == _messages(part)
    assert claude.received == []  # refused before anything was sent
    assert refused.value.code == "unsupported_parameter"
    assert refused.value.param == "messages[2].content[1]"


async def test_a_refusal_part_is_text_to_anthropic(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    claude = FakeAnthropic()
    messages: list[Any] = [*_messages({"type": "text", "text": "please"})]
    async with (
        running(claude) as claude_url,
        start_router(_toml(claude_url, fake_openai.url)) as url,
        openai_client(url) as client,
    ):
        await client.chat.completions.create(model="claude-only", messages=messages)
    sent = claude.received[0].body["messages"]
    assert sent[1] == {
        "role": "assistant",
        "content": [{"type": "text", "text": REFUSED["refusal"]}],
    }
