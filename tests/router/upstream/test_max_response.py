"""Upstream answers are bounded by ``server.max_response``; redirects are upstream failures.

A raw HTTP/1.1 upstream (h11 over a loopback socket) misbehaves on purpose: a whole
answer far larger than the bound, or a stream whose event, line or frame never ends.
The daemon must give up at the bound, close that connection (the upstream sees it go),
and carry on: a 502, or the route's next target.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import asynccontextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import attrs
import h11
import openai
import orjson
import pytest
import trio

from adapters import (
    GatewayRequest,
    Message,
    OpenAIAdapter,
    OpenAIStreamDecoder,
    StreamError,
)
from router import H11Pool
from router.upstream._upstream import HTTPUpstream
from tests.conftest import RouterFactory, openai_client
from tests.fakes._base import frame

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from openai import AsyncStream
    from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

    from adapters import ChatChunk
    from tests.fakes.openai_upstream import FakeOpenAI

HI: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
PIECE = b"a" * 16384


@attrs.define
class Upstream:
    """Answers every request with ``status``, ``headers`` and the pieces of ``body``,
    then (when ``end``) the body's end, then silence until the client goes; ``gone`` is
    set when the client closed the connection."""

    status: int = 200
    headers: list[tuple[str, str]] = attrs.Factory(list)
    body: Callable[[], Iterator[bytes]] = lambda: iter(())
    end: bool = True
    gone: trio.Event = attrs.Factory(trio.Event)

    async def handle(self, stream: trio.SocketStream) -> None:
        conn = h11.Connection(h11.SERVER)
        try:
            while not isinstance(event := conn.next_event(), h11.EndOfMessage):
                if event is h11.NEED_DATA:
                    conn.receive_data(bytes(await stream.receive_some(65536)))
            head = h11.Response(status_code=self.status, headers=self.headers)
            await stream.send_all(conn.send(head) or b"")
            for piece in self.body():
                await stream.send_all(conn.send(h11.Data(data=piece)) or b"")
            if self.end:
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
            while await stream.receive_some(65536):
                pass
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        self.gone.set()


@asynccontextmanager
async def serving(upstream: Upstream) -> AsyncIterator[str]:
    async with trio.open_nursery() as nursery:
        serve = partial(trio.serve_tcp, upstream.handle, 0, host="127.0.0.1")
        listeners = await nursery.start(serve)
        yield f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        nursery.cancel_scope.cancel()


def config(bad: str, good: str, route: str) -> str:
    return f"""
[server]
max_response = "64KiB"

[defaults]
retries = 0

{bad}

[providers.good]
kind = "openai"
base_url = "{good}"

[routes.r]
fallback = {route}
"""


def openai_kind(url: str) -> str:
    return f'[providers.bad]\nkind = "openai"\nbase_url = "{url}/v1"'


def answer(size: int) -> bytes:
    message = {"role": "assistant", "content": "a" * size}
    choice = {"index": 0, "message": message, "finish_reason": "stop"}
    return orjson.dumps({"id": "c", "object": "chat.completion", "created": 0, "choices": [choice]})


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
async def test_a_whole_answer_past_the_bound_is_a_502(
    start_router: RouterFactory, fake_openai: FakeOpenAI, declared: bool
) -> None:
    body = answer(4 * 1024 * 1024)
    headers = [("content-type", "application/json")]
    if declared:
        headers.append(("content-length", str(len(body))))
    upstream = Upstream(
        headers=headers,
        body=lambda: iter([body[i : i + 16384] for i in range(0, len(body), 16384)]),
    )
    with trio.fail_after(10):
        async with serving(upstream) as url:
            toml = config(openai_kind(url), fake_openai.url, '["bad:gpt-4o"]')
            async with start_router(toml) as router, openai_client(router) as client:
                with pytest.raises(openai.InternalServerError) as caught:
                    await client.chat.completions.create(model="r", messages=HI)
                await upstream.gone.wait()  # closed, not kept for the next request
    assert caught.value.status_code == 502
    assert "server.max_response" in caught.value.message


def endless(opening: bytes, total: int = 32 * 1024 * 1024) -> Callable[[], Iterator[bytes]]:
    """``opening`` then filler that never ends the event, line or frame."""

    def pieces() -> Iterator[bytes]:
        yield opening
        for _ in range(total // len(PIECE)):
            yield PIECE

    return pieces


def bedrock_pieces() -> Iterator[bytes]:
    """The start of one event-stream frame claiming 1 MiB, never finished."""
    event = {":event-type": "contentBlockDelta", ":message-type": "event"}
    whole = frame(event, b'{"delta": {"text": "' + b"a" * 1024 * 1024 + b'"}}')
    return iter([whole[i : i + 16384] for i in range(0, len(whole) - 1, 16384)][:-1])


KINDS = {
    "sse": (
        openai_kind,
        "text/event-stream",
        endless(b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "'),
    ),
    "ndjson": (
        lambda url: f'[providers.bad]\nkind = "ollama"\nbase_url = "{url}"',
        "application/x-ndjson",
        endless(b'{"model": "m", "message": {"role": "assistant", "content": "'),
    ),
    "event-stream": (
        lambda url: (
            f'[providers.bad]\nkind = "bedrock"\nbase_url = "{url}"\nregion = "us-west-2"\n'
            'aws_access_key_id = "env:UB_KEY_ID"\naws_secret_access_key = "env:UB_SECRET"'
        ),
        "application/vnd.amazon.eventstream",
        bedrock_pieces,
    ),
}


@pytest.mark.parametrize("kind", KINDS)
async def test_a_stream_event_that_never_ends_moves_on(
    start_router: RouterFactory,
    fake_openai: FakeOpenAI,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
) -> None:
    monkeypatch.setenv("UB_KEY_ID", "AKIDFAKEEXAMPLE")
    monkeypatch.setenv("UB_SECRET", "fake-secret")
    provider, content_type, body = KINDS[kind]
    upstream = Upstream(headers=[("content-type", content_type)], body=body, end=False)
    with trio.fail_after(10):  # the first token may take a minute: the bound must act first
        async with serving(upstream) as url:
            toml = config(provider(url), fake_openai.url, '["bad:m", "good:gpt-4o"]')
            async with start_router(toml) as router, openai_client(router) as client:
                stream = await client.chat.completions.create(model="r", messages=HI, stream=True)
                text = "".join(
                    [c.choices[0].delta.content or "" async for c in stream if c.choices]
                )
                await upstream.gone.wait()
    assert text == "echo: hi"


async def test_an_event_past_the_bound_breaks_a_committed_stream(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    first = (  # a whole chunk, as OpenAI sends it (it goes to the client as it came)
        b'data: {"id": "c", "object": "chat.completion.chunk", "created": 0, "model": "m", '
        b'"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": null}]}\n\n'
    )
    body = endless(first + b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "')
    upstream = Upstream(headers=[("content-type", "text/event-stream")], body=body, end=False)
    texts: list[str] = []

    async def read(stream: AsyncStream[ChatCompletionChunk]) -> None:
        async for chunk in stream:
            texts.extend(c.delta.content or "" for c in chunk.choices)

    with trio.fail_after(10):
        async with serving(upstream) as url:
            toml = config(openai_kind(url), fake_openai.url, '["bad:m"]\nresume = "off"')
            async with start_router(toml) as router, openai_client(router) as client:
                stream = await client.chat.completions.create(model="r", messages=HI, stream=True)
                with pytest.raises(openai.APIError, match=r"server\.max_response"):
                    await read(stream)
                await upstream.gone.wait()
    assert "".join(texts) == "x"


class Unsaying:
    """A plugin's decoder that does not say how much it holds (no ``buffered``)."""

    def __init__(self) -> None:
        self._inner = OpenAIStreamDecoder()

    def feed(self, data: bytes) -> list[ChatChunk]:
        return self._inner.feed(data)

    def close(self) -> list[ChatChunk]:
        return self._inner.close()


class PluginAdapter(OpenAIAdapter):
    def stream_decoder(self) -> Any:
        return Unsaying()


async def test_a_decoder_that_does_not_say_what_it_holds_is_bounded_too() -> None:
    opening = b'data: {"id": "c", "choices": [{"index": 0, "delta": {"content": "'
    upstream = Upstream(headers=[("content-type", "text/event-stream")], body=endless(opening))
    with trio.fail_after(10):
        async with serving(upstream) as url:
            adapter: Any = PluginAdapter(f"{url}/v1")  # written before decoders said
            http = HTTPUpstream("p", "plugin", adapter, H11Pool(), max_response=65536)
            req = GatewayRequest(model="m", messages=(Message("user", "hi"),), stream=True)
            with pytest.raises(StreamError, match=r"server\.max_response"):
                async with http.stream(req, "m") as chunks:
                    await chunks.__anext__()
            await upstream.gone.wait()
            await http.aclose()


@pytest.mark.parametrize("stream", [False, True])
async def test_an_upstream_redirect_is_its_failure(
    start_router: RouterFactory, fake_openai: FakeOpenAI, stream: bool
) -> None:
    upstream = Upstream(302, [("location", "https://example.com/login"), ("content-length", "0")])
    async with serving(upstream) as url:
        alone = config(openai_kind(url), fake_openai.url, '["bad:gpt-4o"]')
        async with start_router(alone) as router, openai_client(router) as client:
            with pytest.raises(openai.InternalServerError) as caught:
                await client.chat.completions.create(model="r", messages=HI, stream=stream)
        backed = config(openai_kind(url), fake_openai.url, '["bad:gpt-4o", "good:gpt-4o"]')
        async with start_router(backed) as router, openai_client(router) as client:
            raw = await client.chat.completions.with_raw_response.create(
                model="r", messages=HI, stream=stream
            )
    assert caught.value.status_code == 502
    assert "HTTP 302" in caught.value.message
    assert "example.com" not in caught.value.message
    assert raw.headers["x-router-target"] == "good:gpt-4o"
