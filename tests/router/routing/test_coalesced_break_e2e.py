"""A stream whose good events and garbage event arrive in one read, over loopback.

TCP coalesces writes: the events before a bad one often come in the same read as it.
Their words are part of the answer all the same: the client gets every word the
upstream sent before the garbage, once, whether the stream then ends with an error or
a fallback resumes it, and the resume continues after the last of those words.

The fake OpenAI upstream streams ``story-corrupt-10`` (its 10th word's event is not
JSON) through :class:`~tests.fakes._writes.Coalescing`: its first parts one by one, then
the parts up to the garbage in one write.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import openai
import pytest

from tests.conftest import openai_client
from tests.fakes._base import STORY, running
from tests.fakes._writes import Coalescing
from tests.fakes.anthropic_upstream import KEY, FakeAnthropic
from tests.fakes.openai_upstream import FakeOpenAI

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.conftest import RouterFactory

#: What the upstream sent before its garbage event: the story's first nine words.
BEFORE_GARBAGE = " ".join(STORY.split(" ")[:9])
GARBAGE = 10  # the body part of the garbage event: after the role chunk and nine words
# The role chunk and five words apart, then four words and the garbage in one write; or
# all of it (no word sent before the write that breaks the stream).
WRITES = [pytest.param(6, id="mid-stream"), pytest.param(0, id="from-the-start")]


@pytest.fixture
async def fake_anthropic(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeAnthropic]:
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", KEY)
    app = FakeAnthropic()
    async with running(app) as url:
        app.url = url
        yield app


def config(openai_url: str, anthropic_url: str, fallback: str = "") -> str:
    return f"""
[providers.oa]
kind = "openai_compatible"
base_url = "{openai_url}"

[providers.claude]
kind = "anthropic"
base_url = "{anthropic_url}"
api_key = "env:ANTHROPIC_TEST_KEY"

[routes.r]
fallback = ["oa:story-corrupt-10"{fallback}]
"""


async def streamed(url: str) -> tuple[list[Any], BaseException | None]:
    """The chunks a client got of route ``r``'s story, and the error that ended it."""
    chunks: list[Any] = []
    async with openai_client(url) as client:
        try:
            stream = await client.chat.completions.create(
                model="r", messages=[{"role": "user", "content": "tell me"}], stream=True
            )
            async for chunk in stream:
                chunks.append(chunk)
        except openai.APIError as exc:
            return chunks, exc
    return chunks, None


def text_of(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


@pytest.mark.parametrize("apart", WRITES)
async def test_the_words_before_the_garbage_reach_the_client_before_the_error(
    start_router: RouterFactory, fake_anthropic: FakeAnthropic, apart: int
) -> None:
    fake = Coalescing(FakeOpenAI(), apart, GARBAGE)
    async with running(fake) as url, start_router(config(f"{url}/v1", fake_anthropic.url)) as at:
        chunks, error = await streamed(at)
    assert isinstance(error, openai.APIError)
    assert text_of(chunks) == BEFORE_GARBAGE


@pytest.mark.parametrize("apart", WRITES)
@pytest.mark.parametrize("fallback", ["claude:story", "oa:story"])
async def test_a_resume_continues_after_every_word_the_broken_stream_sent(
    start_router: RouterFactory, fake_anthropic: FakeAnthropic, apart: int, fallback: str
) -> None:
    # Anthropic continues a prefill; OpenAI answers anew, and what the client already
    # has is cut off its answer: a word delivered but not counted would come twice.
    fake = Coalescing(FakeOpenAI(), apart, GARBAGE)
    async with running(fake) as url:
        toml = config(f"{url}/v1", fake_anthropic.url, f', "{fallback}"')
        async with start_router(toml) as router:
            chunks, error = await streamed(router)
    assert error is None
    assert text_of(chunks) == STORY  # every word, once
    assert len({c.id for c in chunks}) == 1
    assert chunks[-1].choices[0].finish_reason == "stop"
    if fallback == "claude:story":  # asked to go on after the ninth word
        assert fake_anthropic.prefill(fake_anthropic.received[-1]) == BEFORE_GARBAGE
