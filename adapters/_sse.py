"""A sans-I/O decoder for Server-Sent Events (the WHATWG ``text/event-stream`` format).

Lines end at ``\\r\\n``, ``\\r`` or ``\\n`` and nowhere else (``str.splitlines`` also
breaks on form feeds and Unicode separators, which may appear inside JSON data), and a
chunk boundary may fall anywhere, even between the ``\\r`` and ``\\n`` of one line end.
"""

from __future__ import annotations

import attrs

__all__ = ["SSEDecoder", "SSEEvent"]


@attrs.frozen
class SSEEvent:
    data: str
    event: str = "message"
    id: str | None = None


class SSEDecoder:
    """Feed bytes in any chunking; get whole events out."""

    def __init__(self) -> None:
        self._buffer = b""
        self._pending_cr = False
        self._data: list[bytes] = []
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
        if b"\n" not in chunk:
            self._buffer += chunk
            return []
        lines = (self._buffer + chunk).split(b"\n")
        self._buffer = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
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
        if self._buffer:
            line, self._buffer = self._buffer, b""
            self._line(line)
        event = self._dispatch()
        if event is not None:
            events.append(event)
        return events

    @property
    def has_partial(self) -> bool:
        """Whether bytes of an unfinished event are buffered."""
        return bool(self._buffer or self._data or self._event)

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
        self._event = None
        return event
