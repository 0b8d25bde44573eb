"""Shared fixtures: fake upstreams and the daemon itself, over real loopback HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING

import anthropic
import openai
import pytest
import trio
from hypothesis import settings

from router import run_daemon
from tests.conformance._wire import PROBLEMS, Checking
from tests.fakes.openai_upstream import FakeOpenAI, running

if TYPE_CHECKING:
    from pathlib import Path

RouterFactory = Callable[[str], AbstractAsyncContextManager[str]]

# Property tests run the same examples on every run and machine (derandomized, no example
# database), so a red CI is reproducible and a green one means the same thing everywhere.
# `pytest --hypothesis-profile=explore` searches afresh with more examples; paste what it
# finds into a plain regression test. No deadline: the first call of some code is slow.
settings.register_profile(
    "repeatable", derandomize=True, database=None, deadline=None, max_examples=50
)
settings.register_profile("explore", max_examples=2000, deadline=None)
settings.load_profile("repeatable")


@pytest.fixture
async def fake_openai() -> AsyncIterator[FakeOpenAI]:
    """A fake OpenAI upstream on 127.0.0.1:0; ``.url`` is its base URL with ``/v1``."""
    app = FakeOpenAI()
    async with running(app) as url:
        app.url = f"{url}/v1"
        yield app


@pytest.fixture
def start_router(tmp_path: Path) -> RouterFactory:
    """``async with start_router(toml) as url``: the daemon serving that config."""

    @asynccontextmanager
    async def start(toml: str) -> AsyncIterator[str]:
        path = tmp_path / "router.toml"
        path.write_text(toml)
        async with trio.open_nursery() as nursery:
            binds = await nursery.start(partial(run_daemon, str(path), "127.0.0.1:0"))
            try:
                yield binds[0]
            finally:
                nursery.cancel_scope.cancel()

    return start


@asynccontextmanager
async def openai_client(url: str) -> AsyncIterator[openai.AsyncOpenAI]:
    """The official SDK pointed at the daemon, without its own retries; each answer it
    gets is checked against the OpenAI schema (``tests/conformance/_wire.py``)."""
    client = openai.AsyncOpenAI(
        base_url=f"{url}/v1",
        api_key="unused",
        max_retries=0,
        http_client=openai.DefaultAsyncHttpxClient(transport=Checking()),
    )
    try:
        yield client
    finally:
        await client.close()


def anthropic_client(url: str) -> anthropic.AsyncAnthropic:
    """The official anthropic SDK pointed at the daemon's Messages ingress, without its
    own retries; each stream it gets is checked against Anthropic's event sequence."""
    return anthropic.AsyncAnthropic(
        base_url=url,
        api_key="unused",
        max_retries=0,
        http_client=anthropic.DefaultAsyncHttpxClient(transport=Checking()),
    )


@pytest.fixture(autouse=True)
def wire_rules() -> Iterator[None]:
    """Every test's answers keep their format's rules (what :class:`Checking` saw)."""
    PROBLEMS.clear()
    yield
    problems, PROBLEMS[:] = list(PROBLEMS), []
    if problems:
        pytest.fail("answers broke their format's rules:\n" + "\n".join(problems[:20]))
