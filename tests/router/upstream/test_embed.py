"""An embeddings request longer than a provider takes per call: cut into parts, sent a
few at a time, joined in order; the first failure is the request's."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

import attrs
import pytest

from adapters import EmbeddingRequest, RateLimitExceeded, UnsupportedParameter
from adapters._gemini import GeminiAdapter
from router.upstream._pool import H11Pool
from router.upstream._upstream import HTTPUpstream
from tests.fakes._base import running
from tests.fakes._vectors import fake_vector
from tests.fakes.gemini_upstream import FakeGemini

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from tests.fakes._base import Answer, Received


@attrs.define
class FailsSecond(FakeGemini):
    """Gemini that refuses its second call with a 429."""

    def answer(self, got: Received) -> Answer:
        if len(self.received) == 2:
            return self.failure("429", got)
        return super().answer(got)


@asynccontextmanager
async def upstream_for(fake: FakeGemini) -> AsyncIterator[HTTPUpstream]:
    async with running(fake) as url:
        adapter = GeminiAdapter(f"{url}/v1beta", api_key=fake.key)
        upstream = HTTPUpstream("g", "gemini", adapter, H11Pool())
        try:
            yield upstream
        finally:
            await upstream.aclose()


TEXTS = tuple(f"text number {i}" for i in range(150))


async def test_a_long_request_goes_in_parts_and_comes_back_in_order() -> None:
    fake = FakeGemini()
    async with upstream_for(fake) as upstream:
        answer = await upstream.embed(EmbeddingRequest("r", TEXTS), "gemini-embedding-001")
    # The parts go concurrently: in whatever order they arrive, the answer is in order.
    assert sorted(len(r.body["requests"]) for r in fake.received) == [50, 100]
    assert answer.vectors == tuple(tuple(fake_vector(t)) for t in TEXTS)
    assert answer.model == "gemini-embedding-001"  # Gemini does not say: the one asked


async def test_the_first_failing_part_fails_the_request() -> None:
    fake = FailsSecond()
    async with upstream_for(fake) as upstream:
        with pytest.raises(RateLimitExceeded):
            await upstream.embed(EmbeddingRequest("r", TEXTS), "gemini-embedding-001")


async def test_a_parameter_the_provider_cannot_take_is_refused_before_any_call() -> None:
    fake = FakeGemini()
    async with upstream_for(fake) as upstream:
        with pytest.raises(UnsupportedParameter):
            await upstream.embed(EmbeddingRequest("r", ((1, 2),)), "gemini-embedding-001")
    assert fake.received == []
