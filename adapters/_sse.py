"""A sans-I/O decoder for Server-Sent Events (the WHATWG ``text/event-stream`` format).

Lines end at ``\\r\\n``, ``\\r`` or ``\\n`` and nowhere else (``str.splitlines`` also
breaks on form feeds and Unicode separators, which may appear inside JSON data), and a
chunk boundary may fall anywhere, even between the ``\\r`` and ``\\n`` of one line end.
"""

from __future__ import annotations

import attrs

__all__ = ["LineBuffer", "SSEDecoder", "SSEEvent"]


class LineBuffer:
    """Bytes in any chunking -> whole lines, split at ``\\n`` (without it).

    The unfinished last line is held in the pieces it came in and joined once it ends,
    so a long line costs linear time, not quadratic; :attr:`buffered` is its size, for
    the caller to bound (an upstream may never end a line).
    """

    def __init__(self) -> None:
        self._parts: list[bytes] = []
        self.buffered = 0

    def feed(self, data: bytes) -> list[bytes]:
        if b"\n" not in data:
            if data:
                self._parts.append(data)
                self.buffered += len(data)
            return []
        lines = data.split(b"\n")
        if self._parts:
            lines[0] = b"".join([*self._parts, lines[0]])
        tail = lines.pop()
        self._parts = [tail] if tail else []
        self.buffered = len(tail)
        return lines

    def rest(self) -> bytes:
        """The unfinished line, taken out (end of input)."""
        rest = b"".join(self._parts)
        self._parts, self.buffered = [], 0
        return rest


@attrs.frozen
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed bytes in any chunking; get whole events out."""

    def __init__(self) -> None:
        self._lines = LineBuffer()
        self._pending_cr = False
        self._data: list[bytes] = []
        self._data_size = 0
        self._event: bytes | None = None
        self._id: bytes | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        if not chunk:
            return []
        if self._pending_cr:
            # The previous chunk ended in "\r", already taken as a line end; a "\n"
            # right after it belongs to the same line end.
            self._pending_cr = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        if b"\r" in chunk:
            self._pending_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        events: list[SSEEvent] = []
        for line in self._lines.feed(chunk):
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def close(self) -> list[SSEEvent]:
        """End of input. A last event without its blank line is still delivered.

        The spec drops an unterminated event; we keep it so that the caller, which
        knows its protocol's terminator, decides whether the stream was complete.
        """
        events: list[SSEEvent] = []
        if line := self._lines.rest():
            self._line(line)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    @property
    def has_partial(self) -> bool:
        """Whether bytes of an unfinished event are buffered."""
        return bool(self._lines.buffered or self._data or self._event)

    @property
    def buffered(self) -> int:
        """Bytes held of the unfinished event: its data so far and its unfinished line."""
        return self._lines.buffered + self._data_size

    def _line(self, line: bytes) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line[0] == 0x3A:  # ":" starts a comment (keep-alive pings)
            return None
        name, sep, value = line.partition(b":")
        if sep and value.startswith(b" "):
            value = value[1:]
        if name == b"data":
            self._data.append(value)
            self._data_size += len(value) + 1
        elif name == b"event":
            self._event = value
        elif name == b"id":
            self._id = value
        # "retry" and unknown fields are ignored, as the spec says.
        return None

    def _dispatch(self) -> SSEEvent | None:
        if not self._data:
            self._event = None
            return None
        data = b"\n".join(self._data).decode("utf-8", errors="replace")
        event = SSEEvent(
            data=data,
            event=self._event.decode("utf-8", errors="replace") if self._event else "message",
            id=self._id.decode("utf-8", errors="replace") if self._id is not None else None,
        )
        self._data = []
        self._data_size = 0
        self._event = None
        return event
