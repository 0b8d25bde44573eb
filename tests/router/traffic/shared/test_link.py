"""The link on its own, against a real Redis: the hedge budget and target windows
shared by two daemons' objects, and calls that fail fast while Redis is away."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import trio

from router.routing._hedge_budget import TokenBucket
from router.routing._hedge_share import HedgeShare
from router.traffic.shared._link import Command, SharedLink
from router.traffic.shared._windows import SharedWindows
from rules import RedisURL, SharedState

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from .conftest import RedisServer


@pytest.fixture
async def links(redis_server: RedisServer) -> AsyncIterator[list[SharedLink]]:
    """Two links (two daemons) to one Redis."""
    config = SharedState(RedisURL.parse(redis_server.url), timeout=2.0)
    made = [SharedLink(config, None), SharedLink(config, None)]
    async with trio.open_nursery() as nursery:
        for link in made:
            await nursery.start(link.run)
        yield made
        nursery.cancel_scope.cancel()


async def test_hedges_spent_by_one_daemon_are_gone_for_the_other(links: list[SharedLink]) -> None:
    buckets = [TokenBucket(0.1, burst=5), TokenBucket(0.1, burst=5)]
    shares = [HedgeShare(b, link) for b, link in zip(buckets, links, strict=True)]
    assert await shares[0].sync()  # the shared bucket starts full: 5
    assert [buckets[0].try_take() for _ in range(4)] == [True] * 4
    assert await shares[0].sync()
    assert await shares[1].sync()
    assert buckets[1].tokens == pytest.approx(1.0)
    for _ in range(10):  # ten requests earn one hedge
        buckets[1].on_request()
    assert await shares[1].sync()
    assert await shares[0].sync()
    assert buckets[0].tokens == pytest.approx(2.0)


async def test_target_windows_are_taken_by_both_daemons_from_one_window(
    links: list[SharedLink],
) -> None:
    windows = [SharedWindows(link) for link in links]
    spec = [("up", 3, None, 10), ("up:m", None, 100, 10)]
    taken = [(await windows[i % 2].take(spec))[0] for i in range(3)]
    assert all(t is not None for t in taken)
    refused, index, wait = await windows[1].take(spec)
    assert (refused, index) == (None, 0)  # the provider's rpm of 3
    assert 59 < wait <= 60
    first = taken[0]
    assert first is not None
    windows[0].give_back(first)  # never reached the upstream
    with trio.fail_after(5):
        while (again := await windows[1].take(spec))[0] is None:  # noqa: ASYNC110
            await trio.sleep(0.01)  # the give-back is queued: it lands within a moment
    assert again[1:] == (-1, 0.0)


async def test_calls_fail_fast_while_redis_is_away(
    links: list[SharedLink], redis_server: RedisServer
) -> None:
    redis_server.stop()
    with trio.fail_after(5):
        while links[0].ok:  # noqa: ASYNC110  # it notices the closed connection
            await trio.sleep(0.01)
    windows = SharedWindows(links[0])
    assert await windows.take([("up", 3, None, 10)]) == (None, -1, 0.0)
    assert links[0].snapshot()["state"] == "degraded"


class Count:
    """A write that adds one to a counter, and counts the times it was handed back."""

    def __init__(self, key: str) -> None:
        self.key = key
        self.failures = 0

    def commands(self) -> list[Command]:
        return [("INCRBY", self.key, 1)]

    def failed(self) -> None:
        self.failures += 1


async def test_writes_go_out_with_a_call_or_alone_and_come_back_when_lost(
    links: list[SharedLink], redis_server: RedisServer
) -> None:
    link = links[0]
    key = link.key("test", "count")
    writes = [Count(key) for _ in range(3)]
    link.later(writes[0])
    link.later(writes[1])
    assert await link.pipeline([("GET", key)]) == [b"2"]  # taken along by the call
    link.later(writes[2])
    with trio.fail_after(5):
        while link.unanswered:  # noqa: ASYNC110  # sent alone, a moment later
            await trio.sleep(0.001)
    assert await link.pipeline([("GET", key)]) == [b"3"]
    redis_server.stop()
    lost = Count(key)
    link.later(lost)
    with trio.fail_after(5):
        while not lost.failures:  # noqa: ASYNC110  # its connection ends unanswered
            await trio.sleep(0.01)
    assert [w.failures for w in writes] == [0, 0, 0]
    assert lost.failures == 1
    assert link.unanswered == 0
