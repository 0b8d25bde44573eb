"""Fixtures of the HTTP end-to-end tests: the Anthropic fake and its key."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.fakes._base import running
from tests.fakes.anthropic_upstream import KEY, FakeAnthropic

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture(autouse=True)
def anthropic_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The key configs name as ``env:ANTHROPIC_TEST_KEY``, which the fake expects."""
    monkeypatch.setenv("ANTHROPIC_TEST_KEY", KEY)


@pytest.fixture
async def fake_anthropic() -> AsyncIterator[FakeAnthropic]:
    """A fake Anthropic upstream on 127.0.0.1:0; ``.url`` is its base URL."""
    app = FakeAnthropic()
    async with running(app) as url:
        app.url = url
        yield app
