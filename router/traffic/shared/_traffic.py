"""Key windows, budgets' spend and the response cache, on the shared Redis.

One script (``ADMIT``) admits a request: its key's budget, its key's window and the
cache, one round trip. What follows the answer (the hold given back, the spend
charged, the window's estimate corrected, the answer cached) is queued on the link
and sent off the request's path. The local objects stay in step: the key's spend as
Redis counts it is copied into the local `Budgets` on each admission, so a daemon that
loses Redis goes on from the spend it last saw, and what it charges meanwhile is kept
(``pending``) and added to Redis when it returns. Rate windows and cached answers
made while degraded stay local (a window forgets in 60 s; a cache can miss).

Why not the ``limits`` package's Redis storage for the windows (limits 5.8): its async
storage is asyncio-first and its coredis backend does not run on coredis 6 (it never
enters the client's context manager); and the window itself has the faults that kept
its in-memory one out of ``router.traffic._window``: a hit of cost N pushes N list
entries (a tpm window of 2 M tokens holds up to 2 M), a hit above the whole limit can
never pass, nothing can be given back or corrected after the upstream's usage is
known, timestamps come from each client's clock, and each window costs its own round
trip, where this script checks a key's window and its budget and cache in one.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import attrs
from cattrs.preconf.orjson import make_converter

from adapters import EmbeddingResponse, GatewayResponse

from .._budgets import Reservation
from .._cache import ENTRY_OVERHEAD
from .._cache_entries import Cached
from ._scripts import ADMIT, CACHE_PUT, RECONCILE, UNHOLD

if TYPE_CHECKING:
    from rules import Budget

    from .._budgets import Budgets
    from ._link import Command, SharedLink, Write

__all__ = ["Admitted", "SharedHold", "SharedTraffic"]

_converter = make_converter()
_DAY_TTL = 3 * 86_400  # spend keys outlive their period a little (status, late writes)
_MONTH_TTL = 40 * 86_400


@attrs.frozen
class Admitted:
    """What the admission script said.

    Attributes:
        code: 0 admitted, 1 the budget is held by requests in flight, 2 the budget is
            spent, 3 the key's window is full.
        wait: Code 3: seconds until the request would fit.
        answer: A cached answer (code 0, the cache asked).
        hold: The request's share of the shared state, to settle or release.
    """

    code: int
    wait: float = 0.0
    answer: Cached | None = None
    hold: SharedHold | None = None


@attrs.define(eq=False)
class SharedHold(Reservation):
    """A request's entry in its key's shared window and its hold on its budget (when
    ``held``): settled or released like a local `Reservation`."""

    traffic: SharedTraffic | None = None
    member: str = ""
    held: bool = False
    tokens: int | None = None  # the window entry's estimate (None: no window)

    def release(self) -> None:
        if not self.done:
            self.done = True
            if self.held and self.traffic is not None:
                self.traffic.unhold(self.key, self.member, self.usd)

    def reconcile(self, actual: int) -> None:
        """The upstream's usage replaces the window entry's estimate."""
        if self.tokens is not None and self.traffic is not None:
            self.traffic.reconcile(self.key, self.member, self.tokens, actual)


class SharedTraffic:
    """The shared side of the traffic controls (see the module's doc).

    Args:
        link: The Redis link.
        budgets: The local budgets: mirrored, and charged (their ``on_charge``).
    """

    def __init__(self, link: SharedLink, budgets: Budgets) -> None:
        self.link = link
        self.budgets = budgets
        self._ids = itertools.count()
        self._daemon = os.urandom(6).hex()  # hold and entry ids are unique across daemons
        #: Spend charged while Redis could not be told, by spend key, for the resync.
        self.pending: dict[str, float] = {}
        self.hits = self.misses = self.stores = 0
        budgets.on_charge = self.charge
        link.resync.append(self._resync)

    async def admit(
        self,
        key: str,
        limits: tuple[int, int] | None,
        tokens: int,
        budget: Budget | None,
        worst: float,
        lease: float,
        entry: bytes | None,
    ) -> Admitted | None:
        """Admit a request of client key ``key`` in one round trip; None: Redis did not
        answer (go on locally).

        Args:
            limits: The key's rpm and tpm (0: none), or None for no window.
            worst: The USD to hold in the budget (ignored without one).
            lease: Seconds after which the hold lapses if never given back.
            entry: The cache key to look up, or None.
        """
        link = self.link
        member = f"{self._daemon}-{next(self._ids)}"
        day, month = _spend_keys(link, key)
        window = link.key("win", "key", key)
        keys = [window, window + ":sum", day, month, link.key("hold", key), link.key("held", key)]
        keys += [_entry_key(link, entry), link.key("cache", "lru")]
        rpm, tpm = limits if limits is not None else (-1, -1)
        args = [member, rpm, tpm, tokens, budget.usd if budget is not None else -1]
        args += [budget.per if budget is not None else "day", repr(worst), int(lease * 1000)]
        args.append(1 if entry is not None else 0)
        reply = await link.script(ADMIT, keys, args)
        if reply is None:
            return None
        code = int(reply[0])
        if budget is not None:
            self.budgets.observe(key, float(reply[1]), float(reply[2]))
        if code == 3:
            return Admitted(3, wait=max(float(reply[3]) / 1000, 0.001))
        if code:
            return Admitted(code)
        answer = _load(reply[3]) if reply[3] else None
        if entry is not None:
            if answer is None:
                self.misses += 1
            else:
                self.hits += 1
        held = budget is not None and answer is None
        hold = SharedHold(
            self.budgets,
            key,
            worst if held else 0.0,
            traffic=self,
            member=member,
            held=held,
            tokens=tokens if limits is not None else None,
        )
        return Admitted(0, answer=answer, hold=hold)

    # -- writes after the answer ---------------------------------------------------------

    def unhold(self, key: str, member: str, usd: float) -> None:
        link = self.link
        keys = (link.key("hold", key), link.key("held", key))
        self.link.later(_Script(UNHOLD.sha, keys, (member, repr(usd))))

    def reconcile(self, key: str, member: str, estimated: int, actual: int) -> None:
        window = self.link.key("win", "key", key)
        self.link.later(
            _Script(RECONCILE.sha, (window, window + ":sum"), (member, estimated, actual))
        )

    def charge(self, key: str, usd: float) -> None:
        """``key`` was charged ``usd`` locally: add it to the shared spend."""
        if usd:
            day, month = _spend_keys(self.link, key)
            self.link.later(_Charge(self, ((day, usd, _DAY_TTL), (month, usd, _MONTH_TTL))))

    def store(self, entry: bytes, resp: Cached, ttl: float, max_bytes: int) -> None:
        """Cache ``resp`` under ``entry`` for ``ttl`` seconds, within ``max_bytes`` in all."""
        data = _dump(resp)
        size = len(data) + ENTRY_OVERHEAD
        if size > max_bytes or ttl <= 0:
            return
        link = self.link
        keys = [_entry_key(link, entry), link.key("cache", "lru"), link.key("cache", "sizes")]
        keys.append(link.key("cache", "bytes"))
        self.stores += 1
        link.later(_Script(CACHE_PUT.sha, keys, (data, max(int(ttl * 1000), 1), size, max_bytes)))

    def _resync(self) -> list[Write]:
        """On reconnection: the spend charged while Redis could not be told."""
        pending, self.pending = self.pending, {}
        if not pending:
            return []
        ttl = {k: _DAY_TTL if ":d:" in k else _MONTH_TTL for k in pending}
        return [_Charge(self, tuple((k, usd, ttl[k]) for k, usd in pending.items()))]

    def snapshot(self) -> dict[str, object]:
        return {
            "cache": {"hits": self.hits, "misses": self.misses, "stores": self.stores},
            "pending_spend": {k: round(v, 6) for k, v in sorted(self.pending.items())},
        }


@attrs.frozen
class _Script:
    sha: str
    keys: Sequence[str]
    args: Sequence[Any]

    def commands(self) -> list[Command]:
        return [("EVALSHA", self.sha, len(self.keys), *self.keys, *self.args)]

    def failed(self) -> None:
        pass  # a window entry or a hold: they lapse; a cache entry: a miss later


@attrs.frozen
class _Charge:
    traffic: SharedTraffic
    amounts: tuple[tuple[str, float, int], ...]  # spend key, USD, expiry (s)

    def commands(self) -> list[Command]:
        out: list[Command] = []
        for key, usd, ttl in self.amounts:
            out += [("INCRBYFLOAT", key, repr(usd)), ("EXPIRE", key, ttl)]
        return out

    def failed(self) -> None:
        pending = self.traffic.pending
        for key, usd, _ in self.amounts:
            pending[key] = pending.get(key, 0.0) + usd


def _spend_keys(link: SharedLink, key: str) -> tuple[str, str]:
    """``key``'s spend keys for the current UTC day and month (built once a day: this
    runs on every admission and every charge)."""
    day = int(time.time() // 86_400)
    if _periods.get("day") != day:
        _periods.clear()
        _periods["day"] = day
    names = _periods.get((link.config.prefix, key))
    if names is None:
        now = datetime.fromtimestamp(day * 86_400, UTC)
        names = _periods[(link.config.prefix, key)] = (
            link.key("spend", key, "d", now.strftime("%Y%m%d")),
            link.key("spend", key, "m", now.strftime("%Y%m")),
        )
    return names


# Spend keys by (prefix, client key), for the UTC day under "day" (cleared each day).
_periods: dict[object, Any] = {}


def _entry_key(link: SharedLink, entry: bytes | None) -> str:
    return link.key("cache", entry.hex() if entry is not None else "-")


def _dump(resp: Cached) -> bytes:
    kind = b"e" if isinstance(resp, EmbeddingResponse) else b"c"
    return kind + _converter.dumps(resp)


def _load(data: bytes) -> Cached | None:
    """A stored answer; None if it does not parse (another version wrote it: a miss)."""
    try:
        if data[:1] == b"e":
            return _converter.loads(data[1:], EmbeddingResponse)
        if data[:1] == b"c":
            return _converter.loads(data[1:], GatewayResponse)
    except Exception:
        return None
    return None
