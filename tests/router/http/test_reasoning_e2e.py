"""Reasoning and the answer's identity across formats, through the daemon: an OpenAI
client's ``reasoning_effort`` reaches an Anthropic target as a thinking budget and its
thinking comes back as ``reasoning_content`` (whole and streamed); an Anthropic
client's ``anthropic-beta`` header reaches an Anthropic target; a streamed answer kept
by the cache comes back with its reasoning, ``system_fingerprint`` and
``service_tier``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tests.conftest import anthropic_client, openai_client
from tests.fakes.anthropic_upstream import THOUGHT, FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI, running

if TYPE_CHECKING:
    from tests.conftest import RouterFactory

ASK: list[Any] = [{"role": "user", "content": "think"}]


def _toml(claude: str, oa: str) -> str:
    return f"""
[defaults]
retries = 0

[providers.claude]
kind = "anthropic"
base_url = "{claude}"
api_key = "env:ANTHROPIC_TEST_KEY"
beta = ["ours-2025-01-01"]

[providers.oa]
kind = "openai"
base_url = "{oa}"

[routes.think]
fallback = ["claude:thinker"]

[routes.rich]
fallback = ["oa:rich"]
cache = {{ ttl = "1m" }}
"""


async def test_reasoning_effort_is_a_thinking_budget_and_thinking_is_reasoning_content(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    claude = FakeAnthropic()
    async with (
        running(claude) as claude_url,
        start_router(_toml(claude_url, fake_openai.url)) as url,
        openai_client(url) as client,
    ):
        whole = await client.chat.completions.create(
            model="think", messages=ASK, reasoning_effort="medium", max_completion_tokens=100
        )
        chunks = [
            c
            async for c in await client.chat.completions.create(
                model="think", messages=ASK, stream=True
            )
        ]
    sent = claude.received[0].body
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert sent["max_tokens"] == 2148  # above the budget, the answer's 100 kept
    assert "thinking" not in claude.received[1].body  # not asked for: not sent
    message = whole.choices[0].message
    assert message.content == "Done"
    assert (message.model_extra or {}).get("reasoning_content") == THOUGHT["thinking"]
    streamed = "".join(
        (c.choices[0].delta.model_extra or {}).get("reasoning_content") or ""
        for c in chunks
        if c.choices
    )
    assert streamed == THOUGHT["thinking"]


async def test_the_anthropic_beta_header_reaches_anthropic(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    claude = FakeAnthropic()
    async with (
        running(claude) as claude_url,
        start_router(_toml(claude_url, fake_openai.url)) as url,
        anthropic_client(url) as client,
    ):
        await client.messages.create(
            model="think",
            max_tokens=100,
            messages=ASK,
            extra_headers={"anthropic-beta": "theirs-2025-02-02"},
        )
        await client.messages.create(model="think", max_tokens=100, messages=ASK)
    assert claude.received[0].headers["anthropic-beta"] == "ours-2025-01-01,theirs-2025-02-02"
    assert claude.received[1].headers["anthropic-beta"] == "ours-2025-01-01"


async def test_a_cached_stream_keeps_its_identity(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    claude = FakeAnthropic()
    async with (
        running(claude) as claude_url,
        start_router(_toml(claude_url, fake_openai.url)) as url,
        openai_client(url) as client,
    ):
        for _ in range(2):  # the upstream's stream, then the cache's replay of it
            chunks = [
                c
                async for c in await client.chat.completions.create(
                    model="rich", messages=ASK, stream=True
                )
            ]
            assert all(c.system_fingerprint == "fp_rich" for c in chunks)
            assert all(c.service_tier == "priority" for c in chunks)
        whole = await client.chat.completions.create(model="rich", messages=ASK)
    assert len(fake_openai.received) == 1
    assert whole.system_fingerprint == "fp_rich"
    assert whole.service_tier == "priority"
