"""A content hook as a plugin brings one: ``f(text, *, direction) -> str | None``.

It shouts every text and blocks any that says "forbidden"; configs name it as
``tests.router.http.hook_plugin:shout``.
"""

from __future__ import annotations


def shout(text: str, *, direction: str) -> str | None:
    """``text`` upper-cased; None (blocked) when it says "forbidden"."""
    if "forbidden" in text.lower():
        return None
    return text.upper()
