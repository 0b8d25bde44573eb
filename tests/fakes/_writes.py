"""A fake upstream whose streamed parts go out together, as TCP may coalesce them.

A fake sends each part of a stream (an event, a line, a frame) as a write of its own;
on a real network several of them often arrive in one read. :class:`Coalescing` wraps
a fake (any ASGI app) and sends the parts ``first`` to ``last`` of each answer's body
in one write (to the end of the body when ``last`` is None).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import attrs

__all__ = ["Coalescing"]

Message = dict[str, Any]


@attrs.define
class Coalescing:
    app: Callable[..., Awaitable[None]]
    first: int = 0
    last: int | None = None

    async def __call__(
        self,
        scope: Message,
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        held: list[bytes] = []
        parts = 0

        async def coalesced(message: Message) -> None:
            nonlocal parts
            if message["type"] != "http.response.body":
                await send(message)
                return
            part, parts = parts, parts + 1
            more = message.get("more_body", False)
            if part < self.first or (self.last is not None and part > self.last):
                await send(message)
                return
            held.append(message.get("body", b""))
            if part == self.last or not more:
                await send({**message, "body": b"".join(held)})
                held.clear()

        await self.app(scope, receive, coalesced)
