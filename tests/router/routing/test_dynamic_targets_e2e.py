"""Targets clients invent (``provider:model`` with no route) are bounded per provider:
thousands of names keep ``/admin/status`` and the daemon's state small."""

from __future__ import annotations

from typing import TYPE_CHECKING

import h11
import httpx2
import orjson
import trio

from router.routing._stats import DYNAMIC_TARGETS, SHOWN_DYNAMIC

if TYPE_CHECKING:
    from collections.abc import Iterable

    from tests.conftest import RouterFactory

CONFIG = """
[server]
access_log = false

[providers.sim]
kind = "simulated"
latency = { median = "1ms", p99 = "2ms" }
tokens_per_second = 1000000

[routes.chat]
fallback = ["sim:echo"]
"""

NAMES = 5000


async def ask(client: httpx2.AsyncClient, model: str) -> None:
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    answer = await client.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text


async def ask_many(url: str, models: Iterable[str]) -> None:
    """Ask for each model in turn on one keep-alive connection (a lean h11 client:
    thousands of requests in seconds)."""
    host, port = url.removeprefix("http://").split(":")
    stream = await trio.open_tcp_stream(host, int(port))
    async with stream:
        conn = h11.Connection(h11.CLIENT)
        for model in models:
            body = orjson.dumps({"model": model, "messages": [{"role": "user", "content": "hi"}]})
            headers = [("host", host), ("content-type", "application/json")]
            headers.append(("content-length", str(len(body))))
            request = h11.Request(method="POST", target="/v1/chat/completions", headers=headers)
            await stream.send_all(conn.send(request) + conn.send(h11.Data(data=body)))
            await stream.send_all(conn.send(h11.EndOfMessage()))
            status = 0
            while True:
                event = conn.next_event()
                if event is h11.NEED_DATA:
                    conn.receive_data(await stream.receive_some())
                elif isinstance(event, h11.Response):
                    status = event.status_code
                elif isinstance(event, h11.EndOfMessage):
                    break
            assert status == 200, model
            conn.start_next_cycle()


async def test_thousands_of_invented_names_keep_the_status_small(
    start_router: RouterFactory,
) -> None:
    async with (
        start_router(CONFIG) as url,
        httpx2.AsyncClient(base_url=url, trust_env=False) as client,
    ):
        await ask(client, "chat")
        before = await client.get("/admin/status")

        async with trio.open_nursery() as nursery:
            for first in range(8):
                names = (f"sim:invented-{n}" for n in range(first, NAMES, 8))
                nursery.start_soon(ask_many, url, names)
        await ask(client, "sim:invented-4999")  # the most recent, whatever the order
        after = await client.get("/admin/status")
        metrics = await client.get("/metrics")
    state = after.json()
    dynamic = state["dynamic_targets"]["sim"]
    assert dynamic["kept"] == DYNAMIC_TARGETS
    assert dynamic["dropped"] == NAMES - DYNAMIC_TARGETS
    assert len(dynamic["recent"]) == SHOWN_DYNAMIC
    assert next(iter(dynamic["recent"])) == "sim:invented-4999"
    assert state["routes"] == {}
    assert list(state["targets"]) == ["sim:echo"]  # the configured target is kept
    # 5000 names: the status grew by a few summaries, not by 5000 entries (~480 B each).
    assert len(after.content) < len(before.content) + SHOWN_DYNAMIC * 600
    assert b"invented" not in metrics.content
