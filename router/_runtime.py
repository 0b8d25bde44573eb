"""The rules in force: one immutable snapshot that a request reads once.

A reload builds a new :class:`Runtime` and swaps it in one assignment; requests in flight
keep the snapshot they started with.
"""

from __future__ import annotations

import time

import attrs

from rules import Leaf, Node, RouteSettings, RouteTable

from ._engine import Engine

__all__ = ["Runtime"]


@attrs.frozen
class Runtime:
    """A rules table, the engine that runs it, and when it was loaded (wall clock)."""

    table: RouteTable
    engine: Engine
    loaded_at: float = attrs.field(factory=time.time)

    @property
    def max_body(self) -> int:
        return self.table.config.server.max_body

    def settings_for(self, node: Node) -> RouteSettings:
        """The entry route's settings; a direct ``provider:model`` gets ``[defaults]``."""
        if isinstance(node, Leaf):
            d = self.table.config.defaults
            return RouteSettings(d.timeout, d.first_token_timeout, d.retries)
        return node.settings
