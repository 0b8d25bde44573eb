"""RESP, Redis's wire protocol (version 2): commands out, replies in. Pure, no I/O.

A command is an array of bulk strings. Replies are parsed incrementally (`Parser.feed`
takes whatever bytes arrived; a reply split anywhere comes out whole once complete).
An error reply becomes a `ReplyError` *value*, not an exception: it belongs to one
command of a pipeline, and the others still get their replies.
"""

from __future__ import annotations

from typing import Any

__all__ = ["Parser", "ReplyError", "encode"]


class ReplyError(Exception):
    """Redis answered a command with an error (``-ERR ...``, ``-NOSCRIPT ...``)."""


def encode(*args: bytes | str | int | float) -> bytes:
    """One command: ``encode("GET", "k")`` -> ``*2\\r\\n$3\\r\\nGET\\r\\n$1\\r\\nk\\r\\n``.

    Built as one text and encoded once (a third cheaper than encoding each argument):
    a command of ASCII text, the usual one (keys, numbers, script SHAs), has as many
    bytes as characters. Bytes (a cached answer) or other text take the slower way.
    """
    parts = [f"*{len(args)}\r\n"]
    for arg in args:
        # str() of an int or a float is its shortest exact text (repr), which Redis reads.
        text = arg if type(arg) is str else str(arg) if type(arg) is not bytes else None
        if text is None or not text.isascii():
            return _encode_bytes(args)
        parts.append(f"${len(text)}\r\n{text}\r\n")
    return "".join(parts).encode()


def _encode_bytes(args: tuple[bytes | str | int | float, ...]) -> bytes:
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        data = arg if type(arg) is bytes else str(arg).encode()
        parts.append(b"$%d\r\n%s\r\n" % (len(data), data))
    return b"".join(parts)


class _Incomplete(Exception):
    """The buffer ends inside a reply."""


class Parser:
    """Replies from a byte stream, in order."""

    def __init__(self) -> None:
        self._buf = b""

    def feed(self, data: bytes) -> list[Any]:
        """The replies completed by ``data``: bytes, int, None, list, or ReplyError.

        Raises:
            ValueError: bytes that are not RESP (the connection must be dropped).
        """
        buf = self._buf + data if self._buf else data
        replies = []
        pos = 0
        while pos < len(buf):
            try:
                reply, pos = _parse(buf, pos)
            except _Incomplete:
                break
            replies.append(reply)
        self._buf = buf[pos:]
        return replies


def _parse(buf: bytes, pos: int) -> tuple[Any, int]:
    end = buf.find(b"\r\n", pos)
    if end < 0:
        raise _Incomplete
    kind, line, pos = buf[pos : pos + 1], buf[pos + 1 : end], end + 2
    if kind == b"+":
        return line, pos
    if kind == b"-":
        return ReplyError(line.decode(errors="replace")), pos
    if kind == b":":
        return int(line), pos
    if kind == b"$":
        size = int(line)
        if size < 0:
            return None, pos
        if len(buf) < pos + size + 2:
            raise _Incomplete
        return buf[pos : pos + size], pos + size + 2
    if kind == b"*":
        count = int(line)
        if count < 0:
            return None, pos
        items = []
        for _ in range(count):
            item, pos = _parse(buf, pos)
            items.append(item)
        return items, pos
    raise ValueError(f"not a RESP reply (type byte {kind!r})")
