"""Image fetching through the daemon: an Ollama target needs the bytes of a client's
image URL, and ``server.fetch_images = true`` lets the daemon fetch them."""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

import openai
import pytest
import trio

from router.upstream._images import FETCH_FAILED
from tests.conftest import RouterFactory, openai_client
from tests.fakes._base import running
from tests.fakes.ollama_upstream import FakeOllama
from tests.router.upstream.test_images import images, listening, silent

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from openai.types.chat import ChatCompletionMessageParam


@pytest.fixture
async def ollama() -> AsyncIterator[FakeOllama]:
    fake = FakeOllama()
    async with running(fake) as url:
        fake.url = url
        yield fake


def config(ollama: FakeOllama, allow: str = "", route: str = '["local:llama3.2"]') -> str:
    return f"""
[server]
fetch_images = true
{allow}

[defaults]
retries = 0
circuit = {{ failures = 2, open_for = "1h" }}

[providers.local]
kind = "ollama"
base_url = "{ollama.url}"

[routes.chat]
fallback = {route}
first_token_timeout = "500ms"
"""


def picture(url: str) -> list[ChatCompletionMessageParam]:
    content: Any = [
        {"type": "text", "text": "what"},
        {"type": "image_url", "image_url": {"url": url}},
    ]
    return [{"role": "user", "content": content}]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_an_internal_image_url_is_refused_unfetched(
    start_router: RouterFactory, ollama: FakeOllama
) -> None:
    async with (
        listening("127.0.0.1") as inside,
        start_router(config(ollama)) as url,
        openai_client(url) as client,
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model="chat", messages=picture(f"http://localhost:{inside.port}/secret.png")
            )
        assert await inside.offered("127.0.0.1") == []
    assert caught.value.message.endswith(FETCH_FAILED)
    assert ollama.received == []


async def test_bad_image_urls_do_not_open_the_targets_circuit(
    start_router: RouterFactory, ollama: FakeOllama
) -> None:
    """A closed port used to be the target's network failure: two opened its circuit."""
    port = closed_port()
    async with start_router(config(ollama)) as url, openai_client(url) as client:
        for _ in range(4):
            with pytest.raises(openai.BadRequestError):
                await client.chat.completions.create(
                    model="chat", messages=picture(f"http://127.0.0.1:{port}/x.png")
                )
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "still there?"}]
        )
    assert answer.choices[0].message.content == "echo: still there?"


async def test_allowed_networks_are_fetched_and_their_failures_are_the_clients(
    start_router: RouterFactory, ollama: FakeOllama
) -> None:
    allow = 'fetch_images_allow = ["127.0.0.1/32"]'
    port = closed_port()
    async with (
        running(images) as base,
        start_router(config(ollama, allow)) as url,
        openai_client(url) as client,
    ):
        for bad in (f"http://127.0.0.1:{port}/x.png", f"{base}/page.html") * 2:
            with pytest.raises(openai.BadRequestError, match=FETCH_FAILED):
                await client.chat.completions.create(model="chat", messages=picture(bad))
        answer = await client.chat.completions.create(
            model="chat", messages=picture(f"{base}/cat.png")
        )
    assert answer.choices[0].message.content == "echo: what [1 image(s)]"


async def test_a_slow_image_is_the_clients_failure_not_a_timeout_of_the_target(
    start_router: RouterFactory, ollama: FakeOllama
) -> None:
    """The first candidate has 500ms to answer: an image that takes longer must fail
    the request (400) before that, not time the target out (twice opens its circuit)."""
    allow = 'fetch_images_allow = ["127.0.0.1/32"]'
    route = '["local:llama3.2", "local:other"]'
    async with (
        trio.open_nursery() as nursery,
        start_router(config(ollama, allow, route)) as url,
        openai_client(url) as client,
    ):
        listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
        port = listeners[0].socket.getsockname()[1]
        nursery.start_soon(trio.serve_listeners, silent, listeners)
        for _ in range(3):
            with pytest.raises(openai.BadRequestError, match=FETCH_FAILED):
                await client.chat.completions.create(
                    model="chat", messages=picture(f"http://127.0.0.1:{port}/slow.png")
                )
        answer = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "still there?"}]
        )
        nursery.cancel_scope.cancel()
    assert answer.choices[0].message.content == "echo: still there?"
    assert [r.body["model"] for r in ollama.received] == ["llama3.2"]
