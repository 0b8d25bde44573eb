"""A client that goes away cancels its upstream work at once."""

from __future__ import annotations

from typing import TYPE_CHECKING

import httpx2
import trio

from router.http._hangup import HANGUP, Hangup, hangup_of

if TYPE_CHECKING:
    from tests.conftest import RouterFactory
    from tests.fakes.openai_upstream import FakeOpenAI

CONFIG = """
[providers.up]
kind = "openai"
base_url = "{url}"

[routes.chat]
fallback = ["up:silent"]
"""


async def _disconnect_mid_request(url: str, fake: FakeOpenAI, stream: bool) -> None:
    body = {"model": "chat", "stream": stream, "messages": [{"role": "user", "content": "x"}]}
    async with (
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
        trio.open_nursery() as nursery,
    ):

        async def request() -> None:
            await client.post("/v1/chat/completions", json=body)

        nursery.start_soon(request)
        await fake.request_seen.wait()
        nursery.cancel_scope.cancel()  # the client hangs up


async def test_client_disconnect_closes_upstream(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(CONFIG.format(url=fake_openai.url)) as url:
        await _disconnect_mid_request(url, fake_openai, stream=False)
        # The design's promise: the upstream connection is closed within a second.
        with trio.fail_after(1):
            await fake_openai.disconnected.wait()


async def test_client_disconnect_closes_upstream_stream(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    async with start_router(CONFIG.format(url=fake_openai.url)) as url:
        await _disconnect_mid_request(url, fake_openai, stream=True)
        with trio.fail_after(1):
            await fake_openai.disconnected.wait()


async def test_a_request_starts_no_task_to_watch_for_a_disconnect(
    start_router: RouterFactory, fake_openai: FakeOpenAI
) -> None:
    """Over HTTP/1.1 the connection cancels the request itself (router/http/_hangup.py)."""
    spawned: list[str] = []

    class Spawned(trio.abc.Instrument):
        def task_spawned(self, task: trio.lowlevel.Task) -> None:
            spawned.append(task.name)

    body = {"model": "chat", "messages": [{"role": "user", "content": "x"}]}
    config = CONFIG.format(url=fake_openai.url).replace("up:silent", "up:m")
    async with (
        start_router(config) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        instrument = Spawned()
        trio.lowlevel.add_instrument(instrument)
        try:
            for _ in range(3):
                assert (await client.post("/v1/chat/completions", json=body)).status_code == 200
        finally:
            trio.lowlevel.remove_instrument(instrument)
    assert not [name for name in spawned if "watch_disconnect" in name], spawned


async def test_a_hangup_before_the_watch_cancels_at_once_and_a_finished_answer_never() -> None:
    gone_early = Hangup()
    gone_early.gone()
    scope = trio.CancelScope()
    gone_early.watch(scope, lambda: True)
    assert scope.cancel_called

    finishing = Hangup()
    scope = trio.CancelScope()
    finishing.watch(scope, lambda: False)  # the answer's last byte is under way
    finishing.gone()
    assert not scope.cancel_called
    assert hangup_of({"http_version": "2", "state": {HANGUP: finishing}}) is None
    assert hangup_of({"http_version": "1.1", "state": {HANGUP: finishing}}) is finishing
