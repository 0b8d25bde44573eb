"""Providers' and models' rate windows (``limits``, ``model_limits``) on the shared Redis.

An attempt on a target takes from each of its windows (the provider's, the model's) in
one script (``TAKE``): all or nothing, atomically across daemons. The estimate is
corrected with the upstream's usage, and an attempt that never reached the upstream
gives its share back, both as writes queued after the attempt (no round trip). What a
provider's own rate-limit headers say stays with the daemon that read them.
"""

from __future__ import annotations

import itertools
import os
from typing import TYPE_CHECKING

import attrs

from ._scripts import RECONCILE, RELEASE, TAKE

if TYPE_CHECKING:
    from collections.abc import Sequence

    from ._link import Command, SharedLink

__all__ = ["SharedTaken", "SharedWindows"]


class SharedTaken(list[str]):
    """The windows an attempt took from (a list, as the local path's), and its entry."""

    member: str = ""
    held: tuple[int, ...] = ()  # tokens held in each window, in order


class SharedWindows:
    """Target windows on the shared Redis."""

    def __init__(self, link: SharedLink) -> None:
        self.link = link
        self._ids = itertools.count()
        self._daemon = os.urandom(6).hex()
        self._names: dict[str, tuple[str, str]] = {}  # a window's Redis keys, built once

    def _keys(self, key: str) -> tuple[str, str]:
        """The Redis keys of window ``key``: its entries and its sums."""
        names = self._names.get(key)
        if names is None:
            window = self.link.key("win", "target", key)
            names = self._names[key] = (window, window + ":sum")
        return names

    async def take(
        self, windows: Sequence[tuple[str, int | None, int | None, int]]
    ) -> tuple[SharedTaken | None, int, float]:
        """Take one request and its tokens from each ``(key, rpm, tpm, tokens)`` window.

        Returns:
            ``(taken, -1, 0)`` when taken from all; ``(None, index, wait)`` when the
            window at ``index`` is full for ``wait`` seconds (nothing taken); ``(None,
            -1, 0)`` when Redis did not answer (go on locally).
        """
        link = self.link
        member = f"{self._daemon}-{next(self._ids)}"
        keys: list[str] = []
        args: list[str | int] = [member]
        for key, rpm, tpm, tokens in windows:
            keys += self._keys(key)
            args += [rpm or 0, tpm or 0, tokens]
        reply = await link.script(TAKE, keys, args)
        if reply is None:
            return None, -1, 0.0
        if int(reply[0]):
            return None, int(reply[0]) - 1, max(float(reply[1]) / 1000, 0.001)
        taken = SharedTaken(key for key, *_ in windows)
        taken.member = member
        taken.held = tuple(tokens for *_, tokens in windows)
        return taken, -1, 0.0

    def settle(self, taken: SharedTaken, actual: list[int]) -> None:
        """Each window's estimate replaced by what it holds of the real usage."""
        for key, held, used in zip(taken, taken.held, actual, strict=True):
            args = (taken.member, held, used)
            self.link.later(_Script(RECONCILE.sha, self._keys(key), args))

    def give_back(self, taken: SharedTaken) -> None:
        """The attempt never reached the upstream: its request and tokens go back."""
        for key, held in zip(taken, taken.held, strict=True):
            args = (taken.member, held)
            self.link.later(_Script(RELEASE.sha, self._keys(key), args))


@attrs.frozen
class _Script:
    sha: str
    keys: tuple[str, ...]
    args: tuple[str | int, ...]

    def commands(self) -> list[Command]:
        return [("EVALSHA", self.sha, len(self.keys), *self.keys, *self.args)]

    def failed(self) -> None:
        pass  # the entry leaves the window within a minute anyway
