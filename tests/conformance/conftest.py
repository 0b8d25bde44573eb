"""The daemon in front of one provider kind's fake, the official OpenAI SDK as its client."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import TYPE_CHECKING, Any

import attrs
import openai
import pytest

from tests.conformance._case import ProviderCase
from tests.conformance._cases import CASES
from tests.conftest import RouterFactory, anthropic_client, openai_client
from tests.fakes._base import FakeServer, Received, running
from tests.fakes._writes import Coalescing

if TYPE_CHECKING:
    import anthropic
    from openai.types.chat import ChatCompletionChunk

__all__ = ["Gateway", "Served", "kinds", "text_of"]


def kinds(where: Callable[[ProviderCase], object] = bool) -> pytest.MarkDecorator:
    """Run the test once per provider kind (those ``where`` holds for)."""
    return pytest.mark.parametrize("case", [c for c in CASES if where(c)], ids=str)


def text_of(chunks: Sequence[ChatCompletionChunk]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


def finish_of(chunks: Sequence[ChatCompletionChunk]) -> str | None:
    return [c.choices[0].finish_reason for c in chunks if c.choices][-1]


def config(case: ProviderCase, url: str, *tables: str, extra: str = "") -> str:
    """Provider ``p`` (credentials the fake takes, and ``extra``), ``wrong`` (ones it
    refuses), route ``chat`` to ``p``'s usual model, and ``tables`` (where ``{url}`` is
    the fake's); no retries (they have their own tests)."""
    credentials = case.credentials
    return "\n".join(
        [
            "[defaults]\nretries = 0\n",
            f'[providers.p]\nkind = "{case.kind}"\nbase_url = "{url}"',
            f"{credentials.settings}\n{extra}\n",
            f'[providers.wrong]\nkind = "{case.kind}"\nbase_url = "{url}"',
            f"{credentials.wrong}\n",
            f'[routes.chat]\nfallback = ["p:{case.model}"]',
            *(table.replace("{url}", url) for table in tables),
        ]
    )


@attrs.frozen
class Served:
    case: ProviderCase
    client: openai.AsyncOpenAI
    fake: FakeServer
    #: The daemon's address.
    url: str

    @asynccontextmanager
    async def anthropic(self) -> AsyncIterator[anthropic.AsyncAnthropic]:
        """The official anthropic SDK pointed at the daemon's Messages ingress."""
        client = anthropic_client(self.url)
        try:
            yield client
        finally:
            await client.close()

    async def stream(
        self, model: str, text: str = "one two three four", **more: Any
    ) -> list[ChatCompletionChunk]:
        """Every chunk of a streamed answer (what the SDK raises, it raises)."""
        messages: Any = [{"role": "user", "content": text}]
        chunks = await self.client.chat.completions.create(
            model=model, messages=messages, stream=True, **more
        )
        return [chunk async for chunk in chunks]

    def check_sent(self, sent: Received, *, streamed: bool = False) -> None:
        """``sent`` went where this kind's requests go, with its credentials."""
        case = self.case
        assert (sent.path, sent.query) == (case.path[streamed], case.query[streamed])
        self.check_auth(sent)

    def check_auth(self, sent: Received) -> None:
        """``sent`` carries this kind's credentials, and nothing it must not."""
        case = self.case
        for name, pattern in case.auth.items():
            assert re.fullmatch(pattern, sent.headers[name]), (name, sent.headers[name])
        assert not set(case.absent) & set(sent.headers)


Gateway = Callable[..., AbstractAsyncContextManager[Served]]


@pytest.fixture
def gateway(start_router: RouterFactory, monkeypatch: pytest.MonkeyPatch) -> Gateway:
    """``async with gateway(case, *tables, extra=...) as served``: the daemon to a fresh
    fake of the case's kind, with the config of :func:`config`; with ``one_write``, the
    fake sends each answer's body in one write (as TCP may coalesce its parts)."""

    @asynccontextmanager
    async def serve(
        case: ProviderCase, *tables: str, extra: str = "", one_write: bool = False
    ) -> AsyncIterator[Served]:
        for name, value in case.credentials.env.items():
            monkeypatch.setenv(name, value)
        fake = case.fake()
        async with running(Coalescing(fake) if one_write else fake) as address:
            fake.url = address + case.base
            toml = config(case, fake.url, *tables, extra=extra)
            async with start_router(toml) as url, openai_client(url) as client:
                yield Served(case, client, fake, url)

    return serve
