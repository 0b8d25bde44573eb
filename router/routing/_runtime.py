"""The rules in force: one immutable snapshot that a request reads once.

A reload builds a new :class:`Runtime` and swaps it in one assignment; requests in flight
keep the snapshot they started with.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

import attrs
import trio

from rules import Leaf, Node, RouteSettings, RouteTable, SecretRef, resume_max

from ..traffic._keys import KeyRing
from ._engine import Engine

__all__ = ["Runtime"]


class Users:
    """Requests running on one Runtime; a retired Runtime's upstreams close when the
    last of them ends."""

    __slots__ = ("_count", "_idle", "retired")

    def __init__(self) -> None:
        self._count = 0
        self._idle: trio.Event | None = None
        self.retired = False

    def enter(self) -> None:
        self._count += 1

    def exit(self) -> None:
        self._count -= 1
        if self._count == 0 and self._idle is not None:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no request runs on this Runtime any more."""
        if self._count == 0:
            await trio.lowlevel.checkpoint()
            return
        self._idle = trio.Event()
        await self._idle.wait()


@attrs.frozen
class Runtime:
    """A rules table, the engine that runs it, and when it was loaded (wall clock)."""

    table: RouteTable
    engine: Engine
    loaded_at: float = attrs.field(factory=time.time)
    users: Users = attrs.field(factory=Users, eq=False)
    keys: KeyRing = attrs.field(factory=lambda: KeyRing([]), eq=False)
    #: The values of the config's secrets it was built with: a reload compares them,
    #: so a rotated key takes effect although the config did not change.
    secrets: Mapping[SecretRef, str] = attrs.field(factory=dict, eq=False, repr=False)
    #: Each HTTP provider's TLS digest (its ``tls`` and what its files held): a reload
    #: compares them, so a renewed certificate takes effect though the config did not
    #: change.
    tls: Mapping[str, str] = attrs.field(factory=dict, eq=False)

    @property
    def max_body(self) -> int:
        return self.table.config.server.max_body

    @property
    def read_timeout(self) -> float:
        return self.table.config.server.read_timeout

    def settings_for(self, node: Node) -> RouteSettings:
        """The entry route's settings; a direct ``provider:model`` gets ``[defaults]``."""
        if isinstance(node, Leaf):
            d = self.table.config.defaults
            return RouteSettings(
                d.timeout,
                d.first_token_timeout,
                d.retries,
                resume_max=resume_max(None, d),
                stream_timeout=d.stream_timeout,
                hooks=self.table.default_hooks,
            )
        return node.settings
