"""The hedge budget, shared by every daemon on one Redis (``server.shared_state``).

A hedge is decided in the moment (the race cannot wait for Redis), so each daemon
keeps its own bucket and, every ``SYNC_EVERY`` seconds, tells the shared bucket what
its requests earned and its hedges spent since it last did (script ``HEDGE``) and takes
the shared bucket's tokens as its own. Hedges stay the configured share of all
daemons' requests, give or take what daemons spend between two syncs (each at most its
burst). While Redis is unreachable each daemon keeps its own budget, and its counts
wait for the next sync.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ..traffic.shared._scripts import HEDGE

if TYPE_CHECKING:
    from ..traffic.shared._link import SharedLink
    from ._hedge_budget import TokenBucket

__all__ = ["SYNC_EVERY", "HedgeShare"]

#: Seconds between two syncs of the hedge budget.
SYNC_EVERY = 0.25


class HedgeShare:
    """Keeps ``bucket`` in step with the shared bucket over ``link``."""

    def __init__(self, bucket: TokenBucket, link: SharedLink) -> None:
        self.bucket = bucket
        self.link = link

    async def run(self) -> None:
        while True:
            await trio.sleep(SYNC_EVERY)
            await self.sync()

    async def sync(self) -> bool:
        """One sync; False if Redis did not answer (the counts wait for the next)."""
        bucket = self.bucket
        if not self.link.ok:
            return False
        requests, hedges = bucket.unsynced_requests, bucket.unsynced_hedges
        bucket.unsynced_requests = bucket.unsynced_hedges = 0
        earned = requests * bucket.rate
        args = (repr(earned), hedges, repr(bucket.burst))
        reply = await self.link.script(HEDGE, (self.link.key("hedge"),), args)
        if reply is None:
            bucket.unsynced_requests += requests
            bucket.unsynced_hedges += hedges
            return False
        bucket.adopt(float(reply))
        return True
