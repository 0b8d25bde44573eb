"""HTTP/2 on the wire: header blocks out and in, and h2's connection state, with one fix.

A request's header block is checked here, because neither h2 nor HPACK check a field's
characters: a stray CR or LF in a value (a key pasted with its newline) would reach the
server as is. Errors never quote a value: it may be a key.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import h2.connection
import h2.events
from h2.errors import ErrorCodes

from adapters import NetworkError

from ._transport import unsendable

if TYPE_CHECKING:
    from hyperframe.frame import Frame, GoAwayFrame

    from adapters import UpstreamRequest

__all__ = ["ClientState", "error_name", "request_headers", "response_head", "valid_field"]

# Hop-by-hop headers HTTP/2 forbids, and those written here.
_DROPPED = frozenset(
    {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "te"}
    | {"host", "content-length"}
)


class ClientState(h2.connection.H2Connection):
    """h2's connection, except that a GOAWAY lets the streams it covers finish.

    RFC 9113 §6.8: streams at or below the GOAWAY's ``last_stream_id`` are still
    answered. h2 instead moves its state machine to CLOSED, so each later frame of those
    answers is a ProtocolError, and it drops what was waiting to be sent (a body, our
    WINDOW_UPDATEs). Here the GOAWAY is only reported; the pool opens no stream on it.
    """

    def _receive_goaway_frame(
        self, frame: GoAwayFrame
    ) -> tuple[list[Frame], list[h2.events.Event]]:
        event = h2.events.ConnectionTerminated()
        try:
            event.error_code = ErrorCodes(frame.error_code)
        except ValueError:
            event.error_code = frame.error_code
        event.last_stream_id = frame.last_stream_id
        event.additional_data = frame.additional_data or None
        return [], [event]


def request_headers(
    req: UpstreamRequest, scheme: str, authority: str, path: str
) -> list[tuple[bytes, bytes]]:
    """The request's HTTP/2 header block: pseudo-headers first, names lowercase, no
    hop-by-hop headers (``host`` becomes ``:authority``).

    Raises:
        NetworkError: a name or value HTTP/2 cannot carry (never quoted: it may be a key).
    """
    fields: list[tuple[str, str]] = []
    for name, value in req.headers:
        key = name.lower()
        if key == "host":
            authority = value
        elif key == "te" and value.strip().lower() == "trailers":
            fields.append((key, "trailers"))
        elif key not in _DROPPED:
            fields.append((key, value))
    if req.body or req.method in ("POST", "PUT", "PATCH"):
        fields.append(("content-length", str(len(req.body))))
    pseudo = [(":method", req.method), (":authority", authority), (":scheme", scheme)]
    try:
        block = [(k.encode("ascii"), v.encode("ascii")) for k, v in [*pseudo, (":path", path)]]
        block += [(k.encode("ascii"), v.encode("ascii")) for k, v in fields]
    except UnicodeEncodeError as exc:
        raise NetworkError(unsendable(exc)) from None
    for encoded_name, encoded_value in block:
        if not valid_field(encoded_name, encoded_value):
            raise NetworkError(unsendable(ValueError()))
    return block


def response_head(headers: list[tuple[bytes, bytes]]) -> tuple[int, list[tuple[str, str]]]:
    """``:status`` and the other fields, as strings (pseudo-headers left out)."""
    status = 0
    fields: list[tuple[str, str]] = []
    for name, value in headers:
        if name == b":status":
            status = int(value)
        elif not name.startswith(b":"):
            fields.append((name.decode("latin-1"), value.decode("latin-1")))
    return status, fields


_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9a-z]+\Z")
_VALUE = re.compile(rb"(?:[\x21-\x7e\x80-\xff]+(?:[ \t]+[\x21-\x7e\x80-\xff]+)*)?\Z")


def valid_field(name: bytes, value: bytes) -> bool:
    """A field HTTP/2 can carry: a lowercase token for a name (a pseudo-header's ``:``
    aside), a value without control characters or surrounding white space.

    h2 checks neither, and HPACK would carry a stray CR or LF to the server as is.
    """
    return bool(_TOKEN.match(name.removeprefix(b":")) and _VALUE.match(value))


def error_name(error_code: ErrorCodes | int | None) -> str:
    return getattr(error_code, "name", str(error_code))
