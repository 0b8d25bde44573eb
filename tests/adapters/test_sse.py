"""SSEDecoder: whole events out of bytes in any chunking (WHATWG ``text/event-stream``)."""

from __future__ import annotations

import pytest

from adapters import SSEDecoder, SSEEvent
from adapters._sse import LineBuffer


def decode(*chunks: bytes) -> list[SSEEvent]:
    """Feed ``chunks`` one after the other, then close."""
    decoder = SSEDecoder()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += decoder.feed(chunk)
    return events + decoder.close()


# Every feature at once: comments, an ignored field, event/id fields, multi-line data,
# multi-byte UTF-8, CRLF / CR / LF / mixed line ends, U+2028 and a form feed inside data,
# an empty data field, and a last event with no blank line after it.
STREAM = (
    b": welcome\r\n"
    b"retry: 1000\n"
    b"event: greeting\r\n"
    b"id: 1\r\n"
    b"data: h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\r\n"
    b"data: second line\r\n"
    b"\r\n"
    b"data: cr only\r"
    b"data:no-space\r"
    b"\r"
    b": ping\n"
    b"data: lf\n"
    b"\n"
    b"id: 2\n"
    b'data: {"a": "x\xe2\x80\xa8y\x0cz\x1cw\xc2\x85v"}\r\n'
    b"\r\n"
    b"data: mixed\r\r\n"
    b"data\n"
    b"\n"
    b"data: last without blank line"
)
EXPECTED = [
    SSEEvent(data="h\u00e9llo \u20ac \U0001f600\nsecond line", event="greeting", id="1"),
    # The last event id persists until another ``id:`` field changes it.
    SSEEvent(data="cr only\nno-space", event="message", id="1"),
    SSEEvent(data="lf", id="1"),
    SSEEvent(data='{"a": "x\u2028y\x0cz\x1cw\x85v"}', id="2"),
    SSEEvent(data="mixed", id="2"),
    SSEEvent(data="", id="2"),
    SSEEvent(data="last without blank line", id="2"),
]


def test_stream_in_one_feed() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(STREAM) == EXPECTED[:-1]
    assert decoder.has_partial
    assert decoder.close() == EXPECTED[-1:]
    assert not decoder.has_partial


@pytest.mark.parametrize("i", range(len(STREAM) + 1))
def test_stream_split_at_every_byte_offset(i: int) -> None:
    assert decode(STREAM[:i], STREAM[i:]) == EXPECTED


def test_stream_split_at_every_pair_of_offsets() -> None:
    n = len(STREAM)
    for i in range(0, n, 3):
        for j in range(i + 1, n, 5):
            assert decode(STREAM[:i], STREAM[i:j], STREAM[j:]) == EXPECTED, (i, j)


def test_stream_one_byte_at_a_time() -> None:
    assert decode(*(STREAM[k : k + 1] for k in range(len(STREAM)))) == EXPECTED


def test_events_come_out_as_soon_as_their_blank_line_arrives() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\n") == [SSEEvent("one")]
    assert decoder.feed(b"data: two\n\ndata: thr") == [SSEEvent("two")]
    assert decoder.feed(b"ee\n\n") == [SSEEvent("three")]
    assert decoder.close() == []


def test_fields() -> None:
    assert decode(b"event: update\nid: 42\ndata: x\n\n") == [SSEEvent("x", "update", "42")]
    # Only one space after the colon is dropped; a missing space is fine.
    assert decode(b"data:  two spaces\n\n") == [SSEEvent(" two spaces")]
    assert decode(b"data:tight\n\n") == [SSEEvent("tight")]
    # A colon in the value stays.
    assert decode(b"data: a: b:c\n\n") == [SSEEvent("a: b:c")]
    # Unknown fields and "retry" are ignored; an empty event name means "message".
    assert decode(b"foo: bar\nretry: 10\nevent:\ndata: x\n\n") == [SSEEvent("x", "message")]


def test_event_type_resets_after_each_event() -> None:
    assert decode(b"event: a\ndata: 1\n\ndata: 2\n\n") == [
        SSEEvent("1", "a"),
        SSEEvent("2", "message"),
    ]


def test_event_without_data_is_not_dispatched_and_forgets_its_type() -> None:
    assert decode(b"event: lonely\n\n") == []
    assert decode(b"event: lonely\n\ndata: x\n\n") == [SSEEvent("x", "message")]
    assert decode(b"event: lonely\n") == []


def test_multi_line_data_joined_with_newlines() -> None:
    assert decode(b"data: a\ndata:\ndata: c\n\n") == [SSEEvent("a\n\nc")]


def test_comments_ignored() -> None:
    assert decode(b": keep-alive\n\n:\n\ndata: x\n: inside an event\ndata: y\n\n") == [
        SSEEvent("x\ny")
    ]
    assert decode(b": just a comment\n\n") == []


@pytest.mark.parametrize("eol", [b"\r\n", b"\r", b"\n"], ids=["crlf", "cr", "lf"])
def test_line_endings(eol: bytes) -> None:
    stream = b"event: e" + eol + b"data: a" + eol + b"data: b" + eol + eol + b"data: c" + eol + eol
    assert decode(stream) == [SSEEvent("a\nb", "e"), SSEEvent("c")]


def test_crlf_split_across_two_feeds_is_one_line_end() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\ndata: b\r") == []
    assert decoder.feed(b"\n") == []
    assert decoder.feed(b"\r") == [SSEEvent("a\nb")]
    assert decoder.feed(b"\n") == []
    assert decoder.close() == []


def test_cr_then_crlf_across_feeds_is_two_line_ends() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\r") == []
    assert decoder.feed(b"\r\n") == [SSEEvent("a")]


def test_empty_feed_between_cr_and_lf_adds_no_line() -> None:
    # Any chunking of the bytes, empty chunks included, must give the same events.
    # BUG (adapters/_sse.py): feed(b"") clears the pending "\r", so the next "\n" is
    # read as a blank line that ends the event early.
    assert decode(b"data: a\r", b"", b"\ndata: b\n\n") == [SSEEvent("a\nb")]


def test_empty_feed_at_every_byte_offset_changes_nothing() -> None:
    for i in range(len(STREAM) + 1):
        assert decode(STREAM[:i], b"", STREAM[i:]) == EXPECTED, i


def test_multibyte_char_split_across_chunks() -> None:
    snowman = "\u2603".encode()  # 3 bytes
    emoji = "\U0001f600".encode()  # 4 bytes
    data = b"data: " + snowman + emoji + b"\n\n"
    for i in range(len(data) + 1):
        assert decode(data[:i], data[i:]) == [SSEEvent("\u2603\U0001f600")], i


@pytest.mark.parametrize(
    "sep", ["\u2028", "\u2029", "\x0c", "\x0b", "\x1c", "\x1d", "\x1e", "\x85"]
)
def test_unicode_and_ascii_separators_are_not_line_breaks(sep: str) -> None:
    # str.splitlines() would break on each of these.
    data = f'{{"text": "a{sep}b"}}'
    assert decode(f"data: {data}\n\n".encode()) == [SSEEvent(data)]


def test_invalid_utf8_is_replaced_not_raised() -> None:
    assert decode(b"data: a\xffb\n\n") == [SSEEvent("a\ufffdb")]


def test_close_delivers_last_event_without_blank_line() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: one\n\nevent: e\ndata: two") == [SSEEvent("one")]
    assert decoder.close() == [SSEEvent("two", "e")]


def test_close_delivers_event_with_one_line_end_but_no_blank_line() -> None:
    assert decode(b"data: x\n") == [SSEEvent("x")]
    assert decode(b"data: x\r") == [SSEEvent("x")]


def test_close_on_nothing() -> None:
    assert SSEDecoder().close() == []
    assert decode(b"") == []
    assert decode(b": comment only") == []


def test_has_partial() -> None:
    decoder = SSEDecoder()
    assert not decoder.has_partial
    decoder.feed(b"da")
    assert decoder.has_partial  # half a line
    decoder.feed(b"ta: x\n")
    assert decoder.has_partial  # a whole line, but the event is not finished
    assert decoder.feed(b"\n") == [SSEEvent("x")]
    assert not decoder.has_partial
    decoder.feed(b"event: e\n")
    assert decoder.has_partial
    decoder.feed(b"\n")
    assert not decoder.has_partial
    decoder.feed(b": ping\n\n")
    assert not decoder.has_partial


def test_buffered_counts_the_unfinished_event() -> None:
    decoder = SSEDecoder()
    decoder.feed(b"data: " + b"a" * 1000)
    decoder.feed(b"b" * 1000)
    assert decoder.buffered == 2006  # an unfinished line
    decoder.feed(b"\ndata: x\n")
    assert decoder.buffered == 2001 + 2  # the event's two data lines, each with its "\n"
    assert decoder.feed(b"\n") == [SSEEvent("a" * 1000 + "b" * 1000 + "\nx")]
    assert decoder.buffered == 0
    decoder.feed(b": a long comment " * 100)
    assert decoder.buffered == 1700  # nothing ends it yet


def test_a_long_line_costs_linear_time() -> None:
    """32 MiB in 64 KiB reads: one join at the end, not a copy per read."""
    decoder = SSEDecoder()
    piece = b"a" * 65536
    decoder.feed(b"data: ")
    for _ in range(512):
        assert decoder.feed(piece) == []
    (event,) = decoder.feed(b"\n\n")
    assert len(event.data) == 512 * 65536


def test_line_buffer_joins_pieces_and_hands_back_the_rest() -> None:
    lines = LineBuffer()
    assert lines.feed(b"ab") == []
    assert lines.feed(b"c\nde\nf") == [b"abc", b"de"]
    assert lines.buffered == 1
    assert lines.feed(b"") == []
    assert lines.rest() == b"f"
    assert lines.buffered == 0
    assert lines.rest() == b""
