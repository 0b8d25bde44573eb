"""The rules in force: one immutable snapshot that a request reads once.

A reload builds a new :class:`Runtime` and swaps it in one assignment; requests in flight
keep the snapshot they started with.
"""

from __future__ import annotations

import attrs

from rules import RouteTable

from ._engine import Engine

__all__ = ["Runtime"]


@attrs.frozen
class Runtime:
    table: RouteTable
    engine: Engine

    @property
    def max_body(self) -> int:
        return self.table.config.server.max_body

    def timeout_for(self, model: str) -> float:
        """The whole-request deadline, in seconds, for a route or direct target."""
        route = self.table.config.routes.get(model)
        if route is not None and route.timeout is not None:
            return route.timeout
        return self.table.config.defaults.timeout
