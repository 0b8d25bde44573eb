"""SSEDecoder by property: any chunking decodes like the whole, and events round-trip.

The second property checks the decoder against a model of the format written here: an
event is ``data:`` lines (one per line of its data), an optional ``event:`` and ``id:``,
comments anywhere, each line ended by ``\\r\\n``, ``\\r`` or ``\\n``, then a blank line.
"""

from __future__ import annotations

import attrs
from hypothesis import given
from hypothesis import strategies as st

from adapters import SSEDecoder, SSEEvent
from tests.strategies import chunkings

# Text that may appear in a field: anything but line ends and lone surrogates (which
# UTF-8 cannot encode). Form feeds, U+2028, NEL and the like are allowed on purpose.
FIELD = st.text(st.characters(exclude_categories=["Cs"], exclude_characters="\r\n"), max_size=12)
NAME = FIELD.filter(lambda s: s != "")
EOL = st.sampled_from([b"\r\n", b"\r", b"\n"])

# Bytes rich in what the decoder looks at: line ends, colons, field names, a split
# multi-byte character, and random bytes (invalid UTF-8 included).
PIECES = st.sampled_from(
    [
        b"\r",
        b"\n",
        b"\r\n",
        b":",
        b" ",
        b"data",
        b"data: x",
        b"event: e",
        b"id: 7",
        b"\xe2\x82",
        b"\xac",
    ]
)
SOUP = st.lists(PIECES | st.binary(max_size=4), max_size=40).map(b"".join)


def decode(chunks: list[bytes]) -> tuple[list[SSEEvent], bool]:
    """The events of ``chunks`` fed in order, and whether a partial event was left."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    partial = decoder.has_partial
    return events + decoder.close(), partial


@given(st.data(), SOUP)
def test_any_chunking_of_any_bytes_decodes_like_the_whole(data: st.DataObject, raw: bytes) -> None:
    chunks = data.draw(chunkings(raw))
    assert decode(chunks) == decode([raw])


@st.composite
def streams(draw: st.DrawFn) -> tuple[list[tuple[bytes, bytes]], list[SSEEvent]]:
    """A stream's events as encoded (each as its lines and its blank line), and what
    they hold."""
    encoded: list[tuple[bytes, bytes]] = []
    expected: list[SSEEvent] = []
    last_id: str | None = None  # the id carries over to later events, as the spec says
    for _ in range(draw(st.integers(0, 5))):
        lines = [
            b"data: " + part.encode() for part in draw(st.lists(FIELD, min_size=1, max_size=3))
        ]
        data = "\n".join(line[6:].decode() for line in lines)
        event = draw(st.none() | NAME)
        id_ = draw(st.none() | FIELD)
        if id_ is not None:
            last_id = id_
        # event, id and comments go anywhere among the data lines, whose order is kept
        extra = [b"event: " + event.encode()] if event is not None else []
        extra += [b"id: " + id_.encode()] if id_ is not None else []
        extra += [b":" + c.encode() for c in draw(st.lists(FIELD, max_size=2))]
        for field in extra:
            lines.insert(draw(st.integers(0, len(lines))), field)
        body = b"".join(line + draw(EOL) for line in lines)
        # "\r" then "\n" is one line end, so a blank "\n" cannot follow a "\r".
        blank = draw(st.sampled_from([b"\r\n", b"\r"]) if body.endswith(b"\r") else EOL)
        encoded.append((body, blank))
        expected.append(SSEEvent(data, event or "message", last_id))
    return encoded, expected


@given(st.data(), streams())
def test_encoded_events_decode_to_themselves_in_any_chunking(
    data: st.DataObject, stream: tuple[list[tuple[bytes, bytes]], list[SSEEvent]]
) -> None:
    encoded, expected = stream
    chunks = data.draw(chunkings(b"".join(body + blank for body, blank in encoded)))
    assert decode(chunks) == (expected, False)


@given(st.data(), streams())
def test_a_last_event_without_its_blank_line_is_still_delivered(
    data: st.DataObject, stream: tuple[list[tuple[bytes, bytes]], list[SSEEvent]]
) -> None:
    encoded, expected = stream
    if encoded:  # drop the last event's blank line
        encoded[-1] = (encoded[-1][0], b"")
    chunks = data.draw(chunkings(b"".join(body + blank for body, blank in encoded)))
    events, partial = decode(chunks)
    assert events == expected
    assert partial == bool(expected)


def test_the_model_above_is_the_spec_example() -> None:
    # The WHATWG spec's own example, to pin that the model is the format.
    raw = b"data: first\ndata: second\nid: 9\n\n: c\nevent: add\ndata:3\r\n\r\n"
    expected = [
        SSEEvent("first\nsecond", "message", "9"),
        attrs.evolve(SSEEvent("3"), event="add", id="9"),
    ]
    assert decode([raw]) == (expected, False)
