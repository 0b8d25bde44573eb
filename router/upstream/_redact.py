"""Secrets out of text: every piece of 8 or more characters of a known secret.

Upstreams echo keys back, whole or in part (``sk-proj-****abcd``, the first and last
characters of a key), and a foreign exception may quote a header. :class:`Redactor`
replaces every run of text that is made of pieces of 8+ characters of a secret with
``[redacted]``: a piece of 8 characters no longer narrows a key down usefully, a
shorter one may be a common word. A secret shorter than that is replaced when whole.

The text is scanned once: every 8-character window is looked up in the set of the
secrets' 8-character windows; a window found marks its characters. Every run of marked
characters is then exactly a union of common pieces of 8+ characters (each piece is
covered by its own windows, and each window found is such a piece).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["PIECE", "REDACTED", "Redactor"]

#: The shortest piece of a secret that is redacted.
PIECE = 8
REDACTED = "[redacted]"


class Redactor:
    """Redacts pieces of the given secrets from any text."""

    __slots__ = ("_grams", "_short", "secrets")

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = frozenset(s for s in secrets if s)
        self._grams = frozenset(
            s[i : i + PIECE] for s in self.secrets for i in range(len(s) - PIECE + 1)
        )
        # Longest first, so a short secret inside a longer one does not split it.
        self._short = sorted((s for s in self.secrets if len(s) < PIECE), key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def __call__(self, text: str) -> str:
        """``text`` with every piece of 8+ characters of a secret replaced."""
        if not self.secrets or not text:
            return text
        if self._grams and len(text) >= PIECE:
            text = self._pieces(text)
        for secret in self._short:
            text = text.replace(secret, REDACTED)
        return text

    def _pieces(self, text: str) -> str:
        grams = self._grams
        parts: list[str] = []
        kept = 0  # text[:kept] is in parts already
        end = -1  # the end of the marked run being extended
        start = 0
        for i in range(len(text) - PIECE + 1):
            if text[i : i + PIECE] in grams:
                if i > end:  # a new run
                    if end >= 0:
                        parts += (text[kept:start], REDACTED)
                        kept = end
                    start = i
                end = i + PIECE
        if end < 0:
            return text
        parts += (text[kept:start], REDACTED, text[end:])
        return "".join(parts)
